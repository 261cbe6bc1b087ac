"""Issue 9 end to end: faults injected by psysim.testing.fault_server, through Inspect's real vllm/ provider.

Empty content, ``finish_reason=length`` on ratings and vLLM's context-length HTTP 400 are
injected into runs of both tasks; each run is audited (tests/fault_audit.py): ratings coerced
and transcripts (turns, readable messages, candidates, every request sent) with error text must
be 0, and every missing value has its reason.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from pathlib import Path
from typing import Any

from inspect_ai import eval
from inspect_ai.log import read_eval_log
from inspect_ai.model import Model, get_model

from psysim.calls.failed_calls import contains_error_text
from psysim.tasks.human_comparison import human_comparison
from psysim.tasks.iterative_feedback import iterative_feedback
from psysim.testing.fault_server import Fault, FaultServer

from fault_audit import SUITE, audit_log

ROLES = ("therapist", "client", "expert")


def vllm_models(server: FaultServer) -> tuple[Model, dict[str, Model]]:
    # a fresh model name per run: the provider keeps the first base URL it saw per model
    name = f"vllm/fake-{uuid.uuid4().hex[:8]}"
    model = get_model(name, base_url=server.base_url, api_key="local")
    return model, {role: model for role in ROLES}


def run(task: Any, schedule: list[Fault], tmp_path: Path, **eval_args: Any) -> tuple[Any, FaultServer]:
    with FaultServer(schedule, max_requests=500, max_seconds=120) as server:
        model, roles = vllm_models(server)
        [log] = eval(task, model=model, model_roles=roles, log_dir=str(tmp_path / "logs"), display="none",
                     max_retries=1, timeout=60, **eval_args)
    assert log.status == "success", log.error
    log = read_eval_log(log.location)
    # nothing the harness sent to any model holds an error message
    sent = [json.dumps(body["messages"]) for body in server.requests]
    assert not any(contains_error_text(text) for text in sent)
    audit = audit_log(log)
    SUITE.add(audit, dict(server.injected))
    assert audit.ratings_coerced == 0, audit
    assert audit.ratings_from_incomplete == 0 and audit.turns_from_faults == 0, audit
    assert audit.transcripts_with_error_text == 0, audit
    assert audit.unexplained == 0, audit
    return log, server, audit


def test_iterative_feedback_empty_turn_and_truncated_rating(tmp_path: Path) -> None:
    schedule = [
        Fault("length", role="rating", calls=[1, 2, 3], text="Rating: 7"),  # session 1: every attempt cut
        Fault("empty", role="client", calls=[3, 4, 5]),  # session 2, turn 1: first ask and both re-asks
    ]
    log, server, audit = run(iterative_feedback(condition="expert", sessions=3, turns=2), schedule, tmp_path, limit=1)
    [sample] = log.samples
    score = sample.scores["client_satisfaction"]
    assert all(math.isnan(v) for v in score.value.values())
    meta = score.metadata
    assert meta["course_status"] == "ended_early"
    assert meta["ended"]["after_session"] == 1 and meta["ended"]["reason"] == "empty_reply"
    assert meta["ended"]["role"] == "client" and meta["ended"]["step"] == "session_2_turn_1"
    reasons = meta["missing_reasons"]
    assert reasons["session_1"].startswith("truncated: ")  # the session was held; its rating is missing
    assert reasons["session_2"].startswith("empty_reply: ") and reasons["session_3"].startswith("not_held: ")
    assert [s["status"] for s in meta["sessions"]] == ["complete", "failed", "not_held"]
    assert meta["sessions"][0]["rating_raw"] == ["Rating: 7"] * 3
    assert server.injected == {"length": 3, "empty": 3}
    # the course stopped: no session-2 rating, no session 3
    assert server.calls_by_role["rating"] == 3 and server.calls_by_role["expert"] == 1
    assert all(t["text"].strip() for t in sample.store["TherapyCourse:turns"])
    assert "[Course ended in session 2, before it was complete" in sample.messages[-1].text
    print("\nfigures:", audit.figures(), "injected:", dict(server.injected))


def test_iterative_feedback_context_length_400(tmp_path: Path) -> None:
    schedule = [
        Fault("length", role="rating", calls=[2], text='{"rating": 6'),  # session 2: cut once, then answered
        Fault("context_length", role="client", calls=[5]),  # session 3, turn 1
    ]
    log, server, audit = run(iterative_feedback(condition="expert", sessions=4, turns=2), schedule, tmp_path, limit=1)
    [sample] = log.samples
    score = sample.scores["client_satisfaction"]
    assert score.value["session_1"] == 64.0 and score.value["session_2"] == 64.0
    assert meta_ok(score.metadata, first_missing=3, sessions=4, code="context_length")
    assert score.metadata["sessions"][1]["rating_attempts"] == 2
    failure = score.metadata["sessions"][2]["failure"]
    assert failure["attempts"] == 1 and failure["raw"][0].startswith("This model's maximum context length")
    assert server.injected == {"length": 1, "context_length": 1}
    assert server.calls_by_role["client"] == 5  # not re-asked: the prompt cannot fit the next time either
    print("\nfigures:", audit.figures(), "injected:", dict(server.injected))


def meta_ok(meta: dict[str, Any], first_missing: int, sessions: int, code: str) -> bool:
    assert meta["course_status"] == "ended_early" and meta["ended"]["reason"] == code
    assert meta["ended"]["after_session"] == first_missing - 1
    for k in range(first_missing, sessions + 1):
        assert code in meta["missing_reasons"][f"session_{k}"]
    assert set(meta["missing_reasons"]) == {f"session_{k}" for k in range(first_missing, sessions + 1)} | {"final", "gain"}
    return True


def test_human_comparison_empty_llm_and_context_length_critique(tmp_path: Path) -> None:
    def llm_call(n: int, role: str, body: dict[str, Any]) -> bool:
        return "supervisor critiqued" not in json.dumps(body["messages"][-1])

    schedule = [
        Fault("empty", role="therapist", when=llm_call),  # every llm response, every attempt
        Fault("context_length", role="expert", times=1),  # one snippet's critique
    ]
    log, server, audit = run(human_comparison(snippets=3), schedule, tmp_path)
    scores = [s.scores["client_rating"] for s in log.samples]
    for score in scores:
        assert math.isnan(score.value["llm"]) and score.value["human"] == 64.0
        assert score.metadata["missing_reasons"]["llm"].startswith("upstream_failed: ")
        assert "empty_reply" in score.metadata["missing_reasons"]["llm"]
    unrevised = [s for s in scores if math.isnan(s.value["revised"])]
    assert len(unrevised) == 1 and "critique failed (context_length: " in unrevised[0].metadata["missing_reasons"]["revised"]
    assert sorted(s.value["revised"] for s in scores if s not in unrevised) == [64.0, 64.0]
    # only produced candidates were rated: 3 human + 2 revised
    assert server.calls_by_role["rating"] == 5
    assert server.injected == {"empty": 9, "context_length": 1}
    assert audit.samples_lost == 3 and audit.reasons == {"upstream_failed": 4}
    print("\nfigures:", audit.figures(), "injected:", dict(server.injected))


def test_iterative_feedback_error_text_reasked_and_empty_feedback(tmp_path: Path) -> None:
    schedule = [
        # an error body delivered as a 200 completion: not a turn; the re-ask gets a real one
        Fault("text", role="therapist", calls=[1], text='{"object": "error", "message": "Internal server error", "code": 500}'),
        Fault("empty", role="expert"),  # the Expert never answers
    ]
    log, server, audit = run(iterative_feedback(condition="expert", sessions=2, turns=1), schedule, tmp_path, limit=1)
    [sample] = log.samples
    meta = sample.scores["client_satisfaction"].metadata
    assert server.calls_by_role["therapist"] == 2  # session 1 only: the re-ask; no session 2 without feedback
    assert sample.scores["client_satisfaction"].value["session_1"] == 64.0
    assert meta["ended"]["reason"] == "empty_reply" and meta["ended"]["role"] == "expert"
    assert meta["missing_reasons"]["session_2"].startswith("not_held: ")
    assert meta["sessions"][0]["feedback_failure"]["raw"] == ["", "", ""]
    assert server.injected == {"text": 1, "empty": 3}
    print("\nfigures:", audit.figures(), "injected:", dict(server.injected))


# issue 22 ---------------------------------------------------------------------------------------

def stop_steps(meta: dict[str, Any]) -> list[tuple[str, str]]:
    return [(s["step"], s["stop_reason"]) for s in meta["stops"]]


def test_iterative_feedback_replies_marked_incomplete_are_not_ratings_or_turns(tmp_path: Path) -> None:
    """vLLM's ``abort`` (Inspect: ``unknown``) and ``content_filter``: "Rating: 7" is never a rating
    and "I think I" never a turn; each such call is in the stop records."""
    schedule = [
        Fault("finish", role="rating", calls=[1], finish_reason="abort"),  # session 1: once, then answered
        Fault("finish", role="rating", calls=[3, 4, 5], finish_reason="content_filter"),  # session 2: every attempt
        Fault("finish", role="client", calls=[5, 6, 7], text="I think I", finish_reason="abort"),  # session 3, turn 1
    ]
    log, server, audit = run(iterative_feedback(condition="expert", sessions=3, turns=2), schedule, tmp_path, limit=1)
    [sample] = log.samples
    score = sample.scores["client_satisfaction"]
    meta = score.metadata
    assert score.value["session_1"] == 64.0 and meta["sessions"][0]["rating_attempts"] == 2
    assert math.isnan(score.value["session_2"]) and meta["sessions"][1]["rating_code"] == "incomplete"
    assert meta["sessions"][1]["rating_raw"] == ["Rating: 7"] * 3
    assert meta["missing_reasons"]["session_2"].startswith("incomplete: ")
    assert "stop_reason=content_filter" in meta["missing_reasons"]["session_2"]
    assert meta["ended"]["reason"] == "incomplete" and meta["ended"]["step"] == "session_3_turn_1"
    assert [s["status"] for s in meta["sessions"]] == ["complete", "complete", "failed"]
    assert meta["sessions"][2]["failure"]["raw"] == ["I think I"] * 3
    assert not any("I think I" in t["text"] for t in sample.store["TherapyCourse:turns"])
    assert stop_steps(meta) == [
        ("session_1_rating_attempt_1", "unknown"),
        *[(f"session_2_rating_attempt_{n}", "content_filter") for n in (1, 2, 3)],
        ("session_3_turn_1", "unknown"), ("session_3_turn_1_attempt_2", "unknown"),
        ("session_3_turn_1_attempt_3", "unknown"),
    ]
    assert server.injected == {"finish": 7}
    assert audit.ratings == 1 and audit.reasons == {"incomplete": 4}  # session_2, session_3, final, gain
    print("\nfigures:", audit.figures(), "injected:", dict(server.injected))


def test_a_server_that_omits_finish_reason_fails_every_call(tmp_path: Path) -> None:
    """``finish_reason: null`` is Inspect's ``unknown``: the first turn fails after its attempts."""
    log, server, audit = run(iterative_feedback(condition="none", sessions=2, turns=1),
                             [Fault("finish", finish_reason=None, text="It sounds like this weighs on you.")],
                             tmp_path, limit=1)
    meta = log.samples[0].scores["client_satisfaction"].metadata
    assert meta["ended"]["reason"] == "incomplete" and meta["ended"]["step"] == "session_1_turn_1"
    assert "stop_reason=unknown" in meta["ended"]["detail"]
    assert server.injected == {"finish": 3} and audit.ratings == 0 and log.samples[0].store["TherapyCourse:turns"] == []


def test_error_pages_as_replies_are_re_asked_never_turns(tmp_path: Path) -> None:
    schedule = [
        Fault("error_page", role="therapist", calls=[1], shape="bare"),  # "Internal Server Error"
        Fault("error_page", role="client", calls=[1], shape="html"),  # nginx's 502 page
        Fault("error_page", role="rating", calls=[1], shape="json"),  # {"detail": ...} with status 200
        Fault("error_page", role="expert", shape="json"),  # the Expert never answers
    ]
    log, server, audit = run(iterative_feedback(condition="expert", sessions=2, turns=1), schedule, tmp_path, limit=1)
    [sample] = log.samples
    score = sample.scores["client_satisfaction"]
    meta = score.metadata
    assert score.value["session_1"] == 64.0 and meta["sessions"][0]["rating_attempts"] == 2
    assert [t["text"][:8] for t in sample.store["TherapyCourse:turns"]] == ["It sound", "I have b"]
    assert meta["ended"]["reason"] == "error_text" and meta["ended"]["role"] == "expert"
    assert meta["missing_reasons"]["session_2"].startswith("not_held: ")
    assert server.injected == {"error_page": 6}  # 3 single faults + the Expert's 3 attempts


def test_human_comparison_error_page_candidates_and_aborted_ratings_are_not_rated(tmp_path: Path) -> None:
    def llm_call(n: int, role: str, body: dict[str, Any]) -> bool:
        return "supervisor critiqued" not in json.dumps(body["messages"][-1])

    schedule = [
        Fault("error_page", role="therapist", when=llm_call, shape="html"),  # every llm response
        Fault("finish", role="rating", text='{"rating": 7}', finish_reason="abort"),  # every rating attempt
    ]
    log, server, audit = run(human_comparison(snippets=2), schedule, tmp_path)
    scores = [s.scores["client_rating"] for s in log.samples]
    for score in scores:
        assert math.isnan(score.value["llm"]) and "error_text" in score.metadata["missing_reasons"]["llm"]
    assert all(math.isnan(v) for s in scores for v in s.value.values())  # a well-formed {"rating": 7} is no rating
    reasons = [r for s in scores for r in s.metadata["missing_reasons"].values()]
    assert sum(r.startswith("incomplete: ") for r in reasons) == 4  # 2 human + 2 revised, 3 attempts each
    assert server.injected == {"error_page": 6, "finish": 12}
    assert audit.ratings == 0 and audit.reasons == {"upstream_failed": 2, "incomplete": 4}
    print("\nfigures:", audit.figures(), "injected:", dict(server.injected))


def test_the_evals_attempt_timeout_reaches_every_role_call(tmp_path: Path) -> None:
    """``inspect eval --attempt-timeout`` (here eval(attempt_timeout=2)) bounds the role calls: a
    30 s stall of the first therapist turn is abandoned after 2 s and retried. The roles are bound
    to a model other than the eval's main model, as in a real run, where Inspect passes a role
    only max_retries and timeout of the eval's settings."""
    with FaultServer([Fault("stall", role="therapist", calls=[1], seconds=30)], max_requests=200, max_seconds=120) as server:
        name = f"vllm/fake-{uuid.uuid4().hex[:8]}"
        main = get_model(name, base_url=server.base_url, api_key="local")
        role_model = get_model(f"{name}-roles", base_url=server.base_url, api_key="local")
        started = time.monotonic()
        [log] = eval(iterative_feedback(condition="none", sessions=1, turns=1), model=main,
                     model_roles={role: role_model for role in ROLES}, limit=1, log_dir=str(tmp_path / "logs"),
                     display="none", max_retries=2, timeout=60, attempt_timeout=2)
        elapsed = time.monotonic() - started
    assert log.status == "success", log.error
    assert server.injected == {"stall": 1}
    print(f"\nelapsed with a 30 s stall under attempt_timeout=2: {elapsed:.1f} s")
    assert elapsed < 20, f"the stall was waited out: {elapsed:.1f} s"
    sample = read_eval_log(log.location).samples[0]
    configs = [e.config for e in sample.events if e.event == "model"]
    assert configs and all(c.attempt_timeout == 2 for c in configs)
    assert sample.scores["client_satisfaction"].value["session_1"] == 64.0
