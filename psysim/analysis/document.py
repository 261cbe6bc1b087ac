"""The report as an HTML document: sections with anchors and a table of contents, warnings as
callouts linking to their section, every table a real ``<table>`` (caption, units in the headers,
numbers right-aligned with one number of decimals per column) and the figures in place.

The sections keep writing Markdown (``summary.md`` is for terminals and diffs); the HTML is built
from the same lines: a :class:`~psysim.analysis.render.TableText` carries the rows it shows, so a
table is rendered from its data, not parsed back from pipes. Text goes through markdown-it
(raw HTML escaped), the page through the Jinja2 template ``templates/report.html``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import jinja2
import pandas as pd
from markdown_it import MarkdownIt

from psysim.analysis.render import TableText

_MARKDOWN = MarkdownIt("commonmark", {"html": False})
_ENV = jinja2.Environment(loader=jinja2.PackageLoader("psysim.analysis", "templates"),
                          autoescape=jinja2.select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)
_NUMERIC = re.compile(r"^\s*[<>≤≥~]?\s*[-−–]?\d[\d,]*(\.\d+)?(e[-+]?\d+)?\s*%?\s*$", re.IGNORECASE)

COLUMN_UNITS = {
    "mean": "points", "ci_low": "points", "ci_high": "points", "baseline": "points", "rating": "points",
    "mean a": "unit of the measure", "mean b": "unit of the measure", "diff": "unit of the measure",
    "95% ci": "unit of the measure", "difference": "unit of the measure",
    "slope": "points per session", "final": "points", "satisfaction": "points",
    "n": "units a / b", "missing": "count", "missing inside": "ratings", "missing ratings": "ratings",
    "runs": "count", "personas": "count", "persona-runs": "count", "sessions": "count", "ratings": "count",
    "missing_runs": "runs", "missing_inside": "ratings", "snippets": "count", "missing_snippets": "snippets",
    "samples": "count", "units": "count", "fail": "units", "excluded": "units",
    "fail share": "share 0–1", "excluded share": "share 0–1", "flagged replies": "share 0–1",
    "therapist flag rate": "share 0–1", "client flag rate": "share 0–1", "expert flag rate": "share 0–1",
    "prompt_tokens": "tokens", "completion_tokens": "tokens", "calls": "count", "effect": "Cohen's d",
    "ended early": "persona-runs", "not scored": "persona-runs", "used": "ratings",
    "excluded: flagged": "ratings", "excluded: later sessions": "ratings",
    "not checked (no integrity score)": "ratings", "t": "t statistic", "df": "degrees of freedom",
    "p": "two-sided", "p (holm)": "Holm-adjusted", "n items": "count", "n raters": "count", "n dropped": "items",
}
"""Units shown under a column's name when the table does not give its own (``markdown_table(units=...)``)."""


@dataclass
class Table:
    caption: str
    columns: list[dict[str, str]]
    rows: list[list[dict[str, Any]]]
    source: str = ""
    """The CSV beside the report that holds the same rows, when there is one."""


@dataclass
class Figure:
    id: str
    name: str
    caption: str
    html: str = ""
    """plotly's div; empty when there is no data."""
    no_data: str = ""
    png: str = ""


@dataclass
class Block:
    kind: str  # "html", "heading", "table", "figure"
    html: str = ""
    id: str = ""
    text: str = ""
    table: Table | None = None
    figure: Figure | None = None


@dataclass
class DocSection:
    id: str
    title: str
    blocks: list[Block] = field(default_factory=list)
    subsections: list[tuple[str, str]] = field(default_factory=list)
    """(anchor, title) of its ### headings, for the table of contents."""


@dataclass
class Callout:
    html: str
    target: str
    target_title: str


def slug(text: str, taken: set[str]) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"
    anchor, n = base, 2
    while anchor in taken:
        anchor, n = f"{base}-{n}", n + 1
    taken.add(anchor)
    return anchor


def inline(text: str) -> str:
    """One line of Markdown (bold, code, emphasis) as inline HTML, raw HTML escaped."""
    return _MARKDOWN.renderInline(text)


def markdown_html(lines: list[str]) -> str:
    return _MARKDOWN.render("\n".join(lines))


def _decimals(values: pd.Series) -> int | None:
    """None for a column of whole numbers; else 2, or up to 4 when its small values need them (or, for
    numbers a section wrote as text, the most decimals it wrote)."""
    if "decimals" in values.attrs:  # set by _numbers_from_text
        return values.attrs["decimals"] or None
    finite = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)
              and math.isfinite(float(v))]
    if not finite or (all(v.is_integer() for v in finite) and "share" not in str(values.name)
                      and "rate" not in str(values.name)):
        return None
    small = [abs(v) for v in finite if v != 0]
    if small and min(small) < 0.01:
        return 4 if min(small) < 0.001 else 3
    return 2


def _cell(value: Any, decimals: int | None) -> dict[str, Any]:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return {"text": "–", "num": True}
    if isinstance(value, bool):
        return {"text": str(value), "num": False}
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if decimals is None:
            return {"text": f"{int(round(float(value)))}", "num": True}
        return {"text": f"{float(value):.{decimals}f}", "num": True}
    text = str(value)
    return {"text": text, "num": bool(_NUMERIC.match(text))}


def _numbers_from_text(column: pd.Series) -> pd.Series:
    """A column of numbers a section already wrote as text (e.g. df "12.00" and "8") as numbers, so
    that the column gets one number of decimals; a column with any other text stays as written."""
    if pd.api.types.is_numeric_dtype(column.dtype) or pd.api.types.is_bool_dtype(column.dtype):
        return column  # (pandas >= 3 stores text as its own string dtype, not object)
    values, places = [], 0
    for value in column:
        if isinstance(value, str):
            text = value.strip()
            places = max(places, len(text.split(".")[1]) if "." in text else 0)
            if text in ("–", ""):
                values.append(float("nan"))
                continue
            try:
                values.append(float(text))
            except ValueError:
                return column
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            values.append(float(value))
        else:
            return column
    numbers = pd.Series(values, index=column.index, name=column.name, dtype=float)
    numbers.attrs["decimals"] = places  # as many decimals as the section wrote, in every row
    return numbers


def table_of(text: TableText, caption: str, source: str = "") -> Table:
    """The rows a table shows; numbers keep one number of decimals per column (texts as written)."""
    frame = text.frame
    columns, decimals, values = [], [], []
    for index, name in enumerate(frame.columns):
        columns.append({"name": str(name), "unit": text.units.get(str(name), COLUMN_UNITS.get(str(name).lower(), ""))})
        column = _numbers_from_text(frame.iloc[:, index])
        decimals.append(_decimals(column))
        values.append(list(column))
    rows = [[_cell(value, places) for value, places in zip(row, decimals)] for row in zip(*values)]
    return Table(caption=caption, columns=columns, rows=rows, source=source)


def section_blocks(lines: list[str], title: str, taken: set[str], sources: dict[int, str]) -> tuple[list[Block], list[tuple[str, str]]]:
    """A section's Markdown lines as blocks: text, ### headings (anchored), tables."""
    blocks: list[Block] = []
    subsections: list[tuple[str, str]] = []
    text: list[str] = []
    count = 0

    def flush() -> None:
        if any(line.strip() for line in text):
            blocks.append(Block("html", html=markdown_html(text)))
        text.clear()

    for line in lines:
        if isinstance(line, TableText) and not line.frame.empty:
            count += 1
            caption = line.caption
            if caption is None:
                while text and not text[-1].strip():
                    text.pop()
                if text and text[-1].rstrip().endswith(":"):
                    caption = text.pop().rstrip().rstrip(":")
                else:
                    caption = f"{title}: table {count}"
            flush()
            blocks.append(Block("table", table=table_of(line, caption, sources.get(id(line.frame), ""))))
        elif isinstance(line, str) and line.startswith("### "):
            flush()
            heading = line[4:].strip()
            anchor = slug(heading, taken)
            subsections.append((anchor, heading))
            blocks.append(Block("heading", id=anchor, text=heading))
        else:
            text.append(str(line))
    flush()
    return blocks, subsections


def render_page(context: dict[str, Any]) -> str:
    return _ENV.get_template("report.html").render(**context)
