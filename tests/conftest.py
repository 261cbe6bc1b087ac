from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
sys.path.insert(0, str(Path(__file__).parent))  # tests/mock_roles.py
REQUIRE_BROWSER = "PSYSIM_REQUIRE_BROWSER"
"""Set to 1 (``.ci/run`` does) and a browser test that would skip for a missing tool fails instead."""
BROWSER_SKIPS = ("no Chromium found", "axe-core not installed", "playwright is not installed", "kaleido is not installed")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):  # noqa: ANN001, ANN201
    """In CI the browser and axe tests must run: their skip for a missing tool becomes a failure."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get(REQUIRE_BROWSER) == "1" and report.skipped:
        reason = str(report.longrepr)
        if any(marker in reason for marker in BROWSER_SKIPS):
            report.outcome = "failed"
            report.longrepr = f"{REQUIRE_BROWSER}=1, but this browser test would skip: {reason}"


@pytest.fixture(autouse=True)
def _isolated_inspect(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test gets its own generate cache and no stray provider configuration."""
    monkeypatch.setenv("INSPECT_CACHE_DIR", str(tmp_path / "inspect-cache"))
    monkeypatch.setenv("INSPECT_LOG_DIR", str(tmp_path / "logs"))
    # reports skip the PNGs (a browser per report is slow); tests/test_report_document.py turns them on
    monkeypatch.setenv("PSYSIM_REPORT_PNG", "0")
    for var in ("INSPECT_EVAL_MODEL", "VLLM_BASE_URL", "INSPECT_EVAL_MODEL_ROLES", "VLLM_DEFAULT_SERVER_ARGS"):
        monkeypatch.setenv(var, "")  # so that the variable is restored (or removed) after the test
        monkeypatch.delenv(var)


def shared_file(*parts: str) -> Path:
    """A file under ../shared/data, or skip the test with the reason."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.is_file():
        pytest.skip(f"shared data not present: {path} (see ../shared/data/README.md)")
    return path


def pytest_terminal_summary(terminalreporter) -> None:  # noqa: ANN001
    """The fault suite's summary (tests/fault_audit.py) when fault-server runs were audited."""
    from fault_audit import SUITE

    if SUITE.runs:
        terminalreporter.section("fault suite")
        for line in SUITE.lines():
            terminalreporter.write_line(line)
