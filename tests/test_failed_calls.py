"""Issue 9: failed calls in the session loop, the Experiment 2 candidates and the ratings.

One mock per role (tests/mock_roles.py); each fault is scripted from the prompt it answers.
Every test also audits the log (tests/fault_audit.py): ratings coerced and transcripts with
error text must be 0.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from inspect_ai import eval
from inspect_ai.log import read_eval_log
from inspect_ai.model import GenerateConfig, ModelOutput

from psysim.calls.failed_calls import contains_error_text, reply_fault
from psysim.calls.generation import REASK_SEED_STEP, reask_config
from psysim.tasks.human_comparison import human_comparison
from psysim.tasks.iterative_feedback import iterative_feedback

from fault_audit import audit_log
from mock_roles import (
    RATING_MARKER,
    Call,
    Recorder,
    client_replier,
    critique_form,
    main_model,
    mock_role,
    output,
    roles,
)

VLLM_CONTEXT_ERROR = (
    "This model's maximum context length is 4096 tokens. However, you requested 4400 tokens "
    "(4100 in the messages, 300 in the completion). Please reduce the length of the messages or completion."
)


def run_course(tmp_path: Path, recorder: Recorder, condition: str = "expert", sessions: int = 4, turns: int = 2,
               task_args: dict | None = None, **role_fns):
    task = iterative_feedback(condition=condition, sessions=sessions, turns=turns, **(task_args or {}))
    [log] = eval(task, model=main_model(recorder), model_roles=roles(recorder, **role_fns), limit=1,
                 log_dir=str(tmp_path / "logs"), display="none")
    assert log.status == "success", log.error
    log = read_eval_log(log.location)
    audit = audit_log(log)
    assert audit.ratings_coerced == 0 and audit.transcripts_with_error_text == 0 and audit.unexplained == 0
    return log, audit


def client_session(call: Call) -> int:
    """The session a client dialogue call belongs to (from the therapist turn it answers)."""
    return int(re.search(r"of session (\d+)", call.last_user).group(1))


def is_rating(call: Call) -> bool:
    return RATING_MARKER in call.text


def test_reply_fault_classifies_replies() -> None:
    assert reply_fault(output("I have been sleeping badly.")) is None
    assert reply_fault(output("I'd say the context of my work is long.")) is None  # not a server phrasing
    # issue 22: only stop is a finished reply; a turn cut at its cap, filtered or aborted is not a turn
    for stop_reason in ("max_tokens", "content_filter", "unknown", "tool_calls"):
        fault = reply_fault(output("I think I", stop_reason=stop_reason))
        assert fault[0] == "incomplete" and f"stop_reason={stop_reason}" in fault[1], stop_reason
    assert reply_fault(output("I think I", stop_reason="tool_calls"), tool_call_asked=True) is None
    assert reply_fault(output(""))[0] == "empty_reply"
    assert reply_fault(output(" \n\t"))[0] == "empty_reply"
    assert reply_fault(output(VLLM_CONTEXT_ERROR, stop_reason="model_length"))[0] == "context_length"
    assert reply_fault(output("", stop_reason="model_length"))[0] == "context_length"
    assert reply_fault(output(VLLM_CONTEXT_ERROR))[0] == "context_length"  # error text, any stop reason
    assert reply_fault(output('{"object": "error", "message": "Internal error"}'))[0] == "error_text"
    assert reply_fault(output("Error code: 500 - {'error': 'boom'}"))[0] == "error_text"
    # the detail names the pattern, never copies the error text
    assert not contains_error_text(reply_fault(output(VLLM_CONTEXT_ERROR))[1])
    assert contains_error_text(VLLM_CONTEXT_ERROR) and not contains_error_text("Rating: 70")


ERROR_PAGES = {
    "bare": "Internal Server Error",
    "bare_lower_newline": "internal server error\n",
    "bare_with_status": "503 Service Unavailable",
    "bare_phrase_only": "Bad Gateway",
    "envoy": "upstream connect error or disconnect/reset before headers. reset reason: connection failure",
    "envoy_no_upstream": "no healthy upstream",
    "cloudflare_plain": "error code: 502",
    "status_not_found": "404 Not Found",
    "nginx_html": "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway"
                  "</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n",
    "haproxy_html": "<html><body><h1>503 Service Unavailable</h1>\nNo server is available to handle this request."
                    "\n</body></html>",
    "cloudflare_html": '<!DOCTYPE html>\n<html lang="en-US"><head><title>example.org | 502: Bad gateway</title>'
                       "</head><body>...</body></html>",
    "json_fastapi": '{"detail": "Internal Server Error"}',
    "json_express": '{"message": "Internal server error", "statusCode": 500}',
    "json_openai_string": '{"error": "The server is overloaded"}',
    "json_openai_nested": '{"error": {"message": "upstream failed", "type": "server_error", "code": 500}}',
    "json_rfc7807": '{"type": "about:blank", "title": "Bad Gateway", "status": 502, "detail": "upstream failed"}',
}

THERAPY_TURNS_MENTIONING_ERRORS = [
    "I keep feeling like there was an internal server error in my head all week.",
    "It sounds like the error you made at work still weighs on you.",
    "Bad gateway? That is what my therapist friend called my mood.",
    "Not found. That's how I feel.",
    "Forbidden",
    "Error",
    "Server error? No, I just felt stuck.",
    "<3 thanks, that helped",
    '{"rating": 70}',
    '{"rating": 70, "message": "it was good"}',
    '{"answers": {"1": 3, "2": 4}}',
]


@pytest.mark.parametrize("shape", sorted(ERROR_PAGES))
def test_error_pages_returned_as_replies_are_failed_calls(shape: str) -> None:
    """Issue 22: bare reason phrases, proxies' HTML pages and JSON error bodies as a whole reply."""
    fault = reply_fault(output(ERROR_PAGES[shape]))
    assert fault is not None and fault[0] == "error_text", (shape, fault)
    assert contains_error_text(ERROR_PAGES[shape])


@pytest.mark.parametrize("text", THERAPY_TURNS_MENTIONING_ERRORS)
def test_a_turn_that_mentions_an_error_is_a_turn(text: str) -> None:
    assert reply_fault(output(text)) is None and not contains_error_text(text)


def test_reask_uses_a_distinct_reproducible_seed() -> None:
    config = GenerateConfig(seed=3, temperature=0.1)
    assert reask_config(config, 1).seed == 3
    assert reask_config(config, 3).seed == 3 + 2 * REASK_SEED_STEP and reask_config(config, 3).temperature == 0.1
    assert reask_config(GenerateConfig(), 2).seed is None


def test_empty_client_turn_ends_the_course(tmp_path: Path) -> None:
    base = client_replier()

    def client(call: Call) -> str:
        if not is_rating(call) and client_session(call) == 2:
            return "  "  # every attempt in session 2
        return base(call)

    recorder = Recorder()
    log, audit = run_course(tmp_path, recorder, client=client)
    sample = log.samples[0]
    score = sample.scores["client_satisfaction"]
    value, meta = score.value, score.metadata
    assert value["session_1"] == 50.0 and all(math.isnan(value[k]) for k in ("session_2", "session_3", "session_4", "final", "gain"))
    assert meta["course_status"] == "ended_early"
    assert meta["ended"] == {
        "after_session": 1, "reason": "empty_reply", "role": "client", "step": "session_2_turn_1",
        "detail": meta["ended"]["detail"],
    }
    assert set(meta["missing_reasons"]) == {"session_2", "session_3", "session_4", "final", "gain"}
    assert meta["missing_reasons"]["session_2"].startswith("empty_reply: ")
    assert all(meta["missing_reasons"][f"session_{k}"].startswith("not_held: ") for k in (3, 4))
    assert "empty_reply" in meta["missing_reasons"]["session_3"]
    statuses = [(s["status"], s["failure"]["code"] if s["failure"] else None) for s in meta["sessions"]]
    assert statuses == [("complete", None), ("failed", "empty_reply"), ("not_held", "not_held"), ("not_held", "not_held")]
    assert meta["sessions"][1]["failure"]["raw"] == ["  "] * 3 and meta["sessions"][1]["failure"]["attempts"] == 3
    # re-asked twice (the same prompt), then no more calls: no rating, no feedback, no session 3
    failed_turn = [c for c in recorder.of("client") if not is_rating(c) and client_session(c) == 2]
    assert len(failed_turn) == 3 and len({c.config.seed for c in failed_turn}) == 3
    assert len({tuple(m.text for m in c.messages) for c in failed_turn}) == 1
    assert len([c for c in recorder.of("client") if is_rating(c)]) == 1
    assert len(recorder.of("expert")) == 1
    # no empty string in the transcript; the session-2 therapist turn said before the failure is kept
    turns = sample.store["TherapyCourse:turns"]
    assert all(t["text"].strip() for t in turns)
    assert [(t["session"], t["speaker"]) for t in turns][-1] == (2, "therapist")
    # the readable chat says where and why the course ended
    last = sample.messages[-1].text
    assert last.startswith("[Course ended in session 2, before it was complete: the client call session_2_turn_1")
    assert "empty_reply" in last
    assert "sessions 2-4" in last
    assert audit.samples_lost == 1 and audit.reasons == {"empty_reply": 1, "not_held": 4}  # final and gain follow session 4
    print("\nfigures empty_client_turn:", audit.figures())  # shown with -s


def test_empty_client_turn_recovered_by_a_reask(tmp_path: Path) -> None:
    base = client_replier()

    def client(call: Call) -> str:
        if not is_rating(call) and client_session(call) == 2 and call.config.seed < REASK_SEED_STEP:
            return ""  # only the first attempt
        return base(call)

    recorder = Recorder()
    log, audit = run_course(tmp_path, recorder, condition="none", sessions=2, turns=1, client=client)
    meta = log.samples[0].scores["client_satisfaction"].metadata
    assert meta["course_status"] == "complete" and meta["ended"] is None and meta["missing_reasons"] == {}
    assert all(t["text"] for t in log.samples[0].store["TherapyCourse:turns"])
    assert audit.samples_lost == 0


def test_empty_expert_feedback_ends_the_course_not_the_condition(tmp_path: Path) -> None:
    recorder = Recorder()
    log, audit = run_course(tmp_path, recorder, expert=lambda call: "")
    meta = log.samples[0].scores["client_satisfaction"].metadata
    value = log.samples[0].scores["client_satisfaction"].value
    # re-asked, then the course ended: session 1 was held in full, so its rating stands
    assert len(recorder.of("expert")) == 3
    assert value["session_1"] == 50.0 and math.isnan(value["session_2"])
    assert meta["ended"]["after_session"] == 1 and meta["ended"]["reason"] == "empty_reply"
    assert meta["ended"]["role"] == "expert" and meta["ended"]["step"] == "session_1_feedback"
    first = meta["sessions"][0]
    assert first["status"] == "complete" and first["feedback_after"] is None
    assert first["feedback_failure"]["code"] == "empty_reply" and first["feedback_failure"]["raw"] == [""] * 3
    assert [s["status"] for s in meta["sessions"]] == ["complete", "not_held", "not_held", "not_held"]
    assert meta["missing_reasons"]["session_2"].startswith("not_held: the course ended after session 1")
    # the condition never silently became `none`: no session was held without its feedback
    assert not [c for c in recorder.of("therapist") if "Session 2 begins" in c.text]
    assert log.samples[0].messages[-1].text.startswith("[Course ended after session 1: the expert call session_1_feedback")
    assert audit.reasons == {"not_held": 5}
    print("\nfigures empty_expert_feedback:", audit.figures())  # shown with -s


def test_max_reply_attempts_bounds_the_reasks(tmp_path: Path) -> None:
    recorder = Recorder()
    log, _ = run_course(tmp_path, recorder, sessions=2, task_args={"max_reply_attempts": 1}, expert=lambda call: "")
    assert len(recorder.of("expert")) == 1
    assert log.samples[0].scores["client_satisfaction"].metadata["sessions"][0]["feedback_failure"]["attempts"] == 1
    recorder = Recorder()
    run_course(tmp_path / "five", recorder, sessions=2, task_args={"max_reply_attempts": 5}, expert=lambda call: "")
    assert len(recorder.of("expert")) == 5


@pytest.mark.parametrize("stop_reason", ["model_length", "stop"])
def test_context_length_on_a_client_turn(tmp_path: Path, stop_reason: str) -> None:
    base = client_replier()

    def client(call: Call):
        if not is_rating(call) and client_session(call) == 3 and "turn 2" in call.last_user:
            return output(VLLM_CONTEXT_ERROR, stop_reason=stop_reason)
        return base(call)

    recorder = Recorder()
    log, audit = run_course(tmp_path, recorder, sessions=5, client=client)
    sample = log.samples[0]
    meta, value = sample.scores["client_satisfaction"].metadata, sample.scores["client_satisfaction"].value
    assert [value[f"session_{k}"] for k in (1, 2)] == [50.0, 60.0]
    assert all(math.isnan(value[f"session_{k}"]) for k in (3, 4, 5))
    for key in ("session_3", "session_4", "session_5", "final", "gain"):
        assert "context_length" in meta["missing_reasons"][key]
    assert meta["missing_reasons"]["session_3"].startswith("context_length: ")
    assert meta["ended"]["reason"] == "context_length" and meta["ended"]["after_session"] == 2
    # not re-asked: the same prompt cannot fit the next time either
    assert len([c for c in recorder.of("client") if not is_rating(c) and client_session(c) == 3 and "turn 2" in c.last_user]) == 1
    # the error text is kept only as the failure's raw reply: never in a transcript or a prompt
    assert meta["sessions"][2]["failure"]["raw"] == [VLLM_CONTEXT_ERROR]
    assert not any(contains_error_text(m.text) for c in recorder.calls for m in c.messages)
    assert not any(contains_error_text(t["text"]) for t in sample.store["TherapyCourse:turns"])
    assert not any(contains_error_text(m.text) for m in sample.messages)
    assert audit.transcripts_with_error_text == 0
    print(f"\nfigures context_length_{stop_reason}:", audit.figures())  # shown with -s


def test_truncated_rating_is_reasked_then_missing(tmp_path: Path) -> None:
    def rating(session: int, call: Call):
        if session == 1:
            return output("Rating: 7", stop_reason="max_tokens")  # every attempt: might have been 75
        if session == 2 and "could not be used" not in call.last_user:
            return output('{"rating": 6', stop_reason="max_tokens")  # first attempt only
        return f'{{"rating": {40 + 10 * session}}}'

    recorder = Recorder()
    log, audit = run_course(tmp_path, recorder, condition="none", sessions=3, turns=1, client=client_replier(rating))
    meta = log.samples[0].scores["client_satisfaction"].metadata
    value = log.samples[0].scores["client_satisfaction"].value
    first, second = meta["sessions"][0], meta["sessions"][1]
    assert math.isnan(value["session_1"]) and first["rating_code"] == "truncated"
    assert first["rating_raw"] == ["Rating: 7"] * 3 and first["rating_attempts"] == 3
    assert meta["missing_reasons"]["session_1"].startswith("truncated: ")
    assert value["session_2"] == 60.0 and second["rating_attempts"] == 2  # re-asked, then answered
    reasks = [c for c in recorder.of("client") if "cut off before it ended" in c.last_user]
    assert len(reasks) == 3  # two for session 1, one for session 2
    # a missing rating does not end the course
    assert meta["course_status"] == "complete" and value["session_3"] == 70.0
    assert audit.ratings_coerced == 0 and audit.reasons == {"truncated": 1}
    print("\nfigures truncated_rating:", audit.figures())  # shown with -s


def test_empty_and_error_rating_replies_are_not_shown_back(tmp_path: Path) -> None:
    def rating(session: int, call: Call):
        if call.config.seed < REASK_SEED_STEP:
            return ""  # first attempt
        if call.config.seed < 2 * REASK_SEED_STEP:
            return '{"object": "error", "message": "Internal server error"}'
        return '{"rating": 55}'

    recorder = Recorder()
    log, audit = run_course(tmp_path, recorder, condition="none", sessions=1, turns=1, client=client_replier(rating))
    record = log.samples[0].scores["client_satisfaction"].metadata["sessions"][0]
    assert record["rating"] == 55.0 and record["rating_attempts"] == 3
    ratings = [c for c in recorder.of("client") if is_rating(c)]
    assert all(len(c.messages) == 2 for c in ratings)  # the same prompt each time, no bad reply appended
    assert audit.transcripts_with_error_text == 0


# Experiment 2 ------------------------------------------------------------------------------

def exp2_therapist(empty_llm: bool):
    def reply(call: Call) -> str:
        if "supervisor critiqued" in call.last_user:
            return "REVISED-RESPONSE: What matters most to you here?"
        return "" if empty_llm else "LLM-RESPONSE: What would you like to be different?"
    return reply


def exp2_client(call: Call) -> str:
    said = re.search(r'The therapist now says to you:\n"(.*)"', call.text, re.DOTALL).group(1)
    return '{"rating": 80}' if said.startswith("REVISED") else '{"rating": 70}' if said.startswith("LLM") else '{"rating": 50}'


def run_comparison(tmp_path: Path, recorder: Recorder, therapist, expert, snippets: int = 2):
    task = human_comparison(snippets=snippets)
    model_roles = {
        "therapist": mock_role("therapist", recorder, therapist),
        "expert": mock_role("expert", recorder, expert),
        "client": mock_role("client", recorder, exp2_client),
    }
    [log] = eval(task, model=main_model(recorder), model_roles=model_roles, log_dir=str(tmp_path / "logs"), display="none")
    assert log.status == "success", log.error
    log = read_eval_log(log.location)
    audit = audit_log(log)
    assert audit.ratings_coerced == 0 and audit.transcripts_with_error_text == 0 and audit.unexplained == 0
    return log, audit


def test_empty_llm_candidate_is_not_rated(tmp_path: Path) -> None:
    recorder = Recorder()
    log, audit = run_comparison(tmp_path, recorder, exp2_therapist(empty_llm=True), lambda c: critique_form("reflect first."))
    for sample in log.samples:
        score = sample.scores["client_rating"]
        assert math.isnan(score.value["llm"]) and score.value["human"] == 50.0 and score.value["revised"] == 80.0
        assert score.metadata["missing_reasons"].keys() == {"llm"}
        assert score.metadata["missing_reasons"]["llm"].startswith("upstream_failed: the llm response was not produced")
        assert "empty_reply" in score.metadata["missing_reasons"]["llm"]
        assert score.metadata["ratings"]["llm"] is None and "llm" not in score.metadata["candidates"]
        [failure] = score.metadata["failures"]
        assert failure["code"] == "empty_reply" and failure["step"] == "llm_response" and failure["raw"] == [""] * 3
        assert "[llm response not produced: upstream_failed" in sample.messages[-2].text
    # the llm call re-asked twice; the client never rated an empty response
    assert len([c for c in recorder.of("therapist") if "supervisor critiqued" not in c.last_user]) == 3 * len(log.samples)
    assert len(recorder.of("client")) == 2 * len(log.samples)
    assert [s for s in log.results.scores if s.name == "llm"][0].unscored_samples == len(log.samples)
    assert audit.reasons == {"upstream_failed": len(log.samples)}
    print("\nfigures exp2_empty_llm:", audit.figures())  # shown with -s


def test_failed_critique_leaves_revised_unrated(tmp_path: Path) -> None:
    recorder = Recorder()
    log, audit = run_comparison(
        tmp_path, recorder, exp2_therapist(empty_llm=False), lambda c: output(VLLM_CONTEXT_ERROR, "model_length"), snippets=1
    )
    score = log.samples[0].scores["client_rating"]
    assert score.value["llm"] == 70.0 and score.value["human"] == 50.0 and math.isnan(score.value["revised"])
    assert re.match(r"upstream_failed: .* critique failed \(context_length: ", score.metadata["missing_reasons"]["revised"])
    assert not [c for c in recorder.of("therapist") if "supervisor critiqued" in c.last_user]  # no revision asked
    assert len(recorder.of("expert")) == 1  # context length: not re-asked
    assert score.metadata["critique"] == ""
    print("\nfigures exp2_failed_critique:", audit.figures())  # shown with -s


def test_critique_cut_at_its_cap_is_reasked_for_a_shorter_reply(tmp_path: Path) -> None:
    # the offline model's critique ran past its cap 3 times in 3 with the same prompt: the re-ask
    # now says the reply was cut and asks for a shorter one (prompts/reask.yaml)
    def expert(call: Call) -> ModelOutput:
        if "cut off because it was too long" in call.last_user:
            return output(critique_form("Reflect the client's feeling before advising."))
        return output("The therapist should first " + "reflect and " * 50, "max_tokens")

    recorder = Recorder()
    log, audit = run_comparison(tmp_path, recorder, exp2_therapist(empty_llm=False), expert, snippets=1)
    score = log.samples[0].scores["client_rating"]
    assert score.value["revised"] == 80.0 and "What to change: Reflect the client's feeling before advising." in score.metadata["critique"]
    first, second = recorder.of("expert")
    assert "cut off" not in first.last_user and "reflect and reflect" not in second.text  # the cut reply is not shown back
    assert audit.samples_lost == 0
    # a reply that never fits still fails as incomplete after the bound, the note asked each time
    recorder = Recorder()
    log, _ = run_comparison(tmp_path / "never", recorder, exp2_therapist(empty_llm=False),
                            lambda call: output("The therapist should " + "reflect and " * 50, "max_tokens"), snippets=1)
    assert len(recorder.of("expert")) == 3
    assert re.match(r"upstream_failed: .* critique failed \(incomplete: ", log.samples[0].scores["client_rating"].metadata["missing_reasons"]["revised"])


def test_audit_detects_coercion_and_error_text(tmp_path: Path) -> None:
    """The audit itself on known-bad logs: a coerced rating and error text are counted."""
    recorder = Recorder()
    log, _ = run_course(tmp_path, recorder, condition="none", sessions=1, turns=1)
    sample = log.samples[0]
    score = sample.scores["client_satisfaction"]
    score.metadata["sessions"][0]["rating_raw"] = ["Rating: 7"]  # the value 50 did not come from this reply
    assert audit_log(log).ratings_coerced == 1
    score.metadata["sessions"][0]["rating_raw"] = ['{"rating": 50}']
    assert audit_log(log).ratings_coerced == 0
    # issue 22: a turn or a rating whose call the server marked incomplete came from a fault
    assert audit_log(log).turns_from_faults == 0 and audit_log(log).ratings_from_incomplete == 0
    first_turn = sample.store["TherapyCourse:turns"][0]["text"]
    for event in sample.events:
        if event.event == "model" and event.output.completion.strip() in (first_turn, '{"rating": 50}'):
            event.output.choices[0].stop_reason = "unknown"
    assert audit_log(log).turns_from_faults >= 1 and audit_log(log).ratings_from_incomplete == 1
    sample.store["TherapyCourse:turns"][0]["text"] = VLLM_CONTEXT_ERROR
    assert audit_log(log).transcripts_with_error_text == 1
    score.value["session_1"] = float("nan")
    assert audit_log(log).unexplained >= 1
