"""Scorer for both experiments: did the simulation stay a simulation? (No model call.)"""

from __future__ import annotations

from inspect_ai.scorer import Score, Scorer, Target, mean, scorer, stderr
from inspect_ai.solver import TaskState
from inspect_ai.util import store_as

from psysim.dialogue.integrity import (
    CourseIntegrity,
    SessionInput,
    comparison_integrity,
    course_integrity,
    flags_metadata,
    load_integrity_config,
)
from psysim.inputs.snippets import Snippet
from psysim.solvers.course import TherapyCourse, require_course
from psysim.solvers.human_comparison import Comparison


# Rates are NaN where a role has nothing to rate (e.g. no feedback under `none`): Inspect leaves
# NaN out of each key's mean and counts it in `unscored_samples`.
@scorer(metrics={"*": [mean(), stderr()]})
def simulation_integrity() -> Scorer:
    """Integrity flags of the sample's replies (:mod:`psysim.dialogue.integrity`; thresholds and phrase
    lists in ``psysim/data/integrity.yaml``).

    ``Score.value``: per-role flag rates, flag counts per kind, truncated and failed calls and,
    in Experiment 1, the held, failed and excluded sessions and their rates (see
    :func:`psysim.dialogue.integrity.course_integrity`). ``Score.metadata``: ``flags`` (kind, role,
    session, turn, step, evidence, detail), and in Experiment 1 ``sessions`` (one
    ``{session, status, reason}`` per session: ``pass``, ``fail``, ``excluded`` (a later session
    of a course whose earlier session failed), ``failed_call`` or ``not_held``) and
    ``excluded_sessions``.
    """

    async def score(state: TaskState, target: Target) -> Score:
        config = load_integrity_config()
        if "snippet" in state.metadata:
            snippet = Snippet.model_validate(state.metadata["snippet"])
            record = store_as(Comparison)
            result = comparison_integrity(
                snippet.human_response, list(snippet.context), record.candidates, record.critique,
                record.reviser or "therapist", len(record.failures), record.stops, config,
                record.critique_check.model_dump() if record.critique_check else None,
            )
            return _score(result, config.version, experiment="human_comparison")
        course = require_course(store_as(TherapyCourse), state.sample_id, state.epoch)
        sessions = [
            SessionInput(
                session=r.session,
                status=r.status,
                feedback_after=r.feedback_after,
                failed_calls=int(r.status == "failed") + int(r.feedback_failure is not None),
                feedback_check=r.feedback_check.model_dump() if r.feedback_check else None,
            )
            for r in course.sessions
        ]
        result = course_integrity(course.turns, sessions, course.stops, config)
        return _score(result, config.version, experiment="iterative_feedback")

    return score


def _score(result: CourseIntegrity, version: int, experiment: str) -> Score:
    failures = [f for f in result.flags if f.failure]
    explanation = "; ".join(
        f"{f.kind} ({f.role}{f' s{f.session}' if f.session else ''}{f' t{f.turn}' if f.turn else ''})"
        for f in result.flags
    ) or "no flags"
    metadata: dict[str, object] = {
        "integrity_version": version,
        "experiment": experiment,
        "flags": flags_metadata(result.flags),
    }
    if experiment == "iterative_feedback":
        metadata["sessions"] = [s.model_dump() for s in result.sessions]
        metadata["excluded_sessions"] = {
            f"session_{s.session}": s.reason for s in result.sessions if s.status in ("fail", "excluded")
        }
    return Score(
        value=result.value,
        answer="flagged" if failures else "clean",
        explanation=explanation,
        metadata=metadata,
    )
