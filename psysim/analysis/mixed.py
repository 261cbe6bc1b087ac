"""Experiment 1's primary analysis: a two-stage mixed model of persona-run summaries.

Stage 1, sessions within a persona-run. Each persona-run (one persona's course in one run) is
reduced to one number per measure (:func:`psysim.analysis.frames.run_summary`): its
least-squares slope of rating on session (``slope``, points per session), its final-session
rating (``final``, points) or its mean rating over the rated sessions (``mean``, points). The
sessions of one course share a dialogue, so they are not independent; whatever they share (a
persona-run intercept, a persona-run slope, serial correlation) goes into the variation of the
summary, which the second stage estimates from the data.

Stage 2, persona-runs: summary ~ condition (one mean per condition) with random intercepts

    persona              every persona is simulated under every condition (crossed)
    persona x condition  a persona responds to a condition in its own way
    run                  runs are nested within conditions; a run's personas share its epoch
    residual             the persona-run

fitted by REML (:mod:`psysim.analysis.crossed_reml`, sparse: seconds at 450 personas). A
component that a preliminary likelihood-ratio test does not support (p > 0.25, "sometimes
pool") is pooled into the residual (:func:`fit_pooled`): a variance that is truly 0 is otherwise
estimated above 0 half the time, which widens the SE and shrinks the df for nothing. A contrast
a - b of condition means is the GLS estimate; the persona effect cancels in it, and persona x
condition and run variation, when kept, enter its SE. The t-test and CI use Satterthwaite df:
the run variance is estimated from few runs, and its uncertainty must widen the interval.

Why not the former REML fit of all ratings with a cluster bootstrap over personas and runs at
once: the bootstrap inflated the contrast's variance (2.3x on a 6 x 5 grid) and its df = min
(personas - 1, runs - conditions) ignored that persona effects cancel, so the test almost never
rejected (issue 21). ``benchmarks/calibration.py`` measures type-I error, coverage and power.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import linalg, stats
from threadpoolctl import threadpool_limits

from psysim.analysis.crossed_reml import CrossedFit, fit_crossed
from psysim.analysis.frames import run_summary

COMPONENTS = ("persona", "persona_condition", "run")
MEASURE_UNITS = {"slope": "points per session", "final": "points", "mean": "points"}
KEYS = ["condition", "persona", "run"]
POOL_ALPHA = 0.25
"""Preliminary-test level above which a variance component is pooled into the residual."""


@dataclass
class MixedSettings:
    """How the model is fitted."""

    reference: str = "none"
    """Condition listed first in the tables (any condition present if absent)."""


@dataclass
class ContrastEstimate:
    """A - b of one measure: the model's condition means, their difference, SE, CI, t, df, p."""

    mean_a: float
    mean_b: float
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    statistic: float
    df: float
    p: float
    reason: str = ""


@dataclass
class MeasureFit:
    """The second stage for one measure (``fit`` None and ``reason`` when it could not be fitted)."""

    measure: str
    n_units: int
    conditions: list[str]
    fit: CrossedFit | None = None
    reason: str = ""
    omitted: dict[str, str] = field(default_factory=dict)
    pooled: dict[str, tuple[float, float]] = field(default_factory=dict)
    """Components pooled into the residual: (variance in the model that had them, preliminary p)."""
    single_run: list[str] = field(default_factory=list)
    """Conditions with one run: their contrasts cannot be tested (no run variation to estimate)."""

    def notes(self) -> list[str]:
        if self.fit is None:
            return []
        notes = []
        for name, (variance, p) in self.pooled.items():
            if variance == 0.0:
                notes.append(f"{self.measure}: the variance of {name} is estimated at 0 (on the boundary of the "
                             "parameter space); it is pooled into the residual")
            else:
                notes.append(f"{self.measure}: the variance of {name} ({variance:.3g}) is pooled into the residual "
                             f"(preliminary likelihood-ratio test p = {p:.2f} > {POOL_ALPHA})")
        if not self.fit.information_ok:
            notes.append(f"{self.measure}: the information matrix of the variance components is not positive "
                         "definite: the Satterthwaite df are approximate")
        return notes


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
    units: pd.DataFrame | None = None
    """One row per persona-run with its summaries (:func:`run_summary`)."""
    measures: dict[str, MeasureFit] = field(default_factory=dict)

    @property
    def fitted(self) -> bool:
        return self.status == "fitted"

    def measure(self, name: str) -> MeasureFit:
        """The second stage of measure ``name``, fitted on first use."""
        if name not in self.measures:
            assert self.units is not None
            self.measures[name] = fit_measure(self.units, name, self.reference)
        return self.measures[name]

    def fit_all(self) -> MixedFit:
        """Every measure fitted (for the tables; the tests fit only what they use)."""
        for name in MEASURE_UNITS:
            self.measure(name)
        return self

    def contrast(self, a: str, b: str, measure: str) -> ContrastEstimate:
        """Condition a - condition b on ``measure`` with Satterthwaite t, CI and p."""
        m = self.measure(measure)
        nan = float("nan")
        if m.fit is None:
            return ContrastEstimate(nan, nan, nan, nan, nan, nan, nan, nan, nan, reason=m.reason)
        if a not in m.conditions or b not in m.conditions:
            return ContrastEstimate(nan, nan, nan, nan, nan, nan, nan, nan, nan,
                                    reason=f"no persona-run of {a if a not in m.conditions else b} has a {measure} value")
        wa, wb = _unit_vector(m.conditions, a), _unit_vector(m.conditions, b)
        mean_a, mean_b = float(wa @ m.fit.beta), float(wb @ m.fit.beta)
        single = [c for c in (a, b) if c in m.single_run]
        if single:
            return ContrastEstimate(mean_a, mean_b, mean_a - mean_b, nan, nan, nan, nan, nan, nan,
                                    reason=f"condition {' and '.join(single)} has a single run: the variation between "
                                           "runs cannot be estimated, so no CI or p")
        c = m.fit.contrast(wa - wb)
        if not c.se > 1e-12 * max(1.0, abs(c.estimate)) or not math.isfinite(c.df) or c.df <= 0:
            return ContrastEstimate(mean_a, mean_b, c.estimate, c.se, nan, nan, nan, nan, nan,
                                    reason="the contrast has no estimable variation: no CI or p")
        half = float(stats.t.ppf(0.975, c.df)) * c.se
        t = c.estimate / c.se
        return ContrastEstimate(mean_a, mean_b, c.estimate, c.se, c.estimate - half, c.estimate + half, t, c.df,
                                float(2 * stats.t.sf(abs(t), c.df)))

    def notes(self) -> list[str]:
        return [note for m in self.measures.values() for note in m.notes()]

    def fixed_effects(self) -> pd.DataFrame:
        """Each fitted measure's condition means with SE, Satterthwaite df and 95% CI."""
        rows = []
        for m in self.measures.values():
            if m.fit is None:
                continue
            for condition in m.conditions:
                c = m.fit.contrast(_unit_vector(m.conditions, condition))
                half = float(stats.t.ppf(0.975, c.df)) * c.se if math.isfinite(c.df) and c.df > 0 else float("nan")
                rows.append({"measure": m.measure, "unit": MEASURE_UNITS[m.measure], "condition": condition,
                             "persona-runs": int((self.units[m.measure].notna() & (self.units["condition"] == condition)).sum()),
                             "estimate": c.estimate, "se": c.se, "df": c.df,
                             "ci_low": c.estimate - half, "ci_high": c.estimate + half})
        return pd.DataFrame(rows, columns=["measure", "unit", "condition", "persona-runs", "estimate", "se", "df",
                                           "ci_low", "ci_high"])

    def components(self) -> pd.DataFrame:
        """Each fitted measure's variance components (and the components left out, with why)."""
        rows = []
        for m in self.measures.values():
            if m.fit is None:
                continue
            rows += [{"measure": m.measure, "component": k, "variance": v, "sd": math.sqrt(max(v, 0.0)), "note": ""}
                     for k, v in m.fit.components.items()]
            rows += [{"measure": m.measure, "component": k, "variance": v, "sd": math.sqrt(max(v, 0.0)),
                      "note": f"pooled into the residual (preliminary likelihood-ratio test p = {p:.2f} > {POOL_ALPHA})"}
                     for k, (v, p) in m.pooled.items()]
            rows += [{"measure": m.measure, "component": k, "variance": float("nan"), "sd": float("nan"),
                      "note": f"left out: {why}"} for k, why in m.omitted.items()]
        return pd.DataFrame(rows, columns=["measure", "component", "variance", "sd", "note"])


def _unit_vector(conditions: list[str], condition: str) -> np.ndarray:
    w = np.zeros(len(conditions))
    w[conditions.index(condition)] = 1.0
    return w


def _identifiable(units: pd.DataFrame) -> tuple[list[str], dict[str, str]]:
    """The random intercepts the persona-runs can tell apart from each other and from the residual."""
    per_persona = units.groupby("persona").size()
    runs_per_pc = units.groupby(["persona", "condition"])["run"].nunique()
    runs_per_condition = units.groupby("condition")["run"].nunique()
    personas_per_run = units.groupby(["condition", "run"])["persona"].nunique()
    rules = {
        "persona": (units["persona"].nunique() >= 2 and per_persona.max() >= 2,
                    "needs 2+ personas, one of them seen in 2+ persona-runs"),
        "persona_condition": (units["condition"].nunique() >= 2 and runs_per_pc.max() >= 2,
                              "needs 2+ conditions and a persona with 2+ runs in one condition"),
        "run": (runs_per_condition.max() >= 2 and personas_per_run.max() >= 2,
                "needs 2+ runs in a condition and 2+ personas in a run"),
    }
    keep = [name for name in COMPONENTS if rules[name][0]]
    return keep, {name: why for name, (ok, why) in rules.items() if not ok}


def _codes(units: pd.DataFrame) -> dict[str, np.ndarray]:
    persona = units["persona"].astype(str)
    run = units["condition"].astype(str) + "|" + units["run"].astype(str)
    pc = persona + "|" + units["condition"].astype(str)
    return {"persona": pd.factorize(persona, sort=True)[0], "persona_condition": pd.factorize(pc, sort=True)[0],
            "run": pd.factorize(run, sort=True)[0]}


def fit_measure(units: pd.DataFrame, measure: str, reference: str) -> MeasureFit:
    """The second stage for one measure from the persona-run summaries."""
    d = units[units[measure].notna()].sort_values(KEYS, kind="stable").reset_index(drop=True)
    conditions = sorted(map(str, d["condition"].unique()), key=lambda c: (c != reference, c))
    m = MeasureFit(measure=measure, n_units=len(d), conditions=conditions)
    if d.empty:
        m.reason = f"no persona-run has a {measure} value"
        return m
    y = d[measure].to_numpy(float)
    if len(d) <= len(conditions):
        m.reason = f"{len(d)} persona-run(s) with a {measure} value for {len(conditions)} condition(s): too few to estimate any variation"
        return m
    if np.ptp(y) <= 1e-9 * max(1.0, float(np.abs(y).max())):
        m.reason = f"every persona-run's {measure} equals {y[0]:g}: nothing varies, so there is nothing to model"
        return m
    x = (d["condition"].astype(str).to_numpy()[:, None] == np.array(conditions)[None, :]).astype(float)
    within = y - x @ np.linalg.lstsq(x, y, rcond=None)[0]
    if np.ptp(within) <= 1e-9 * max(1.0, float(np.abs(y).max())):
        # REML would put the residual variance at 0 and divide by it; say so instead
        m.reason = (f"no residual variation: every persona-run's {measure} equals its condition's mean, "
                    "so there is no variation to estimate an SE from")
        return m
    components, m.omitted = _identifiable(d)
    codes = _codes(d)
    try:
        # the solves are small or sparse: more BLAS threads only contend (7.9 s vs 1.0 s at 15
        # personas on a loaded 2-core machine), so one thread
        with threadpool_limits(1):
            m.fit, m.pooled = fit_pooled(x, y, {name: codes[name] for name in components})
    except (linalg.LinAlgError, np.linalg.LinAlgError, ValueError) as ex:
        m.reason = f"the model could not be fitted ({type(ex).__name__}: {ex})"
        return m
    runs = d.groupby("condition")["run"].nunique()
    m.single_run = sorted(str(c) for c, n in runs.items() if n < 2)
    return m


def fit_pooled(x: np.ndarray, y: np.ndarray, groups: dict[str, np.ndarray],
               alpha: float = POOL_ALPHA) -> tuple[CrossedFit, dict[str, tuple[float, float]]]:
    """REML fit after pooling, one at a time, the components a preliminary test does not support.

    "Sometimes pool" (Bozivich, Bancroft & Hartley 1956): a component whose REML likelihood-ratio
    test against the model without it has p > ``alpha`` (0.25, the classical choice) is pooled into
    the residual, least significant first, and the remaining ones are tested again. The statistic
    is referred to the 50:50 mixture of chi-square(0) and chi-square(1) (the variance sits on the
    boundary under the null); a component estimated at 0 has p = 1. Why: with few runs or personas
    a variance that is truly 0 is still estimated above 0 about half the time, and carrying it
    widens the SE and shrinks the Satterthwaite df (coverage 98.5% and power below the paired test
    in ``benchmarks/calibration.py``); a real component of the size that matters is kept.

    Returns the final fit and, per pooled component, (its variance in the model it was pooled from,
    the preliminary p).
    """
    fits: dict[tuple[str, ...], CrossedFit] = {}

    def fit(names: list[str]) -> CrossedFit:
        key = tuple(names)
        if key not in fits:
            fits[key] = fit_crossed(x, y, {name: groups[name] for name in names})
        return fits[key]

    kept, pooled = list(groups), {}
    while kept:
        full = fit(kept)
        p_values = {}
        for name in kept:
            if full.components[name] == 0.0:
                p_values[name] = 1.0
                continue
            statistic = fit([k for k in kept if k != name]).minus2_reml - full.minus2_reml
            p_values[name] = 0.5 * float(stats.chi2.sf(statistic, 1)) if statistic > 0 else 1.0
        weakest = max(kept, key=lambda name: (p_values[name], -kept.index(name)))
        if p_values[weakest] <= alpha:
            break
        pooled[weakest] = (full.components[weakest], p_values[weakest])
        kept.remove(weakest)
    return fit(kept), pooled


def fit_exp1_mixed(data: pd.DataFrame, settings: MixedSettings | None = None) -> MixedFit:
    """Stage 1 for one setting's Experiment 1 rows; stage 2 is fitted per measure on first use.

    Args:
        data: Rows with ``condition``, ``persona``, ``run``, ``session``, ``sessions``, ``rating``,
            ``missing`` (missing ratings are counted and left out).
        settings: The reference condition.

    Returns:
        The fit, or a :class:`MixedFit` with ``status`` "not fitted" and the reason.
    """
    settings = settings or MixedSettings()
    # one row order, so every sum (and the optimiser's path) is the same however the rows came
    data = data.sort_values(["condition", "persona", "run", "session"], kind="stable").reset_index(drop=True)
    missing = data["missing"].astype(bool) | data["rating"].isna()
    rated = data[~missing]
    conditions = sorted(map(str, rated["condition"].unique()))
    fit = MixedFit(status="not fitted", n_obs=len(rated), n_missing=int(missing.sum()),
                   n_personas=rated["persona"].nunique(), n_runs=rated["run"].nunique(), conditions=conditions)
    if rated.empty:
        fit.reason = "no ratings"
        return fit
    if rated["rating"].nunique() < 2:
        fit.reason = f"every rating equals {rated['rating'].iloc[0]:g}: nothing varies, so there is nothing to model"
        return fit
    fit.reference = settings.reference if settings.reference in conditions else conditions[0]
    fit.units = run_summary(data.assign(condition=data["condition"].astype(str)))
    fit.status = "fitted"
    return fit
