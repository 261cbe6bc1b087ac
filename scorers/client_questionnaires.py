"""Scorer for Experiment 1 with ``-T questionnaires=...``: the client's questionnaire scores per session."""

from __future__ import annotations

from inspect_ai.scorer import Score, Scorer, Target, mean, scorer, stderr
from inspect_ai.solver import TaskState
from inspect_ai.util import store_as

from psysim.questionnaires import (
    Instrument,
    QuestionnaireResult,
    load_instruments,
    score_scales,
)
from psysim.solvers.course import SessionRecord, TherapyCourse, require_course

NAN = float("nan")


# NaN values (missing scores) are left out of the metrics and counted in `unscored_samples`.
@scorer(metrics={"*": [mean(), stderr()]})
def client_questionnaires(questionnaires: str | list[str], sessions: int) -> Scorer:
    """Each instrument's scales (total and subscales) per session, from the sample store.

    ``Score.value`` has one key per instrument, scale and session, ``<key>_<scale>_s<k>``
    (``srs_total_s3``, ``wai_total_s3``, ``wai_goal_s3``, ``wai_task_s3``, ``wai_bond_s3``),
    NaN when the score is missing: the session was not complete, the questionnaire call
    failed, or an item the scale needs has no valid answer (no proration).
    ``Score.metadata``: ``missing_reasons`` (every NaN key -> ``"<code>: <detail>"``, as in
    the shared failure-record contract), ``course_status``, ``ended``, the instruments
    (version, wording, citation, scales) and per session the item-level answers, the items
    without an answer and why, every raw reply and the attempts.

    Args:
        questionnaires: Instrument names or files, as given to the task (``"srs,wai_sr"``).
        sessions: Sessions planned per course (keys exist for every one of them).
    """
    instruments = load_instruments(questionnaires)
    if not instruments:
        raise ValueError("client_questionnaires: no questionnaire given (e.g. questionnaires='srs,wai_sr')")

    async def score(state: TaskState, target: Target) -> Score:
        course = require_course(store_as(TherapyCourse), state.sample_id, state.epoch)
        by_session = {record.session: record for record in course.sessions}
        value: dict[str, float] = {}
        missing_reasons: dict[str, str] = {}
        per_session: list[dict[str, object]] = []
        for k in range(1, sessions + 1):
            record = by_session.get(k)
            filled: dict[str, object] = {}
            for instrument in instruments:
                result = record.questionnaires.get(instrument.id) if record is not None else None
                scores = score_scales(instrument, result.answers) if result is not None else {}
                for name in instrument.scales:
                    key = instrument.score_key(name, k)
                    scale = scores.get(name)
                    value[key] = NAN if scale is None or scale.value is None else scale.value
                    if scale is None or scale.value is None:
                        missing_reasons[key] = _reason(instrument, name, k, record, result, course.status)
                if result is not None:
                    filled[instrument.id] = {
                        **result.model_dump(),
                        "scores": {name: s.value for name, s in scores.items()},
                    }
            per_session.append(
                {"session": k, "status": record.status if record is not None else "not_held", "questionnaires": filled}
            )

        totals = "; ".join(
            f"{instrument.key} " + ", ".join(
                f"s{k}={_show(value[instrument.score_key(_headline(instrument), k)])}" for k in range(1, sessions + 1)
            )
            for instrument in instruments
        )
        return Score(
            value=value,
            answer=totals,
            explanation=f"{_headline_names(instruments)} by session: {totals}",
            metadata={
                **course.score_metadata(sessions),
                "missing_reasons": missing_reasons,
                # small (Inspect thins metadata values over 1k in sample summaries), for the report's axes
                "scale_ranges": {
                    f"{instrument.key}_{name}": list(instrument.scale_range(name))
                    for instrument in instruments for name in instrument.scales
                },
                "instruments": {instrument.id: _describe(instrument) for instrument in instruments},
                "sessions": per_session,
            },
        )

    return score


def _reason(
    instrument: Instrument,
    scale: str,
    session: int,
    record: SessionRecord | None,
    result: QuestionnaireResult | None,
    course_status: str,
) -> str:
    """``"<code>: <detail>"`` for a missing scale score."""
    if record is None:
        return f"not_held: no record of session {session} in the sample store (course status {course_status})"
    if record.status != "complete":
        return record.missing_reason or f"not_held: session {session} was not complete"
    if result is None:
        return f"not_held: {instrument.id} was not asked after session {session}"
    missing = [i for i in instrument.scales[scale].items if i in result.item_errors]
    items = ", ".join(f"{i} ({result.item_errors[i]})" for i in missing)
    return f"{result.code or 'rating_unparsed'}: {result.error}; items without a valid answer: {items}"


def _headline(instrument: Instrument) -> str:
    return "total" if "total" in instrument.scales else next(iter(instrument.scales))


def _headline_names(instruments: list[Instrument]) -> str:
    return ", ".join(f"{instrument.key}_{_headline(instrument)}" for instrument in instruments)


def _describe(instrument: Instrument) -> dict[str, object]:
    return {
        "name": instrument.name,
        "key": instrument.key,
        "version": instrument.version,
        "wording": instrument.wording,
        "citation": instrument.citation,
        "source": instrument.source,
        "response_scale": instrument.response_scale.model_dump(),
        "reverse_keyed": instrument.reverse_keyed,
        "scales": {
            name: {"items": scale.items, "method": scale.method, "range": list(instrument.scale_range(name))}
            for name, scale in instrument.scales.items()
        },
    }


def _show(value: float) -> str:
    return "missing" if value != value else f"{value:g}"
