"""The session loop of Experiment 1: dialogue, client rating, feedback, next session."""

from __future__ import annotations

from inspect_ai.model import (
    ChatMessage,
    ChatMessageAssistant,
    ChatMessageSystem,
    ChatMessageUser,
)
from inspect_ai.solver import Generate, Solver, TaskState, solver
from inspect_ai.util import collect, span, store_as

from psysim.calls.critique import LimitedReply
from psysim.calls.failed_calls import CallFailed, FailureRecord
from psysim.calls.generation import CallSettings, StopRecord
from psysim.dialogue.transcript import Turn, session_turns
from psysim.inputs.personas import Persona
from psysim.solvers.client_simulator import (
    client_questionnaires,
    client_satisfaction_rating,
    client_turn,
)
from psysim.solvers.course import (
    CourseEnd,
    CourseSettings,
    SessionRecord,
    TherapyCourse,
)
from psysim.solvers.feedback_policy import FEEDBACK_POLICIES, FeedbackPolicy
from psysim.solvers.therapist import therapist_turn


@solver
def therapy_sessions(settings: CourseSettings) -> Solver:
    """Run ``settings.sessions`` sequential sessions with one simulated client.

    Each session (in its own span): ``turns`` therapist-client exchanges, then at once the
    client's satisfaction rating, its questionnaires (if any) and (except after the last
    session) the feedback that the condition's policy gives the therapist for the next
    session: none of these reads another's output. Everything is saved to the
    sample store after each session, so an interrupted sample keeps what it computed.

    A failed call (no usable reply after ``max_reply_attempts``: :mod:`psysim.calls.failed_calls`)
    ends the course, because a session held without one of its turns, or without the
    feedback its condition promises, is not that condition's session:

    - a failed therapist or client turn in session k: session k is ``failed`` (no rating is
      asked), sessions k+1.. are ``not_held``; the course ends after session k-1;
    - failed Expert feedback after session k: session k stays ``complete`` with its rating
      (it was held in full; the failure is its ``feedback_failure``), sessions k+1.. are
      ``not_held``; the course ends after session k.

    A missing rating does not end the course: the session was held; its rating is missing
    with its reason.
    """
    policy = FEEDBACK_POLICIES[settings.condition]

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        persona = Persona.model_validate(state.metadata["persona"])
        call = CallSettings.for_epoch(
            settings.temperature, settings.seed, state.epoch, settings.max_reply_attempts
        )
        course = store_as(TherapyCourse)
        course.condition, course.persona_id, course.seed = settings.condition, persona.id, call.seed
        course.status, course.ended = "running", None

        turns: list[Turn] = []
        records: list[SessionRecord] = []
        stops: list[StopRecord] = []
        feedback: str | None = None
        ended: CourseEnd | None = None
        for session in range(1, settings.sessions + 1):
            async with span(f"session_{session}", type="session"):
                record = SessionRecord(session=session, feedback_given=feedback)
                session_call = call.for_session(session)
                current: list[Turn] = []
                try:
                    await _dialogue(persona, session, turns, current, feedback, settings, session_call, stops)
                except CallFailed as failed:
                    record.status, record.failure = "failed", failed.failure
                    ended = _course_end(session - 1, failed.failure)
                turns += current  # the turns actually said, also those before a failed call
                if record.status == "complete":
                    failure = await _after_session(persona, session, turns, records, record, policy, settings,
                                                   session_call, stops)
                    if failure is not None:
                        ended = _course_end(session, failure)
                    feedback = record.feedback_after
                records.append(record)
                if ended is not None:
                    records += _not_held(len(records) + 1, settings.sessions, ended)
                    course.status, course.ended = "ended_early", ended
                elif session == settings.sessions:
                    course.status = "complete"
                # assign copies: the store sees only assignments, not in-place mutation
                course.turns, course.sessions, course.stops = list(turns), list(records), list(stops)
                state.messages = readable_dialogue(persona, settings.condition, turns, records, ended)
            if ended is not None:
                break
        return state

    return solve


async def _after_session(
    persona: Persona,
    session: int,
    turns: list[Turn],
    earlier: list[SessionRecord],
    record: SessionRecord,
    policy: FeedbackPolicy,
    settings: CourseSettings,
    call: CallSettings,
    stops: list[StopRecord],
) -> FailureRecord | None:
    """The client's rating, its questionnaires and the feedback for the next session, at once.

    None of them reads another's output (the rating sees the dialogue and the earlier ratings,
    the Expert only the session's transcript), so they run concurrently and a course's chain of
    dependent calls grows by one call per session, not two. Each writes its own stop records,
    appended to ``stops`` in a fixed order (rating, questionnaires, feedback) so the log does
    not depend on which answered first. Results are written to ``record``.

    Returns:
        The failure of the feedback call (the course ends after this session), else None. A
        missing rating or questionnaire never ends the course.
    """
    rating_stops: list[StopRecord] = []
    questionnaire_stops: list[StopRecord] = []
    feedback_stops: list[StopRecord] = []

    async def rate() -> None:
        rating = await client_satisfaction_rating(
            persona, session, turns, earlier, settings.baseline, call,
            settings.rating_format, settings.max_rating_attempts, rating_stops,
        )
        record.rating, record.rating_code, record.rating_error = rating.value, rating.code, rating.error
        record.rating_raw, record.rating_attempts, record.rating_format = rating.raw, rating.attempts, rating.format

    async def answer_questionnaires() -> None:
        if settings.questionnaires:
            record.questionnaires = await client_questionnaires(
                persona, session, turns, settings, call, questionnaire_stops
            )

    async def give_feedback() -> None:
        if session == settings.sessions:
            return  # no next session to prepare for
        try:
            feedback = await policy(session, session_turns(turns, session), settings, call, feedback_stops)
            if isinstance(feedback, LimitedReply):
                record.feedback_after, record.feedback_check = feedback.text, feedback.check
            else:
                record.feedback_after = feedback
        except CallFailed as failed:  # caught here, so the rating beside it still finishes
            record.feedback_failure = failed.failure

    await collect(rate(), answer_questionnaires(), give_feedback())
    stops += rating_stops + questionnaire_stops + feedback_stops
    return record.feedback_failure


def _course_end(after_session: int, failure: FailureRecord) -> CourseEnd:
    return CourseEnd(
        after_session=after_session, reason=failure.code, role=failure.role, step=failure.step, detail=failure.detail
    )


def _not_held(first: int, last: int, ended: CourseEnd) -> list[SessionRecord]:
    """Records for the sessions the course did not reach, each naming why."""
    detail = (
        f"the course ended after session {ended.after_session}: {ended.role} call {ended.step} failed "
        f"({ended.reason}: {ended.detail})"
    )
    failure = FailureRecord(code="not_held", role=ended.role, step=ended.step, detail=detail)
    return [SessionRecord(session=k, status="not_held", failure=failure) for k in range(first, last + 1)]


async def _dialogue(
    persona: Persona,
    session: int,
    turns: list[Turn],
    current: list[Turn],
    feedback: str | None,
    settings: CourseSettings,
    call: CallSettings,
    stops: list[StopRecord],
) -> None:
    """One session's exchanges, appended to ``current``; the therapist speaks first.

    Raises:
        CallFailed: a turn gave no usable reply (``current`` keeps the turns said before it).
    """
    previous = session_turns(turns, session - 1)
    for _ in range(settings.turns):
        text = await therapist_turn(
            session, current, previous, feedback, call, settings.turn_max_tokens, stops,
            style=settings.therapist, client_name=persona.name,
        )
        current.append(Turn(session=session, speaker="therapist", text=text))
        text = await client_turn(
            persona, session, current, turns, call, settings.turn_max_tokens, stops
        )
        current.append(Turn(session=session, speaker="client", text=text))


def readable_dialogue(
    persona: Persona,
    condition: str,
    turns: list[Turn],
    records: list[SessionRecord],
    ended: CourseEnd | None = None,
) -> list[ChatMessage]:
    """The course as one chat for ``inspect view``: therapist as assistant, client as user,
    with bracketed notes for session starts, feedback, ratings and where and why the course
    ended (reason codes only: a failed call's raw reply stays in the store)."""
    messages: list[ChatMessage] = [
        ChatMessageSystem(
            content=f"Simulated course of therapy with client '{persona.id}' (condition: {condition}). "
            "Therapist turns are shown as assistant messages, client turns as user messages."
        )
    ]
    for record in records:
        if record.status == "not_held":
            continue
        header = f"[Session {record.session} begins]"
        if record.feedback_given:
            header += f"\n[Feedback the therapist read before this session: {record.feedback_given}]"
        messages.append(ChatMessageUser(content=header))
        for turn in session_turns(turns, record.session):
            cls = ChatMessageAssistant if turn.speaker == "therapist" else ChatMessageUser
            messages.append(cls(content=turn.text))
        if record.status == "complete":
            rating = "missing" if record.rating is None else f"{record.rating:g}/100"
            note = f"[Client satisfaction after session {record.session}: {rating}"
            note += f" ({record.rating_code}: {record.rating_error})]" if record.rating is None else "]"
            messages.append(ChatMessageUser(content=note))
    if ended is not None:
        last = records[-1].session
        first_missing = ended.after_session + 1
        missing = f"session {first_missing}" if first_missing == last else f"sessions {first_missing}-{last}"
        where = (
            f"in session {first_missing}, before it was complete"
            if any(r.status == "failed" for r in records)
            else f"after session {ended.after_session}"
        )
        messages.append(
            ChatMessageUser(
                content=f"[Course ended {where}: the {ended.role} call {ended.step} "
                f"gave no usable reply ({ended.reason}: {ended.detail}). No rating for {missing}.]"
            )
        )
    return messages
