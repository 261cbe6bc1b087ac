"""Simulation-integrity section: how often the simulation stopped being one, per setting and
condition, from the ``simulation_integrity`` scores of both experiments.

The exclusions themselves act in the Experiment 1 section (:func:`psysim.analysis.frames.
apply_integrity`): its primary statistics use the sessions that pass; the same statistics on
all sessions are shown beside them. Here: the rates, and a warning for the top of the report
when more than ``report_warning_share`` (``psysim/data/integrity.yaml``, default 20%) of a
setting's held sessions (or snippets) fail.
"""

from __future__ import annotations

import pandas as pd

from psysim.analysis.frames import EXP1_TASK, EXP2_TASK, EXPERT_AUTHORED, INTEGRITY, Frames
from psysim.analysis.plots import integrity_figure
from psysim.analysis.render import markdown_table
from psysim.analysis.section import ReportOptions, Section, SectionResult
from psysim.dialogue.integrity import FLAG_KINDS, load_integrity_config

ROLE_RATES = ("therapist_flag_rate", "client_flag_rate", "expert_flag_rate")


def integrity_rates(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (task, setting, condition): units (held sessions / snippets), failing and excluded
    units and their shares, the mean per-role flag rates over samples, and flag counts."""
    rows = []
    for (task, setting, condition), group in frame.groupby(["task", "setting", "condition"], sort=True):
        units, failed, excluded = int(group["units"].sum()), int(group["failed"].sum()), int(group["excluded"].sum())
        unit = "sessions" if task == EXP1_TASK else "snippets"
        row = {"task": task, "setting": setting, "condition": condition or "–", "samples": len(group),
               "unit": unit, "units": units, "fail": failed, "fail share": failed / units if units else float("nan"),
               "excluded": excluded if task == EXP1_TASK else float("nan"),
               "excluded share": excluded / units if units and task == EXP1_TASK else float("nan")}
        replies = group["replies"].sum()
        row["flagged replies"] = group["flagged_replies"].sum() / replies if replies else float("nan")
        row.update({rate.replace("_flag_rate", " flag rate"): group[rate].mean() for rate in ROLE_RATES})
        row.update({kind: int(group[kind].sum()) for kind in (*FLAG_KINDS, "truncated", "failed_calls")})
        row["identical revisions"] = int(group["revision_identical"].fillna(0).sum()) if task != EXP1_TASK else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)


def expert_authorship(frame: pd.DataFrame, exp2: pd.DataFrame) -> pd.DataFrame:
    """Per (task, setting, condition): how much of the Therapist's text the Expert wrote, and how
    long the Expert's text was against its limit (issue 26).

    Experiment 2: revisions produced, flagged ``expert_authored``, and ``revised`` ratings left out
    of the statistics for it (from the Experiment 2 frame). Experiment 1 (information only: following
    the advice is the treatment, nothing is excluded): therapist turns held after Expert feedback
    and those copying it. Beside them: the Expert's words (mean and max over critiques, or over
    courses' feedback), its word limit, re-asks and replies kept over a limit.
    """
    columns = ["task", "setting", "condition", "unit", "units", "expert_authored", "share", "excluded",
               "expert words (mean)", "expert words (max)", "word limit", "re-asks", "kept over limit"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    rows = []
    for (task, setting, condition), group in frame.groupby(["task", "setting", "condition"], sort=True):
        if task not in (EXP1_TASK, EXP2_TASK):
            continue
        exp1 = task == EXP1_TASK
        prefix = "feedback" if exp1 else "critique"
        units = int(group["turns_after_feedback"].fillna(0).sum()) if exp1 else int(group["revision_identical"].notna().sum())
        flagged = int(group["expert_authored"].fillna(0).sum())
        if exp1:
            excluded = 0
        else:
            revised = exp2[(exp2["setting"] == setting) & (exp2["response_type"] == "revised")] if not exp2.empty else exp2
            excluded = int((revised["reason"] == EXPERT_AUTHORED).sum()) if not revised.empty else 0
        words = group[f"{prefix}_words"].dropna()
        most = group[f"{prefix}_words_max" if exp1 else f"{prefix}_words"].dropna()
        limit = group[f"{prefix}_word_limit"].dropna()
        reasks, over = group[f"{prefix}_reasks"].dropna(), group[f"{prefix}_over_limit"].dropna()
        rows.append({
            "task": task, "setting": setting, "condition": condition or "–",
            "unit": "therapist turns after feedback" if exp1 else "revisions",
            "units": units, "expert_authored": flagged, "share": flagged / units if units else float("nan"),
            "excluded": excluded, "expert words (mean)": words.mean() if len(words) else float("nan"),
            "expert words (max)": most.max() if len(most) else float("nan"),
            "word limit": limit.max() if len(limit) else float("nan"),
            "re-asks": int(reasks.sum()) if len(reasks) else float("nan"),
            "kept over limit": int(over.sum()) if len(over) else float("nan"),
        })
    return pd.DataFrame(rows, columns=columns)


def warnings_for(rates: pd.DataFrame, share: float) -> list[str]:
    """A warning per (task, setting) whose failing share of units is above ``share``."""
    out = []
    for (task, setting), group in rates.groupby(["task", "setting"], sort=True):
        units, failed = int(group["units"].sum()), int(group["fail"].sum())
        if units and failed / units > share:
            out.append(f"**Simulation integrity warning** [{task}, {setting}]: {failed} of {units} "
                       f"{group['unit'].iloc[0]} ({failed / units:.0%}) fail the integrity check (more than "
                       f"{share:.0%}): echoes, role breaks, placeholders or restated feedback. Read the dialogues "
                       "(`inspect view`) before trusting any number below.")
    return out


def build(frames: Frames, options: ReportOptions) -> SectionResult:
    """The Simulation integrity section (see the module docstring)."""
    del options
    config = load_integrity_config()
    frame = frames.ratings.get(INTEGRITY, pd.DataFrame())
    section = SectionResult(title="Simulation integrity")
    rates = integrity_rates(frame)
    section.tables["integrity_rates.csv"] = rates
    section.tables["integrity_samples.csv"] = frame
    authorship = expert_authorship(frame, frames.exp2)
    section.tables["expert_authorship.csv"] = authorship
    section.figures["figure_integrity"] = integrity_figure(rates)
    section.warnings = warnings_for(rates, config.report_warning_share)
    for task, group in rates.groupby("task", sort=True) if not rates.empty else ():
        total, failed = int(group["units"].sum()), int(group["fail"].sum())
        if total:
            section.summary.append(f"Simulation integrity [{task}]: {failed} of {total} {group['unit'].iloc[0]} "
                                   f"fail ({failed / total:.0%})")
    section.markdown = [
        "Replies that arrived but are wrong for their role (`simulation_integrity` scorer, no model call; "
        f"thresholds and phrase lists in `psysim/data/integrity.yaml`, version {config.version}). A session "
        "fails when a turn of it is flagged (echo, role break, placeholder) or the Expert feedback read before "
        "it is flagged (e.g. it restates the transcript); it and every later session of its course are *excluded* from the primary "
        "Experiment 1 statistics (the statistics on all sessions are shown beside them). In Experiment 2 the "
        "rates are reported only, except `expert_authored`: a Therapist revision that copies the Expert's "
        "critique is the Expert's response, so its `revised` rating is left out of the Experiment 2 statistics "
        "(missing with reason `expert_authored`); an identical revision is information, not a failure. `flagged replies` is the "
        "share of all replies flagged (the offline check's gate); a role's flag rate is the mean over samples of "
        "its flagged replies / its replies. Failed calls and truncated turns are counted "
        "from the failure records, not re-detected.", "",
        markdown_table(rates, empty="_no integrity scores in these logs_",
                       caption="Simulation integrity per task, setting and condition"), "",
        f"Warning threshold: more than {config.report_warning_share:.0%} of a setting's units failing "
        "(`report_warning_share`).", "",
    ]
    if not section.warnings:
        section.markdown += ["No setting is above the warning threshold.", ""]
    section.markdown += [
        "**Expert authorship.** A Therapist text that copies the Expert's (`expert_authored`: at least "
        f"{config.expert_authored_max_share:.0%} of its words in runs of {config.expert_authored_ngram}+ words shared "
        "with the Expert's text). Experiment 2: revisions flagged, and their `revised` ratings left out of the "
        "statistics (`excluded`). Experiment 1: therapist turns after Expert feedback that copy it, counted per "
        "condition as information (following the advice is the treatment; never excluded). The Expert's words are "
        "those the Therapist read, against the limit of `psysim/prompts/expert.yaml`; `re-asks` are the Expert's "
        "re-asks for a limit, a written response, missing fields or a cut reply; `kept over limit` are replies "
        "kept over a limit after the last attempt. Empty (–) for logs written before the limits were enforced.", "",
        markdown_table(authorship, empty="_no Experiment 1 or 2 integrity scores in these logs_",
                       caption="Expert authorship per task, setting and condition"), "",
    ]
    return section


SECTION = Section(task=INTEGRITY, title="Simulation integrity", primary_help="no tests (rates only)",
                  default_primary="", build=build)
