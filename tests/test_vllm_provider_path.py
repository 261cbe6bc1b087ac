"""The documented `inspect eval ... --model vllm/...` command with VLLM_BASE_URL set, through Inspect's real vllm/
provider, against a local fake server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from inspect_ai.log import list_eval_logs, read_eval_log

from psysim.calls.generation import SESSION_SEED_STEP
from psysim.testing.fake_server import FakeOpenAIServer, role_of

REPO = Path(__file__).resolve().parents[1]


def run_cli(tmp_path: Path, args: list[str]) -> tuple[object, list[dict]]:
    """``inspect eval ARGS`` in a subprocess against the fake server; the log and the requests."""
    log_dir = tmp_path / "logs"
    with FakeOpenAIServer() as server:
        env = os.environ | {"VLLM_BASE_URL": server.base_url, "VLLM_API_KEY": "local", "INSPECT_LOG_DIR": str(log_dir)}
        result = subprocess.run(
            [sys.executable, "-m", "inspect_ai", "eval", *args, "--display", "plain"],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        requests = list(server.requests)
    [info] = list_eval_logs(str(log_dir))
    log = read_eval_log(info)
    assert log.status == "success"
    return log, requests


def test_cli_run_through_vllm_provider(tmp_path: Path) -> None:
    log, requests = run_cli(
        tmp_path, ["tasks/iterative_feedback.py", "--model", "vllm/fake-llama", "-T", "sessions=2", "-T", "turns=2", "--limit", "1"]
    )
    value = log.samples[0].scores["client_satisfaction"].value
    assert value == {"session_1": 64.0, "session_2": 64.0, "final": 64.0, "gain": 34.0}

    # what the provider actually sent: per-role temperature and seed; a JSON schema for ratings
    by_role: dict[str, list[dict]] = {}
    for body in requests:
        by_role.setdefault(role_of(body["messages"]), []).append(body)
    assert sorted(by_role) == ["client", "expert", "therapist"]
    assert len(by_role["therapist"]) == 4 and len(by_role["expert"]) == 1
    # seed 0 + epoch 1; session 2's calls add SESSION_SEED_STEP (the Expert speaks only after session 1)
    assert all(b["temperature"] == 0.1 for bodies in by_role.values() for b in bodies)
    assert {b["seed"] for b in by_role["therapist"]} == {b["seed"] for b in by_role["client"]} == {1, 1 + SESSION_SEED_STEP}
    assert {b["seed"] for b in by_role["expert"]} == {1}
    ratings = [b for b in by_role["client"] if b.get("response_format")]
    assert len(ratings) == 2
    assert ratings[0]["response_format"]["type"] == "json_schema"
    schema = ratings[0]["response_format"]["json_schema"]["schema"]
    # Inspect's OpenAI-compatible providers drop minimum/maximum from schemas; the 0-100
    # range is enforced by our parser (out-of-range -> missing), the integer type by the server
    assert schema["properties"]["rating"]["type"] == "integer" and schema["required"] == ["rating"]
    # every request ends with a user message (vLLM would otherwise continue the last assistant turn)
    assert all(b["messages"][-1]["role"] == "user" for b in requests)
    # the expert's feedback reached the therapist in session 2
    assert any("FAKE-EXPERT" in b["messages"][0]["content"] for b in by_role["therapist"])


def test_paper_run_config(tmp_path: Path) -> None:
    log, requests = run_cli(tmp_path, ["--run-config", "configs/paper.yaml", "-T", "sessions=1", "-T", "turns=1", "--limit", "1"])
    assert log.eval.config.epochs == 5 and log.eval.config.epochs_reducer == []
    assert log.eval.task_args["condition"] == "expert" and log.eval.task_args["baseline"] == 30
    roles = log.eval.model_roles
    assert sorted(roles) == ["client", "expert", "therapist"]
    assert all(r.model == "vllm/meta-llama/Llama-3.1-70B-Instruct" for r in roles.values())
    # bounded calls: attempt_timeout per role (roles do not inherit it), the rest from generate_config
    assert all(r.config.attempt_timeout == 600 and r.args == {"host": "127.0.0.1"} for r in roles.values())
    assert (log.plan.config.max_retries, log.plan.config.timeout) == (5, 1800)
    # five runs, each scored separately, with distinct seeds
    assert len(log.samples) == 5
    assert log.results.scores[0].scored_samples == 5
    assert {b["seed"] for b in requests} == {1, 2, 3, 4, 5}
    assert {b["model"] for b in requests} == {"meta-llama/Llama-3.1-70B-Instruct"}


def test_human_comparison_cli_on_demo_set(tmp_path: Path) -> None:
    log, requests = run_cli(tmp_path, ["tasks/human_comparison.py", "--model", "vllm/fake-llama", "-T", "snippets=2"])
    assert log.status == "success" and len(log.samples) == 2
    assert log.samples[0].scores["client_rating"].value == {"human": 64.0, "llm": 64.0, "revised": 64.0}
    roles = sorted(role_of(b["messages"]) for b in requests)
    assert roles.count("client") == 6 and roles.count("expert") == 2 and roles.count("therapist") == 4
    assert all(b["temperature"] == 0.1 for b in requests)
