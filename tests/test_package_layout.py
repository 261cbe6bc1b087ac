"""The installed layout (issue 20): one namespace, registered tasks, data found as package data,
and a warning when the imported psysim is not the checkout being run."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from inspect_ai import eval
from inspect_ai._util.entrypoints import ensure_entry_points
from inspect_ai._util.registry import registry_find, registry_info
from mock_roles import Recorder, main_model, mock_role, roles
from safety_mocks import is_judge, phrase_judge

import psysim
from psysim._checkout import checkout_root, other_checkout

REPO = Path(__file__).resolve().parents[1]
TASKS = {"psysim/human_comparison", "psysim/iterative_feedback", "psysim/rater_validity", "psysim/safety_judge_check"}


def registered_tasks() -> set[str]:
    ensure_entry_points("psysim")
    return {registry_info(t).name for t in registry_find(lambda info: info.type == "task")
            if registry_info(t).name.startswith("psysim/")}


def test_every_task_is_registered_under_the_psysim_namespace() -> None:
    assert registered_tasks() == TASKS


@pytest.mark.parametrize("name", sorted(TASKS))
def test_each_registered_task_runs_by_its_registry_name_on_mock_roles(name: str, tmp_path: Path) -> None:
    recorder = Recorder()
    models = roles(recorder)
    models["safety_judge"] = mock_role("safety_judge", recorder,
                                       lambda call: phrase_judge(call) if is_judge(call) else "{}")
    [log] = eval(name, model=main_model(recorder), model_roles=models, limit=1,
                 log_dir=str(tmp_path / "logs"), display="none")
    assert log.status == "success", log.error
    assert log.eval.task == name
    assert len(log.samples or []) == 1 and log.samples[0].scores
    assert recorder.calls, "the task made no model call"
    assert not recorder.of("main"), "a role fell back to the main model"


def test_the_wheel_installs_only_the_psysim_namespace_with_its_data(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path), str(REPO)], check=True, capture_output=True)
    [wheel] = tmp_path.glob("psysim-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"psysim"}
    for shipped in ["psysim/tasks/iterative_feedback.py", "psysim/solvers/therapy_sessions.py",
                    "psysim/scorers/client_satisfaction.py", "psysim/datasets/personas/original.yaml",
                    "psysim/datasets/transcripts/demo_transcripts.csv", "psysim/datasets/safety/judge_check.yaml",
                    "psysim/prompts/therapist.yaml", "psysim/data/integrity.yaml",
                    "psysim/questionnaires/instruments/wai_sr.yaml", "psysim/rating_app/templates/rate.html",
                    "psysim/analysis/templates/report.html"]:
        assert shipped in names, shipped
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "[inspect_ai]\npsysim = psysim._registry" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_default_data_is_found_through_the_package() -> None:
    from psysim.inputs.personas import DEFAULT_PERSONAS
    from psysim.inputs.transcripts import DEFAULT_TRANSCRIPTS
    from psysim.safety.judge_check import DEFAULT_JUDGE_CHECK

    package = Path(psysim.__file__).parent
    for path in (DEFAULT_PERSONAS, DEFAULT_TRANSCRIPTS, DEFAULT_JUDGE_CHECK):
        assert path.is_file() and path.is_relative_to(package / "datasets"), path


def fake_checkout(root: Path) -> Path:
    (root / "psysim").mkdir(parents=True)
    (root / "psysim" / "__init__.py").write_text("")
    (root / "tasks").mkdir()
    (root / "pyproject.toml").write_text((REPO / "pyproject.toml").read_text())
    return root


def test_a_second_checkout_is_named_beside_the_imported_package(tmp_path: Path) -> None:
    clone = fake_checkout(tmp_path / "clone2")
    package = Path(psysim.__file__).parent
    assert checkout_root(clone / "tasks") == clone
    assert other_checkout(package, [clone / "tasks"]) == (clone, package.resolve())
    assert other_checkout(package, [REPO / "tasks"]) is None  # the installed checkout itself
    assert other_checkout(package, [tmp_path]) is None  # not a checkout at all


def test_importing_psysim_from_a_second_checkout_warns_with_both_paths(tmp_path: Path) -> None:
    clone = fake_checkout(tmp_path / "clone2")
    # -P: the working folder is not put on sys.path, as with the `inspect` command
    run = subprocess.run([sys.executable, "-P", "-c", "import psysim"], cwd=clone, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "OtherCheckoutWarning" in run.stderr
    assert str(clone) in run.stderr and str(Path(psysim.__file__).parent.resolve()) in run.stderr
    quiet = subprocess.run([sys.executable, "-P", "-c", "import psysim"], cwd=REPO, capture_output=True, text=True)
    assert "OtherCheckoutWarning" not in quiet.stderr
