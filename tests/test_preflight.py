"""psysim-paper's preflight (each failure a plain message, before any call or log) and its size table."""

from __future__ import annotations

import importlib.util
import socket
from pathlib import Path
from typing import Any

import pytest
from inspect_ai import eval

from psysim.inputs.personas import load_personas
from psysim.prompts import DEFAULT_GENERIC_FEEDBACK, DEFAULT_GUIDELINES
from psysim.study import preflight
from psysim.study.paper import main as paper_main
from psysim.study.preflight import PreflightError, plain, run_preflight
from psysim.study.size import CONDITIONS, ReplyLengths, course_cost, exp1_size
from psysim.tasks.iterative_feedback import iterative_feedback
from psysim.testing.fake_server import FakeOpenAIServer

MODEL = "vllm/meta-llama/Llama-3.1-70B-Instruct"


def run_paper_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str, str]:
    code = paper_main(["--limit", "1", "--epochs", "1", "--sessions", "1", "--turns", "1",
                       "--log-dir", str(tmp_path / "logs"), *extra])
    out, err = capsys.readouterr()
    return code, out, err


def assert_failed_before_any_call(code: int, err: str, tmp_path: Path, *expected: str) -> None:
    assert code == 2
    for text in expected:
        assert text in err, err
    assert "[bold]" not in err and "[/" not in err  # no raw console markup
    assert "run again to resume" not in err
    assert not (tmp_path / "logs").exists()  # nothing was run


@pytest.fixture
def no_vllm(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(preflight.importlib.util, "find_spec", lambda name, *a: None if name == "vllm" else real(name, *a))


@pytest.fixture
def vllm_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(preflight.importlib.util, "find_spec",
                        lambda name, *a: object() if name == "vllm" else real(name, *a))


@pytest.fixture
def empty_hf_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_TOKEN_PATH"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path / "hf"


def test_no_vllm_without_a_server_is_a_plain_error(no_vllm: None, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_paper_cli(tmp_path, capsys)
    assert_failed_before_any_call(code, err, tmp_path, "preflight failed", "vllm package is not installed",
                                  "pip install vllm", "VLLM_BASE_URL")


def test_no_endpoint_is_a_plain_error(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("VLLM_BASE_URL", f"http://127.0.0.1:{port}/v1")
    monkeypatch.setenv("VLLM_API_KEY", "local")
    # each test its own model name: Inspect keeps one vLLM server per base model in the process
    code, _, err = run_paper_cli(tmp_path, capsys, "--attempt-timeout", "10", "--model", "vllm/dead-endpoint")
    assert_failed_before_any_call(code, err, tmp_path, "the probe call to the endpoint failed")


class NoFinishReasonServer(FakeOpenAIServer):
    """A server whose completions carry no ``finish_reason`` at all."""

    def answer(self, handler: Any, body: dict[str, Any], index: int) -> None:
        text = self.reply_text(body)
        handler.send_json(200, {"id": f"c{index}", "object": "chat.completion", "created": 0, "model": body["model"],
                                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}],
                                "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}})


def test_a_reply_without_finish_reason_fails_the_probe(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    with NoFinishReasonServer() as server:
        monkeypatch.setenv("VLLM_BASE_URL", server.base_url)
        monkeypatch.setenv("VLLM_API_KEY", "local")
        code, _, err = run_paper_cli(tmp_path, capsys, "--model", "vllm/no-finish-reason")
        assert server.stats()["requests"] == 1  # one probe call, nothing else
    assert_failed_before_any_call(code, err, tmp_path, "carries no finish_reason")


def test_a_server_with_finish_reason_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeOpenAIServer() as server:
        monkeypatch.setenv("VLLM_BASE_URL", server.base_url)
        monkeypatch.setenv("VLLM_API_KEY", "local")
        lines = run_preflight("vllm/with-finish-reason", timeout=30)
    assert lines[-1] == "probe call answered (finish reason stop)"


def test_gated_model_without_credentials(vllm_installed: None, empty_hf_home: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    code, _, err = run_paper_cli(tmp_path, capsys)
    assert_failed_before_any_call(code, err, tmp_path, "gated model", "HF_TOKEN")
    # with a token, or with the weights already in the cache, the static checks pass
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    assert any("credentials found" in line for line in preflight.check_static(MODEL))
    monkeypatch.delenv("HF_TOKEN")
    snapshot = empty_hf_home / "hub" / "models--meta-llama--Llama-3.1-70B-Instruct" / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    assert preflight.check_static(MODEL)[-1] == "provider vllm/ loads"
    # an open model needs no token
    assert preflight.check_static("vllm/Qwen/Qwen2.5-7B-Instruct")


def test_unknown_provider_and_markup() -> None:
    with pytest.raises(PreflightError, match="could not be loaded"):
        preflight.check_static("nosuchprovider/model")
    assert plain("[bold]ERROR[/bold]: install with [bold]pip install vllm[/bold]") == "ERROR: install with pip install vllm"
    assert plain("pip install 'psysim[vllm]'") == "pip install 'psysim[vllm]'"


def test_dry_run_prints_the_projection_without_a_call(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("psysim.study.paper.run_preflight", lambda *a, **k: pytest.fail("dry run called the preflight"))
    code = paper_main(["--dry-run", "--log-dir", str(tmp_path / "logs"), "--gpus", "8"])
    out = capsys.readouterr().out
    assert code == 0 and not (tmp_path / "logs").exists()
    assert "this run: Experiment 1, 15 personas x 3 conditions x 5 runs" in out  # the default persona set
    assert "the paper's study: Experiment 1, 4 personas" in out and " 3,340 " in out
    assert "CACTUS-size: 450 personas" in out and " 375,750 " in out
    assert "GPU-hours" in out and "wall bound: chain" in out and "8 GPUs" in out


def test_size_counts_the_calls_a_run_makes() -> None:
    """Known good: the estimate's calls equal a demo run's; and the design's numbers (3,340 at the paper's size)."""
    personas = load_personas(None)
    paper = exp1_size("paper", personas[:4], 4, 5, 6, 4)
    assert paper.calls == 3340 and paper.samples == 60 and paper.chain_calls == 54
    logs = eval([iterative_feedback(condition=c, sessions=3, turns=2) for c in CONDITIONS], model="psysim/demo",
                limit=1, display="none", log_dir=None)
    for log, condition in zip(logs, CONDITIONS):
        made = sum(1 for s in log.samples for e in s.events if e.event == "model")
        cost = course_cost(personas[0], condition, 3, 2, ReplyLengths())
        assert cost.calls == made, condition
        assert cost.chain_calls == 3 * (2 * 2 + 1)
        # the demo counts tokens as the estimate does (4 characters a token): with its own reply
        # length, the estimate lands near what the run used
        used = log.stats.model_usage["psysim/demo"].input_tokens
        texts = {"guidelines": DEFAULT_GUIDELINES.read_text(), "generic_feedback": DEFAULT_GENERIC_FEEDBACK.read_text()}
        estimate = course_cost(personas[0], condition, 3, 2, ReplyLengths(turn=45, feedback=60, rating=6),
                               **texts).prompt_tokens
        assert 0.75 < estimate / used < 1.33, (condition, estimate, used)
