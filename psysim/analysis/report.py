"""A self-contained report directory: HTML (figures embedded, works offline), CSV tables,
a Markdown summary, and PNG figures where plotly's image export is available."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from psysim.analysis.figures import response_types_figure, sessions_figure
from psysim.analysis.frames import Frames, read_frames
from psysim.analysis.stats import experiment1_tests, experiment2_tests, mean_ci, results_frame, snippet_means

DISCLAIMER = "Simulated ratings from a language model role-playing a client: not patient outcomes."


@dataclass
class Report:
    directory: Path
    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def write_report(log_dir: str | Path, out_dir: str | Path, skip_unknown: bool = False, quiet: bool = True) -> Report:
    """Read ``log_dir`` and write the report to ``out_dir`` (created if needed)."""
    frames = read_frames(log_dir, skip_unknown=skip_unknown, quiet=quiet)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = Report(directory=out)

    runs = frames.exp1_runs
    statistics = results_frame(experiment1_tests(runs) + experiment2_tests(frames.exp2))
    tables = {
        "evals.csv": frames.evals,
        "exp1_ratings.csv": frames.exp1,
        "exp1_runs.csv": runs,
        "exp1_session_means.csv": session_means(frames.exp1),
        "exp2_ratings.csv": frames.exp2,
        "exp2_type_means.csv": type_means(frames.exp2),
        "statistics.csv": statistics,
    }
    for name, table in tables.items():
        table.to_csv(out / name, index=False)
        report.files.append(out / name)

    figures = {}
    if len(frames.exp1):
        figures["figure_sessions"] = sessions_figure(frames.exp1)
    if len(frames.exp2):
        figures["figure_response_types"] = response_types_figure(frames.exp2)
    for name, figure in figures.items():
        try:
            figure.write_image(out / f"{name}.png", width=900, height=520, scale=2)
            report.files.append(out / f"{name}.png")
        except Exception as ex:  # kaleido (and a browser) are optional: HTML always works
            report.notes.append(f"{name}.png not written (static image export unavailable: {type(ex).__name__})")

    summary = markdown_summary(log_dir, frames, runs, statistics, report.notes)
    (out / "summary.md").write_text(summary, encoding="utf-8")
    (out / "index.html").write_text(html_page(summary, figures, statistics), encoding="utf-8")
    report.files += [out / "summary.md", out / "index.html"]
    return report


def session_means(exp1: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (setting, condition, session), group in exp1.groupby(["setting", "condition", "session"], sort=True):
        mean, low, high, n = mean_ci(group["rating"])
        rows.append({"setting": setting, "condition": condition, "session": session, "mean": mean,
                     "ci_low": low, "ci_high": high, "n": n, "missing": int(group["missing"].sum())})
    return pd.DataFrame(rows, columns=["setting", "condition", "session", "mean", "ci_low", "ci_high", "n", "missing"])


def type_means(exp2: pd.DataFrame) -> pd.DataFrame:
    """Mean per response type over snippets (each snippet's runs averaged first), 95% CI."""
    rows = []
    for (setting, kind), ratings in snippet_means(exp2).stack(future_stack=True).groupby(level=["setting", "response_type"], sort=True):
        mean, low, high, n = mean_ci(ratings)
        rows.append({"setting": setting, "response_type": kind, "mean": mean, "ci_low": low, "ci_high": high,
                     "n": n, "missing": int(ratings.isna().sum())})
    return pd.DataFrame(rows, columns=["setting", "response_type", "mean", "ci_low", "ci_high", "n", "missing"])


def _fmt(value: object) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        return f"{value:.3g}" if abs(value) < 0.001 and value != 0 else f"{value:.2f}"
    return str(value)


def markdown_table(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "_none_"
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def _stats_table(statistics: pd.DataFrame, experiment: str) -> pd.DataFrame:
    chosen = statistics[statistics["experiment"] == experiment]
    return pd.DataFrame(
        {
            "setting": chosen["setting"], "measure": chosen["measure"],
            "contrast": chosen["a"] + " vs " + chosen["b"], "test": chosen["test"],
            "n": chosen["n_a"].astype(str) + " / " + chosen["n_b"].astype(str),
            "missing": chosen["missing_a"].astype(str) + " / " + chosen["missing_b"].astype(str),
            "mean a": chosen["mean_a"], "mean b": chosen["mean_b"], "diff": chosen["difference"],
            "95% CI": chosen["ci_low"].map(_fmt) + " to " + chosen["ci_high"].map(_fmt),
            "t": chosen["statistic"], "df": chosen["df"], "p": chosen["p"].map(lambda p: f"{p:.3g}"),
            "effect": chosen["effect_size"] + " = " + chosen["effect"].map(_fmt),
        }
    )


def markdown_summary(log_dir: str | Path, frames: Frames, runs: pd.DataFrame, statistics: pd.DataFrame,
                     notes: list[str]) -> str:
    lines = [
        "# psychotherapy-in-silico report",
        "",
        f"Logs: {len(frames.evals)} from `{log_dir}`; written {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC.",
        f"_{DISCLAIMER}_",
        "",
    ]
    if len(frames.exp1):
        overview = (
            frames.exp1.groupby(["setting", "condition"])
            .agg(runs=("run", "nunique"), personas=("persona", "nunique"), sessions=("session", "max"),
                 ratings=("rating", "count"), missing=("missing", "sum"))
            .reset_index()
        )
        lines += [
            "## Experiment 1: iterative feedback", "",
            markdown_table(overview), "",
            "Mean rating by session (95% CI over persona-runs):", "",
            markdown_table(session_means(frames.exp1)), "",
            "Statistics (final rating and per-run slope across sessions):", "",
            markdown_table(_stats_table(statistics, "iterative_feedback")), "",
        ]
    if len(frames.exp2):
        lines += [
            "## Experiment 2: human comparison", "",
            f"{frames.exp2['snippet'].nunique()} snippets, {frames.exp2['run'].nunique()} run(s); "
            "each snippet's runs are averaged before means, CIs and tests.", "",
            markdown_table(type_means(frames.exp2)), "",
            "Paired statistics over snippets:", "",
            markdown_table(_stats_table(statistics, "human_comparison")), "",
        ]
    if not len(frames.exp1) and not len(frames.exp2):
        lines += ["No scored samples in these logs.", ""]
    lines += [
        "Tests: Experiment 1, Welch's t-test over runs (one epoch of one eval; its personas "
        "averaged) and over persona-runs, with Cohen's d (pooled SD), and a paired t-test over "
        "persona means (each persona's runs averaged) with Cohen's d_z; Experiment 2, paired "
        "t-tests over snippets (each snippet's runs averaged) with Cohen's d_z. `n` counts the "
        "units used (pairs for paired tests); `missing` counts units whose rating is missing: "
        "excluded, never imputed.",
    ]
    lines += [f"\nNote: {note}" for note in notes]
    return "\n".join(lines) + "\n"


def html_page(summary: str, figures: dict, statistics: pd.DataFrame) -> str:
    parts = []
    for index, figure in enumerate(figures.values()):
        # plotly.js inlined once, so the page works offline and stays one file
        parts.append(figure.to_html(full_html=False, include_plotlyjs=index == 0, div_id=f"figure-{index}"))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>psychotherapy-in-silico report</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}}
pre{{white-space:pre-wrap;background:#f6f6f6;padding:1em;border-radius:6px;font-size:13px}}</style>
</head><body>
<h1>psychotherapy-in-silico report</h1>
<p><em>{html.escape(DISCLAIMER)}</em></p>
{''.join(f'<section>{part}</section>' for part in parts)}
<h2>Summary</h2>
<pre>{html.escape(summary)}</pre>
</body></html>
"""
