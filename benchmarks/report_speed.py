"""How long does ``psysim-report`` take on a paper-size log set, and does it recover known effects?

    python benchmarks/report_speed.py                  # generate logs, then time the report
    python benchmarks/report_speed.py --logs DIR       # reuse logs generated earlier

Paper size: 15 personas x 3 conditions x 5 runs (epochs) x 6 sessions, made offline by the
scripted ``psysim/demo`` model (:mod:`psysim.demo.model`, no model, no download), whose replies
pass the integrity check and whose Client ratings carry known effects: slope per session none 3,
generic 4, expert 8 (expert vs none +5, generic vs none +1), plus persona, run and rating noise.
The condition reaches the Client only through the therapist's turns. The report is timed in a
fresh process (imports included). DEMO NUMBERS: the benchmark shows speed and that the analysis
recovers a built-in effect, nothing about therapy.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from psysim.demo import DEMO_MODEL
from psysim.demo.model import ATTENTIVE_GAIN, SPECIFIC_GAIN

TRUTH = {("expert", "none"): SPECIFIC_GAIN, ("generic", "none"): ATTENTIVE_GAIN, ("expert", "generic"): SPECIFIC_GAIN - ATTENTIVE_GAIN}


def make_logs(directory: Path, personas: int, epochs: int, sessions: int, turns: int) -> None:
    from psysim.study.paper import paper_tasks, run_paper

    success, logs = run_paper(DEMO_MODEL, str(directory), epochs=epochs, limit=personas, display="none",
                              tasks=paper_tasks(("iterative_feedback",), sessions=sessions, turns=turns))
    assert success, [log.error for log in logs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--logs", type=Path, help="existing log directory (skip generation)")
    parser.add_argument("--personas", type=int, default=15)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--sessions", type=int, default=6)
    parser.add_argument("--turns", type=int, default=4)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="psysim-report-speed-"))
    logs = args.logs or work / "logs"
    if args.logs is None:
        start = time.perf_counter()
        make_logs(logs, args.personas, args.epochs, args.sessions, args.turns)
        print(f"generated logs in {time.perf_counter() - start:.1f} s: {logs}")
    out = work / "report"
    command = [str(Path(sys.executable).parent / "psysim-report"), str(logs), "-o", str(out), "--quiet"]
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    print(f"psysim-report on {args.personas} personas x 3 conditions x {args.epochs} runs x {args.sessions} sessions: "
          f"{seconds:.1f} s wall on {os.cpu_count()} cores")
    print("command:", " ".join(command))
    stats = pd.read_csv(out / "statistics.csv")
    slope = stats[(stats["experiment"] == "iterative_feedback") & stats["measure"].str.contains("per session")
                  & stats["test"].str.startswith("mixed model") & (stats["status"] == "ok")]
    print("\nmixed model (integrity-passing sessions) vs truth, slope difference (points per session):")
    for (a, b), true in TRUTH.items():
        rows = slope[(slope["a"] == a) & (slope["b"] == b)]
        for row in rows.itertuples():
            print(f"  {a} vs {b} [{row.role}]: truth {true:5.2f}  estimate {row.difference:6.3f}  "
                  f"95% CI {row.ci_low:.3f} to {row.ci_high:.3f}  {'covers' if row.ci_low <= true <= row.ci_high else 'MISSES'}")
    summary = (out / "summary.md").read_text()
    print("\n" + summary[summary.index("## Summary"):summary.index("## Experiment 1")])


if __name__ == "__main__":
    main()
