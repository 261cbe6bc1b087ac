"""Experiment 2 solver: the three candidate responses for one transcript snippet.

``human`` is the real therapist's turn. ``llm`` is the therapist role's reply to the context
alone. ``revised`` comes from two calls: the Expert critiques the human response against the
guidelines, then the reviser (the therapist role by default) rewrites the human response from
that critique. The ``llm`` call and the critique/revision chain are independent and run
concurrently.

A call with no usable reply (:mod:`psysim.calls.failed_calls`) leaves its candidate unproduced: it is
recorded in ``Comparison.failures`` and ``Comparison.unavailable`` and not rated; a failed
critique leaves ``revised`` unproduced too. The other candidates are still produced and rated.
"""

from __future__ import annotations

from typing import Awaitable

from inspect_ai.model import (
    ChatMessage,
    ChatMessageAssistant,
    ChatMessageSystem,
    ChatMessageUser,
)
from inspect_ai.solver import Generate, Solver, TaskState, solver
from inspect_ai.util import StoreModel, collect, store_as
from pydantic import BaseModel, Field

from psysim.calls.failed_calls import (
    DEFAULT_MAX_REPLY_ATTEMPTS,
    CallFailed,
    FailureRecord,
)
from psysim.calls.generation import (
    CallSettings,
    StopRecord,
    generate_reply,
    strip_speaker_label,
)
from psysim.calls.critique import LimitCheck, ask_within_limits, form_max_tokens, load_form
from psysim.dialogue.transcript import as_messages, format_dialogue
from psysim.inputs.snippets import Snippet
from psysim.prompts import prompt

RESPONSE_TYPES = ("human", "llm", "revised")
REVISERS = ("therapist", "expert")


class ComparisonSettings(BaseModel):
    guidelines: str
    reviser: str
    temperature: float | None
    seed: int | None
    response_max_tokens: int
    critique_max_tokens: int | None = None
    """None: derived from the critique form's word limit (:func:`psysim.calls.critique.form_max_tokens`)."""
    max_reply_attempts: int = DEFAULT_MAX_REPLY_ATTEMPTS


class Comparison(StoreModel):
    """Per-sample store: candidates, the critique behind the revision, failed and truncated calls."""

    candidates: dict[str, str] = Field(default_factory=dict)
    """The candidates produced (a failed one is absent, see ``unavailable``)."""
    critique: str = ""
    """The critique as the reviser read it (the Expert's fields, rendered)."""
    critique_check: LimitCheck | None = None
    """The critique's words against its limit, re-asks and what broke a limit (None: no critique)."""
    reviser: str = ""
    failures: list[FailureRecord] = Field(default_factory=list)
    """Every call that gave no usable reply (code, role, step, raw replies)."""
    unavailable: dict[str, str] = Field(default_factory=dict)
    """Candidate kind -> ``"upstream_failed: ..."`` for each candidate not produced."""
    stops: list[StopRecord] = Field(default_factory=list)


def topic_of(snippet: Snippet) -> str:
    return str(snippet.labels.get("topic") or "")


@solver
def candidate_responses(settings: ComparisonSettings) -> Solver:
    async def solve(state: TaskState, generate: Generate) -> TaskState:
        snippet = Snippet.model_validate(state.metadata["snippet"])
        call = CallSettings.for_epoch(settings.temperature, settings.seed, state.epoch, settings.max_reply_attempts)
        stops: list[StopRecord] = []
        (llm, llm_failure), (critique, check, revised, revision_failure) = await collect(
            _or_failure(llm_response(snippet, call, settings, stops)),
            revision_chain(snippet, call, settings, stops),
        )
        record = store_as(Comparison)
        candidates = {"human": snippet.human_response}
        unavailable: dict[str, str] = {}
        failures = [f for f in (llm_failure, revision_failure) if f is not None]
        for kind, text, failure in (("llm", llm, llm_failure), ("revised", revised, revision_failure)):
            if text is not None:
                candidates[kind] = text
            elif failure is not None:
                unavailable[kind] = (
                    f"upstream_failed: the {kind} response was not produced: {failure.role} call "
                    f"{failure.step} failed ({failure.reason})"
                )
        record.candidates, record.unavailable, record.failures = candidates, unavailable, failures
        record.critique, record.reviser, record.stops = critique, settings.reviser, stops
        record.critique_check = check
        state.messages = readable_comparison(snippet, candidates, critique, unavailable)
        return state

    return solve


async def _or_failure(reply: Awaitable[str]) -> tuple[str | None, FailureRecord | None]:
    try:
        return await reply, None
    except CallFailed as failed:
        return None, failed.failure


async def llm_response(
    snippet: Snippet, call: CallSettings, settings: ComparisonSettings, stops: list[StopRecord]
) -> str:
    """The therapist role's next turn, from the context alone (it never sees the human turn)."""
    context = as_messages(list(snippet.context), perspective="therapist")
    cue = prompt("therapist", "continue_opening")
    if context and context[0].role == "user":
        # the context opens with the client: fold the cue into that turn, since some chat
        # templates (Mistral, Gemma) reject two user messages in a row
        context[0] = ChatMessageUser(content=f"{cue}\n\n{context[0].text}")
    else:
        context.insert(0, ChatMessageUser(content=cue))
    messages: list[ChatMessage] = [
        ChatMessageSystem(content=prompt("therapist", "continue_system", topic=topic_of(snippet))),
        *context,
    ]
    text, _ = await generate_reply(
        "therapist", messages, call.config(max_tokens=settings.response_max_tokens), step="llm_response",
        stops=stops, max_attempts=call.max_reply_attempts, clean=lambda reply: strip_speaker_label(reply, "Therapist"),
    )
    return text


async def revision_chain(
    snippet: Snippet, call: CallSettings, settings: ComparisonSettings, stops: list[StopRecord]
) -> tuple[str, LimitCheck | None, str | None, FailureRecord | None]:
    """``(critique, check, revised, failure)``: the Expert critiques the human turn, the reviser
    rewrites it. A failed critique means no revision is asked (``critique`` is then "")."""
    try:
        critique, check = await expert_critique(snippet, call, settings, stops)
    except CallFailed as failed:
        return "", None, None, failed.failure
    revised, failure = await _or_failure(revise(snippet, critique, call, settings, stops))
    return critique, check, revised, failure


async def expert_critique(
    snippet: Snippet, call: CallSettings, settings: ComparisonSettings, stops: list[StopRecord]
) -> tuple[str, LimitCheck]:
    """The Expert's critique of the human response against the guidelines, in the critique form
    (short labelled fields, no place for a response; :mod:`psysim.calls.critique`), rendered."""
    form = load_form("critique_form")
    reply = await ask_within_limits(
        "expert",
        [
            ChatMessageSystem(content=prompt("expert", "system", guidelines=settings.guidelines)),
            ChatMessageUser(
                content=prompt("expert", "critique_user", transcript=format_dialogue(list(snippet.context)),
                               response=snippet.human_response, topic=topic_of(snippet),
                               fields=[f.model_dump() for f in form.fields])
            ),
        ],
        call.config(max_tokens=settings.critique_max_tokens or form_max_tokens(form)),
        form, step="critique", stops=stops, max_attempts=call.max_reply_attempts,
    )
    return reply.text, reply.check


async def revise(
    snippet: Snippet, critique: str, call: CallSettings, settings: ComparisonSettings, stops: list[StopRecord]
) -> str:
    """The reviser's rewrite of the human response from ``critique``."""
    topic = topic_of(snippet)
    reviser_system = (
        prompt("therapist", "continue_system", topic=topic)
        if settings.reviser == "therapist"
        else prompt("expert", "revise_system", guidelines=settings.guidelines)
    )
    revised, _ = await generate_reply(
        settings.reviser,
        [
            ChatMessageSystem(content=reviser_system),
            ChatMessageUser(
                content=prompt("therapist", "revise_user", transcript=format_dialogue(list(snippet.context)),
                               response=snippet.human_response, critique=critique, topic=topic)
            ),
        ],
        call.config(max_tokens=settings.response_max_tokens),
        step="revision", stops=stops, max_attempts=call.max_reply_attempts,
        clean=lambda reply: strip_speaker_label(reply, "Therapist").strip('"'),
    )
    return revised


def readable_comparison(
    snippet: Snippet, candidates: dict[str, str], critique: str, unavailable: dict[str, str] | None = None
) -> list[ChatMessage]:
    """The context (therapist as assistant, client as user) and the candidates, for inspect view
    (a candidate not produced is a bracketed note with its reason code, never a response)."""
    unavailable = unavailable or {}
    head = (
        f"Snippet {snippet.id}: transcript {snippet.transcript_id}, client {snippet.client_id}, "
        f"{len(snippet.context)} context turns"
        + (f" (cut from {snippet.context_turns_available})" if snippet.context_truncated else "")
        + ". Therapist turns are assistant messages, client turns user messages."
    )
    messages: list[ChatMessage] = [ChatMessageSystem(content=head)]
    messages += as_messages(list(snippet.context), perspective="therapist")
    if critique:
        messages.append(ChatMessageUser(content=f"[Expert critique of the human response]\n{critique}"))
    for kind in RESPONSE_TYPES:
        if kind in candidates:
            messages.append(ChatMessageAssistant(content=f"[{kind} response] {candidates[kind]}"))
        else:
            messages.append(ChatMessageUser(content=f"[{kind} response not produced: {unavailable.get(kind, 'unknown')}; not rated]"))
    return messages
