"""Tests with their n, missing counts and effect sizes; a test that cannot be computed says
"not testable" and why, never inf, 0 or nan.

Each :class:`TestResult` has a ``role``: ``primary`` (one pre-declared test per experiment),
``secondary`` (Holm-adjusted within the experiment and setting), ``descriptive`` (shown, not
corrected or summarised: e.g. Welch over persona-runs, which treats a persona's runs as
independent) or ``paper`` (the paper's apparent unit, for the side-by-side comparison only).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import stats

PRIMARY, SECONDARY, DESCRIPTIVE, PAPER = "primary", "secondary", "descriptive", "paper"
OK, NOT_TESTABLE = "ok", "not testable"
NAN = float("nan")


@dataclass
class TestResult:
    experiment: str
    setting: str
    measure: str
    a: str
    b: str
    test: str
    unit: str
    role: str
    status: str
    reason: str
    n_a: int
    n_b: int
    missing_a: int
    missing_b: int
    missing_within: int
    """Ratings missing inside the units used (averaged away), e.g. a persona-run inside a run."""
    mean_a: float
    mean_b: float
    difference: float
    ci_low: float
    ci_high: float
    statistic: float
    df: float
    p: float
    p_holm: float
    effect_size: str
    effect: float

    __test__ = False  # not a pytest test class


@dataclass
class Estimate:
    """What a test computed (all NaN and a reason when it could not)."""

    difference: float = NAN
    ci_low: float = NAN
    ci_high: float = NAN
    statistic: float = NAN
    df: float = NAN
    p: float = NAN
    reason: str = ""


def welch(a: pd.Series, b: pd.Series, unit: str = "units") -> Estimate:
    """Welch's t-test of mean(a) - mean(b), or the reason it cannot be computed."""
    x, y = a.dropna().to_numpy(float), b.dropna().to_numpy(float)
    if len(x) < 2 or len(y) < 2:
        return Estimate(difference=_diff(x, y), reason=f"needs at least 2 {unit} per side (have {len(x)} and {len(y)})")
    scale = max(1.0, float(np.abs(np.concatenate([x, y])).max()))
    if x.std(ddof=1) <= 1e-9 * scale and y.std(ddof=1) <= 1e-9 * scale:  # rounding-level spread is none
        return Estimate(difference=_diff(x, y),
                        reason="no variation within either side (every value equal within each side): t is undefined")
    with warnings.catch_warnings():  # near-equal values: the reason above, or a t that is still defined
        warnings.filterwarnings("ignore", message="Precision loss", category=RuntimeWarning)
        result = stats.ttest_ind(x, y, equal_var=False)
    ci = result.confidence_interval(0.95)
    return Estimate(float(x.mean() - y.mean()), float(ci.low), float(ci.high), float(result.statistic),
                    float(result.df), float(result.pvalue))


def paired(a: pd.Series, b: pd.Series, unit: str = "pairs") -> Estimate:
    """Paired t-test of a - b over rows where both are present, or the reason it cannot be computed."""
    both = pd.concat([a, b], axis=1).dropna()
    diff = (both.iloc[:, 0] - both.iloc[:, 1]).to_numpy(float)
    if len(diff) < 2:
        return Estimate(difference=float(diff.mean()) if len(diff) else NAN,
                        reason=f"needs at least 2 complete {unit} (have {len(diff)})")
    # a spread at rounding level (e.g. 57.17 - 32.17 vs 25.0) is no spread: t would be ~1e16
    if diff.std(ddof=1) <= 1e-9 * max(1.0, float(np.abs(diff).max())):
        return Estimate(difference=float(diff.mean()),
                        reason=f"every paired difference equals {diff[0]:.6g}: t is undefined")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Precision loss", category=RuntimeWarning)
        result = stats.ttest_rel(both.iloc[:, 0].to_numpy(float), both.iloc[:, 1].to_numpy(float))
    ci = result.confidence_interval(0.95)
    return Estimate(float(diff.mean()), float(ci.low), float(ci.high), float(result.statistic),
                    float(result.df), float(result.pvalue))


def _diff(x: np.ndarray, y: np.ndarray) -> float:
    return float(x.mean() - y.mean()) if len(x) and len(y) else NAN


def pooled_sd(a: pd.Series, b: pd.Series) -> float:
    """SD pooled within the two groups (NaN with fewer than 3 values or no variation)."""
    x, y = a.dropna().to_numpy(float), b.dropna().to_numpy(float)
    dof = len(x) + len(y) - 2
    if dof < 1:
        return NAN
    ss = (((x - x.mean()) ** 2).sum() if len(x) else 0.0) + (((y - y.mean()) ** 2).sum() if len(y) else 0.0)
    sd = math.sqrt(ss / dof)
    return sd if sd > 0 else NAN


def result(experiment: str, setting: str, measure: str, a: str, b: str, test: str, unit: str, role: str,
           xa: pd.Series, xb: pd.Series, estimate: Estimate, effect_size: str, sd: float,
           paired_units: bool = False, missing_within: int = 0) -> TestResult:
    """A :class:`TestResult` from the two sides' unit values and what the test computed.

    ``effect`` is the difference divided by ``sd`` (named in ``effect_size``); NaN when not testable.
    """
    if paired_units:  # n is the number of complete pairs; missing counts each side's missing units
        both = xa.notna() & xb.notna()
        n_a = n_b = int(both.sum())
        mean_a, mean_b = _mean(xa[both]), _mean(xb[both])
    else:
        n_a, n_b = int(xa.notna().sum()), int(xb.notna().sum())
        mean_a, mean_b = _mean(xa), _mean(xb)
    testable = not estimate.reason
    effect = estimate.difference / sd if testable and sd and not math.isnan(sd) else NAN
    return TestResult(
        experiment=experiment, setting=setting, measure=measure, a=a, b=b, test=test, unit=unit, role=role,
        status=OK if testable else NOT_TESTABLE, reason=estimate.reason, n_a=n_a, n_b=n_b,
        missing_a=int(xa.isna().sum()), missing_b=int(xb.isna().sum()), missing_within=int(missing_within),
        mean_a=mean_a, mean_b=mean_b, difference=estimate.difference, ci_low=estimate.ci_low,
        ci_high=estimate.ci_high, statistic=estimate.statistic, df=estimate.df, p=estimate.p, p_holm=NAN,
        effect_size=effect_size, effect=effect,
    )


def not_testable(experiment: str, setting: str, measure: str, a: str, b: str, test: str, unit: str, role: str,
                 reason: str, effect_size: str = "") -> TestResult:
    """A row for a test that could not even be set up (e.g. a condition with no logs)."""
    empty = pd.Series(dtype=float)
    return result(experiment, setting, measure, a, b, test, unit, role, empty, empty, Estimate(reason=reason),
                  effect_size, NAN)


def _mean(x: pd.Series) -> float:
    x = x.dropna()
    return float(x.mean()) if len(x) else NAN


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values (same order as given)."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [NAN] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def apply_holm(results: list[TestResult]) -> None:
    """Fill ``p_holm`` for the testable secondary tests, per (experiment, setting); the primary
    test keeps its own p (pre-declared); descriptive and paper rows are left out."""
    families: dict[tuple[str, str], list[TestResult]] = {}
    for r in results:
        if r.role == PRIMARY and r.status == OK:
            r.p_holm = r.p
        if r.role == SECONDARY and r.status == OK:
            families.setdefault((r.experiment, r.setting), []).append(r)
    for family in families.values():
        for r, adjusted in zip(family, holm([r.p for r in family])):
            r.p_holm = adjusted


def results_frame(results: list[TestResult]) -> pd.DataFrame:
    columns = [f for f in TestResult.__dataclass_fields__]
    return pd.DataFrame([asdict(r) for r in results], columns=columns)


def mean_ci(values: pd.Series) -> tuple[float, float, float, int]:
    """Mean and 95% t-interval of the non-missing values, and their n (interval NaN below n = 2)."""
    x = values.dropna().to_numpy(float)
    n = len(x)
    if n == 0:
        return NAN, NAN, NAN, 0
    mean = float(x.mean())
    if n < 2:
        return mean, NAN, NAN, n
    half = float(stats.t.ppf(0.975, n - 1) * x.std(ddof=1) / np.sqrt(n))
    return mean, mean - half, mean + half, n


def snippet_means(exp2: pd.DataFrame) -> pd.DataFrame:
    """One row per (setting, snippet), one column per response type: the mean over runs of the
    ratings present (NaN when every run's rating is missing)."""
    return exp2.groupby(["setting", "snippet", "response_type"])["rating"].mean().unstack("response_type")
