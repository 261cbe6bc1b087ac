"""Reading the project's YAML data files (questionnaire instruments, the safety rubric, the judge
check's scripted responses) with errors that name the file and the first wrong field."""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError


def package_file(*parts: str) -> Path:
    """A file or folder shipped inside the installed package (``datasets/personas/original.yaml``,
    ``prompts``, ...), found through importlib.resources so an editable install and a wheel find the
    same file. Anchored at the regular package ``psysim``: a data folder without ``__init__.py`` is a
    namespace package, which importlib.resources returns as a multiplexed path, not a file path."""
    resource = files("psysim")
    for part in parts:
        resource = resource.joinpath(part)
    return Path(str(resource))


class UniqueKeyLoader(yaml.SafeLoader):
    """YAML keeps the last of two equal keys silently; in a data file (a persona, an instrument, a
    rubric) that says two things, that is an error."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Mark] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            if not isinstance(key, Hashable):
                continue  # SafeLoader reports an unhashable key itself
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping", node.start_mark,
                    f"found key '{key}' twice (first on line {seen[key].line + 1})", key_node.start_mark,
                )
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


def read_yaml_mapping(file: Path, error: type[Exception], what: str) -> dict[str, Any]:
    """The mapping in ``file``; ``error`` (naming the file) when it is missing, not YAML (or has a
    key twice) or not a mapping. ``what`` names the kind of file in the not-found message."""
    if not file.is_file():
        raise error(f"{file}: {what} file not found")
    try:
        data = yaml.load(file.read_text(encoding="utf-8"), Loader=UniqueKeyLoader)  # noqa: S506 - SafeLoader subclass
    except (yaml.YAMLError, UnicodeDecodeError) as ex:
        raise error(f"{file}: cannot parse: {ex}") from ex
    if not isinstance(data, dict):
        raise error(f"{file}: expected a YAML mapping, got {type(data).__name__}")
    return data


def first_error(ex: ValidationError, top: str = "(file)") -> tuple[str, str]:
    """(dotted field path, message) of a validation error's first problem; ``top`` when it is
    about the validated object as a whole."""
    first = ex.errors()[0]
    return ".".join(str(part) for part in first["loc"]) or top, first["msg"]


def repeated(ids: Iterable[str]) -> list[str]:
    """The ids that occur more than once, sorted."""
    seen: set[str] = set()
    twice: set[str] = set()
    for i in ids:
        (twice if i in seen else seen).add(i)
    return sorted(twice)
