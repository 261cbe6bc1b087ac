"""Provenance: every log says what produced it, and the report never pools logs of different inputs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from inspect_ai import eval
from inspect_ai.log import list_eval_logs, read_eval_log, write_eval_log

from psysim.analysis.cli import main as report_main
from psysim.analysis.frames import read_frames
from psysim.analysis.report import logs_lines
from psysim.provenance import (
    NO_PROVENANCE,
    differing_files,
    fingerprint,
    provenance,
    split_by_provenance,
    text_record,
)
from psysim.study.log_series import load_selection
from psysim.tasks.human_comparison import human_comparison
from psysim.tasks.iterative_feedback import iterative_feedback
from psysim.tasks.rater_validity import rater_validity
from psysim.tasks.safety_judge_check import safety_judge_check

FAST = ["--quiet", "--bootstrap", "20"]


def run_exp1(log_dir: Path, guidelines: Path, condition: str = "expert") -> Path:
    [log] = eval(iterative_feedback(condition=condition, sessions=2, turns=1, guidelines=str(guidelines)),
                 model="psysim/demo", limit=2, epochs=2, log_dir=str(log_dir), display="none")
    assert log.status == "success"
    return Path(log.location)


@pytest.fixture(scope="module")
def two_prompt_versions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Logs of the same task, arguments and model whose guidelines file (same path) was edited between runs."""
    root = tmp_path_factory.mktemp("provenance")
    guidelines = root / "guidelines.md"
    logs = root / "logs"
    for text in ("Agree on goals and tasks.", "Agree on goals and tasks, and keep a warm bond."):
        guidelines.write_text(text)
        for condition in ("expert", "none"):
            run_exp1(logs, guidelines, condition)
    return logs


def test_every_task_records_its_version_and_inputs() -> None:
    for task, expected in [
        (iterative_feedback(), {"prompt:therapist", "prompt:client", "prompt:expert", "prompt:rating", "personas",
                                "guidelines", "generic_feedback", "integrity"}),
        (iterative_feedback(therapist="poor", questionnaires="srs", safety=True),
         {"prompt:therapist_poor", "prompt:questionnaire", "prompt:safety_judge", "instrument:srs", "safety_rubric"}),
        (human_comparison(snippets=2), {"prompt:therapist", "prompt:expert", "transcripts", "guidelines"}),
        (rater_validity(per_group=2), {"prompt:client", "prompt:rating", "transcripts"}),
        (safety_judge_check(), {"prompt:safety_judge", "responses", "safety_rubric"}),
    ]:
        record = task.metadata["provenance"]
        assert isinstance(task.version, int) and task.version >= 1
        assert expected <= set(record["files"]), set(record["files"])
        assert record["psysim_version"]
        for entry in record["files"].values():
            assert len(entry["sha256"]) == 64 and entry["path"]
    prompts = iterative_feedback().metadata["provenance"]["files"]
    assert prompts["prompt:client"]["version"] == 5 and prompts["prompt:client"]["path"] == "psysim/prompts/client.yaml"


def test_fingerprint_follows_the_inputs_not_the_commit() -> None:
    a = provenance({"guidelines": text_record("one")})
    b = provenance({"guidelines": text_record("two")})
    same_inputs_other_commit = {**a, "git_commit": "0" * 40, "psysim_version": "9.9"}
    assert fingerprint(1, a) == fingerprint(1, same_inputs_other_commit)
    assert fingerprint(1, a) != fingerprint(1, b)
    assert fingerprint(1, a) != fingerprint(2, a)  # a bumped task version
    assert fingerprint(0, None) == fingerprint(1, {}) == NO_PROVENANCE
    assert differing_files([a, b]) == ["guidelines"] and differing_files([a, same_inputs_other_commit]) == []


def test_only_inputs_both_logs_used_are_compared() -> None:
    """A log with questionnaires has instrument files one without lacks: not a provenance split;
    two logs whose instrument files differ are."""
    core = {"prompt:client": text_record("client v5")}
    plain_log = provenance(core)
    with_srs = provenance(core | {"instrument:srs": text_record("srs v1")})
    with_srs2 = provenance(core | {"instrument:srs": text_record("srs v2")})
    assert split_by_provenance({"a": (1, plain_log), "b": (1, with_srs)}).differing == []
    split = split_by_provenance({"a": (1, plain_log), "b": (1, with_srs), "c": (1, with_srs2)})
    assert split.differing == ["instrument:srs"] and len(set(split.labels.values())) == 3
    split = split_by_provenance({"a": (1, plain_log), "b": (2, plain_log), "old": (0, None)})
    assert split.differing == ["task version", NO_PROVENANCE] and split.labels["old"] == NO_PROVENANCE


def test_logs_differing_only_in_a_prompt_file_are_two_settings(two_prompt_versions: Path, tmp_path: Path) -> None:
    headers = [read_eval_log(i, header_only=True) for i in list_eval_logs(str(two_prompt_versions))]
    from psysim.tasks.iterative_feedback import VERSION

    assert {h.eval.task_version for h in headers} == {VERSION}  # one task version: only the file differs
    assert len({str(h.eval.task_args) for h in headers if h.eval.task_args["condition"] == "expert"}) == 1
    commit = headers[0].eval.metadata["provenance"]["git_commit"]
    assert commit is None or len(commit.removesuffix("+dirty")) == 40  # a checkout: shown in the log

    # two complete logs of one series would be two runs of one setting; here they are two settings
    selection = load_selection(two_prompt_versions)
    assert len(selection.used) == 4 and not selection.superseded
    frames = read_frames(two_prompt_versions)
    settings = frames.exp1["setting"].unique()
    assert len(settings) == 2 and all(f"provenance=task v{VERSION} inputs " in s for s in settings)
    assert frames.exp1.groupby("setting")["run"].nunique().tolist() == [4, 4]  # 2 conditions x 2 epochs each

    assert report_main([str(two_prompt_versions), "-o", str(tmp_path / "report"), *FAST]) == 0
    summary = (tmp_path / "report" / "summary.md").read_text()
    assert "settings split by prompt provenance**: iterative_feedback [psysim/demo]: 2 provenances (differ in: " \
           "guidelines)" in summary
    assert summary.count(f"- provenance of iterative_feedback `task v{VERSION} inputs ") == 2
    assert summary.count("Experiment 1 primary [") == 2  # one primary test per setting, never pooled
    evals = pd.read_csv(tmp_path / "report" / "evals.csv")
    assert evals["provenance"].nunique() == 2


def test_logs_without_provenance_are_their_own_setting(two_prompt_versions: Path, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    headers = {Path(i.name.removeprefix("file://")): read_eval_log(i, header_only=True)
               for i in list_eval_logs(str(two_prompt_versions))}
    first = sorted(h.eval.metadata["provenance"]["files"]["guidelines"]["sha256"] for h in headers.values())[0]
    files = sorted(p for p, h in headers.items() if h.eval.metadata["provenance"]["files"]["guidelines"]["sha256"] == first)
    assert len(files) == 2
    for index, path in enumerate(files):  # the runs of one guidelines text: expert and none
        (logs / path.name).write_bytes(path.read_bytes())
        old = read_eval_log(str(path))  # the same run as written before provenance was recorded
        old.eval.eval_id = f"older-{index}"
        old.eval.metadata.pop("provenance")
        old.eval.task_version = 0
        write_eval_log(old, str(logs / f"old-{path.name}"))
    frames = read_frames(logs)
    settings = sorted(frames.exp1["setting"].unique())
    assert len(settings) == 2 and any(s.endswith(f"provenance={NO_PROVENANCE}]") for s in settings)
    listing = "\n".join(logs_lines(frames))  # the report's log list
    assert f"- provenance of iterative_feedback `{NO_PROVENANCE}`: " in listing
    assert "settings split by prompt provenance**: iterative_feedback [psysim/demo]: 2 provenances (differ in: " \
           f"{NO_PROVENANCE})" in listing
