"""The Expert agent: a supervisor's feedback on one session, against written guidelines."""

from __future__ import annotations

from inspect_ai.model import ChatMessageSystem, ChatMessageUser

from psysim.calls.generation import CallSettings, StopRecord, generate_reply
from psysim.dialogue.transcript import Turn, format_dialogue
from psysim.prompts import prompt


async def expert_feedback(
    session: int,
    session_turns: list[Turn],
    guidelines: str,
    call: CallSettings,
    max_tokens: int,
    stops: list[StopRecord],
) -> str:
    """Feedback for the therapist on ``session`` (the full dialogue of that session).

    Raises:
        CallFailed: no usable reply within ``call.max_reply_attempts``; the session loop then
            ends the course (a session without the feedback its condition promises is not
            that condition's session).
    """
    messages = [
        ChatMessageSystem(content=prompt("expert", "system", guidelines=guidelines)),
        ChatMessageUser(
            content=prompt("expert", "user", session=session, transcript=format_dialogue(session_turns))
        ),
    ]
    text, _ = await generate_reply(
        "expert",
        messages,
        call.config(max_tokens=max_tokens),
        step=f"session_{session}_feedback",
        stops=stops,
        max_attempts=call.max_reply_attempts,
    )
    return text
