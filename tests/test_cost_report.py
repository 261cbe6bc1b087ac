"""The report's cost section (issue 15, part 5): model calls and tokens per role, condition,
persona-run and run, from mock runs whose every call reports 10 prompt and 5 completion tokens."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from inspect_ai import Epochs, eval
from inspect_ai.log import list_eval_logs
from inspect_ai.model import ModelUsage

from psysim.analysis.frames import COST, UNBOUND_ROLE, read_frames
from psysim.analysis.report import write_report
from psysim.analysis.section import ReportOptions
from psysim.tasks.human_comparison import human_comparison
from psysim.tasks.iterative_feedback import iterative_feedback
from psysim.tasks.rater_validity import rater_validity

from log_edits import copy_log
from mock_roles import Recorder, critique_form, main_model, mock_role, roles
from rating_logs import exp2_client, exp2_therapist

SESSIONS, TURNS, PERSONAS, EPOCHS = 2, 1, 2, 2


def run(log_dir: Path, condition: str) -> Recorder:
    recorder = Recorder()
    [log] = eval(iterative_feedback(condition=condition, sessions=SESSIONS, turns=TURNS), model=main_model(recorder),
                 model_roles=roles(recorder), limit=PERSONAS, epochs=Epochs(EPOCHS, []), log_dir=str(log_dir),
                 display="none")
    assert log.status == "success", log.error
    return recorder


def test_calls_and_tokens_per_role_condition_and_run(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    calls = {condition: run(logs, condition) for condition in ("expert", "none")}
    report = write_report(logs, tmp_path / "report", ReportOptions(bootstrap=20))
    assert any(f.name == "cost_by_role.csv" for f in report.files)
    totals = pd.read_csv(tmp_path / "report" / "cost_totals.csv").set_index("condition")
    units = PERSONAS * EPOCHS
    for condition, recorder in calls.items():
        assert totals.loc[condition, "model calls"] == len(recorder.calls)  # every call counted once
        assert totals.loc[condition, "units"] == units and totals.loc[condition, "runs"] == EPOCHS
        assert totals.loc[condition, "prompt tokens"] == 10 * len(recorder.calls)
    # per persona-run: 2 x 1 exchanges x 2 sessions + 2 ratings (+ 1 feedback under expert)
    assert totals.loc["expert", "calls / unit"] == 2 * TURNS * SESSIONS + SESSIONS + SESSIONS - 1
    assert totals.loc["none", "calls / unit"] == 2 * TURNS * SESSIONS + SESSIONS
    roles_ = pd.read_csv(tmp_path / "report" / "cost_by_role.csv").set_index(["condition", "role"])
    assert roles_.loc[("expert", "expert"), "completion tokens"] == 5 * len(calls["expert"].of("expert"))
    assert roles_.loc[("expert", "client"), "prompt / unit"] == 10 * (TURNS * SESSIONS + SESSIONS)
    assert ("none", "expert") not in roles_.index  # the Expert is not called without feedback
    per_run = pd.read_csv(tmp_path / "report" / "cost_by_run.csv")
    assert len(per_run) == 2 * EPOCHS and per_run["calls"].sum() == sum(len(r.calls) for r in calls.values())
    summary = (tmp_path / "report" / "summary.md").read_text()
    assert "## Cost: model calls and tokens" in summary and f"{sum(len(r.calls) for r in calls.values())} model calls" in summary


def test_prompt_tokens_include_prefix_cache_reads(tmp_path: Path) -> None:
    """A server that serves part of a prompt from its prefix cache reports it apart: still counted."""
    run(tmp_path / "plain", "none")
    [info] = list_eval_logs(str(tmp_path / "plain"))

    def cached(sample) -> None:  # noqa: ANN001 - EvalSample
        sample.role_usage["client"] = ModelUsage(input_tokens=4, input_tokens_cache_read=6, output_tokens=5,
                                                 total_tokens=15)

    copy_log(info.name, tmp_path / "cached" / "log.eval", edit_sample=cached)
    plain = read_frames(tmp_path / "plain").ratings[COST]
    edited = read_frames(tmp_path / "cached").ratings[COST]
    client = lambda frame: frame[frame["role"] == "client"]["prompt_tokens"].tolist()  # noqa: E731
    assert client(edited) == [10] * PERSONAS * EPOCHS  # 4 + 6 from the cache
    assert client(plain) != client(edited)  # the edit is visible: the plain log has every call's 10 each


def test_scorer_calls_are_counted(tmp_path: Path) -> None:
    """Experiment 2 rates in its scorer, where Inspect's turn_count does not look: those calls count too."""
    recorder = Recorder()
    model_roles = {"therapist": mock_role("therapist", recorder, exp2_therapist),
                   "expert": mock_role("expert", recorder, lambda c: critique_form("reflect first.")),
                   "client": mock_role("client", recorder, exp2_client)}
    [log] = eval(human_comparison(snippets=3), model=main_model(recorder), model_roles=model_roles,
                 log_dir=str(tmp_path / "logs"), display="none")
    assert log.status == "success", log.error
    assert len(recorder.of("client")) == 3 * 3  # three candidates rated per snippet, in the scorer
    cost = read_frames(tmp_path / "logs").ratings[COST]
    assert cost["calls"].sum() == len(recorder.calls)
    client = cost[cost["role"] == "client"]
    assert client["prompt_tokens"].sum() == 10 * len(recorder.of("client"))


def test_unbound_roles_are_not_counted_as_zero(tmp_path: Path) -> None:
    """A run with only --model (roles unbound, falling back to it): Inspect keeps no per-role usage,
    so its tokens appear under the unbound-roles row, not as a run that cost nothing."""
    recorder = Recorder()
    [log] = eval(rater_validity(per_group=2), model=mock_role("main", recorder, exp2_client),
                 log_dir=str(tmp_path / "logs"), display="none")
    assert log.status == "success", log.error
    calls = len(recorder.calls)
    assert calls == 4  # one rating of each of 2 + 2 snippets
    cost = read_frames(tmp_path / "logs").ratings[COST]
    assert set(cost["role"]) == {UNBOUND_ROLE}
    assert cost["calls"].sum() == calls
    assert (cost["prompt_tokens"].sum(), cost["completion_tokens"].sum()) == (10 * calls, 5 * calls)
