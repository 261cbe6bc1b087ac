"""``psysim-check-log``: exit non-zero unless Inspect logs finished with status ``success``.

``inspect eval`` exits 0 even when the run ended with status ``error`` (or was cancelled), so a
shell loop over conditions cannot stop on a failure by its exit code alone::

    inspect eval --run-config configs/paper.yaml -T condition=$c --log-dir logs/paper-$c &&
      psysim-check-log --latest logs/paper-$c || break

Prints one line per log (status, task, condition, samples completed, error). Exit codes: 0 every
log checked succeeded; 1 a log did not (``error``, ``cancelled``, ``started``: interrupted);
2 no log found or a log could not be read.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from inspect_ai.log import EvalLog, EvalLogInfo, list_eval_logs, read_eval_log


def logs_to_check(paths: list[str], latest: bool) -> list[str]:
    """Log files named in ``paths``; a directory stands for its logs (the newest only if ``latest``)."""
    found: list[str] = []
    for path in paths:
        if Path(path).is_dir():
            infos: list[EvalLogInfo] = list_eval_logs(path)  # newest first
            found += [info.name for info in (infos[:1] if latest else infos)]
        elif Path(path).is_file():
            found.append(path)
        else:
            raise FileNotFoundError(f"no such log file or directory: {path}")
    return found


def describe(log: EvalLog) -> str:
    """One line: status, task, condition, samples completed of expected, error."""
    condition = log.eval.task_args.get("condition")
    results = log.results
    samples, limit = log.eval.dataset.samples or 0, log.eval.config.limit
    if isinstance(limit, int):
        samples = min(samples, limit)
    elif limit is not None:  # a (start, end) range
        samples = min(samples, limit[1]) - limit[0]
    completed = results.completed_samples if results else 0
    line = (f"{log.status:9} {log.eval.task}{f' ({condition})' if condition else ''}: "
            f"{completed}/{samples * (log.eval.config.epochs or 1)} samples")
    if log.error is not None:
        line += f"; error: {log.error.message.strip().splitlines()[-1][:300]}"
    return f"{line}  [{log.location}]"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="psysim-check-log", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", help="log files or log directories")
    parser.add_argument("--latest", action="store_true", help="in a directory, check only the newest log")
    args = parser.parse_args(argv)
    try:
        names = logs_to_check(args.paths, args.latest)
        if not names:
            print(f"no Inspect logs in {', '.join(args.paths)}", file=sys.stderr)
            return 2
        logs = [read_eval_log(name, header_only=True) for name in names]
    except (OSError, ValueError) as ex:
        print(f"psysim-check-log: {ex}", file=sys.stderr)
        return 2
    for log in logs:
        print(describe(log))
    return 0 if all(log.status == "success" for log in logs) else 1


if __name__ == "__main__":
    sys.exit(main())
