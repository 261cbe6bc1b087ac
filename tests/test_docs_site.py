"""The documentation site: `mkdocs build --strict` passes (every page in the nav or deliberately outside it,
every link to a page and an anchor resolves, CHANGELOG.md included), and the README stays a short front page."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README_LIMIT = 15_000  # bytes (issue 24: the README is the front page; the detail lives in docs/)


def test_mkdocs_build_strict(tmp_path: Path) -> None:
    env = os.environ | {"NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    changelog = (tmp_path / "site" / "changelog" / "index.html").read_text(encoding="utf-8")
    assert "Task versions" in changelog  # CHANGELOG.md itself, included by the snippet, not the include line
    assert (tmp_path / "site" / "development" / "integrity-prompt-log" / "index.html").is_file()  # built, outside the nav


def test_readme_is_a_short_front_page() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(readme.encode("utf-8")) < README_LIMIT
    text = " ".join(readme.replace("\n> ", "\n").split())  # one line, block quotes unwrapped
    for needed in ("./run_offline.sh", ".venv/bin/pytest", "psysim-demo", "psysim/iterative_feedback",
                   "simulated ratings are not patient outcomes", "sends no telemetry",
                   "Using Llama-3 to Refine Psychotherapy in Silico", "CITATION.cff", "LICENSE"):
        assert needed in text, needed
