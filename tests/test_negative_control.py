"""Negative control in Experiment 1: a deliberately poor therapist (``-T therapist=poor``).

The poor style's prompt reaches the therapist under every condition (and still carries the
feedback); the report keeps the styles in separate settings, compares them with the
conditions' tests, and flags a rater that does not rate the poor therapist lower.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import pandas as pd
import pytest
from inspect_ai import eval

from psysim.analysis import read_frames
from psysim.analysis.report import write_report
from psysim.analysis.section import ReportOptions
from psysim.solvers.feedback_policy import CONDITIONS
from psysim.study.paper import main as paper_main
from psysim.study.paper import paper_tasks
from psysim.tasks.iterative_feedback import iterative_feedback

from mock_roles import RATING_MARKER, Call, Recorder, main_model, mock_role, session_of

POOR_MARK = "deliberately poor therapist"
PERSONAS, EPOCHS = 3, 3


def therapist(call: Call) -> str:
    style = "POOR" if POOR_MARK in call.system else "GOOD"
    return f"{style}-THERAPIST turn in session {session_of(call)}."


def client(poor_penalty: int):
    def reply(call: Call) -> str:
        if RATING_MARKER not in call.text:
            return "I have been struggling lately."
        first_user = next(m.text for m in call.messages if m.role == "user")
        persona = zlib.crc32(call.system.encode()) % 5
        poor = poor_penalty if "POOR-THERAPIST" in first_user else 0
        return f'{{"rating": {50 + 3 * session_of(call) + persona + call.config.seed % 4 - poor}}}'

    return reply


def run(log_dir: Path, recorder: Recorder, poor_penalty: int, conditions=("expert", "none"), styles=("standard", "poor")):
    tasks = [iterative_feedback(condition=c, sessions=2, turns=1, **({} if s == "standard" else {"therapist": s}))
             for s in styles for c in conditions]
    roles = {"therapist": mock_role("therapist", recorder, therapist),
             "client": mock_role("client", recorder, client(poor_penalty)),
             "expert": mock_role("expert", recorder, lambda c: f"EXPERT-FEEDBACK-{session_of(c)}: listen first.")}
    logs = eval(tasks, model=main_model(recorder), model_roles=roles, log_dir=str(log_dir), display="none",
                limit=PERSONAS, epochs=EPOCHS, max_tasks=4)
    assert all(log.status == "success" for log in logs)


@pytest.mark.parametrize("condition", CONDITIONS)
def test_poor_prompt_is_used_under_every_condition(tmp_path: Path, condition: str) -> None:
    recorder = Recorder()
    task = iterative_feedback(condition=condition, therapist="poor", sessions=2, turns=1)
    roles = {"therapist": mock_role("therapist", recorder, therapist),
             "client": mock_role("client", recorder, client(20)),
             "expert": mock_role("expert", recorder, lambda c: "EXPERT-FEEDBACK: listen first.")}
    [log] = eval(task, model=main_model(recorder), model_roles=roles, log_dir=str(tmp_path), display="none", limit=1)
    assert log.status == "success" and log.eval.task_args["therapist"] == "poor"
    calls = recorder.of("therapist")
    assert calls and all(POOR_MARK in c.system for c in calls)
    session_2 = [c for c in calls if "This is session 2" in c.system]
    feedback = {"expert": "EXPERT-FEEDBACK", "generic": "Pay closer attention", "none": None}[condition]
    if feedback:  # the poor therapist reads the feedback like any other, and stays poor
        assert session_2 and all(feedback in c.system and "you keep your own style" in c.system for c in session_2)
    else:
        assert all("supervisor" not in c.system for c in calls)


def test_standard_is_the_default_and_unknown_style_is_rejected() -> None:
    recorder = Recorder()
    assert iterative_feedback().metadata["therapist"] == "standard"
    with pytest.raises(ValueError, match="therapist must be one of standard, poor"):
        iterative_feedback(therapist="bad")
    del recorder


def test_paper_runs_the_poor_style_only_when_asked() -> None:
    default = paper_tasks()
    assert len(default) == 3 and all(t.metadata["therapist"] == "standard" for t in default)
    both = paper_tasks(therapist_styles=("standard", "poor"))
    assert sorted((t.metadata["therapist"], t.metadata["condition"]) for t in both) == sorted(
        (s, c) for s in ("standard", "poor") for c in CONDITIONS)
    with pytest.raises(SystemExit):
        paper_main(["--therapist-styles", "awful"])


@pytest.fixture(scope="module")
def lower(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("poor-lower")
    run(directory, Recorder(), poor_penalty=25)
    return directory


@pytest.fixture(scope="module")
def equal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("poor-equal")
    run(directory, Recorder(), poor_penalty=0)
    return directory


def report(log_dir: Path, out: Path) -> tuple[str, pd.DataFrame, pd.DataFrame]:
    write_report(log_dir, out, ReportOptions(bootstrap=60))
    return ((out / "summary.md").read_text(), pd.read_csv(out / "exp1_negative_control.csv"),
            pd.read_csv(out / "statistics.csv"))


def test_check_log_names_the_poor_style(lower: Path) -> None:
    from inspect_ai.log import list_eval_logs, read_eval_log

    from psysim.study.log_status import describe

    lines = [describe(read_eval_log(info.name, header_only=True)) for info in list_eval_logs(str(lower))]
    assert sum("(expert, therapist=poor)" in line for line in lines) == 1
    assert sum("(expert)" in line for line in lines) == 1


def test_styles_are_never_pooled_into_one_setting(lower: Path) -> None:
    exp1 = read_frames(lower).exp1
    settings = exp1.groupby("setting")["therapist"].unique()
    assert len(settings) == 2 and all(len(styles) == 1 for styles in settings)
    assert settings.index.tolist() == ["mockllm/model", "mockllm/model [therapist=poor]"]
    assert set(exp1["base_setting"]) == {"mockllm/model"}


def test_a_poor_only_directory_still_names_the_style(lower: Path, tmp_path: Path) -> None:
    poor_only = tmp_path / "poor"
    poor_only.mkdir()
    for frame_log in read_frames(lower).selection.used:
        if frame_log.key.arg("therapist") == '"poor"':
            source = Path(frame_log.path.removeprefix("file:"))
            (poor_only / source.name).write_bytes(source.read_bytes())
    assert set(read_frames(poor_only).exp1["setting"]) == {"mockllm/model [therapist=poor]"}


def test_rater_that_rates_the_poor_therapist_lower_is_not_flagged(lower: Path, tmp_path: Path) -> None:
    summary, checks, statistics = report(lower, tmp_path / "r")
    assert len(checks) == 2 and set(checks["condition"]) == {"expert", "none"}
    assert not checks["flagged"].any()
    assert (checks["difference"] > 20).all() and (checks["ci_low"] > 0).all()
    assert "Negative control [mockllm/model, condition expert]: rated lower" in summary
    style = statistics[statistics["setting"].str.contains("therapist: standard vs poor")]
    # the same tests as for the conditions, for both measures
    assert {"mixed model (two-stage REML, Satterthwaite df)", "Welch t-test", "paired t-test"} <= set(style["test"])
    assert set(style["a"]) == {"standard"} and set(style["b"]) == {"poor"}
    assert {"change per session (points per session)", "final-session rating (points)"} <= set(style["measure"])


def test_rater_that_rates_both_alike_is_flagged(equal: Path, tmp_path: Path) -> None:
    summary, checks, _ = report(equal, tmp_path / "r")
    assert checks["flagged"].all()
    assert "FLAG: the rater does not rate poor lower than standard" in summary
