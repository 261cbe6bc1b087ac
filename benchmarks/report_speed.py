"""How long does ``psysim-report`` take on a paper-size log set, and does it recover known effects?

    python benchmarks/report_speed.py                  # generate logs, then time the report
    python benchmarks/report_speed.py --logs DIR       # reuse logs generated earlier

Paper size: 15 personas x 3 conditions x 5 runs (epochs) x 6 sessions, made offline by
``mockllm/model`` with one mock per role (as in the tests). The Client's rating has known
effects: 40 + slope[condition] x (session - 1) + a persona offset + a run offset + a small
deterministic wobble, slope none 1.0, generic 1.5, expert 3.0 per session. The condition is read
from the therapist's turns (the therapist writes in the style its feedback asked for), so the
Client never sees the condition itself. The report is timed in a fresh process (imports
included) with the default 200 bootstrap resamples.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

SLOPE = {"none": 1.0, "generic": 1.5, "expert": 3.0}
RATING_MARKER = "Reply with only a JSON object"


def make_logs(directory: Path, personas: int, epochs: int, sessions: int, turns: int) -> None:
    from inspect_ai import eval

    from psysim.calls.generation import SESSION_SEED_STEP
    from psysim.tasks.iterative_feedback import iterative_feedback

    from mock_roles import Call, Recorder, main_model, mock_role, session_of

    def therapist(call: Call) -> str:
        style = "EXPERT-STYLE" if "EXPERT-FEEDBACK" in call.system else (
            "GENERIC-STYLE" if "Pay closer attention" in call.system else "PLAIN")
        return f"{style} therapist turn in session {session_of(call)}."

    def client(call: Call) -> str:
        if RATING_MARKER not in call.text:
            return "I have been struggling lately."
        k = session_of(call)
        style = "expert" if "EXPERT-STYLE" in call.text else "generic" if "GENERIC-STYLE" in call.text else "none"
        persona = zlib.crc32(call.system.encode()) % 9 - 4
        run = (int(call.config.seed or 0) % SESSION_SEED_STEP * 37) % 7 - 3  # the run, not the session
        wobble = zlib.crc32(f"{call.system}{call.config.seed}{k}".encode()) % 5 - 2
        return f'{{"rating": {round(40 + SLOPE[style] * (k - 1) + persona + run + wobble)}}}'

    def expert(call: Call) -> str:
        return f"EXPERT-FEEDBACK-{session_of(call)}: be concrete."

    recorder = Recorder()
    for condition in ("expert", "none", "generic"):
        roles = {"therapist": mock_role("therapist", recorder, therapist), "client": mock_role("client", recorder, client),
                 "expert": mock_role("expert", recorder, expert)}
        [log] = eval(iterative_feedback(condition=condition, sessions=sessions, turns=turns), model=main_model(recorder),
                     model_roles=roles, limit=personas, epochs=epochs, log_dir=str(directory), display="none",
                     max_samples=personas * epochs)
        assert log.status == "success", log.error


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--logs", type=Path, help="existing log directory (skip generation)")
    parser.add_argument("--personas", type=int, default=15)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--sessions", type=int, default=6)
    parser.add_argument("--turns", type=int, default=4)
    parser.add_argument("--bootstrap", type=int, default=200)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="psysim-report-speed-"))
    logs = args.logs or work / "logs"
    if args.logs is None:
        start = time.perf_counter()
        make_logs(logs, args.personas, args.epochs, args.sessions, args.turns)
        print(f"generated logs in {time.perf_counter() - start:.1f} s: {logs}")
    out = work / "report"
    command = [str(Path(sys.executable).parent / "psysim-report"), str(logs), "-o", str(out), "--quiet",
               "--bootstrap", str(args.bootstrap)]
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    import os

    import pandas as pd

    print(f"psysim-report on {args.personas} personas x 3 conditions x {args.epochs} runs x {args.sessions} sessions "
          f"({args.bootstrap} bootstrap resamples): {seconds:.1f} s wall on {os.cpu_count()} cores")
    print("command:", " ".join(command))
    fixed = pd.read_csv(out / "exp1_mixed_fixed_effects.csv").set_index("term")
    truth = {"condition[expert] x session": SLOPE["expert"] - SLOPE["none"],
             "condition[generic] x session": SLOPE["generic"] - SLOPE["none"],
             "session (reference condition)": SLOPE["none"]}
    print("\nmixed model vs truth (points per session):")
    for term, true in truth.items():
        row = fixed.loc[term]
        print(f"  {term:32s} truth {true:5.2f}  estimate {row['estimate']:6.3f}  95% CI {row['ci_low']:.3f} to {row['ci_high']:.3f}")
    summary = (out / "summary.md").read_text()
    print("\n" + summary[summary.index("## Summary"):summary.index("## Experiment 1")])


if __name__ == "__main__":
    main()
