"""A methods paragraph generated from the logs, to paste into a paper (and edit).

Everything it states is read from the logs or the report's own results: models per role, the
task arguments (sessions, turns), personas and runs counted in the ratings, temperature and seeds
from the generate configs, prompt versions when the logs record them, exclusions with their
counts, the primary tests and their method, software versions. What the logs do not record is
said to be unrecorded, never guessed.
"""

from __future__ import annotations

import platform
from collections import Counter
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import pandas as pd

from psysim.analysis.frames import EXP1_TASK, EXP2_TASK, Frames, apply_integrity
from psysim.analysis.exp1 import ALL_SESSIONS
from psysim.analysis.render import result_sentence
from psysim.analysis.section import ReportOptions, SectionResult
from psysim.analysis.stats import NOT_TESTABLE, PRIMARY
from psysim.provenance import PROVENANCE_KEY
from psysim.study.log_series import short_task_name

SOFTWARE = ("psysim", "inspect_ai", "scipy", "statsmodels", "pandas", "plotly")


def _version(package: str) -> str:
    try:
        return version(package.replace("_", "-"))
    except PackageNotFoundError:
        return "not installed"


def _join(items: list[str]) -> str:
    items = [i for i in items if i]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1] if items else ""


def _config_value(config: Any, name: str) -> Any:
    return getattr(config, name, None) if config is not None else None


def role_models(frames: Frames) -> dict[str, set[str]]:
    """Per role, the model names in the used logs (the main model as ``main``)."""
    models: dict[str, set[str]] = {}
    for entry in frames.selection.used:
        spec = entry.header.eval
        models.setdefault("main", set()).add(str(spec.model))
        for role, config in (spec.model_roles or {}).items():
            for one in config if isinstance(config, list) else [config]:
                models.setdefault(role, set()).add(str(getattr(one, "model", one)))
    return models


def generation_settings(frames: Frames) -> tuple[list[str], list[str]]:
    """Temperatures and seeds stated in the logs' generate configs (main and per role)."""
    temperatures, seeds = set(), set()
    for entry in frames.selection.used:
        spec = entry.header.eval
        configs = [("main", spec.model_generate_config)]
        for role, config in (spec.model_roles or {}).items():
            for one in config if isinstance(config, list) else [config]:
                configs.append((role, getattr(one, "config", None)))
        for role, config in configs:
            t, seed = _config_value(config, "temperature"), _config_value(config, "seed")
            if t is not None:
                temperatures.add(f"{role} {t:g}")
            if seed is not None:
                seeds.add(f"{role} {seed}")
        for name, value in (spec.task_args or {}).items():
            if "seed" in name and value is not None:
                seeds.add(f"task argument {name}={value}")
    return sorted(temperatures), sorted(seeds)


def prompt_versions(frames: Frames) -> list[str]:
    """Versions the logs record: each task's version and, from its provenance record, every input
    file's version and the first 10 hex digits of its SHA-256; else any eval metadata or task
    argument whose name mentions a version (older logs)."""
    found = set()
    for entry in frames.selection.used:
        spec = entry.header.eval
        record = (spec.metadata or {}).get(PROVENANCE_KEY)
        if isinstance(record, dict) and isinstance(record.get("files"), dict):
            found.add(f"{short_task_name(spec.task)} task v{spec.task_version}")
            for name, r in record["files"].items():
                if isinstance(r, dict):
                    digest = f"sha256 {str(r['sha256'])[:10]}" if r.get("sha256") else ""
                    label = ", ".join(x for x in (f"v{r['version']}" if r.get("version") is not None else "", digest) if x)
                    found.add(f"{name} {label}".strip())
            continue
        for source in (spec.metadata or {}, spec.task_args or {}):
            for name, value in source.items():
                if "version" in name.lower():
                    found.add(f"{name} {value}" if not isinstance(value, dict) else
                              ", ".join(f"{k} {v}" for k, v in sorted(value.items())))
    return sorted(found)


def _task_arg(frames: Frames, task: str, name: str) -> list[str]:
    values = {str(v) for e in frames.selection.used if e.key.task == task
              for k, v in (e.header.eval.task_args or {}).items() if k == name}
    return sorted(values)


def _runs(exp1: pd.DataFrame) -> str:
    """"2 independent runs per condition" (a run is one epoch of one log)."""
    per = exp1.groupby("condition")["run"].nunique()
    if per.nunique() == 1:
        return f"{int(per.iloc[0])} independent run(s) per condition"
    return "independent runs per condition: " + ", ".join(f"{c} {n}" for c, n in per.items())


def exclusions(frames: Frames) -> str:
    parts = []
    # Experiment 1 as its statistics use it: integrity failures (and later sessions) count as excluded
    for task, frame in ((EXP1_TASK, apply_integrity(frames.exp1)), (EXP2_TASK, frames.exp2)):
        if frame.empty:
            continue
        missing = frame[frame["missing"].astype(bool)]
        reasons = Counter(missing["reason"].fillna("unrecorded").astype(str)) if "reason" in missing else Counter()
        listed = ", ".join(f"{reason} {count}" for reason, count in sorted(reasons.items()))
        parts.append(f"{task}: {len(missing)} of {len(frame)} ratings missing or excluded"
                     + (f" ({listed})" if listed else ""))
    return "; ".join(parts)


def methods_paragraph(frames: Frames, sections: list[SectionResult], options: ReportOptions) -> str:
    """One paragraph (plain text with light Markdown) describing the study as the logs record it."""
    del options
    sentences = []
    tasks = sorted({e.key.task for e in frames.selection.used})
    logs = len(frames.selection.used)
    sentences.append(f"We simulated psychotherapy dialogues with language models (psychotherapy-in-silico; {logs} "
                     f"Inspect log(s) of {_join(tasks)}).")
    models = role_models(frames)
    sentences.append("Models per role: " + "; ".join(f"{role} {', '.join(sorted(names))}"
                                                      for role, names in sorted(models.items())) + ".")
    exp1 = frames.exp1
    if not exp1.empty:
        conditions = sorted(map(str, exp1["condition"].unique()))
        turns = _task_arg(frames, EXP1_TASK, "turns")
        sentences.append(
            f"Experiment 1 (iterative feedback): {exp1['persona'].nunique()} client personas, "
            f"{int(exp1['sessions'].max())} sessions per course"
            + (f" of {'/'.join(turns)} turns each" if turns else "")
            + f", {_runs(exp1)}, conditions {_join(conditions)}; "
            "after each session the Client LLM rated its satisfaction on a 0–100 scale.")
    exp2 = frames.exp2
    if not exp2.empty:
        sentences.append(f"Experiment 2 (human comparison): {exp2['snippet'].nunique()} transcript snippets, "
                         f"{exp2['run'].nunique()} run(s), response types {_join(sorted(map(str, exp2['response_type'].unique())))}, "
                         "each rated by the Client LLM on the same 0–100 scale.")
    temperatures, seeds = generation_settings(frames)
    sentences.append(("Temperature: " + "; ".join(temperatures) if temperatures else
                      "Temperature: provider default (not set in the logs)")
                     + ". " + ("Seeds: " + "; ".join(seeds) if seeds else "Seeds: not recorded in the logs") + ".")
    versions = prompt_versions(frames)
    sentences.append("Prompt versions: " + ("; ".join(versions) if versions else "not recorded in these logs") + ".")
    excluded = exclusions(frames)
    if excluded:
        sentences.append("Ratings that could not be read, sessions not held and sessions failing the simulation "
                         "integrity check (with the later sessions of their course) were excluded and counted, "
                         f"never imputed: {excluded}.")
    primaries = [t for s in sections for t in s.tests if t.role == PRIMARY and ALL_SESSIONS not in t.setting]
    for t in primaries:
        method = (f"{t.test} over {t.unit}" if t.status != NOT_TESTABLE else t.test)
        sentences.append(f"Pre-declared primary test ({t.experiment}, {t.setting}): {method}; "
                         f"result: {result_sentence(t)}.")
    if primaries:
        sentences.append("All other tests are secondary with Holm-adjusted p-values within each experiment and setting.")
    sentences.append("Software: " + ", ".join(f"{p} {_version(p)}" for p in SOFTWARE)
                     + f", Python {platform.python_version()}.")
    sentences.append("Ratings are simulated by a language model role-playing a client; they are not patient outcomes.")
    return " ".join(sentences)


