"""The session loop of Experiment 1: dialogue, client rating, feedback, next session."""

from __future__ import annotations

from inspect_ai.model import ChatMessage, ChatMessageAssistant, ChatMessageSystem, ChatMessageUser
from inspect_ai.solver import Generate, Solver, TaskState, solver
from inspect_ai.util import span, store_as

from psysim.generation import CallSettings, StopRecord
from psysim.personas import Persona
from psysim.transcript import Turn, session_turns
from solvers.client_simulator import client_satisfaction_rating, client_turn
from solvers.course import CourseSettings, SessionRecord, TherapyCourse
from solvers.feedback_policy import FEEDBACK_POLICIES
from solvers.therapist import therapist_turn


@solver
def therapy_sessions(settings: CourseSettings) -> Solver:
    """Run ``settings.sessions`` sequential sessions with one simulated client.

    Each session (in its own span): ``turns`` therapist-client exchanges, the client's
    satisfaction rating, then (except after the last session) the feedback that the
    condition's policy gives the therapist for the next session. Everything is saved to the
    sample store after each session, so an interrupted sample keeps what it computed.
    """
    policy = FEEDBACK_POLICIES[settings.condition]

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        persona = Persona.model_validate(state.metadata["persona"])
        call = CallSettings.for_epoch(settings.temperature, settings.seed, state.epoch)
        course = store_as(TherapyCourse)
        course.condition, course.persona_id, course.seed = settings.condition, persona.id, call.seed

        turns: list[Turn] = []
        records: list[SessionRecord] = []
        stops: list[StopRecord] = []
        feedback: str | None = None
        for session in range(1, settings.sessions + 1):
            async with span(f"session_{session}", type="session"):
                record = SessionRecord(session=session, feedback_given=feedback)
                turns += await _dialogue(persona, session, turns, feedback, settings, call, stops)
                rating = await client_satisfaction_rating(
                    persona, session, turns, records, settings.baseline, call,
                    settings.rating_format, settings.max_rating_attempts, stops,
                )
                record.rating, record.rating_error = rating.value, rating.error
                record.rating_raw, record.rating_attempts = rating.raw, rating.attempts
                record.rating_format = rating.format
                if session < settings.sessions:
                    feedback = await policy(
                        session, session_turns(turns, session), settings, call, stops
                    )
                    record.feedback_after = feedback
                records.append(record)
                # assign copies: the store sees only assignments, not in-place mutation
                course.turns, course.sessions, course.stops = list(turns), list(records), list(stops)
                state.messages = readable_dialogue(persona, settings.condition, turns, records)
        return state

    return solve


async def _dialogue(
    persona: Persona,
    session: int,
    turns: list[Turn],
    feedback: str | None,
    settings: CourseSettings,
    call: CallSettings,
    stops: list[StopRecord],
) -> list[Turn]:
    """One session's exchanges; the therapist speaks first."""
    previous = session_turns(turns, session - 1)
    current: list[Turn] = []
    for _ in range(settings.turns):
        text = await therapist_turn(
            session, current, previous, feedback, call, settings.turn_max_tokens, stops
        )
        current.append(Turn(session=session, speaker="therapist", text=text))
        text = await client_turn(
            persona, session, current, turns, call, settings.turn_max_tokens, stops
        )
        current.append(Turn(session=session, speaker="client", text=text))
    return current


def readable_dialogue(
    persona: Persona, condition: str, turns: list[Turn], records: list[SessionRecord]
) -> list[ChatMessage]:
    """The course as one chat for ``inspect view``: therapist as assistant, client as user,
    with bracketed notes for session starts, feedback and ratings."""
    messages: list[ChatMessage] = [
        ChatMessageSystem(
            content=f"Simulated course of therapy with client '{persona.id}' (condition: {condition}). "
            "Therapist turns are shown as assistant messages, client turns as user messages."
        )
    ]
    for record in records:
        header = f"[Session {record.session} begins]"
        if record.feedback_given:
            header += f"\n[Feedback the therapist read before this session: {record.feedback_given}]"
        messages.append(ChatMessageUser(content=header))
        for turn in session_turns(turns, record.session):
            cls = ChatMessageAssistant if turn.speaker == "therapist" else ChatMessageUser
            messages.append(cls(content=turn.text))
        rating = "missing" if record.rating is None else f"{record.rating:g}/100"
        note = f"[Client satisfaction after session {record.session}: {rating}"
        note += f" ({record.rating_error})]" if record.rating is None else "]"
        messages.append(ChatMessageUser(content=note))
    return messages
