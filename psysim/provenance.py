"""What produced a log: the project version, the git commit, and every input file's version and hash.

Each task puts :func:`provenance` into its ``Task(metadata=...)`` (Inspect writes it into the log's
``eval.metadata["provenance"]``). ``psysim-report`` splits settings by :func:`fingerprint`: the task
version and the content hash of every file, never the commit (a commit that changes no input
changes no result), and never the project version alone.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from psysim._version import __version__
from psysim.inputs.data_files import package_file
from psysim.inputs.user_paths import user_path

PROVENANCE_KEY = "provenance"
"""Key of the provenance record in a log's ``eval.metadata``."""
NO_PROVENANCE = "no provenance"
"""The setting label of logs written before provenance was recorded."""
INLINE = "(inline text)"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _yaml_version(path: Path, data: bytes) -> int | str | None:
    """A YAML file's top-level ``version``; None for other files or a file without one."""
    if path.suffix.lower() not in (".yaml", ".yml"):
        return None
    try:
        loaded = yaml.safe_load(data.decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError):
        return None
    return loaded.get("version") if isinstance(loaded, dict) else None


def _shown_path(path: Path) -> str:
    """A shipped file relative to the package (``psysim/prompts/client.yaml``), any other as given."""
    for file, package in ((path.absolute(), package_file().absolute()), (path.resolve(), package_file().resolve())):
        try:  # unresolved first: psysim/datasets is a symlink to the repo's datasets/
            return "psysim/" + file.relative_to(package).as_posix()
        except ValueError:
            continue
    return str(path)


@lru_cache(maxsize=512)
def _file_record(path: str, mtime_ns: int, size: int) -> tuple[tuple[str, Any], ...]:
    del mtime_ns, size  # part of the cache key only: an edited file is read again
    file = Path(path)
    data = file.read_bytes()
    return (("path", _shown_path(file)), ("version", _yaml_version(file, data)), ("sha256", sha256_bytes(data)))


def file_record(path: str | Path) -> dict[str, Any]:
    """``{"path", "version", "sha256"}`` of one input file (``version``: the YAML ``version`` key)."""
    stat = Path(path).stat()
    return dict(_file_record(str(Path(path)), stat.st_mtime_ns, stat.st_size))


def text_record(text: str) -> dict[str, Any]:
    """The record of an input given as text on the command line (``-T guidelines="..."``)."""
    return {"path": INLINE, "version": None, "sha256": sha256_bytes(text.encode("utf-8"))}


def source_record(spec: str | Path | None, default: Path) -> dict[str, Any]:
    """A task argument naming a file (``None``: the shipped default); a non-file source (a URL, a
    ``hf:`` dataset id) is named without a hash, since its content is not on this machine."""
    if spec is None:
        return file_record(default)
    try:
        path = user_path(str(spec))
        if path.is_file():
            return file_record(path)
    except OSError:
        pass
    return {"path": str(spec), "version": None, "sha256": None}


def text_or_file_record(spec: str | None, default: Path) -> dict[str, Any]:
    """The record of an argument that is a file or the text itself (:func:`psysim.prompts.text_or_file`)."""
    if spec is None:
        return file_record(default)
    try:
        path = user_path(spec)
        if path.is_file():
            return file_record(path)
    except OSError:  # a long text is not a valid path
        pass
    return text_record(spec.strip())


def prompt_record(name: str) -> dict[str, Any]:
    """The record of a shipped prompt file ``psysim/prompts/<name>.yaml``."""
    return file_record(package_file("prompts", f"{name}.yaml"))


@lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The commit of the checkout the package runs from (``+dirty`` with uncommitted changes to
    tracked files); None when installed from a wheel or git is unavailable."""
    root = package_file().resolve().parent
    if not (root / ".git").exists():
        return None
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "") if commit else None


def provenance(files: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """The provenance record of a task: project version, git commit, and one record per input.

    Args:
        files: Input name (``prompt:client``, ``personas``, ``guidelines``, ...) -> its record
            (:func:`file_record`, :func:`text_record`, :func:`source_record`, :func:`prompt_record`).
    """
    return {"psysim_version": __version__, "git_commit": git_commit(),
            "files": {name: dict(record) for name, record in sorted(files.items())}}


def prompt_files(names: Iterable[str]) -> dict[str, dict[str, Any]]:
    """``{"prompt:<name>": record}`` for shipped prompt files."""
    return {f"prompt:{name}": prompt_record(name) for name in names}


def fingerprint(task_version: int | str | None, record: Mapping[str, Any] | None) -> str:
    """What makes two logs the same prompt provenance: the task version and every file's version
    and hash (not the commit, not the project version). :data:`NO_PROVENANCE` without a record."""
    if not record or not isinstance(record.get("files"), Mapping):
        return NO_PROVENANCE
    files = {name: [r.get("version"), r.get("sha256"), r.get("path") if r.get("sha256") is None else None]
             for name, r in record["files"].items() if isinstance(r, Mapping)}
    digest = sha256_bytes(json.dumps([task_version, files], sort_keys=True, default=str).encode())[:10]
    return f"task v{task_version} inputs {digest}"


def differing_files(records: Iterable[Mapping[str, Any] | None]) -> list[str]:
    """Names of the inputs whose version or hash differ between provenance records."""
    seen: dict[str, set[tuple[Any, Any]]] = {}
    all_records = [r for r in records if r and isinstance(r.get("files"), Mapping)]
    names = {name for r in all_records for name in r["files"]}
    for name in names:
        seen[name] = {(r["files"].get(name, {}).get("version"), r["files"].get(name, {}).get("sha256"))
                      for r in all_records}
    return sorted(name for name, values in seen.items() if len(values) > 1)


def _values(task_version: Any, record: Mapping[str, Any] | None) -> dict[str, tuple[Any, Any]] | None:
    """Per input (and the task version), what identifies its content; None without a record."""
    if not record or not isinstance(record.get("files"), Mapping):
        return None
    values = {"task version": (task_version, None)}
    for name, r in record["files"].items():
        if isinstance(r, Mapping):
            values[name] = (r.get("version"), r.get("sha256") or r.get("path"))
    return values


@dataclass(frozen=True)
class ProvenanceSplit:
    """How the logs of one otherwise-identical setting divide by provenance."""

    labels: dict[str, str]
    """Per log key: its provenance label (empty for every log when nothing differs)."""
    differing: list[str]
    """Inputs (``task version`` included) whose content differs between logs that both used them;
    ``no provenance`` when some logs have no record."""


def split_by_provenance(logs: Mapping[str, tuple[Any, Mapping[str, Any] | None]]) -> ProvenanceSplit:
    """Divide logs (key -> (task version, provenance record)) into provenance groups.

    Only inputs that two logs both used are compared: a log run with questionnaires has the
    instrument files that one without them lacks, and that alone says nothing about the rating's
    prompts. Logs without a record form their own group, "no provenance".
    """
    values = {key: _values(version, record) for key, (version, record) in logs.items()}
    recorded = {key: v for key, v in values.items() if v is not None}
    seen: dict[str, set[tuple[Any, Any]]] = {}
    for v in recorded.values():
        for name, value in v.items():
            seen.setdefault(name, set()).add(value)
    differing = sorted(name for name, found in seen.items() if len(found) > 1)
    unrecorded = len(recorded) < len(values)
    if not differing and not (unrecorded and recorded):
        return ProvenanceSplit({key: "" for key in logs}, [])
    labels = {}
    for key, v in values.items():
        if v is None:
            labels[key] = NO_PROVENANCE
        else:
            ident = [(name, v.get(name)) for name in differing]
            version = v["task version"][0]
            labels[key] = f"task v{version} inputs " + sha256_bytes(json.dumps(ident, default=str).encode())[:10]
    return ProvenanceSplit(labels, differing + ([NO_PROVENANCE] if unrecorded and recorded else []))
