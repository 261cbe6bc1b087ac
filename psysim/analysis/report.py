"""A self-contained report directory: HTML (figures embedded, works offline), CSV tables,
a Markdown summary, and PNG figures where plotly's image export is available.

Everything is computed before anything is written, so a failure leaves no half-written report.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from psysim.analysis.frames import Frames, provenance_notes, read_frames
from psysim.analysis.human_ratings import HUMAN_RATINGS, read_human_ratings
from psysim.analysis.paper_values import PAPER_RESULTS, one_sided_p
from psysim.analysis.render import markdown_table
from psysim.analysis.safe_csv import write_csv
from psysim.analysis.section import ReportOptions, SectionResult
from psysim.analysis.sections import SECTIONS
from psysim.analysis.stats import results_frame
from psysim.demo import is_demo_model
from psysim.study.log_series import LogEntry, LogSelection, log_provenance

DISCLAIMER = "Simulated ratings from a language model role-playing a client: not patient outcomes."


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
    report = Report(directory=Path(out_dir))
    for task, section in SECTIONS.items():
        logs = [e for e in frames.selection.used if e.key.task == task]
        if task in frames.ratings and not frames.ratings[task].empty:
            sections.append(section.build(frames, options))
        elif logs:
            report.omissions.append(f"{task}: {len(logs)} log(s) without any sample ({', '.join(e.name for e in logs)})")
    if not sections:
        bad = "; ".join(f"{u.name}: {u.reason}" for u in frames.selection.unreadable)
        raise NothingUsableError(f"{log_dir}: no usable samples in any log" + (f" (unreadable: {bad})" if bad else ""))
    report.omissions += [f"unreadable log skipped: {u.name}: {u.reason}" for u in frames.selection.unreadable]
    report.omissions += [f"shard: {note}" for note in frames.selection.shard_notes]
    for section in sections:
        report.omissions += section.omissions

    tests = [t for s in sections for t in s.tests]
    tables: dict[str, pd.DataFrame] = {"evals.csv": frames.evals, "statistics.csv": results_frame(tests),
                                       "paper_comparison.csv": pd.DataFrame([r for s in sections for r in s.paper_rows])}
    figures = {}
    for section in sections:
        tables.update(section.tables)
        figures.update(section.figures)
    summary = markdown_summary(log_dir, frames, sections, report.omissions)

    out = report.directory
    out.mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        write_csv(table, out / name)  # text cells (replies, reasons) never open as spreadsheet formulas
        report.files.append(out / name)
    for name, figure in figures.items():
        try:
            figure.write_image(out / f"{name}.png", width=900, height=520, scale=2)
            report.files.append(out / f"{name}.png")
        except Exception as ex:  # kaleido (and a browser) are optional: HTML always works
            report.notes.append(f"{name}.png not written (static image export unavailable: {type(ex).__name__})")
    summary += "".join(f"\nNote: {note}\n" for note in report.notes)
    (out / "summary.md").write_text(summary, encoding="utf-8")
    warnings = demo_warning(frames.selection) + [w for s in sections for w in s.warnings]
    (out / "index.html").write_text(html_page(summary, figures, warnings), encoding="utf-8")
    report.files += [out / "summary.md", out / "index.html"]
    return report


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
            "whose replies and ratings are scripted with a built-in effect (see the README, \"Try it without a "
            "model\"). The statistics below only show that the analysis recovers that effect."]


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
            "reproduced.", "", markdown_table(rows), ""]


def markdown_summary(log_dir: str | Path, frames: Frames, sections: list[SectionResult], omissions: list[str]) -> str:
    lines = ["# psychotherapy-in-silico report", "",
             f"Logs from `{log_dir}`; written {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC.", f"_{DISCLAIMER}_", ""]
    lines += [line for warning in demo_warning(frames.selection) for line in (warning, "")]
    lines += [line for s in sections for warning in s.warnings for line in (warning, "")]
    lines += logs_lines(frames)
    lines += ["## Summary", ""]
    lines += [f"- {line}" for s in sections for line in s.summary]
    lines += [f"- {len(omissions)} omission(s) or untestable comparison(s): listed under \"What is missing\"."
              if omissions else "- Nothing omitted.", ""]
    lines += paper_lines(sections)
    for section in sections:
        lines += [f"## {section.title}", "", *section.markdown]
    lines += ["## What is missing", ""]
    lines += [f"- {o}" for o in omissions] or ["Nothing."]
    lines += ["", "Missing ratings are excluded and counted, never imputed: `missing` counts units with no value; "
              "`missing inside` counts ratings averaged away inside the units used (e.g. a persona-run inside a run)."]
    return "\n".join(lines) + "\n"


def html_page(summary: str, figures: dict, warnings: list[str] | None = None) -> str:
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
{''.join(f'<p style="background:#fff3cd;padding:.6em">{html.escape(w.replace("**", ""))}</p>' for w in warnings or [])}
{''.join(f'<section>{part}</section>' for part in parts)}
<h2>Summary</h2>
<pre>{html.escape(summary)}</pre>
</body></html>
"""
