"""What a resumed run reuses: only samples written whole into the interrupted log.

Inspect writes finished samples into a running ``.eval`` file in batches (for a task of n
samples, every ``max(1, min(n // 3, 10))`` samples, and any left waiting after about a minute)
and keeps every sample's events meanwhile in a *sample buffer* outside the log directory. On a
resume, ``eval_set`` first "recovers" an interrupted (``started``) log: samples already in the
file are reused as written, and samples that had finished but were still in the buffer are
rebuilt from their events, and that rebuilt sample has **no store** (``TherapyCourse`` and every
turn are gone) and only the messages of its last model call (5 of 13 in a measured case), while
its scores survive. A study built on such a sample silently lacks it.

So before a resume, :func:`discard_sample_buffers` drops the buffers of the log directory's
interrupted logs: the samples already in the file are reused whole, and the others run again
(with the same seeds, so the scores equal an uninterrupted run's).
"""

from __future__ import annotations

from pathlib import Path

from inspect_ai.log import list_eval_logs, read_eval_log


def interrupted_logs(log_dir: str | Path) -> list[str]:
    """Locations of the logs in ``log_dir`` (recursively) still marked ``started``."""
    if not Path(log_dir).exists():
        return []
    started = []
    for info in list_eval_logs(str(log_dir)):
        try:
            header = read_eval_log(info, header_only=True)
        except Exception:  # noqa: BLE001 - an unreadable log is Inspect's to report; nothing to recover here
            continue
        if header.status == "started":
            started.append(info.name)
    return started


def discard_sample_buffers(log_dir: str | Path) -> list[str]:
    """Drop Inspect's sample buffers of the interrupted logs in ``log_dir`` (see the module
    docstring); returns those logs. Call it only when no run is writing into ``log_dir``."""
    from inspect_ai.log._recorders.buffer.buffer import cleanup_sample_buffers_for_log

    logs = interrupted_logs(log_dir)
    for location in logs:
        cleanup_sample_buffers_for_log(location)
    return logs
