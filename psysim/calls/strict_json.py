"""Strict JSON reading for model replies: numbers kept as written, duplicate keys rejected.

Shared by the 0-100 rating parser (:mod:`psysim.calls.rating`), the questionnaire and joint-rating
parser (:mod:`psysim.questionnaires.parsing`) and the safety judge's parser
(:mod:`psysim.safety.parsing`; these two read one value per key with :func:`read_keyed_values`),
so all judge a reply by the same rules: a number is
judged on its digits, never through a float (``99.99999999999999999`` would round to 100),
and an object that names a key twice (``{"rating": 85, "rating": 20}``, also differing only
in case) is ambiguous, where ``json`` would silently keep the last value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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


@dataclass(frozen=True)
class KeyedValues:
    """One value per expected key of a reply's JSON object, judged key by key."""

    readable: bool
    """True if the reply was one JSON object (its keys were judged one by one)."""
    values: dict[str, Any]
    errors: dict[str, str]
    """Key -> why it has no value (every expected key without a value is here)."""
    error: str | None
    """Why the reply as a whole is unusable or incomplete; None when every key has a value."""


def read_keyed_values(
    text: str,
    ids: list[str],
    judge: Callable[[object], Any],
    *,
    what: str,
    absent: str,
    unreadable: str,
    key_hint: str,
    nested: bool = False,
) -> KeyedValues:
    """Read one value per key of ``ids`` from the reply's JSON object (:func:`reply_object`).

    ``judge`` returns the accepted value, or a string saying why the answer is not one. Keys
    that are not expected do not invalidate the others; they are named (with ``key_hint``, what
    the keys should be) only when an expected key has no value.

    Args:
        text: The reply.
        ids: The keys expected.
        judge: One answer's value, or the reason (a string) it is not one.
        what: What a key is called in messages (``item``, ``response``).
        absent: A key's problem when it is missing (``not answered``).
        unreadable: The prefix of every key's problem when the reply is unusable as a whole.
        key_hint: What the keys should be, for the unknown-keys message.
        nested: Passed to :func:`reply_object` (answers that are objects themselves).
    """
    try:
        data = reply_object(text, nested=nested)
    except ReplyObjectError as ex:
        return _unreadable(ids, unreadable, str(ex))
    if not isinstance(data, dict):
        return _unreadable(ids, unreadable, "the reply is not a JSON object")
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for key in ids:
        if key not in data:
            errors[key] = f"{absent} (key missing)"
            continue
        judged = judge(data[key])
        if isinstance(judged, str):
            errors[key] = judged
        else:
            values[key] = judged
    problems = [f"{what} {key}: {why}" for key, why in errors.items()]
    unknown = [str(key) for key in data if key not in ids]
    if unknown and errors:  # extra keys beside a full set of answers are harmless
        problems.append(f"unknown keys {unknown} (the keys are {key_hint})")
    return KeyedValues(readable=True, values=values, errors=errors, error="; ".join(problems) or None)


def _unreadable(ids: list[str], prefix: str, reason: str) -> KeyedValues:
    return KeyedValues(readable=False, values={}, errors={i: f"{prefix}: {reason}" for i in ids}, error=reason)
