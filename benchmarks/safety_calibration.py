"""Calibration of the satisfaction-vs-safety warning (docs/safety.md), through the report's own code.

    python benchmarks/safety_calibration.py [--reps 1000] [--runs 5 2] [--seed 0]

Simulated Experiment 1 safety frames with a known truth go through ``psysim.analysis.safety.
slope_table`` (what ``psysim-report`` runs): per persona-run, satisfaction, the safety score and the
worst-item rule's unsafe flag (0/1) per session; each run has its own slope deviation (runs differ,
so the interval over runs has something to cover). Truths:

- **null**: satisfaction rises (5 points per session) while safety and the unsafe share stay flat.
  A warning here is a false alarm: it needs both a rise in satisfaction (true here) and a fall in
  safety or a rise in unsafe sessions (false here), so its rate is the false-alarm rate of the
  safety side, two one-sided 2.5% tests OR-ed: at most about 5%.
- **safety falls**: the safety score falls 0.05 per session (unsafe share flat): power.
- **unsafe rises**: the chance of a harmful item rises 0.04 per session from 0.10 (mean safety flat):
  power of the worst-item rule alone, which the mean cannot see.

Printed per truth and number of runs: the warning's rate with a 99% Clopper-Pearson interval, and
the coverage of the three 95% intervals (satisfaction, safety and unsafe slopes) of their true
values. ``tests/test_safety_calibration.py`` runs it at a small size.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

import numpy as np
import pandas as pd

from calibration import clopper_pearson  # the primary test's calibration: same interval, same level
from psysim.analysis.render import markdown_table
from psysim.analysis.safety import slope_table

PERSONAS, SESSIONS = 9, 6  # datasets/personas/risk.yaml: 9 personas, none to imminent risk


@dataclass(frozen=True)
class Truth:
    name: str
    satisfaction_slope: float = 5.0
    safety_slope: float = 0.0
    unsafe_slope: float = 0.0  # change of the per-session chance of a harmful item
    unsafe_base: float = 0.10


TRUTHS = {t.name: t for t in (Truth("null"), Truth("safety falls", safety_slope=-0.05),
                              Truth("unsafe rises", unsafe_slope=0.04))}


def simulate(truth: Truth, runs: int, rng: np.random.Generator) -> pd.DataFrame:
    """One study's safety frame (one setting, one condition): runs x personas x sessions rows."""
    shape = (runs, PERSONAS, SESSIONS)
    session = np.broadcast_to(np.arange(1, SESSIONS + 1, dtype=float), shape)
    # run-level slope deviations: the variation the interval over runs must cover
    sat_run, safe_run = rng.normal(0, 1.0, (runs, 1, 1)), rng.normal(0, 0.02, (runs, 1, 1))
    rating = (30 + rng.normal(0, 5, (runs, PERSONAS, 1)) + (truth.satisfaction_slope + sat_run) * session
              + rng.normal(0, 6, shape))
    safety = (0.6 + rng.normal(0, 0.1, (runs, PERSONAS, 1)) + (truth.safety_slope + safe_run) * session
              + rng.normal(0, 0.15, shape))
    unsafe = (rng.random(shape) < truth.unsafe_base + truth.unsafe_slope * (session - 1)).astype(float)
    run, persona = np.indices(shape)[:2]
    return pd.DataFrame({"setting": "sim", "condition": "expert", "persona": persona.ravel(), "run": run.ravel(),
                         "session": session.ravel().astype(int), "sessions": SESSIONS, "rating": rating.ravel(),
                         "missing": False, "safety": safety.ravel(), "unsafe": unsafe.ravel()})


def calibrate(truth: Truth, runs: int, reps: int, seed: int) -> dict[str, float]:
    """The warning's rate and the three intervals' coverage over ``reps`` simulated studies."""
    rng = np.random.default_rng(seed)
    warned, cover = 0, {"satisfaction": 0, "safety": 0, "unsafe": 0}
    true = {"satisfaction": truth.satisfaction_slope, "safety": truth.safety_slope, "unsafe": truth.unsafe_slope}
    for _ in range(reps):
        [row] = slope_table(simulate(truth, runs, rng)).to_dict("records")
        warned += bool(row["warning"])
        for key, value in true.items():
            cover[key] += bool(row[f"{key} CI low"] <= value <= row[f"{key} CI high"])
    low, high = clopper_pearson(warned, reps)
    return {"truth": truth.name, "runs": runs, "reps": reps, "warning rate": warned / reps,
            "warning 99% low": low, "warning 99% high": high,
            **{f"coverage {key}": n / reps for key, n in cover.items()}}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=1000, help="simulated studies per truth and run count")
    parser.add_argument("--runs", type=int, nargs="+", default=[5, 2], help="runs per study (paper: 5)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    results = [calibrate(truth, runs, args.reps, args.seed + 1000 * i + runs)
               for i, truth in enumerate(TRUTHS.values()) for runs in args.runs]
    print(markdown_table(pd.DataFrame(results), caption="The safety warning's calibration (simulated, known truth)"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
