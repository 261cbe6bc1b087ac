"""Solvers: the agents (therapist, client, expert) and the experiment loops built from them."""

from psysim.solvers.course import CourseSettings, SessionRecord, TherapyCourse
from psysim.solvers.feedback_policy import CONDITIONS, FEEDBACK_POLICIES
from psysim.solvers.therapy_sessions import therapy_sessions

__all__ = [
    "CONDITIONS",
    "FEEDBACK_POLICIES",
    "CourseSettings",
    "SessionRecord",
    "TherapyCourse",
    "therapy_sessions",
]
