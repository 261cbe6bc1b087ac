"""Slurm as the distributed engine (issue 28): the shipped scripts in configs/slurm/.

* Without Slurm: the array index -> ``--shard K/N`` mapping of ``study.sbatch`` and the job wiring
  of ``submit.sh`` (the array, then the report with ``--dependency=afterany``), against a
  ``psysim-paper`` and an ``sbatch`` that only record their arguments.
* With a cluster up (``.ci/slurm-up.sh``, as ``.ci/run`` does; skipped with the reason otherwise):
  ``sbatch --test-only`` of every shipped script, and a real 2-task array of a tiny study against
  the fake server plus the report job, whose report must equal a single-process run's.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from psysim.analysis.cli import main as report_main
from psysim.analysis.frames import read_frames
from psysim.study.paper import main as paper_main
from psysim.testing.fake_server import FakeOpenAIServer

SLURM = Path(__file__).resolve().parents[1] / "configs" / "slurm"
SCRIPTS = sorted(SLURM.glob("*.sbatch"))
ARGS = ["--model", "vllm/fake-slurm", "--epochs", "2", "--sessions", "2", "--turns", "1", "--limit", "4"]


def recorder(directory: Path, name: str, reply: str = "") -> Path:
    """An executable ``name`` in ``directory`` that appends its arguments to ``name.args`` and prints ``reply``."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{directory / name}.args"\nprintf "{reply}"\n')
    path.chmod(0o755)
    return path


def test_array_index_is_the_shard_and_n_is_never_the_array_size(tmp_path: Path) -> None:
    recorder(tmp_path / "venv" / "bin", "psysim-paper")
    env = {**os.environ, "PSYSIM_VENV": str(tmp_path / "venv"), "SLURM_ARRAY_TASK_ID": "3", "PSYSIM_SHARDS": "4"}
    run = subprocess.run(["bash", SLURM / "study.sbatch", "--log-dir", "L", "--model", "vllm/m"], env=env,
                         capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "venv" / "bin" / "psysim-paper.args").read_text() == "--log-dir L --model vllm/m --shard 3/4\n"
    for unset, reason in (("PSYSIM_SHARDS", "PSYSIM_SHARDS"), ("SLURM_ARRAY_TASK_ID", "not an array task")):
        run = subprocess.run(["bash", SLURM / "study.sbatch"], env={k: v for k, v in env.items() if k != unset},
                             capture_output=True, text=True, timeout=30)
        assert run.returncode == 2 and reason in run.stderr


def test_submit_queues_the_report_after_any_end_of_the_array(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    recorder(bin_dir, "sbatch", reply="4242")
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    run = subprocess.run([SLURM / "submit.sh", "--shards", "3", "--log-dir", tmp_path / "logs", "--tasks", "2",
                          "--sbatch=--gres=gpu:1", "--", "--model", "vllm/m"], env=env, capture_output=True, text=True,
                         timeout=30)
    assert run.returncode == 0, run.stderr
    array, report = (bin_dir / "sbatch.args").read_text().splitlines()
    logs = tmp_path / "logs"
    assert array == (f"--parsable --array=2 --output={logs}/slurm/study-%A_%a.out --gres=gpu:1 "
                     f"{SLURM}/study.sbatch --log-dir {logs} --model vllm/m")
    assert report == (f"--parsable --dependency=afterany:4242 --output={logs}/slurm/report-%j.out "
                      f"{SLURM}/report.sbatch {logs} {logs}/report")
    bad = subprocess.run([SLURM / "submit.sh", "--log-dir", tmp_path], env=env, capture_output=True, text=True)
    assert bad.returncode == 2 and "--shards N is required" in bad.stderr


def cluster_absent() -> str | None:
    """Why the Slurm tests cannot run here, or None when a cluster with a usable node is up."""
    for tool in ("sbatch", "sinfo", "squeue", "scontrol"):
        if shutil.which(tool) is None:
            return f"Slurm is not installed ({tool} not found; .ci/slurm-up.sh sets up a one-node cluster as root)"
    try:
        states = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=5)
    except subprocess.TimeoutExpired:
        return "no Slurm cluster answers (sinfo timed out; start it with .ci/slurm-up.sh)"
    if not re.search(r"^(idle|mix|alloc)", states.stdout, re.M):
        return f"no usable Slurm node (sinfo: {(states.stdout + states.stderr).strip()!r}; see .ci/slurm-up.sh)"
    return None


ABSENT = cluster_absent()  # once: sinfo may wait for a controller that is not there
needs_cluster = pytest.mark.skipif(ABSENT is not None, reason=str(ABSENT))


@needs_cluster
@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_shipped_script_passes_sbatch_test_only(script: Path, tmp_path: Path) -> None:
    extra = ["--array=1-2"] if script.name == "study.sbatch" else []
    run = subprocess.run(["sbatch", "--test-only", *extra, script, "LOGS", "REPORT"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=30)
    assert run.returncode == 0 and "to start at" in run.stderr, run.stderr


def job_states(job: str) -> list[str]:
    shown = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True, timeout=30).stdout
    return re.findall(r"JobState=(\S+)", shown)


def wait_for(jobs: list[str], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        queued = subprocess.run(["squeue", "-h", "-j", ",".join(jobs)], capture_output=True, text=True).stdout
        if not queued.strip():
            return
        time.sleep(1)
    subprocess.run(["scancel", *jobs])
    pytest.fail(f"Slurm jobs {jobs} not finished after {seconds} s (cancelled)")


IDENTITY = {"evals.csv": "one row per log file, and a sharded study has a log per shard"}


def sorted_csv(path: Path) -> pd.DataFrame:
    """A report table, sorted, without what names logs rather than results.

    The eval id is the log's; a run is ``<eval id or sharded study>:<epoch>`` and one run is one
    epoch across all shards, so runs are compared by their epoch. ``se_model`` rests on variance
    components near 0, reached by a row-order-dependent optimiser path (as in
    tests/test_sharding.py); the estimates and CIs beside it are compared.
    """
    table = pd.read_csv(path).drop(columns=["se_model", "eval_id"], errors="ignore")
    if "run" in table:
        table["run"] = table["run"].astype(str).str.rsplit(":", n=1).str[-1]
    return table.sort_values(list(table.columns)).reset_index(drop=True) if len(table) else table


@needs_cluster
def test_array_of_shards_and_report_job_equal_one_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeOpenAIServer(derive_ratings=True, max_seconds=900) as server:
        for name, value in {"VLLM_BASE_URL": server.base_url, "VLLM_API_KEY": "local",
                            "VLLM_DEFAULT_SERVER_ARGS": "{}"}.items():
            monkeypatch.setenv(name, value)
        env = {**os.environ, "PSYSIM_VENV": sys.prefix, "INSPECT_CACHE_DIR": str(tmp_path / "slurm-cache")}
        submitted = subprocess.run([SLURM / "submit.sh", "--shards", "2", "--log-dir", tmp_path / "sharded",
                                    "--report-dir", tmp_path / "report-sharded", "--", *ARGS],
                                   env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert submitted.returncode == 0, submitted.stderr
        array, report = re.search(r"array job (\d+) .*report job (\d+)", submitted.stdout).groups()
        # the same study in this process, while the cluster runs the shards
        assert paper_main([*ARGS, "--log-dir", str(tmp_path / "whole")]) == 0
        wait_for([array, report], seconds=600)
    outputs = "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted((tmp_path / "sharded" / "slurm").iterdir()))
    states = {"array": job_states(array), "report": job_states(report)}
    print(f"Slurm job states: {states}")  # shown with -s; the closing note quotes them
    assert states == {"array": ["COMPLETED", "COMPLETED"], "report": ["COMPLETED"]}, outputs
    assert sorted(p.name for p in (tmp_path / "sharded").glob("shard-*")) == ["shard-1-of-2", "shard-2-of-2"]

    assert report_main([str(tmp_path / "whole"), "-o", str(tmp_path / "report-whole"), "--quiet"]) == 0
    whole, sharded = read_frames(tmp_path / "whole").exp1, read_frames(tmp_path / "sharded").exp1
    assert len(whole) == 3 * 4 * 2 * 2  # conditions x personas x runs x sessions
    key = ["condition", "persona", "epoch", "session"]
    columns = [*key, "rating", "setting"]
    pd.testing.assert_frame_equal(whole[columns].sort_values(key).reset_index(drop=True),
                                  sharded[columns].sort_values(key).reset_index(drop=True), rtol=1e-9, atol=1e-9)
    tables = sorted(p.name for p in (tmp_path / "report-whole").glob("*.csv"))
    assert tables == sorted(p.name for p in (tmp_path / "report-sharded").glob("*.csv"))
    assert {"statistics.csv", "exp1_ratings.csv", "exp1_mixed_fixed_effects.csv"} <= set(tables)
    for table in sorted(set(tables) - set(IDENTITY)):
        a, b = sorted_csv(tmp_path / "report-whole" / table), sorted_csv(tmp_path / "report-sharded" / table)
        assert list(a.columns) == list(b.columns) and len(a) == len(b), table
        numeric = a.select_dtypes("number").columns
        assert np.allclose(a[numeric].to_numpy(float), b[numeric].to_numpy(float), rtol=1e-9, atol=1e-9,
                           equal_nan=True), table
        pd.testing.assert_frame_equal(a.drop(columns=numeric), b.drop(columns=numeric), obj=table)
