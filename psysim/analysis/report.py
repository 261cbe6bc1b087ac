"""A self-contained report directory: ``index.html`` (a document: table of contents, warnings at the
top, HTML tables, figures in their sections; works offline with ``plotly.min.js`` beside it), the
CSV tables and the same tables as LaTeX (``tables.tex``), ``summary.md`` for terminals and diffs,
a methods paragraph, and a PNG beside each figure (:mod:`psysim.analysis.static_images`).

Everything is computed before anything is written, so a failure leaves no half-written report.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import plotly
import plotly.graph_objects as go

from psysim.analysis.document import Block, Callout, DocSection, Table, inline, render_page, section_blocks, slug
from psysim.analysis.document import Figure as DocFigure
from psysim.analysis.frames import EXP1_TASK, EXP2_TASK, Frames, provenance_notes, read_frames
from psysim.analysis.human_ratings import HUMAN_RATINGS, read_human_ratings
from psysim.analysis.latex import latex_tables
from psysim.analysis.methods import methods_paragraph
from psysim.analysis.paper_values import PAPER_RESULTS, one_sided_p
from psysim.analysis.plots import NoData, caption, forest_figure, paper_figure
from psysim.analysis.render import markdown_table
from psysim.analysis.safe_csv import write_csv
from psysim.analysis.section import ReportOptions, SectionResult
from psysim.analysis.sections import SECTIONS
from psysim.analysis.static_images import PNG_ENV, png_wanted, write_pngs
from psysim.analysis.stats import PRIMARY, SECONDARY, results_frame
from psysim.demo import is_demo_model
from psysim.study.log_series import LogEntry, LogSelection, log_provenance

PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
"""plotly.js, copied once beside index.html: the page works offline, with no CDN."""
DISCLAIMER = "Simulated ratings from a language model role-playing a client: not patient outcomes."
SHARD_OMISSION = "shard: "
"""Prefix of the omissions that name a missing or incomplete shard of a sharded study."""


class NothingUsableError(ValueError):
    """No log in the directory could be used (each is named with its reason)."""


@dataclass
class Report:
    directory: Path
    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    omissions: list[str] = field(default_factory=list)


def write_report(log_dir: str | Path, out_dir: str | Path, options: ReportOptions | None = None) -> Report:
    """Read ``log_dir`` and write the report to ``out_dir`` (created if needed).

    Args:
        log_dir: Directory of Inspect logs.
        out_dir: Report directory.
        options: Primary tests, bootstrap size and seed, and reading options.

    Returns:
        The files written, notes, and every omission (also stated in the report).

    Raises:
        FileNotFoundError: no directory or no logs.
        UnknownTaskError: logs of other tasks (unless ``options.skip_unknown``).
        NothingUsableError: every log was unreadable or had no samples.
        ValueError: a malformed ``--primary`` choice.
        HumanRatingsError: an unusable ``--human-ratings`` file (names file, row and field).
    """
    options = options or ReportOptions()
    for task in options.primary:
        if task not in SECTIONS:
            raise ValueError(f"--primary {task}=...: unknown task; known: {', '.join(SECTIONS)}")
    frames = read_frames(log_dir, skip_unknown=options.skip_unknown, quiet=options.quiet)
    if options.human_ratings:
        frames.ratings[HUMAN_RATINGS] = read_human_ratings(options.human_ratings)
    sections: list[SectionResult] = []
    keys: list[str] = []
    report = Report(directory=Path(out_dir))
    for task, section in SECTIONS.items():
        logs = [e for e in frames.selection.used if e.key.task == task]
        if task in frames.ratings and not frames.ratings[task].empty:
            sections.append(section.build(frames, options))
            keys.append(task)
        elif logs:
            report.omissions.append(f"{task}: {len(logs)} log(s) without any sample ({', '.join(e.name for e in logs)})")
    if not sections:
        bad = "; ".join(f"{u.name}: {u.reason}" for u in frames.selection.unreadable)
        raise NothingUsableError(f"{log_dir}: no usable samples in any log" + (f" (unreadable: {bad})" if bad else ""))
    report.omissions += [f"unreadable log skipped: {u.name}: {u.reason}" for u in frames.selection.unreadable]
    report.omissions += [f"{SHARD_OMISSION}{note}" for note in frames.selection.shard_notes]
    for section in sections:
        report.omissions += section.omissions

    for task, section in zip(keys, sections):
        if any(t.role in (PRIMARY, SECONDARY) for t in section.tests):
            section.figures[f"figure_forest_{task}"] = forest_figure(section.tests, f"{section.title}: every contrast")
    placeholders = _placeholders(log_dir, keys)

    tests = [t for s in sections for t in s.tests]
    tables: dict[str, pd.DataFrame] = {"evals.csv": frames.evals, "statistics.csv": results_frame(tests),
                                       "paper_comparison.csv": pd.DataFrame([r for s in sections for r in s.paper_rows])}
    figures: dict = {}
    for section in sections:
        tables.update(section.tables)
        figures.update(section.figures)
    paper = paper_figure(tests)
    figures["figure_paper"] = paper
    methods = methods_paragraph(frames, sections, options)
    summary = markdown_summary(log_dir, frames, [*sections, *placeholders], report.omissions, methods)

    out = report.directory
    out.mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        write_csv(table, out / name)  # text cells (replies, reasons) never open as spreadsheet formulas
        report.files.append(out / name)
    drawn = {name: figure for name, figure in figures.items() if isinstance(figure, go.Figure) and _has_data(figure)}
    pngs: dict[str, Path] = {}
    if png_wanted(options.png):
        pngs, notes = write_pngs(drawn, out)
        report.notes += notes
        report.files += list(pngs.values())
    else:
        report.notes.append(f"PNG figures not written: switched off (--no-png or {PNG_ENV}=0)")
    summary += "".join(f"\nNote: {note}\n" for note in report.notes)
    (out / "summary.md").write_text(summary, encoding="utf-8")
    page, doc_tables = html_document(log_dir, frames, sections, placeholders, report, methods, tables, pngs, paper)
    (out / "tables.tex").write_text(latex_tables(doc_tables), encoding="utf-8")
    if drawn:
        shutil.copyfile(PLOTLY_JS, out / PLOTLY_JS.name)
        report.files.append(out / PLOTLY_JS.name)
    (out / "index.html").write_text(page, encoding="utf-8")
    report.files += [out / "summary.md", out / "tables.tex", out / "index.html"]
    return report


REQUIRED = {EXP1_TASK: ("figure_sessions", "Client satisfaction by session"),
            EXP2_TASK: ("figure_response_types", "Client rating per response type")}
"""The experiments every report shows, with their main figure: "no data" in its place when absent."""


def _placeholders(log_dir: str | Path, keys: list[str]) -> list[SectionResult]:
    out = []
    for task, (name, title) in REQUIRED.items():
        if task in keys:
            continue
        reason = f"no {task} logs with samples in {log_dir}"
        out.append(SectionResult(title=SECTIONS[task].title, markdown=[f"No data: {reason}.", ""],
                                 figures={name: NoData(title, reason)}))
    return out


def logs_lines(frames: Frames) -> list[str]:
    """The top of the report: which logs were used, and every one that was not, with the reason."""
    selection = frames.selection
    complete = [e for e in selection.used if e.complete]
    lines = [f"Logs used: {len(selection.used)} ({len(complete)} complete, {len(selection.incomplete)} incomplete); "
             f"superseded: {len(selection.superseded)}; duplicates (same eval id): {len(selection.duplicates)}; "
             f"unreadable: {len(selection.unreadable)}. "
             "Same series = same task, task arguments, model and role models; within a series a later log "
             "supersedes an incomplete one (Inspect's retry), and two complete logs are two runs. Shards of one "
             "study (`-T shard=K/N`: series the same apart from the shard) are merged: a run is one epoch across "
             "all its shards.", ""]
    for bad in selection.unreadable:
        lines.append(f"- **skipped, unreadable**: `{bad.name}`: {bad.reason}")
    for old, new in selection.superseded:
        why = f"; error: {old.error.splitlines()[0][:160]}" if old.error else ""
        lines.append(f"- **superseded**: `{old.name}` (status {old.status}{why}) is replaced by `{new.name}`")
    for dup in selection.duplicates:
        if dup.differs:
            lines.append(f"- **WARNING: duplicate with different contents**: `{dup.entry.name}` has the eval id of "
                         f"`{dup.kept.name}` ({dup.kept.eval_id}) but not its contents; `{dup.kept.name}` is used, "
                         f"`{dup.entry.name}` is not read. Check which file is the real run")
        else:
            lines.append(f"- **duplicate**: `{dup.entry.name}` is a copy of `{dup.kept.name}` (same eval id and "
                         "contents): the run is read once")
    for note in selection.shard_notes:
        lines.append(f"- **shard**: {note}")
    lines += provenance_lines(selection)
    for entry in selection.incomplete:
        results = entry.header.results
        done = f"; {results.completed_samples} of {results.total_samples} samples completed" if results else ""
        why = f"; error: {entry.error.splitlines()[0][:160]}" if entry.error else ""
        lines.append(f"- **incomplete, used as a partial run**: `{entry.name}` (status {entry.status}{done}{why})")
    return lines + [""]


def provenance_lines(selection: LogSelection) -> list[str]:
    """The log list's provenance: each setting that prompt provenance divides (never pooled), then per
    task each provenance with its logs (and commits, shown only, never compared)."""
    lines = [f"- **settings split by prompt provenance**: {note}" for note in provenance_notes(selection.used)]
    by_task: dict[str, dict[str, list[LogEntry]]] = {}
    for entry in selection.used:
        by_task.setdefault(entry.key.task, {}).setdefault(entry.key.provenance, []).append(entry)
    for task, groups in sorted(by_task.items()):
        for fingerprint, members in sorted(groups.items()):
            commits = sorted({c for e in members if (c := (log_provenance(e.header) or {}).get("git_commit"))})
            shown = f" (commit {', '.join(c[:12] + ('+dirty' if c.endswith('+dirty') else '') for c in commits)})" \
                if commits else ""
            lines.append(f"- provenance of {task} `{fingerprint}`{shown}: "
                         + ", ".join(f"`{e.name}`" for e in members))
    return lines


def demo_warning(selection: LogSelection) -> list[str]:
    """A banner when any log used the scripted demo model: its numbers are built in, not results."""
    demo = sorted({e.key.model for e in selection.used if is_demo_model(e.key.model)}
                  | {m for e in selection.used for _, m in e.key.model_roles if is_demo_model(m)})
    if not demo:
        return []
    return [f"**DEMO, SCRIPTED NUMBERS, NOT A RESULT**: logs made with {', '.join(demo)}, a model-free demo "
            "whose replies and ratings are scripted with a built-in effect (see docs/getting-started.md, \"Try it "
            "without a model\"). The statistics below only show that the analysis recovers that effect."]


def paper_lines(sections: list[SectionResult]) -> list[str]:
    rows = pd.DataFrame([r for s in sections for r in s.paper_rows])
    if rows.empty:
        return []
    exp1_p = ", ".join(f"t({r.df}) = {r.t}: one-sided p = {one_sided_p(r.t, r.df):.4f}"
                       for r in PAPER_RESULTS if r.df == 5)
    return ["## The paper side by side", "",
            "The paper's reported results next to this run's same contrasts. \"Same unit\" for Experiment 1 is "
            "the paired t-test over the session means (df = 5 with 6 sessions), the paper's apparent unit: "
            "it ignores persona and run variation and is not the recommended analysis. The paper's Experiment 1 "
            f"p-values sit below even the one-sided p for its t and df ({exp1_p}), so its exact test cannot be "
            "reproduced.", "", markdown_table(rows, caption="The paper's results next to this run's"), ""]


def markdown_summary(log_dir: str | Path, frames: Frames, sections: list[SectionResult], omissions: list[str],
                     methods: str = "") -> str:
    lines = ["# psychotherapy-in-silico report", "",
             f"Logs from `{log_dir}`; written {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC.", f"_{DISCLAIMER}_", ""]
    lines += [line for warning in demo_warning(frames.selection) for line in (warning, "")]
    lines += [line for s in sections for warning in s.warnings for line in (warning, "")]
    lines += logs_lines(frames)
    lines += ["## Summary", ""]
    lines += [f"- {line}" for s in sections for line in s.summary]
    lines += [f"- {len(omissions)} omission(s) or untestable comparison(s): listed under \"What is missing\"."
              if omissions else "- Nothing omitted.", ""]
    lines += ["## Methods (to paste into a paper)", "", methods, ""] if methods else []
    lines += paper_lines(sections)
    for section in sections:
        lines += [f"## {section.title}", "", *section.markdown]
    lines += ["## What is missing", ""]
    lines += [f"- {o}" for o in omissions] or ["Nothing."]
    lines += ["", "Missing ratings are excluded and counted, never imputed: `missing` counts units with no value; "
              "`missing inside` counts ratings averaged away inside the units used (e.g. a persona-run inside a run)."]
    return "\n".join(lines) + "\n"


def html_document(log_dir: str | Path, frames: Frames, sections: list[SectionResult],
                  placeholders: list[SectionResult], report: Report, methods: str, tables: dict[str, pd.DataFrame],
                  pngs: dict[str, Path], paper_plot: go.Figure | NoData) -> tuple[str, list[Table]]:
    """The page (Jinja2 template ``templates/report.html``) and every table it shows, in order."""
    taken: set[str] = set()
    sources = {id(frame): name for name, frame in tables.items()}
    doc: list[DocSection] = []

    def add(title: str, lines: list[str], figures: dict | None = None) -> DocSection:
        anchor = slug(title, taken)
        blocks = [Block("figure", figure=_figure(name, figure, pngs)) for name, figure in (figures or {}).items()]
        text_blocks, subsections = section_blocks(lines, title, taken, sources)
        section = DocSection(id=anchor, title=title, blocks=blocks + text_blocks, subsections=subsections)
        doc.append(section)
        return section

    add("Summary", [f"- {line}" for s in sections for line in s.summary]
        + [f"- {len(report.omissions)} omission(s) or untestable comparison(s): listed under \"What is missing\"."
           if report.omissions else "- Nothing omitted."])
    add("Methods (to paste into a paper)", [methods])
    add("Logs used", logs_lines(frames))
    paper = [s for s in sections if s.paper_rows]
    add("The paper side by side", paper_lines(sections)[2:] if paper else ["No contrast of the paper's claims in these logs."],
        {"figure_paper": paper_plot})
    logs_anchor = next(d.id for d in doc if d.title == "Logs used")
    callouts = [Callout(html=inline(w), target=logs_anchor, target_title="Logs used") for w in demo_warning(frames.selection)]
    callouts += [Callout(html=inline(f"**Duplicate log with different contents**: `{d.entry.name}` has the eval id of "
                                    f"`{d.kept.name}`; only `{d.kept.name}` is read."),
                        target=logs_anchor, target_title="Logs used")
                for d in frames.selection.duplicates if d.differs]
    ordered = sorted([*sections, *placeholders], key=lambda s: [x.title for x in SECTIONS.values()].index(s.title)
                     if s.title in [x.title for x in SECTIONS.values()] else 99)
    for section in ordered:
        placed = add(section.title, section.markdown, section.figures)
        callouts += [Callout(html=inline(w), target=placed.id, target_title=section.title) for w in section.warnings]
    add("What is missing", [f"- {o}" for o in report.omissions] or ["Nothing."])
    files = sorted(p.name for p in report.files) + ["summary.md", "tables.tex"]
    add("Files", [", ".join(f"[{name}]({name})" for name in files) + "."])
    doc_tables = [b.table for s in doc for b in s.blocks if b.kind == "table"]
    page = render_page({
        "title": "psychotherapy-in-silico report", "disclaimer": DISCLAIMER,
        "header_lines": [f"Logs from {log_dir}; written {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC."]
                        + [f"Note: {note}" for note in report.notes],
        "callouts": callouts, "sections": doc, "plotly_js": PLOTLY_JS.name,
        "has_plots": any(b.figure and b.figure.html for s in doc for b in s.blocks),
    })
    return page, doc_tables


def _figure(name: str, figure, pngs: dict[str, Path]) -> DocFigure:  # noqa: ANN001
    anchor = "figure-" + name.removeprefix("figure_").replace("_", "-")
    if isinstance(figure, NoData):
        return DocFigure(id=anchor, name=name, caption=figure.title, no_data=figure.reason)
    if not _has_data(figure):
        return DocFigure(id=anchor, name=name, caption=caption(figure) or name, no_data="no value to plot")
    body = figure.to_html(full_html=False, include_plotlyjs=False, div_id=anchor + "-plot",
                          config={"displaylogo": False, "responsive": True})
    png = pngs.get(name)
    return DocFigure(id=anchor, name=name, caption=caption(figure), html=body, png=png.name if png else "")


def _has_data(figure: go.Figure) -> bool:
    """At least one trace with a finite value (an empty figure is never drawn)."""
    for trace in figure.data:
        for axis in ("y", "x"):
            values = getattr(trace, axis, None)
            if values is not None and any(isinstance(v, (int, float)) and math.isfinite(v) for v in values
                                          if not isinstance(v, bool)):
                return True
    return False
