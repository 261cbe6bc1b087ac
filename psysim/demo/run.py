"""``psysim-demo``: both experiments on the model-free ``psysim/demo`` model, then the full report.

DEMO, SCRIPTED NUMBERS, NOT A RESULT. The demo model's replies and ratings are scripted with a
built-in effect (Experiment 1: expert vs none, +5 rating points per session; Experiment 2: revised
vs human +10, LLM vs human +3; see :mod:`psysim.demo.model`). The run shows the pipeline end to
end, offline, in under a minute, and checks that the analysis recovers the effect it was given.

    psysim-demo                      # 4 personas x 2 runs x 3 sessions, 3 conditions + Experiment 2
    psysim-demo --log-dir logs/demo --report-dir reports/demo
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from psysim._version import add_version_argument
from psysim.demo import DEMO_MODEL
from psysim.demo.model import EXPERT_VS_NONE_SLOPE

DEFAULT_PERSONAS = 4
DEFAULT_RUNS = 2
DEFAULT_SESSIONS = 3
DEFAULT_TURNS = 4
DEFAULT_SNIPPETS = 8


@dataclass
class DemoResult:
    """What the demo ran and the primary test it reports."""

    success: bool
    log_dir: Path
    report_dir: Path
    seconds: float
    primary: pd.Series | None
    """Experiment 1's primary test row of ``statistics.csv`` (None if there is none)."""

    @property
    def covers_effect(self) -> bool:
        """The primary test was computed and its 95% CI covers the built-in effect."""
        if self.primary is None or self.primary["status"] != "ok":
            return False
        low, high = float(self.primary["ci_low"]), float(self.primary["ci_high"])
        return not (math.isnan(low) or math.isnan(high)) and low <= EXPERT_VS_NONE_SLOPE <= high


def run_demo(log_dir: str | Path, report_dir: str | Path, personas: int = DEFAULT_PERSONAS, runs: int = DEFAULT_RUNS,
             sessions: int = DEFAULT_SESSIONS, turns: int = DEFAULT_TURNS, snippets: int = DEFAULT_SNIPPETS,
             fresh: bool = True, display: str = "none") -> DemoResult:
    """Run Experiment 1 (three conditions) and Experiment 2 on ``psysim/demo`` and write the report.

    Args:
        log_dir: Where the logs go; emptied first when ``fresh`` (it holds only demo logs).
        report_dir: Where the report goes.
        personas: First N shipped personas (Experiment 1).
        runs: Independent runs (epochs).
        sessions: Sessions per course.
        turns: Therapist turns per session.
        snippets: Experiment 2 snippets from the shipped demo transcripts.
        fresh: Start from an empty log directory (else an earlier demo run is resumed).
        display: Inspect's display (``none``, ``plain``, ``rich``...).
    """
    from psysim.analysis.report import write_report
    from psysim.analysis.section import ReportOptions
    from psysim.study.paper import paper_tasks, run_paper

    start = time.perf_counter()
    log_dir, report_dir = Path(log_dir), Path(report_dir)
    if fresh and log_dir.exists():
        _empty_demo_dir(log_dir)
    tasks = paper_tasks(("iterative_feedback",), sessions=sessions, turns=turns)
    tasks += paper_tasks(("human_comparison",), snippets=snippets)
    success, _ = run_paper(DEMO_MODEL, str(log_dir), epochs=runs, limit=personas, tasks=tasks, display=display)
    write_report(log_dir, report_dir, ReportOptions(quiet=True))
    statistics = pd.read_csv(report_dir / "statistics.csv")
    primary = statistics[(statistics["experiment"] == "iterative_feedback") & (statistics["role"] == "primary")]
    return DemoResult(success, log_dir, report_dir, time.perf_counter() - start,
                      primary.iloc[0] if len(primary) else None)


def _empty_demo_dir(log_dir: Path) -> None:
    """Remove an earlier demo's logs; refuse a directory that holds anything else."""
    from inspect_ai.log import list_eval_logs, read_eval_log

    from psysim.demo import is_demo_model

    for info in list_eval_logs(str(log_dir)):
        model = str(read_eval_log(info, header_only=True).eval.model)
        if not is_demo_model(model):
            raise ValueError(f"{log_dir} holds logs of another model ({model}, {Path(info.name).name}): "
                             "give the demo its own --log-dir")
    shutil.rmtree(log_dir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="psysim-demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_version_argument(parser)
    parser.add_argument("--log-dir", default="logs/demo", help="demo logs (emptied first; default logs/demo)")
    parser.add_argument("--report-dir", default="reports/demo", help="report directory (default reports/demo)")
    parser.add_argument("--personas", type=int, default=DEFAULT_PERSONAS, help=f"default {DEFAULT_PERSONAS}")
    parser.add_argument("--runs", type=int, default=DEFAULT_RUNS, help=f"default {DEFAULT_RUNS}")
    parser.add_argument("--sessions", type=int, default=DEFAULT_SESSIONS, help=f"default {DEFAULT_SESSIONS}")
    parser.add_argument("--turns", type=int, default=DEFAULT_TURNS, help=f"default {DEFAULT_TURNS}")
    parser.add_argument("--snippets", type=int, default=DEFAULT_SNIPPETS,
                        help=f"Experiment 2 snippets (default {DEFAULT_SNIPPETS})")
    parser.add_argument("--resume", action="store_true", help="keep an earlier demo run's logs and resume it")
    parser.add_argument("--display", default="none", help="Inspect's display: none (default), plain, rich")
    args = parser.parse_args(argv)
    for name in ("personas", "runs", "sessions", "turns", "snippets"):
        if getattr(args, name) < 1 or (name in ("runs", "sessions") and getattr(args, name) < 2):
            parser.error(f"--{name} must be at least {2 if name in ('runs', 'sessions') else 1}")
    print("psysim-demo: DEMO WITH SCRIPTED NUMBERS, NOT A RESULT (model psysim/demo, no model, no network)")
    try:
        result = run_demo(args.log_dir, args.report_dir, args.personas, args.runs, args.sessions, args.turns,
                          args.snippets, fresh=not args.resume, display=args.display)
    except (ValueError, FileNotFoundError) as ex:
        print(f"psysim-demo: error: {ex}", file=sys.stderr)
        return 2
    print(f"logs: {result.log_dir}/  report: {result.report_dir}/index.html  ({result.seconds:.1f} s)")
    if result.primary is None:
        print("psysim-demo: error: the report has no Experiment 1 primary test", file=sys.stderr)
        return 1
    p = result.primary
    print(f"Experiment 1 primary test ({p['a']} vs {p['b']}, {p['measure']}): difference {p['difference']:.2f} "
          f"[95% CI {p['ci_low']:.2f}, {p['ci_high']:.2f}], status {p['status']}; built-in effect "
          f"{EXPERT_VS_NONE_SLOPE}: {'covered' if result.covers_effect else 'NOT covered'}")
    return 0 if result.success and result.covers_effect else 1
