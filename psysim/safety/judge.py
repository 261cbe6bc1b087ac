"""Asking the ``safety_judge`` role to rate therapist turns against the safety rubric.

The client's structured-answer machinery (:func:`psysim.calls.structured_reply.ask_until_accepted`):
the rubric's JSON schema sent as ``rating_format`` says, a strict parser
(:mod:`psysim.safety.parsing`), bounded re-asks naming the problem, faults (empty, error text,
context length, truncation) detected and recorded. Nothing is coerced: when an item has no
valid rating after every attempt, the session has no safety score, with the reason and every raw
reply kept (no proration over the items that were rated).
"""

from __future__ import annotations

from inspect_ai.model import (
    ChatMessageSystem,
    ChatMessageUser,
    GenerateConfig,
    get_model,
)
from pydantic import BaseModel, Field

from psysim.calls.generation import StopRecord
from psysim.calls.rating import rating_config, resolve_rating_format
from psysim.calls.structured_reply import ask_until_accepted
from psysim.prompts import prompt
from psysim.safety.parsing import ItemRating, ParsedJudgement, parse_judgement
from psysim.safety.rubric import NOT_RELEVANT, Rubric, session_safety

JUDGE_ROLE = "safety_judge"
"""Model role of the judge; unbound, it falls back to the main model (``--model``)."""
JUDGE_MAX_TOKENS = 900
"""Cap on one judge reply (six items, each a sentence of reason)."""


class SafetyJudgement(BaseModel):
    """One judged part (a session, or a scripted response), as kept in the score metadata."""

    items: dict[str, ItemRating] = Field(default_factory=dict)
    """Valid item ratings, all from one reply (the latest readable one)."""
    item_errors: dict[str, str] = Field(default_factory=dict)
    """Item id -> why it has no rating; empty when every item was rated."""
    score: float | None = None
    """Mean over the relevant items (+1/0/-1); None when missing (see ``code``)."""
    harmful: int | None = None
    """Items rated harmful (None when an item has no rating)."""
    relevant: int | None = None
    code: str | None = None
    """Why ``score`` is missing: a failure code (``rating_unparsed``, ``truncated``,
    ``empty_reply``, ``error_text``, ``context_length``) or ``not_relevant`` (every item was
    rated not relevant: not a fault); None when scored."""
    error: str | None = None
    raw: list[str] = Field(default_factory=list)
    attempts: int = 0
    format: str = "text"

    @property
    def reason(self) -> str | None:
        """``"<code>: <detail>"`` when the score is missing (the ``missing_reasons`` form)."""
        return None if self.score is not None else f"{self.code}: {self.error}"


def judge_prompt(rubric: Rubric, dialogue: str, part: str, context: str = "") -> str:
    json_form = "{" + ", ".join(f'"{i}": {{"reason": "...", "rating": "..."}}' for i in rubric.item_ids()) + "}"
    return prompt("safety_judge", "user", context=context, dialogue=dialogue, part=part,
                  items=rubric.items, json_form=json_form)


async def ask_safety_judge(
    rubric: Rubric,
    dialogue: str,
    part: str,
    config: GenerateConfig,
    *,
    context: str = "",
    rating_format: str,
    max_attempts: int,
    step: str,
    stops: list[StopRecord],
) -> SafetyJudgement:
    """Rate the therapist's turns in ``dialogue`` (``part`` names it, e.g. "session 3").

    Args:
        context: Earlier conversation shown for context only.
    """
    fmt = resolve_rating_format(rating_format, get_model(role=JUDGE_ROLE))
    config = rating_config(config.merge(GenerateConfig(max_tokens=JUDGE_MAX_TOKENS)), fmt,
                           schema=rubric.json_schema(), name="safety_rubric")
    messages = [ChatMessageSystem(content=prompt("safety_judge", "system")),
                ChatMessageUser(content=judge_prompt(rubric, dialogue, part, context))]
    kept: list[ParsedJudgement] = []

    def accept(text: str) -> str | None:
        parsed = parse_judgement(text, rubric)
        if parsed.readable:
            kept.append(parsed)
        return parsed.error

    def reask(problem: str) -> str:
        return prompt("safety_judge", "reask", error=problem, ids=", ".join(rubric.item_ids()))

    attempts = await ask_until_accepted(JUDGE_ROLE, messages, config, accept=accept, reask=reask,
                                        max_attempts=max_attempts, step=step, stops=stops)
    result = SafetyJudgement(code=attempts.code, error=attempts.error, raw=attempts.raw,
                             attempts=attempts.attempts, format=fmt)
    if kept:
        result.items, result.item_errors = kept[-1].items, kept[-1].item_errors
    else:
        result.item_errors = {i: f"no rating: {result.code}: {result.error}" for i in rubric.item_ids()}
    if result.item_errors:
        result.code = result.code or "rating_unparsed"
        return result
    scored = session_safety({i: r.rating for i, r in result.items.items()})
    result.harmful, result.relevant, result.score = scored.harmful, scored.relevant, scored.score
    if scored.score is None:
        result.code, result.error = NOT_RELEVANT, "the judge rated every rubric item not relevant"
    return result
