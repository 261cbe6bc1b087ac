"""Audit a finished log for faults that turned into results (issue 9's figures).

- ``ratings_coerced``: a numeric rating in a score whose raw reply does not parse, by the
  strict parser, to exactly that value, or whose call was cut short (``truncated``), or a
  numeric rating for a session or candidate that was not held/produced.
- ``transcripts_with_error_text``: samples whose transcript (canonical turns, the readable
  ``state.messages``, Experiment 2 candidates, or any prompt sent to a model) contains a known
  server error phrasing.
- ``ratings_from_incomplete`` / ``turns_from_faults`` (issue 22): a numeric rating whose accepted
  reply, or a dialogue turn / Experiment 2 candidate whose text, is the completion of a model call
  the server marked as incomplete (any stop reason but ``stop``: ``max_tokens``, ``content_filter``,
  ``unknown`` such as vLLM's ``abort``); turns also when they hold a server error phrasing.
- ``samples_lost`` / ``reasons``: samples with NaN values, and their ``missing_reasons``;
  ``unexplained``: NaN keys without a reason (must be 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from psysim.calls.failed_calls import contains_error_text
from psysim.calls.rating import parse_rating


@dataclass
class Audit:
    samples: int = 0
    ratings: int = 0
    ratings_coerced: int = 0
    ratings_from_incomplete: int = 0
    turns: int = 0
    turns_from_faults: int = 0
    transcripts_with_error_text: int = 0
    samples_lost: int = 0
    unexplained: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def figures(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _coerced(value: float, rating: dict[str, Any] | None, raw_key: str = "raw") -> bool:
    if rating is None:
        return True  # a number where nothing was rated
    raw = rating.get(raw_key) or []
    if not raw:
        return True
    parsed, _ = parse_rating(raw[-1])
    return parsed != value


def _model_texts(sample: Any) -> list[str]:
    texts: list[str] = []
    for event in sample.events:
        if event.event == "model":
            texts += [m.text for m in event.input]
    return texts


def _incomplete_completions(sample: Any) -> set[str]:
    """Completions (stripped, non-empty) of the sample's model calls that did not stop with ``stop``."""
    texts = set()
    for event in sample.events:
        if event.event == "model" and event.output is not None and event.output.stop_reason != "stop":
            if event.output.completion.strip():
                texts.add(event.output.completion.strip())
    return texts


def audit_log(log: Any) -> Audit:
    """Count the figures over every sample of ``log`` (an EvalLog read with its samples)."""
    audit = Audit()
    for sample in log.samples or []:
        audit.samples += 1
        # the rating scorer (a log has other scorers beside it, e.g. simulation_integrity)
        score = sample.scores.get("client_satisfaction") or sample.scores["client_rating"]
        meta = score.metadata or {}
        value: dict[str, float] = score.value
        reasons: dict[str, str] = meta.get("missing_reasons", {})
        texts = [m.text for m in sample.messages] + _model_texts(sample)
        nan_keys = [k for k, v in value.items() if isinstance(v, float) and math.isnan(v)]
        incomplete = _incomplete_completions(sample)
        turns: list[str] = []
        if "sessions" in meta:  # Experiment 1
            turns = [t["text"] for t in (sample.store.get("TherapyCourse:turns") or [])]
            texts += turns
            for record in meta["sessions"]:
                key = f"session_{record['session']}"
                if not math.isnan(value[key]):
                    audit.ratings += 1
                    held = record.get("status", "complete") == "complete"
                    cut = record.get("rating_code") in ("truncated", "incomplete")
                    if not held or cut or _coerced(value[key], record, "rating_raw"):
                        audit.ratings_coerced += 1
                    if (record.get("rating_raw") or [""])[-1].strip() in incomplete:
                        audit.ratings_from_incomplete += 1
        else:  # Experiment 2
            turns = [t for t in meta.get("candidates", {}).values() if t]
            texts += turns
            for kind, rating in meta.get("ratings", {}).items():
                if not math.isnan(value[kind]):
                    audit.ratings += 1
                    if kind not in meta.get("candidates", {}) or _coerced(value[kind], rating):
                        audit.ratings_coerced += 1
                    if ((rating or {}).get("raw") or [""])[-1].strip() in incomplete:
                        audit.ratings_from_incomplete += 1
        audit.turns += len(turns)
        audit.turns_from_faults += sum(1 for t in turns if t.strip() in incomplete or contains_error_text(t))
        if any(contains_error_text(t) for t in texts):
            audit.transcripts_with_error_text += 1
        if nan_keys:
            audit.samples_lost += 1
        for key in nan_keys:
            reason = reasons.get(key)
            if not reason:
                audit.unexplained += 1
                continue
            code = reason.split(":", 1)[0]
            audit.reasons[code] = audit.reasons.get(code, 0) + 1
    return audit


@dataclass
class FaultSuiteSummary:
    """The fault suite's figures over every audited fault-server run of a pytest session
    (issue 22): printed at the end of ``pytest tests/test_failed_calls_vllm.py``."""

    runs: int = 0
    injected: dict[str, int] = field(default_factory=dict)
    audits: list[Audit] = field(default_factory=list)

    def add(self, audit: Audit, injected: dict[str, int]) -> None:
        self.runs += 1
        self.audits.append(audit)
        for kind, count in injected.items():
            self.injected[kind] = self.injected.get(kind, 0) + count

    def lines(self) -> list[str]:
        total = lambda name: sum(getattr(a, name) for a in self.audits)  # noqa: E731
        reasons: dict[str, int] = {}
        for audit in self.audits:
            for code, count in audit.reasons.items():
                reasons[code] = reasons.get(code, 0) + count
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(self.injected.items()))
        return [
            f"fault suite: {self.runs} runs, {sum(self.injected.values())} faults injected ({kinds})",
            f"  samples {total('samples')}; ratings {total('ratings')}, from faults "
            f"{total('ratings_coerced') + total('ratings_from_incomplete')}; dialogue turns and candidates "
            f"{total('turns')}, from faults {total('turns_from_faults')}; samples with error text "
            f"{total('transcripts_with_error_text')}",
            f"  samples with a missing value {total('samples_lost')}; missing values with a reason "
            f"{sum(reasons.values())} ({', '.join(f'{k} {v}' for k, v in sorted(reasons.items()))}), "
            f"without a reason {total('unexplained')}",
        ]


SUITE = FaultSuiteSummary()
