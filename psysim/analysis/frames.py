"""Tidy frames from a directory of Inspect logs.

Experiment 1: one row per (setting, condition, persona, run, session) with the rating.
Experiment 2: one row per (setting, snippet, run, response type) with the rating.
A *setting* is the models bound to the three roles, so runs of different models in one log
directory are kept apart; a *run* is one epoch of one eval (``<eval_id>:<epoch>``).
Missing ratings stay in the frames as NaN (``missing`` is True), never dropped.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from inspect_ai.analysis import evals_df, samples_df
from inspect_ai.log import list_eval_logs

from psysim.generation import ROLES
from solvers.human_comparison import RESPONSE_TYPES

EXP1_TASK = "iterative_feedback"
EXP2_TASK = "human_comparison"
KNOWN_TASKS = (EXP1_TASK, EXP2_TASK)


class UnknownTaskError(ValueError):
    """A log of a task this project does not analyse."""


@dataclass
class Frames:
    evals: pd.DataFrame
    """One row per log: task, setting, condition, status, sample counts."""
    exp1: pd.DataFrame
    exp2: pd.DataFrame

    @property
    def exp1_runs(self) -> pd.DataFrame:
        """Experiment 1, one row per persona-run: final rating and the slope across sessions."""
        return run_summary(self.exp1)


def read_frames(log_dir: str | Path, skip_unknown: bool = False, quiet: bool = True) -> Frames:
    """Read every log under ``log_dir`` into tidy frames."""
    logs = [info.name for info in list_eval_logs(str(log_dir))]
    if not logs:
        raise FileNotFoundError(f"{log_dir}: no Inspect logs found (.eval or .json)")
    evals = evals_df(logs, quiet=quiet)
    evals = evals.assign(task=evals["task_name"].map(_short_task))
    unknown = evals[~evals["task"].isin(KNOWN_TASKS)]
    if len(unknown) and not skip_unknown:
        listing = "; ".join(f"{Path(str(r.log)).name}: task '{r.task_name}'" for r in unknown.itertuples())
        raise UnknownTaskError(
            f"{log_dir}: logs of tasks this report does not know ({listing}); expected "
            f"{' or '.join(KNOWN_TASKS)}. Move them away or pass --skip-unknown."
        )
    evals = evals[evals["task"].isin(KNOWN_TASKS)].copy()
    evals["setting"] = evals.apply(_setting, axis=1) + _design(evals)
    evals["condition"] = evals.get("task_arg_condition", pd.Series(index=evals.index, dtype=object))
    known_logs = list(evals["log"])
    samples = samples_df(known_logs, quiet=quiet) if known_logs else pd.DataFrame()
    if len(samples):
        samples = samples.merge(evals[["eval_id", "task", "setting", "condition"]], on="eval_id")
    exp1 = _exp1(samples[samples["task"] == EXP1_TASK], evals) if len(samples) else _empty_exp1()
    exp2 = _exp2(samples[samples["task"] == EXP2_TASK]) if len(samples) else _empty_exp2()
    keep = ["eval_id", "log", "task", "setting", "condition", "status", "total_samples", "completed_samples"]
    return Frames(evals=evals[[c for c in keep if c in evals]].reset_index(drop=True), exp1=exp1, exp2=exp2)


def _short_task(name: Any) -> str:
    return str(name).split("/")[-1]


def _setting(row: pd.Series) -> str:
    """The model behind each role ("therapist=A client=B expert=C"); unbound roles use ``model``."""
    roles: dict[str, Any] = {}
    raw = row.get("model_roles")
    if isinstance(raw, str) and raw:
        roles = json.loads(raw)
    elif isinstance(raw, dict):
        roles = raw
    models = {role: (roles.get(role) or {}).get("model") or row.get("model") for role in ROLES}
    if len(set(models.values())) == 1:
        return str(models["therapist"])
    return " ".join(f"{role}={model}" for role, model in models.items())


# Task arguments that change what a rating means; logs that differ in them are analysed apart.
DESIGN_ARGS = ("sessions", "turns", "baseline", "temperature", "personas", "guidelines", "generic_feedback",
               "transcripts", "min_words", "context_turns", "reviser", "rating_format")


def _design(evals: pd.DataFrame) -> pd.Series:
    """" [sessions=6 turns=2]" for the design arguments that differ between logs of one task."""
    suffix = pd.Series("", index=evals.index)
    for task, group in evals.groupby("task"):
        for arg in DESIGN_ARGS:
            column = f"task_arg_{arg}"
            if column in group and group[column].astype(str).nunique() > 1:
                suffix.loc[group.index] += f" {arg}=" + group[column].astype(str)
    return suffix.map(lambda s: f" [{s.strip()}]" if s else "")


def _score(raw: Any) -> dict[str, float]:
    if isinstance(raw, str):
        return json.loads(raw)  # Python's json reads the NaN that marks a missing rating
    return raw if isinstance(raw, dict) else {}


def _rating(value: Any) -> float:
    return float("nan") if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def _exp1(samples: pd.DataFrame, evals: pd.DataFrame) -> pd.DataFrame:
    baselines = dict(zip(evals["eval_id"], evals.get("task_arg_baseline", pd.Series(30, index=evals.index))))
    planned = dict(zip(evals["eval_id"], evals.get("task_arg_sessions", pd.Series(6, index=evals.index))))
    rows = []
    for s in samples.itertuples():
        score = _score(getattr(s, "score_client_satisfaction", None))
        sessions = sorted(int(k.split("_")[1]) for k in score if k.startswith("session_"))
        if not sessions:  # an errored or unscored sample: its sessions are missing, not absent
            sessions = list(range(1, int(planned.get(s.eval_id, 6)) + 1))
        for session in sessions:
            rating = _rating(score.get(f"session_{session}"))
            rows.append(
                {
                    "setting": s.setting, "condition": s.condition, "persona": str(s.id),
                    "run": f"{s.eval_id}:{s.epoch}", "eval_id": s.eval_id, "epoch": int(s.epoch),
                    "session": session, "sessions": len(sessions), "rating": rating,
                    "missing": math.isnan(rating), "baseline": float(baselines.get(s.eval_id, 30)),
                }
            )
    return pd.DataFrame(rows) if rows else _empty_exp1()


def _exp2(samples: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for s in samples.itertuples():
        score = _score(getattr(s, "score_client_rating", None))
        for kind in RESPONSE_TYPES:
            rating = _rating(score.get(kind))
            rows.append(
                {
                    "setting": s.setting, "snippet": str(s.id), "run": f"{s.eval_id}:{s.epoch}",
                    "eval_id": s.eval_id, "epoch": int(s.epoch), "response_type": kind,
                    "rating": rating, "missing": math.isnan(rating),
                }
            )
    return pd.DataFrame(rows) if rows else _empty_exp2()


def _empty_exp1() -> pd.DataFrame:
    return pd.DataFrame(columns=["setting", "condition", "persona", "run", "eval_id", "epoch", "session",
                                 "sessions", "rating", "missing", "baseline"])


def _empty_exp2() -> pd.DataFrame:
    return pd.DataFrame(columns=["setting", "snippet", "run", "eval_id", "epoch", "response_type", "rating", "missing"])


def run_summary(exp1: pd.DataFrame) -> pd.DataFrame:
    """Per run: the final session's rating (NaN if missing) and the least-squares slope of
    rating on session over the sessions that have a rating (NaN with fewer than two)."""
    from scipy import stats

    rows = []
    for (setting, condition, persona, run), group in exp1.groupby(["setting", "condition", "persona", "run"], sort=True):
        group = group.sort_values("session")
        final = group[group["session"] == group["sessions"].max()]["rating"]
        rated = group[~group["missing"]]
        slope = stats.linregress(rated["session"], rated["rating"]).slope if len(rated) >= 2 and rated["session"].nunique() >= 2 else float("nan")
        rows.append(
            {
                "setting": setting, "condition": condition, "persona": persona, "run": run,
                "final": float(final.iloc[0]) if len(final) else float("nan"),
                "slope": float(slope), "rated_sessions": int(len(rated)), "sessions": int(group["sessions"].max()),
            }
        )
    return pd.DataFrame(rows, columns=["setting", "condition", "persona", "run", "final", "slope", "rated_sessions", "sessions"])
