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
