"""Known-groups validity of a rater: does its rating separate two groups of known quality?

For one level of analysis (snippets, or transcripts by their mean rating): the mean rating per
group, the difference high - low, and the AUC (the probability that a random high-group unit
is rated above a random low-group unit, ties counting one half: the Mann-Whitney U / (n1 n2)),
each with a percentile CI from a bootstrap that resamples transcripts within each group
(:mod:`psysim.analysis.bootstrap`): snippets of one transcript are correlated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from psysim.analysis.bootstrap import (
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    cluster_bootstrap,
    percentile_ci,
)

NAN = float("nan")
CHANCE = 0.5
DOES_NOT_SEPARATE = "this rater does not separate high- from low-quality counselling"
REVERSED = "this rater rates low-quality counselling higher than high-quality counselling"
SEPARATES = "this rater rates high-quality counselling higher (AUC above 0.5)"


def auc(high: np.ndarray, low: np.ndarray) -> float:
    """P(a high unit is rated above a low unit) + 1/2 P(tie); NaN when a group is empty."""
    x, y = np.asarray(high, float), np.asarray(low, float)
    if len(x) == 0 or len(y) == 0:
        return NAN
    greater = (x[:, None] > y[None, :]).sum()
    ties = (x[:, None] == y[None, :]).sum()
    return float((greater + 0.5 * ties) / (len(x) * len(y)))


def _difference(high: np.ndarray, low: np.ndarray) -> float:
    return float(np.mean(high) - np.mean(low)) if len(high) and len(low) else NAN


@dataclass
class KnownGroups:
    """One level's result (see the module docstring)."""

    level: str
    units: str
    n_high: int
    n_low: int
    transcripts_high: int
    transcripts_low: int
    mean_high: float
    mean_low: float
    difference: float
    difference_ci_low: float
    difference_ci_high: float
    auc: float
    auc_ci_low: float
    auc_ci_high: float
    verdict: str
    resamples: int
    seed: int


def verdict(auc_low: float, auc_high: float) -> str:
    """The plain statement for an AUC CI: a CI that includes 0.5 does not separate the groups."""
    if np.isnan(auc_low) or np.isnan(auc_high) or auc_low <= CHANCE <= auc_high:
        return DOES_NOT_SEPARATE
    return SEPARATES if auc_low > CHANCE else REVERSED


def known_groups(
    level: str,
    units: str,
    high: list[np.ndarray],
    low: list[np.ndarray],
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> KnownGroups:
    """Group means, difference and AUC with bootstrap CIs over transcripts.

    Args:
        level: Name of the level (e.g. ``snippet``).
        units: What one value is (e.g. ``snippets (runs averaged)``).
        high: Per high-group transcript, the array of its unit values (one value per transcript
            at the transcript level); missing values already removed.
        low: The same for the low group.
        resamples: Bootstrap resamples.
        seed: Bootstrap seed.
    """
    high = [np.asarray(c, float) for c in high if len(c)]
    low = [np.asarray(c, float) for c in low if len(c)]
    x = np.concatenate(high) if high else np.array([])
    y = np.concatenate(low) if low else np.array([])
    point_auc, point_diff = auc(x, y), _difference(x, y)
    d_ci = a_ci = (NAN, NAN)
    if high and low and resamples >= 2:
        both = cluster_bootstrap([high, low], lambda s: auc(s[0], s[1]), resamples, seed)
        a_ci = percentile_ci(both)
        d_ci = percentile_ci(cluster_bootstrap([high, low], lambda s: _difference(s[0], s[1]), resamples, seed))
    return KnownGroups(
        level=level, units=units, n_high=len(x), n_low=len(y), transcripts_high=len(high), transcripts_low=len(low),
        mean_high=float(x.mean()) if len(x) else NAN, mean_low=float(y.mean()) if len(y) else NAN,
        difference=point_diff, difference_ci_low=d_ci[0], difference_ci_high=d_ci[1],
        auc=point_auc, auc_ci_low=a_ci[0], auc_ci_high=a_ci[1],
        verdict=verdict(*a_ci) if high and low else
        f"not testable: no rated {' or '.join(g for g, c in (('high', high), ('low', low)) if not c)}-quality {units.split(' ')[0]}",
        resamples=resamples, seed=seed,
    )
