"""Calibration of Experiment 1's tests: type-I error, CI coverage and power on simulated studies.

    python benchmarks/calibration.py                      # 400 null + 400 effect data sets per setting, 2 processes
    python benchmarks/calibration.py --reps 40 --processes 1   # a quick look

Simulation model (SDs in rating points, :mod:`psysim.analysis.simulate`): persona intercept 5,
run (within condition) 2, persona x condition 2, persona-run intercept 2, persona-run slope 0.5,
residual 4; every condition intercept 40, slope 1 per session. **Null**: all three conditions
share intercept and slope. **Effect**: the expert slope is 0.5 points per session higher
(final-session difference 2.5 points, mean-over-sessions difference 1.25 points). Designs: the
paper's (4 personas x 5 runs x 6 sessions x 3 conditions) and the shipped default (15 x 5 x 6 x
3), each also at the boundary (run SD 0), and a sensitivity setting with a small run-level slope
SD (0.1 points per session, shared by a run's personas): there the primary must keep its type-I
error and coverage although its preliminary test often pools the run variance; the paired test
over personas ignores run variation and is liberal there, so it sets no power bound. Fixed
seeds: the same command prints the same table.

Each data set goes through the report's own functions (``fit_exp1_mixed`` and
``setting_tests``, as ``psysim-report`` calls them). For every expert-vs-none test: the share of
null data sets with p < .05 (type-I error), of effect data sets whose 95% CI covers the truth
(coverage) and with p < .05 (power), each with its 99% Clopper-Pearson interval. The primary
passes when its type-I interval contains 5%, its coverage interval contains 95% and its power
is at least the paired test over personas' power on the same data sets minus 2 Monte Carlo SEs
of the difference. Also printed: the primary's mean CI half-width over 1.96 x the empirical SD
of its estimate (1 when the SE is right; t quantiles make it a little larger).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from scipy import stats
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from psysim.analysis.exp1 import MEASURES, MIXED, PERSONA_RUNS, PERSONAS, RUNS, setting_tests  # noqa: E402
from psysim.analysis.mixed import MixedSettings, fit_exp1_mixed  # noqa: E402
from psysim.analysis.simulate import Design, Truth, simulate_exp1  # noqa: E402

EFFECT = 0.5
SESSIONS = 6
TRUE = {MEASURES["slope"]: EFFECT, MEASURES["final"]: EFFECT * (SESSIONS - 1)}
PRIMARY = (MIXED, MEASURES["slope"])
PAIRED = (PERSONAS, MEASURES["slope"])
TESTS = [(test, measure) for measure in (MEASURES["slope"], MEASURES["final"])
         for test in (MIXED, RUNS, PERSONAS, PERSONA_RUNS)]
SETTINGS = {  # name: (design, run SD, run slope SD, first seed)
    "paper 4x5x6x3": (Design(personas=4, runs=5, sessions=SESSIONS), 2.0, 0.0, 100_000),
    "default 15x5x6x3": (Design(personas=15, runs=5, sessions=SESSIONS), 2.0, 0.0, 200_000),
    "paper, run SD 0": (Design(personas=4, runs=5, sessions=SESSIONS), 0.0, 0.0, 300_000),
    "default, run SD 0": (Design(personas=15, runs=5, sessions=SESSIONS), 0.0, 0.0, 400_000),
    # sensitivity: a small real run-level slope variance, which the pooling rule must not hide
    # (the paired test over personas ignores it and is liberal here, so no power comparison)
    "default, run slope SD 0.1": (Design(personas=15, runs=5, sessions=SESSIONS), 2.0, 0.1, 500_000),
}
SENSITIVITY = {"default, run slope SD 0.1"}


def truth(effect: float, sd_run: float, sd_run_slope: float = 0.0) -> Truth:
    return Truth(intercept={"none": 40.0, "generic": 40.0, "expert": 40.0},
                 slope={"none": 1.0, "generic": 1.0, "expert": 1.0 + effect},
                 sd_persona=5.0, sd_persona_condition=2.0, sd_run=sd_run, sd_persona_run=2.0,
                 sd_persona_run_slope=0.5, sd_residual=4.0, sd_run_slope=sd_run_slope)


def one(job: tuple[str, bool, int]) -> tuple[str, bool, dict[tuple[str, str], tuple[float, float, float, float]]]:
    """(setting, effect?, seed) -> per test: (estimate, ci_low, ci_high, p), NaN when not testable."""
    name, effect, seed = job
    design, sd_run, sd_run_slope, _ = SETTINGS[name]
    data = simulate_exp1(truth(EFFECT if effect else 0.0, sd_run, sd_run_slope), design, seed=seed)
    fit = fit_exp1_mixed(data, MixedSettings(reference="none"))
    found = {}
    for t in setting_tests("sim", data, fit, ("expert", "none", "slope")):
        if (t.a, t.b) == ("expert", "none") and (t.test, t.measure) in TESTS:
            found[(t.test, t.measure)] = (t.difference, t.ci_low, t.ci_high, t.p)
    return name, effect, found


def _one_thread() -> None:
    # small matrices: BLAS threads in two processes on two cores only fight each other
    threadpool_limits(limits=1)


def clopper_pearson(k: int, n: int, level: float = 0.99) -> tuple[float, float]:
    a = 1 - level
    low = stats.beta.ppf(a / 2, k, n - k + 1) if k > 0 else 0.0
    high = stats.beta.ppf(1 - a / 2, k + 1, n - k) if k < n else 1.0
    return float(low), float(high)


@dataclass
class Rate:
    k: int
    n: int

    def text(self) -> str:
        if not self.n:
            return "–"
        low, high = clopper_pearson(self.k, self.n)
        return f"{self.k / self.n:.3f} [{low:.3f}, {high:.3f}]"


def summarise(name: str, null: list[dict], effect: list[dict]) -> tuple[list[str], bool, str]:
    lines, verdict = [], []
    for test, measure in TESTS:
        true = TRUE[measure]
        p0 = np.array([r[(test, measure)][3] for r in null])
        eff = np.array([r[(test, measure)] for r in effect])
        ok0, ok1 = ~np.isnan(p0), ~np.isnan(eff[:, 3])
        type1 = Rate(int((p0[ok0] < 0.05).sum()), int(ok0.sum()))
        cover = Rate(int(((eff[ok1, 1] <= true) & (true <= eff[ok1, 2])).sum()), int(ok1.sum()))
        power = Rate(int((eff[ok1, 3] < 0.05).sum()), int(ok1.sum()))
        role = "primary" if (test, measure) == PRIMARY else ("descriptive" if test == PERSONA_RUNS else "secondary")
        untestable = int((~ok0).sum() + (~ok1).sum())
        lines.append(f"| {name} | {role} | {test} | {measure} | {type1.text()} | {cover.text()} | {power.text()} | "
                     f"{untestable} |")
    # the primary's three bounds
    prim0 = np.array([r[PRIMARY][3] for r in null])
    prim = np.array([r[PRIMARY] for r in effect])
    paired = np.array([r[PAIRED][3] for r in effect])
    n0, n1 = len(prim0), len(prim)
    low, high = clopper_pearson(int((prim0 < 0.05).sum()), n0)
    verdict.append(("type-I", low <= 0.05 <= high))
    covered = int(((prim[:, 1] <= TRUE[PRIMARY[1]]) & (TRUE[PRIMARY[1]] <= prim[:, 2])).sum())
    low, high = clopper_pearson(covered, n1)
    verdict.append(("coverage", low <= 0.95 <= high))
    reject = (prim[:, 3] < 0.05).astype(float)
    reject_paired = np.where(np.isnan(paired), 0.0, (paired < 0.05).astype(float))
    diff = reject - reject_paired
    se = float(diff.std(ddof=1) / math.sqrt(n1)) if n1 > 1 else float("nan")
    if name not in SENSITIVITY:
        verdict.append(("power", reject.mean() >= reject_paired.mean() - 2 * se))
    half = (prim[:, 2] - prim[:, 1]) / 2
    ratio = float(np.nanmean(half) / (1.959964 * np.nanstd(prim[:, 0], ddof=1)))
    note = (f"{name}: primary power {reject.mean():.3f} vs paired over personas {reject_paired.mean():.3f} "
            f"(2 MC SE of the difference {2 * se:.3f}); CI half-width / (1.96 x SD of estimate) {ratio:.2f}; "
            + ", ".join(f"{k} {'PASS' if ok else 'FAIL'}" for k, ok in verdict))
    return lines, all(ok for _, ok in verdict), note


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=400, help="null and effect data sets per setting (default 400)")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--settings", nargs="*", default=list(SETTINGS), choices=list(SETTINGS))
    args = parser.parse_args()
    jobs = [(name, effect, SETTINGS[name][3] + (50_000 if effect else 0) + i)
            for name in args.settings for effect in (False, True) for i in range(args.reps)]
    start = time.perf_counter()
    results: dict[tuple[str, bool], list[dict]] = {}
    with Pool(args.processes, initializer=_one_thread) as pool:
        for name, effect, found in pool.imap_unordered(one, jobs, chunksize=8):
            results.setdefault((name, effect), []).append(found)
    seconds = time.perf_counter() - start
    print(f"{args.reps} null + {args.reps} effect data sets per setting, {args.processes} processes, "
          f"{seconds:.0f} s wall\n")
    print("| setting | role | test | measure | type-I error [99% CI] | coverage of 95% CI [99% CI] | power [99% CI] | "
          "not testable |")
    print("|---|---|---|---|---|---|---|---|")
    notes, passed = [], True
    for name in args.settings:
        lines, ok, note = summarise(name, results[(name, False)], results[(name, True)])
        print("\n".join(lines))
        notes.append(note)
        passed &= ok
    print()
    print("\n".join(notes))
    print(f"\nprimary test: {'meets all three bounds in every setting' if passed else 'FAILS a bound (see above)'}")


if __name__ == "__main__":
    main()
