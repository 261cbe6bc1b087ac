"""``psysim-check-log``: exit non-zero unless Inspect logs finished with status ``success``.

``inspect eval`` exits 0 even when the run ended with status ``error`` (or was cancelled), so a
shell loop over conditions cannot stop on a failure by its exit code alone::

    inspect eval --run-config configs/paper.yaml -T condition=$c --log-dir logs/paper-$c &&
      psysim-check-log --latest logs/paper-$c || break

In a directory, the logs the report uses are checked (``--latest``: only the newest log): an
incomplete log followed by a later log of the same series (e.g. a ``started`` log left by a
killed ``psysim-paper``, then resumed) is listed as superseded (the series rule of
``psysim/study/log_series.py``, the same as the report's). Prints one line per log (status, task, condition, samples completed,
error). Exit codes: 0 every log checked succeeded; 1 a log did not (``error``, ``cancelled``,
``started``: interrupted or still running); 2 no log found or a log could not be read.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from inspect_ai.log import EvalLog, list_eval_logs, read_eval_log

from psysim._version import add_version_argument
from psysim.prompts.therapist_styles import DEFAULT_STYLE
from psysim.study.log_series import load_selection


def logs_to_check(paths: list[str], latest: bool) -> tuple[list[str], list[str]]:
    """The log files to check and the superseded ones, from files and directories in ``paths``.

    In a directory, the logs are those the report would use, by the one log-identity rule of
    :mod:`psysim.study.log_series`: an incomplete log followed by a later log of its series (what a
    resumed or retried eval set leaves) is superseded; every other log is checked. With
    ``latest``, only the directory's newest log. An unreadable file is an error.
    """
    checked: list[str] = []
    superseded: list[str] = []
    for path in paths:
        if Path(path).is_dir():
            if latest:
                infos = sorted(list_eval_logs(path), key=lambda info: info.mtime or 0, reverse=True)
                checked += [info.name for info in infos[:1]]
                continue
            if not list_eval_logs(path):
                continue
            selection = load_selection(path)
            if selection.unreadable:
                bad = selection.unreadable[0]
                raise ValueError(f"{bad.path}: {bad.reason}")
            checked += [entry.path for entry in selection.used]
            superseded += [old.path for old, _ in selection.superseded]
        elif Path(path).is_file():
            checked.append(path)
        else:
            raise FileNotFoundError(f"no such log file or directory: {path}")
    return checked, superseded


def describe(log: EvalLog) -> str:
    """One line: status, task, condition, samples completed of expected, error."""
    condition = log.eval.task_args.get("condition")
    style = log.eval.task_args.get("therapist")
    if condition and style not in (None, DEFAULT_STYLE):  # the negative control is named, never mistaken
        condition = f"{condition}, therapist={style}"
    results = log.results
    samples, limit = log.eval.dataset.samples or 0, log.eval.config.limit
    if isinstance(limit, int):
        samples = min(samples, limit)
    elif limit is not None:  # a (start, end) range
        samples = min(samples, limit[1]) - limit[0]
    completed = results.completed_samples if results else "?"
    line = (f"{log.status:9} {log.eval.task}{f' ({condition})' if condition else ''}: "
            f"{completed}/{samples * (log.eval.config.epochs or 1)} samples")
    if log.error is not None:
        line += f"; error: {log.error.message.strip().splitlines()[-1][:300]}"
    return f"{line}  [{log.location}]"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="psysim-check-log", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_version_argument(parser)
    parser.add_argument("paths", nargs="+", help="log files or log directories")
    parser.add_argument("--latest", action="store_true", help="in a directory, check only the newest log")
    args = parser.parse_args(argv)
    try:
        names, superseded = logs_to_check(args.paths, args.latest)
        if not names:
            print(f"psysim-check-log: no Inspect logs in {', '.join(args.paths)}", file=sys.stderr)
            return 2
        logs = [read_eval_log(name, header_only=True) for name in names]
    except (OSError, ValueError) as ex:
        print(f"psysim-check-log: {ex}", file=sys.stderr)
        return 2
    for log in logs:
        print(describe(log))
    for name in superseded:
        print(f"{'superseded':9} by a later log of the same series  [{name}]")
    return 0 if all(log.status == "success" for log in logs) else 1


if __name__ == "__main__":
    sys.exit(main())
