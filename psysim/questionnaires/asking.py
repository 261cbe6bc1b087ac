"""Asking the client to fill in one questionnaire: one call, every item in one structured reply.

The same machinery as the 0-100 rating (:func:`psysim.calls.rating.ask_rating`): the schema built
from the instrument file is sent as ``rating_format`` says (``json_schema``, ``json_object``
or ``text``), every reply goes through the strict parser, and the call is repeated a bounded
number of times. Nothing is coerced: an item without a valid answer stays missing, with its
reason, and so does every scale that needs it.
"""

from __future__ import annotations

from inspect_ai.model import ChatMessage, GenerateConfig, get_model
from pydantic import BaseModel, Field

from psysim.calls.generation import StopRecord
from psysim.calls.rating import rating_config, resolve_rating_format
from psysim.calls.structured_reply import ask_until_accepted
from psysim.prompts import prompt
from psysim.questionnaires.instrument import Instrument
from psysim.questionnaires.parsing import ParsedAnswers, parse_answers

TOKENS_BASE, TOKENS_PER_ITEM = 48, 12
"""Token cap of one questionnaire reply: ``48 + 12 x items`` (``{"12": 4, `` is about 6 tokens;
the rest is room for whitespace and an SRS decimal)."""


class QuestionnaireResult(BaseModel):
    """Outcome of asking for one instrument (possibly several attempts), as kept in the store."""

    instrument: str
    answers: dict[str, float] = Field(default_factory=dict)
    """Valid answers by item id, all from one reply (the latest readable one)."""
    item_errors: dict[str, str] = Field(default_factory=dict)
    """Item id -> why it has no answer; empty when every item was answered."""
    code: str | None = None
    """Reason code (``psysim.calls.failed_calls``) when any item is missing: ``rating_unparsed``
    (a readable reply lacked valid answers, or no reply was readable), ``truncated``,
    ``empty_reply``, ``error_text`` or ``context_length``; None when complete."""
    error: str | None = None
    raw: list[str] = Field(default_factory=list)
    """Every reply received, in order."""
    attempts: int = 0
    format: str = "text"

    @property
    def complete(self) -> bool:
        return not self.item_errors

    @property
    def reason(self) -> str | None:
        """``"<code>: <detail>"`` when an item is missing (the ``missing_reasons`` form)."""
        return None if self.complete else f"{self.code}: {self.error}"


def answer_form(instrument: Instrument) -> str:
    scale = instrument.response_scale
    if scale.decimals == 0:
        return f"a whole number from {scale.min} to {scale.max}"
    places = "one decimal place" if scale.decimals == 1 else f"{scale.decimals} decimal places"
    return f"a number from {scale.min} to {scale.max} with at most {places}"


def questionnaire_prompt(instrument: Instrument, session: int, transcript: str) -> str:
    """The user message asking for every item of ``instrument`` after ``session``."""
    items = [
        {"id": item.id, "text": item.text, "anchors": dict(sorted(item.anchors.items()))}
        for item in instrument.items
    ]
    json_form = "{" + ", ".join(f'"{item.id}": <n>' for item in instrument.items) + "}"
    return prompt(
        "questionnaire",
        "user",
        transcript=transcript,
        session=session,
        instructions=instrument.instructions.strip(),
        scale_anchors=dict(sorted(instrument.response_scale.anchors.items())),
        items=items,
        answer_form=answer_form(instrument),
        json_form=json_form,
    )


async def ask_questionnaire(
    role: str,
    messages: list[ChatMessage],
    base_config: GenerateConfig,
    instrument: Instrument,
    *,
    rating_format: str,
    max_attempts: int,
    step: str,
    stops: list[StopRecord],
) -> QuestionnaireResult:
    """Ask the model bound to ``role`` for every item of ``instrument``, up to ``max_attempts`` times.

    - Not a reply (empty, server error text): dropped, the same prompt asked again.
    - Cut at the token cap (``truncated``; never parsed) or with items missing or invalid
      (``rating_unparsed``): shown back with a re-ask naming the problems.
    - Context length: no further attempt.

    The answers kept are those of the latest reply that was a readable JSON object (answers are
    never combined across replies); items it lacked are missing with their reason. The code and
    detail are those of the last attempt.
    """
    fmt = resolve_rating_format(rating_format, get_model(role=role))
    max_tokens = TOKENS_BASE + TOKENS_PER_ITEM * len(instrument.items)
    config = rating_config(
        base_config.merge(GenerateConfig(max_tokens=max_tokens)), fmt,
        schema=instrument.json_schema(), name=instrument.id,
    )
    ids = instrument.item_ids()
    kept: list[ParsedAnswers] = []

    def accept(text: str) -> str | None:
        parsed = parse_answers(text, instrument)
        if parsed.readable:
            kept.append(parsed)
        return parsed.error

    def reask(problem: str) -> str:
        return prompt("questionnaire", "reask", error=problem, ids=f"{ids[0]}-{ids[-1]}",
                      answer_form=answer_form(instrument))

    attempts = await ask_until_accepted(
        role, messages, config, accept=accept, reask=reask, max_attempts=max_attempts, step=step, stops=stops
    )
    result = QuestionnaireResult(
        instrument=instrument.id, format=fmt, code=attempts.code, error=attempts.error,
        raw=attempts.raw, attempts=attempts.attempts,
    )
    if kept:
        result.answers, result.item_errors = kept[-1].answers, kept[-1].item_errors
    else:
        result.item_errors = {item_id: f"no answer: {result.code}: {result.error}" for item_id in ids}
    return result
