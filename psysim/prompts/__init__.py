"""Prompt files: versioned YAML/text templates kept apart from code.

Templates are Jinja2 with ``StrictUndefined`` so that a missing variable fails loudly
instead of silently producing an empty prompt section.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from jinja2 import Environment, StrictUndefined, Template

from psysim.inputs.data_files import package_file
from psysim.inputs.input_error import InputError
from psysim.inputs.user_paths import user_path

PROMPTS_DIR = package_file("prompts")
DEFAULT_GUIDELINES = PROMPTS_DIR / "guidelines_working_alliance.md"
DEFAULT_GENERIC_FEEDBACK = PROMPTS_DIR / "generic_feedback.txt"

_jinja = Environment(undefined=StrictUndefined, keep_trailing_newline=False, autoescape=False)


@lru_cache(maxsize=None)
def load_prompts(name: str) -> dict[str, Any]:
    """Load ``prompts/<name>.yaml`` (a mapping of template names to template text)."""
    path = PROMPTS_DIR / f"{name}.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or "version" not in data:
        raise ValueError(f"{path}: expected a YAML mapping with a 'version' key")
    return data


@lru_cache(maxsize=256)
def _compiled(template: str) -> Template:
    # compiling is ~3 ms; a paper-scale run renders thousands of prompts (see benchmarks/)
    return _jinja.from_string(template)


def render(template: str, **variables: Any) -> str:
    """Render a Jinja2 template string with strict undefined variables."""
    return _compiled(template).render(**variables).strip()


def prompt(name: str, key: str, /, **variables: Any) -> str:
    """Render template ``key`` of prompt file ``name``."""
    templates = load_prompts(name)
    if key not in templates:
        raise KeyError(f"{PROMPTS_DIR / name}.yaml has no template '{key}'")
    return render(templates[key], **variables)


def text_or_file(value: str | None, default_file: Path) -> str:
    """Resolve a task argument that may be literal text or a path to a text file.

    ``None`` reads the shipped default. A value naming an existing file is read from it;
    anything else is taken as the text itself, so ``-T generic_feedback="Be warmer."`` works.
    """
    if value is None:
        return default_file.read_text(encoding="utf-8").strip()
    try:
        candidate = user_path(value)
        is_file = candidate.is_file()
    except OSError:  # e.g. a long literal text is not a valid path
        is_file = False
    if not is_file and _looks_like_path(value):
        raise InputError(f"file not found: {value!r} (pass an existing file, or the text itself)")
    text = candidate.read_text(encoding="utf-8").strip() if is_file else value.strip()
    if not text:
        raise InputError(f"empty text given (from {value!r})")
    return text


def _looks_like_path(value: str) -> bool:
    """A single token with a directory separator or a text-file suffix: a mistyped path, not text."""
    token = value.strip()
    return bool(token) and not any(c.isspace() for c in token) and (
        "/" in token or token.lower().endswith((".md", ".txt", ".yaml", ".yml"))
    )
