"""Where the offline run keeps what it builds and downloads (never inside the repository)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``$PSYSIM_CACHE_DIR``, else ``$XDG_CACHE_HOME/psychotherapy-in-silico``, else ``~/.cache/...``."""
    explicit = os.environ.get("PSYSIM_CACHE_DIR")
    if explicit:
        path = Path(explicit).expanduser()
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        path = base / "psychotherapy-in-silico"
    path.mkdir(parents=True, exist_ok=True)
    return path


class OfflineError(RuntimeError):
    """A failure of the offline run with a message meant for the user (exit code 1)."""
