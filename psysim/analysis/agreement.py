"""Agreement between raters: ICC(2,1), Krippendorff's alpha (interval) and Spearman, with CIs.

One implementation shared by every report section that compares raters: re-judging Client
LLMs (rater validity), test-retest of one rater across epochs, and human raters against the
Client LLM. Each statistic returns an :class:`Agreement` that carries its n and, when it
cannot be computed, NaN with the reason, so a report can say plainly why a number is absent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from psysim.analysis.bootstrap import DEFAULT_RESAMPLES, DEFAULT_SEED, percentile_ci

NAN = float("nan")


@dataclass(frozen=True)
class Agreement:
    """One agreement statistic with its 95% CI and the data it rests on."""

    statistic: str
    value: float
    ci_low: float
    ci_high: float
    n_items: int
    n_raters: int
    n_dropped: int = 0
    note: str = ""


def _not_computable(statistic: str, n_items: int, n_raters: int, n_dropped: int, note: str) -> Agreement:
    return Agreement(statistic, NAN, NAN, NAN, n_items, n_raters, n_dropped, note)


def wide_matrix(frame: pd.DataFrame, item: str, rater: str, value: str) -> tuple[np.ndarray, list, list]:
    """A long frame (one row per item and rater) as an items x raters matrix, NaN where absent.

    Raises:
        ValueError: if an item has two values from one rater (agreement needs one per pair).
    """
    duplicated = frame.duplicated([item, rater], keep=False)
    if duplicated.any():
        first = frame.loc[duplicated].iloc[0]
        raise ValueError(
            f"{int(duplicated.sum())} rows repeat an (item, rater) pair, e.g. {item}={first[item]!r}, "
            f"{rater}={first[rater]!r}: agreement needs one value per item and rater"
        )
    wide = frame.pivot(index=item, columns=rater, values=value)
    return wide.to_numpy(dtype=float), list(wide.index), list(wide.columns)


def icc_2_1(matrix: np.ndarray, level: float = 0.95) -> Agreement:
    """ICC(2,1): two-way random effects, absolute agreement, single rater (Shrout & Fleiss 1979).

    The CI is McGraw & Wong's (1996) F-based interval for ICC(A,1). Items with a missing value
    are dropped (the two-way ANOVA needs a complete matrix) and counted in ``n_dropped``.

    Args:
        matrix: Items x raters.
        level: Confidence level of the interval.
    """
    data = np.asarray(matrix, dtype=float)
    if data.ndim != 2:
        raise ValueError("icc_2_1 needs an items x raters matrix")
    complete = data[~np.isnan(data).any(axis=1)]
    n, k = complete.shape
    dropped = data.shape[0] - n
    if k < 2 or n < 2:
        return _not_computable("ICC(2,1)", n, k, dropped, "needs at least 2 raters and 2 fully rated items")
    grand = complete.mean()
    rows = complete.mean(axis=1)
    cols = complete.mean(axis=0)
    ms_rows = k * np.sum((rows - grand) ** 2) / (n - 1)
    ms_cols = n * np.sum((cols - grand) ** 2) / (k - 1)
    residual = complete - rows[:, None] - cols[None, :] + grand
    ms_error = np.sum(residual**2) / ((n - 1) * (k - 1))
    denominator = ms_rows + (k - 1) * ms_error + k * (ms_cols - ms_error) / n
    if denominator <= 0 or np.isclose(ms_rows, 0) and np.isclose(ms_error, 0):
        return _not_computable("ICC(2,1)", n, k, dropped, "no variance: every item got the same ratings")
    icc = (ms_rows - ms_error) / denominator
    low, high = _mcgraw_wong_ci(icc, ms_rows, ms_cols, ms_error, n, k, level)
    note = "no residual variance (raters differ by constants at most): no CI" if np.isnan(low) else ""
    return Agreement("ICC(2,1)", float(icc), low, high, n, k, dropped, note)


def _mcgraw_wong_ci(icc: float, ms_rows: float, ms_cols: float, ms_error: float, n: int, k: int,
                    level: float) -> tuple[float, float]:
    if icc >= 1 or ms_error == 0:
        return NAN, NAN
    alpha = 1 - level
    a = k * icc / (n * (1 - icc))
    b = 1 + k * icc * (n - 1) / (n * (1 - icc))
    # Satterthwaite degrees of freedom for the rater-and-error mean square.
    v = (a * ms_cols + b * ms_error) ** 2 / (
        (a * ms_cols) ** 2 / (k - 1) + (b * ms_error) ** 2 / ((n - 1) * (k - 1))
    )
    f_upper = stats.f.ppf(1 - alpha / 2, n - 1, v)
    f_lower = stats.f.ppf(1 - alpha / 2, v, n - 1)
    spread = k * ms_cols + (k * n - k - n) * ms_error
    low = n * (ms_rows - f_upper * ms_error) / (f_upper * spread + n * ms_rows)
    high = n * (f_lower * ms_rows - ms_error) / (spread + n * f_lower * ms_rows)
    return float(low), float(high)


def _alpha_interval(units: list[np.ndarray]) -> float:
    """Krippendorff's alpha, interval metric, from the pairable values of each unit."""
    values = np.concatenate(units)
    total = len(values)
    if total < 2:
        return NAN
    # Sum of squared differences over ordered pairs i != j is 2 (m * sum(v^2) - sum(v)^2).
    observed = sum(
        2 * (len(u) * np.sum(u**2) - np.sum(u) ** 2) / (len(u) - 1) for u in units
    ) / total
    expected = 2 * (total * np.sum(values**2) - np.sum(values) ** 2) / (total * (total - 1))
    if expected == 0:
        return NAN
    return float(1 - observed / expected)


def krippendorff_alpha(
    matrix: np.ndarray,
    level: str = "interval",
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> Agreement:
    """Krippendorff's alpha (interval metric) for units x raters with missing values as NaN.

    Units with fewer than two values are not pairable: dropped and counted. The 95% CI is the
    percentile interval of ``resamples`` bootstrap resamples of units (fixed ``seed``).
    """
    if level != "interval":
        raise ValueError(f"krippendorff_alpha: only the interval metric is implemented, not {level!r}")
    data = np.asarray(matrix, dtype=float)
    if data.ndim != 2:
        raise ValueError("krippendorff_alpha needs a units x raters matrix")
    units = [row[~np.isnan(row)] for row in data]
    pairable = [u for u in units if len(u) >= 2]
    dropped = len(units) - len(pairable)
    n_raters = data.shape[1]
    if len(pairable) < 2:
        return _not_computable("Krippendorff's alpha (interval)", len(pairable), n_raters, dropped,
                               "needs at least 2 units rated by 2 or more raters")
    value = _alpha_interval(pairable)
    if np.isnan(value):
        return _not_computable("Krippendorff's alpha (interval)", len(pairable), n_raters, dropped,
                               "no variance: every value is the same")
    rng = np.random.default_rng(seed)
    draws = np.empty(resamples)
    for r in range(resamples):
        picks = rng.integers(0, len(pairable), len(pairable))
        draws[r] = _alpha_interval([pairable[i] for i in picks])
    low, high = percentile_ci(draws)
    return Agreement("Krippendorff's alpha (interval)", value, low, high, len(pairable), n_raters, dropped)


def spearman(x, y, level: float = 0.95) -> Agreement:
    """Spearman's rho of paired values; pairs with a NaN are dropped and counted.

    The CI is Fisher's z with Bonett & Wright's (2000) standard error sqrt((1 + rho^2/2)/(n - 3)).
    """
    a = np.asarray(x, dtype=float)
    b = np.asarray(y, dtype=float)
    if a.shape != b.shape:
        raise ValueError("spearman needs two sequences of the same length")
    keep = ~(np.isnan(a) | np.isnan(b))
    a, b = a[keep], b[keep]
    n = len(a)
    dropped = int((~keep).sum())
    if n < 4:
        return _not_computable("Spearman rho", n, 2, dropped, "needs at least 4 complete pairs")
    if np.all(a == a[0]) or np.all(b == b[0]):
        return _not_computable("Spearman rho", n, 2, dropped, "no variance: one rater gave one value to every item")
    rho = float(stats.spearmanr(a, b).statistic)
    if abs(rho) >= 1:
        return Agreement("Spearman rho", rho, NAN, NAN, n, 2, dropped, "perfect rank agreement: no CI")
    z = np.arctanh(rho)
    half = stats.norm.ppf(1 - (1 - level) / 2) * np.sqrt((1 + rho**2 / 2) / (n - 3))
    return Agreement("Spearman rho", rho, float(np.tanh(z - half)), float(np.tanh(z + half)), n, 2, dropped)
