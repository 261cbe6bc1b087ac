"""Units of analysis, degenerate data and missing-data rules, on small in-memory frames."""

from __future__ import annotations

import math
import warnings
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from psysim.analysis.exp1 import session_means, setting_tests
from psysim.analysis.exp2 import setting_tests as exp2_tests
from psysim.analysis.exp2 import type_means
from psysim.analysis.mixed import MixedSettings, fit_exp1_mixed
from psysim.analysis.render import render_tests
from psysim.analysis.stats import holm, paired, snippet_means, welch
from psysim.study.log_series import LogEntry, SeriesKey, select_logs

PRIMARY = ("expert", "none", "slope")


def exp2_rows(snippets: list[str], run: str, ratings: dict[str, list[float]]) -> list[dict]:
    rows = []
    for i, snippet in enumerate(snippets):
        for kind, values in ratings.items():
            value = values[i]
            rows.append({"setting": "m", "snippet": snippet, "run": run, "eval_id": run.split(":")[0], "epoch": 1,
                         "response_type": kind, "rating": value, "missing": math.isnan(value),
                         "reason": "empty_reply" if math.isnan(value) else ""})
    return rows


def exp1_frame(rating, conditions=("expert", "none", "generic"), personas=3, runs=2, sessions=3) -> pd.DataFrame:  # noqa: ANN001
    """Experiment 1 rows with ``rating(condition, persona, run, session)``."""
    rows = []
    for c in conditions:
        for r in range(runs):
            for p in range(personas):
                for s in range(1, sessions + 1):
                    value = float(rating(c, p, r, s))
                    rows.append({"setting": "m", "condition": c, "persona": f"p{p}", "run": f"{c}{r}:1",
                                 "eval_id": f"{c}{r}", "epoch": 1, "session": s, "sessions": sessions,
                                 "rating": value, "missing": math.isnan(value), "reason": "", "course_status": "complete",
                                 "baseline": 30.0})
    return pd.DataFrame(rows)


def all_tests(frame: pd.DataFrame, bootstrap: int = 20) -> list:
    fit = fit_exp1_mixed(frame, MixedSettings())
    return setting_tests("m", frame, fit, PRIMARY)


def assert_no_fake_numbers(results: list) -> None:
    """A test either has finite numbers or says "not testable" with a reason: never inf/nan as a result."""
    for r in results:
        if r.status == "ok":
            assert all(math.isfinite(v) for v in (r.statistic, r.df, r.p, r.ci_low, r.ci_high)), r
        else:
            assert r.reason and all(math.isnan(v) for v in (r.statistic, r.df, r.p)), r
    assert "inf" not in render_tests(results)


def test_constant_by_condition_is_not_testable_never_infinite() -> None:
    frame = exp1_frame(lambda c, p, r, s: 60 if c == "expert" else 50)
    results = all_tests(frame)
    assert_no_fake_numbers(results)
    runs_final = next(r for r in results if r.test == "Welch t-test" and r.a == "expert" and r.measure == "final-session rating (points)")
    assert runs_final.status == "not testable" and "no variation within either side" in runs_final.reason
    assert runs_final.difference == 10  # the difference itself is still shown
    # scipy itself would print t = inf here: the reason replaces it
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert math.isinf(stats.ttest_ind([60, 60], [50, 50], equal_var=False).statistic)


def test_all_ratings_equal_is_not_testable_and_the_model_says_why() -> None:
    frame = exp1_frame(lambda c, p, r, s: 50)
    results = all_tests(frame)
    assert_no_fake_numbers(results)
    assert all(r.status == "not testable" for r in results)
    fit = fit_exp1_mixed(frame, MixedSettings())
    assert not fit.fitted and fit.reason == "every rating equals 50: nothing varies, so there is nothing to model"
    assert "every paired difference equals 0" in paired(pd.Series([1.0, 2.0]), pd.Series([1.0, 2.0])).reason
    # differences equal up to rounding (0.1 + 0.2 - 0 and 2.3 - 2.0) are equal: not t ~ 1e16
    a, b = pd.Series([0.1 + 0.2, 1.3, 2.3]), pd.Series([0.0, 1.0, 2.0])
    assert (a - b).std() > 0 and "every paired difference equals 0.3" in paired(a, b).reason
    assert "no variation" in welch(pd.Series([0.1 + 0.2, 0.3]), pd.Series([0.7, 0.7])).reason
    assert pd.Series([0.1 + 0.2, 0.3]).std() > 0
    assert not paired(pd.Series([1.0, 2.0, 4.0]), pd.Series([0.0, 0.0, 1.0])).reason
    assert "have 1 and 2" in welch(pd.Series([1.0]), pd.Series([1.0, 2.0]), "runs").reason


def test_one_condition_only_names_the_absent_conditions() -> None:
    frame = exp1_frame(lambda c, p, r, s: 40 + s + p + r, conditions=("expert",))
    results = all_tests(frame)
    assert_no_fake_numbers(results)
    reasons = {(r.a, r.b): r.reason for r in results}
    assert reasons == {("expert", "none"): "no logs of condition 'none' in this setting",
                       ("expert", "generic"): "no logs of condition 'generic' in this setting",
                       ("generic", "none"): "no logs of condition 'generic' or 'none' in this setting"}
    assert all(r.status == "not testable" and r.reason.startswith("no logs of condition") for r in results)


def test_session_means_are_over_runs_with_missing_counted() -> None:
    nan = float("nan")
    frame = exp1_frame(lambda c, p, r, s: nan if (p, r, s) == (0, 1, 2) else 40 + s * (1 + r) + p, personas=3, runs=3)
    means = session_means(frame)
    row = means[(means["condition"] == "expert") & (means["session"] == 2)].iloc[0]
    per_run = [np.mean([40 + 2 * (1 + r) + p for p in range(3) if (p, r) != (0, 1)]) for r in range(3)]
    ci = stats.t.interval(0.95, 2, loc=np.mean(per_run), scale=stats.sem(per_run))
    assert row["mean"] == pytest.approx(np.mean(per_run)) and row["ci_low"] == pytest.approx(ci[0])
    assert (row["runs"], row["missing_runs"], row["missing_inside"]) == (3, 0, 1)


def test_exp2_tests_are_over_snippets_not_snippet_runs() -> None:
    snippets = ["s1", "s2", "s3", "s4"]
    run1 = exp2_rows(snippets, "e:1", {"human": [40, 50, 45, 60], "llm": [55, 58, 50, 70], "revised": [60, 66, 52, 75]})
    run2 = exp2_rows(snippets, "e:2", {"human": [42, 48, 47, 58], "llm": [53, 60, 56, 72], "revised": [61, 64, 58, 70]})
    frame = pd.DataFrame(run1 + run2)
    wide = snippet_means(frame).droplevel("setting")
    [llm_vs_human, *_] = exp2_tests("m", wide, frame, ("revised", "human"))
    assert llm_vs_human.n_a == 4 and llm_vs_human.df == 3  # four snippets, whatever the runs
    ref = stats.ttest_rel(wide["llm"], wide["human"])
    assert llm_vs_human.statistic == pytest.approx(ref.statistic)


def test_exp2_missing_ratings_averaged_away_are_counted() -> None:
    """Six llm ratings missing in run 2 of snippets still rated in run 1: counted, not hidden."""
    nan = float("nan")
    snippets = [f"s{i}" for i in range(8)]
    run1 = exp2_rows(snippets, "e:1", {"human": [40.0 + i for i in range(8)], "llm": [50.0 + i for i in range(8)],
                                       "revised": [55.0 + i for i in range(8)]})
    run2 = exp2_rows(snippets, "e:2", {"human": [41.0 + i for i in range(8)], "llm": [nan] * 6 + [52.0, 53.0],
                                       "revised": [56.0 + i for i in range(8)]})
    frame = pd.DataFrame(run1 + run2)
    means = type_means(frame).set_index("response_type")
    assert (means.loc["llm", "missing_snippets"], means.loc["llm", "missing_inside"]) == (0, 6)
    wide = snippet_means(frame).droplevel("setting")
    llm_vs_human = exp2_tests("m", wide, frame, ("revised", "human"))[0]
    assert (llm_vs_human.missing_a, llm_vs_human.missing_within) == (0, 6)


def test_exp2_logs_with_different_snippets_invent_no_missing() -> None:
    nan = float("nan")
    a = exp2_rows(["s1", "s2", "s3"], "a:1", {"human": [40, 50, 45], "llm": [55, 58, 50], "revised": [60, 61, 62]})
    b = exp2_rows(["s4", "s5", "s6"], "b:1", {"human": [41, 52, 44], "llm": [56, nan, 51], "revised": [63, 60, 64]})
    frame = pd.DataFrame(a + b)
    [llm_vs_human, _, revised_vs_human] = exp2_tests("m", snippet_means(frame).droplevel("setting"), frame, ("revised", "human"))
    assert (llm_vs_human.n_a, llm_vs_human.missing_a, llm_vs_human.missing_b) == (5, 1, 0)
    assert (revised_vs_human.n_a, revised_vs_human.missing_a, revised_vs_human.missing_b) == (6, 0, 0)


def test_holm_matches_statsmodels() -> None:
    from statsmodels.stats.multitest import multipletests

    p = [0.01, 0.04, 0.03, 0.2, 0.001]
    assert holm(p) == pytest.approx(list(multipletests(p, method="holm")[1]))


def entry(name: str, created: str, status: str, key: SeriesKey) -> LogEntry:
    header = SimpleNamespace(status=status, error=None, eval=SimpleNamespace(created=created, eval_id=name))
    return LogEntry(path=name, header=header, key=key)  # type: ignore[arg-type]


def test_series_rules() -> None:
    key = SeriesKey("iterative_feedback", (("condition", '"expert"'), ("shard", '"1/2"')), "m", ())
    other = SeriesKey("iterative_feedback", (("condition", '"none"'), ("shard", '"1/2"')), "m", ())
    logs = [entry("e1", "1", "error", key), entry("ok2", "2", "success", key), entry("ok3", "3", "success", key),
            entry("e4", "4", "error", key), entry("c5", "5", "cancelled", key), entry("n1", "1", "error", other)]
    selection = select_logs(logs)
    assert sorted(e.name for e in selection.used) == ["c5", "n1", "ok2", "ok3"]
    assert sorted((a.name, b.name) for a, b in selection.superseded) == [("e1", "ok2"), ("e4", "c5")]
    assert sorted(e.name for e in selection.incomplete) == ["c5", "n1"]
    # every argument counts today; a shard merge (a later issue) can leave one out
    assert key != SeriesKey("iterative_feedback", (("condition", '"expert"'), ("shard", '"2/2"')), "m", ())
    assert key.without_args({"shard"}) == SeriesKey("iterative_feedback", (("condition", '"expert"'), ("shard", '"2/2"')),
                                                    "m", ()).without_args({"shard"})
    # role models are part of the identity
    assert key != SeriesKey(key.task, key.task_args, key.model, (("client", "other"),))


def test_cosmetics_of_issue_21() -> None:
    """scipy's "Precision loss" warning does not reach stderr; rounding noise prints as 0.00; the
    effect size reads as d, standardised by an SD."""
    from psysim.analysis.render import effect_text, fmt

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = welch(pd.Series([60.0, 60.0, 60.0 + 1e-9]), pd.Series([50.0, 51.0, 52.0]))
    assert not result.reason and not [w for w in caught if "Precision loss" in str(w.message)]
    assert fmt(-5.68e-14) == "0.00" and fmt(-6.8e-15) == "0.00" and fmt(0.0004) == "0.0004"
    frame = exp1_frame(lambda c, p, r, s: 40 + s * (2 if c == "expert" else 1) + p + (r * s) % 3)
    primary = next(r for r in all_tests(frame) if r.role == "primary")
    assert effect_text(primary).startswith("d = ") and "(standardised by the SD between persona-runs)" in effect_text(primary)
