"""Experiment 1 ratings simulated with known effects, for tests, benchmarks and coverage studies.

rating = intercept[condition] + (slope[condition] + persona-run slope) * (session - 1)
         + persona + persona x condition + run (within condition) + persona-run + noise
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass
class Truth:
    """The generating model: fixed effects per condition and the SD of each random part."""

    intercept: dict[str, float] = field(default_factory=lambda: {"none": 40.0, "generic": 40.0, "expert": 40.0})
    slope: dict[str, float] = field(default_factory=lambda: {"none": 1.0, "generic": 1.5, "expert": 3.0})
    sd_persona: float = 4.0
    sd_persona_condition: float = 1.0
    sd_run: float = 2.0
    sd_run_slope: float = 0.0
    """SD of a run's slope (within condition), shared by the run's personas."""
    sd_persona_run: float = 1.5
    sd_persona_run_slope: float = 0.0
    sd_residual: float = 2.0


@dataclass
class Design:
    personas: int = 15
    runs: int = 5
    sessions: int = 6


def simulate_exp1(truth: Truth, design: Design, seed: int = 0, setting: str = "sim") -> pd.DataFrame:
    """One row per (condition, persona, run, session), in the columns of the report's Experiment 1 frame."""
    rng = np.random.default_rng(seed)
    conditions = list(truth.intercept)
    persona = rng.normal(0, truth.sd_persona, design.personas)
    rows = []
    for condition in conditions:
        persona_condition = rng.normal(0, truth.sd_persona_condition, design.personas)
        for r in range(design.runs):
            run = f"{condition}-run{r + 1}:1"
            run_effect = rng.normal(0, truth.sd_run)
            # drawn only when present, so data sets without it stay as they were for a given seed
            run_slope = rng.normal(0, truth.sd_run_slope) if truth.sd_run_slope else 0.0
            for p in range(design.personas):
                level = truth.intercept[condition] + persona[p] + persona_condition[p] + run_effect
                level += rng.normal(0, truth.sd_persona_run)
                # drawn only when present, so data sets without it stay as they were for a given seed
                slope = truth.slope[condition] + run_slope + (rng.normal(0, truth.sd_persona_run_slope)
                                                  if truth.sd_persona_run_slope else 0.0)
                for s in range(1, design.sessions + 1):
                    rating = level + slope * (s - 1) + rng.normal(0, truth.sd_residual)
                    rows.append({"setting": setting, "condition": condition, "persona": f"p{p + 1:02d}",
                                 "run": run, "eval_id": run.split(":")[0], "epoch": 1, "session": s,
                                 "sessions": design.sessions, "rating": float(rating), "missing": False,
                                 "reason": "", "baseline": 30.0})
    return pd.DataFrame(rows)
