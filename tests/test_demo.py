"""The model-free demo: ``psysim/demo`` through Inspect's entry point, and ``psysim-demo``'s report
recovering the effect built into it (and labelled a demo everywhere)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from inspect_ai.log import read_eval_log
from inspect_ai.model import ChatMessageSystem, ChatMessageUser, GenerateConfig

from psysim.demo.model import EXPERT_VS_NONE_SLOPE, SPECIFIC, demo_reply
from psysim.demo.run import DemoResult, main, run_demo

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoResult:
    root = tmp_path_factory.mktemp("demo")
    return run_demo(root / "logs", root / "report")  # the defaults: 4 personas x 2 runs x 3 sessions


def test_demo_report_recovers_the_built_in_effect(demo: DemoResult) -> None:
    assert demo.success
    primary = demo.primary
    assert primary is not None and primary["status"] == "ok" and (primary["a"], primary["b"]) == ("expert", "none")
    assert "per session" in primary["measure"]
    assert primary["ci_low"] <= EXPERT_VS_NONE_SLOPE <= primary["ci_high"], primary.to_dict()
    assert demo.covers_effect
    summary = (demo.report_dir / "summary.md").read_text()
    # the demo's replies pass the integrity check, so no session is excluded
    assert "Simulation integrity [iterative_feedback]: 0 of 72 sessions fail" in summary
    assert "Experiment 2 primary [psysim/demo]" in summary


def test_demo_is_labelled_a_demo_everywhere(demo: DemoResult) -> None:
    summary = (demo.report_dir / "summary.md").read_text()
    page = (demo.report_dir / "index.html").read_text()
    for text in (summary, page):
        assert "DEMO, SCRIPTED NUMBERS, NOT A RESULT" in text
    sample_log = next(demo.log_dir.glob("*iterative-feedback*.eval"))
    log = read_eval_log(str(sample_log), header_only=True)
    assert log.eval.model == "psysim/demo" and log.eval.metadata["provenance"]["files"]
    assert log.stats.model_usage["psysim/demo"].input_tokens > 0  # usage counted without a tokenizer


def test_covers_effect_tells_a_miss_from_a_hit() -> None:
    def result(low: float, high: float, status: str = "ok") -> DemoResult:
        row = pd.Series({"status": status, "ci_low": low, "ci_high": high})
        return DemoResult(True, Path("."), Path("."), 0.0, row)

    assert result(4.0, 6.0).covers_effect
    assert not result(0.5, 4.5).covers_effect  # an analysis that lost part of the effect
    assert not result(4.0, 6.0, status="not testable").covers_effect
    assert not result(float("nan"), float("nan")).covers_effect
    assert not DemoResult(True, Path("."), Path("."), 0.0, None).covers_effect


def test_therapist_follows_the_demo_experts_feedback_only() -> None:
    """The effect's path: the demo Expert's feedback in the therapist's prompt -> a specific sentence."""
    base = "You are an experienced, licensed psychotherapist. Your client's name is Ana.\nThis is session 2"
    opening = ChatMessageUser(content="[Session 2 begins. The client has just sat down. Open the session.]")
    config = GenerateConfig(seed=1)
    feedback = (" After that session your clinical supervisor gave you the following feedback. Apply it in this "
                "session:\nFeedback on session 1: Ask the client to rate their confidence in the planned step.")
    generic = (" After that session your clinical supervisor gave you the following feedback. Apply it in this "
               "session:\nPay closer attention to the client's needs.")
    with_expert = demo_reply([ChatMessageSystem(content=base + feedback), opening], config)
    with_generic = demo_reply([ChatMessageSystem(content=base + generic), opening], config)
    without = demo_reply([ChatMessageSystem(content=base), opening], config)
    assert any(s in with_expert for s in SPECIFIC)
    assert not any(s in with_generic or s in without for s in SPECIFIC)


def test_inspect_eval_with_the_demo_model_outside_the_repo(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INSPECT_")} | {
        "INSPECT_CACHE_DIR": str(tmp_path / "cache"), "PWD": str(tmp_path)}
    done = subprocess.run([str(BIN / "inspect"), "eval", "psysim/iterative_feedback", "--model", "psysim/demo",
                           "--limit", "1", "-T", "sessions=2", "-T", "turns=1", "--log-dir", str(tmp_path / "logs"),
                           "--display", "none"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    [path] = (tmp_path / "logs").glob("*.eval")
    log = read_eval_log(str(path))
    assert log.status == "success" and log.samples and not log.samples[0].error
    assert all(o.stop_reason == "stop" for e in log.samples[0].events if e.event == "model" for o in [e.output.choices[0]])


def test_demo_refuses_a_log_dir_of_another_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "logs"
    other.mkdir()
    from inspect_ai import eval

    from mock_roles import Recorder, main_model, roles
    from psysim.tasks.iterative_feedback import iterative_feedback

    recorder = Recorder()
    eval(iterative_feedback(sessions=1, turns=1), model=main_model(recorder), model_roles=roles(recorder), limit=1,
         log_dir=str(other), display="none")
    assert main(["--log-dir", str(other), "--report-dir", str(tmp_path / "r")]) == 2
    assert "holds logs of another model" in capsys.readouterr().err
    assert list(other.glob("*.eval"))  # nothing deleted
