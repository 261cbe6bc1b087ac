"""Relative -T paths are read from where the command was started, not from tasks/ (Inspect
changes into the task file's folder before it builds the task)."""

from __future__ import annotations

from pathlib import Path

import pytest

from psysim.inputs.personas import PersonaFileError, load_personas
from psysim.prompts import DEFAULT_GUIDELINES, text_or_file

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def started_in_repo_but_inside_tasks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO / "tasks")
    monkeypatch.setenv("PWD", str(REPO))


@pytest.mark.usefixtures("started_in_repo_but_inside_tasks")
def test_relative_persona_and_guideline_paths_resolve_from_pwd() -> None:
    assert len(load_personas("datasets/personas/original.yaml")) == 15
    assert text_or_file("psysim/prompts/generic_feedback.txt", DEFAULT_GUIDELINES).startswith("Pay closer attention")


@pytest.mark.usefixtures("started_in_repo_but_inside_tasks")
def test_missing_relative_paths_still_fail_with_their_name() -> None:
    with pytest.raises(PersonaFileError, match="nope/personas.yaml: persona file not found"):
        load_personas("nope/personas.yaml")
    with pytest.raises(ValueError, match="file not found: 'nope/guidelines.md'"):
        text_or_file("nope/guidelines.md", DEFAULT_GUIDELINES)
    # literal text, even a long one, is still text
    assert text_or_file("x" * 5000, DEFAULT_GUIDELINES) == "x" * 5000
