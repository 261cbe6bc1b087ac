"""Settings and per-sample record of one simulated course of therapy (Experiment 1)."""

from __future__ import annotations

from inspect_ai.util import StoreModel
from pydantic import BaseModel, Field

from psysim.generation import StopRecord
from psysim.transcript import Turn


class CourseSettings(BaseModel):
    """Everything the session loop needs besides the persona; fixed per task run."""

    condition: str
    sessions: int
    turns: int
    baseline: float
    guidelines: str
    generic_feedback: str
    rating_format: str
    max_rating_attempts: int
    turn_max_tokens: int
    feedback_max_tokens: int
    temperature: float | None
    seed: int | None


class SessionRecord(BaseModel):
    """What happened in one session, as saved in the log's sample store."""

    session: int
    feedback_given: str | None = None
    """Feedback the therapist read before this session (None in session 1 and under `none`)."""
    rating: float | None = None
    rating_error: str | None = None
    rating_raw: list[str] = Field(default_factory=list)
    rating_attempts: int = 0
    rating_format: str = ""
    feedback_after: str | None = None
    """Feedback produced after this session for the next one."""


class TherapyCourse(StoreModel):
    """Per-sample store: the canonical transcript and one record per session."""

    condition: str = ""
    persona_id: str = ""
    seed: int | None = None
    turns: list[Turn] = Field(default_factory=list)
    sessions: list[SessionRecord] = Field(default_factory=list)
    stops: list[StopRecord] = Field(default_factory=list)
