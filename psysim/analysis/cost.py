"""Cost section: model calls and prompt/completion tokens per role, per condition, per
persona-run (a sample in one run) and per run, from every used log, to size the next study.

Tokens are Inspect's per-sample ``role_usage`` (as the server reported them; prompt tokens
include those served from a prefix cache), with the tokens of roles left unbound (which fall back
to the main model, counted by Inspect only per model) as one role of their own. Calls are every
model call of the sample, re-asks included: Inspect's ``turn_count`` (the solver's) plus the
calls each scorer recorded. Descriptive only: no tests.
"""

from __future__ import annotations

import pandas as pd

from psysim.analysis.frames import COST, UNBOUND_ROLE, Frames
from psysim.analysis.render import markdown_table
from psysim.analysis.section import ReportOptions, Section, SectionResult

UNIT = {"iterative_feedback": "persona-run", "human_comparison": "snippet-run", "rater_validity": "snippet-run"}


def by_role(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (task, setting, condition, role): totals and means per sample-run."""
    rows = []
    for (task, setting, condition, role), group in frame.groupby(["task", "setting", "condition", "role"], sort=True):
        units = group[["sample", "run"]].drop_duplicates().shape[0]
        prompt, completion = int(group["prompt_tokens"].sum()), int(group["completion_tokens"].sum())
        rows.append({"task": task, "setting": setting, "condition": condition or "–", "role": role or "–",
                     "units": units, "unit": UNIT.get(task, "sample-run"), "prompt tokens": prompt,
                     "completion tokens": completion, "prompt / unit": prompt / units,
                     "completion / unit": completion / units})
    return pd.DataFrame(rows)


def by_run(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (task, setting, condition, run): samples, model calls and tokens."""
    grouped = frame.groupby(["task", "setting", "condition", "run"], sort=True)
    out = grouped.agg(samples=("sample", "nunique"), calls=("calls", "sum"), prompt_tokens=("prompt_tokens", "sum"),
                      completion_tokens=("completion_tokens", "sum")).reset_index()
    return out


def totals(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (task, setting, condition): runs, sample-runs, calls and tokens, and means per sample-run."""
    rows = []
    for (task, setting, condition), group in frame.groupby(["task", "setting", "condition"], sort=True):
        units = group[["sample", "run"]].drop_duplicates().shape[0]
        calls = int(group["calls"].sum())
        rows.append({"task": task, "setting": setting, "condition": condition or "–", "runs": group["run"].nunique(),
                     "units": units, "model calls": calls, "calls / unit": calls / units,
                     "prompt tokens": int(group["prompt_tokens"].sum()),
                     "completion tokens": int(group["completion_tokens"].sum())})
    return pd.DataFrame(rows)


def build(frames: Frames, options: ReportOptions) -> SectionResult:
    """The Cost section (see the module docstring)."""
    del options
    frame = frames.ratings.get(COST, pd.DataFrame())
    section = SectionResult(title="Cost: model calls and tokens")
    roles, runs, overall = by_role(frame), by_run(frame), totals(frame)
    section.tables.update({"cost_by_role.csv": roles, "cost_by_run.csv": runs, "cost_totals.csv": overall})
    for task, group in overall.groupby("task", sort=True) if not overall.empty else ():
        section.summary.append(
            f"Cost [{task}]: {int(group['model calls'].sum()):,} model calls, "
            f"{int(group['prompt tokens'].sum()):,} prompt and {int(group['completion tokens'].sum()):,} "
            f"completion tokens over {int(group['units'].sum())} {UNIT.get(task, 'sample-run')}s")
    section.markdown = [
        "Model calls (every model call of a sample, the solver's and the scorers', re-asks included) and tokens "
        "as the server reported them (Inspect's usage per role; prompt tokens include any served from a prefix "
        f"cache; roles left unbound fall back to the main model and appear as `{UNBOUND_ROLE}`), "
        "to size the next study: a study's cost is about its units times the cost per unit. A unit is one "
        "persona's course in one run (Experiment 1) or one snippet in one run. Per run: `cost_by_run.csv`.", "",
        markdown_table(overall, empty="_no samples_", caption="Model calls and tokens per task and condition"), "",
        markdown_table(roles, empty="_no token usage in these logs_", caption="Tokens per role"), "",
    ]
    return section


SECTION = Section(task=COST, title="Cost: model calls and tokens", primary_help="no tests (counts only)",
                  default_primary="", build=build)
