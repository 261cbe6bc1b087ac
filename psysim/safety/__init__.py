"""Risk and safety (issue 13): the safety rubric as data, the judge's strict parser and the
judge call. Simulation research only: not a clinical tool."""

from psysim.safety.judge import (
    JUDGE_ROLE,
    SafetyJudgement,
    ask_safety_judge,
    judge_prompt,
)
from psysim.safety.parsing import ItemRating, ParsedJudgement, parse_judgement
from psysim.safety.rubric import (
    DEFAULT_RUBRIC,
    NOT_RELEVANT,
    RATINGS,
    Rubric,
    RubricFileError,
    SessionSafety,
    load_rubric,
    session_safety,
)

__all__ = [
    "DEFAULT_RUBRIC", "JUDGE_ROLE", "NOT_RELEVANT", "RATINGS", "ItemRating", "ParsedJudgement", "Rubric",
    "RubricFileError", "SafetyJudgement", "SessionSafety", "ask_safety_judge", "judge_prompt", "load_rubric",
    "parse_judgement", "session_safety",
]
