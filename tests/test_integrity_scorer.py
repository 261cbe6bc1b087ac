"""The simulation_integrity scorer end to end (mock roles) and the psysim-offline --check gate."""

from __future__ import annotations

import re
from pathlib import Path

from inspect_ai import eval
from inspect_ai.log import read_eval_log

from psysim.offline.run import RunReport, inspect_log, integrity_problems
from psysim.tasks.iterative_feedback import iterative_feedback

from mock_roles import (
    RATING_MARKER,
    Call,
    Recorder,
    client_replier,
    main_model,
    roles,
    session_of,
)

ASSISTANT_LINE = "Hello, Margaret. I'm here to help you. How can I assist you today?"
# distinct lines per session and exchange, so the mock dialogue is clean (the default mocks repeat
# one line per role: an echo; the same lines in every session would replay session 1: an echo too)
THERAPIST_LINES = [
    ["Welcome, Margaret. What would you like us to focus on today?",
     "The evenings sound especially lonely since Tom died. What helps, even a little?"],
    ["Good to see you again, Margaret. How did the phone calls with your sister go this week?",
     "It sounds as if asking for help still feels like a burden to you. Where does that come from?"],
    ["Welcome back, Margaret. Last time you mentioned the choir; have you thought more about it?",
     "Going back for one song is a real step. What would make the next rehearsal a little easier?"],
]
CLIENT_LINES = [
    ["Mostly the evenings. The house is so quiet that I can't stand it some nights.",
     "Phoning my sister helps, though I hate to be a burden on her with all this."],
    ["I rang her twice, and we talked about the garden mostly. It was nicer than I expected.",
     "My mother never asked anyone for anything. I suppose I learned that from her early on."],
    ["I went on Thursday and stayed for one song before I slipped out during the tea.",
     "If Joan sat with me, perhaps. She knew Tom, so I wouldn't have to explain myself."],
]


def exchange(call: Call) -> int:
    return sum(1 for m in call.messages if m.role == "assistant")


def clean_therapist(call: Call) -> str:
    return THERAPIST_LINES[session_of(call) - 1][exchange(call)]


def client_session(call: Call) -> int:
    """The client's session: its system prompt holds each earlier session under ``Session k:``."""
    return len(re.findall(r"^Session \d+:$", call.system, flags=re.MULTILINE)) + 1


def clean_client(call: Call) -> str:
    if RATING_MARKER in call.text:
        return client_replier()(call)
    return CLIENT_LINES[client_session(call) - 1][exchange(call)]


def broken_in_session_2(call: Call) -> str:
    """A client that drifts into the assistant role in session 2 only (its system prompt then
    holds session 1, not session 2)."""
    if RATING_MARKER not in call.text and "Session 1:" in call.system and "Session 2:" not in call.system:
        return ASSISTANT_LINE
    return clean_client(call)


def run(tmp_path: Path, client=None):
    recorder = Recorder()
    [log] = eval(
        iterative_feedback(condition="expert", sessions=3, turns=2),
        model=main_model(recorder),
        model_roles=roles(recorder, therapist=clean_therapist, client=client or clean_client),
        limit=1,
        log_dir=str(tmp_path / "logs"),
        display="none",
    )
    assert log.status == "success", log.error
    return log


def test_clean_course_passes_and_the_check_gate_passes(tmp_path: Path) -> None:
    log = run(tmp_path)
    [sample] = read_eval_log(log.location).samples
    score = sample.scores["simulation_integrity"]
    assert score.value["flagged"] == 0 and score.value["held_sessions"] == 3
    assert [s["status"] for s in score.metadata["sessions"]] == ["pass", "pass", "pass"]
    assert score.metadata["flags"] == [] and score.metadata["excluded_sessions"] == {}
    # the rating scorer is untouched beside it
    assert sample.scores["client_satisfaction"].value["session_2"] == 60.0

    report = RunReport(experiment="iterative_feedback", log=log.location, seconds=1, status=log.status)
    inspect_log(log, report)
    assert report.problems == [] and report.ratings == 3  # several scorers per log: read by name
    assert report.integrity.units == 3 and report.integrity.failed == 0
    assert (report.integrity.replies, report.integrity.flagged_replies) == (3 * 4 + 2, 0)  # turns + feedback
    assert integrity_problems(report, max_fail=0.0) == []


def test_role_break_fails_its_session_and_excludes_the_later_ones(tmp_path: Path) -> None:
    log = run(tmp_path, client=broken_in_session_2)
    [sample] = read_eval_log(log.location).samples
    score = sample.scores["simulation_integrity"]
    assert [s["status"] for s in score.metadata["sessions"]] == ["pass", "fail", "excluded"]
    assert score.metadata["excluded_sessions"]["session_3"].startswith("integrity_upstream: depends on session 2")
    flags = score.metadata["flags"]
    assert {(f["kind"], f["role"], f["session"]) for f in flags} >= {
        ("role_break", "client", 2), ("echo", "client", 2)  # the second turn repeats the first
    }
    assert all(f["session"] == 2 and f["step"].startswith("session_2_turn_") for f in flags)
    assert score.value["sessions_failed"] == 1 and score.value["sessions_excluded"] == 2
    assert score.value["client_flag_rate"] == 2 / 6 and score.value["therapist_flag_rate"] == 0

    report = RunReport(experiment="iterative_feedback", log=log.location, seconds=1, status=log.status)
    inspect_log(log, report)
    assert report.problems == []  # every rating parsed: only the integrity gate can fail it
    assert (report.integrity.failed, report.integrity.units, report.integrity.excluded) == (1, 3, 2)
    assert report.integrity.flags["client:role_break"] == 2
    # 2 of 14 replies (12 turns, 2 feedbacks) flagged: 14%
    assert (report.integrity.replies, report.integrity.flagged_replies) == (14, 2)
    assert integrity_problems(report, max_fail=0.2) == []
    [problem] = integrity_problems(report, max_fail=0.1)
    assert problem == "simulation integrity: 2/14 replies flagged (14%, gate 10%)"


def replaying_session_1(call: Call) -> str:
    """A client that answers every session with its session-1 words (the offline model's replay)."""
    if RATING_MARKER in call.text:
        return client_replier()(call)
    return CLIENT_LINES[0][exchange(call)]


def test_a_session_replaying_session_1_fails(tmp_path: Path) -> None:
    log = run(tmp_path, client=replaying_session_1)
    [sample] = read_eval_log(log.location).samples
    score = sample.scores["simulation_integrity"]
    assert [s["status"] for s in score.metadata["sessions"]] == ["pass", "fail", "fail"]
    flags = score.metadata["flags"]
    assert {(f["kind"], f["role"], f["session"], f["turn"]) for f in flags} == {
        ("echo", "client", k, n) for k in (2, 3) for n in (1, 2)
    }
    assert all(f["detail"].startswith("repeats its own turn of session ") for f in flags)


def test_check_gate_fails_without_an_integrity_score() -> None:
    report = RunReport(experiment="iterative_feedback", log="x", seconds=1, status="success")
    assert integrity_problems(report, max_fail=1.0) == ["no simulation_integrity score in the log"]
