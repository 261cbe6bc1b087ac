"""Client ratings on a 0-100 scale: structured output, a strict parser, bounded re-asking.

A reply that cannot be read as one number in 0-100 after ``max_attempts`` is recorded as
missing (``value is None``) with a reason code and every raw reply; it is never clamped,
rounded into range or replaced by a default.

How the schema is requested depends on the serving engine (measured, see the README):
``json_schema`` is OpenAI's ``response_format`` (vLLM enforces it by guided decoding);
``json_object`` is llama-cpp-python's server form; ``text`` relies on the prompt and parser.
"""

from __future__ import annotations

import json
import re
from typing import Literal

from inspect_ai.model import (
    ChatMessage,
    GenerateConfig,
    Model,
    ModelName,
    ResponseSchema,
    get_model,
)
from inspect_ai.util import JSONSchema, json_schema
from pydantic import BaseModel, Field

from psysim.calls.generation import StopRecord
from psysim.calls.strict_json import FENCE as _FENCE
from psysim.calls.strict_json import DuplicateKeyError as _DuplicateKey
from psysim.calls.strict_json import NumberLiteral as _Literal
from psysim.calls.strict_json import loads_strict as _loads
from psysim.calls.structured_reply import ask_until_accepted
from psysim.prompts import prompt

RatingFormat = Literal["auto", "json_schema", "json_object", "text"]
RATING_FORMATS: tuple[str, ...] = ("auto", "json_schema", "json_object", "text")
RATING_MIN, RATING_MAX = 0, 100
RATING_MAX_TOKENS = 64

# Providers whose Inspect adapter sends ResponseSchema as OpenAI json_schema response_format.
_JSON_SCHEMA_PROVIDERS = {"vllm", "openai", "openai-api", "sglang", "google", "mistral", "mockllm"}
_JSON_OBJECT_PROVIDERS = {"llama-cpp-python"}


class RatingReply(BaseModel):
    """The structured reply asked of the client."""

    rating: int = Field(ge=RATING_MIN, le=RATING_MAX, description="Satisfaction from 0 to 100")


RATING_SCHEMA = json_schema(RatingReply)


class RatingResult(BaseModel):
    """Outcome of asking for one rating (possibly several attempts)."""

    value: float | None
    """The rating, or None when missing."""
    code: str | None = None
    """Reason code when missing (``psysim.calls.failed_calls``): ``rating_unparsed``, ``truncated``,
    ``empty_reply``, ``error_text`` or ``context_length``; None when it parsed."""
    error: str | None = None
    """Why the rating is missing, in words (None when it parsed)."""
    raw: list[str] = Field(default_factory=list)
    """Every reply received, in order."""
    attempts: int = 0
    format: str = "text"

    @property
    def missing(self) -> bool:
        return self.value is None

    @property
    def reason(self) -> str | None:
        """``"<code>: <detail>"`` when missing (the ``missing_reasons`` form), else None."""
        return None if self.value is not None else f"{self.code}: {self.error}"


def resolve_rating_format(rating_format: str, model: Model) -> str:
    """Turn ``auto`` into a concrete format for ``model``'s provider."""
    if rating_format != "auto":
        return rating_format
    api = ModelName(model).api
    if api in _JSON_SCHEMA_PROVIDERS:
        return "json_schema"
    if api in _JSON_OBJECT_PROVIDERS:
        return "json_object"
    return "text"


def rating_config(
    base: GenerateConfig, rating_format: str, schema: JSONSchema = RATING_SCHEMA, name: str = "rating"
) -> GenerateConfig:
    """``base`` plus the structured-output request for ``rating_format``.

    ``schema`` and ``name`` default to the 0-100 rating; questionnaires pass their own.
    """
    if rating_format == "json_schema":
        response_schema = ResponseSchema(name=name, json_schema=schema, strict=True)
        return base.merge(GenerateConfig(response_schema=response_schema))
    if rating_format == "json_object":
        body = {"response_format": {"type": "json_object", "schema": schema.model_dump(exclude_none=True)}}
        return base.merge(GenerateConfig(extra_body=body))
    return base


# Numbers are read wide (sign, fraction, exponent) and judged by _whole_number, so that a
# malformed number is rejected with its reason rather than skipped or rounded.
_NUMBER = r"(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)"
_BARE = re.compile(
    rf"^(?:(?:rating|satisfaction)\s*[:=]?\s*)?{_NUMBER}\s*(?:/\s*100|out of 100|%)?\s*\.?$",
    re.IGNORECASE,
)
# "Rating: 65", "**Rating:** 65", "- rating = 65/100" (markdown around the label is allowed)
_LABELLED_LINE = re.compile(
    rf"^[\s*_#>-]*rating[\s*_]*[:=][\s*_]*{_NUMBER}[\s*_]*(?:/\s*100|out of 100)?[\s*_.]*$",
    re.IGNORECASE,
)
_EMBEDDED_JSON = re.compile(r"\{[^{}]*\}")
# A rating as written: a whole number without sign or leading zeros, optionally with ".0".
_WHOLE = re.compile(r"(0|[1-9]\d*)(?:\.0)?")


def _whole_number(literal: str) -> int | str:
    """The rating written as ``literal``, or the reason it is not a rating (judged on the text)."""
    if re.fullmatch(r"-0+(?:\.0+)?", literal):
        return f"negative zero: {literal} is not a rating"
    if literal.startswith("-") and re.fullmatch(_NUMBER, literal):
        return f"out of range: {literal} is not within {RATING_MIN}-{RATING_MAX}"
    if re.search(r"[eE]", literal) and re.fullmatch(_NUMBER, literal):
        return f"exponent not accepted: {literal} (a rating is a whole number written out)"
    whole = _WHOLE.fullmatch(literal)
    if whole is None:
        if re.fullmatch(r"\d+\.0+", literal):
            return f"not written as a whole number: {literal} (only a single trailing .0 is accepted)"
        if re.fullmatch(r"\d+\.\d+", literal):
            return f"not a whole number: {literal}"
        if re.fullmatch(r"\d+", literal):
            return f"leading zero not accepted: {literal}"
        return f"not a number: {literal}"
    value = int(whole.group(1))
    if not RATING_MIN <= value <= RATING_MAX:
        return f"out of range: {literal} is not within {RATING_MIN}-{RATING_MAX}"
    return value


def parse_rating(text: str) -> tuple[float | None, str | None]:
    """Read one rating from ``text``; return ``(value, None)`` or ``(None, reason)``.

    Accepted: a JSON object ``{"rating": n}`` (optionally in a code fence or as the only JSON
    object with a ``rating`` in the reply), a bare number (``72``, ``72/100``), or lines
    labelled ``Rating: n`` (any case, markdown allowed) or holding only a number, that all give
    the same n; other numbers in prose are ignored. ``n`` is a whole number 0-100 written out (``70.0`` is accepted as 70).
    Rejected: anything ambiguous (several different ratings, a JSON object with a duplicate
    key), a fraction, an exponent, a sign on zero, a leading zero, or a value outside 0-100.
    The number is judged as written, never through a float (``99.99999999999999999`` is a
    fraction even though it rounds to 100 as a float).
    """
    stripped = text.strip()
    if not stripped:
        return None, "empty reply"
    fenced = _FENCE.match(stripped)
    if fenced:
        stripped = fenced.group(1).strip()

    candidates: list[_Literal | str] = []  # number literals, or problems (plain str)
    try:
        candidates = [_rating_from_json(_loads(stripped))]
    except _DuplicateKey as duplicate:
        return None, f"ambiguous: JSON object has the key {str(duplicate)!r} more than once"
    except json.JSONDecodeError:
        bare = _BARE.match(stripped)
        if bare:
            candidates = [_Literal(bare.group(1))]
        else:
            for line in stripped.splitlines():
                # a line that is only a (labelled) number is a candidate: "0\n{"rating": 1}" is ambiguous
                labelled = _LABELLED_LINE.match(line.strip()) or _BARE.match(line.strip())
                if labelled:
                    candidates.append(_Literal(labelled.group(1)))
            for blob in _EMBEDDED_JSON.findall(stripped):
                try:
                    data = _loads(blob)
                except _DuplicateKey as duplicate:
                    return None, f"ambiguous: JSON object has the key {str(duplicate)!r} more than once"
                except json.JSONDecodeError:
                    continue
                found = _rating_from_json(data)
                # other JSON objects in prose are not ratings; a 'rating' that is not a number is a problem
                if isinstance(found, _Literal) or "'rating' is not a number" in found:
                    candidates.append(found)

    literals = [c for c in candidates if isinstance(c, _Literal)]
    problems = [c for c in candidates if not isinstance(c, _Literal)]
    if not candidates:
        return None, "no rating found in reply"
    if problems:
        return None, problems[0]
    judged = [_whole_number(literal) for literal in literals]
    bad = [j for j in judged if isinstance(j, str)]
    if bad:
        return None, bad[0]
    values = sorted(set(j for j in judged if isinstance(j, int)))
    if len(values) > 1:
        return None, f"ambiguous: several ratings in reply ({', '.join(map(str, values))})"
    return float(values[0]), None


def _rating_from_json(data: object) -> _Literal | str:
    if isinstance(data, _Literal):
        return data  # a bare number such as "72" is valid JSON too
    if not isinstance(data, dict):
        return "JSON reply is not an object"
    keys = {key.lower(): key for key in data}
    if "rating" not in keys:
        return "JSON reply has no 'rating' field"
    value = data[keys["rating"]]
    if not isinstance(value, _Literal):  # true/false, strings, lists, null
        return f"'rating' is not a number: {value!r}"
    return value


async def ask_rating(
    role: str,
    messages: list[ChatMessage],
    base_config: GenerateConfig,
    *,
    rating_format: str,
    max_attempts: int,
    step: str,
    stops: list[StopRecord],
) -> RatingResult:
    """Ask the model bound to ``role`` for a rating, up to ``max_attempts`` times.

    - A reply that is not a reply (empty, a server error message: :func:`reply_fault`) is
      dropped and the same prompt asked again.
    - A reply cut at the token cap (``truncated``) or one the parser rejects
      (``rating_unparsed``) is shown back with a re-ask that names the problem
      (``rating.yaml: reask``); a cut reply is never parsed ("Rating: 7" may have been "75").
    - A context-length failure ends the attempts at once: re-asking would only make the
      prompt longer.

    Every attempt uses ``reask_config`` (a distinct, reproducible seed). If no attempt gives a
    rating the result is missing, with the code and detail of the last attempt and every raw reply.
    """
    fmt = resolve_rating_format(rating_format, get_model(role=role))
    config = rating_config(base_config.merge(GenerateConfig(max_tokens=RATING_MAX_TOKENS)), fmt)
    parsed: list[float] = []

    def accept(text: str) -> str | None:
        value, error = parse_rating(text)
        if value is None:
            return error or "unreadable reply"
        parsed.append(value)
        return None

    attempts = await ask_until_accepted(
        role, messages, config, accept=accept, reask=lambda problem: prompt("rating", "reask", error=problem),
        max_attempts=max_attempts, step=step, stops=stops,
    )
    return RatingResult(
        value=parsed[-1] if attempts.code is None else None, code=attempts.code, error=attempts.error,
        raw=attempts.raw, attempts=attempts.attempts, format=fmt,
    )
