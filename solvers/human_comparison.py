"""Experiment 2 solver: the three candidate responses for one transcript snippet.

``human`` is the real therapist's turn. ``llm`` is the therapist role's reply to the context
alone. ``revised`` comes from two calls: the Expert critiques the human response against the
guidelines, then the reviser (the therapist role by default) rewrites the human response from
that critique. The ``llm`` call and the critique/revision chain are independent and run
concurrently.
"""

from __future__ import annotations

from inspect_ai.model import (
    ChatMessage,
    ChatMessageAssistant,
    ChatMessageSystem,
    ChatMessageUser,
)
from inspect_ai.solver import Generate, Solver, TaskState, solver
from inspect_ai.util import StoreModel, collect, store_as
from pydantic import BaseModel, Field

from psysim.generation import CallSettings, StopRecord, generate_reply, strip_speaker_label
from psysim.prompts import prompt
from psysim.snippets import Snippet
from psysim.transcript import as_messages, format_dialogue

RESPONSE_TYPES = ("human", "llm", "revised")
REVISERS = ("therapist", "expert")


class ComparisonSettings(BaseModel):
    guidelines: str
    reviser: str
    temperature: float | None
    seed: int | None
    response_max_tokens: int
    critique_max_tokens: int


class Comparison(StoreModel):
    """Per-sample store: candidates, the critique behind the revision, truncated calls."""

    candidates: dict[str, str] = Field(default_factory=dict)
    critique: str = ""
    reviser: str = ""
    stops: list[StopRecord] = Field(default_factory=list)


def topic_of(snippet: Snippet) -> str:
    return str(snippet.labels.get("topic") or "")


@solver
def candidate_responses(settings: ComparisonSettings) -> Solver:
    async def solve(state: TaskState, generate: Generate) -> TaskState:
        snippet = Snippet.model_validate(state.metadata["snippet"])
        call = CallSettings.for_epoch(settings.temperature, settings.seed, state.epoch)
        stops: list[StopRecord] = []
        llm, (critique, revised) = await collect(
            llm_response(snippet, call, settings, stops),
            expert_revision(snippet, call, settings, stops),
        )
        record = store_as(Comparison)
        record.candidates = {"human": snippet.human_response, "llm": llm, "revised": revised}
        record.critique, record.reviser, record.stops = critique, settings.reviser, stops
        state.messages = readable_comparison(snippet, record.candidates, critique)
        return state

    return solve


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
        "therapist", messages, call.config(max_tokens=settings.response_max_tokens), step="llm_response", stops=stops
    )
    return strip_speaker_label(text, "Therapist")


async def expert_revision(
    snippet: Snippet, call: CallSettings, settings: ComparisonSettings, stops: list[StopRecord]
) -> tuple[str, str]:
    """(critique, revised response): the Expert critiques the human turn, the reviser rewrites it."""
    transcript = format_dialogue(list(snippet.context))
    topic = topic_of(snippet)
    critique, _ = await generate_reply(
        "expert",
        [
            ChatMessageSystem(content=prompt("expert", "system", guidelines=settings.guidelines)),
            ChatMessageUser(
                content=prompt("expert", "critique_user", transcript=transcript,
                               response=snippet.human_response, topic=topic)
            ),
        ],
        call.config(max_tokens=settings.critique_max_tokens),
        step="critique", stops=stops,
    )
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
                content=prompt("therapist", "revise_user", transcript=transcript,
                               response=snippet.human_response, critique=critique, topic=topic)
            ),
        ],
        call.config(max_tokens=settings.response_max_tokens),
        step="revision", stops=stops,
    )
    return critique, strip_speaker_label(revised, "Therapist").strip('"')


def readable_comparison(snippet: Snippet, candidates: dict[str, str], critique: str) -> list[ChatMessage]:
    """The context (therapist as assistant, client as user) and the candidates, for inspect view."""
    head = (
        f"Snippet {snippet.id}: transcript {snippet.transcript_id}, client {snippet.client_id}, "
        f"{len(snippet.context)} context turns"
        + (f" (cut from {snippet.context_turns_available})" if snippet.context_truncated else "")
        + ". Therapist turns are assistant messages, client turns user messages."
    )
    messages: list[ChatMessage] = [ChatMessageSystem(content=head)]
    messages += as_messages(list(snippet.context), perspective="therapist")
    messages.append(ChatMessageUser(content=f"[Expert critique of the human response]\n{critique}"))
    for kind in RESPONSE_TYPES:
        messages.append(ChatMessageAssistant(content=f"[{kind} response] {candidates[kind]}"))
    return messages
