"""Up-front checks of task arguments: a clear ValueError naming the argument and what is
allowed, before any model call (every task uses these, so the messages read alike)."""

from __future__ import annotations

from collections.abc import Iterable

from psysim.inputs.input_error import TaskArgumentError


def require_choice(name: str, value: object, choices: Iterable[str]) -> None:
    """``value`` must be one of ``choices``."""
    choices = tuple(choices)
    if value not in choices:
        raise TaskArgumentError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


def require_ints(*specs: tuple[str, object, int, bool]) -> None:
    """Each ``(name, value, least, optional)``: an integer >= ``least`` (or None when optional)."""
    for name, value, least, optional in specs:
        if value is None and optional:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            raise TaskArgumentError(f"{name} must be an integer >= {least}{' or null' if optional else ''}; got {value!r}")


def require_temperature(value: object) -> None:
    if not isinstance(value, (int, float)) or value < 0:
        raise TaskArgumentError(f"temperature must be a number >= 0; got {value!r}")


def require_bool(name: str, value: object) -> None:
    """``value`` must be true or false (``-T name=true``), not a string such as ``"yes"``."""
    if not isinstance(value, bool):
        raise TaskArgumentError(f"{name} must be true or false; got {value!r}")
