"""How big is the HTML report of a paper-size study, and how long does ``psysim-report`` take?

    python benchmarks/report_size.py                 # generate logs, then write and measure the report
    python benchmarks/report_size.py --logs DIR      # reuse logs generated earlier
    python benchmarks/report_size.py --png           # also time the PNG export (needs Chromium)

The study: Experiment 1 with 15 personas x 3 conditions x 5 runs x 6 sessions (made as
``benchmarks/report_speed.py`` makes it: the scripted demo model) plus Experiment 2 asking for the paper's 50 snippets (the shipped
demo transcripts give 39; the mock roles of ``tests/rating_logs.py``), all offline. Target (issue 25): everything the page loads except the one
``plotly.min.js`` beside it stays under 1 MB; the script exits 1 when it does not.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))

LIMIT = 1_000_000


def make_logs(directory: Path, personas: int, epochs: int, sessions: int, turns: int, snippets: int) -> None:
    """Experiment 1 as ``report_speed.py`` makes it (the scripted demo model; its sessions pass the
    integrity check, as a real study's mostly do), then Experiment 2 with mock roles."""
    from report_speed import make_logs as exp1_logs

    from rating_logs import exp2_log

    os.environ.setdefault("INSPECT_CACHE_DIR", str(directory.parent / "inspect-cache"))
    exp1_logs(directory, personas, epochs, sessions, turns)
    exp2_log(directory, snippets=snippets)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--logs", type=Path, help="existing log directory (skip generation)")
    parser.add_argument("--personas", type=int, default=15)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--sessions", type=int, default=6)
    parser.add_argument("--turns", type=int, default=4)
    parser.add_argument("--snippets", type=int, default=50)
    parser.add_argument("--png", action="store_true", help="also write the PNGs (kaleido + Chromium)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="psysim-report-size-"))
    logs = args.logs or work / "logs"
    if args.logs is None:
        start = time.perf_counter()
        make_logs(logs, args.personas, args.epochs, args.sessions, args.turns, args.snippets)
        print(f"generated logs in {time.perf_counter() - start:.1f} s: {logs}")
    out = work / "report"
    command = [str(Path(sys.executable).parent / "psysim-report"), str(logs), "-o", str(out), "--quiet",
               "--png" if args.png else "--no-png"]
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    files = {p.name: p.stat().st_size for p in out.iterdir()}
    page = files["index.html"]
    loaded = page  # the page loads only itself and plotly.min.js (figures and tables are inline)
    csvs = sum(size for name, size in files.items() if name.endswith(".csv"))
    pngs = sum(size for name, size in files.items() if name.endswith(".png"))
    print(f"psysim-report on {args.personas} personas x 3 conditions x {args.epochs} runs x {args.sessions} sessions "
          f"+ Experiment 2 ({args.snippets} snippets asked for): {seconds:.1f} s wall on {os.cpu_count()} cores "
          f"({'with' if args.png else 'without'} PNGs)")
    print("command:", " ".join(command))
    print(f"index.html: {page:,} bytes; plotly.min.js: {files.get('plotly.min.js', 0):,} bytes (one copy); "
          f"CSVs: {csvs:,} bytes; tables.tex: {files.get('tables.tex', 0):,} bytes; summary.md: "
          f"{files.get('summary.md', 0):,} bytes; PNGs: {pngs:,} bytes ({sum(n.endswith('.png') for n in files)} files)")
    print(f"everything the page loads except plotly.min.js: {loaded:,} bytes (limit {LIMIT:,}): "
          + ("OK" if loaded < LIMIT else "OVER"))
    return 0 if loaded < LIMIT else 1


if __name__ == "__main__":
    sys.exit(main())
