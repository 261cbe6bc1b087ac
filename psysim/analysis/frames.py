"""Tidy frames from a directory of Inspect logs, through the log-identity rules of
:mod:`psysim.study.log_series`.

Experiment 1: one row per (setting, condition, persona, run, session) with the rating.
Experiment 2: one row per (setting, snippet, run, response type) with the rating.
Questionnaires (Experiment 1 logs run with ``-T questionnaires=...``): one row per (setting,
condition, persona, run, session, measure) with the score, a measure being
``<instrument key>_<scale>`` (``srs_total``, ``wai_bond``).
A *setting* is the models bound to the roles plus every task argument that differs between
logs of one task (except the compared factor, e.g. ``condition``, and arguments that only
name a run, e.g. ``seed``), plus the prompt provenance when it differs between logs of one task
(task version and input file hashes, :mod:`psysim.provenance`; never pooled, older logs are
"no provenance"), so runs that are not comparable are analysed apart. A *run* is one
epoch of one log (``<eval_id>:<epoch>``), or of a sharded study: one epoch across its shards. Missing ratings stay in the frames as NaN
(``missing`` is True) with the reason code (``reason``), never dropped.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from inspect_ai.log import (
    EvalSampleSummary,
    read_eval_log_sample,
    read_eval_log_sample_summaries,
)

from psysim.calls.generation import MODEL_CALLS_KEY, ROLES
from psysim.calls.raters import IN_LOOP, REJUDGE_MARK
from psysim.prompts.therapist_styles import DEFAULT_STYLE
from psysim.provenance import split_by_provenance
from psysim.solvers.human_comparison import RESPONSE_TYPES
from psysim.study.log_series import LogEntry, LogSelection, Unreadable, load_selection, log_provenance
from psysim.study.sharding import SHARD_ARG

EXP1_TASK = "iterative_feedback"
EXP2_TASK = "human_comparison"
VALIDITY_TASK = "rater_validity"
INTEGRITY = "simulation_integrity"
"""The integrity scorer's name, and the key of its frame in ``Frames.ratings`` (both tasks)."""

# Task arguments that do not change what a rating means: the compared factor and run labels.
# Questionnaires are asked beside the rating and shown to no one later: they do not change it.
# The joint A/B/C rating is asked after the independent ratings, beside them: it changes neither.
# The shard only says which samples a log holds: shards of one study are merged into its runs.
# The safety judge scores after the course: the course and its ratings are the same with or without it.
NOT_DESIGN_ARGS = frozenset({"condition", "seed", "max_rating_attempts", "questionnaires", "joint_rating", SHARD_ARG,
                             "safety"})

# Task arguments that always separate settings when not at their default (a missing argument, in
# a log written before it existed, is the default): a therapist style is a different design.
SETTING_FACTORS: dict[str, dict[str, str]] = {"iterative_feedback": {"therapist": DEFAULT_STYLE}}

NO_REASON = "unrecorded"  # a missing rating in a log written before reasons were recorded
THINNED = "Key removed from summary (> 1k)"  # Inspect's marker in sample summaries


class UnknownTaskError(ValueError):
    """A log of a task this project does not analyse."""


EXP1_COLUMNS = ["setting", "condition", "persona", "run", "eval_id", "epoch", "session", "sessions", "rating",
                "missing", "reason", "course_status", "ended_reason", "baseline", "therapist", "base_setting",
                "integrity", "integrity_reason"]
EXP2_COLUMNS = ["setting", "snippet", "run", "eval_id", "epoch", "response_type", "rating", "missing", "reason"]
VALIDITY_COLUMNS = ["setting", "snippet", "transcript", "client", "group", "label", "run", "eval_id", "epoch", "rating",
                    "missing", "reason"]
QUESTIONNAIRES = "questionnaires"
"""Name of the questionnaire frame (and its report section): read from Experiment 1 logs."""
JOINT = "joint_rating"
"""Name of the frame of Experiment 2's joint A/B/C ratings (and of their scorer)."""
JOINT_COLUMNS = ["setting", "snippet", "run", "eval_id", "epoch", "response_type", "position", "rating", "missing",
                 "reason"]
AGREEMENT = "rater_agreement"
"""Name of the frame of ratings by rater (in-loop and re-judges) of every task that has them."""
AGREEMENT_COLUMNS = ["task", "setting", "sample", "run", "epoch", "item", "rater", "rating", "missing", "reason"]
QUESTIONNAIRE_COLUMNS = ["setting", "condition", "persona", "run", "eval_id", "epoch", "session", "sessions",
                         "measure", "value", "missing", "reason", "scale_min", "scale_max"]
SAFETY = "safety"
"""Name of the safety frame (and its report section): read from Experiment 1 logs run with ``-T safety=true``."""
SAFETY_SCORER = "safety_rubric"
SAFETY_COLUMNS = ["setting", "condition", "persona", "risk_level", "run", "eval_id", "epoch", "session", "sessions",
                  "safety", "harmful", "unsafe", "missing", "reason", "judge"]
JUDGE_CHECK_TASK = "safety_judge_check"
JUDGE_CHECK_COLUMNS = ["setting", "response", "scenario", "scenario_risk", "response_class", "run", "eval_id", "epoch", "hit",
                       "safety", "harmful", "missing", "reason", "judge"]
JUDGE_ROLE = "safety_judge"
INTEGRITY_VALUES = ["replies", "flagged_replies", "therapist_flag_rate", "client_flag_rate", "expert_flag_rate",
                    "echo", "role_break", "placeholder", "restatement", "expert_authored", "revision_identical",
                    "truncated", "failed_calls", "turns_after_feedback",
                    "critique_words", "critique_word_limit", "critique_reasks", "critique_over_limit",
                    "feedback_words", "feedback_words_max", "feedback_word_limit", "feedback_reasks",
                    "feedback_over_limit"]
"""Keys of the ``simulation_integrity`` score value copied into the integrity frame (NaN when a
log's score lacks one: written before it existed, or not of that experiment)."""
INTEGRITY_COLUMNS = ["task", "setting", "condition", "sample", "run", "units", "failed", "excluded", "flagged",
                     *INTEGRITY_VALUES]
"""One row per scored sample: ``units`` held sessions (Experiment 1) or 1 (a snippet), ``failed``
of them failing integrity, ``excluded`` (failed plus the later sessions of their course)."""
COST = "cost"
"""The cost frame (and its report section): tokens per role and model calls, every task."""
COST_COLUMNS = ["task", "setting", "condition", "sample", "run", "role", "calls", "prompt_tokens",
                "completion_tokens"]
"""One row per (sample, role) with that role's tokens; ``calls`` (every model call of the sample,
the solver's and the scorers', see :func:`cost_rows`) is on the sample's first row only, so that
it sums."""


@dataclass
class Frames:
    selection: LogSelection
    evals: pd.DataFrame
    """One row per log read: task, setting, condition, status, use (used/superseded/unreadable)."""
    ratings: dict[str, pd.DataFrame] = field(default_factory=dict)
    """Per task name, the tidy ratings frame."""

    @property
    def exp1(self) -> pd.DataFrame:
        return self.ratings.get(EXP1_TASK, pd.DataFrame(columns=EXP1_COLUMNS))

    @property
    def exp2(self) -> pd.DataFrame:
        return self.ratings.get(EXP2_TASK, pd.DataFrame(columns=EXP2_COLUMNS))

    @property
    def exp1_runs(self) -> pd.DataFrame:
        """Experiment 1, one row per persona-run: final rating and the slope across sessions."""
        return run_summary(self.exp1)


# Per task: a function from (log entry, its sample summaries, its setting) to tidy rows.
RowBuilder = Callable[[LogEntry, list[EvalSampleSummary], str], list[dict[str, Any]]]


def read_frames(log_dir: str | Path, skip_unknown: bool = False, quiet: bool = True) -> Frames:
    """Read the logs under ``log_dir`` (as :func:`psysim.study.log_series.select_logs` chooses them).

    Raises:
        FileNotFoundError: no directory, or no Inspect log in it.
        UnknownTaskError: logs of tasks without a row builder (unless ``skip_unknown``).
    """
    del quiet  # kept for the CLI's signature; reading sample summaries needs no progress bar
    selection = load_selection(log_dir)
    unknown = [e for e in selection.used if e.key.task not in ROW_BUILDERS]
    if unknown and not skip_unknown:
        listing = "; ".join(f"{e.name}: task '{e.key.task}'" for e in unknown)
        raise UnknownTaskError(
            f"{log_dir}: logs of tasks this report does not know ({listing}); expected "
            f"{' or '.join(ROW_BUILDERS)}. Move them away or pass --skip-unknown."
        )
    known = [e for e in selection.used if e.key.task in ROW_BUILDERS]
    settings_and_bases = _settings_and_bases(known)
    settings = {path: pair[0] for path, pair in settings_and_bases.items()}
    rows: dict[str, list[dict[str, Any]]] = {}
    used: list[LogEntry] = []
    for entry in known:
        try:
            summaries = read_eval_log_sample_summaries(entry.path)
            new = {entry.key.task: ROW_BUILDERS[entry.key.task](entry, summaries, settings[entry.path])}
            for row in new[entry.key.task]:  # the setting without its factors, to compare settings that differ only there
                if "base_setting" in row:
                    row["base_setting"] = settings_and_bases[entry.path][1]
            for frame, (tasks, builder) in EXTRA_ROW_BUILDERS.items():
                if entry.key.task in tasks:
                    new[frame] = builder(entry, summaries, settings[entry.path])
            # the integrity frame holds rows of every task that has the scorer
            new[INTEGRITY] = integrity_rows(entry, summaries, settings[entry.path])
            new[COST] = cost_rows(entry, summaries, settings[entry.path])
        except Exception as ex:  # a log whose header reads but whose samples do not
            selection.unreadable.append(Unreadable(entry.path, f"samples unreadable: {type(ex).__name__}: {ex}"))
            continue
        used.append(entry)
        for frame, frame_rows in new.items():
            if frame_rows or frame == entry.key.task:  # a further frame only when the log has its rows
                rows.setdefault(frame, []).extend(frame_rows)
    selection.used = used + [e for e in selection.used if e.key.task not in ROW_BUILDERS]
    ratings = {name: pd.DataFrame(frame_rows, columns=COLUMNS[name]) for name, frame_rows in rows.items()}
    return Frames(selection=selection, evals=_evals_table(selection, settings), ratings=ratings)


def _evals_table(selection: LogSelection, settings: dict[str, str]) -> pd.DataFrame:
    rows = []
    for entry in selection.used:
        rows.append(_eval_row(entry, settings, "used" if entry.complete else "used (incomplete: partial run)"))
    for entry, by in selection.superseded:
        rows.append(_eval_row(entry, settings, f"superseded by {by.name}"))
    for dup in selection.duplicates:
        rows.append(_eval_row(dup.entry, settings, f"duplicate of {dup.kept.name} (same eval id"
                                                  + (", different contents)" if dup.differs else ")")))
    for bad in selection.unreadable:
        rows.append({"log": bad.name, "task": "", "setting": "", "condition": "", "status": "unreadable",
                     "use": f"skipped: {bad.reason}", "total_samples": None, "completed_samples": None, "eval_id": "",
                     "provenance": "", "git_commit": ""})
    return pd.DataFrame(rows, columns=["log", "task", "setting", "condition", "status", "use", "total_samples",
                                       "completed_samples", "eval_id", "provenance", "git_commit"])


def _eval_row(entry: LogEntry, settings: dict[str, str], use: str) -> dict[str, Any]:
    results = entry.header.results
    return {"log": entry.name, "task": entry.key.task, "setting": settings.get(entry.path, ""),
            "condition": json.loads(entry.key.arg("condition", "null") or "null"), "status": entry.status,
            "use": use, "total_samples": results.total_samples if results else None,
            "completed_samples": results.completed_samples if results else None, "eval_id": entry.eval_id,
            "provenance": entry.key.provenance, "git_commit": (log_provenance(entry.header) or {}).get("git_commit") or ""}


def _models(entry: LogEntry) -> str:
    """The model behind each role ("therapist=A client=B expert=C"); unbound roles use the model."""
    roles = dict(entry.key.model_roles)
    models = {role: roles.get(role, entry.key.model) for role in ROLES}
    if len(set(models.values())) == 1:
        return models["therapist"]
    return " ".join(f"{role}={model}" for role, model in models.items())


def _settings(entries: list[LogEntry]) -> dict[str, str]:
    """Per log path: models, plus " [arg=value ...]" for design arguments that differ within the
    task and for :data:`SETTING_FACTORS` not at their default."""
    return {path: setting for path, (setting, _) in _settings_and_bases(entries).items()}


def factor_value(entry: LogEntry, name: str, default: str) -> str:
    """A :data:`SETTING_FACTORS` argument's value in a log (its default when absent)."""
    raw = entry.key.arg(name)
    return default if raw is None else str(json.loads(raw))


def _settings_and_bases(entries: list[LogEntry]) -> dict[str, tuple[str, str]]:
    """Per log path: (setting, base setting); the base leaves the setting factors out, so that
    settings differing only in a factor (e.g. the therapist style) can be compared."""
    settings: dict[str, tuple[str, str]] = {}
    by_task: dict[str, list[LogEntry]] = {}
    for entry in entries:
        by_task.setdefault(entry.key.task, []).append(entry)
    for task, members in by_task.items():
        factors = SETTING_FACTORS.get(task, {})
        names = sorted({name for e in members for name, _ in e.key.task_args} - NOT_DESIGN_ARGS - set(factors))
        differing = [n for n in names if len({e.key.arg(n) for e in members}) > 1]
        labels = {}
        for group in _setting_groups(members, differing, factors).values():
            labels |= split_by_provenance({e.path: (e.header.eval.task_version, log_provenance(e.header))
                                           for e in group}).labels
        for entry in members:
            base = [f"{n}={entry.key.arg(n)}" for n in differing]
            if labels[entry.path]:  # another prompt, persona or rubric file: another setting, never pooled
                base.append(f"provenance={labels[entry.path]}")
            extra = [f"{n}={v}" for n, d in factors.items() if (v := factor_value(entry, n, d)) != d]
            settings[entry.path] = (_with_args(_models(entry), base + extra), _with_args(_models(entry), base))
    return settings


def _setting_groups(members: list[LogEntry], differing: list[str], factors: dict[str, str]) -> dict[str, list[LogEntry]]:
    """Logs of one task by their setting before provenance is considered."""
    groups: dict[str, list[LogEntry]] = {}
    for entry in members:
        key = _with_args(_models(entry), [f"{n}={entry.key.arg(n)}" for n in differing]
                         + [f"{n}={v}" for n, d in factors.items() if (v := factor_value(entry, n, d)) != d])
        groups.setdefault(key, []).append(entry)
    return groups


def provenance_notes(entries: list[LogEntry]) -> list[str]:
    """Per setting that the prompt provenance divides: which inputs differ (for the report's log list)."""
    notes = []
    by_task: dict[str, list[LogEntry]] = {}
    for entry in entries:
        by_task.setdefault(entry.key.task, []).append(entry)
    for task, members in sorted(by_task.items()):
        factors = SETTING_FACTORS.get(task, {})
        names = sorted({name for e in members for name, _ in e.key.task_args} - NOT_DESIGN_ARGS - set(factors))
        differing = [n for n in names if len({e.key.arg(n) for e in members}) > 1]
        for setting, group in sorted(_setting_groups(members, differing, factors).items()):
            split = split_by_provenance({e.path: (e.header.eval.task_version, log_provenance(e.header)) for e in group})
            if split.differing:
                count = len(set(split.labels.values()))
                notes.append(f"{task} [{setting}]: {count} provenances (differ in: {', '.join(split.differing)}); "
                             "their logs are analysed as different settings, never pooled")
    return notes


def _with_args(models: str, args: list[str]) -> str:
    return models + (f" [{' '.join(args)}]" if args else "")


def _rating(value: Any) -> float:
    if value is None or isinstance(value, str):
        return float("nan")
    return float("nan") if isinstance(value, float) and math.isnan(value) else float(value)


def reason_code(text: Any) -> str:
    """The code of a ``missing_reasons`` entry: the text before the first ':'."""
    return str(text).split(":", 1)[0].strip() or NO_REASON


SAMPLE_BULK = {"events", "messages", "attachments", "store", "timelines"}
"""Fields of a full sample that a re-read of its scores skips (the dialogue is most of a sample)."""


def _score(entry: LogEntry, summary: EvalSampleSummary, scorer: str,
           needs: Collection[str] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(value, metadata) of one scorer's score. Metadata keys the summary left out (over 1k) are
    re-read from the full sample only when the caller ``needs`` one of them (``None``: any key);
    the others keep Inspect's marker. A 450-persona study has 6,750 samples: re-reading each for
    a key no row uses made the report's time mostly log reading."""
    score = (summary.scores or {}).get(scorer)
    if score is None:
        return {}, {}
    value = score.value if isinstance(score.value, dict) else {}
    metadata = dict(score.metadata or {})
    if any(v == THINNED and (needs is None or k in needs) for k, v in metadata.items()):
        sample = read_eval_log_sample(entry.path, id=summary.id, epoch=summary.epoch, exclude_fields=SAMPLE_BULK)
        full = sample.scores.get(scorer) if sample.scores else None
        metadata = dict(full.metadata or {}) if full is not None else metadata
    return value, metadata


def _sample_failure(summary: EvalSampleSummary) -> str:
    if summary.error:
        return f"sample_error: {str(summary.error).splitlines()[0][:200]}"
    return "not_scored: the sample has no score (it did not finish)"


EXP1_NEEDS = ("missing_reasons", "course_status", "ended")
"""Metadata keys of ``client_satisfaction`` that :func:`exp1_rows` reads (not the per-session records)."""
VALIDITY_NEEDS = ("missing_reasons", "transcript_id", "client_id", "group", "label_value")


def exp1_rows(entry: LogEntry, summaries: list[EvalSampleSummary], setting: str) -> list[dict[str, Any]]:
    """Experiment 1 rows; a sample that errored before scoring contributes missing sessions."""
    planned = int(json.loads(entry.key.arg("sessions", "6") or "6"))
    baseline = float(json.loads(entry.key.arg("baseline", "30") or "30"))
    condition = json.loads(entry.key.arg("condition", '"expert"') or '"expert"')
    therapist = factor_value(entry, "therapist", DEFAULT_STYLE)
    rows = []
    for summary in summaries:
        value, metadata = _score(entry, summary, "client_satisfaction", EXP1_NEEDS)
        verdicts = {v["session"]: v for v in _score(entry, summary, INTEGRITY, ("sessions",))[1].get("sessions") or []}
        reasons = metadata.get("missing_reasons") or {}
        scored = any(k.startswith("session_") for k in value)
        ended = metadata.get("ended")
        ended_reason = reason_code(ended.get("reason", "")) if isinstance(ended, dict) else ""
        for session in range(1, planned + 1):
            key = f"session_{session}"
            rating, missing, reason = _value_and_reason(value, key, reasons, scored, summary)
            rows.append({
                "setting": setting, "condition": condition, "persona": str(summary.id),
                "run": entry.run(summary.epoch), "eval_id": entry.eval_id, "epoch": int(summary.epoch),
                "session": session, "sessions": planned, "rating": rating, "missing": missing, "reason": reason,
                "course_status": metadata.get("course_status", "") if scored else "not_scored",
                "ended_reason": ended_reason, "baseline": baseline, "therapist": therapist,
                "base_setting": setting,  # replaced by read_frames (it knows every log's setting)
                # "" when the log has no integrity score (written before the scorer existed)
                "integrity": verdicts.get(session, {}).get("status", ""),
                "integrity_reason": verdicts.get(session, {}).get("reason") or "",
            })
    # Samples the log planned but never wrote (a cancelled or crashed run) are not invented:
    # the report counts them from the log header as not run.
    return rows


def _missing_reason(key: str, reasons: object, scored: bool, summary: EvalSampleSummary) -> str:
    """The reason code of a missing value: the scorer's ``missing_reasons`` entry; else
    ``NO_REASON`` for a scored sample (a log from before reasons were recorded), or why the
    sample has no score at all."""
    if isinstance(reasons, dict) and key in reasons:
        return reason_code(reasons[key])
    return NO_REASON if scored else reason_code(_sample_failure(summary))


RATING_SCALE = (0.0, 100.0)
NO_SCALE = (-math.inf, math.inf)
OUT_OF_RANGE = "out_of_range"
"""Reason code of a value outside its scale (e.g. a rating of 150 in an edited log): bad input,
kept out of every statistic and counted with the missing values."""


def _value_and_reason(value: dict[str, Any], key: str, reasons: object, scored: bool,
                      summary: EvalSampleSummary, scale: tuple[float, float] = RATING_SCALE) -> tuple[float, bool, str]:
    """``value[key]`` as a number (NaN when absent or outside ``scale``), whether it is missing,
    and if so its reason code."""
    number = _rating(value.get(key))
    if not math.isnan(number) and not (scale[0] <= number <= scale[1]):  # NaN limits: no known scale
        return float("nan"), True, OUT_OF_RANGE
    missing = math.isnan(number)
    return number, missing, _missing_reason(key, reasons, scored, summary) if missing else ""


EXPERT_AUTHORED = "expert_authored"
"""Reason code of an Experiment 2 ``revised`` rating left out because the Therapist's revision
copies the Expert's critique (integrity flag ``expert_authored``): it would rate the Expert."""


def exp2_rows(entry: LogEntry, summaries: list[EvalSampleSummary], setting: str) -> list[dict[str, Any]]:
    rows = []
    for summary in summaries:
        value, metadata = _score(entry, summary, "client_rating", ("missing_reasons",))
        reasons = metadata.get("missing_reasons") or {}
        scored = bool(value)
        _, integrity = _score(entry, summary, INTEGRITY, ("flags",))
        copied = any(flag.get("kind") == EXPERT_AUTHORED for flag in integrity.get("flags") or [])
        for kind in RESPONSE_TYPES:
            rating, missing, reason = _value_and_reason(value, kind, reasons, scored, summary)
            if kind == "revised" and copied and not missing:  # a rating already missing keeps its reason
                rating, missing, reason = float("nan"), True, EXPERT_AUTHORED
            rows.append({
                "setting": setting, "snippet": str(summary.id), "run": entry.run(summary.epoch),
                "eval_id": entry.eval_id, "epoch": int(summary.epoch), "response_type": kind,
                "rating": rating, "missing": missing, "reason": reason,
            })
    return rows


def validity_rows(entry: LogEntry, summaries: list[EvalSampleSummary], setting: str) -> list[dict[str, Any]]:
    """Rater validity: one row per (snippet, run) with its group, transcript and rating."""
    rows = []
    for summary in summaries:
        value, metadata = _score(entry, summary, "human_response_rating", VALIDITY_NEEDS)
        reasons = metadata.get("missing_reasons") or {}
        rating, missing, reason = _value_and_reason(value, "rating", reasons, bool(value), summary)
        snippet = str(summary.id)
        rows.append({
            "setting": setting, "snippet": snippet,
            # a sample that failed before scoring has no score metadata: its id is "<transcript>_t<turn>"
            "transcript": str(metadata.get("transcript_id", snippet.rsplit("_t", 1)[0])),
            "client": str(metadata.get("client_id", "")), "group": metadata.get("group", (summary.metadata or {}).get("group", "")),
            "label": metadata.get("label_value", ""), "run": entry.run(summary.epoch),
            "eval_id": entry.eval_id, "epoch": int(summary.epoch), "rating": rating, "missing": missing, "reason": reason,
        })
    return rows


def integrity_rows(entry: LogEntry, summaries: list[EvalSampleSummary], setting: str) -> list[dict[str, Any]]:
    """One row per sample with a ``simulation_integrity`` score (samples without one are left out)."""
    condition = json.loads(entry.key.arg("condition", "null") or "null")
    rows = []
    for summary in summaries:
        value, _ = _score(entry, summary, INTEGRITY, ())
        if not value:
            continue
        exp1 = "held_sessions" in value
        rows.append({
            "task": entry.key.task, "setting": setting, "condition": condition or "", "sample": str(summary.id),
            "run": entry.run(summary.epoch),
            "units": int(value["held_sessions"]) if exp1 else 1,
            "failed": int(value["sessions_failed"]) if exp1 else int(value.get("flagged", 0)),
            "excluded": int(value["sessions_excluded"]) if exp1 else int(value.get("flagged", 0)),
            "flagged": int(value.get("flagged", 0)),
            **{key: _rating(value.get(key)) for key in INTEGRITY_VALUES},
        })
    return rows


def cost_rows(entry: LogEntry, summaries: list[EvalSampleSummary], setting: str) -> list[dict[str, Any]]:
    """Tokens per role (Inspect's ``role_usage``) and model calls of every sample, as
    :data:`COST_COLUMNS`. Prompt tokens include those served from a prefix cache.

    Calls are Inspect's ``turn_count`` (the solver's calls) plus the calls each scorer recorded
    (:data:`psysim.calls.generation.MODEL_CALLS_KEY`). A role left unbound falls back to the main model
    and Inspect then counts its tokens only per model: that remainder is the role
    :data:`UNBOUND_ROLE`, so an unbound run's cost is not reported as zero."""
    condition = json.loads(entry.key.arg("condition", "null") or "null") or ""
    rows = []
    for summary in summaries:
        usage = {role: _token_counts(tokens) for role, tokens in (summary.role_usage or {}).items()}
        bound_prompt, bound_completion = (sum(counts[i] for counts in usage.values()) for i in (0, 1))
        model_prompt, model_completion = _model_totals(summary)
        unbound = (max(model_prompt - bound_prompt, 0), max(model_completion - bound_completion, 0))
        if any(unbound):
            usage[UNBOUND_ROLE] = unbound
        calls = (summary.turn_count or 0) + _scorer_calls(summary)
        for index, role in enumerate(sorted(usage) or [""]):
            prompt, completion = usage.get(role, (0, 0))
            rows.append({
                "task": entry.key.task, "setting": setting, "condition": condition, "sample": str(summary.id),
                "run": entry.run(summary.epoch), "role": role, "calls": calls if index == 0 else 0,
                "prompt_tokens": prompt, "completion_tokens": completion,
            })
    return rows


UNBOUND_ROLE = "(unbound roles: main model)"


def _token_counts(tokens: Any) -> tuple[int, int]:
    """(prompt, completion) tokens of one ``ModelUsage``; prompt includes cache reads and writes."""
    prompt = tokens.input_tokens + (tokens.input_tokens_cache_read or 0) + (tokens.input_tokens_cache_write or 0)
    return prompt, tokens.output_tokens


def _model_totals(summary: EvalSampleSummary) -> tuple[int, int]:
    counts = [_token_counts(tokens) for tokens in (summary.model_usage or {}).values()]
    return sum(c[0] for c in counts), sum(c[1] for c in counts)


def _scorer_calls(summary: EvalSampleSummary) -> int:
    total = 0
    for score in (summary.scores or {}).values():
        calls = (score.metadata or {}).get(MODEL_CALLS_KEY)
        if isinstance(calls, dict):
            total += sum(int(n) for n in calls.values())
    return total


def apply_integrity(exp1: pd.DataFrame, values: tuple[str, ...] = ("rating",)) -> pd.DataFrame:
    """Experiment 1 ratings of the sessions that pass integrity: a session that fails, and every
    later session of its course (``integrity`` ``fail`` / ``excluded``), becomes missing with
    its reason code (``integrity`` / ``integrity_upstream``). A rating already missing keeps
    its own reason. ``values``: the columns made missing (another measure's, see
    :func:`measure_with_integrity`)."""
    out = exp1.copy()
    drop = out["integrity"].isin(["fail", "excluded"]) & ~out["missing"].astype(bool)
    out.loc[drop, list(values)] = float("nan")
    out.loc[drop, "missing"] = True
    out.loc[drop, "reason"] = out.loc[drop, "integrity_reason"].map(reason_code)
    return out


SESSION_KEYS = ["setting", "condition", "persona", "run", "session"]


def measure_with_integrity(measure: pd.DataFrame, exp1: pd.DataFrame, values: tuple[str, ...]) -> pd.DataFrame:
    """A further per-session measure of Experiment 1 (questionnaire scores, safety scores) with
    the exclusions of :func:`apply_integrity`: its ``values`` in a session that fails integrity,
    or comes after one in its course, are missing with the integrity reason. Beside them, the
    session's 0-100 ``rating`` after the same exclusions (NaN if missing)."""
    checked = apply_integrity(exp1)[SESSION_KEYS + ["integrity", "integrity_reason", "rating"]]
    out = measure.drop(columns=["rating"], errors="ignore").merge(checked.drop_duplicates(SESSION_KEYS),
                                                                   on=SESSION_KEYS, how="left")
    return apply_integrity(out, values).drop(columns=["integrity", "integrity_reason"])


def judge_model(entry: LogEntry) -> str:
    """The model behind the ``safety_judge`` role (the main model when the role is unbound)."""
    return dict(entry.key.model_roles).get(JUDGE_ROLE, entry.key.model)


def judge_check_rows(entry: LogEntry, summaries: list[EvalSampleSummary], setting: str) -> list[dict[str, Any]]:
    """Safety judge check: one row per (scripted response, run) with its class and the judge's hit."""
    judge = judge_model(entry)
    rows = []
    for summary in summaries:
        value, metadata = _score(entry, summary, "safety_judge_rating", ("missing_reasons", "scenario", "response_class"))
        reasons = metadata.get("missing_reasons") or {}
        hit, missing, reason = _value_and_reason(value, "hit", reasons, bool(value), summary, NO_SCALE)
        sample_meta = summary.metadata or {}
        rows.append({
            # the setting names the judge: it is the model being checked
            "setting": setting if judge == entry.key.model else f"{setting} [{JUDGE_ROLE}={judge}]",
            "response": str(summary.id), "scenario": metadata.get("scenario", sample_meta.get("scenario", "")),
            "response_class": metadata.get("response_class", sample_meta.get("response_class", "")),
            "scenario_risk": metadata.get("scenario_risk", sample_meta.get("scenario_risk", "disclosure")),
            "run": entry.run(summary.epoch), "eval_id": entry.eval_id, "epoch": int(summary.epoch),
            "hit": hit, "safety": _rating(value.get("safety")), "harmful": _rating(value.get("harmful")),
            "missing": missing, "reason": reason,
            "judge": judge,
        })
    return rows


ROW_BUILDERS: dict[str, RowBuilder] = {EXP1_TASK: exp1_rows, EXP2_TASK: exp2_rows, VALIDITY_TASK: validity_rows,
                                       JUDGE_CHECK_TASK: judge_check_rows}
COLUMNS = {EXP1_TASK: EXP1_COLUMNS, EXP2_TASK: EXP2_COLUMNS, VALIDITY_TASK: VALIDITY_COLUMNS,
           QUESTIONNAIRES: QUESTIONNAIRE_COLUMNS, INTEGRITY: INTEGRITY_COLUMNS, COST: COST_COLUMNS,
           JOINT: JOINT_COLUMNS, AGREEMENT: AGREEMENT_COLUMNS, SAFETY: SAFETY_COLUMNS,
           JUDGE_CHECK_TASK: JUDGE_CHECK_COLUMNS}
"""Tasks the report reads; a new task adds its row builder here and its section in
:mod:`psysim.analysis.sections`."""


_MEASURE_KEY = re.compile(r"^(?P<measure>[a-z][a-z0-9_]*)_s(?P<session>\d+)$")


def questionnaire_rows(entry: LogEntry, summaries: list[EvalSampleSummary], setting: str) -> list[dict[str, Any]]:
    """Rows of the ``client_questionnaires`` scorer (none for a log run without questionnaires).

    The measures are those the log's scored samples report; a sample without that score (it
    errored before scoring) contributes missing rows with the reason, as in Experiment 1.
    """
    planned = int(json.loads(entry.key.arg("sessions", "6") or "6"))
    condition = json.loads(entry.key.arg("condition", '"expert"') or '"expert"')
    scored = [(summary, *_score(entry, summary, "client_questionnaires", ("missing_reasons", "scale_ranges"))) for summary in summaries]
    measures: dict[str, list[float]] = {}
    for _, value, metadata in scored:
        for key in value:
            match = _MEASURE_KEY.match(key)
            if match:
                ranges = metadata.get("scale_ranges")
                limits = ranges.get(match["measure"]) if isinstance(ranges, dict) else None
                measures.setdefault(match["measure"], list(limits) if limits else [math.nan, math.nan])
    rows = []
    for summary, value, metadata in scored:
        reasons = metadata.get("missing_reasons") or {}
        for measure, (low, high) in measures.items():
            for session in range(1, planned + 1):
                key = f"{measure}_s{session}"
                score, missing, reason = _value_and_reason(value, key, reasons, bool(value), summary,
                                                           (_limit(low, -math.inf), _limit(high, math.inf)))
                rows.append({
                    "setting": setting, "condition": condition, "persona": str(summary.id),
                    "run": entry.run(summary.epoch), "eval_id": entry.eval_id, "epoch": int(summary.epoch),
                    "session": session, "sessions": planned, "measure": measure, "value": score, "missing": missing,
                    "reason": reason, "scale_min": low, "scale_max": high,
                })
    return rows


def out_of_range_lines(frame: pd.DataFrame, keys: list[str], what: str) -> list[str]:
    """Report lines naming each value kept out as outside its scale (reason ``out_of_range``)."""
    bad = frame[frame["reason"] == OUT_OF_RANGE] if "reason" in frame else frame.iloc[0:0]
    if bad.empty:
        return []
    named = "; ".join(", ".join(f"{k} {row[k]}" for k in keys) for _, row in bad.head(20).iterrows())
    more = f" (and {len(bad) - 20} more)" if len(bad) > 20 else ""
    return [f"**Bad input**: {len(bad)} {what} outside the scale kept out of every statistic (reason "
            f"`{OUT_OF_RANGE}`): {named}{more}.", ""]


def _limit(value: Any, default: float) -> float:
    number = _rating(value)
    return default if math.isnan(number) else number


def joint_rows(entry: LogEntry, summaries: list[EvalSampleSummary], setting: str) -> list[dict[str, Any]]:
    """Experiment 2's joint A/B/C ratings (``-T joint_rating=true``): one row per (snippet, run,
    response type) with the position it was shown in; none for a log run without them."""
    rows = []
    for summary in summaries:
        value, metadata = _score(entry, summary, JOINT, ("missing_reasons", "order"))
        if not value:
            continue
        reasons = metadata.get("missing_reasons") or {}
        for position, kind in enumerate(metadata.get("order") or [], start=1):
            rating, missing, reason = _value_and_reason(value, kind, reasons, True, summary)
            rows.append({
                "setting": setting, "snippet": str(summary.id), "run": entry.run(summary.epoch),
                "eval_id": entry.eval_id, "epoch": int(summary.epoch), "response_type": kind, "position": position,
                "rating": rating, "missing": missing,
                "reason": reason,
            })
    return rows


def safety_rows(entry: LogEntry, summaries: list[EvalSampleSummary], setting: str) -> list[dict[str, Any]]:
    """Rows of the ``safety_rubric`` scorer, one per (persona-run, session); none for a log run
    without ``-T safety=true``. A sample without the score (it errored before scoring) gives
    missing rows with the reason, as in Experiment 1."""
    scored = [(summary, *_score(entry, summary, SAFETY_SCORER, ("missing_reasons",))) for summary in summaries]
    if not any(value for _, value, _ in scored):
        return []
    planned = int(json.loads(entry.key.arg("sessions", "6") or "6"))
    condition = json.loads(entry.key.arg("condition", '"expert"') or '"expert"')
    judge = judge_model(entry)
    rows = []
    for summary, value, metadata in scored:
        reasons = metadata.get("missing_reasons") or {}
        for session in range(1, planned + 1):
            safety, missing, reason = _value_and_reason(value, f"safety_s{session}", reasons, bool(value), summary,
                                                         NO_SCALE)
            harmful = _rating(value.get(f"harmful_s{session}"))
            rows.append({
                "setting": setting, "condition": condition, "persona": str(summary.id),
                # logs before issue 26 carry no level (nor unsafe_s<k>: derived from harmful)
                "risk_level": metadata.get("risk_level", "unspecified"),
                "run": entry.run(summary.epoch), "eval_id": entry.eval_id, "epoch": int(summary.epoch),
                "session": session, "sessions": planned, "safety": safety,
                "harmful": harmful, "unsafe": harmful if harmful != harmful else float(harmful > 0), "missing": missing,
                "reason": reason,
                "judge": judge,
            })
    return rows


IN_LOOP_SCORES = {EXP1_TASK: "client_satisfaction", EXP2_TASK: "client_rating", VALIDITY_TASK: "human_response_rating"}
"""Per task, the scorer whose ratings were made during the run (rater ``in_loop``)."""
_IN_LOOP_KEY = {EXP1_TASK: re.compile(r"^session_\d+$"), EXP2_TASK: re.compile(rf"^({'|'.join(RESPONSE_TYPES)})$"),
                VALIDITY_TASK: re.compile(r"^rating$")}


def agreement_rows(entry: LogEntry, summaries: list[EvalSampleSummary], setting: str) -> list[dict[str, Any]]:
    """Ratings by rater: the in-loop ratings (rater ``in_loop``) and every re-judge score
    (``scorers/rejudge.py``, rater = its label), one row per (sample, run, item key, rater).

    Only for a log with something to compare: a re-judge, or more than one epoch of a task whose
    items are the same text in every epoch (test-retest; not Experiment 1, whose dialogues are new).
    """
    task = entry.key.task
    rejudged = {name for s in summaries for name, score in (s.scores or {}).items()
                if isinstance(score.metadata, dict) and score.metadata.get(REJUDGE_MARK)}
    if not rejudged and (task == EXP1_TASK or len({s.epoch for s in summaries}) < 2):
        return []
    rows = []
    for summary in summaries:
        base = {"task": task, "setting": setting, "sample": str(summary.id), "run": entry.run(summary.epoch),
                "epoch": int(summary.epoch)}
        value, metadata = _score(entry, summary, IN_LOOP_SCORES[task], ("missing_reasons",))
        reasons = metadata.get("missing_reasons") or {}
        for key in sorted(k for k in value if _IN_LOOP_KEY[task].match(k)):
            rating, missing, reason = _value_and_reason(value, key, reasons, True, summary)
            rows.append({**base, "item": key, "rater": IN_LOOP, "rating": rating, "missing": missing, "reason": reason})
        for name in sorted(rejudged & set(summary.scores or {})):
            value, metadata = _score(entry, summary, name, ("missing_reasons", "rater"))
            rater = str(metadata.get("rater", name))
            reasons = metadata.get("missing_reasons") or {}
            for key in sorted(value):
                rating, missing, reason = _value_and_reason(value, key, reasons, True, summary)
                rows.append({**base, "item": key.removeprefix(f"{rater}_"), "rater": rater, "rating": rating,
                             "missing": missing, "reason": reason})
    return rows


EXTRA_ROW_BUILDERS: dict[str, tuple[tuple[str, ...], RowBuilder]] = {
    QUESTIONNAIRES: ((EXP1_TASK,), questionnaire_rows),
    JOINT: ((EXP2_TASK,), joint_rows),
    AGREEMENT: ((EXP1_TASK, EXP2_TASK, VALIDITY_TASK), agreement_rows),
    SAFETY: ((EXP1_TASK,), safety_rows),
}
"""Further frames read from the logs of some tasks: frame name -> (tasks, row builder)."""


def run_summary(exp1: pd.DataFrame) -> pd.DataFrame:
    """Per persona-run: the final session's rating (NaN if missing), the least-squares slope of
    rating on session over the sessions that have a rating (NaN with fewer than two), the mean
    rating over those sessions (NaN with none), and how many session ratings are missing inside it.
    Vectorised: a 450-persona study has 6750 persona-runs."""
    keys = ["setting", "condition", "persona", "run"]
    columns = [*keys, "final", "slope", "mean", "rated_sessions", "sessions", "missing_sessions"]
    if exp1.empty:
        return pd.DataFrame(columns=columns)
    d = exp1[[*keys, "session", "sessions", "rating", "missing"]].copy()
    d["rated"] = ~d["missing"].astype(bool) & d["rating"].notna()
    d["x"] = d["session"].astype(float).where(d["rated"])
    d["y"] = d["rating"].astype(float).where(d["rated"])
    grouped = d.groupby(keys, sort=True)
    out = grouped.agg(sessions=("sessions", "max"), rows=("rated", "size"), rated_sessions=("rated", "sum"),
                      mean=("y", "mean"))
    d["dx"] = d["x"] - grouped["x"].transform("mean")
    d["dy"] = d["y"] - grouped["y"].transform("mean")
    d["sxy"], d["sxx"] = d["dx"] * d["dy"], d["dx"] ** 2
    sums = d.groupby(keys, sort=True)[["sxy", "sxx"]].sum()
    out["slope"] = (sums["sxy"] / sums["sxx"]).where(sums["sxx"] > 0)
    last = d[d["session"] == d.groupby(keys, sort=True)["sessions"].transform("max")]
    out["final"] = last.groupby(keys, sort=True)["y"].first()  # NaN when the final session is missing
    out["rated_sessions"] = out["rated_sessions"].astype(int)
    out["sessions"] = out["sessions"].astype(int)
    out["missing_sessions"] = (out["rows"] - out["rated_sessions"]).astype(int)
    return out.reset_index()[columns]
