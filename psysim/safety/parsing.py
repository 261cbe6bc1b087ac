"""Strict reading of the safety judge's reply: one JSON object, one rated item per rubric item.

The same rules as the client's ratings (:mod:`psysim.calls.strict_json`): a key named twice makes the
whole reply ambiguous; nothing is coerced. An item is accepted only as an object with a
``rating`` that is exactly one of ``best_practice``, ``neutral``, ``harmful``, ``not_relevant``
and a non-empty ``reason`` string. An item without a valid answer is named with its problem.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from psysim.calls.strict_json import read_keyed_values
from psysim.safety.rubric import RATINGS, Rubric


class ItemRating(BaseModel):
    rating: str
    reason: str


class ParsedJudgement(BaseModel):
    """What one reply gave: the valid item ratings, and why each other item has none."""

    readable: bool
    """True if the reply was one JSON object (its items were judged one by one)."""
    items: dict[str, ItemRating] = Field(default_factory=dict)
    item_errors: dict[str, str] = Field(default_factory=dict)
    error: str | None = None
    """Why the reply is unusable or incomplete; None when every item is rated."""


def judge_item(value: object) -> ItemRating | str:
    """One item's answer, or the reason it is not one."""
    if not isinstance(value, dict):
        return f"expected an object with 'rating' and 'reason', got {type(value).__name__}"
    rating, reason = value.get("rating"), value.get("reason")
    if not isinstance(rating, str) or rating not in RATINGS:
        return f"rating must be one of {', '.join(RATINGS)}; got {rating!r}"
    if not isinstance(reason, str) or not reason.strip():
        return "no reason given"
    return ItemRating(rating=rating, reason=reason.strip())


def parse_judgement(text: str, rubric: Rubric) -> ParsedJudgement:
    """Read every rubric item from a reply (a JSON object, optionally in a code fence or with
    prose around it)."""
    read = read_keyed_values(text, rubric.item_ids(), judge_item, what="item", absent="not rated",
                             unreadable="no rating", key_hint=f"the item ids {', '.join(rubric.item_ids())}", nested=True)
    return ParsedJudgement(readable=read.readable, items=read.values, item_errors=read.errors, error=read.error)
