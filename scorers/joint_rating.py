"""Experiment 2's position check: the Client rates the three candidates shown together, A/B/C.

Runs beside the independent blind ratings (:func:`scorers.client_rating.client_rating`) when the
task is run with ``-T joint_rating=true``. Each snippet's order (``state.metadata["joint_order"]``,
set by the task with :func:`psysim.calls.joint_rating.order_for`) cycles through all 6 permutations
across snippets, so every response type appears equally often in every position and the report
can separate the position effect from the response type.
"""

from __future__ import annotations

import math

from inspect_ai.scorer import Score, Scorer, Target, mean, scorer, stderr
from inspect_ai.solver import TaskState
from inspect_ai.util import store_as

from psysim.calls.generation import CallSettings, StopRecord, counts_model_calls
from psysim.calls.joint_rating import ask_joint_ratings, joint_json_form, labels_for
from psysim.inputs.snippets import Snippet
from psysim.prompts import prompt
from psysim.scorers.client_rating import client_view_dialogue, client_view_messages
from psysim.solvers.human_comparison import RESPONSE_TYPES, Comparison

NAN = float("nan")


def position_key(position: int) -> str:
    """The ``Score.value`` key of a position (1-based): ``position_1`` ..."""
    return f"position_{position}"


@scorer(metrics={"*": [mean(), stderr()]})
def joint_rating(
    temperature: float | None = 0.1,
    seed: int | None = 0,
    rating_format: str = "auto",
    max_attempts: int = 3,
) -> Scorer:
    """``Score.value``: ``human``, ``llm``, ``revised`` and ``position_1`` .. ``position_3``
    (0-100, NaN when missing), from one call that shows the three responses labelled A/B/C.

    Asked only when all three candidates were produced (otherwise the positions would not be
    balanced): a missing candidate makes every key NaN with ``upstream_failed``.
    ``Score.metadata``: ``order`` (the response type at each position), ``labels`` (label ->
    response type), ``missing_reasons`` and the raw rating record.
    """

    @counts_model_calls
    async def score(state: TaskState, target: Target) -> Score:
        snippet = Snippet.model_validate(state.metadata["snippet"])
        order = list(state.metadata.get("joint_order") or RESPONSE_TYPES)
        record = store_as(Comparison)
        labels = labels_for(len(order))
        keys = [*RESPONSE_TYPES, *(position_key(p) for p in range(1, len(order) + 1))]
        unproduced = [kind for kind in order if kind not in record.candidates]
        metadata = {"order": order, "labels": dict(zip(labels, order)), "transcript_id": snippet.transcript_id,
                    "client_id": snippet.client_id}
        if unproduced:
            why = "; ".join(record.unavailable.get(kind, f"upstream_failed: the {kind} response is not in the store")
                            for kind in unproduced)
            reason = f"upstream_failed: not asked, since not all responses were produced ({why})"
            return Score(value={key: NAN for key in keys}, explanation="not asked: a response was not produced",
                         metadata={**metadata, "missing_reasons": {key: reason for key in keys}, "rating": None})

        call = CallSettings.for_epoch(temperature, seed, state.epoch)
        stops: list[StopRecord] = []
        options = [{"label": label, "response": record.candidates[kind]} for label, kind in zip(labels, order)]
        user = prompt("rating_joint", "user", transcript=client_view_dialogue(snippet), options=options,
                      json_form=joint_json_form(labels))
        result = await ask_joint_ratings(
            "client", client_view_messages(snippet, user), call.config(), labels, rating_format=rating_format,
            max_attempts=max_attempts, step="rating_joint", stops=stops,
        )
        value: dict[str, float] = {}
        missing_reasons: dict[str, str] = {}
        for position, (label, kind) in enumerate(zip(labels, order), start=1):
            rating = result.values.get(label, NAN)
            value[kind] = value[position_key(position)] = rating
            if math.isnan(rating):
                missing_reasons[kind] = missing_reasons[position_key(position)] = result.reason(label) or ""
        shown = ", ".join(f"{label}={kind}:{'missing' if math.isnan(value[kind]) else f'{value[kind]:g}'}"
                          for label, kind in zip(labels, order))
        return Score(
            value={key: value[key] for key in keys},
            explanation=shown,
            metadata={**metadata, "missing_reasons": missing_reasons, "rating": result.model_dump(),
                      "stops": [s.model_dump() for s in stops]},
        )

    return score
