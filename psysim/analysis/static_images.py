"""PNG copies of the report's figures, beside ``index.html``.

The route: kaleido (>= 1, a dependency of the project, so ``pip install -e .`` brings it) drives
an installed Chrome or Chromium; on Debian that is the ``chromium`` package, which ``.ci/run``
installs. All figures go through one browser session (``plotly.io.write_images``). Without a
browser the report is complete in HTML and the note says exactly what to install. PNGs can be
switched off with ``--no-png`` or ``PSYSIM_REPORT_PNG=0`` (the test suite does, for speed).
"""

from __future__ import annotations

import os
from pathlib import Path

import plotly.graph_objects as go

PNG_ENV = "PSYSIM_REPORT_PNG"
WIDTH = 1000
INSTALL_HINT = ("kaleido needs Chrome or Chromium: `apt-get install chromium` (Debian/Ubuntu; what .ci/run "
                "installs), or point BROWSER_PATH at an installed one, or run `plotly_get_chrome` (downloads Chrome)")


def png_wanted(flag: bool | None = None) -> bool:
    """``flag`` when given (``--png``/``--no-png``), else ``PSYSIM_REPORT_PNG`` (default on)."""
    if flag is not None:
        return flag
    return os.environ.get(PNG_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def write_pngs(figures: dict[str, go.Figure], out: Path) -> tuple[dict[str, Path], list[str]]:
    """Write ``<name>.png`` per figure; returns the files written and notes on what was not."""
    if not figures:
        return {}, []
    try:
        import kaleido  # noqa: F401
        import plotly.io as pio
    except ImportError:
        return {}, ["PNG figures not written: kaleido is not installed (`pip install -e .` installs it; "
                    f"then {INSTALL_HINT}). The HTML report is complete without them."]
    paths = {name: out / f"{name}.png" for name in figures}
    heights = [int(figure.layout.height or 520) for figure in figures.values()]
    try:
        pio.write_images(list(figures.values()), list(paths.values()), width=WIDTH, height=heights, scale=2)
    except Exception as ex:  # no browser, a browser that does not start, ...
        first = str(ex).strip().splitlines()[0][:200] if str(ex).strip() else ""
        browser = "chrome" in f"{type(ex).__name__} {ex}".lower() or "browser" in f"{type(ex).__name__} {ex}".lower()
        hint = INSTALL_HINT if browser else f"{INSTALL_HINT}; if one is installed, this is the error to report"
        return ({name: path for name, path in paths.items() if path.is_file()},
                [f"PNG figures not written ({type(ex).__name__}: {first}): {hint}. The HTML report is complete "
                 "without them."])
    return paths, []
