from __future__ import annotations

from pathlib import Path

import pytest

from psysim.inputs.personas import PersonaFileError
from psysim.tasks.iterative_feedback import iterative_feedback


@pytest.mark.parametrize(
    "args, message",
    [
        ({"condition": "supervisor"}, "condition must be one of expert, none, generic"),
        ({"sessions": 0}, "sessions must be an integer >= 1"),
        ({"sessions": 2.5}, "sessions must be an integer"),
        ({"turns": -1}, "turns must be an integer >= 1"),
        ({"baseline": 130}, "baseline must be a number from 0 to 100"),
        ({"temperature": -0.1}, "temperature must be a number >= 0"),
        ({"rating_format": "xml"}, "rating_format must be one of"),
        ({"max_rating_attempts": 0}, "max_rating_attempts must be an integer >= 1"),
        ({"max_reply_attempts": 0}, "max_reply_attempts must be an integer >= 1"),
        ({"max_reply_attempts": True}, "max_reply_attempts must be an integer >= 1"),
        ({"generic_feedback": "  "}, "empty text"),
        ({"therapist": "rude"}, "therapist must be one of standard, poor"),
    ],
)
def test_invalid_args_are_rejected_before_any_call(args: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        iterative_feedback(**args)


def test_bad_persona_file_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("personas:\n  - id: a\n")
    with pytest.raises(PersonaFileError, match="p.yaml: entry 0 \\(id 'a'\\): field 'presenting_problem'"):
        iterative_feedback(personas=str(path))


def test_defaults_follow_the_paper() -> None:
    task = iterative_feedback()
    assert len(task.dataset) >= 12
    provenance = task.metadata.pop("provenance")  # what produced the log: tests/test_provenance.py
    assert task.metadata == {"experiment": "iterative_feedback", "condition": "expert", "therapist": "standard"}
    assert provenance["files"]["prompt:therapist"]["path"] == "psysim/prompts/therapist.yaml"


def test_mistyped_guidelines_path_is_an_error_not_the_guidelines() -> None:
    with pytest.raises(ValueError, match="file not found: 'configs/my_guidlines.md'"):
        iterative_feedback(guidelines="configs/my_guidlines.md")
    with pytest.raises(ValueError, match="file not found"):
        iterative_feedback(guidelines="guidelines.txt")
    iterative_feedback(generic_feedback="Be warmer and/or slower.")  # text with a slash is text


def test_max_reply_attempts_on_both_tasks() -> None:
    from psysim.tasks.human_comparison import human_comparison

    with pytest.raises(ValueError, match="max_reply_attempts must be an integer >= 1"):
        human_comparison(max_reply_attempts=0)
    assert human_comparison(snippets=1, max_reply_attempts=1).solver is not None
    assert iterative_feedback(max_reply_attempts=5).solver is not None
