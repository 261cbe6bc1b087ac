"""Log identity: which Inspect logs belong to one series, and which of them an analysis uses.

Defined once, here; the report and every later analysis go through :func:`select_logs`.

* Two logs are the same **series** when they share the task, every task argument (all of
  them: a ``shard`` argument added later counts too, unless a caller that merges shards passes
  it in ``ignore_args``), the model, the model bound to each role, and the **prompt provenance**
  (:func:`psysim.provenance.fingerprint`: the task version and the version and content hash of
  every prompt, guidelines, persona, rubric and instrument file; logs written before provenance
  was recorded share the provenance "no provenance"). The git commit is shown, never compared.
* Within a series, logs are ordered by creation time. An incomplete log (status ``error``,
  ``cancelled`` or ``started``) is **superseded** by the next log of its series: that is what
  Inspect's ``eval_set``/``eval_retry`` leave behind (the retry carries the samples the failed
  attempt finished). The last log of a series, if incomplete, is **used** as a partial run and
  listed as incomplete.
* Two complete logs of one series are both used, as separate runs (a deliberate second run).
* A file that cannot be read is **unreadable**: named with the reason, skipped, never fatal.
* Two logs with the same ``eval_id`` are one run (a copy under another name; Inspect gives a
  retry a new eval id): the complete one is kept, else the later one, and the other is a
  **duplicate**, named, never read; when their contents differ, the report warns.
* **Shards** (task argument ``shard`` = ``K/N``, :mod:`psysim.study.sharding`) are separate series.
  The used logs of series that are the same apart from ``shard`` and have the same N form one
  **sharded study**: the first used log of each shard belongs to the first study, the second
  to the second, and so on. A run is then one epoch across all the study's shards
  (:meth:`LogEntry.run`), and every shard that has no log or only an incomplete one is named
  (:attr:`LogSelection.shard_notes`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inspect_ai.log import EvalLog, list_eval_logs, read_eval_log

from psysim.provenance import NO_PROVENANCE, PROVENANCE_KEY, fingerprint
from psysim.study.sharding import SHARD_ARG, Shard

COMPLETE_STATUS = "success"


@dataclass(frozen=True)
class SeriesKey:
    """What makes two logs the same series."""

    task: str
    task_args: tuple[tuple[str, str], ...]
    model: str
    model_roles: tuple[tuple[str, str], ...]
    provenance: str = NO_PROVENANCE
    """:func:`psysim.provenance.fingerprint` of the log: logs that differ here are never pooled."""

    def without_args(self, names: Collection[str]) -> SeriesKey:
        """The key with some task arguments left out (e.g. ``shard`` when merging shards)."""
        return SeriesKey(self.task, tuple(a for a in self.task_args if a[0] not in names), self.model, self.model_roles,
                         self.provenance)

    def arg(self, name: str, default: str | None = None) -> str | None:
        """One task argument as its canonical JSON text."""
        return dict(self.task_args).get(name, default)

    def describe(self) -> str:
        args = " ".join(f"{k}={v}" for k, v in self.task_args)
        roles = " ".join(f"{k}={v}" for k, v in self.model_roles)
        return (f"{self.task} [{args}] model={self.model}" + (f" roles: {roles}" if roles else "")
                + f" ({self.provenance})")


def _canonical(value: Any) -> str:
    """Argument values compared as sorted JSON, so 6 and 6 match however they were given."""
    return json.dumps(value, sort_keys=True, default=str)


def short_task_name(name: str) -> str:
    """``tasks/iterative_feedback.py@iterative_feedback`` or ``pkg/iterative_feedback`` -> the bare name."""
    return str(name).split("@")[-1].split("/")[-1]


def series_key(log: EvalLog, ignore_args: Collection[str] = ()) -> SeriesKey:
    """The series of a log (its header is enough).

    Args:
        log: An Inspect log, header only or full.
        ignore_args: Task arguments left out of the identity (none by default: every argument
            counts).

    Returns:
        The log's :class:`SeriesKey`.
    """
    spec = log.eval
    args = tuple(sorted((k, _canonical(v)) for k, v in (spec.task_args or {}).items() if k not in ignore_args))
    roles = tuple(sorted((role, str(config.model)) for role, config in (spec.model_roles or {}).items()))
    return SeriesKey(short_task_name(spec.task), args, str(spec.model), roles,
                     fingerprint(spec.task_version, log_provenance(log)))


def log_provenance(log: EvalLog) -> dict[str, Any] | None:
    """The provenance record a task wrote into the log's metadata (None in an older log)."""
    record = (log.eval.metadata or {}).get(PROVENANCE_KEY)
    return record if isinstance(record, dict) else None


@dataclass
class LogEntry:
    """One readable log and its place in its series."""

    path: str
    header: EvalLog
    key: SeriesKey
    run_group: str = ""
    """What the log's runs belong to: its eval id, or its sharded study (set by :func:`select_logs`)."""

    def run(self, epoch: int | str) -> str:
        """The run an epoch of this log belongs to: ``<eval id or sharded study>:<epoch>``."""
        return f"{self.run_group or self.eval_id}:{epoch}"

    @property
    def name(self) -> str:
        return Path(self.path.removeprefix("file://")).name

    @property
    def status(self) -> str:
        return str(self.header.status)

    @property
    def complete(self) -> bool:
        return self.status == COMPLETE_STATUS

    @property
    def created(self) -> str:
        return str(self.header.eval.created)

    @property
    def eval_id(self) -> str:
        return str(self.header.eval.eval_id)

    @property
    def error(self) -> str | None:
        return self.header.error.message if self.header.error is not None else None


@dataclass
class Unreadable:
    path: str
    reason: str

    @property
    def name(self) -> str:
        return Path(self.path.removeprefix("file://")).name


@dataclass
class Duplicate:
    """A log with the eval id of a kept log: the same run, read once."""

    entry: LogEntry
    kept: LogEntry
    differs: bool
    """The two files' contents differ (not a plain copy): the report warns."""


@dataclass
class LogSelection:
    """The logs an analysis uses, and every log it does not, each with the reason."""

    used: list[LogEntry] = field(default_factory=list)
    superseded: list[tuple[LogEntry, LogEntry]] = field(default_factory=list)
    """(incomplete log, the later log of its series that replaces it)."""
    unreadable: list[Unreadable] = field(default_factory=list)
    duplicates: list[Duplicate] = field(default_factory=list)
    """Logs left out because a kept log has the same eval id."""
    shard_notes: list[str] = field(default_factory=list)
    """Shards of a sharded study that are missing or incomplete, or a malformed shard argument."""

    @property
    def incomplete(self) -> list[LogEntry]:
        """Used logs that did not finish: partial runs."""
        return [entry for entry in self.used if not entry.complete]


def read_headers(log_dir: str | Path) -> tuple[list[LogEntry], list[Unreadable]]:
    """Read the header of every log under ``log_dir``; unreadable files are returned apart.

    Raises:
        FileNotFoundError: ``log_dir`` does not exist or holds no Inspect log.
    """
    if not Path(log_dir).exists():
        raise FileNotFoundError(f"{log_dir}: no such directory")
    infos = list_eval_logs(str(log_dir))
    if not infos:
        raise FileNotFoundError(f"{log_dir}: no Inspect logs found (.eval or .json)")
    entries: list[LogEntry] = []
    unreadable: list[Unreadable] = []
    for info in infos:
        try:
            header = read_eval_log(info, header_only=True)
            entries.append(LogEntry(path=info.name, header=header, key=series_key(header)))
        except Exception as ex:  # a corrupt or truncated file must not stop the others
            unreadable.append(Unreadable(info.name, _why(ex)))
    return entries, unreadable


def _why(ex: Exception) -> str:
    first = str(ex).splitlines()[0] if str(ex) else ""
    return f"not a readable Inspect log ({type(ex).__name__}: {first})"


def select_logs(entries: Iterable[LogEntry], unreadable: Iterable[Unreadable] = ()) -> LogSelection:
    """Apply the series rules (module docstring) to readable logs."""
    selection = LogSelection(unreadable=list(unreadable))
    entries, selection.duplicates = _drop_duplicates(entries)
    series: dict[SeriesKey, list[LogEntry]] = {}
    for entry in entries:
        series.setdefault(entry.key, []).append(entry)
    for members in series.values():
        members.sort(key=lambda e: (e.created, e.name))
        for index, entry in enumerate(members):
            later = members[index + 1] if index + 1 < len(members) else None
            if entry.complete or later is None:
                selection.used.append(entry)
            else:
                selection.superseded.append((entry, later))
    selection.used.sort(key=lambda e: (e.key.task, e.created, e.name))
    selection.shard_notes = _group_shards(selection.used)
    return selection


def _drop_duplicates(entries: Iterable[LogEntry]) -> tuple[list[LogEntry], list[Duplicate]]:
    """One log per eval id: the complete one, else the later one (then by name, for a fixed choice)."""
    by_id: dict[str, list[LogEntry]] = {}
    for entry in entries:
        by_id.setdefault(entry.eval_id, []).append(entry)
    kept, duplicates = [], []
    for same in by_id.values():
        same.sort(key=lambda e: (e.complete, e.created, e.name), reverse=True)
        kept.append(same[0])
        duplicates += [Duplicate(other, same[0], _digest(other) != _digest(same[0])) for other in same[1:]]
    return kept, duplicates


def _digest(entry: LogEntry) -> str:
    """The file's SHA-256 (a file that cannot be read again counts as different)."""
    try:
        return hashlib.sha256(Path(entry.path.removeprefix("file://")).read_bytes()).hexdigest()
    except OSError as ex:
        return f"unreadable: {ex}"


def _group_shards(used: list[LogEntry]) -> list[str]:
    """Set ``run_group`` of sharded logs to their study; name missing and incomplete shards."""
    notes: list[str] = []
    studies: dict[tuple[SeriesKey, int], dict[int, list[LogEntry]]] = {}
    for entry in used:  # in creation order within each series
        raw = entry.key.arg(SHARD_ARG)
        if raw is None or json.loads(raw) is None:
            continue
        try:
            shard = Shard.parse(json.loads(raw))
        except ValueError as ex:
            notes.append(f"`{entry.name}`: {ex}; analysed as a run of its own")
            continue
        study = (entry.key.without_args({SHARD_ARG}), shard.count)
        studies.setdefault(study, {}).setdefault(shard.index, []).append(entry)
    for (key, count), shards in studies.items():
        for index in range(max(len(logs) for logs in shards.values())):
            members = {k: logs[index] for k, logs in shards.items() if index < len(logs)}
            group = f"shards-{members[min(members)].eval_id}"
            for entry in members.values():
                entry.run_group = group
            where = f"sharded study `{group}` ({key.describe()})"
            missing = [f"{k}/{count}" for k in range(1, count + 1) if k not in members]
            if missing:
                notes.append(f"{where}: shard {', '.join(missing)} missing (no log); its samples are not in "
                             f"the analysis, which uses {len(members)} of {count} shards")
            for k, entry in sorted(members.items()):
                if not entry.complete:
                    notes.append(f"{where}: shard {k}/{count} incomplete: `{entry.name}` (status {entry.status}); "
                                 "run that shard again to resume it")
    return notes


def load_selection(log_dir: str | Path) -> LogSelection:
    """:func:`read_headers` then :func:`select_logs`."""
    entries, unreadable = read_headers(log_dir)
    return select_logs(entries, unreadable)
