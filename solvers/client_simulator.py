"""The Client agent: its turn in a session and its satisfaction rating after a session."""

from __future__ import annotations

from inspect_ai.model import ChatMessageSystem, ChatMessageUser
from inspect_ai.util import collect

from psysim.calls.generation import (
    CallSettings,
    StopRecord,
    generate_reply,
    strip_speaker_label,
)
from psysim.calls.rating import RatingResult, ask_rating
from psysim.dialogue.transcript import Turn, as_messages, format_sessions
from psysim.inputs.personas import Persona
from psysim.prompts import prompt
from psysim.questionnaires import (
    Instrument,
    QuestionnaireResult,
    ask_questionnaire,
    questionnaire_prompt,
)
from psysim.solvers.course import CourseSettings, SessionRecord


def client_system_prompt(persona: Persona, previous_sessions: list[Turn], session: int) -> str:
    """The client's dialogue system prompt in ``session``: persona, earlier sessions, the session
    number and (risk personas, from the session it first surfaces) the simulated risk."""
    risk = prompt("client", "risk", r=persona.risk, session=session) if persona.risk is not None else ""
    return prompt(
        "client",
        "system",
        persona=prompt("client", "persona", p=persona),
        previous_sessions=format_sessions(previous_sessions),
        risk=risk,
        session=session,
    )


async def client_turn(
    persona: Persona,
    session: int,
    session_so_far: list[Turn],
    previous_sessions: list[Turn],
    call: CallSettings,
    max_tokens: int,
    stops: list[StopRecord],
) -> str:
    """Next client utterance; the client remembers all earlier sessions.

    Raises:
        CallFailed: no usable reply within ``call.max_reply_attempts`` (psysim.calls.failed_calls).
    """
    dialogue = as_messages(session_so_far, perspective="client")
    # the therapist's latest turn, quoted and followed by a reminder of the client's role (and, on
    # the client's first turn of a session, what to open with: client v5)
    cue = prompt("client", "turn_cue", name=persona.name, therapist_turn=dialogue[-1].text,
                 session=session, opening=len(session_so_far) == 1)
    dialogue[-1] = ChatMessageUser(content=cue)
    messages = [ChatMessageSystem(content=client_system_prompt(persona, previous_sessions, session)), *dialogue]
    text, _ = await generate_reply(
        "client",
        messages,
        call.config(max_tokens=max_tokens),
        step=f"session_{session}_turn_{len(session_so_far) // 2 + 1}",
        stops=stops,
        max_attempts=call.max_reply_attempts,
        clean=lambda reply: strip_speaker_label(reply, "Client"),
    )
    return text


async def client_satisfaction_rating(
    persona: Persona,
    session: int,
    all_turns: list[Turn],
    earlier: list[SessionRecord],
    baseline: float,
    call: CallSettings,
    rating_format: str,
    max_attempts: int,
    stops: list[StopRecord],
) -> RatingResult:
    """The client's 0-100 satisfaction after ``session``, seeing all sessions and its earlier ratings."""
    messages = [
        ChatMessageSystem(content=prompt("client", "rating_system", persona=prompt("client", "persona", p=persona))),
        ChatMessageUser(
            content=prompt(
                "rating",
                "user",
                session=session,
                transcript=format_sessions(all_turns),
                baseline=f"{baseline:g}",
                earlier_ratings=[
                    {"session": r.session, "value": None if r.rating is None else f"{r.rating:g}"}
                    for r in earlier
                ],
            )
        ),
    ]
    return await ask_rating(
        "client",
        messages,
        call.config(),
        rating_format=rating_format,
        max_attempts=max_attempts,
        step=f"session_{session}_rating",
        stops=stops,
    )


async def client_questionnaires(
    persona: Persona,
    session: int,
    all_turns: list[Turn],
    settings: CourseSettings,
    call: CallSettings,
    stops: list[StopRecord],
) -> dict[str, QuestionnaireResult]:
    """The client's answers to each selected instrument after ``session``, one call each.

    The client sees its persona and every session so far, as for the rating, but not its
    ratings or earlier answers, so each instrument is answered from the dialogue alone. The
    calls are independent and run concurrently. A failed or unreadable call leaves that
    instrument's items missing with the reason; it does not end the course.
    """
    system = ChatMessageSystem(content=prompt("client", "rating_system", persona=prompt("client", "persona", p=persona)))
    transcript = format_sessions(all_turns)

    async def fill_in(instrument: Instrument) -> QuestionnaireResult:
        user = ChatMessageUser(content=questionnaire_prompt(instrument, session, transcript))
        return await ask_questionnaire(
            "client", [system, user], call.config(), instrument,
            rating_format=settings.rating_format, max_attempts=settings.max_rating_attempts,
            step=f"session_{session}_{instrument.id}", stops=stops,
        )

    results = await collect(*(fill_in(instrument) for instrument in settings.questionnaires))
    return {result.instrument: result for result in results}
