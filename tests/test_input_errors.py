"""Bad input to a task on the command line: one clean message naming the -T argument that fixes
it, no traceback, a non-zero exit, and no model call (nothing is logged)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from psysim.inputs.input_error import InputError


def inspect_eval(tmp_path: Path, *args: str) -> tuple[int, str]:
    """``inspect eval ARGS`` with the mock model, from ``tmp_path``; the exit code and all output."""
    result = subprocess.run(
        [sys.executable, "-m", "inspect_ai", "eval", *args, "--model", "mockllm/model", "--display", "plain"],
        cwd=tmp_path, env=os.environ | {"COLUMNS": "400"}, capture_output=True, text=True, timeout=120,
    )
    return result.returncode, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        # a corpus with other column names, read without -T columns
        (["psysim/human_comparison", "-T", "transcripts=other.csv"],
         "other.csv: missing column(s): transcript_id, turn, speaker, text; found: session, who, utt "
         "(header, line 1); name the file's columns with -T columns=..., e.g. -T 'columns={transcript_id: "
         "session, turn: idx, speaker: role, text: utterance}'"),
        # a typo in a quality-group value: stops before the client rates anything
        (["psysim/rater_validity", "-T", "high=High"],
         "-T high=High matches no eligible snippet (did you mean -T high=high?)"),
    ],
    ids=["missing-columns", "label-typo"],
)
def test_bad_input_exits_nonzero_with_one_message_and_no_traceback(tmp_path: Path, args: list[str], expected: str) -> None:
    (tmp_path / "other.csv").write_text("session,who,utt\ns1,T,Hello there.\n", encoding="utf-8")
    code, output = inspect_eval(tmp_path, *args)
    assert code != 0
    assert "Traceback" not in output and "Error" not in output, output[-2000:]
    flat = " ".join(output.split())  # rich wraps long lines
    assert flat.count(expected) == 1, output[-2000:]
    assert not (tmp_path / "logs").exists()  # no eval ran, so no log was written


def test_input_error_is_a_value_error_whose_message_is_printed_as_written() -> None:
    error = InputError("row 3: field 'text': [sic] [bold]x[/bold]")
    assert isinstance(error, ValueError) and str(error) == "row 3: field 'text': [sic] [bold]x[/bold]"
    # Inspect prints .message with rich markup: brackets from a user's file must not be read as markup
    from rich.console import Console

    console = Console(width=200, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    console.print(error.message)
    assert console.export_text().strip() == str(error)


def test_readme_example_for_a_corpus_with_other_column_names(tmp_path: Path) -> None:
    """The docs' full -T columns/speakers/label example (docs/transcripts-and-personas.md) builds both tasks on such a file."""
    import csv
    import re
    import shlex

    from inspect_ai._util.config import parse_cli_args

    from psysim.tasks.human_comparison import human_comparison
    from psysim.tasks.rater_validity import DEFAULT_LABELLED_TRANSCRIPTS, rater_validity

    page = (Path(__file__).resolve().parents[1] / "docs" / "transcripts-and-personas.md").read_text(encoding="utf-8")
    section = page.split("**Your own corpus, full example.**")[1]
    header = re.search(r"```text\n(.*?)\n", section).group(1).split(",")
    commands = re.search(r"```bash\n(.*?)```", section, re.DOTALL).group(1).replace("\\\n", " ")
    # the demo's labelled transcripts written with the example's column names and labels
    path = tmp_path / "sessions.csv"
    with DEFAULT_LABELLED_TRANSCRIPTS.open(encoding="utf-8") as f, path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        for r in csv.DictReader(f):
            writer.writerow([r["transcript_id"], r["turn"], {"therapist": "T", "client": "C"}[r["speaker"]], r["text"],
                             {"high": "good", "low": "poor"}[r["mi_quality"]]])
    tasks = {"tasks/human_comparison.py": human_comparison, "tasks/rater_validity.py": rater_validity}
    built = {}
    for line in commands.splitlines():
        words = shlex.split(line, comments=True)
        if words[:2] != ["inspect", "eval"]:
            continue
        args = parse_cli_args([words[i + 1] for i, w in enumerate(words) if w == "-T"])
        assert args.pop("transcripts") == "sessions.csv"
        built[words[2]] = tasks[words[2]](transcripts=str(path), **args)
    assert sorted(built) == sorted(tasks)
    assert built["tasks/rater_validity.py"].metadata["eligible_per_group"] == {"high": 6, "low": 6}
    assert built["tasks/human_comparison.py"].metadata["transcripts"] == 4
