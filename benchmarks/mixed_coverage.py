"""Coverage of the mixed model's cluster-bootstrap CIs on simulated studies with known truth.

    python benchmarks/mixed_coverage.py                       # 100 paper-size studies
    python benchmarks/mixed_coverage.py --reps 20 --personas 8 --runs 4 --sessions 4

Each replication simulates Experiment 1 (psysim.analysis.simulate: persona, persona x condition,
run, persona-run and residual variation with the SDs of ``Truth``), fits the report's model with
its default bootstrap, and records whether each 95% CI covers the true contrast. Too slow for
CI (seconds per replication); run it by hand after changing psysim/analysis/mixed.py.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from psysim.analysis.mixed import MixedSettings, fit_exp1_mixed  # noqa: E402
from psysim.analysis.simulate import Design, Truth, simulate_exp1  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=100)
    parser.add_argument("--personas", type=int, default=15)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sessions", type=int, default=6)
    parser.add_argument("--bootstrap", type=int, default=200)
    args = parser.parse_args()
    truth = Truth()
    design = Design(personas=args.personas, runs=args.runs, sessions=args.sessions)
    contrasts = {
        "expert - none, slope": (("expert", "none", None), truth.slope["expert"] - truth.slope["none"]),
        "generic - none, slope": (("generic", "none", None), truth.slope["generic"] - truth.slope["none"]),
        f"expert - none, session {args.sessions}": (("expert", "none", args.sessions),
                                                    truth.intercept["expert"] - truth.intercept["none"]
                                                    + (truth.slope["expert"] - truth.slope["none"]) * (args.sessions - 1)),
    }
    hits = {name: 0 for name in contrasts}
    widths = {name: 0.0 for name in contrasts}
    done = 0
    start = time.perf_counter()
    for rep in range(args.reps):
        fit = fit_exp1_mixed(simulate_exp1(truth, design, seed=1000 + rep), MixedSettings(bootstrap=args.bootstrap, seed=rep))
        if not fit.fitted:
            print(f"rep {rep}: not fitted: {fit.reason}")
            continue
        done += 1
        for name, ((a, b, session), true) in contrasts.items():
            c = fit.contrast(fit.vector(a, b, session))
            hits[name] += int(c.ci_low <= true <= c.ci_high)
            widths[name] += c.ci_high - c.ci_low
    seconds = time.perf_counter() - start
    print(f"{done} studies of {args.personas} personas x 3 conditions x {args.runs} runs x {args.sessions} sessions, "
          f"{args.bootstrap} resamples each: {seconds / max(done, 1):.1f} s per study")
    for name in contrasts:
        print(f"  {name:28s} coverage {hits[name] / max(done, 1):.3f} (nominal 0.95), mean CI width {widths[name] / max(done, 1):.3f}")


if __name__ == "__main__":
    main()
