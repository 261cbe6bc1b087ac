"""The project's version, for ``--version`` on every command and for the provenance of logs."""

from __future__ import annotations

import argparse
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("psysim")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"


def add_version_argument(parser: argparse.ArgumentParser) -> None:
    """``--version``: print ``<prog> <project version>`` and exit 0."""
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__} (psysim)")
