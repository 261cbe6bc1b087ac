"""The fault-injection server, each fault observed through Inspect's real vllm/ provider."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from inspect_ai.model import (
    ChatMessageSystem,
    ChatMessageUser,
    GenerateConfig,
    ModelOutput,
    get_model,
)

from psysim.testing.fake_server import FakeOpenAIServer
from psysim.testing.fault_server import (
    ERROR_PAGES,
    GARBAGE_RATING,
    Fault,
    FaultServer,
    load_schedule,
    request_role,
)

REPO = Path(__file__).resolve().parents[1]

THERAPIST = [ChatMessageSystem(content="You are a psychotherapist."), ChatMessageUser(content="Hello.")]
CLIENT = [ChatMessageSystem(content="You are the client in a therapy session."), ChatMessageUser(content="Hi.")]
RATING = [*CLIENT[:1], ChatMessageUser(content='Reply with only a JSON object of the form {"rating": <integer>}.')]

# small bounds: a retried fault costs one retry_delay (1 s), a hopeless one ends the call
FAST = GenerateConfig(max_retries=2, timeout=20, attempt_timeout=2)


def generate(server: FakeOpenAIServer, *calls: list[Any], config: GenerateConfig = FAST) -> list[ModelOutput | BaseException]:
    """Each call through Inspect's vllm/ provider; the output or the exception it raised."""
    # a fresh model name per test: the provider keeps the first base URL it saw per model
    model = get_model(f"vllm/fake-{uuid.uuid4().hex[:8]}", base_url=server.base_url, api_key="local", retry_delay=1)

    async def run() -> list[ModelOutput | BaseException]:
        results: list[ModelOutput | BaseException] = []
        for messages in calls:
            try:
                results.append(await model.generate(messages, config=config))
            except Exception as ex:  # noqa: BLE001 - the test inspects what the provider raised
                results.append(ex)
        return results

    return asyncio.run(run())


@pytest.mark.parametrize("kind", ["http_500", "http_429", "drop", "stall"])
def test_transient_faults_are_retried(kind: str) -> None:
    with FaultServer([Fault(kind, role="therapist", calls=[1], seconds=30)], max_seconds=60) as server:
        [output] = generate(server, THERAPIST)
    assert isinstance(output, ModelOutput) and output.completion.startswith("It sounds like")
    assert server.injected == {kind: 1} and len(server.requests) == 2  # the fault, then its retry


def test_a_fault_on_every_attempt_ends_the_call_with_an_error() -> None:
    with FaultServer([Fault("http_500")], max_seconds=60) as server:
        [result] = generate(server, THERAPIST, config=GenerateConfig(max_retries=1, timeout=20))
    assert isinstance(result, Exception) and "InternalServerError" in str(result)
    # 2 Inspect attempts (max_retries=1), each with the OpenAI client's own 2 retries; then no more
    assert server.injected == {"http_500": 6}


def test_a_closed_connection_is_announced_so_a_pooling_client_never_reuses_it() -> None:
    """An injected HTTP 500 closes the connection; without "Connection: close" a keep-alive client
    (httpx, as the OpenAI client) could reuse it before the close arrives and see a disconnect
    instead of the 500 (a flaky APIConnectionError in place of the fault under test)."""
    body = {"model": "fake", "messages": [{"role": "system", "content": "You are the client in a therapy session."}]}
    with FaultServer([Fault("http_500")], max_seconds=60) as server, httpx.Client(timeout=10) as client:
        replies = [client.post(f"{server.base_url}/chat/completions", json=body) for _ in range(100)]
    assert [reply.status_code for reply in replies] == [500] * 100
    assert all(reply.headers["connection"] == "close" for reply in replies)


def test_without_faults_nothing_is_injected() -> None:
    with FaultServer([Fault("http_500", role="expert")], max_seconds=60) as server:
        [output] = generate(server, THERAPIST)
    assert isinstance(output, ModelOutput) and output.stop_reason == "stop"
    assert server.injected == {} and server.injections == []


def test_content_faults_as_the_provider_returns_them() -> None:
    schedule = [
        Fault("empty", role="client", calls=[1]),
        Fault("length", role="rating", calls=[1]),
        Fault("text", role="rating", calls=[2]),
        Fault("context_length", role="client", calls=[2]),
        Fault("context_length", role="client", calls=[3], shape="flat"),
    ]
    with FaultServer(schedule, max_seconds=60) as server:
        empty, length, garbage_text, context, context_flat, normal = generate(server, CLIENT, RATING, RATING, CLIENT, CLIENT, CLIENT)
    assert empty.completion == "" and empty.stop_reason == "stop"
    assert length.completion == "Rating: 7" and length.stop_reason == "max_tokens"
    assert garbage_text.completion == GARBAGE_RATING and garbage_text.stop_reason == "stop"
    # vLLM's context-length 400 is not an exception: the error text arrives as the completion
    for output in (context, context_flat):
        assert output.stop_reason == "model_length"
        assert output.completion.startswith("This model's maximum context length is 4096 tokens.")
    assert normal.completion.startswith("I have been sleeping badly")
    assert server.injected == {"empty": 1, "length": 1, "text": 1, "context_length": 2}
    assert [(i["role"], i["call"]) for i in server.injections] == [
        ("client", 1), ("rating", 1), ("rating", 2), ("client", 2), ("client", 3)
    ]


def test_garbage_body_is_an_error_not_a_reply() -> None:
    with FaultServer([Fault("garbage")], max_seconds=60) as server:
        [result] = generate(server, THERAPIST, config=GenerateConfig(max_retries=1, timeout=20))
    # the OpenAI client cannot decode it; Inspect does not retry that: the call fails at once
    assert isinstance(result, ValueError) and "Expecting value" in str(result)
    assert server.injected == {"garbage": 1}


def test_schedule_by_call_number_predicate_and_times() -> None:
    schedule = [
        Fault("empty", when=lambda n, role, body: role == "therapist" and n % 2 == 0, times=1),
        Fault("length", calls=[1], text="cut"),  # the first request of all, whatever its role
    ]
    with FaultServer(schedule, max_seconds=60) as server:
        outputs = generate(server, CLIENT, THERAPIST, THERAPIST, THERAPIST)
    # requests 1..4: the 1st of all is cut; the 2nd (even, therapist) is empty; the 4th is not (times=1)
    assert [o.completion[:5] for o in outputs] == ["cut", "", "It so", "It so"]
    assert server.injected == {"length": 1, "empty": 1}


def test_request_roles() -> None:
    def body(messages: list[Any]) -> dict[str, Any]:
        return {"messages": [{"role": m.role, "content": m.text} for m in messages]}

    assert [request_role(body(m)) for m in (THERAPIST, CLIENT, RATING)] == ["therapist", "client", "rating"]


def test_bad_schedules_are_named_errors(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps([{"kind": "empty", "role": "client", "calls": [3]}, {"kind": "http_500"}]))
    assert load_schedule(good) == [Fault("empty", role="client", calls=[3]), Fault("http_500")]
    for entries, message in [
        ([{"kind": "emtpy"}], "fault 0: unknown fault kind 'emtpy'"),
        ([{"kind": "empty"}, {"kind": "empty", "role": "patient"}], "fault 1: unknown role 'patient'"),
        ([{"kind": "empty", "when": "n > 2"}], "fault 0: an object of Fault fields without 'when'"),
        ({"kind": "empty"}, "a JSON list of faults"),
    ]:
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps(entries))
        with pytest.raises(ValueError, match=message) as info:
            load_schedule(bad)
        assert str(bad) in str(info.value)


def test_derived_ratings_are_functions_of_the_prompt() -> None:
    def rating(server: FakeOpenAIServer, seed: int, text: str) -> int:
        return server.rating_for({"seed": seed, "messages": [{"role": "user", "content": text}]})

    derived = FakeOpenAIServer(derive_ratings=True)
    values = {rating(derived, seed, text) for seed in (1, 2, 3) for text in ("a", "b", "c")}
    assert len(values) > 3 and all(20 <= v <= 90 for v in values)
    assert rating(derived, 1, "a") == rating(FakeOpenAIServer(derive_ratings=True), 1, "a")
    reseeded = FakeOpenAIServer(derive_ratings=True, seed=7)
    assert [rating(derived, n, "a") for n in range(5)] != [rating(reseeded, n, "a") for n in range(5)]
    with FakeOpenAIServer() as fixed:  # the default is unchanged: one fixed rating
        outputs = generate(fixed, RATING, RATING)
    assert [o.completion for o in outputs] == ['{"rating": 64}'] * 2
    with FakeOpenAIServer(derive_ratings=True) as server:
        [output] = generate(server, RATING)
    assert json.loads(output.completion)["rating"] == server.rating_for(server.requests[0])


def test_subprocess_server_with_schedule_file(tmp_path: Path) -> None:
    schedule = tmp_path / "faults.json"
    schedule.write_text(json.dumps([{"kind": "empty", "role": "therapist", "calls": [1]}]))
    process = subprocess.Popen(
        [sys.executable, "-m", "psysim.testing.fault_server", "--schedule", str(schedule), "--latency", "0", "--max-seconds", "60"],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )
    try:
        ready = process.stdout.readline().split()
        assert ready[0] == "READY"
        server = type("Endpoint", (), {"base_url": ready[1]})()
        outputs = generate(server, THERAPIST, THERAPIST)
        assert [o.completion[:5] for o in outputs] == ["", "It so"]
        with urllib.request.urlopen(ready[1] + "/stats", timeout=10) as response:
            stats = json.load(response)
        assert stats["injected"] == {"empty": 1} and stats["calls_by_role"] == {"therapist": 2}
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_finish_reasons_and_error_pages_as_the_provider_returns_them() -> None:
    """Issue 22: vLLM's ``abort`` and any reason Inspect does not know (or none) become ``unknown``;
    error pages arrive as ordinary completions with ``stop``."""
    schedule = [
        Fault("finish", role="client", calls=[1]),
        Fault("finish", role="client", calls=[2], finish_reason="content_filter"),
        Fault("finish", role="client", calls=[3], finish_reason=None, text="I think I"),
        Fault("finish", role="client", calls=[4], finish_reason="something_new"),
        Fault("error_page", role="therapist", calls=[1]),
        Fault("error_page", role="therapist", calls=[2], shape="html"),
        Fault("error_page", role="therapist", calls=[3], shape="json"),
    ]
    with FaultServer(schedule, max_seconds=60) as server:
        outputs = generate(server, CLIENT, CLIENT, CLIENT, CLIENT, THERAPIST, THERAPIST, THERAPIST)
    assert [(o.completion, o.stop_reason) for o in outputs[:4]] == [
        ("Rating: 7", "unknown"), ("Rating: 7", "content_filter"), ("I think I", "unknown"), ("Rating: 7", "unknown")]
    assert [o.completion for o in outputs[4:]] == [ERROR_PAGES["bare"], ERROR_PAGES["html"], ERROR_PAGES["json"]]
    assert all(o.stop_reason == "stop" for o in outputs[4:])
    assert server.injected == {"finish": 4, "error_page": 3}
    with pytest.raises(ValueError, match="unknown shape 'xml' for error_page"):
        Fault("error_page", shape="xml")
