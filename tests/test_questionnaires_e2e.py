"""Questionnaires in the session loop (issue 11, part 1), with one mock per role.

The mock client answers a questionnaire from its prompt: it reads the item keys from the
JSON form the prompt asks for and the session from "Session k has just ended". Expected
scores are written out by hand.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from inspect_ai import eval
from inspect_ai.log import read_eval_log

from psysim.calls.failed_calls import contains_error_text
from psysim.calls.generation import REASK_SEED_STEP
from psysim.tasks.iterative_feedback import iterative_feedback

from mock_roles import (
    RATING_MARKER,
    Call,
    Recorder,
    client_replier,
    main_model,
    output,
    roles,
    session_of,
)

QUESTIONNAIRE_MARKER = "Answer with only one JSON object"
BOND, GOAL = {"3", "5", "7", "9"}, {"4", "6", "8", "11"}
CONTEXT_ERROR = "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens."


def is_questionnaire(call: Call) -> bool:
    return QUESTIONNAIRE_MARKER in call.text


def instrument_of(call: Call) -> str:
    return "wai_sr" if "Scale: 1 = Seldom" in call.messages[1].text else "srs"


def answers(session: int, instrument: str) -> dict[str, float]:
    """SRS: item i -> i + session + 0.5; WAI-SR: bond items 5, goal items session + 1, task items 3."""
    if instrument == "srs":
        return {str(i): i + session + 0.5 for i in range(1, 5)}
    return {str(i): 5 if str(i) in BOND else session + 1 if str(i) in GOAL else 3 for i in range(1, 13)}


def questionnaire_client(questionnaire=None):
    """Dialogue and rating as the default mock; questionnaires by ``questionnaire(call, session, instrument)``."""
    base = client_replier()

    def reply(call: Call):
        if is_questionnaire(call):
            session, instrument = session_of(call), instrument_of(call)
            if questionnaire is not None:
                scripted = questionnaire(call, session, instrument)
                if scripted is not None:
                    return scripted
            return json.dumps(answers(session, instrument))
        return base(call)

    return reply


def run(tmp_path: Path, recorder: Recorder, sessions: int = 2, questionnaires: str | None = "srs,wai_sr",
        condition: str = "expert", client=None, **task_args):
    if questionnaires is not None:
        task_args["questionnaires"] = questionnaires
    task = iterative_feedback(condition=condition, sessions=sessions, turns=1, **task_args)
    [log] = eval(task, model=main_model(recorder), model_roles=roles(recorder, client=client or questionnaire_client()),
                 limit=1, log_dir=str(tmp_path / "logs"), display="none")
    assert log.status == "success", log.error
    log = read_eval_log(log.location)
    assert not any(contains_error_text(m.text) for m in log.samples[0].messages)
    return log


def questionnaire_score(log):
    score = log.samples[0].scores["client_questionnaires"]
    nan = [k for k, v in score.value.items() if math.isnan(v)]
    assert sorted(nan) == sorted(score.metadata["missing_reasons"]), "every NaN key has a reason, and only those"
    return score


def test_default_run_makes_no_questionnaire_calls(tmp_path: Path) -> None:
    recorder = Recorder()
    log = run(tmp_path, recorder, questionnaires=None)
    assert not [c for c in recorder.calls if is_questionnaire(c)]
    assert len(recorder.of("client")) == 2 * 1 + 2  # one turn and one rating per session, as before
    assert list(log.samples[0].scores) == ["client_satisfaction", "simulation_integrity"]
    assert log.eval.task_args.get("questionnaires") is None
    assert all(s["questionnaires"] == {} for s in log.samples[0].store["TherapyCourse:sessions"])


def test_questionnaires_after_each_session_scored_by_hand(tmp_path: Path) -> None:
    recorder = Recorder()
    log = run(tmp_path, recorder)
    score = questionnaire_score(log)
    # SRS session 1: 2.5 + 3.5 + 4.5 + 5.5 = 16; session 2: 3.5 + 4.5 + 5.5 + 6.5 = 20
    # WAI-SR: bond 4 x 5 = 20, task 4 x 3 = 12, goal 4 x (s + 1) = 8 / 12; total 40 / 44
    assert score.value == {
        "srs_total_s1": 16.0, "wai_total_s1": 40.0, "wai_goal_s1": 8.0, "wai_task_s1": 12.0, "wai_bond_s1": 20.0,
        "srs_total_s2": 20.0, "wai_total_s2": 44.0, "wai_goal_s2": 12.0, "wai_task_s2": 12.0, "wai_bond_s2": 20.0,
    }
    assert score.metadata["missing_reasons"] == {} and score.metadata["course_status"] == "complete"
    # item-level answers in metadata, with every raw reply
    filled = score.metadata["sessions"][1]["questionnaires"]["srs"]
    assert filled["answers"] == {"1": 3.5, "2": 4.5, "3": 5.5, "4": 6.5} and filled["attempts"] == 1
    assert filled["scores"] == {"total": 20.0} and filled["format"] == "json_schema"
    assert json.loads(filled["raw"][0]) == filled["answers"]
    assert score.metadata["instruments"]["wai_sr"]["scales"]["bond"]["items"] == ["3", "5", "7", "9"]
    assert score.metadata["instruments"]["srs"]["wording"] == "adapted"
    assert score.metadata["scale_ranges"] == {"srs_total": [0, 40], "wai_total": [12, 60], "wai_goal": [4, 20],
                                              "wai_task": [4, 20], "wai_bond": [4, 20]}
    # the 0-100 rating is unchanged
    assert log.samples[0].scores["client_satisfaction"].value["session_2"] == 60.0
    # metrics per key
    [metrics] = [s for s in log.results.scores if s.name == "wai_total_s2"]
    assert metrics.scorer == "client_questionnaires" and metrics.metrics["mean"].value == 44.0


def test_one_call_per_instrument_after_the_session_seeing_only_the_transcript(tmp_path: Path) -> None:
    recorder = Recorder()
    run(tmp_path, recorder, sessions=2)
    client = recorder.of("client")
    forms = [c for c in client if is_questionnaire(c)]
    assert sorted((session_of(c), instrument_of(c)) for c in forms) == [(1, "srs"), (1, "wai_sr"), (2, "srs"), (2, "wai_sr")]
    # one persona, one exchange a session: session 1 is its 2 turns, then its rating, both forms
    # and the feedback in any order (they run at once), then session 2's 2 turns and the rest
    kinds = ["form" if is_questionnaire(c) else "rating" if RATING_MARKER in c.text else c.role for c in recorder.calls]
    assert kinds[:2] == ["therapist", "client"] and kinds[6:8] == ["therapist", "client"]
    assert sorted(kinds[2:6]) == ["expert", "form", "form", "rating"]
    assert sorted(kinds[8:]) == ["form", "form", "rating"]
    for call in forms:
        assert len(call.messages) == 2 and call.messages[0].role == "system"
        assert "You are role-playing a client" in call.system and "Margaret" in call.system  # in character
        assert "Therapist says turn 1 of session 1" in call.last_user  # the transcript, as for the rating
        assert "out of 100" not in call.last_user  # not its ratings
        assert '"1": 2.5' not in call.last_user and '"1": 5' not in call.last_user  # not its earlier answers
        assert RATING_MARKER not in call.text
        assert call.config.response_schema is not None and call.config.max_tokens == 48 + 12 * (
            12 if instrument_of(call) == "wai_sr" else 4)
    later = [c for c in forms if session_of(c) == 2]
    assert all("Therapist says turn 1 of session 2" in c.last_user for c in later)


def test_json_object_format_sends_the_instrument_schema(tmp_path: Path) -> None:
    recorder = Recorder()
    run(tmp_path, recorder, sessions=1, questionnaires="wai_sr", rating_format="json_object")
    [form] = [c for c in recorder.of("client") if is_questionnaire(c)]
    schema = form.config.extra_body["response_format"]["schema"]
    assert schema["required"] == [str(i) for i in range(1, 13)] and schema["properties"]["3"]["type"] == "integer"


def test_malformed_answers_are_reasked_then_used(tmp_path: Path) -> None:
    def questionnaire(call: Call, session: int, instrument: str):
        if instrument == "wai_sr" and call.config.seed < REASK_SEED_STEP:
            bad = dict(answers(session, instrument), **{"3": 7})  # out of range on the first attempt
            return json.dumps(bad)
        if instrument == "srs" and call.config.seed < REASK_SEED_STEP:
            return '{"1": 2.5, "2": 3.5, "3": 4.5, "4": 5.5, "1": 9}'  # duplicate key
        return None

    recorder = Recorder()
    log = run(tmp_path, recorder, sessions=1, client=questionnaire_client(questionnaire))
    score = questionnaire_score(log)
    assert score.value["wai_bond_s1"] == 20.0 and score.value["srs_total_s1"] == 16.0
    filled = score.metadata["sessions"][0]["questionnaires"]
    assert filled["wai_sr"]["attempts"] == 2 and filled["srs"]["attempts"] == 2
    reasks = [c for c in recorder.of("client") if is_questionnaire(c) and len(c.messages) == 4]
    assert len(reasks) == 2
    wai_reask = next(c for c in reasks if instrument_of(c) == "wai_sr")
    assert "item 3: out of range: 7 is not within 1-5" in wai_reask.last_user
    assert wai_reask.messages[2].role == "assistant"  # the bad reply is shown back
    srs_reask = next(c for c in reasks if instrument_of(c) == "srs")
    assert "more than once" in srs_reask.last_user
    assert len({c.config.seed for c in recorder.of("client") if is_questionnaire(c) and instrument_of(c) == "srs"}) == 2


def test_partial_answers_after_all_attempts(tmp_path: Path) -> None:
    def questionnaire(call: Call, session: int, instrument: str):
        if instrument == "wai_sr" and session == 1:
            partial = answers(session, instrument)
            partial["3"] = 3.5  # never a whole number
            del partial["6"]  # never answered
            return json.dumps(partial)
        return None

    recorder = Recorder()
    log = run(tmp_path, recorder, sessions=2, questionnaires="wai_sr", client=questionnaire_client(questionnaire),
              max_rating_attempts=2)
    score = questionnaire_score(log)
    value, reasons = score.value, score.metadata["missing_reasons"]
    # bond needs item 3, goal needs item 6, total needs both: missing; task is complete: 4 x 3 = 12
    assert math.isnan(value["wai_total_s1"]) and math.isnan(value["wai_bond_s1"]) and math.isnan(value["wai_goal_s1"])
    assert value["wai_task_s1"] == 12.0
    assert reasons["wai_bond_s1"].startswith("rating_unparsed: ") and "3 (not a whole number: 3.5" in reasons["wai_bond_s1"]
    assert "6 (not answered" in reasons["wai_goal_s1"] and "6 (not answered" in reasons["wai_total_s1"]
    filled = score.metadata["sessions"][0]["questionnaires"]["wai_sr"]
    assert filled["attempts"] == 2 and len(filled["answers"]) == 10 and set(filled["item_errors"]) == {"3", "6"}
    assert filled["code"] == "rating_unparsed"
    # session 2 is unaffected, and so is the course
    assert value["wai_total_s2"] == 44.0 and score.metadata["course_status"] == "complete"


@pytest.mark.parametrize("failure", ["empty", "context_length", "truncated"])
def test_a_failed_questionnaire_call_is_missing_and_the_course_goes_on(tmp_path: Path, failure: str) -> None:
    def questionnaire(call: Call, session: int, instrument: str):
        if instrument == "srs" and session == 1:
            if failure == "empty":
                return ""
            if failure == "context_length":
                return output(CONTEXT_ERROR, stop_reason="model_length")
            return output(json.dumps(answers(session, instrument)), stop_reason="max_tokens")  # never parsed
        return None

    recorder = Recorder()
    log = run(tmp_path, recorder, sessions=2, client=questionnaire_client(questionnaire))
    score = questionnaire_score(log)
    code = {"empty": "empty_reply", "context_length": "context_length", "truncated": "truncated"}[failure]
    assert math.isnan(score.value["srs_total_s1"])
    assert score.metadata["missing_reasons"] == {"srs_total_s1": score.metadata["missing_reasons"]["srs_total_s1"]}
    assert score.metadata["missing_reasons"]["srs_total_s1"].startswith(f"{code}: ")
    filled = score.metadata["sessions"][0]["questionnaires"]["srs"]
    assert filled["code"] == code and filled["answers"] == {}
    assert filled["attempts"] == (1 if failure == "context_length" else 3)  # context length: not re-asked
    assert score.value["wai_total_s1"] == 40.0 and score.value["srs_total_s2"] == 20.0
    assert score.metadata["course_status"] == "complete"
    sat = log.samples[0].scores["client_satisfaction"]
    assert sat.value["session_2"] == 60.0 and sat.metadata["course_status"] == "complete"
    # an empty or error reply is not shown back; a cut one is, with a re-ask
    srs_calls = [c for c in recorder.of("client") if is_questionnaire(c) and instrument_of(c) == "srs" and session_of(c) == 1]
    if failure == "truncated":
        assert [len(c.messages) for c in srs_calls] == [2, 4, 6] and "cut off" in srs_calls[-1].last_user
    else:
        assert all(len(c.messages) == 2 for c in srs_calls)


def test_sessions_not_held_have_missing_questionnaires_with_the_reason(tmp_path: Path) -> None:
    base = questionnaire_client()

    def client(call: Call):
        if not is_questionnaire(call) and RATING_MARKER not in call.text and "of session 2" in call.last_user:
            return ""  # the client's turn in session 2 fails on every attempt
        return base(call)

    recorder = Recorder()
    log = run(tmp_path, recorder, sessions=3, client=client)
    score = questionnaire_score(log)
    reasons = score.metadata["missing_reasons"]
    assert score.value["srs_total_s1"] == 16.0
    assert reasons["srs_total_s2"].startswith("empty_reply: ") and reasons["wai_bond_s2"].startswith("empty_reply: ")
    assert reasons["wai_total_s3"].startswith("not_held: ")
    assert score.metadata["course_status"] == "ended_early" and score.metadata["ended"]["after_session"] == 1
    assert not [c for c in recorder.of("client") if is_questionnaire(c) and session_of(c) > 1]


def test_unknown_questionnaire_is_an_error_before_any_call() -> None:
    with pytest.raises(ValueError, match="unknown questionnaire 'wai': shipped are srs, wai_sr"):
        iterative_feedback(questionnaires="srs,wai")
    with pytest.raises(ValueError, match="instrument file not found"):
        iterative_feedback(questionnaires=["srs", "my/srs_licensed.yaml"])


def test_paper_runner_passes_questionnaires_and_counts_their_concurrent_calls() -> None:
    from psysim.study.paper import concurrency, paper_tasks

    plain = paper_tasks(sessions=1, turns=1)
    assert all(len(t.scorer) == 2 and "questionnaires" not in t.metadata for t in plain)  # rating, integrity
    tasks = paper_tasks(sessions=1, turns=1, questionnaires="srs,wai_sr")
    assert [t.metadata["questionnaires"] for t in tasks] == [["srs", "wai_sr"]] * 3
    assert all(len(t.scorer) == 3 for t in tasks)  # rating, integrity, questionnaires
    # two questionnaire calls in flight per sample after a session
    assert concurrency(tasks, epochs=5, limit=4, max_connections=None)["max_connections"] == 2 * concurrency(
        plain, epochs=5, limit=4, max_connections=None)["max_connections"]
