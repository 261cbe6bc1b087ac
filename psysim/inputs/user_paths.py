"""Relative paths given on the command line, read from where the command was started.

``inspect eval tasks/x.py -T transcripts=data/a.csv`` builds the task with the working
directory set to ``tasks/`` (Inspect changes into the task file's folder), so a relative path
would be looked up there. A relative path that does not exist from the working directory is
looked up from ``$PWD``, the shell's directory, which that change of directory does not touch.
"""

from __future__ import annotations

import os
from pathlib import Path


def user_path(value: str) -> Path:
    """``value`` as a path: as given if it exists (or is absolute), else from ``$PWD`` if it exists there."""
    path = Path(value).expanduser()
    if path.is_absolute() or path.exists():
        return path
    shell_dir = os.environ.get("PWD")
    if shell_dir and (Path(shell_dir) / path).exists():
        return Path(shell_dir) / path
    return path
