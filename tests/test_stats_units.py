"""Units of analysis and missing-data rules, on small in-memory frames."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from scipy import stats

from psysim.analysis.frames import _exp1
from psysim.analysis.stats import experiment2_tests, snippet_means


def exp2_rows(snippets: list[str], run: str, ratings: dict[str, list[float]]) -> list[dict]:
    rows = []
    for i, snippet in enumerate(snippets):
        for kind, values in ratings.items():
            value = values[i]
            rows.append({"setting": "m", "snippet": snippet, "run": run, "eval_id": run.split(":")[0], "epoch": 1,
                         "response_type": kind, "rating": value, "missing": math.isnan(value)})
    return rows


def test_exp2_tests_are_over_snippets_not_snippet_runs() -> None:
    snippets = ["s1", "s2", "s3", "s4"]
    run1 = exp2_rows(snippets, "e:1", {"human": [40, 50, 45, 60], "llm": [55, 58, 50, 70], "revised": [60, 66, 52, 75]})
    run2 = exp2_rows(snippets, "e:2", {"human": [42, 48, 47, 58], "llm": [53, 60, 56, 72], "revised": [61, 64, 58, 70]})
    frame = pd.DataFrame(run1 + run2)
    [llm_vs_human, *_] = experiment2_tests(frame)
    assert llm_vs_human.n_a == 4 and llm_vs_human.df == 3  # four snippets, whatever the runs
    means = snippet_means(frame)
    ref = stats.ttest_rel(means["llm"], means["human"])
    assert llm_vs_human.statistic == pytest.approx(ref.statistic)


def test_exp2_logs_with_different_snippets_invent_no_missing() -> None:
    nan = float("nan")
    a = exp2_rows(["s1", "s2", "s3"], "a:1", {"human": [40, 50, 45], "llm": [55, 58, 50], "revised": [60, 61, 62]})
    b = exp2_rows(["s4", "s5", "s6"], "b:1", {"human": [41, 52, 44], "llm": [56, nan, 51], "revised": [63, 60, 64]})
    [llm_vs_human, revised_vs_llm, revised_vs_human] = experiment2_tests(pd.DataFrame(a + b))
    assert (llm_vs_human.n_a, llm_vs_human.missing_a, llm_vs_human.missing_b) == (5, 1, 0)
    assert (revised_vs_human.n_a, revised_vs_human.missing_a, revised_vs_human.missing_b) == (6, 0, 0)


def test_unscored_exp1_samples_become_missing_sessions() -> None:
    samples = pd.DataFrame(
        [
            {"id": "p1", "eval_id": "e", "epoch": 1, "setting": "m", "condition": "expert",
             "score_client_satisfaction": '{"session_1": 50.0, "session_2": NaN, "final": NaN, "gain": NaN}'},
            {"id": "p2", "eval_id": "e", "epoch": 1, "setting": "m", "condition": "expert",
             "score_client_satisfaction": None},  # the sample errored before it was scored
        ]
    )
    evals = pd.DataFrame([{"eval_id": "e", "task_arg_baseline": 30, "task_arg_sessions": 2}])
    frame = _exp1(samples, evals)
    assert len(frame) == 4
    assert frame[frame["persona"] == "p2"]["missing"].all()
    assert frame[frame["persona"] == "p1"]["rating"].tolist()[0] == 50.0
