"""Strict reading of a questionnaire reply: one JSON object, one number per item.

The same rules as the 0-100 rating (:mod:`psysim.calls.rating`): numbers are judged as written,
never through a float, and never coerced. An item's answer is accepted only if it is a
number within the instrument's range with no more decimal places than the scale allows (a
whole-number scale also accepts a single trailing ``.0``); a string ``"4"``, ``4.5`` on a
whole-number scale, ``7.25`` on a one-decimal scale, an exponent, ``-0``, a leading zero,
``NaN`` or a value out of range is that item's problem, and the item has no answer. An object
that names a key twice is ambiguous as a whole: no item of it is used.
"""

from __future__ import annotations

import re
from decimal import Decimal

from pydantic import BaseModel, Field

from psysim.calls.strict_json import NumberLiteral, read_keyed_values
from psysim.questionnaires.instrument import Instrument, ResponseScale

_PLAIN_NUMBER = re.compile(r"-?(0|[1-9]\d*)(?:\.(\d+))?")
_ANY_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")


class ParsedAnswers(BaseModel):
    """What one reply gave: the valid answers, and why each other item has none."""

    readable: bool
    """True if the reply was one JSON object (its items were judged one by one)."""
    answers: dict[str, float] = Field(default_factory=dict)
    item_errors: dict[str, str] = Field(default_factory=dict)
    """Item id -> why it has no answer (every item without an answer is here)."""
    error: str | None = None
    """Why the reply as a whole is unusable or incomplete; None when every item is answered."""


def judge_answer(value: object, scale: ResponseScale) -> float | str:
    """The answer ``value`` (as parsed by :func:`loads_strict`) or the reason it is not one."""
    if value is None:
        return "no answer (null)"
    if not isinstance(value, NumberLiteral):  # strings, true/false, lists: never coerced
        return f"not a number: {value!r}"
    literal = str(value)
    plain = _PLAIN_NUMBER.fullmatch(literal)
    if plain is None:
        if re.search(r"[eE]", literal) and _ANY_NUMBER.fullmatch(literal):
            return f"exponent not accepted: {literal} (write the number out)"
        if re.fullmatch(r"-?0\d+(?:\.\d+)?", literal):
            return f"leading zero not accepted: {literal}"
        return f"not a number: {literal}"
    if re.fullmatch(r"-0+(?:\.0+)?", literal):
        return f"negative zero: {literal} is not an answer"
    fraction = plain.group(2) or ""
    if scale.decimals == 0 and fraction not in ("", "0"):
        if set(fraction) == {"0"}:
            return f"not written as a whole number: {literal} (only a single trailing .0 is accepted)"
        return f"not a whole number: {literal} (this scale takes whole numbers)"
    if scale.decimals > 0 and len(fraction) > scale.decimals:
        return f"too many decimal places: {literal} (at most {scale.decimals})"
    number = Decimal(literal)
    if not scale.min <= number <= scale.max:
        return f"out of range: {literal} is not within {scale.min}-{scale.max}"
    return float(number)


def parse_answers(text: str, instrument: Instrument) -> ParsedAnswers:
    """Read ``instrument``'s items from a reply (JSON object, optionally in a code fence, or the
    only JSON object in the reply).

    Keys that are not item ids do not invalidate the items that are present; when items are
    missing they are named in ``error`` (the client may have used other keys).
    """
    return parse_keyed_answers(text, instrument.item_ids(), instrument.response_scale)


def parse_keyed_answers(text: str, ids: list[str], scale: ResponseScale, what: str = "item") -> ParsedAnswers:
    """Read one number per key of ``ids`` on ``scale`` from a reply, by the rules of
    :func:`parse_answers` (which is this with an instrument's item ids and scale).

    Args:
        text: The reply.
        ids: The keys expected in the JSON object.
        scale: The range and decimals every answer must respect.
        what: What a key is called in error messages (``item``, ``response``).
    """
    names = "numbers" if what == "item" else "labels"
    read = read_keyed_values(text, ids, lambda value: judge_answer(value, scale), what=what, absent="not answered",
                             unreadable="no answer", key_hint=f"the {what} {names} {ids[0]}-{ids[-1]}")
    return ParsedAnswers(readable=read.readable, answers=read.values, item_errors=read.errors, error=read.error)
