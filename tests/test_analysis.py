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

from mock_roles import RATING_MARKER, Call, Recorder, main_model, mock_role, session_of
from psysim.analysis import UnknownTaskError, read_frames
from psysim.analysis.cli import main as report_main
from psysim.analysis.stats import experiment1_tests, experiment2_tests
from psysim.generation import REASK_SEED_STEP
from tasks.human_comparison import human_comparison
from tasks.iterative_feedback import iterative_feedback

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
    if MISSING_NAME in call.system and k == 2 and call.config.seed % REASK_SEED_STEP == 2:  # every attempt of run 2
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
        "expert": mock_role("expert", recorder, lambda call: "critique"),
    }
    [log] = eval(human_comparison(snippets=None), model=main_model(recorder), model_roles=roles,
                 log_dir=str(directory), display="none")
    assert log.status == "success"
    return directory


def test_exp1_frame_matches_the_logs(log_dir: Path) -> None:
    frames = read_frames(log_dir)
    exp1 = frames.exp1
    assert len(exp1) == 3 * PERSONAS * EPOCHS * SESSIONS
    assert set(exp1["condition"]) == {"expert", "none", "generic"}
    assert exp1.groupby("condition")["run"].nunique().to_dict() == {"expert": EPOCHS, "generic": EPOCHS, "none": EPOCHS}
    units = exp1[["condition", "persona", "run"]].drop_duplicates()
    assert units.groupby("condition").size().to_dict() == {c: PERSONAS * EPOCHS for c in ("expert", "generic", "none")}
    assert set(exp1["setting"]) == {"mockllm/model"}
    for info in list_eval_logs(str(log_dir)):
        log = read_eval_log(info)
        if log.eval.task != "iterative_feedback":
            continue
        for sample in log.samples:
            rows = exp1[(exp1["run"] == f"{log.eval.eval_id}:{sample.epoch}") & (exp1["persona"] == sample.id)]
            value = sample.scores["client_satisfaction"].value
            for row in rows.itertuples():
                expected = value[f"session_{row.session}"]
                assert (math.isnan(expected) and row.missing) or expected == row.rating
    missing = exp1[exp1["missing"]]
    assert len(missing) == 3 and set(missing["persona"]) == {MISSING_PERSONA} and set(missing["session"]) == {2}


def test_exp1_statistics_against_scipy(log_dir: Path) -> None:
    frames = read_frames(log_dir)
    runs = frames.exp1_runs
    # per-run slope by hand
    one = frames.exp1[frames.exp1["run"] == runs["run"].iloc[0]]
    one = one[one["persona"] == runs["persona"].iloc[0]].dropna(subset=["rating"])
    assert runs["slope"].iloc[0] == pytest.approx(np.polyfit(one["session"], one["rating"], 1)[0])
    results = {(r.a, r.b, r.measure, r.test): r for r in experiment1_tests(runs)}
    assert len(results) == 12  # 2 contrasts x 2 measures x 3 units of analysis
    for (a, b, measure, test), r in results.items():
        xa = runs[runs["condition"] == a].set_index(["persona", "run"])[measure]
        xb = runs[runs["condition"] == b].set_index(["persona", "run"])[measure]
        if test == "Welch t-test (runs; personas averaged)":
            ra, rb = xa.groupby("run").mean(), xb.groupby("run").mean()
            ref = stats.ttest_ind(ra, rb, equal_var=False)
            pooled = np.sqrt((ra.var() + rb.var()) / 2)  # equal group sizes
            effect = (ra.mean() - rb.mean()) / pooled
            assert (r.n_a, r.n_b) == (EPOCHS, EPOCHS)
        elif test == "Welch t-test (persona-runs)":
            ref = stats.ttest_ind(xa.dropna(), xb.dropna(), equal_var=False)
            pooled = np.sqrt(((len(xa.dropna()) - 1) * xa.var() + (len(xb.dropna()) - 1) * xb.var())
                             / (len(xa.dropna()) + len(xb.dropna()) - 2))
            effect = (xa.mean() - xb.mean()) / pooled
            assert (r.n_a, r.n_b) == (xa.notna().sum(), xb.notna().sum())
            assert r.missing_a == xa.isna().sum() and r.missing_b == xb.isna().sum()
        else:
            pa = xa.groupby("persona").mean()
            pb = xb.groupby("persona").mean()
            ref = stats.ttest_rel(pa, pb)
            effect = (pa - pb).mean() / (pa - pb).std(ddof=1)
            assert r.n_a == PERSONAS
        ci = ref.confidence_interval(0.95)
        assert r.statistic == pytest.approx(ref.statistic)
        assert r.df == pytest.approx(ref.df)
        assert r.p == pytest.approx(ref.pvalue)
        assert (r.ci_low, r.ci_high) == (pytest.approx(ci.low), pytest.approx(ci.high))
        assert r.effect == pytest.approx(effect)
    # the missing session-2 ratings lower no final rating, and are counted where they matter
    assert results[("expert", "none", "final", "Welch t-test (persona-runs)")].missing_a == 0
    # expert feedback raises ratings in this mock world; the tests see it
    assert results[("expert", "none", "final", "Welch t-test (runs; personas averaged)")].difference > 0


def test_exp2_frame_and_paired_statistics(log_dir: Path) -> None:
    frames = read_frames(log_dir)
    exp2 = frames.exp2
    assert len(exp2) == 39 * 3 and set(exp2["response_type"]) == {"human", "llm", "revised"}
    missing = exp2[exp2["missing"]]
    assert len(missing) >= 1 and set(missing["response_type"]) == {"llm"}
    wide = exp2.pivot_table(index="snippet", columns="response_type", values="rating", dropna=False, aggfunc="first")
    for r in experiment2_tests(exp2):
        both = wide[[r.a, r.b]].dropna()
        ref = stats.ttest_rel(both[r.a], both[r.b])
        diff = both[r.a] - both[r.b]
        assert r.n_a == len(both) and r.missing_a == wide[r.a].isna().sum()
        assert r.statistic == pytest.approx(ref.statistic) and r.p == pytest.approx(ref.pvalue)
        assert r.df == len(both) - 1
        assert r.effect == pytest.approx(diff.mean() / diff.std(ddof=1))
        ci = ref.confidence_interval(0.95)
        assert (r.ci_low, r.ci_high) == (pytest.approx(ci.low), pytest.approx(ci.high))
    assert [(r.a, r.b) for r in experiment2_tests(exp2)] == [("llm", "human"), ("revised", "llm"), ("revised", "human")]


def test_report_directory(log_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    assert report_main([str(log_dir), "-o", str(out), "--quiet"]) == 0
    page = (out / "index.html").read_text()
    assert 'id="figure-0"' in page and 'id="figure-1"' in page
    assert "Client satisfaction by session" in page and "Client rating per response type" in page
    assert page.count("plotly.js v") >= 1  # plotly inlined: the page works offline
    summary = (out / "summary.md").read_text()
    assert "## Experiment 1" in summary and "## Experiment 2" in summary and "not patient outcomes" in summary
    statistics = pd.read_csv(out / "statistics.csv")
    assert len(statistics) == 12 + 3
    means = pd.read_csv(out / "exp1_session_means.csv")
    assert len(means) == 3 * SESSIONS and means["missing"].sum() == 3
    for name in ("exp1_ratings.csv", "exp1_runs.csv", "exp2_ratings.csv", "exp2_type_means.csv", "evals.csv"):
        assert (out / name).is_file()


def test_empty_directory_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert report_main([str(tmp_path), "-o", str(tmp_path / "r"), "--quiet"]) == 2
    assert "no Inspect logs found" in capsys.readouterr().err


def test_unknown_task_is_a_clear_error(log_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from inspect_ai import task as task_decorator

    @task_decorator
    def unrelated_task() -> Task:
        return Task(dataset=[Sample(input="hi")])

    mixed = tmp_path / "mixed"
    recorder = Recorder()
    eval(unrelated_task(), model=main_model(recorder), log_dir=str(mixed), display="none")
    for info in list_eval_logs(str(log_dir))[:1]:
        (mixed / Path(info.name).name).write_bytes(Path(info.name.removeprefix("file://")).read_bytes())
    with pytest.raises(UnknownTaskError, match="unrelated_task"):
        read_frames(mixed)
    assert report_main([str(mixed), "-o", str(tmp_path / "r"), "--quiet"]) == 2
    assert "--skip-unknown" in capsys.readouterr().err
    assert report_main([str(mixed), "-o", str(tmp_path / "r"), "--quiet", "--skip-unknown"]) == 0
