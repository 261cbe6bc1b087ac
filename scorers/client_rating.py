"""Scorer for Experiment 2: the Client rates each candidate response, blind to its source."""

from __future__ import annotations

import math

from inspect_ai.model import ChatMessage, ChatMessageSystem, ChatMessageUser
from inspect_ai.scorer import Score, Scorer, Target, mean, scorer, stderr
from inspect_ai.solver import TaskState
from inspect_ai.util import collect, store_as

from psysim.calls.generation import CallSettings, StopRecord, counts_model_calls
from psysim.calls.rating import RatingResult, ask_rating
from psysim.dialogue.transcript import format_dialogue
from psysim.inputs.snippets import Snippet
from psysim.prompts import prompt
from psysim.solvers.human_comparison import RESPONSE_TYPES, Comparison, topic_of

CLIENT_VIEW = {"client": "You", "therapist": "Therapist"}


@scorer(metrics={"*": [mean(), stderr()]})
def client_rating(
    temperature: float | None = 0.1,
    seed: int | None = 0,
    rating_format: str = "auto",
    max_attempts: int = 3,
) -> Scorer:
    """``Score.value``: ``human``, ``llm``, ``revised`` (0-100, NaN when missing).

    One rating call per response: the prompts differ only in the response text, so the client
    cannot tell which response is the human one. The calls are independent and run
    concurrently. A candidate the solver could not produce is not rated: NaN, with its
    ``upstream_failed`` reason. ``Score.metadata["missing_reasons"]`` maps every NaN key to
    ``"<code>: <detail>"``; raw replies, errors, candidates, failed calls and critique go to
    metadata too.
    """

    @counts_model_calls
    async def score(state: TaskState, target: Target) -> Score:
        snippet = Snippet.model_validate(state.metadata["snippet"])
        record = store_as(Comparison)
        call = CallSettings.for_epoch(temperature, seed, state.epoch)
        stops: list[StopRecord] = []
        ratings, value, missing_reasons = await rate_candidates(
            snippet, record, call, rating_format, max_attempts, stops
        )
        return Score(
            value=value,
            answer=record.candidates.get("llm", ""),
            explanation=", ".join(
                f"{kind}={'missing' if math.isnan(v) else f'{v:g}'}" for kind, v in value.items()
            ),
            metadata={
                "candidates": record.candidates,
                "critique": record.critique,
                "reviser": record.reviser,
                "missing_reasons": missing_reasons,
                "failures": [f.model_dump() for f in record.failures],
                "ratings": {kind: None if r is None else r.model_dump() for kind, r in ratings.items()},
                "stops": [s.model_dump() for s in [*record.stops, *stops]],
                "transcript_id": snippet.transcript_id,
                "client_id": snippet.client_id,
                "labels": snippet.labels,
            },
        )

    return score


async def rate_candidates(
    snippet: Snippet,
    record: Comparison,
    call: CallSettings,
    rating_format: str,
    max_attempts: int,
    stops: list[StopRecord],
) -> tuple[dict[str, RatingResult | None], dict[str, float], dict[str, str]]:
    """Each produced candidate rated blind in its own call, concurrently.

    Returns:
        ``(ratings, value, missing_reasons)``: per response type the rating record (None for a
        candidate not produced), the rating (NaN when missing), and ``"<code>: <detail>"`` for
        every NaN (``upstream_failed`` for a candidate not produced).
    """
    rated = [kind for kind in RESPONSE_TYPES if kind in record.candidates]
    results = await collect(
        *(
            rate_response(snippet, record.candidates[kind], kind, call, rating_format, max_attempts, stops)
            for kind in rated
        )
    )
    ratings: dict[str, RatingResult | None] = {kind: None for kind in RESPONSE_TYPES}
    ratings.update(zip(rated, results))
    value: dict[str, float] = {}
    missing_reasons: dict[str, str] = {}
    for kind, result in ratings.items():
        value[kind] = float("nan") if result is None or result.value is None else result.value
        if result is None:
            missing_reasons[kind] = record.unavailable.get(
                kind, f"upstream_failed: the {kind} response is not in the sample store"
            )
        elif result.value is None:
            missing_reasons[kind] = result.reason or "rating_unparsed"
    return ratings, value, missing_reasons


def client_view_messages(snippet: Snippet, user: str) -> list[ChatMessage]:
    """The client's system prompt (as in the transcript ratings) and ``user``."""
    return [
        ChatMessageSystem(content=prompt("client", "transcript_system", topic=topic_of(snippet))),
        ChatMessageUser(content=user),
    ]


def client_view_dialogue(snippet: Snippet) -> str:
    """The snippet's context from the client's side ("You:" / "Therapist:")."""
    return format_dialogue(list(snippet.context), labels=CLIENT_VIEW)


async def rate_response(
    snippet: Snippet,
    response: str,
    kind: str,
    call: CallSettings,
    rating_format: str,
    max_attempts: int,
    stops: list[StopRecord],
) -> RatingResult:
    """One blind rating: the client sees the context from its own side and one response."""
    messages = client_view_messages(
        snippet, prompt("rating", "response_user", transcript=client_view_dialogue(snippet), response=response)
    )
    return await ask_rating(
        "client", messages, call.config(), rating_format=rating_format, max_attempts=max_attempts,
        # the step name is for our own stop records only; it never reaches the client
        step=f"rating_{kind}", stops=stops,
    )
