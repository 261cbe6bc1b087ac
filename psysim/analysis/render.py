"""Markdown rendering shared by the report sections (numbers, tables, test rows)."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from psysim.analysis.stats import NOT_TESTABLE, TestResult


def fmt(value: Any) -> str:
    """A number for a table: 2 decimals, 3 significant digits when small, "–" for NaN/None."""
    if value is None:
        return "–"
    if isinstance(value, (bool,)):
        return str(value)
    if isinstance(value, (int,)):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return "–"
        if abs(value) < 1e-9:  # rounding noise of a difference that is 0 (e.g. -5.68e-14)
            return "0.00"
        return f"{value:.3g}" if abs(value) < 0.001 and value != 0 else f"{value:.2f}"
    return str(value)


def fmt_p(p: float) -> str:
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "–"
    return "< 0.001" if p < 0.001 else f"{p:.3g}"


def fmt_df(df: float) -> str:
    if df is None or (isinstance(df, float) and math.isnan(df)):
        return "–"
    return f"{df:.0f}" if float(df).is_integer() else f"{df:.2f}"


def p_phrase(p: float) -> str:
    """"p = 0.03" or "p < 0.001"."""
    shown = fmt_p(p)
    return f"p {shown}" if shown.startswith("<") else f"p = {shown}"


def ci(low: float, high: float) -> str:
    if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in (low, high)):
        return "–"
    return f"{fmt(low)} to {fmt(high)}"


class TableText(str):
    """A Markdown pipe table that remembers its rows, so that the HTML report renders a real
    ``<table>`` (caption, units, aligned numbers) from the same data the Markdown shows."""

    frame: pd.DataFrame
    caption: str | None
    units: dict[str, str]


def markdown_table(frame: pd.DataFrame, empty: str = "_no rows_", caption: str | None = None,
                   units: dict[str, str] | None = None) -> str:
    """A pipe table of ``frame`` (``empty`` when there are no rows), carrying the frame, an optional
    caption and column units for the HTML report (:mod:`psysim.analysis.document`)."""
    text = TableText(_pipe_table(frame, empty))
    text.frame = frame if frame is not None else pd.DataFrame()
    text.caption = caption
    text.units = units or {}
    return text


def _pipe_table(frame: pd.DataFrame, empty: str) -> str:
    if frame is None or frame.empty:
        return empty
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(fmt(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def render_tests(results: list[TestResult]) -> str:
    """Testable rows as a table (primary first)."""
    rows = [r for r in results if r.status != NOT_TESTABLE]
    rows.sort(key=lambda r: r.role != "primary")
    frame = pd.DataFrame(
        [
            {
                "role": r.role, "contrast": f"{r.a} vs {r.b}", "measure": r.measure, "test (unit)": f"{r.test} ({r.unit})",
                "n": f"{r.n_a} / {r.n_b}", "missing": f"{r.missing_a} / {r.missing_b}",
                "missing inside": r.missing_within, "mean a": r.mean_a, "mean b": r.mean_b, "diff": r.difference,
                "95% CI": ci(r.ci_low, r.ci_high), "t": r.statistic, "df": fmt_df(r.df), "p": fmt_p(r.p),
                "p (Holm)": fmt_p(r.p_holm) if r.role == "secondary" else ("(primary)" if r.role == "primary" else "–"),
                "effect": effect_text(r) if r.effect_size else "–",
            }
            for r in rows
        ]
    )
    return markdown_table(frame, empty="_no testable comparison_")


def effect_text(r: TestResult) -> str:
    """"d = 1.60 (standardised by the SD between persona-runs)": the number is d, not the SD."""
    return f"d = {fmt(r.effect)} (standardised by the {r.effect_size})"


def not_testable_lines(results: list[TestResult]) -> list[str]:
    """One bullet per reason; a contrast whose every test fails for that reason is named once."""
    per_contrast: dict[tuple[str, str], int] = {}
    for r in results:
        per_contrast[(r.a, r.b)] = per_contrast.get((r.a, r.b), 0) + 1
    by_reason: dict[str, dict[tuple[str, str], list[str]]] = {}
    for r in results:
        if r.status == NOT_TESTABLE:
            by_reason.setdefault(r.reason, {}).setdefault((r.a, r.b), []).append(f"{r.measure}, {r.test} ({r.role})")
    lines = []
    for reason, contrasts in by_reason.items():
        parts = [f"{a} vs {b} (all {len(tests)} tests)" if len(tests) == per_contrast[(a, b)] else
                 f"{a} vs {b}: " + "; ".join(tests) for (a, b), tests in contrasts.items()]
        lines.append(f"- not testable: {reason}: " + " | ".join(parts))
    return lines


def result_sentence(r: TestResult, unit_word: str = "") -> str:
    """"expert vs none, slope (mixed model): diff 1.97 (95% CI 1.70 to 2.23), p = 0.001, d = 0.8"."""
    head = f"{r.a} vs {r.b}, {r.measure} ({r.test})"
    if r.status == NOT_TESTABLE:
        return f"{head}: not testable: {r.reason}"
    effect = f", {effect_text(r)}" if r.effect_size and not math.isnan(r.effect) else ""
    return (f"{head}: difference {fmt(r.difference)}{unit_word} (95% CI {ci(r.ci_low, r.ci_high)}), "
            f"t({fmt_df(r.df)}) = {fmt(r.statistic)}, {p_phrase(r.p)}{effect}")
