from __future__ import annotations

import math
from pathlib import Path

from inspect_ai import eval
from inspect_ai.log import read_eval_log

from psysim.calls.generation import SESSION_SEED_STEP
from psysim.tasks.iterative_feedback import iterative_feedback

from mock_roles import Recorder, main_model, roles

PERSONAS = 2


def eval_score(log, key: str):
    [score] = [s for s in log.results.scores if s.name == key]
    return score


def metric(log, key: str, name: str) -> float:
    return eval_score(log, key).metrics[name].value


def run(tmp_path: Path, recorder: Recorder, condition: str, sessions: int = 3, turns: int = 2, **kwargs):
    task = iterative_feedback(condition=condition, sessions=sessions, turns=turns, **kwargs.pop("task_args", {}))
    [log] = eval(
        task,
        model=main_model(recorder),
        model_roles=roles(recorder, **kwargs),
        limit=PERSONAS,
        log_dir=str(tmp_path / "logs"),
        display="none",
    )
    assert log.status == "success", log.error
    return read_eval_log(log.location)


def test_expert_condition_end_to_end(tmp_path: Path) -> None:
    recorder = Recorder()
    log = run(tmp_path, recorder, "expert")
    assert not recorder.of("main")
    # calls per role: turns x sessions per persona; one rating per session; sessions-1 reviews
    assert len(recorder.of("therapist")) == PERSONAS * 3 * 2
    assert len(recorder.of("client")) == PERSONAS * (3 * 2 + 3)
    assert len(recorder.of("expert")) == PERSONAS * 2

    # scores equal the mocked ratings (40 + 10 * session), gain against the baseline of 30
    for sample in log.samples:
        value = sample.scores["client_satisfaction"].value
        assert value == {"session_1": 50.0, "session_2": 60.0, "session_3": 70.0, "final": 70.0, "gain": 40.0}
    assert metric(log, "session_1", "mean") == 50.0
    assert metric(log, "final", "mean") == 70.0
    assert eval_score(log, "final").unscored_samples == 0

    # one span per session, in the sample's events
    for sample in log.samples:
        spans = [e.name for e in sample.events if e.event == "span_begin" and e.type == "session"]
        assert spans == ["session_1", "session_2", "session_3"]


def test_what_each_agent_saw_under_expert(tmp_path: Path) -> None:
    recorder = Recorder()
    run(tmp_path, recorder, "expert")
    ratings = [c for c in recorder.of("client") if "Reply with only a JSON object" in c.text]
    first = [c for c in ratings if "Session 1 has just ended" in c.last_user]
    later = [c for c in ratings if "Session 3 has just ended" in c.last_user]
    assert first and later
    for call in first:
        assert "one to four sentences" not in call.system  # no dialogue-turn instructions
        assert "Before your first session, your satisfaction with therapy was 30 out of 100" in call.last_user
        assert "After session" not in call.last_user
    for call in later:  # earlier ratings shown back to the client
        assert "After session 1 you rated your satisfaction 50 out of 100" in call.last_user
        assert "After session 2 you rated your satisfaction 60 out of 100" in call.last_user

    # in dialogue the client answers the therapist's latest turn, quoted, with a reminder of its role
    dialogue = [c for c in recorder.of("client") if "Reply with only a JSON object" not in c.text]
    assert all(c.messages[-1].role == "user" and c.last_user.startswith('The therapist says to you: "Therapist says turn')
               for c in dialogue)
    assert all(c.last_user.endswith("the client, in character, in one to four sentences.]") for c in dialogue)

    # the expert saw the dialogue and the guidelines
    for call in recorder.of("expert"):
        assert "working alliance" in call.system
        assert "Therapist: Therapist says turn 1" in call.last_user

    # the expert's words reached the therapist in the next session only
    therapist = recorder.of("therapist")
    s2 = [c for c in therapist if "Session 2 begins" in c.text]
    s3 = [c for c in therapist if "Session 3 begins" in c.text]
    s1 = [c for c in therapist if "Session 1 begins" in c.text]
    assert all("EXPERT-FEEDBACK-1" in c.system and "EXPERT-FEEDBACK-2" not in c.system for c in s2)
    assert all("EXPERT-FEEDBACK-2" in c.system for c in s3)
    assert all("EXPERT-FEEDBACK" not in c.system and "supervisor" not in c.system for c in s1)
    # the therapist sees the previous session's dialogue, not older ones
    assert all("Client answers turn 1" in c.system for c in s2)


def test_generic_condition(tmp_path: Path) -> None:
    recorder = Recorder()
    log = run(tmp_path, recorder, "generic")
    assert not recorder.of("expert")
    therapist = recorder.of("therapist")
    later = [c for c in therapist if "Session 1 begins" not in c.text]
    assert later and all("Pay closer attention to the client's needs." in c.system for c in later)
    assert all("EXPERT-FEEDBACK" not in c.text for c in therapist)
    sessions = log.samples[0].scores["client_satisfaction"].metadata["sessions"]
    assert [s["feedback_given"] for s in sessions] == [None, "Pay closer attention to the client's needs."] * 1 + [
        "Pay closer attention to the client's needs."
    ]


def test_none_condition(tmp_path: Path) -> None:
    recorder = Recorder()
    log = run(tmp_path, recorder, "none")
    assert not recorder.of("expert")
    therapist = recorder.of("therapist")
    assert all("supervisor" not in c.system and "Pay closer attention" not in c.system for c in therapist)
    assert log.samples[0].scores["client_satisfaction"].metadata["condition"] == "none"


def test_custom_generic_feedback_and_guidelines(tmp_path: Path) -> None:
    guidelines = tmp_path / "g.md"
    guidelines.write_text("CUSTOM-GUIDELINES: always name one homework task.")
    recorder = Recorder()
    run(tmp_path, recorder, "expert", task_args={"guidelines": str(guidelines)})
    assert all("CUSTOM-GUIDELINES" in c.system for c in recorder.of("expert"))
    recorder = Recorder()
    run(tmp_path, recorder, "generic", task_args={"generic_feedback": "Be warmer."})
    assert any("Be warmer." in c.system for c in recorder.of("therapist"))


def test_temperature_and_seed_reach_every_role(tmp_path: Path) -> None:
    recorder = Recorder()
    task = iterative_feedback(condition="expert", sessions=2, turns=1, temperature=0.1, seed=7)
    [log] = eval(task, model=main_model(recorder), model_roles=roles(recorder), limit=1, epochs=2,
                 log_dir=str(tmp_path / "logs"), display="none")
    assert log.status == "success"
    for role in ("therapist", "client", "expert"):
        calls = recorder.of(role)
        assert calls and all(c.config.temperature == 0.1 for c in calls)
        # seed + epoch (runs differ, reproducibly) + SESSION_SEED_STEP per later session: session 2
        # is not sampled along session 1's path
        sessions = {1: {8, 9}, 2: {8 + SESSION_SEED_STEP, 9 + SESSION_SEED_STEP}}
        expected = sessions[1] | (sessions[2] if role != "expert" else set())  # no feedback after the last session
        assert {c.config.seed for c in calls} == expected
    ratings = [c for c in recorder.of("client") if "Reply with only a JSON object" in c.text]
    assert all(c.config.response_schema is not None for c in ratings)
    assert len(log.samples) == 2  # one per epoch, each with its own score


def test_unparseable_and_out_of_range_ratings_are_missing(tmp_path: Path) -> None:
    from mock_roles import client_replier

    def rating(session: int, call) -> str:
        if session == 1:
            return "I feel a bit better, thanks."  # never a number
        if session == 2:
            return '{"rating": 150}'  # out of range, every time
        return '{"rating": 65}'

    recorder = Recorder()
    log = run(tmp_path, recorder, "none", client=client_replier(rating))
    sample = log.samples[0]
    value = sample.scores["client_satisfaction"].value
    assert math.isnan(value["session_1"]) and math.isnan(value["session_2"])
    assert value["session_3"] == 65.0 and value["gain"] == 35.0
    sessions = sample.scores["client_satisfaction"].metadata["sessions"]
    assert sessions[0]["rating_raw"] == ["I feel a bit better, thanks."] * 3
    assert sessions[0]["rating_attempts"] == 3 and "no rating found" in sessions[0]["rating_error"]
    assert sessions[1]["rating_raw"] == ['{"rating": 150}'] * 3 and "out of range" in sessions[1]["rating_error"]
    # the client was told its session-1 rating was not recorded, never given a default
    s3 = [c for c in recorder.of("client") if "Session 3 has just ended" in c.last_user]
    assert s3 and all("your rating was not recorded" in c.last_user for c in s3)
    # missing ratings are left out of the means and counted, not coerced
    assert eval_score(log, "session_1").unscored_samples == PERSONAS
    assert eval_score(log, "session_1").scored_samples == 0
    assert metric(log, "session_3", "mean") == 65.0
    assert eval_score(log, "session_3").scored_samples == PERSONAS


def test_reask_recovers_a_rating(tmp_path: Path) -> None:
    from mock_roles import client_replier

    def rating(session: int, call) -> str:
        # first attempt chats; after the re-ask (an extra user turn) it complies
        return "Rating: 72" if "could not be used" in call.last_user else "Honestly it was fine."

    recorder = Recorder()
    log = run(tmp_path, recorder, "none", sessions=1, client=client_replier(rating))
    record = log.samples[0].scores["client_satisfaction"].metadata["sessions"][0]
    assert record["rating"] == 72.0 and record["rating_attempts"] == 2
    assert record["rating_raw"] == ["Honestly it was fine.", "Rating: 72"]


def test_model_length_stop_is_recorded(tmp_path: Path) -> None:
    from mock_roles import client_replier, output

    def rating(session: int, call):
        return output("", stop_reason="model_length")

    recorder = Recorder()
    log = run(tmp_path, recorder, "none", sessions=1, client=client_replier(rating))
    meta = log.samples[0].scores["client_satisfaction"].metadata
    assert meta["sessions"][0]["rating"] is None
    assert meta["sessions"][0]["rating_code"] == "context_length"
    assert "model_length" in meta["sessions"][0]["rating_error"]
    assert meta["missing_reasons"]["session_1"].startswith("context_length: ")
    assert meta["sessions"][0]["rating_attempts"] == 1  # re-asking would only grow the prompt
    assert meta["course_status"] == "complete"  # a missing rating does not end the course
    assert {"role": "client", "step": "session_1_rating_attempt_1", "stop_reason": "model_length"} in meta["stops"]


def test_readable_dialogue_in_messages(tmp_path: Path) -> None:
    recorder = Recorder()
    log = run(tmp_path, recorder, "expert", sessions=2, turns=1)
    texts = [m.text for m in log.samples[0].messages]
    assert texts[1] == "[Session 1 begins]"
    assert texts[2].startswith("Therapist says turn 1")
    assert texts[3].startswith("Client answers turn 1")
    assert texts[4] == "[Client satisfaction after session 1: 50/100]"
    assert "EXPERT-FEEDBACK-1" in texts[5]
