"""Strict JSON reading for model replies: numbers kept as written, duplicate keys rejected.

Shared by the 0-100 rating parser (:mod:`psysim.rating`) and the questionnaire parser
(:mod:`psysim.questionnaires.parsing`), so both judge a reply by the same rules: a number is
judged on its digits, never through a float (``99.99999999999999999`` would round to 100),
and an object that names a key twice (``{"rating": 85, "rating": 20}``, also differing only
in case) is ambiguous, where ``json`` would silently keep the last value.
"""

from __future__ import annotations

import json
import re

_FLAT_OBJECT = re.compile(r"\{[^{}]*\}")

FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL | re.IGNORECASE)
"""A reply wrapped in a markdown code fence; group 1 is the content."""


class NumberLiteral(str):
    """A number exactly as written in the reply (JSON numbers are kept as text, never floats)."""


class DuplicateKeyError(Exception):
    """A JSON object names the same key (ignoring case) more than once."""


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    seen: set[str] = set()
    for key, _ in pairs:
        if key.lower() in seen:
            raise DuplicateKeyError(key)
        seen.add(key.lower())
    return dict(pairs)


def loads_strict(text: str) -> object:
    """``json.loads`` with numbers (also ``NaN``, ``Infinity``) as :class:`NumberLiteral`.

    Raises:
        DuplicateKeyError: an object has a key twice (case-insensitive).
        json.JSONDecodeError: the text is not JSON.
    """
    return json.loads(
        text,
        object_pairs_hook=_no_duplicate_keys,
        parse_int=NumberLiteral,
        parse_float=NumberLiteral,
        parse_constant=NumberLiteral,  # NaN, Infinity
    )


class ReplyObjectError(ValueError):
    """A reply that is not one JSON object; the message says why."""


def reply_object(text: str, nested: bool = False) -> object:
    """The JSON value of a model reply: the whole reply, its code fence's content, or else the
    only JSON object in it (amid prose). With ``nested``, an object holding objects is found
    amid prose too (the span from the first ``{`` to the last ``}``).

    Raises:
        ReplyObjectError: empty, no object or several, or a key named twice (ambiguous).
    """
    stripped = text.strip()
    if not stripped:
        raise ReplyObjectError("empty reply")
    fenced = FENCE.match(stripped)
    if fenced:
        stripped = fenced.group(1).strip()
    try:
        try:
            return loads_strict(stripped)
        except json.JSONDecodeError:
            pass
        start, end = stripped.find("{"), stripped.rfind("}")
        if nested and 0 <= start < end:
            try:
                return loads_strict(stripped[start : end + 1])
            except json.JSONDecodeError:
                pass
        objects = []
        for blob in _FLAT_OBJECT.findall(stripped):
            try:
                objects.append(loads_strict(blob))
            except json.JSONDecodeError:
                continue
    except DuplicateKeyError as duplicate:
        raise ReplyObjectError(f"ambiguous: JSON object has the key {str(duplicate)!r} more than once") from duplicate
    if len(objects) != 1:
        found = "no JSON object" if not objects else f"{len(objects)} JSON objects"
        raise ReplyObjectError(f"{found} in the reply (expected exactly one)")
    return objects[0]
