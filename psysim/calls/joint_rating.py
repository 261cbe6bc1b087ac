"""Several responses rated in one call: labelled A, B, C..., one 0-100 rating per label.

Used by Experiment 2's position check (``-T joint_rating=true``): the three candidate responses
are shown together, each snippet in one of the orders of :func:`order_for`, which cycle through
every permutation so that each response type appears equally often in each position.

The same machinery as the single rating (:func:`psysim.calls.rating.ask_rating`): the schema is sent
as ``rating_format`` says, every reply is read by the strict parser of the questionnaires
(:func:`psysim.questionnaires.parsing.parse_keyed_answers`: one JSON object, one whole number
0-100 per label, numbers judged as written, never coerced) and the call is repeated a bounded
number of times through :func:`psysim.calls.structured_reply.ask_until_accepted`. A label without a
valid rating stays missing with its reason.
"""

from __future__ import annotations

import itertools
import string
from collections.abc import Sequence

from inspect_ai.model import ChatMessage, GenerateConfig, get_model
from inspect_ai.util import JSONSchema
from pydantic import BaseModel, Field

from psysim.calls.generation import StopRecord
from psysim.calls.rating import (
    RATING_MAX,
    RATING_MAX_TOKENS,
    RATING_MIN,
    rating_config,
    resolve_rating_format,
)
from psysim.calls.structured_reply import ask_until_accepted
from psysim.prompts import prompt
from psysim.questionnaires.instrument import ResponseScale
from psysim.questionnaires.parsing import ParsedAnswers, parse_keyed_answers

RATING_SCALE = ResponseScale(min=RATING_MIN, max=RATING_MAX)
TOKENS_PER_LABEL = 16
"""Token cap of a joint reply: the single rating's cap plus this per further label."""


def labels_for(count: int) -> list[str]:
    """``A``, ``B``, ... for ``count`` responses."""
    if not 1 <= count <= len(string.ascii_uppercase):
        raise ValueError(f"joint rating needs 1-26 responses; got {count}")
    return list(string.ascii_uppercase[:count])


def order_for(index: int, kinds: Sequence[str]) -> list[str]:
    """The presentation order of snippet number ``index`` (0-based, in dataset order).

    The orders cycle through all permutations of ``kinds`` (6 for three), so in every block of
    ``len(permutations)`` consecutive snippets each kind appears equally often in each position.
    """
    orders = list(itertools.permutations(kinds))
    return list(orders[index % len(orders)])


def joint_schema(labels: Sequence[str]) -> JSONSchema:
    """One integer 0-100 per label, all required, nothing else."""
    properties = {
        label: JSONSchema(type="integer", minimum=RATING_MIN, maximum=RATING_MAX, description=f"Rating of response {label}")
        for label in labels
    }
    return JSONSchema(type="object", properties=properties, required=list(labels), additionalProperties=False)


def joint_json_form(labels: Sequence[str]) -> str:
    return "{" + ", ".join(f'"{label}": <integer from 0 to 100>' for label in labels) + "}"


class JointRatingResult(BaseModel):
    """Outcome of asking for the ratings of several labelled responses (possibly several attempts)."""

    labels: list[str]
    values: dict[str, float] = Field(default_factory=dict)
    """Valid ratings by label, all from one reply (the latest readable one)."""
    errors: dict[str, str] = Field(default_factory=dict)
    """Label -> why it has no rating; empty when every label was rated."""
    code: str | None = None
    """Reason code when any label is missing (``psysim.calls.failed_calls``); None when complete."""
    error: str | None = None
    raw: list[str] = Field(default_factory=list)
    """Every reply received, in order."""
    attempts: int = 0
    format: str = "text"

    def reason(self, label: str) -> str | None:
        """``"<code>: <detail>"`` when ``label`` has no rating (the ``missing_reasons`` form)."""
        if label in self.values:
            return None
        return f"{self.code or 'rating_unparsed'}: {self.errors.get(label) or self.error}"


async def ask_joint_ratings(
    role: str,
    messages: list[ChatMessage],
    base_config: GenerateConfig,
    labels: Sequence[str],
    *,
    rating_format: str,
    max_attempts: int,
    step: str,
    stops: list[StopRecord],
) -> JointRatingResult:
    """Ask the model bound to ``role`` for one rating per label, up to ``max_attempts`` times.

    Faults, truncation and re-asking as :func:`psysim.calls.rating.ask_rating`. A reply is accepted
    only when every label has a valid rating; after the last attempt, the ratings kept are those
    of the latest reply that was a readable JSON object (never combined across replies), and
    each label it lacked is missing with its reason.
    """
    labels = list(labels)
    fmt = resolve_rating_format(rating_format, get_model(role=role))
    max_tokens = RATING_MAX_TOKENS + TOKENS_PER_LABEL * (len(labels) - 1)
    config = rating_config(
        base_config.merge(GenerateConfig(max_tokens=max_tokens)), fmt, schema=joint_schema(labels), name="ratings"
    )
    kept: list[ParsedAnswers] = []

    def accept(text: str) -> str | None:
        parsed = parse_keyed_answers(text, labels, RATING_SCALE, what="response")
        if parsed.readable:
            kept.append(parsed)
        return parsed.error

    def reask(problem: str) -> str:
        return prompt("rating_joint", "reask", error=problem, json_form=joint_json_form(labels))

    attempts = await ask_until_accepted(
        role, messages, config, accept=accept, reask=reask, max_attempts=max_attempts, step=step, stops=stops
    )
    result = JointRatingResult(
        labels=labels, format=fmt, code=attempts.code, error=attempts.error, raw=attempts.raw,
        attempts=attempts.attempts,
    )
    if kept:
        result.values, result.errors = kept[-1].answers, kept[-1].item_errors
    else:
        result.errors = {label: f"no rating: {result.code}: {result.error}" for label in labels}
    return result
