"""psysim-paper: the three conditions in one eval_set, through the vllm/ provider."""

from __future__ import annotations

from pathlib import Path

import pytest
from inspect_ai.log import read_eval_log

from psysim.fake_server import FakeOpenAIServer
from psysim.paper import concurrency, paper_tasks, run_paper


def test_three_conditions_in_one_eval_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeOpenAIServer() as server:
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
    assert settings == {"max_tasks": 3, "max_samples": 20, "max_connections": 60}
    assert concurrency(tasks, epochs=5, limit=4, max_connections=8)["max_connections"] == 8
