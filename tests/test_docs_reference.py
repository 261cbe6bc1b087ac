"""The configuration reference (docs/reference/tasks.md, cli.md) is generated from the code and up to date, and
nothing is undocumented: every task parameter has an Args entry, every CLI option has help."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("gen_reference", REPO / "docs" / "gen_reference.py")
gen = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gen)


def test_reference_pages_are_generated_and_complete(capsys) -> None:  # noqa: ANN001
    code = gen.main(["--check"])
    assert code == 0, capsys.readouterr().err  # run `python docs/gen_reference.py` after changing a task or a CLI


def test_every_task_and_script_is_in_the_reference() -> None:
    tasks = (REPO / "docs" / "reference" / "tasks.md").read_text(encoding="utf-8")
    for name in ("iterative_feedback", "human_comparison", "rater_validity", "safety_judge_check"):
        assert f"## `psysim/{name}`" in tasks
    assert "| `sessions` | int | `6` |" in tasks and "| `joint_rating` | bool | `false` |" in tasks
    cli = (REPO / "docs" / "reference" / "cli.md").read_text(encoding="utf-8")
    for script in gen.tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]:
        assert f"## `{script}`" in cli
    assert "### `psysim-rate create`" in cli and "`--shard`" in cli


def documented(**params: object) -> None:
    """A task.

    Args:
        alpha: The first (default 1).
        beta: The second, over
            two lines.
    """


def undocumented(alpha: int = 1, gamma: str = "x") -> None:
    """A task whose docstring misses one parameter and names another.

    Args:
        alpha: The first.
        beta: Not a parameter.
    """


def test_a_parameter_without_args_entry_is_reported() -> None:
    problems: list[str] = []
    rows = gen.task_section("undocumented", undocumented, problems)
    assert problems == ["task undocumented: parameter 'gamma' has no entry under Args: in its docstring",
                        "task undocumented: Args: names 'beta', which is not a parameter"]
    assert "| `alpha` | int | `1` | The first. |" in rows
    assert gen.docstring_args(documented.__doc__)[1] == {"alpha": "The first (default 1).",
                                                         "beta": "The second, over two lines."}


def test_an_option_without_help_is_reported() -> None:
    parser = argparse.ArgumentParser(prog="x")
    parser.add_argument("--good", default=3, help="documented (default %(default)s)")
    parser.add_argument("--bad", type=int)
    parser.add_argument("--hidden", help=argparse.SUPPRESS)
    problems: list[str] = []
    rows = gen.option_rows(parser, "x", problems)
    assert problems == ["x: --bad BAD has no help text"]
    assert "| `--good` `GOOD` | `3` | documented (default 3) |" in rows and not any("hidden" in r for r in rows)
