"""The satisfaction-vs-safety warning is calibrated (benchmarks/safety_calibration.py at a small
size, seeded): on simulated studies with a known truth, run through the report's own
``slope_table``, it rarely fires when safety is flat, its intervals cover the true slopes, and it
fires when safety falls or harmful sessions grow more frequent."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import safety_calibration  # noqa: E402

REPS, RUNS = 60, 5


@pytest.mark.parametrize("truth", ["null", "safety falls", "unsafe rises"])
def test_warning_rate_and_coverage(truth: str) -> None:
    result = safety_calibration.calibrate(safety_calibration.TRUTHS[truth], RUNS, REPS, seed=7)
    for key in ("satisfaction", "safety", "unsafe"):
        assert result[f"coverage {key}"] >= 0.85, (key, result)
    if truth == "null":  # false alarms: not demonstrably above the two one-sided 2.5% tests
        assert result["warning 99% low"] <= 0.05, result
    else:  # power at the paper's 5 runs (0.95 and 0.64 at 1,000 reps: docs/safety.md)
        assert result["warning rate"] >= 0.5, result
