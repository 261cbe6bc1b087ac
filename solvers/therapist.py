"""The Therapist agent's turn in a session."""

from __future__ import annotations

from inspect_ai.model import ChatMessageSystem, ChatMessageUser

from psysim.calls.generation import (
    CallSettings,
    StopRecord,
    generate_reply,
    strip_speaker_label,
)
from psysim.dialogue.transcript import Turn, as_messages, format_dialogue
from psysim.prompts import prompt
from psysim.prompts.therapist_styles import DEFAULT_STYLE, style_prompt


async def therapist_turn(
    session: int,
    session_so_far: list[Turn],
    previous_session: list[Turn],
    feedback: str | None,
    call: CallSettings,
    max_tokens: int,
    stops: list[StopRecord],
    style: str = DEFAULT_STYLE,
    client_name: str | None = None,
) -> str:
    """Next therapist utterance, given this session so far, the previous session and feedback.

    ``style`` names the therapist's system prompt (:mod:`psysim.prompts.therapist_styles`); every style
    reads the feedback. ``client_name`` (from the persona) is told to the therapist, so it never
    needs a placeholder.

    Raises:
        CallFailed: no usable reply within ``call.max_reply_attempts`` (psysim.calls.failed_calls).
    """
    system = prompt(
        style_prompt(style),
        "system",
        session=session,
        previous_session=format_dialogue(previous_session),
        feedback=feedback,
        client_name=client_name,
    )
    # The therapist opens the session: a user cue first, so the input never ends (or starts)
    # with an assistant message (vLLM would continue that message instead of replying).
    messages = [
        ChatMessageSystem(content=system),
        ChatMessageUser(content=prompt("therapist", "session_opening", session=session)),
        *as_messages(session_so_far, perspective="therapist"),
    ]
    text, _ = await generate_reply(
        "therapist",
        messages,
        call.config(max_tokens=max_tokens),
        step=f"session_{session}_turn_{len(session_so_far) // 2 + 1}",
        stops=stops,
        max_attempts=call.max_reply_attempts,
        clean=lambda reply: strip_speaker_label(reply, "Therapist"),
    )
    return text
