"""Analysis layer on logs produced by real (mocked-model) runs with known ratings."""

from __future__ import annotations

import math
import re
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from inspect_ai import Task, eval
from inspect_ai.dataset import Sample
from inspect_ai.log import list_eval_logs, read_eval_log
from scipy import stats

from psysim.analysis import UnknownTaskError, read_frames
from psysim.analysis.cli import main as report_main
from psysim.analysis.exp1 import setting_tests as exp1_tests
from psysim.analysis.exp2 import setting_tests as exp2_tests
from psysim.analysis.mixed import MixedSettings, fit_exp1_mixed
from psysim.analysis.stats import snippet_means
from psysim.tasks.human_comparison import human_comparison
from psysim.tasks.iterative_feedback import iterative_feedback

from log_edits import copy_log
from mock_roles import (
    RATING_MARKER,
    Call,
    Recorder,
    critique_form,
    main_model,
    mock_role,
    run_seed,
    session_of,
)

PERSONAS, EPOCHS, SESSIONS = 4, 3, 3
MISSING_PERSONA = "burnout_icu_nurse"  # its session-2 rating is never readable in run 2
MISSING_NAME = "Thandiwe Nkosi"  # that persona's name, as the client's system prompt shows it


def therapist(call: Call) -> str:
    style = "EXPERT-STYLE" if "EXPERT-FEEDBACK" in call.system else "GENERIC-STYLE" if "Pay closer attention" in call.system else "PLAIN"
    return f"{style} therapist turn in session {session_of(call)}."


def exp1_client(call: Call) -> str:
    if RATING_MARKER not in call.text:
        return "I have been struggling lately."
    first_user = next(m.text for m in call.messages if m.role == "user")
    k = session_of(call)
    persona = zlib.crc32(call.system.encode()) % 7
    if MISSING_NAME in call.system and k == 2 and run_seed(call) == 2:  # every attempt of run 2
        return "I would rather not put a number on it."
    expert_turns = first_user.count("EXPERT-STYLE")
    generic_turns = first_user.count("GENERIC-STYLE")
    wobble = (persona * k + call.config.seed * k * k) % 5  # runs differ in level and slope
    return f'{{"rating": {30 + 4 * k + (2 + persona % 4) * expert_turns + generic_turns + persona + call.config.seed % 5 + wobble}}}'


def exp1_expert(call: Call) -> str:
    return f"EXPERT-FEEDBACK-{session_of(call)}: be concrete."


def exp2_client(call: Call) -> str:
    first_user = next(m.text for m in call.messages if m.role == "user")
    said = re.search(r'The therapist now says to you:\n"(.*)"', first_user, re.DOTALL).group(1)
    base = zlib.crc32(first_user.split("The therapist now says")[0].encode()) % 20
    if said.startswith("REVISED"):
        return f'{{"rating": {60 + base}}}'
    if said.startswith("LLM"):
        return f'{{"rating": {50 + base + len(said) % 3}}}' if base != 7 else "no idea"
    return f'{{"rating": {40 + base + (len(said) % 11)}}}'


def exp2_therapist(call: Call) -> str:
    return "REVISED: better." if "supervisor critiqued" in call.last_user else f"LLM: reply {len(call.messages)}."


FAST = ["--quiet", "--bootstrap", "20"]  # small bootstrap where the test is about something else


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("analysis") / "logs"
    recorder = Recorder()
    for condition in ("expert", "none", "generic"):
        roles = {
            "therapist": mock_role("therapist", recorder, therapist),
            "client": mock_role("client", recorder, exp1_client),
            "expert": mock_role("expert", recorder, exp1_expert),
        }
        task = iterative_feedback(condition=condition, sessions=SESSIONS, turns=1)
        [log] = eval(task, model=main_model(recorder), model_roles=roles, limit=PERSONAS, epochs=EPOCHS,
                     log_dir=str(directory), display="none")
        assert log.status == "success"
    roles = {
        "therapist": mock_role("therapist", recorder, exp2_therapist),
        "client": mock_role("client", recorder, exp2_client),
        "expert": mock_role("expert", recorder, lambda call: critique_form("critique")),
    }
    [log] = eval(human_comparison(snippets=None), model=main_model(recorder), model_roles=roles,
                 log_dir=str(directory), display="none")
    assert log.status == "success"
    return directory




def headers(directory: Path) -> list[tuple[Path, object]]:
    return [(Path(info.name.removeprefix("file://")), read_eval_log(info, header_only=True))
            for info in list_eval_logs(str(directory))]


def log_of(directory: Path, task: str, condition: str | None = None) -> Path:
    for path, header in headers(directory):
        if header.eval.task.split("/")[-1] == task and (condition is None or header.eval.task_args.get("condition") == condition):
            return path
    raise AssertionError(f"no {task} {condition} log")


def subset(directory: Path, target: Path, files: list[Path]) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    for f in files:
        (target / f.name).write_bytes(f.read_bytes())
    return target


def report(directory: Path, out: Path, *extra: str) -> tuple[int, str, pd.DataFrame]:
    rc = report_main([str(directory), "-o", str(out), *FAST, *extra])
    if rc != 0:
        return rc, "", pd.DataFrame()
    return rc, (out / "summary.md").read_text(), pd.read_csv(out / "statistics.csv")


def exp1_files(directory: Path) -> list[Path]:
    return [log_of(directory, "iterative_feedback", c) for c in ("expert", "none", "generic")]


@pytest.fixture(scope="module")
def exp1_statistics(log_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """statistics.csv of the three clean Experiment 1 logs alone: the reference for log-rule tests."""
    base = tmp_path_factory.mktemp("clean")
    rc, _, statistics = report(subset(log_dir, base / "logs", exp1_files(log_dir)), base / "r")
    assert rc == 0
    return statistics


def test_exp1_frame_matches_the_logs(log_dir: Path) -> None:
    frames = read_frames(log_dir)
    exp1 = frames.exp1
    assert len(exp1) == 3 * PERSONAS * EPOCHS * SESSIONS
    assert set(exp1["condition"]) == {"expert", "none", "generic"}
    assert exp1.groupby("condition")["run"].nunique().to_dict() == {"expert": EPOCHS, "generic": EPOCHS, "none": EPOCHS}
    assert set(exp1["setting"]) == {"mockllm/model"}
    for info in list_eval_logs(str(log_dir)):
        log = read_eval_log(info)
        if log.eval.task != "iterative_feedback":
            continue
        for sample in log.samples:
            rows = exp1[(exp1["run"] == f"{log.eval.eval_id}:{sample.epoch}") & (exp1["persona"] == sample.id)]
            score = sample.scores["client_satisfaction"]
            reasons = (score.metadata or {}).get("missing_reasons") or {}
            for row in rows.itertuples():
                expected = score.value[f"session_{row.session}"]
                assert (math.isnan(expected) and row.missing) or expected == row.rating
                if row.missing:  # the code before ':' of the scorer's reason, or "unrecorded" without one
                    key = f"session_{row.session}"
                    assert row.reason == (reasons[key].split(":")[0] if key in reasons else "unrecorded")
    missing = exp1[exp1["missing"]]
    assert len(missing) == 3 and set(missing["persona"]) == {MISSING_PERSONA} and set(missing["session"]) == {2}


def test_exp1_statistics_against_scipy(log_dir: Path) -> None:
    from statsmodels.stats.multitest import multipletests

    frames = read_frames(log_dir)
    exp1, runs = frames.exp1, frames.exp1_runs
    one = exp1[(exp1["run"] == runs["run"].iloc[0]) & (exp1["persona"] == runs["persona"].iloc[0])].dropna(subset=["rating"])
    assert runs["slope"].iloc[0] == pytest.approx(np.polyfit(one["session"], one["rating"], 1)[0])
    fit = fit_exp1_mixed(exp1, MixedSettings())
    results = exp1_tests("mockllm/model", exp1, fit, ("expert", "none", "slope"))
    from psysim.analysis.stats import apply_holm

    apply_holm(results)
    assert [r.role for r in results].count("primary") == 1
    checked = 0
    for r in results:
        measure = "slope" if r.measure == "change per session (points per session)" else "final"
        xa = runs[runs["condition"] == r.a].set_index(["persona", "run"])
        xb = runs[runs["condition"] == r.b].set_index(["persona", "run"])
        if r.test == "Welch t-test":
            ref = stats.ttest_ind(xa[measure].groupby("run").mean(), xb[measure].groupby("run").mean(), equal_var=False)
            assert (r.n_a, r.n_b, r.role) == (EPOCHS, EPOCHS, "secondary")
        elif r.test.startswith("Welch t-test, descriptive"):
            ref = stats.ttest_ind(xa[measure].dropna(), xb[measure].dropna(), equal_var=False)
            assert r.role == "descriptive" and math.isnan(r.p_holm)
        elif r.test == "paired t-test":
            pa, pb = xa[measure].groupby("persona").mean(), xb[measure].groupby("persona").mean()
            if (pa - pb).std() == 0:  # the mock makes generic - none identical for every persona
                assert r.status == "not testable" and "every paired difference" in r.reason and math.isnan(r.p)
                continue
            ref = stats.ttest_rel(pa, pb)
            assert r.n_a == PERSONAS
        elif r.role == "paper" and r.test.startswith("paired t-test over session means"):
            sa = exp1[exp1["condition"] == r.a].groupby("session")["rating"].mean()
            sb = exp1[exp1["condition"] == r.b].groupby("session")["rating"].mean()
            ref = stats.ttest_rel(sa, sb)
            assert r.df == SESSIONS - 1 and r.role == "paper"
            continue
        else:
            continue  # the mixed model is checked in test_mixed_model.py
        checked += 1
        ci = ref.confidence_interval(0.95)
        assert r.statistic == pytest.approx(ref.statistic) and r.df == pytest.approx(ref.df)
        assert r.p == pytest.approx(ref.pvalue)
        assert (r.ci_low, r.ci_high) == (pytest.approx(ci.low), pytest.approx(ci.high))
        # effect: difference over the SD between persona-runs, pooled within the two conditions
        va, vb = xa[measure].dropna(), xb[measure].dropna()
        sd = np.sqrt(((len(va) - 1) * va.var() + (len(vb) - 1) * vb.var()) / (len(va) + len(vb) - 2))
        assert r.effect == pytest.approx(r.difference / sd)
    assert checked == 3 * 2 * 3 - 2
    secondary = [r for r in results if r.role == "secondary" and r.status == "ok"]
    assert [r.p_holm for r in secondary] == pytest.approx(list(multipletests([r.p for r in secondary], method="holm")[1]))
    # the persona-run with a missing session-2 rating is counted inside the units that average it away
    by = {(r.a, r.b, r.measure, r.test): r for r in results}
    assert by[("expert", "none", "change per session (points per session)", "Welch t-test")].missing_within == 2
    assert by[("expert", "none", "final-session rating (points)", "Welch t-test")].missing_within == 0
    assert by[("expert", "none", "change per session (points per session)", "Welch t-test")].difference > 0


def test_exp2_frame_and_paired_statistics(log_dir: Path) -> None:
    exp2 = read_frames(log_dir).exp2
    assert len(exp2) == 39 * 3 and set(exp2["response_type"]) == {"human", "llm", "revised"}
    missing = exp2[exp2["missing"]]
    assert len(missing) >= 1 and set(missing["response_type"]) == {"llm"}
    wide = exp2.pivot_table(index="snippet", columns="response_type", values="rating", dropna=False, aggfunc="first")
    results = exp2_tests("mockllm/model", snippet_means(exp2).droplevel("setting"), exp2, ("revised", "human"))
    assert [(r.a, r.b, r.role) for r in results] == [("llm", "human", "secondary"), ("revised", "llm", "secondary"),
                                                     ("revised", "human", "primary")]
    for r in results:
        both = wide[[r.a, r.b]].dropna()
        ref = stats.ttest_rel(both[r.a], both[r.b])
        assert r.n_a == len(both) and r.missing_a == wide[r.a].isna().sum()
        assert r.statistic == pytest.approx(ref.statistic) and r.p == pytest.approx(ref.pvalue)
        assert r.df == len(both) - 1
        sd = np.sqrt((wide[r.a].std() ** 2 + wide[r.b].std() ** 2) / 2)  # SD between snippets, averaged
        assert r.effect == pytest.approx(r.difference / sd)


def test_report_directory(log_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    rc, summary, statistics = report(log_dir, out)
    assert rc == 0
    page = (out / "index.html").read_text()
    assert 'id="figure-sessions"' in page and 'id="figure-response-types"' in page
    assert "CI over runs" in page and "Client rating per response type" in page
    # plotly.js once beside the page (works offline, no CDN), not inlined
    assert (out / "plotly.min.js").is_file() and '<script src="plotly.min.js">' in page and "plotly.js v" not in page
    assert "## Experiment 1" in summary and "## Experiment 2" in summary and "not patient outcomes" in summary
    assert summary.index("Logs used: 4 (4 complete") < summary.index("## Summary")
    assert "## The paper side by side" in summary and "0.0026" in summary and "0.0050" in summary
    assert "Experiment 1 primary" in summary and "Experiment 2 primary" in summary
    assert len(statistics) == 3 * (2 * 4 + 2) + 3  # per contrast: 2 measures x 4 tests, 2 paper rows
    assert "inf" not in summary.replace("information", "")
    # session means and their CIs are over runs (each run's personas averaged), computed here by hand
    means = pd.read_csv(out / "exp1_session_means.csv")
    exp1 = read_frames(log_dir).exp1
    assert len(means) == 3 * SESSIONS and set(means["runs"]) == {EPOCHS} and means["missing_inside"].sum() == 3
    row = means[(means["condition"] == "expert") & (means["session"] == 2)].iloc[0]
    per_run = exp1[(exp1["condition"] == "expert") & (exp1["session"] == 2)].groupby("run")["rating"].mean()
    ci = stats.t.interval(0.95, len(per_run) - 1, loc=per_run.mean(), scale=stats.sem(per_run))
    assert (row["mean"], row["ci_low"], row["ci_high"]) == (pytest.approx(per_run.mean()), pytest.approx(ci[0]), pytest.approx(ci[1]))
    for name in ("exp1_ratings.csv", "exp1_runs.csv", "exp2_ratings.csv", "exp2_type_means.csv", "evals.csv",
                 "paper_comparison.csv", "exp1_mixed_fixed_effects.csv", "exp1_mixed_variance_components.csv"):
        assert (out / name).is_file()


def test_empty_or_absent_directory_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert report_main([str(tmp_path), "-o", str(tmp_path / "r"), "--quiet"]) == 2
    assert "no Inspect logs found" in capsys.readouterr().err
    assert report_main([str(tmp_path / "nope"), "-o", str(tmp_path / "r"), "--quiet"]) == 2
    assert "no such directory" in capsys.readouterr().err


def test_unknown_task_is_a_clear_error(log_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from inspect_ai import task as task_decorator

    @task_decorator
    def unrelated_task() -> Task:
        return Task(dataset=[Sample(input="hi")])

    mixed = tmp_path / "mixed"
    recorder = Recorder()
    eval(unrelated_task(), model=main_model(recorder), log_dir=str(mixed), display="none")
    subset(log_dir, mixed, [log_of(log_dir, "human_comparison")])
    with pytest.raises(UnknownTaskError, match="unrelated_task"):
        read_frames(mixed)
    assert report_main([str(mixed), "-o", str(tmp_path / "r"), *FAST]) == 2
    assert "--skip-unknown" in capsys.readouterr().err
    assert report_main([str(mixed), "-o", str(tmp_path / "r"), *FAST, "--skip-unknown"]) == 0


# --- the layouts that used to crash, and the log-identity rules ---------------------------------


def test_one_condition_beside_experiment_2(log_dir: Path, tmp_path: Path) -> None:
    """The offline run's own layout: one Experiment 1 condition plus Experiment 2 in one directory."""
    directory = subset(log_dir, tmp_path / "logs", [log_of(log_dir, "iterative_feedback", "expert"),
                                                    log_of(log_dir, "human_comparison")])
    rc, summary, statistics = report(directory, tmp_path / "r")
    assert rc == 0 and (tmp_path / "r" / "index.html").is_file()
    exp1 = statistics[statistics["experiment"] == "iterative_feedback"]
    assert len(exp1) == 30 and set(exp1["status"]) == {"not testable"}
    assert exp1["reason"].str.startswith("no logs of condition").all()
    assert "expert vs none (all 10 tests)" in summary and "not testable: no logs of condition 'none'" in summary
    assert (statistics[statistics["experiment"] == "human_comparison"]["status"] == "ok").all()
    # the mixed model still describes the one condition: the session trend, by hand
    fixed = pd.read_csv(tmp_path / "r" / "exp1_mixed_fixed_effects.csv")
    runs = read_frames(directory).exp1_runs
    slope = fixed[fixed["measure"] == "slope"].set_index("condition").loc["expert", "estimate"]
    assert slope == pytest.approx(runs["slope"].mean(), abs=1e-9)


def test_experiment_1_beside_a_one_snippet_experiment_2(log_dir: Path, tmp_path: Path) -> None:
    directory = subset(log_dir, tmp_path / "logs", exp1_files(log_dir))
    copy_log(log_of(log_dir, "human_comparison"), directory / "one-snippet.eval", keep_samples=1)
    rc, summary, statistics = report(directory, tmp_path / "r")
    assert rc == 0
    exp2 = statistics[statistics["experiment"] == "human_comparison"]
    assert set(exp2["status"]) == {"not testable"}
    assert exp2["reason"].str.contains(r"needs at least 2 complete snippets with both ratings \(have [01]\)").all()
    assert "Experiment 2 primary [mockllm/model]: revised vs human, rating (paired t-test): not testable" in summary


def test_corrupt_file_is_named_and_skipped(log_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                                           exp1_statistics: pd.DataFrame) -> None:
    directory = subset(log_dir, tmp_path / "logs", exp1_files(log_dir))
    bad = directory / "2026-01-01T00-00-00-00-00_iterative-feedback_corrupt.eval"
    bad.write_bytes(b"PK\x03\x04 this is not a zip archive")
    rc, summary, statistics = report(directory, tmp_path / "r")
    assert rc == 0
    assert bad.name in capsys.readouterr().err
    assert f"**skipped, unreadable**: `{bad.name}`" in summary
    assert summary.index(bad.name) < summary.index("## Summary")
    pd.testing.assert_frame_equal(statistics, exp1_statistics)  # the other logs give exactly the same result
    only_bad = tmp_path / "only-bad"
    only_bad.mkdir()
    (only_bad / bad.name).write_bytes(bad.read_bytes())
    assert report_main([str(only_bad), "-o", str(tmp_path / "r2"), *FAST]) == 2
    assert bad.name in capsys.readouterr().err


def test_errored_and_retried_logs_are_one_series(log_dir: Path, tmp_path: Path, exp1_statistics: pd.DataFrame) -> None:
    directory = subset(log_dir, tmp_path / "logs", exp1_files(log_dir))
    expert = log_of(log_dir, "iterative_feedback", "expert")
    # what eval_set leaves after a retry: the failed attempt (earlier, one sample) beside its successful retry
    copy_log(expert, directory / "2020-01-01T00-00-00-00-00_iterative-feedback_errored.eval", status="error",
             error="RuntimeError: provider down", created="2020-01-01T00:00:00+00:00", eval_id="errored", keep_samples=1)
    rc, summary, statistics = report(directory, tmp_path / "r")
    assert rc == 0
    assert "**superseded**: `2020-01-01T00-00-00-00-00_iterative-feedback_errored.eval` (status error; error: RuntimeError: provider down)" in summary
    pd.testing.assert_frame_equal(statistics, exp1_statistics)  # not pooled: same statistics as without it
    assert read_frames(directory).exp1.groupby("condition")["run"].nunique()["expert"] == EPOCHS
    # a deliberate second complete run of the same series is kept, as separate runs
    copy_log(expert, directory / "2099-01-01T00-00-00-00-00_iterative-feedback_again.eval",
             created="2099-01-01T00:00:00+00:00", eval_id="again")
    frames = read_frames(directory)
    assert frames.exp1.groupby("condition")["run"].nunique()["expert"] == 2 * EPOCHS
    assert len(frames.selection.used) == 4 and len(frames.selection.superseded) == 1


def test_copied_log_is_one_run(log_dir: Path, tmp_path: Path, exp1_statistics: pd.DataFrame) -> None:
    """Issue 21: a byte-identical copy under another name (same eval id) is the same run, read
    once and named; a file with the same eval id but other contents is named with a warning."""
    import shutil

    directory = subset(log_dir, tmp_path / "logs", exp1_files(log_dir))
    expert = log_of(log_dir, "iterative_feedback", "expert")
    shutil.copy(expert, directory / "copy.eval")
    rc, summary, statistics = report(directory, tmp_path / "r")
    assert rc == 0
    assert f"**duplicate**: `copy.eval` is a copy of `{expert.name}`" in summary or \
        f"**duplicate**: `{expert.name}` is a copy of `copy.eval`" in summary
    pd.testing.assert_frame_equal(statistics, exp1_statistics)  # not doubled
    frames = read_frames(directory)
    assert len(frames.selection.used) == 3 and len(frames.selection.duplicates) == 1
    # same eval id, different contents (an incomplete attempt): the complete log is the one used
    copy_log(expert, directory / "copy.eval", keep_samples=2, status="error", error="RuntimeError: killed")
    rc, summary, statistics = report(directory, tmp_path / "r2")
    assert "**WARNING: duplicate with different contents**" in summary
    pd.testing.assert_frame_equal(statistics, exp1_statistics)  # the complete log is kept


def test_impossible_ratings_are_bad_input(log_dir: Path, tmp_path: Path) -> None:
    """Issue 21: session ratings of 150 and -20 in an edited log are named, counted (reason
    out_of_range) and kept out of the session means and tests."""
    directory = subset(log_dir, tmp_path / "logs", exp1_files(log_dir)[1:])
    edits = iter([("session_2", 150.0), ("session_3", -20.0)])

    def impossible(sample) -> None:  # noqa: ANN001
        edit = next(edits, None)
        if edit is not None:
            sample.scores["client_satisfaction"].value[edit[0]] = edit[1]

    copy_log(log_of(log_dir, "iterative_feedback", "expert"), directory / "expert.eval", edit_sample=impossible)
    rc, summary, _ = report(directory, tmp_path / "r")
    assert rc == 0
    exp1 = read_frames(directory).exp1
    bad = exp1[exp1["reason"] == "out_of_range"]
    assert len(bad) == 2 and bad["missing"].all() and bad["rating"].isna().all()
    assert exp1["rating"].dropna().between(0, 100).all()
    assert "**Bad input**: 2 rating(s) outside the scale kept out" in summary
    assert "| mockllm/model | expert | out_of_range | 2 |" in summary


def test_questionnaire_value_outside_its_scale_is_bad_input() -> None:
    from psysim.analysis.frames import OUT_OF_RANGE, _value_and_reason

    assert _value_and_reason({"srs_total_s1": 41.0}, "srs_total_s1", {}, True, None, (0.0, 40.0)) == (
        pytest.approx(float("nan"), nan_ok=True), True, OUT_OF_RANGE)
    assert _value_and_reason({"srs_total_s1": 40.0}, "srs_total_s1", {}, True, None, (0.0, 40.0)) == (40.0, False, "")
    assert _value_and_reason({"rating": 101.0}, "rating", {}, True, None)[2] == OUT_OF_RANGE


def test_cancelled_log_is_a_listed_partial_run(log_dir: Path, tmp_path: Path) -> None:
    directory = subset(log_dir, tmp_path / "logs", [log_of(log_dir, "iterative_feedback", c) for c in ("expert", "generic")])
    log = copy_log(log_of(log_dir, "iterative_feedback", "none"), directory / "cancelled.eval", status="cancelled",
                   keep_samples=5)
    rc, summary, _ = report(directory, tmp_path / "r")
    assert rc == 0
    assert "**incomplete, used as a partial run**: `cancelled.eval` (status cancelled; 5 of" in summary
    kept = {(s.id, s.epoch) for s in log.samples}
    exp1 = read_frames(directory).exp1
    assert set(map(tuple, exp1[exp1["condition"] == "none"][["persona", "epoch"]].drop_duplicates().to_numpy())) == kept
    per_run = pd.Series([e for _, e in kept]).value_counts()
    for epoch, n in per_run.items():
        if n < PERSONAS:
            assert f"has {n} of {PERSONAS} personas" in summary


def test_one_run_per_condition_says_why_the_run_test_is_missing(log_dir: Path, tmp_path: Path) -> None:
    directory = tmp_path / "logs"
    directory.mkdir()
    for path in exp1_files(log_dir):
        copy_log(path, directory / path.name, sample_filter=lambda s: s.epoch == 1)
    rc, summary, statistics = report(directory, tmp_path / "r")
    assert rc == 0
    runs_tests = statistics[statistics["test"] == "Welch t-test"]
    assert set(runs_tests["status"]) == {"not testable"}
    assert runs_tests["reason"].str.contains(r"needs at least 2 runs per side \(have 1 and 1\)").all()
    mixed = statistics[statistics["test"] == "mixed model (two-stage REML, Satterthwaite df)"]
    assert set(mixed["status"]) == {"not testable"} and "single run" in mixed["reason"].iloc[0]
    assert "needs at least 2 runs per side (have 1 and 1)" in summary


def test_missing_reasons_are_counted_by_code(log_dir: Path, tmp_path: Path) -> None:
    directory = subset(log_dir, tmp_path / "logs", exp1_files(log_dir)[1:])
    codes = iter(["context_length: prompt of 9000 tokens exceeds 8192", "context_length: again", "empty_reply: ''"])

    def drop_session_3(sample) -> None:  # noqa: ANN001
        code = next(codes, None)
        if code is None:
            return
        score = sample.scores["client_satisfaction"]
        score.value["session_3"] = float("nan")
        score.metadata["missing_reasons"] = {"session_3": code}
        if code.startswith("context_length"):  # the course ended after session 2 (the contract's shape)
            score.metadata["course_status"] = "ended_early"
            score.metadata["ended"] = {"after_session": 2, "reason": "context_length", "role": "client",
                                       "step": "turn", "detail": "prompt too long"}

    copy_log(log_of(log_dir, "iterative_feedback", "expert"), directory / "expert.eval", edit_sample=drop_session_3)
    rc, summary, _ = report(directory, tmp_path / "r")
    assert rc == 0
    exp1 = read_frames(directory).exp1
    counts = exp1[(exp1["condition"] == "expert") & exp1["missing"]]["reason"].value_counts().to_dict()
    assert counts == {"context_length": 2, "empty_reply": 1, "unrecorded": 1} or counts.get("context_length") == 2
    assert "| mockllm/model | expert | context_length | 2 |" in summary
    assert "| mockllm/model | expert | empty_reply | 1 |" in summary
    endings = summary[summary.index("Courses that ended early, by reason"):].split("\n\n")[1]
    assert endings.splitlines()[2:] == ["| mockllm/model | expert | context_length | 2 |"]
    overview = summary[summary.index("| setting | condition | runs"):].split("\n\n")[0].splitlines()
    expert_row = next(line for line in overview if "| expert |" in line).split("|")
    assert expert_row[overview[0].split("|").index(" ended early ")].strip() == "2"


def test_primary_option_and_bad_options(log_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    directory = subset(log_dir, tmp_path / "logs", exp1_files(log_dir))
    rc, summary, statistics = report(directory, tmp_path / "r", "--primary", "iterative_feedback=expert-vs-generic:final")
    assert rc == 0
    primary = statistics[statistics["role"] == "primary"]
    assert primary[["a", "b", "measure", "test"]].values.tolist() == [
        ["expert", "generic", "final-session rating (points)", "mixed model (two-stage REML, Satterthwaite df)"]]
    # the former primary is now a secondary test with a Holm-adjusted p
    former = statistics[(statistics["a"] == "expert") & (statistics["b"] == "none") & (statistics["test"] == "mixed model (two-stage REML, Satterthwaite df)")
                        & (statistics["measure"] == "change per session (points per session)")].iloc[0]
    assert former["role"] == "secondary" and former["p_holm"] >= former["p"]
    for bad in (["--primary", "iterative_feedback=expert-none"], ["--primary", "nosuchtask=a-vs-b"], ["--primary", "x"]):
        assert report_main([str(directory), "-o", str(tmp_path / "bad"), *FAST, *bad]) == 2
        assert "primary" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()  # nothing half written

    # an unexpected failure inside the report is a message and exit 1, never a traceback
    from psysim.analysis.sections import SECTIONS

    def broken(frames, options):  # noqa: ANN001, ANN202
        raise RuntimeError("section exploded")

    monkeypatch.setattr(SECTIONS["iterative_feedback"], "build", broken)
    assert report_main([str(directory), "-o", str(tmp_path / "r3"), *FAST]) == 1
    assert "unexpected failure" in capsys.readouterr().err
