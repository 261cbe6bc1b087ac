"""Settings and per-sample record of one simulated course of therapy (Experiment 1)."""

from __future__ import annotations

from typing import Literal

from inspect_ai.util import StoreModel
from pydantic import BaseModel, Field

from psysim.calls.critique import LimitCheck
from psysim.calls.failed_calls import DEFAULT_MAX_REPLY_ATTEMPTS, FailureRecord
from psysim.calls.generation import StopRecord
from psysim.dialogue.transcript import Turn
from psysim.prompts.therapist_styles import DEFAULT_STYLE
from psysim.questionnaires import Instrument, QuestionnaireResult

SessionStatus = Literal["complete", "failed", "not_held"]
CourseStatus = Literal["running", "complete", "ended_early"]


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
    feedback_max_tokens: int | None
    """None: derived from the feedback form's word limit (:func:`psysim.calls.critique.form_max_tokens`)."""
    temperature: float | None
    seed: int | None
    max_reply_attempts: int = DEFAULT_MAX_REPLY_ATTEMPTS
    therapist: str = DEFAULT_STYLE
    """Therapist style (:mod:`psysim.prompts.therapist_styles`); ``poor`` is the negative control."""
    questionnaires: list[Instrument] = Field(default_factory=list)
    """Instruments the client fills in after each complete session (none by default)."""


class SessionRecord(BaseModel):
    """What happened in one session, as saved in the log's sample store.

    ``status``: ``complete`` (all turns held; the rating may still be missing, see
    ``rating_code``), ``failed`` (a turn failed: ``failure`` says which call and why) or
    ``not_held`` (the course ended before it: ``failure`` has code ``not_held`` and names the cause).
    """

    session: int
    status: SessionStatus = "complete"
    failure: FailureRecord | None = None
    """Why this session is not complete (None when it is)."""
    feedback_given: str | None = None
    """Feedback the therapist read before this session (None in session 1 and under `none`)."""
    rating: float | None = None
    rating_code: str | None = None
    """Reason code when the rating is missing (``rating_unparsed``, ``truncated``, ...)."""
    rating_error: str | None = None
    rating_raw: list[str] = Field(default_factory=list)
    rating_attempts: int = 0
    rating_format: str = ""
    feedback_after: str | None = None
    """Feedback produced after this session for the next one."""
    feedback_failure: FailureRecord | None = None
    """The feedback call after this session failed (the course ended after this session)."""
    feedback_check: LimitCheck | None = None
    """How the Expert's feedback after this session kept its limits (words, re-asks; None
    without Expert feedback)."""
    questionnaires: dict[str, QuestionnaireResult] = Field(default_factory=dict)
    """Instrument id -> the client's answers after this session (only when questionnaires are
    selected and the session is complete)."""

    @property
    def missing_reason(self) -> str | None:
        """``"<code>: <detail>"`` when this session has no rating, else None."""
        if self.failure is not None:
            return self.failure.reason
        if self.rating is None:
            return f"{self.rating_code or 'rating_unparsed'}: {self.rating_error}"
        return None


class CourseEnd(BaseModel):
    """Where and why a course ended early (``Score.metadata["ended"]`` in the shared contract)."""

    after_session: int
    """The last complete session (0 if session 1 failed)."""
    reason: str
    """The failure code of the call that ended the course."""
    role: str
    step: str
    detail: str


class TherapyCourse(StoreModel):
    """Per-sample store: the canonical transcript, one record per session and the course status.

    ``turns`` holds every turn actually said, including those of a failed session before its
    failing call (never an empty or error reply); filter by the session's ``status``.
    """

    condition: str = ""
    persona_id: str = ""
    seed: int | None = None
    status: CourseStatus = "running"
    ended: CourseEnd | None = None
    turns: list[Turn] = Field(default_factory=list)
    sessions: list[SessionRecord] = Field(default_factory=list)
    stops: list[StopRecord] = Field(default_factory=list)

    def score_metadata(self, sessions: int) -> dict[str, object]:
        """What every Experiment 1 score's metadata starts with (the shared failure-record
        contract): ``condition``, ``persona_id``, ``course_status`` (``complete`` or
        ``ended_early``, judged by the records rather than ``status`` alone, so logs written
        before ``status`` existed score right) and ``ended``."""
        by_session = {record.session: record for record in self.sessions}
        complete = self.ended is None and all(
            k in by_session and by_session[k].status == "complete" for k in range(1, sessions + 1)
        )
        return {"condition": self.condition, "persona_id": self.persona_id,
                "course_status": "complete" if complete else "ended_early",
                "ended": self.ended.model_dump() if self.ended is not None else None}


STORE_MISSING = (
    "store_missing: the sample's store holds no therapy course (its scores may survive: Inspect rebuilds a "
    "sample that had finished but was not yet written into an interrupted log from its sample buffer, without "
    "the store); run the sample again (psysim-paper's resume does)"
)
"""Reason code and words for a sample whose course cannot be read."""


def course_missing(course: TherapyCourse) -> bool:
    """True if ``course`` was never written: no session record and still ``running`` (after the
    course solver has run, a course always has its session records and a final status)."""
    return not course.sessions and not course.turns and course.status == "running"


def require_course(course: TherapyCourse, sample_id: object, epoch: int) -> TherapyCourse:
    """``course``, or a ValueError naming the sample when its store holds none (:data:`STORE_MISSING`)."""
    if course_missing(course):
        raise ValueError(f"sample {sample_id} epoch {epoch}: {STORE_MISSING}")
    return course
