"""Feedback conditions: what the therapist reads before the next session.

A new condition is one function added to ``FEEDBACK_POLICIES``. A policy that calls a model
lets :class:`psysim.calls.failed_calls.CallFailed` propagate: the session loop ends the course.
"""

from __future__ import annotations

from typing import Awaitable, Callable

from psysim.calls.critique import LimitedReply
from psysim.calls.generation import CallSettings, StopRecord
from psysim.dialogue.transcript import Turn
from psysim.solvers.course import CourseSettings
from psysim.solvers.expert_feedback import expert_feedback

FeedbackPolicy = Callable[
    [int, list[Turn], CourseSettings, CallSettings, list[StopRecord]], Awaitable[str | LimitedReply | None]
]
"""A policy returns the feedback text, or a :class:`LimitedReply` (the text and how it kept the
Expert's limits), or None for no feedback."""


async def _expert(
    session: int, turns: list[Turn], settings: CourseSettings, call: CallSettings, stops: list[StopRecord]
) -> LimitedReply:
    return await expert_feedback(
        session, turns, settings.guidelines, call, settings.feedback_max_tokens, stops
    )


async def _generic(
    session: int, turns: list[Turn], settings: CourseSettings, call: CallSettings, stops: list[StopRecord]
) -> str | None:
    return settings.generic_feedback


async def _none(
    session: int, turns: list[Turn], settings: CourseSettings, call: CallSettings, stops: list[StopRecord]
) -> str | None:
    return None


FEEDBACK_POLICIES: dict[str, FeedbackPolicy] = {
    "expert": _expert,
    "none": _none,
    "generic": _generic,
}
CONDITIONS: tuple[str, ...] = tuple(FEEDBACK_POLICIES)
