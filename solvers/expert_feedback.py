"""The Expert agent: a supervisor's feedback on one session, against written guidelines."""

from __future__ import annotations

from inspect_ai.model import ChatMessageSystem, ChatMessageUser

from psysim.calls.critique import LimitedReply, ask_within_limits, form_max_tokens, load_form
from psysim.calls.generation import CallSettings, StopRecord
from psysim.dialogue.transcript import Turn, format_dialogue
from psysim.prompts import prompt


async def expert_feedback(
    session: int,
    session_turns: list[Turn],
    guidelines: str,
    call: CallSettings,
    max_tokens: int | None,
    stops: list[StopRecord],
) -> LimitedReply:
    """Feedback for the therapist on ``session`` (the full dialogue of that session), within the
    feedback form's word limit and without lines written for the therapist
    (:mod:`psysim.calls.critique`; ``max_tokens`` None derives the cap from the word limit).

    Raises:
        CallFailed: no usable reply within ``call.max_reply_attempts``; the session loop then
            ends the course (a session without the feedback its condition promises is not
            that condition's session).
    """
    form = load_form("feedback_form")
    messages = [
        ChatMessageSystem(content=prompt("expert", "system", guidelines=guidelines)),
        ChatMessageUser(
            content=prompt("expert", "user", session=session, transcript=format_dialogue(session_turns),
                           max_words=form.max_words)
        ),
    ]
    return await ask_within_limits(
        "expert", messages, call.config(max_tokens=max_tokens or form_max_tokens(form)), form,
        step=f"session_{session}_feedback", stops=stops, max_attempts=call.max_reply_attempts,
    )
