"""The study's statistics, each with statistic, df, p, effect size, 95% CI and the n used.

Experiment 1 (independent runs per condition): Welch's t-test of expert vs none and expert vs
generic feedback on the final rating and on the per-run slope across sessions; and, because
runs of one persona are not independent of each other, the same contrasts on persona means
(runs averaged per persona) as a paired t-test across personas — the persona-level equivalent
of a random-intercept model. Experiment 2: paired t-tests over snippets.
Missing ratings are counted in ``missing_a``/``missing_b``, never silently dropped.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import stats

EXP1_CONTRASTS = (("expert", "none"), ("expert", "generic"))
EXP2_CONTRASTS = (("llm", "human"), ("revised", "llm"), ("revised", "human"))


@dataclass
class TestResult:
    experiment: str
    setting: str
    measure: str
    a: str
    b: str
    test: str
    n_a: int
    n_b: int
    missing_a: int
    missing_b: int
    mean_a: float
    mean_b: float
    difference: float
    ci_low: float
    ci_high: float
    statistic: float
    df: float
    p: float
    effect_size: str
    effect: float


def welch(a: pd.Series, b: pd.Series) -> dict[str, float]:
    """Welch's t-test of mean(a) - mean(b), with Cohen's d (pooled SD)."""
    x, y = a.dropna().to_numpy(float), b.dropna().to_numpy(float)
    result = stats.ttest_ind(x, y, equal_var=False)
    ci = result.confidence_interval(0.95)
    pooled = math.sqrt(((len(x) - 1) * x.var(ddof=1) + (len(y) - 1) * y.var(ddof=1)) / (len(x) + len(y) - 2))
    return {
        "statistic": float(result.statistic), "df": float(result.df), "p": float(result.pvalue),
        "ci_low": float(ci.low), "ci_high": float(ci.high),
        "difference": float(x.mean() - y.mean()), "effect": float((x.mean() - y.mean()) / pooled) if pooled else float("nan"),
    }


def paired(a: pd.Series, b: pd.Series) -> dict[str, float]:
    """Paired t-test of a - b over rows where both are present, with Cohen's d_z."""
    both = pd.concat([a, b], axis=1).dropna()
    x, y = both.iloc[:, 0].to_numpy(float), both.iloc[:, 1].to_numpy(float)
    result = stats.ttest_rel(x, y)
    ci = result.confidence_interval(0.95)
    diff = x - y
    sd = diff.std(ddof=1)
    return {
        "statistic": float(result.statistic), "df": float(result.df), "p": float(result.pvalue),
        "ci_low": float(ci.low), "ci_high": float(ci.high),
        "difference": float(diff.mean()), "effect": float(diff.mean() / sd) if sd else float("nan"),
    }


def _enough(a: pd.Series, b: pd.Series, minimum: int = 2) -> bool:
    return a.notna().sum() >= minimum and b.notna().sum() >= minimum


def experiment1_tests(runs: pd.DataFrame) -> list[TestResult]:
    """Contrasts between conditions within each setting, on three units of analysis.

    ``runs`` has one row per persona-run (``Frames.exp1_runs``). A run (one epoch of one eval)
    is summarised by its mean over personas: the study's "independent runs". Persona-runs are
    the finest unit (more power, but runs of one persona are correlated); persona means pair
    the conditions persona by persona.
    """
    results: list[TestResult] = []
    for setting, group in runs.groupby("setting", sort=True):
        for a, b in EXP1_CONTRASTS:
            ga, gb = group[group["condition"] == a], group[group["condition"] == b]
            if ga.empty or gb.empty:
                continue
            for measure in ("final", "slope"):
                ra, rb = ga.groupby("run")[measure].mean(), gb.groupby("run")[measure].mean()
                if _enough(ra, rb):
                    results.append(_result("iterative_feedback", setting, measure, a, b,
                                           "Welch t-test (runs; personas averaged)", ra, rb, welch(ra, rb), "Cohen's d"))
                if _enough(ga[measure], gb[measure]):
                    res = welch(ga[measure], gb[measure])
                    results.append(_result("iterative_feedback", setting, measure, a, b,
                                           "Welch t-test (persona-runs)", ga[measure], gb[measure], res, "Cohen's d"))
                # persona level: average each persona's runs, pair personas present in both
                pa = ga.groupby("persona")[measure].mean()
                pb = gb.groupby("persona")[measure].mean()
                common = pa.index.intersection(pb.index)
                pa, pb = pa.loc[common], pb.loc[common]
                if (pa.notna() & pb.notna()).sum() >= 2:
                    res = paired(pa, pb)
                    results.append(_result("iterative_feedback", setting, measure, a, b,
                                           "paired t-test (persona means)", pa, pb, res, "Cohen's d_z", paired_n=True))
    return results


def snippet_means(exp2: pd.DataFrame) -> pd.DataFrame:
    """One row per (setting, snippet), one column per response type: the mean over runs of the
    ratings present (NaN when every run's rating is missing)."""
    return exp2.groupby(["setting", "snippet", "response_type"])["rating"].mean().unstack("response_type")


def experiment2_tests(exp2: pd.DataFrame) -> list[TestResult]:
    """Paired t-tests over snippets (each snippet's runs averaged first)."""
    results: list[TestResult] = []
    for setting, wide in snippet_means(exp2).groupby(level="setting", sort=True):
        for a, b in EXP2_CONTRASTS:
            if a not in wide or b not in wide:
                continue
            both = (wide[a].notna() & wide[b].notna()).sum()
            if both < 2:
                continue
            res = paired(wide[a], wide[b])
            results.append(_result("human_comparison", setting, "rating", a, b,
                                   "paired t-test (snippets)", wide[a], wide[b], res, "Cohen's d_z", paired_n=True))
    return results


def _result(experiment: str, setting: str, measure: str, a: str, b: str, test: str,
            xa: pd.Series, xb: pd.Series, res: dict[str, float], effect_size: str, paired_n: bool = False) -> TestResult:
    if paired_n:  # n is the number of complete pairs; missing counts each side's missing ratings
        both = xa.notna() & xb.notna()
        n_a = n_b = int(both.sum())
        missing_a, missing_b = int(xa.isna().sum()), int(xb.isna().sum())
        mean_a, mean_b = float(xa[both].mean()), float(xb[both].mean())
    else:
        n_a, n_b = int(xa.notna().sum()), int(xb.notna().sum())
        missing_a, missing_b = int(xa.isna().sum()), int(xb.isna().sum())
        mean_a, mean_b = float(xa.mean()), float(xb.mean())
    return TestResult(experiment=experiment, setting=setting, measure=measure, a=a, b=b, test=test,
                      n_a=n_a, n_b=n_b, missing_a=missing_a, missing_b=missing_b, mean_a=mean_a, mean_b=mean_b,
                      effect_size=effect_size, **res)


def results_frame(results: list[TestResult]) -> pd.DataFrame:
    columns = list(TestResult.__dataclass_fields__)
    return pd.DataFrame([asdict(r) for r in results], columns=columns)


def mean_ci(values: pd.Series) -> tuple[float, float, float, int]:
    """Mean and 95% t-interval of the non-missing values, and their n."""
    x = values.dropna().to_numpy(float)
    n = len(x)
    if n == 0:
        return float("nan"), float("nan"), float("nan"), 0
    mean = float(x.mean())
    if n < 2:
        return mean, float("nan"), float("nan"), n
    half = float(stats.t.ppf(0.975, n - 1) * x.std(ddof=1) / np.sqrt(n))
    return mean, mean - half, mean + half, n
