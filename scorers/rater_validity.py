"""Scorer of the rater-validity task: the Client rates the human therapist response.

Exactly Experiment 2's rating of the ``human`` candidate (:func:`scorers.client_rating.rate_response`:
same prompt, blind to the source and to the quality label, structured output, strict parser,
bounded re-ask, missing never coerced), so the validity measured is that of Experiment 2's rater.
"""

from __future__ import annotations

from inspect_ai.scorer import Score, Scorer, Target, mean, scorer, stderr
from inspect_ai.solver import TaskState

from psysim.calls.generation import CallSettings, StopRecord, counts_model_calls
from psysim.inputs.snippets import Snippet
from psysim.scorers.client_rating import rate_response

NAN = float("nan")


@scorer(metrics={"*": [mean(), stderr()]})
def human_response_rating(
    temperature: float | None = 0.1,
    seed: int | None = 0,
    rating_format: str = "auto",
    max_attempts: int = 3,
) -> Scorer:
    """``Score.value``: ``{"rating": 0-100}`` (NaN when missing, with ``missing_reasons["rating"]``).

    ``Score.metadata``: ``group`` (high/low), ``label``, ``label_value``, ``transcript_id``,
    ``client_id``, the raw rating record and any truncated calls.
    """

    @counts_model_calls
    async def score(state: TaskState, target: Target) -> Score:
        snippet = Snippet.model_validate(state.metadata["snippet"])
        call = CallSettings.for_epoch(temperature, seed, state.epoch)
        stops: list[StopRecord] = []
        result = await rate_response(snippet, snippet.human_response, "human", call, rating_format, max_attempts, stops)
        rating = NAN if result.value is None else float(result.value)
        missing_reasons = {} if result.value is not None else {"rating": result.reason or "rating_unparsed"}
        return Score(
            value={"rating": rating},
            answer=snippet.human_response,
            explanation=f"{state.metadata['group']}: " + ("missing" if result.value is None else f"{rating:g}"),
            metadata={
                "group": state.metadata["group"],
                "label": state.metadata["label"],
                "label_value": state.metadata["label_value"],
                "transcript_id": snippet.transcript_id,
                "client_id": snippet.client_id,
                "missing_reasons": missing_reasons,
                "rating": result.model_dump(),
                "stops": [s.model_dump() for s in stops],
            },
        )

    return score
