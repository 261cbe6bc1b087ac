"""Scorer for Experiment 1: the Client's satisfaction ratings after each session."""

from __future__ import annotations

import math

from inspect_ai.scorer import Score, Scorer, Target, mean, scorer, stderr
from inspect_ai.solver import TaskState
from inspect_ai.util import store_as

from psysim.solvers.course import TherapyCourse, require_course

NAN = float("nan")


# NaN values (missing ratings) are left out of the metrics by Inspect and counted in each
# key's `unscored_samples`, so a mean over fewer ratings is visible in the log.
@scorer(metrics={"*": [mean(), stderr()]})
def client_satisfaction(sessions: int, baseline: float) -> Scorer:
    """Satisfaction per session as rated by the client during the run.

    ``Score.value`` has ``session_1`` ... ``session_N`` (0-100, NaN when the rating is
    missing or the session was not complete), ``final`` (session N) and ``gain``
    (final - baseline). ``Score.metadata`` (shared failure-record contract):
    ``missing_reasons`` maps every NaN key to ``"<code>: <detail>"``; ``course_status`` is
    ``complete`` or ``ended_early``; ``ended`` is None or where and why the course ended.
    Raw client replies, rating errors, session statuses, the feedback given and the
    condition go to metadata too.
    """

    async def score(state: TaskState, target: Target) -> Score:
        course = require_course(store_as(TherapyCourse), state.sample_id, state.epoch)
        by_session = {record.session: record for record in course.sessions}
        value: dict[str, float] = {}
        missing_reasons: dict[str, str] = {}
        for k in range(1, sessions + 1):
            record = by_session.get(k)
            rating = record.rating if record is not None and record.status == "complete" else None
            value[f"session_{k}"] = NAN if rating is None else float(rating)
            if rating is None:
                missing_reasons[f"session_{k}"] = (
                    record.missing_reason or "rating_unparsed: no rating"
                    if record is not None
                    else f"not_held: no record of session {k} in the sample store (course status {course.status})"
                )
        value["final"] = value[f"session_{sessions}"]
        value["gain"] = NAN if math.isnan(value["final"]) else value["final"] - baseline
        if math.isnan(value["final"]):
            missing_reasons["final"] = missing_reasons[f"session_{sessions}"]
            missing_reasons["gain"] = missing_reasons[f"session_{sessions}"]

        missing_sessions = [k for k in range(1, sessions + 1) if math.isnan(value[f"session_{k}"])]
        explanation = ", ".join(
            f"s{k}={_show(value[f'session_{k}'])}" for k in range(1, sessions + 1)
        )
        return Score(
            value=value,
            answer=explanation,
            explanation=f"condition={course.condition}; baseline={baseline:g}; {explanation}"
            + (f"; course ended after session {course.ended.after_session} ({course.ended.reason})" if course.ended else ""),
            metadata={
                **course.score_metadata(sessions),
                "seed": course.seed,
                "baseline": baseline,
                "missing_reasons": missing_reasons,
                "missing_sessions": missing_sessions,
                "sessions": [record.model_dump() for record in course.sessions],
                "stops": [stop.model_dump() for stop in course.stops],
            },
        )

    return score


def _show(rating: float) -> str:
    return "missing" if math.isnan(rating) else f"{rating:g}"
