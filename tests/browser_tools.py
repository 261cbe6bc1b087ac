"""Shared by the browser tests: the system Chromium through Playwright, and axe-core.

Each helper skips the test with the reason when its tool is absent (``.ci/run`` installs both;
there, ``PSYSIM_REQUIRE_BROWSER=1`` turns those skips into failures: tests/conftest.py)."""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

REPO = Path(__file__).resolve().parents[1]
AXE = Path(os.environ.get("AXE_CORE_JS", REPO / "node_modules" / "axe-core" / "axe.min.js"))
SERIOUS = ("serious", "critical")


def chromium_path() -> str:
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and Path(candidate).is_file():
            return candidate
    pytest.skip("no Chromium found (apt-get install -y chromium, or set CHROMIUM=/path/to/chromium)")


@contextmanager
def chromium() -> Iterator:
    """A headless system Chromium (Playwright's own browser download is never used)."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')")
    executable = chromium_path()
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox", "--disable-gpu"])
        yield launched
        launched.close()


def axe_violations(page) -> list[dict]:  # noqa: ANN001
    """axe-core's violations on the page as it is now."""
    if not AXE.is_file():
        pytest.skip(f"axe-core not installed ({AXE}); run `npm ci` at the repository root")
    page.add_script_tag(path=str(AXE))
    return page.evaluate("async () => (await axe.run(document)).violations")
