"""Client ratings on a 0-100 scale: structured output, a strict parser, bounded re-asking.

A reply that cannot be read as one number in 0-100 after ``max_attempts`` is recorded as
missing (``value is None``) together with every raw reply; it is never clamped, rounded into
range or replaced by a default.

How the schema is requested depends on the serving engine (measured, see the README):
``json_schema`` is OpenAI's ``response_format`` (vLLM enforces it by guided decoding);
``json_object`` is llama-cpp-python's server form; ``text`` relies on the prompt and parser.
"""

from __future__ import annotations

import json
import math
import re
from typing import Literal

from inspect_ai.model import (
    ChatMessage,
    ChatMessageAssistant,
    ChatMessageUser,
    GenerateConfig,
    Model,
    ModelName,
    ResponseSchema,
    get_model,
)
from inspect_ai.util import json_schema
from pydantic import BaseModel, Field

from psysim.generation import StopRecord, generate_reply
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
    error: str | None = None
    """Why the rating is missing (None when it parsed)."""
    raw: list[str] = Field(default_factory=list)
    """Every reply received, in order."""
    attempts: int = 0
    format: str = "text"

    @property
    def missing(self) -> bool:
        return self.value is None


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


def rating_config(base: GenerateConfig, rating_format: str) -> GenerateConfig:
    """``base`` plus the structured-output request for ``rating_format``."""
    if rating_format == "json_schema":
        schema = ResponseSchema(name="rating", json_schema=RATING_SCHEMA, strict=True)
        return base.merge(GenerateConfig(response_schema=schema))
    if rating_format == "json_object":
        body = {"response_format": {"type": "json_object", "schema": RATING_SCHEMA.model_dump(exclude_none=True)}}
        return base.merge(GenerateConfig(extra_body=body))
    return base


_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL | re.IGNORECASE)
_BARE = re.compile(
    r"^(?:(?:rating|satisfaction)\s*[:=]?\s*)?(-?\d+(?:\.\d+)?)\s*(?:/\s*100|out of 100|%)?\s*\.?$",
    re.IGNORECASE,
)
# "Rating: 65", "**Rating:** 65", "- rating = 65/100" (markdown around the label is allowed)
_LABELLED_LINE = re.compile(
    r"^[\s*_#>-]*rating[\s*_]*[:=][\s*_]*(-?\d+(?:\.\d+)?)[\s*_]*(?:/\s*100|out of 100)?[\s*_.]*$",
    re.IGNORECASE,
)
_EMBEDDED_JSON = re.compile(r"\{[^{}]*\}")


def parse_rating(text: str) -> tuple[float | None, str | None]:
    """Read one rating from ``text``; return ``(value, None)`` or ``(None, reason)``.

    Accepted: a JSON object ``{"rating": n}`` (optionally in a code fence or as the only JSON
    object in the reply), a bare number (``72``, ``72/100``), or lines labelled ``Rating: n``
    (any case, markdown allowed) that all give the same n; other numbers in prose are ignored.
    Anything ambiguous, fractional or outside 0-100 is rejected.
    """
    stripped = text.strip()
    if not stripped:
        return None, "empty reply"
    fenced = _FENCE.match(stripped)
    if fenced:
        stripped = fenced.group(1).strip()

    candidates: list[object] = []
    try:
        candidates = [_rating_from_json(json.loads(stripped))]
    except json.JSONDecodeError:
        bare = _BARE.match(stripped)
        if bare:
            candidates = [float(bare.group(1))]
        else:
            for line in stripped.splitlines():
                labelled = _LABELLED_LINE.match(line.strip())
                if labelled:
                    candidates.append(float(labelled.group(1)))
            for blob in _EMBEDDED_JSON.findall(stripped):
                try:
                    candidates.append(_rating_from_json(json.loads(blob)))
                except json.JSONDecodeError:
                    continue

    numbers = [c for c in candidates if isinstance(c, float)]
    problems = [c for c in candidates if isinstance(c, str)]
    if not numbers:
        return None, problems[0] if problems else "no rating found in reply"
    if len(set(numbers)) > 1:
        return None, f"ambiguous: several ratings in reply ({', '.join(f'{n:g}' for n in numbers)})"
    value = numbers[0]
    if not (RATING_MIN <= value <= RATING_MAX) or math.isnan(value):
        return None, f"out of range: {value:g} is not within {RATING_MIN}-{RATING_MAX}"
    if not value.is_integer():  # the scale is whole numbers; 0.7 may well mean a 0-1 scale
        return None, f"not a whole number: {value:g}"
    return value, None


def _rating_from_json(data: object) -> float | str:
    if isinstance(data, (int, float)) and not isinstance(data, bool):
        return float(data)  # a bare number such as "72" is valid JSON too
    if not isinstance(data, dict):
        return "JSON reply is not an object"
    keys = {key.lower(): key for key in data}
    if "rating" not in keys:
        return "JSON reply has no 'rating' field"
    value = data[keys["rating"]]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"'rating' is not a number: {value!r}"
    return float(value)


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
    """Ask the model bound to ``role`` for a rating, re-asking after unreadable replies
    (``rating.yaml: reask``, which names the problem with the previous reply).
    A reply cut off by the context length ends the attempts at once: re-asking would only
    make the prompt longer.
    """
    fmt = resolve_rating_format(rating_format, get_model(role=role))
    config = rating_config(base_config.merge(GenerateConfig(max_tokens=RATING_MAX_TOKENS)), fmt)
    conversation = list(messages)
    result = RatingResult(value=None, format=fmt)
    for attempt in range(1, max_attempts + 1):
        text, output = await generate_reply(role, conversation, config, step=f"{step}_attempt_{attempt}", stops=stops)
        result.raw.append(output.completion)
        result.attempts = attempt
        if output.stop_reason == "model_length":
            result.error = "model_length: the rating prompt exceeds the model's context window"
            return result
        value, error = parse_rating(text)
        if value is not None:
            result.value, result.error = value, None
            return result
        result.error = error
        conversation += [
            ChatMessageAssistant(content=output.completion),
            ChatMessageUser(content=prompt("rating", "reask", error=error or "unreadable reply")),
        ]
    return result
