"""The files a project is expected to have, and ``--version`` on every command."""

from __future__ import annotations

import importlib
import re
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def test_license_is_the_mit_text_pyproject_declares() -> None:
    assert PYPROJECT["project"]["license"] == "MIT"
    text = (REPO / "LICENSE").read_text()
    assert text.startswith("MIT License") and "Permission is hereby granted, free of charge" in text


def test_citation_cff_names_the_project_and_the_paper_it_reproduces() -> None:
    cff = yaml.safe_load((REPO / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["version"] == PYPROJECT["project"]["version"]
    assert cff["license"] == "MIT" and cff["authors"]
    titles = [r["title"] for r in cff["references"]]
    assert "Using Llama-3 to Refine Psychotherapy in Silico" in titles
    assert all(r["authors"] and r["type"] for r in cff["references"])


def test_changelog_is_keep_a_changelog_with_the_current_version() -> None:
    text = (REPO / "CHANGELOG.md").read_text()
    assert text.startswith("# Changelog") and "## [Unreleased]" in text
    assert f"## [{PYPROJECT['project']['version']}]" in text


def test_paper_config_header_gives_a_command_that_accepts_run_config() -> None:
    header = [line for line in (REPO / "configs" / "paper.yaml").read_text().splitlines() if line.startswith("#")]
    commands = [line for line in header if "--run-config" in line and "inspect eval" in line]
    assert commands, "the header shows how to run the config"
    # `inspect eval-set --run-config` fails ("only supported by inspect eval"): no command may use it
    assert not [c for c in commands if re.search(r"inspect eval-set\s+--run-config", c)]


SCRIPTS = PYPROJECT["project"]["scripts"]


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_every_cli_has_version(script: str, capsys: pytest.CaptureFixture[str]) -> None:
    module, func = SCRIPTS[script].split(":")
    main = getattr(importlib.import_module(module), func)
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"{script} {PYPROJECT['project']['version']} (psysim)"
