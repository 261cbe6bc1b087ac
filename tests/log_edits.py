"""Copies of real logs with one thing changed (status, time, samples, scores), for the
log-identity and missing-data tests: what an errored, cancelled or retried eval leaves behind."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from inspect_ai.log import EvalError, EvalLog, EvalSample, read_eval_log, write_eval_log


def copy_log(
    src: str | Path,
    dst: str | Path,
    *,
    status: str | None = None,
    error: str | None = None,
    created: str | None = None,
    eval_id: str | None = None,
    keep_samples: int | None = None,
    sample_filter: Callable[[EvalSample], bool] | None = None,
    task_args: dict | None = None,
    edit_sample: Callable[[EvalSample], None] | None = None,
) -> EvalLog:
    """Write a copy of ``src`` to ``dst`` with the given changes; returns the written log."""
    log = read_eval_log(str(src))
    if status is not None:
        log.status = status  # type: ignore[assignment]
    if error is not None:
        log.error = EvalError(message=error, traceback="", traceback_ansi="")
    if created is not None:
        log.eval.created = created
    if eval_id is not None:
        log.eval.eval_id = eval_id
    if task_args is not None:
        log.eval.task_args = {**log.eval.task_args, **task_args}
    if sample_filter is not None and log.samples is not None:
        log.samples = [s for s in log.samples if sample_filter(s)]
    if keep_samples is not None and log.samples is not None:
        log.samples = log.samples[:keep_samples]
        if log.results is not None:
            log.results.completed_samples = keep_samples
    if edit_sample is not None and log.samples:
        for sample in log.samples:
            edit_sample(sample)
    write_eval_log(log, str(dst))
    return log
