"""Issue 9 end to end: faults injected by psysim.testing.fault_server, through Inspect's real vllm/ provider.

Empty content, ``finish_reason=length`` on ratings and vLLM's context-length HTTP 400 are
injected into runs of both tasks; each run is audited (tests/fault_audit.py): ratings coerced
and transcripts (turns, readable messages, candidates, every request sent) with error text must
be 0, and every missing value has its reason.
"""

from __future__ import annotations

import json
import math
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

from fault_audit import audit_log

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
    assert audit.ratings_coerced == 0, audit
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
