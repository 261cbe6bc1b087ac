"""After a session the client's rating and the Expert's feedback run at once (issue 15, part 1).

Async per-role mocks meet at a rendezvous: the rating call of session k waits for the feedback
call of session k to start, and the other way round, up to a bound (a deadlock guard, not a
timing: it elapses only when the calls run one after the other, and then the test fails).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import anyio
from inspect_ai import eval

from psysim.tasks.iterative_feedback import iterative_feedback

from mock_roles import (
    RATING_MARKER,
    Call,
    Recorder,
    client_replier,
    expert_replier,
    main_model,
    roles,
    session_of,
)

SESSIONS, TURNS = 3, 2
WAIT_BOUND = 30.0


class Rendezvous:
    """Two named calls of one session arrive; each records whether the other was in flight too."""

    def __init__(self, bound: float = WAIT_BOUND) -> None:
        self.bound = bound
        self.arrived: dict[tuple[str, int], asyncio.Event] = {}
        self.met: dict[tuple[str, int], bool] = {}

    def _event(self, name: str, session: int) -> asyncio.Event:
        return self.arrived.setdefault((name, session), asyncio.Event())

    async def arrive(self, name: str, partner: str, session: int) -> None:
        self._event(name, session).set()
        with anyio.move_on_after(self.bound):
            await self._event(partner, session).wait()
        self.met[(name, session)] = self._event(partner, session).is_set()


def meeting_roles(recorder: Recorder, rendezvous: Rendezvous):
    dialogue = client_replier()

    async def client(call: Call) -> str:
        session = session_of(call)
        if RATING_MARKER in call.text and session < SESSIONS:  # no feedback after the last session
            await rendezvous.arrive("rating", "feedback", session)
        return dialogue(call)

    async def expert(call: Call) -> str:
        await rendezvous.arrive("feedback", "rating", session_of(call))
        return expert_replier(call)

    return roles(recorder, client=client, expert=expert)


def run(tmp_path: Path, recorder: Recorder, rendezvous: Rendezvous):
    [log] = eval(iterative_feedback(condition="expert", sessions=SESSIONS, turns=TURNS), model=main_model(recorder),
                 model_roles=meeting_roles(recorder, rendezvous), limit=1, log_dir=str(tmp_path / "logs"),
                 display="none")
    assert log.status == "success", log.error
    return log


def is_rating(call: Call) -> bool:
    return call.role == "client" and RATING_MARKER in call.text


def test_rating_and_feedback_run_concurrently_after_the_session(tmp_path: Path) -> None:
    recorder, rendezvous = Recorder(), Rendezvous()
    log = run(tmp_path, recorder, rendezvous)
    # each was in flight while the other started: they ran at once
    assert rendezvous.met == {(name, k): True for name in ("rating", "feedback") for k in range(1, SESSIONS)}

    # one persona: session k is 2 x TURNS dialogue calls, then its rating and feedback (in
    # either order), before anything of session k + 1
    calls = recorder.calls
    for k in range(1, SESSIONS):
        base = (k - 1) * (2 * TURNS + 2)
        assert all(c.role in ("therapist", "client") and not is_rating(c) for c in calls[base : base + 2 * TURNS])
        [rating] = [i for i, c in enumerate(calls) if is_rating(c) and session_of(c) == k]
        [feedback] = [i for i, c in enumerate(calls) if c.role == "expert" and session_of(c) == k]
        assert {rating, feedback} == {base + 2 * TURNS, base + 2 * TURNS + 1}
        # neither saw the other's output: no feedback in the rating prompt, no rating in the Expert's
        assert f"EXPERT-FEEDBACK-{k}" not in calls[rating].text
        assert '"rating"' not in calls[feedback].text and "rated your satisfaction" not in calls[feedback].text
    # the therapist read the feedback in the next session, and the ratings were recorded as before
    assert any("EXPERT-FEEDBACK-1" in c.text for c in recorder.of("therapist") if session_of(c) == 2)
    [sample] = log.samples
    assert sample.scores["client_satisfaction"].value["session_2"] == 60.0


def test_rendezvous_detects_calls_made_one_after_the_other() -> None:
    """The check above can fail: calls made in sequence never meet."""
    rendezvous = Rendezvous(bound=0.01)

    async def sequential() -> None:
        await rendezvous.arrive("rating", "feedback", 1)
        await rendezvous.arrive("feedback", "rating", 1)

    asyncio.run(sequential())
    assert rendezvous.met == {("rating", 1): False, ("feedback", 1): True}
