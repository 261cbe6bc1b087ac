"""Role model calls with per-call sampling settings, bounded re-asking and a record of stops.

Inspect's ``--temperature``/``--seed`` reach only the main model, so every role call here
carries its own :class:`GenerateConfig`. A reply that is not a reply (empty, a server error
message, a context-length stop, a reply the server marked as incomplete: see
:mod:`psysim.calls.failed_calls`) is never returned as text: the
call is asked again, up to ``max_reply_attempts`` in all, and then raises :class:`CallFailed`.
A reply cut at its token cap is re-asked with a note asking for a shorter reply (``prompts/reask.yaml``).
A context-length failure is not re-asked (the same prompt cannot fit the next time either).
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from contextvars import ContextVar
from typing import Awaitable, Callable

from inspect_ai.model import ChatMessage, ChatMessageUser, GenerateConfig, ModelOutput, get_model
from inspect_ai.model._generate_config import active_generate_config
from inspect_ai.scorer import Score, Target
from inspect_ai.solver import TaskState
from pydantic import BaseModel

from psysim.calls.failed_calls import (
    DEFAULT_MAX_REPLY_ATTEMPTS,
    CallFailed,
    FailureRecord,
    reply_complete,
    reply_fault,
)
from psysim.prompts import prompt

ROLES = ("therapist", "client", "expert")
"""The model roles; bind all three (even to one model) so the log labels every call's role."""
REASK_SEED_STEP = 100_000
"""A re-ask of the same prompt uses ``seed + REASK_SEED_STEP * (attempt - 1)``: with the same
seed a seeded server would return the same empty reply again; with this offset the re-ask is
still reproducible and never reuses another epoch's seed (``seed + epoch``)."""
SESSION_SEED_STEP = 1_000
"""Session k of a course samples with ``seed + SESSION_SEED_STEP * (k - 1)``. With one seed for the
whole course, session 2 (whose prompt carries session 1) was sampled along session 1's path and
replayed it word for word on the offline model; per-session seeds stay reproducible, never reuse
another epoch's seed, and stay below the re-ask offsets for up to 99 sessions."""


MODEL_CALLS_KEY = "model_calls"
"""``Score.metadata`` key of the model calls a scorer made, per role (see :func:`counts_model_calls`)."""
_SCORER_CALLS: ContextVar[Counter[str] | None] = ContextVar("psysim_scorer_calls", default=None)


def counts_model_calls(
    score: Callable[[TaskState, Target], Awaitable[Score]],
) -> Callable[[TaskState, Target], Awaitable[Score]]:
    """Wrap a scorer's ``score`` so its ``Score.metadata[MODEL_CALLS_KEY]`` holds the model calls
    it made per role, re-asks included. Inspect's per-sample ``turn_count`` counts only the
    solver's calls, so without this a report would count a scorer's calls (Experiment 2's
    ratings, the safety judge, a re-judge) as none."""

    @functools.wraps(score)
    async def counted(state: TaskState, target: Target) -> Score:
        calls: Counter[str] = Counter()
        token = _SCORER_CALLS.set(calls)  # concurrent calls inside the scorer share this counter
        try:
            result = await score(state, target)
        finally:
            _SCORER_CALLS.reset(token)
        result.metadata = {**(result.metadata or {}), MODEL_CALLS_KEY: dict(calls)}
        return result

    return counted


class StopRecord(BaseModel):
    """A model call that did not end naturally (any stop reason but ``stop``: see
    :func:`psysim.calls.failed_calls.reply_complete`)."""

    role: str
    step: str
    stop_reason: str


class CallSettings(BaseModel):
    """Sampling settings shared by every role call of one sample."""

    temperature: float | None = None
    seed: int | None = None
    max_reply_attempts: int = DEFAULT_MAX_REPLY_ATTEMPTS
    """Attempts per call before it is recorded as failed (first ask plus re-asks)."""

    @classmethod
    def for_epoch(
        cls,
        temperature: float | None,
        seed: int | None,
        epoch: int,
        max_reply_attempts: int = DEFAULT_MAX_REPLY_ATTEMPTS,
    ) -> "CallSettings":
        """Per-epoch seed ``seed + epoch``: runs differ from each other, each is reproducible."""
        return cls(
            temperature=temperature,
            seed=None if seed is None else seed + epoch,
            max_reply_attempts=max_reply_attempts,
        )

    def for_session(self, session: int) -> "CallSettings":
        """The settings of session ``session`` (1-based): its own seed (see SESSION_SEED_STEP)."""
        if self.seed is None or session == 1:
            return self
        return self.model_copy(update={"seed": self.seed + SESSION_SEED_STEP * (session - 1)})

    def config(self, max_tokens: int | None = None, **extra: object) -> GenerateConfig:
        return GenerateConfig(
            temperature=self.temperature, seed=self.seed, max_tokens=max_tokens, **extra
        )


EVAL_BOUNDS = ("attempt_timeout", "timeout", "max_retries")
"""The eval's generate settings every role call takes. Inspect hands a role model (one that is not
the eval's main model) only ``max_retries`` and ``timeout`` of the eval's config, never
``attempt_timeout``: ``inspect eval --attempt-timeout 8`` would not reach the harness's calls."""


def with_eval_bounds(config: GenerateConfig) -> GenerateConfig:
    """``config`` over the eval's bounds (:data:`EVAL_BOUNDS`); the call's own settings win."""
    active = active_generate_config()
    bounds = GenerateConfig(**{key: getattr(active, key) for key in EVAL_BOUNDS})
    return bounds.merge(config)


async def generate_once(
    role: str, messages: list[ChatMessage], config: GenerateConfig, *, step: str, stops: list[StopRecord]
) -> ModelOutput:
    """One call to the model bound to ``role``; a :class:`StopRecord` if it did not end naturally."""
    if (calls := _SCORER_CALLS.get()) is not None:
        calls[role] += 1
    output = await get_model(role=role).generate(messages, config=with_eval_bounds(config))
    if not reply_complete(output):
        stops.append(StopRecord(role=role, step=step, stop_reason=output.stop_reason))
    return output


def cut_at_cap(output: ModelOutput) -> bool:
    """The reply stopped at its token cap (not at the model's own end)."""
    return output.stop_reason == "max_tokens"


def reask_config(config: GenerateConfig, attempt: int) -> GenerateConfig:
    """``config`` for attempt ``attempt`` (1-based) of the same prompt (see REASK_SEED_STEP)."""
    if attempt == 1 or config.seed is None:
        return config
    return config.merge(GenerateConfig(seed=config.seed + REASK_SEED_STEP * (attempt - 1)))


async def generate_reply(
    role: str,
    messages: list[ChatMessage],
    config: GenerateConfig,
    *,
    step: str,
    stops: list[StopRecord],
    max_attempts: int = DEFAULT_MAX_REPLY_ATTEMPTS,
    clean: Callable[[str], str] = str.strip,
) -> tuple[str, ModelOutput]:
    """A usable reply from the model bound to ``role`` (cleaned text and the output).

    An unusable reply (:func:`psysim.calls.failed_calls.reply_fault`, or nothing left after
    ``clean``, e.g. a bare speaker label) is dropped and the same prompt asked again, up to
    ``max_attempts`` in all; a context-length failure ends the attempts at once.

    Raises:
        CallFailed: no usable reply; its record holds the reason code and every raw reply.
    """
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be >= 1; got {max_attempts}")
    raw: list[str] = []
    asked = messages
    for attempt in range(1, max_attempts + 1):
        attempt_step = step if attempt == 1 else f"{step}_attempt_{attempt}"
        output = await generate_once(role, asked, reask_config(config, attempt), step=attempt_step, stops=stops)
        raw.append(output.completion)
        fault = reply_fault(output)
        text = clean(output.completion) if fault is None else ""
        if fault is None and text.strip():
            return text.strip(), output
        code, detail = fault or ("empty_reply", "the reply was empty once its speaker label or quotes were removed")
        if code == "context_length" or attempt == max_attempts:
            raise CallFailed(
                FailureRecord(code=code, role=role, step=step, detail=f"{detail} (attempt {attempt} of {max_attempts})",
                              raw=raw, attempts=attempt)
            )
        # cut at its cap: the same prompt would run as long again, so the re-ask asks for less
        # (prompts/reask.yaml); the cut reply itself is never shown back
        asked = messages + [ChatMessageUser(content=prompt("reask", "cut_off"))] if cut_at_cap(output) else messages
    raise AssertionError("unreachable")


def strip_speaker_label(text: str, label: str) -> str:
    """Small models sometimes prefix their own turn with ``Therapist:``; drop that label."""
    return re.sub(rf"^\s*\**{re.escape(label)}\**\s*:\s*", "", text, flags=re.IGNORECASE).strip()
