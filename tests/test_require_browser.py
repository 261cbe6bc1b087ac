"""In CI (``PSYSIM_REQUIRE_BROWSER=1``, set by ``.ci/run``) a browser test that would skip for a
missing Chromium or axe-core fails instead; other skips stay skips."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent


@pytest.mark.parametrize("required", ["1", ""])
def test_browser_skip_fails_only_when_required(tmp_path: Path, required: str) -> None:
    # the project's hook, loaded under another module name (this folder's conftest is "conftest")
    (tmp_path / "conftest.py").write_text(
        "import importlib.util, sys\n"
        f"sys.path.insert(0, {str(TESTS)!r})\n"
        f"spec = importlib.util.spec_from_file_location('project_conftest', {str(TESTS / 'conftest.py')!r})\n"
        "module = importlib.util.module_from_spec(spec)\nspec.loader.exec_module(module)\n"
        "pytest_runtest_makereport = module.pytest_runtest_makereport\n")
    (tmp_path / "test_skips.py").write_text(
        "import pytest\n"
        "def test_browser():\n    pytest.skip('no Chromium found (apt-get install -y chromium)')\n"
        "def test_axe():\n    pytest.skip('axe-core not installed (node_modules/axe-core); run `npm ci`')\n"
        "def test_data():\n    pytest.skip('shared data not present: x')\n")
    env = {**os.environ, "PSYSIM_REQUIRE_BROWSER": required}
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rA", str(tmp_path)],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    last = out.stdout.strip().splitlines()[-1]
    if required:
        assert out.returncode == 1 and "2 failed, 1 skipped" in last, out.stdout
        assert "PSYSIM_REQUIRE_BROWSER=1, but this browser test would skip" in out.stdout
    else:
        assert out.returncode == 0 and "3 skipped" in last, out.stdout
