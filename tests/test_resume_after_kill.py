"""psysim-paper killed with SIGKILL mid-run, then resumed: the same scores as an uninterrupted run.

Both runs are real subprocesses against the fault server (itself a subprocess) with latency and
prompt-derived ratings, so every persona-run has its own scores. The second persona's first
client call stalls in the first run only (``times``), so the first persona's samples finish and
reach the log while the second persona's are still in flight when the run is killed.

Issue 22: a sample that had finished but was not yet written into the log at the kill was rebuilt
by Inspect from its sample buffer on resume, without its store and with 5 of its messages.
``psysim-paper`` now drops those buffers (psysim/study/resume.py) so such samples run again; the
second test kills at that point every time, and both check store and messages sample by sample.
"""

from __future__ import annotations

import json
import re
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from inspect_ai.log import list_eval_logs, read_eval_log

REPO = Path(__file__).resolve().parents[1]
WAIT = 180  # seconds: bound on every wait below (never reached in a working run)


def paper_command(log_dir: Path, epochs: int = 2) -> list[str]:
    return [sys.executable, "-m", "psysim.study.paper", "--model", "vllm/fake", "--log-dir", str(log_dir),
            "--limit", "2", "--sessions", "2", "--turns", "1", "--epochs", str(epochs), "--retry-attempts", "0"]


# psysim-paper with Inspect's log buffer at 100: no sample is written into the log before its task ends
BUFFERED_PAPER = ("import functools, sys; import psysim.study.paper as paper; "
                  "paper.eval_set = functools.partial(paper.eval_set, log_buffer=100); sys.exit(paper.main())")


def completed_in_buffer(data_home: Path) -> int:
    """Finished samples in Inspect's sample buffer databases under ``data_home``."""
    count = 0
    for db in data_home.rglob("*.db"):
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as connection:
                rows = connection.execute("SELECT data FROM samples").fetchall()
        except sqlite3.Error:
            continue  # not a buffer database, or one being created
        # the summary's JSON (some rows are not valid JSON to SQLite: match the field)
        count += sum(1 for (data,) in rows if re.search(r'"completed":\s*true', data or ""))
    return count


def rating_items(log_dir: Path) -> tuple[int, list[str]]:
    """Items a rating study would be built from over ``log_dir`` (superseded logs left out), and
    the reasons of the samples that give none."""
    from psysim.rating_app.items import read_items
    from psysim.study.log_series import load_selection

    items, reasons = 0, []
    for entry in load_selection(log_dir).used:
        found, skipped = read_items(entry)
        items += len(found)
        reasons += [s.reason for s in skipped]
    return items, reasons


def assert_complete(final: dict[tuple[str, Any, int], Any], turns: int = 4) -> None:
    """Every sample has its course in the store and all its messages (issue 22)."""
    for key, sample in final.items():
        course = sample.store.get("TherapyCourse:turns")
        assert course and len(course) == turns, (key, sorted(sample.store))
        assert len(sample.store.get("TherapyCourse:sessions") or []) == 2, key
        assert len(sample.messages) >= 2 * turns + 1, (key, len(sample.messages))


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


@contextmanager
def stalling_server(tmp_path: Path, times: int) -> Iterator[str]:
    """The fault server (a subprocess) whose client calls for the second persona stall ``times``
    times in all; yields its base URL."""
    schedule = tmp_path / "faults.json"
    schedule.write_text(json.dumps([{"kind": "stall", "role": "client", "contains": "Arjun Mehta", "times": times}]))
    server = subprocess.Popen(
        [sys.executable, "-m", "psysim.testing.fault_server", "--schedule", str(schedule), "--latency", "0.05",
         "--derive-ratings", "--max-seconds", str(3 * WAIT)],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )
    try:
        yield server.stdout.readline().split()[1]
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_killed_run_resumes_to_the_scores_of_an_uninterrupted_run(tmp_path: Path) -> None:
    # 3 conditions x 2 runs of the second persona: each stalls once, in the first run only
    with stalling_server(tmp_path, times=6) as base_url:
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

    final, uninterrupted = samples_by_key(resumed_dir, "success"), samples_by_key(reference_dir, "success")
    assert len(final) == len(uninterrupted) == 12  # 3 conditions x 2 personas x 2 runs
    scores = {key: s.scores["client_satisfaction"].value for key, s in final.items()}
    assert scores == {key: s.scores["client_satisfaction"].value for key, s in uninterrupted.items()}
    # the scores vary by persona and run (the scripted dialogue is the same under every condition)
    assert len({json.dumps(value, sort_keys=True) for value in scores.values()}) == 4
    # the samples finished before the kill were reused as they were, not run again, and whole
    assert all(final[key].uuid == sample.uuid for key, sample in before_kill.items())
    assert_complete(final)
    assert rating_items(resumed_dir) == (2 * len(final), [])  # 2 sessions each: none lost, none unexplained
    for key, sample in final.items():
        assert len(sample.messages) == len(uninterrupted[key].messages), key
        assert sorted(sample.store) == sorted(uninterrupted[key].store), key


def test_samples_finished_but_not_yet_in_the_log_run_again_whole(tmp_path: Path) -> None:
    """Kill when the first persona's 3 samples have finished but sit only in Inspect's sample buffer
    (a log buffer of 100: nothing is written into the log before the task ends): on resume they run
    again, complete. Rebuilt from the buffer they came back with an empty store."""
    with stalling_server(tmp_path, times=3) as base_url:
        data_home = tmp_path / "data"
        env = os.environ | {"VLLM_BASE_URL": base_url, "VLLM_API_KEY": "local", "XDG_DATA_HOME": str(data_home)}
        log_dir = tmp_path / "logs"
        command = paper_command(log_dir, epochs=1)
        run = subprocess.Popen([sys.executable, "-c", BUFFERED_PAPER, *command[3:]], cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        deadline = time.monotonic() + WAIT
        while completed_in_buffer(data_home) < 3:  # the first persona, 3 conditions x 1 run
            assert run.poll() is None, "psysim-paper ended before it could be killed"
            assert time.monotonic() < deadline, "no sample finished"
            time.sleep(0.2)
        assert stats(base_url)["injected"] == {"stall": 3} and flushed_samples(log_dir) == 0
        run.send_signal(signal.SIGKILL)
        run.wait(timeout=WAIT)
        requests_before = stats(base_url)["requests"]
        resumed = subprocess.run(paper_command(log_dir, epochs=1), cwd=REPO, env=env, capture_output=True, text=True,
                                 timeout=WAIT)
        assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
        assert "resuming 3 interrupted log(s)" in resumed.stderr
        # all 6 samples ran again: 6 persona-runs x 6 calls + 2 expert reviews
        assert stats(base_url)["requests"] - requests_before == 6 * 6 + 2 + 1  # + the preflight's one probe call
    final = samples_by_key(log_dir, "success")
    assert len(final) == 6
    assert_complete(final)
    assert rating_items(log_dir) == (12, [])
