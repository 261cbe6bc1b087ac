"""psysim-paper killed with SIGKILL mid-run, then resumed: the same scores as an uninterrupted run.

Both runs are real subprocesses against the fault server (itself a subprocess) with latency and
prompt-derived ratings, so every persona-run has its own scores. The second persona's first
client call stalls in the first run only (``times``), so the first persona's samples finish and
reach the log while the second persona's are still in flight when the run is killed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

from inspect_ai.log import list_eval_logs, read_eval_log

REPO = Path(__file__).resolve().parents[1]
WAIT = 180  # seconds: bound on every wait below (never reached in a working run)


def paper_command(log_dir: Path) -> list[str]:
    return [sys.executable, "-m", "psysim.study.paper", "--model", "vllm/fake", "--log-dir", str(log_dir),
            "--limit", "2", "--sessions", "2", "--turns", "1", "--epochs", "2", "--retry-attempts", "0"]


def flushed_samples(log_dir: Path) -> int:
    """Samples written into the .eval files of ``log_dir`` so far (0 while a file is mid-write)."""
    count = 0
    for path in log_dir.glob("*.eval"):
        try:
            with zipfile.ZipFile(path) as archive:
                count += sum(name.startswith("samples/") for name in archive.namelist())
        except (zipfile.BadZipFile, OSError):
            return 0
    return count


def samples_by_key(log_dir: Path, status: str) -> dict[tuple[str, Any, int], Any]:
    """(condition, sample id, epoch) -> sample, over the logs of ``log_dir`` with ``status``."""
    samples = {}
    for info in list_eval_logs(str(log_dir)):
        log = read_eval_log(info)
        if log.status == status:
            for sample in log.samples or []:
                samples[(log.eval.task_args["condition"], sample.id, sample.epoch)] = sample
    return samples


def stats(base_url: str) -> dict[str, Any]:
    with urllib.request.urlopen(base_url + "/stats", timeout=10) as response:
        return json.load(response)


def test_killed_run_resumes_to_the_scores_of_an_uninterrupted_run(tmp_path: Path) -> None:
    schedule = tmp_path / "faults.json"
    # 3 conditions x 2 runs of the second persona: each stalls once, in the first run only
    schedule.write_text(json.dumps([{"kind": "stall", "role": "client", "contains": "Arjun Mehta", "times": 6}]))
    server = subprocess.Popen(
        [sys.executable, "-m", "psysim.testing.fault_server", "--schedule", str(schedule), "--latency", "0.05",
         "--derive-ratings", "--max-seconds", str(3 * WAIT)],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )
    try:
        base_url = server.stdout.readline().split()[1]
        # the sample buffer database (recovery data) in the test's own data directory
        env = os.environ | {"VLLM_BASE_URL": base_url, "VLLM_API_KEY": "local", "XDG_DATA_HOME": str(tmp_path / "data")}
        resumed_dir, reference_dir = tmp_path / "resumed", tmp_path / "reference"

        run = subprocess.Popen(paper_command(resumed_dir), cwd=REPO, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + WAIT
        while flushed_samples(resumed_dir) < 6:  # the first persona: 3 conditions x 2 runs
            assert run.poll() is None, "psysim-paper ended before it could be killed"
            assert time.monotonic() < deadline, "no samples reached the log"
            time.sleep(0.2)
        assert stats(base_url)["injected"] == {"stall": 6}  # the second persona's samples in flight
        run.send_signal(signal.SIGKILL)
        run.wait(timeout=WAIT)

        before_kill = samples_by_key(resumed_dir, "started")
        assert {key[1] for key in before_kill} == {"grief_retired_teacher"} and len(before_kill) == 6

        requests_before = stats(base_url)["requests"]
        resumed = subprocess.run(paper_command(resumed_dir), cwd=REPO, env=env, capture_output=True, text=True, timeout=WAIT)
        assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
        # only the unfinished samples ran again: 6 persona-runs x 6 calls + 2 expert reviews, after
        # the preflight's one probe call
        assert stats(base_url)["requests"] - requests_before == 6 * 6 + 2 + 1

        reference = subprocess.run(paper_command(reference_dir), cwd=REPO, env=env, capture_output=True, text=True, timeout=WAIT)
        assert reference.returncode == 0, reference.stdout[-2000:] + reference.stderr[-2000:]
    finally:
        server.terminate()
        server.wait(timeout=30)

    final, uninterrupted = samples_by_key(resumed_dir, "success"), samples_by_key(reference_dir, "success")
    assert len(final) == len(uninterrupted) == 12  # 3 conditions x 2 personas x 2 runs
    scores = {key: s.scores["client_satisfaction"].value for key, s in final.items()}
    assert scores == {key: s.scores["client_satisfaction"].value for key, s in uninterrupted.items()}
    # the scores vary by persona and run (the scripted dialogue is the same under every condition)
    assert len({json.dumps(value, sort_keys=True) for value in scores.values()}) == 4
    # the samples finished before the kill were reused as they were, not run again
    assert all(final[key].uuid == sample.uuid for key, sample in before_kill.items())
