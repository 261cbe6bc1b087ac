"""The hosted CI workflow: valid against the workflow schema, and only a runner of .ci/run with caches."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from psysim.offline.cache import cache_dir

REPO = Path(__file__).resolve().parents[1]
WORKFLOW = REPO / ".github" / "workflows" / "ci.yml"
CHECKER = Path(sys.executable).parent / "check-jsonschema"


def validate(path: Path) -> subprocess.CompletedProcess[str]:
    # the schema ships inside check-jsonschema (--builtin-schema): no download
    return subprocess.run([str(CHECKER), "--builtin-schema", "vendor.github-workflows", str(path)],
                          capture_output=True, text=True, timeout=120)


def test_workflow_is_valid_and_a_broken_one_is_not(tmp_path: Path) -> None:
    assert CHECKER.exists(), "check-jsonschema is a dev dependency (pip install -e '.[dev]')"
    done = validate(WORKFLOW)
    assert done.returncode == 0, done.stdout + done.stderr
    broken = yaml.safe_load(WORKFLOW.read_text())
    del broken["jobs"]["ci"]["runs-on"]  # a job without a runner
    broken["jobs"]["ci"]["steps"][0]["uses"] = 42
    (tmp_path / "ci.yml").write_text(yaml.safe_dump(broken))
    assert validate(tmp_path / "ci.yml").returncode != 0


def test_workflow_runs_ci_run_with_the_engine_and_model_cached() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    steps = workflow["jobs"]["ci"]["steps"]
    runs = [step["run"] for step in steps if "run" in step]
    assert runs == ["bash .ci/run"]  # .ci/run stays the single truth
    cached = [step["with"]["path"] for step in steps if str(step.get("uses", "")).startswith("actions/cache@")]
    assert "~/.cache/psychotherapy-in-silico" in cached  # the engine and model cache's default folder
    assert cache_dir.__doc__ and "psychotherapy-in-silico" in cache_dir.__doc__
    assert workflow["jobs"]["ci"]["timeout-minutes"] <= 90
    assert "psysim-demo" in (REPO / ".ci" / "run").read_text()
