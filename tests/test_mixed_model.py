"""The mixed model of Experiment 1 on simulated data with known fixed effects and variances."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from psysim.analysis.frames import run_summary
from psysim.analysis.mixed import (
    COMPONENTS,
    MixedSettings,
    _design_z,
    fit_exp1_mixed,
    gls,
)
from psysim.analysis.simulate import Design, Truth, simulate_exp1

SMALL = Design(personas=8, runs=4, sessions=4)


def test_balanced_fixed_effects_equal_the_closed_form() -> None:
    """Balanced, complete data: GLS = OLS, so the condition x session term is the difference of the
    mean per-persona-run least-squares slopes, and the condition term the difference of intercepts."""
    data = simulate_exp1(Truth(), SMALL, seed=3)
    fit = fit_exp1_mixed(data, MixedSettings(bootstrap=0))
    assert fit.fitted
    runs = run_summary(data)
    slopes = runs.groupby("condition")["slope"].mean()
    assert fit.contrast(fit.vector("expert", "none", None)).estimate == pytest.approx(slopes["expert"] - slopes["none"], abs=1e-6)
    per_pr = data.groupby(["condition", "persona", "run"]).apply(
        lambda g: np.polyfit(g["session"] - 1, g["rating"], 1)[1], include_groups=False).groupby("condition").mean()
    assert fit.contrast(fit.vector("generic", "none", 1)).estimate == pytest.approx(per_pr["generic"] - per_pr["none"], abs=1e-6)
    assert "session" in fit.fixed_effects()["term"].iloc[3]


def test_bootstrap_gls_reproduces_statsmodels_on_unbalanced_data() -> None:
    """With ratings missing at random the design is unbalanced; GLS at the fitted variance
    components (the bootstrap's estimator) must give statsmodels' fixed effects."""
    data = simulate_exp1(Truth(), SMALL, seed=4)
    rng = np.random.default_rng(0)
    drop = rng.random(len(data)) < 0.15
    data.loc[drop, "rating"] = np.nan
    data.loc[drop, "missing"] = True
    fit = fit_exp1_mixed(data, MixedSettings(bootstrap=0))
    d = data[~data["missing"]].reset_index(drop=True)
    d["t"] = d["session"] - 1.0
    x = smf.ols("rating ~ C(condition, Treatment('none')) * t", d).exog
    runs = {c: sorted(g["run"].unique()) for c, g in d.groupby("condition")}
    personas = sorted(d["persona"].unique())
    conditions = sorted(runs)
    i = d["persona"].map(personas.index).to_numpy()
    c = d["condition"].map(conditions.index).to_numpy()
    j = np.array([runs[cond].index(run) for cond, run in zip(d["condition"], d["run"])])
    n_p, n_c, n_r = len(personas), len(conditions), SMALL.runs
    codes = {"persona": i, "run": c * n_r + j, "persona_condition": i * n_c + c, "persona_run": (i * n_c + c) * n_r + j}
    sizes = {"persona": n_p, "run": n_c * n_r, "persona_condition": n_p * n_c, "persona_run": n_p * n_c * n_r}
    z, variances = _design_z(codes, sizes, list(COMPONENTS), fit.components)
    beta = gls(x, d["rating"].to_numpy(), z, variances, fit.components["residual"])
    assert beta == pytest.approx(fit.params.to_numpy(), abs=1e-4)
    assert fit.n_missing == int(drop.sum())


def test_known_effects_are_recovered_and_covered() -> None:
    """Known truth: slope difference expert - none = 2.0 and generic - none = 0.5; the bootstrap CIs
    cover them in each of the simulated studies, and the variance components are near the truth."""
    truth = Truth()
    components = []
    for seed in (11, 12, 13):
        fit = fit_exp1_mixed(simulate_exp1(truth, Design(personas=10, runs=4, sessions=4), seed=seed),
                             MixedSettings(bootstrap=100, seed=seed))
        for a, true in (("expert", 2.0), ("generic", 0.5)):
            c = fit.contrast(fit.vector(a, "none", None))
            assert c.ci_low < true < c.ci_high, (seed, a, c)
            assert c.p < 0.05 if a == "expert" else True
        components.append(fit.components)
    mean = pd.DataFrame(components).mean()
    assert mean["residual"] == pytest.approx(truth.sd_residual**2, rel=0.2)
    assert mean["persona"] == pytest.approx(truth.sd_persona**2, rel=0.6)
    assert mean["run"] == pytest.approx(truth.sd_run**2, rel=0.8)


def test_plain_messages_when_the_model_cannot_be_fitted() -> None:
    one_session = simulate_exp1(Truth(), Design(personas=4, runs=2, sessions=1))
    fit = fit_exp1_mixed(one_session, MixedSettings(bootstrap=0))
    assert not fit.fitted and "fewer than 2 sessions" in fit.reason
    data = simulate_exp1(Truth(), Design(personas=4, runs=2, sessions=3))
    data["missing"] = True
    assert fit_exp1_mixed(data).reason == "no ratings"
