"""``psysim-paper``: Experiment 1's three conditions (and optionally Experiment 2) in one
Inspect ``eval_set``, with concurrency that keeps a vLLM server busy.

Every session depends on the one before, so one persona-run is a chain of dependent calls;
the only way to finish at that chain's length is to run all chains at once: all conditions
(``max_tasks``), all persona x run samples (``max_samples``) and enough connections for them
(``max_connections``). vLLM batches the concurrent requests on the GPU.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from inspect_ai import Epochs, Task, eval_set

from psysim.generation import ROLES
from solvers.feedback_policy import CONDITIONS


def paper_tasks(
    experiments: tuple[str, ...] = ("iterative_feedback",),
    personas: str | None = None,
    sessions: int = 6,
    turns: int = 4,
    snippets: int | None = 50,
    transcripts: str | None = None,
    **task_args: Any,
) -> list[Task]:
    from tasks.human_comparison import human_comparison
    from tasks.iterative_feedback import iterative_feedback

    tasks: list[Task] = []
    if "iterative_feedback" in experiments:
        tasks += [
            iterative_feedback(condition=c, sessions=sessions, turns=turns, personas=personas, **task_args)
            for c in CONDITIONS
        ]
    if "human_comparison" in experiments:
        tasks.append(human_comparison(transcripts=transcripts, snippets=snippets, **task_args))
    return tasks


def concurrency(tasks: list[Task], epochs: int, limit: int | None, max_connections: int | None) -> dict[str, int]:
    """All tasks, all samples and enough connections for every chain to be in flight at once."""
    samples = max(min(len(t.dataset), limit or len(t.dataset)) * epochs for t in tasks)
    # Experiment 2 issues up to three calls at once per sample (LLM response + critique; ratings)
    per_sample = 3 if any(t.name == "human_comparison" for t in tasks) else 1
    connections = max_connections or max(samples * per_sample * len(tasks), 16)
    return {"max_tasks": len(tasks), "max_samples": samples, "max_connections": connections}


def run_paper(
    model: str,
    log_dir: str,
    epochs: int = 5,
    limit: int | None = None,
    max_connections: int | None = None,
    tasks: list[Task] | None = None,
    realtime: bool = True,
    **eval_args: Any,
) -> tuple[bool, list[Any]]:
    """``realtime=False`` stops streaming sample events for live viewing in ``inspect view``
    (finished samples still show): about a fifth less CPU per model call in the harness."""
    tasks = tasks if tasks is not None else paper_tasks()
    settings = concurrency(tasks, epochs, limit, max_connections)
    return eval_set(
        tasks,
        log_dir=log_dir,
        model=model,
        model_roles={role: model for role in ROLES},  # bound, so the log labels each call's role
        epochs=Epochs(epochs, []),  # per-run scores kept, as configs/paper.yaml
        limit=limit,
        log_realtime=realtime,
        **settings,
        **eval_args,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="psysim-paper", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="vllm/meta-llama/Llama-3.1-70B-Instruct")
    parser.add_argument("--log-dir", default="logs/paper")
    parser.add_argument("--experiments", nargs="+", default=["iterative_feedback"],
                        choices=["iterative_feedback", "human_comparison"])
    parser.add_argument("--epochs", type=int, default=5, help="independent runs (paper: 5)")
    parser.add_argument("--limit", type=int, default=None, help="first N personas / snippets only")
    parser.add_argument("--personas", default=None, help="persona file (default: shipped personas)")
    parser.add_argument("--transcripts", default=None, help="Experiment 2 transcripts (default: demo set)")
    parser.add_argument("--max-connections", type=int, default=None, help="default: one per concurrent call")
    parser.add_argument("--no-realtime", action="store_true",
                        help="no live view of running samples (less harness CPU per call)")
    args = parser.parse_args(argv)
    tasks = paper_tasks(tuple(args.experiments), personas=args.personas, transcripts=args.transcripts)
    success, _ = run_paper(args.model, args.log_dir, epochs=args.epochs, limit=args.limit,
                           max_connections=args.max_connections, tasks=tasks, realtime=not args.no_realtime)
    print(f"{'complete' if success else 'incomplete (run again to resume)'}: {args.log_dir}; "
          f"report: psysim-report {args.log_dir} -o reports/")
    return 0 if success else 1


if __name__ == "__main__":
    sys.exit(main())
