"""Cluster bootstrap within strata, reusable by any statistic over groups of units.

Units of one cluster (e.g. the snippets of one transcript, the sessions of one persona-run)
are correlated, so a CI must resample clusters, not units. Each stratum (e.g. the high- and the
low-quality group) keeps its number of clusters: clusters are drawn with replacement within
it, and the statistic is computed on the units of the drawn clusters.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

DEFAULT_RESAMPLES = 2000
DEFAULT_SEED = 0


def cluster_bootstrap(
    strata: Sequence[Sequence[np.ndarray]],
    statistic: Callable[[list[np.ndarray]], float],
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> np.ndarray:
    """The statistic on ``resamples`` cluster resamples.

    Args:
        strata: Per stratum, its clusters, each an array of the cluster's unit values.
        statistic: From one array of unit values per stratum (in the order of ``strata``) to a number.
        resamples: Number of resamples.
        seed: Seed of the resampling (numpy ``default_rng``): the same seed gives the same CI.

    Returns:
        One value per resample (NaN where the statistic is undefined on that resample).
    """
    if any(len(clusters) == 0 for clusters in strata):
        raise ValueError("every stratum needs at least one cluster")
    rng = np.random.default_rng(seed)
    values = np.empty(resamples)
    for r in range(resamples):
        drawn = []
        for clusters in strata:
            picks = rng.integers(0, len(clusters), len(clusters))
            drawn.append(np.concatenate([clusters[i] for i in picks]))
        values[r] = statistic(drawn)
    return values


def percentile_ci(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The percentile interval of the bootstrap values (NaN values left out; NaN if none)."""
    finite = values[~np.isnan(values)]
    if len(finite) == 0:
        return float("nan"), float("nan")
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)
