"""Experiment 1's primary analysis: a linear mixed model with crossed random intercepts.

    rating ~ condition * session   (session counted from 0 at the first session)
    random intercepts: persona; run within condition; persona x condition; persona-run

Personas are crossed with conditions (every persona is simulated under every condition) and
runs are nested within conditions; the sessions of one persona-run share a dialogue, hence the
persona-run intercept. A component enters only when the data can tell it apart from the others
(e.g. run needs two runs in a condition; persona x condition needs a persona with two runs in
one condition). Fitted by REML with statsmodels ``MixedLM`` (variance components on one group,
the standard way to express crossed effects there).

Inference is a cluster bootstrap over personas and runs (resampling personas, and runs within
each condition, with replacement: the "pigeonhole" bootstrap for crossed designs). Model-based
standard errors would treat each persona-run's slope as known up to residual noise; the
bootstrap keeps whatever varies between personas and runs. A full REML refit per resample
takes seconds at the paper's size, so each resample re-estimates the fixed effects by GLS with
the variance components held at the full-data estimates. The CI is estimate ± t(df) x bootstrap
SE, df = min(personas - 1, runs - conditions): the smaller number of independent clusters.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import linalg, sparse, stats
from threadpoolctl import threadpool_limits

DEFAULT_BOOTSTRAP = 200
DEFAULT_SEED = 0

COMPONENTS = ("persona", "run", "persona_condition", "persona_run")


@dataclass
class MixedSettings:
    """How the mixed model is fitted and bootstrapped."""

    bootstrap: int = DEFAULT_BOOTSTRAP
    """Cluster-bootstrap resamples (0: no bootstrap, no CIs)."""
    seed: int = DEFAULT_SEED
    reference: str = "none"
    """Reference condition of the treatment coding (any condition present if absent)."""


@dataclass
class ContrastEstimate:
    estimate: float
    se_model: float
    se_boot: float
    ci_low: float
    ci_high: float
    statistic: float
    df: float
    p: float
    reason: str = ""


@dataclass
class MixedFit:
    """A fitted model (``status`` "fitted") or the plain reason it could not be fitted."""

    status: str
    reason: str = ""
    n_obs: int = 0
    n_missing: int = 0
    n_personas: int = 0
    n_runs: int = 0
    conditions: list[str] = field(default_factory=list)
    reference: str = ""
    components: dict[str, float] = field(default_factory=dict)
    """Variance of each random intercept, and ``residual``."""
    omitted: dict[str, str] = field(default_factory=dict)
    """Random components left out, with the reason."""
    params: pd.Series | None = None
    cov_model: pd.DataFrame | None = None
    boot: np.ndarray | None = None
    boot_failed: int = 0
    cluster_df: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def fitted(self) -> bool:
        return self.status == "fitted"

    def vector(self, a: str, b: str, session: float | None) -> np.ndarray:
        """Weights on the fixed effects for a - b: the slope difference (``session`` None) or the
        difference at session number ``session``."""
        assert self.params is not None
        w = np.zeros(len(self.params))
        names = list(self.params.index)
        for condition, sign in ((a, 1.0), (b, -1.0)):
            if condition == self.reference:
                continue
            level = f"C(condition, Treatment({self.reference!r}))[T.{condition}]"
            if session is None:
                w[names.index(f"{level}:t")] += sign
            else:
                w[names.index(level)] += sign
                w[names.index(f"{level}:t")] += sign * (session - 1)
        return w

    def contrast(self, weights: np.ndarray) -> ContrastEstimate:
        """Estimate, model and bootstrap SE, and the bootstrap-t CI and p of ``weights @ params``."""
        assert self.params is not None and self.cov_model is not None
        estimate = float(weights @ self.params.to_numpy())
        se_model = float(math.sqrt(max(weights @ self.cov_model.to_numpy() @ weights, 0.0)))
        nan = float("nan")
        if self.boot is None or len(self.boot) < 2:
            return ContrastEstimate(estimate, se_model, nan, nan, nan, nan, nan, nan,
                                    reason=self.notes[-1] if self.notes else "no bootstrap")
        se_boot = float(np.std(self.boot @ weights, ddof=1))
        if self.cluster_df < 1:
            return ContrastEstimate(estimate, se_model, se_boot, nan, nan, nan, nan, nan,
                                    reason="too few personas or runs per condition for a cluster bootstrap")
        if not se_boot > 1e-12 * max(1.0, abs(estimate)):
            return ContrastEstimate(estimate, se_model, se_boot, nan, nan, nan, nan, nan,
                                    reason="the estimate does not vary across bootstrap resamples: no CI or p")
        df = float(self.cluster_df)
        half = float(stats.t.ppf(0.975, df)) * se_boot
        t = estimate / se_boot
        return ContrastEstimate(estimate, se_model, se_boot, estimate - half, estimate + half, t, df,
                                float(2 * stats.t.sf(abs(t), df)))

    def fixed_effects(self) -> pd.DataFrame:
        """Every fixed effect with model SE and bootstrap CI."""
        assert self.params is not None
        rows = []
        for i, name in enumerate(self.params.index):
            w = np.zeros(len(self.params))
            w[i] = 1.0
            c = self.contrast(w)
            rows.append({"term": _term_label(str(name)), "estimate": c.estimate, "se_model": c.se_model,
                         "se_bootstrap": c.se_boot, "ci_low": c.ci_low, "ci_high": c.ci_high, "p": c.p})
        return pd.DataFrame(rows, columns=["term", "estimate", "se_model", "se_bootstrap", "ci_low", "ci_high", "p"])


def _term_label(name: str) -> str:
    """``C(condition, Treatment('none'))[T.expert]:t`` -> ``condition[expert] x session``."""
    if "[T." in name:
        level = name.split("[T.")[1].split("]")[0]
        return f"condition[{level}]" + (" x session" if name.endswith(":t") else "")
    return {"Intercept": "intercept (reference condition, session 1)", "t": "session (reference condition)"}.get(name, name)


def _identifiable(d: pd.DataFrame) -> tuple[list[str], dict[str, str]]:
    keep, omitted = [], {}
    runs_per_condition = d.groupby("condition")["run"].nunique()
    units_per_persona = d.groupby("persona")["run"].nunique()
    runs_per_pc = d.groupby(["persona", "condition"])["run"].nunique()
    sessions_per_pr = d.groupby(["persona", "run"])["session"].nunique()
    rules = {
        "persona": (d["persona"].nunique() >= 2 and units_per_persona.max() >= 2,
                    "needs 2+ personas each seen in 2+ runs or conditions"),
        "run": (runs_per_condition.max() >= 2, "needs 2+ runs in a condition"),
        "persona_condition": (runs_per_pc.max() >= 2 and d["condition"].nunique() >= 2,
                              "needs a persona with 2+ runs in one condition, and 2+ conditions"),
        "persona_run": (sessions_per_pr.max() >= 2, "needs 2+ rated sessions in a persona-run"),
    }
    for name in COMPONENTS:
        ok, why = rules[name]
        if ok:
            keep.append(name)
        else:
            omitted[name] = why
    return keep, omitted


def _labels(d: pd.DataFrame) -> dict[str, pd.Series]:
    return {
        "persona": d["persona"].astype(str),
        "run": d["condition"].astype(str) + "|" + d["run"].astype(str),
        "persona_condition": d["persona"].astype(str) + "|" + d["condition"].astype(str),
        "persona_run": d["persona"].astype(str) + "|" + d["run"].astype(str),
    }


def fit_exp1_mixed(data: pd.DataFrame, settings: MixedSettings | None = None) -> MixedFit:
    """Fit the model to one setting's Experiment 1 rows (missing ratings are counted and left out).

    Args:
        data: Rows with ``condition``, ``persona``, ``run``, ``session``, ``rating``, ``missing``.
        settings: Bootstrap size, seed and reference condition.

    Returns:
        The fit, or a :class:`MixedFit` with ``status`` "not fitted" and the reason.
    """
    # Many small dense solves: one BLAS thread is ~10x faster than several spinning on a busy machine.
    with threadpool_limits(limits=1, user_api="blas"):
        return _fit(data, settings or MixedSettings())


def _fit(data: pd.DataFrame, settings: MixedSettings) -> MixedFit:
    import statsmodels.formula.api as smf  # slow to import; only when a model is fitted

    missing = data["missing"].astype(bool) | data["rating"].isna()
    d = data[~missing].copy()
    fit = MixedFit(status="not fitted", n_obs=len(d), n_missing=int(missing.sum()),
                   n_personas=d["persona"].nunique(), n_runs=d["run"].nunique(),
                   conditions=sorted(map(str, d["condition"].unique())))
    if d.empty:
        fit.reason = "no ratings"
        return fit
    if d["session"].nunique() < 2:
        fit.reason = "ratings from fewer than 2 sessions: no change across sessions to model"
        return fit
    if d["rating"].nunique() < 2:
        fit.reason = f"every rating equals {d['rating'].iloc[0]:g}: nothing varies, so there is nothing to model"
        return fit
    d["condition"] = d["condition"].astype(str)
    d["t"] = d["session"].astype(float) - 1.0
    fit.reference = settings.reference if settings.reference in fit.conditions else fit.conditions[0]
    components, fit.omitted = _identifiable(d)
    labels = _labels(d)
    for name in components:
        d[f"vc_{name}"] = labels[name]
    formula = (f"rating ~ C(condition, Treatment({fit.reference!r})) * t" if len(fit.conditions) > 1 else "rating ~ t")
    d["_group"] = 1
    vc = {name: f"0 + C(vc_{name})" for name in components}
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = smf.mixedlm(formula, d, groups="_group", re_formula="0", vc_formula=vc or None, use_sparse=False)
            result = model.fit(reml=True, method=["lbfgs", "powell"])
    except Exception as ex:  # singular designs and optimiser failures: say so, do not crash
        fit.reason = f"the model could not be fitted ({type(ex).__name__}: {ex})"
        return fit
    if not result.converged:
        fit.reason = "the REML optimiser did not converge"
        return fit
    fit.notes += sorted({str(w.message).splitlines()[0] for w in caught if "boundary" in str(w.message)})
    fit.status = "fitted"
    fit.params = result.fe_params
    fit.cov_model = result.cov_params().loc[result.fe_params.index, result.fe_params.index]
    vcomp = dict(zip(model.exog_vc.names, np.atleast_1d(result.vcomp))) if components else {}
    fit.components = {name: float(vcomp.get(name, 0.0)) for name in components}
    fit.components["residual"] = float(result.scale)
    runs_per_condition = d.groupby("condition")["run"].nunique()
    fit.cluster_df = int(min(fit.n_personas - 1, fit.n_runs - len(fit.conditions)))
    if settings.bootstrap >= 2 and runs_per_condition.min() >= 2 and fit.n_personas >= 2:
        fit.boot, fit.boot_failed = _bootstrap(d, model.exog, components, fit.components, settings)
        if fit.boot_failed:
            fit.notes.append(f"{fit.boot_failed} of {settings.bootstrap} bootstrap resamples could not be estimated")
    elif settings.bootstrap < 2:
        fit.notes.append("bootstrap switched off: no CIs or p-values")
    else:
        fit.notes.append("a condition has a single run: runs cannot be resampled, so no CIs or p-values")
    return fit


def gls(x: np.ndarray, y: np.ndarray, z: sparse.csr_matrix, variances: np.ndarray, residual: float) -> np.ndarray:
    """Fixed effects by generalised least squares for V = residual * I + Z diag(variances) Z'
    (Woodbury identity, so only a q x q system is solved)."""
    keep = variances > 1e-10 * residual
    z = z[:, np.flatnonzero(keep)]
    zxy = z.T @ np.column_stack([x, y])
    a = np.diag(residual / variances[keep]) + (z.T @ z).toarray()
    xy = np.column_stack([x, y])
    m = xy.T @ xy - zxy.T @ linalg.cho_solve(linalg.cho_factor(a), zxy)
    return np.linalg.solve(m[:-1, :-1], m[:-1, -1])


def _design_z(codes: dict[str, np.ndarray], sizes: dict[str, int], components: list[str],
              variance: dict[str, float]) -> tuple[sparse.csr_matrix, np.ndarray]:
    """Sparse indicator columns for each component from integer codes (unused columns are harmless)."""
    n = len(next(iter(codes.values())))
    blocks, variances = [], []
    for name in components:
        blocks.append(sparse.csr_matrix((np.ones(n), (np.arange(n), codes[name])), shape=(n, sizes[name])))
        variances.append(np.full(sizes[name], variance[name]))
    if not blocks:
        return sparse.csr_matrix((n, 0)), np.zeros(0)
    return sparse.hstack(blocks).tocsr(), np.concatenate(variances)


def _bootstrap(d: pd.DataFrame, exog: np.ndarray, components: list[str], variance: dict[str, float],
               settings: MixedSettings) -> tuple[np.ndarray | None, int]:
    rng = np.random.default_rng(settings.seed)
    y = d["rating"].to_numpy(float)
    personas = sorted(d["persona"].astype(str).unique())
    runs = {c: sorted(g["run"].astype(str).unique()) for c, g in d.groupby("condition")}
    n_p, n_c, n_r = len(personas), len(runs), max(len(r) for r in runs.values())
    sizes = {"persona": n_p, "run": n_c * n_r, "persona_condition": n_p * n_c, "persona_run": n_p * n_c * n_r}
    cells = d.reset_index(drop=True).groupby(
        [d["persona"].astype(str).to_numpy(), d["run"].astype(str).to_numpy()]).indices
    out, failed = [], 0
    for _ in range(settings.bootstrap):
        chosen_personas = rng.choice(n_p, n_p, replace=True)
        parts, codes = [], []
        for c, (condition, condition_runs) in enumerate(runs.items()):
            chosen_runs = rng.choice(len(condition_runs), len(condition_runs), replace=True)
            for j, r in enumerate(chosen_runs):
                for i, p in enumerate(chosen_personas):
                    idx = cells.get((personas[p], condition_runs[r]))
                    if idx is not None:
                        parts.append(idx)
                        codes.append(np.tile([i, c, j], (len(idx), 1)))
        rows = np.concatenate(parts)
        i, c, j = np.concatenate(codes).T
        labels = {"persona": i, "run": c * n_r + j, "persona_condition": i * n_c + c,
                  "persona_run": (i * n_c + c) * n_r + j}
        z, variances = _design_z(labels, sizes, components, variance)
        try:
            beta = gls(exog[rows], y[rows], z, variances, variance["residual"])
        except np.linalg.LinAlgError:
            failed += 1
            continue
        out.append(beta)
    return (np.array(out) if out else None), failed
