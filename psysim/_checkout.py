"""Which checkout is being run, and a warning when the imported ``psysim`` is another one.

With one clone installed (``pip install -e``) and a second clone's task file run, Inspect puts only
the task file's folder on ``sys.path``: every ``psysim`` import (solvers, prompts, scorers) then comes
from the first clone and edits in the second silently do nothing. Say so, naming both paths.
"""

from __future__ import annotations

import os
import re
import sys
import warnings
from pathlib import Path

DISTRIBUTION = "psysim"


class OtherCheckoutWarning(UserWarning):
    """The ``psysim`` package imported is not the one in the checkout being run."""


def checkout_root(start: Path) -> Path | None:
    """The nearest folder at or above ``start`` that is a checkout of this project, if any."""
    for folder in [start, *start.parents]:
        pyproject = folder / "pyproject.toml"
        if (folder / "psysim" / "__init__.py").is_file() and pyproject.is_file():
            try:
                text = pyproject.read_text(encoding="utf-8")
            except OSError:
                return None
            # tomllib is 3.11+; the project's name line is enough to know the checkout
            name = re.search(r'^name\s*=\s*"([^"]+)"', text, re.MULTILINE)
            return folder if name and name.group(1) == DISTRIBUTION else None
    return None


def other_checkout(package_dir: Path, places: list[Path]) -> tuple[Path, Path] | None:
    """(checkout being run, imported package folder) when they differ; None when they agree."""
    imported = package_dir.resolve()
    for place in places:
        root = checkout_root(place.resolve())
        if root is not None and (root / "psysim").resolve() != imported:
            return root, imported
    return None


def warn_if_other_checkout(package_dir: Path) -> None:
    """Called on ``import psysim``: the places looked at are the working folder and any ``.py``
    file named on the command line (``inspect eval /path/to/clone/tasks/x.py``)."""
    if os.environ.get("PSYSIM_SKIP_CHECKOUT_CHECK"):
        return
    places = [Path.cwd()] + [Path(a).parent for a in sys.argv[1:] if a.endswith(".py") and Path(a).is_file()]
    found = other_checkout(package_dir, places)
    if found:
        root, imported = found
        warnings.warn(
            f"psysim is imported from {imported}, but the checkout being run is {root}: its prompts, "
            f"solvers and scorers will not be used. Install it (pip install -e {root}) or run from the "
            f"checkout that is installed.", OtherCheckoutWarning, stacklevel=2)
