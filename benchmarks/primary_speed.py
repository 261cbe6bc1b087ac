"""Time and peak memory of Experiment 1's primary analysis at 15 and at 450 personas.

    python benchmarks/primary_speed.py                    # 15 and 450 personas
    python benchmarks/primary_speed.py --personas 15 60   # other sizes

Each size: a generated data set (5 runs x 6 sessions x 3 conditions, the calibration model of
benchmarks/calibration.py), then what ``psysim-report`` runs for one setting: the model
(``fit_exp1_mixed``) and every test of the setting (``setting_tests``: the primary and the
secondary contrasts on both measures, the paper rows). Each size runs in a fresh process so its
peak resident memory (ru_maxrss) is its own. Targets (issue 21): <= 5 s at 15 personas, <= 60 s
and <= 4 GB at 450.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def measure(personas: int) -> dict:
    from calibration import truth

    from psysim.analysis.exp1 import setting_tests
    from psysim.analysis.mixed import MixedSettings, fit_exp1_mixed
    from psysim.analysis.simulate import Design, simulate_exp1

    data = simulate_exp1(truth(0.5, 2.0), Design(personas=personas, runs=5, sessions=6), seed=1)
    start = time.perf_counter()
    fit = fit_exp1_mixed(data, MixedSettings(reference="none"))
    tests = setting_tests("sim", data, fit, ("expert", "none", "slope"))
    seconds = time.perf_counter() - start
    primary = next(t for t in tests if t.role == "primary")
    return {"personas": personas, "ratings": len(data), "seconds": seconds,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "primary": f"diff {primary.difference:.3f} [{primary.ci_low:.3f}, {primary.ci_high:.3f}], "
                       f"t({primary.df:.1f}) = {primary.statistic:.2f}, p = {primary.p:.3g}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--personas", type=int, nargs="*", default=[15, 450])
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(measure(args.one)))
        return
    for personas in args.personas:
        out = subprocess.run([sys.executable, __file__, "--one", str(personas)], check=True, capture_output=True, text=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{r['personas']:4d} personas ({r['ratings']} ratings): {r['seconds']:.2f} s, peak memory "
              f"{r['peak_mb']:.0f} MB (process); primary {r['primary']}")


if __name__ == "__main__":
    main()
