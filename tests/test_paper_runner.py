"""psysim-paper: the three conditions in one eval_set, through the vllm/ provider."""

from __future__ import annotations

import json
import os
import sys
import types
from pathlib import Path

import pytest
import yaml
from inspect_ai.log import list_eval_logs, read_eval_log
from inspect_ai.model import get_model

from psysim.study.paper import (
    DEFAULT_MAX_RETRIES,
    bind_vllm_host,
    concurrency,
    main,
    paper_tasks,
    run_paper,
)
from psysim.testing.fake_server import FakeOpenAIServer
from psysim.testing.fault_server import Fault, FaultServer

REPO = Path(__file__).resolve().parents[1]


def test_three_conditions_in_one_eval_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeOpenAIServer(latency=0.05) as server:  # calls that last, so concurrent ones overlap
        monkeypatch.setenv("VLLM_BASE_URL", server.base_url)
        monkeypatch.setenv("VLLM_API_KEY", "local")
        tasks = paper_tasks(sessions=2, turns=1)
        success, logs = run_paper("vllm/fake", str(tmp_path / "logs"), epochs=2, limit=2, tasks=tasks, display="none")
        assert success
        assert sorted(log.eval.task_args["condition"] for log in logs) == ["expert", "generic", "none"]
        for header in logs:
            log = read_eval_log(header.location)  # eval_set returns headers only
            assert log.status == "success" and len(log.samples) == 4  # 2 personas x 2 runs
            assert log.eval.config.epochs_reducer == []  # per-run scores kept
            assert sorted(log.eval.model_roles) == ["client", "expert", "therapist"]
            assert log.eval.config.max_samples == 4 and log.eval.config.max_tasks == 3
        assert server.peak_in_flight >= 2
        # resumable: a second call finds the work done and reuses it
        success, again = run_paper("vllm/fake", str(tmp_path / "logs"), epochs=2, limit=2, tasks=paper_tasks(sessions=2, turns=1), display="none")
        assert success and {Path(log.location.removeprefix("file://")).name for log in again} == {
            Path(log.location.removeprefix("file://")).name for log in logs
        }


def test_concurrency_covers_every_chain() -> None:
    tasks = paper_tasks(sessions=1, turns=1)
    settings = concurrency(tasks, epochs=5, limit=4, max_connections=None)
    # 20 chains per condition; after a session each has its rating and its feedback in flight
    assert settings == {"max_tasks": 3, "max_samples": 20, "max_connections": 120}
    assert concurrency(tasks, epochs=5, limit=4, max_connections=8)["max_connections"] == 8


SMALL = ["--epochs", "1", "--limit", "1", "--sessions", "1", "--turns", "1", "--no-realtime"]


def test_a_call_that_always_fails_ends_the_run_with_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Bounded retries: an always-500 role ends psysim-paper non-zero instead of retrying forever."""
    with FaultServer([Fault("http_500", role="client")], max_seconds=240) as server:
        monkeypatch.setenv("VLLM_BASE_URL", server.base_url)
        monkeypatch.setenv("VLLM_API_KEY", "local")
        code = main(["--model", "vllm/fake-always-500", "--log-dir", str(tmp_path / "logs"), *SMALL,
                     "--max-retries", "1", "--timeout", "60", "--attempt-timeout", "30", "--retry-attempts", "0"])
    assert code == 1
    logs = [read_eval_log(info) for info in list_eval_logs(str(tmp_path / "logs"))]
    assert len(logs) == 3 and all(log.status == "error" for log in logs)
    assert all("InternalServerError" in log.error.message for log in logs)
    # 3 conditions x 1 sample: the client's first call, 2 Inspect attempts of 3 HTTP requests each
    assert server.injected == {"http_500": 3 * 2 * 3}


def test_attempt_timeout_reaches_every_role(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stalled client call is abandoned after --attempt-timeout and retried (role models do not
    inherit attempt_timeout from the eval: psysim-paper binds it to each role)."""
    with FaultServer([Fault("stall", role="client", calls=[1], seconds=3600)], max_seconds=240) as server:
        monkeypatch.setenv("VLLM_BASE_URL", server.base_url)
        monkeypatch.setenv("VLLM_API_KEY", "local")
        code = main(["--model", "vllm/fake-stall", "--log-dir", str(tmp_path / "logs"), *SMALL,
                     "--attempt-timeout", "3", "--retry-attempts", "0"])
    assert code == 0 and server.injected == {"stall": 1}
    for info in list_eval_logs(str(tmp_path / "logs")):
        log = read_eval_log(info, header_only=True)
        assert log.status == "success"
        assert all(role.config.attempt_timeout == 3 and role.config.max_retries == DEFAULT_MAX_RETRIES
                   for role in log.eval.model_roles.values())


@pytest.mark.parametrize("argv", [["--sesions", "3"], ["-T", "sessions=3"], ["--max-retries", "-1"],
                                  ["--attempt-timeout", "0"], ["--epochs", "0"]])
def test_unknown_or_invalid_options_are_rejected(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_managed_vllm_server_binds_loopback_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    assert bind_vllm_host(None) == "127.0.0.1"
    assert json.loads(os.environ["VLLM_DEFAULT_SERVER_ARGS"]) == {"host": "127.0.0.1"}
    # merged with the user's server args; a host the user set is kept unless overridden
    monkeypatch.setenv("VLLM_DEFAULT_SERVER_ARGS", '{"tensor_parallel_size": 4, "host": "10.0.0.5"}')
    assert bind_vllm_host(None) == "10.0.0.5"
    assert bind_vllm_host("0.0.0.0") == "0.0.0.0"
    assert json.loads(os.environ["VLLM_DEFAULT_SERVER_ARGS"]) == {"tensor_parallel_size": 4, "host": "0.0.0.0"}
    for bad in ("{tensor_parallel_size: 4}", "[4]"):
        monkeypatch.setenv("VLLM_DEFAULT_SERVER_ARGS", bad)
        with pytest.raises(ValueError, match="VLLM_DEFAULT_SERVER_ARGS"):
            bind_vllm_host(None)


def vllm_serve_command(monkeypatch: pytest.MonkeyPatch, model: str, **model_args: object) -> list[str]:
    """The ``vllm serve`` command Inspect's vllm provider would run (vLLM need not be installed)."""
    from inspect_ai.model._providers import vllm as provider

    captured: dict[str, list[str]] = {}

    def start_local_server(cmd: list[str], **kwargs: object) -> tuple[str, None, int]:
        args = [f"--{k.replace('_', '-')}={v}" for k, v in dict(kwargs["server_args"]).items()]
        captured["cmd"] = [*cmd, *args]
        return "http://127.0.0.1:1/v1", None, 1

    monkeypatch.setitem(sys.modules, "vllm", types.ModuleType("vllm"))
    monkeypatch.setattr(provider, "start_local_server", start_local_server)
    api = get_model(model, memoize=False, **model_args).api
    api._start_server(api.base_model)
    return captured["cmd"]


def test_vllm_serve_gets_the_loopback_host(monkeypatch: pytest.MonkeyPatch) -> None:
    command = vllm_serve_command(monkeypatch, "vllm/org/unbound-model")
    assert command[command.index("--host") + 1] == "0.0.0.0"  # Inspect's default: why we bind it
    monkeypatch.setenv("VLLM_DEFAULT_SERVER_ARGS", '{"tensor_parallel_size": 4}')
    bind_vllm_host(None)
    command = vllm_serve_command(monkeypatch, "vllm/org/bound-model")
    assert command[command.index("--host") + 1] == "127.0.0.1" and "--tensor-parallel-size=4" in command


def test_paper_run_config_binds_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    config = yaml.safe_load((REPO / "configs" / "paper.yaml").read_text())
    entries = [config["model"], *config["model_roles"].values()]
    assert len(entries) == 4  # the main model and the three roles: whichever starts the server
    for entry in entries:
        command = vllm_serve_command(monkeypatch, entry["model"], **entry["args"])
        assert command[command.index("--host") + 1] == "127.0.0.1"
