"""Scale-out pieces (issue 15, parts 3-4): the fake replica's batch limit, nginx in front of
replicas, and ``benchmarks/scale.py`` at a tiny scale (not timed). nginx tests skip with the
reason when nginx is not installed."""

from __future__ import annotations

import json
import sys
import threading
import urllib.request
from contextlib import ExitStack
from pathlib import Path

import pytest

from psysim.study.nginx_balancer import balancer_config, nginx_balancer, nginx_path
from psysim.testing.fake_server import FakeOpenAIServer

REPO = Path(__file__).resolve().parents[1]
needs_nginx = pytest.mark.skipif(nginx_path() is None, reason="nginx not installed (Debian: apt-get install -y nginx-light)")


def chat(base_url: str, role_prompt: str = "You are a psychotherapist.") -> str:
    body = json.dumps({"model": "fake", "max_tokens": 8,
                       "messages": [{"role": "system", "content": role_prompt}, {"role": "user", "content": "hi"}]})
    request = urllib.request.Request(f"{base_url}/chat/completions", data=body.encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)["choices"][0]["message"]["content"]


def burst(base_url: str, count: int) -> None:
    threads = [threading.Thread(target=chat, args=(base_url,)) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


@pytest.mark.parametrize("cap, most", [(1, 1), (2, 2), (None, 4)])
def test_replica_serves_at_most_its_cap_at_once(cap: int | None, most: int) -> None:
    # four requests at once, each lasting 0.5 s: a cap queues the rest, no cap serves all four
    with FakeOpenAIServer(latency=0.5, max_concurrency=cap, max_requests=10, max_seconds=60) as server:
        burst(server.base_url, 4)
        stats = server.stats()
    assert stats["requests"] == 4 and stats["peak_in_flight"] == 4
    assert stats["peak_serving"] <= most and (cap is None or stats["peak_serving"] == cap)
    assert stats["prompt_tokens"] > 0 and stats["completion_tokens"] > 0


def test_balancer_config_lists_every_replica() -> None:
    config = balancer_config(["127.0.0.1:8001", "127.0.0.1:8002"], 9000)
    assert "least_conn;" in config and "listen 127.0.0.1:9000;" in config
    assert "server 127.0.0.1:8001" in config and "server 127.0.0.1:8002" in config


@needs_nginx
def test_nginx_spreads_requests_over_replicas() -> None:
    with ExitStack() as stack:
        replicas = [stack.enter_context(FakeOpenAIServer(latency=0.3, max_requests=20, max_seconds=60)) for _ in range(2)]
        balancer = stack.enter_context(nginx_balancer([r.base_url for r in replicas], max_seconds=60))
        burst(balancer, 6)
        assert chat(balancer).startswith("It sounds like")  # the replica's reply, through nginx
    served = [r.stats()["requests"] for r in replicas]
    assert sum(served) == 7 and all(n >= 1 for n in served)  # least_conn: both replicas took requests


@needs_nginx
def test_scale_benchmark_runs_at_a_tiny_scale(capsys: pytest.CaptureFixture[str]) -> None:
    sys.path.insert(0, str(REPO / "benchmarks"))
    import scale

    assert scale.main(["--shards", "2", "--replicas", "2", "--personas", "2", "--epochs", "1", "--sessions", "1",
                       "--turns", "1", "--latency", "0.01", "--per-token", "0", "--max-seconds", "600"]) == 0
    out = capsys.readouterr().out
    [row] = [line for line in out.splitlines() if line.startswith("| 2 | 2 |")][-1:]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2] == str(scale.Design(2, 1, 1, 1).calls()) == "18"  # every call of the study, once
    assert all(int(peak) >= 1 for peak in cells[-1].split(","))  # both replicas served
    assert "## Projection" in out and "| a study of 400,000 calls | 400,000 |" in out
    assert "CACTUS-size (450 personas x 3 conditions x 5 runs) | 375,750 |" in out
