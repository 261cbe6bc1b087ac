"""psysim-check-log: non-zero unless the runs succeeded; the documented per-condition loop stops on a failure."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from inspect_ai import Task, eval
from inspect_ai.dataset import Sample
from inspect_ai.log import EvalError, EvalLog, write_eval_log
from inspect_ai.model import get_model
from inspect_ai.solver import generate

from psysim.study.log_status import main

from mock_roles import output

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def finished_log(tmp_path_factory: pytest.TempPathFactory) -> EvalLog:
    model = get_model("mockllm/model", custom_outputs=lambda *args: output("fine"), memoize=False)
    task = Task(dataset=[Sample(input="hello")], solver=generate(), name="tiny")
    [log] = eval(task, model=model, log_dir=str(tmp_path_factory.mktemp("logs")), display="none")
    assert log.status == "success"
    return log


def write(log: EvalLog, directory: Path, name: str, mtime: int, **changes: object) -> Path:
    """A copy of ``log`` with ``changes`` at directory/name, last modified at ``mtime``."""
    path = directory / name
    # each file its own eval id, as Inspect gives a retry: one eval id is one run (log_series)
    changes.setdefault("eval", log.eval.model_copy(update={"eval_id": name}))
    write_eval_log(log.model_copy(update=changes), str(path))
    os.utime(path, (mtime, mtime))
    return path


def check(*argv: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_status_of_single_logs(tmp_path: Path, finished_log: EvalLog, capsys: pytest.CaptureFixture[str]) -> None:
    good = write(finished_log, tmp_path, "good.eval", 1000)
    bad = write(finished_log, tmp_path, "bad.eval", 1000, status="error",
                error=EvalError(message="InternalServerError: HTTP 500", traceback="", traceback_ansi=""))
    interrupted = write(finished_log, tmp_path, "killed.eval", 1000, status="started", results=None)
    assert check(str(good), capsys=capsys) == (0, f"success   tiny: 1/1 samples  [{good}]\n")
    code, text = check(str(bad), capsys=capsys)
    assert code == 1 and text.startswith("error     tiny: 1/1 samples; error: InternalServerError: HTTP 500")
    code, text = check(str(interrupted), capsys=capsys)
    assert code == 1 and text.startswith("started   tiny: ?/1 samples")
    assert check(str(good), str(bad), capsys=capsys)[0] == 1


def test_directory_checks_the_logs_the_report_uses(tmp_path: Path, finished_log: EvalLog, capsys: pytest.CaptureFixture[str]) -> None:
    # a run killed (started), then resumed to success: the same task id, the newer log succeeded
    write(finished_log, tmp_path, "2026-01-01T00-00-00-00-00_tiny_TaskA.eval", 1000, status="started", results=None)
    write(finished_log, tmp_path, "2026-01-01T01-00-00-00-00_tiny_TaskA.eval", 2000)
    code, text = check(str(tmp_path), capsys=capsys)
    assert code == 0 and text.count("success") == 1 and text.count("superseded") == 1
    # a later run of the same series that failed fails the directory: an earlier complete log
    # is a run of its own (log_series), it does not stand in for the failed one
    write(finished_log, tmp_path, "2026-01-01T02-00-00-00-00_tiny_TaskB.eval", 3000)
    write(finished_log, tmp_path, "2026-01-01T03-00-00-00-00_tiny_TaskB.eval", 4000, status="error",
          error=EvalError(message="boom", traceback="", traceback_ansi=""))
    code, text = check(str(tmp_path), capsys=capsys)
    assert code == 1 and text.count("superseded") == 1 and text.count("success") == 2
    assert text.count("error ") == 1
    # --latest: only the directory's newest log
    code, text = check("--latest", str(tmp_path), capsys=capsys)
    assert code == 1 and text.count("\n") == 1 and "TaskB" in text


def test_no_logs_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, text = check(str(tmp_path), capsys=capsys)
    assert code == 2 and "no Inspect logs" in text
    code, text = check(str(tmp_path / "missing"), capsys=capsys)
    assert code == 2 and "no such log file or directory" in text


DOCS_LOOP = """
for c in expert none generic; do
  inspect eval --run-config configs/paper.yaml -T condition=$c --log-dir logs/paper-$c {small}
  psysim-check-log --latest logs/paper-$c || break  # inspect eval exits 0 even when the run failed
done
"""


def test_readme_loop_stops_on_a_failed_condition(tmp_path: Path) -> None:
    """The loop in docs/experiment-1.md, against a server whose client calls always fail: it stops after the first."""
    from psysim.testing.fault_server import Fault, FaultServer

    def words(text: str) -> str:
        return " ".join(text.split())

    assert words(DOCS_LOOP.format(small="")) in words((REPO / "docs" / "experiment-1.md").read_text())  # the loop shown
    small = "-T sessions=1 -T turns=1 --limit 1 --epochs 1 --max-retries 0 --display plain"
    work = tmp_path / "work"  # the repository's configs and tasks, the logs apart
    work.mkdir()
    for name in ("configs", "tasks"):
        (work / name).symlink_to(REPO / name)
    with FaultServer([Fault("http_500", role="client")], max_seconds=240) as server:
        env = os.environ | {"VLLM_BASE_URL": server.base_url, "VLLM_API_KEY": "local",
                            "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
        result = subprocess.run(["bash", "-c", DOCS_LOOP.format(small=small)], cwd=work, env=env,
                                capture_output=True, text=True, timeout=240)
    assert "error     iterative_feedback (expert)" in result.stdout, result.stdout[-3000:] + result.stderr[-3000:]
    assert sorted(p.name for p in (work / "logs").iterdir()) == ["paper-expert"]  # stopped there
    assert json.dumps(server.injected) == '{"http_500": 3}'  # one attempt, the client's own 2 retries


def test_unreadable_log_in_directory_is_named(tmp_path: Path, finished_log: EvalLog, capsys: pytest.CaptureFixture[str]) -> None:
    write(finished_log, tmp_path, "2026-01-01T00-00-00-00-00_tiny_TaskA.eval", 1000)
    (tmp_path / "2026-01-01T01-00-00-00-00_tiny_TaskB.eval").write_bytes(b"not a zip file")
    code, text = check(str(tmp_path), capsys=capsys)
    assert code == 2 and "TaskB.eval" in text and "not a readable Inspect log" in text
