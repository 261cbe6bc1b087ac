"""Practice and gold items from an organiser's file (``psysim-rate create --practice/--gold FILE``).

A YAML (or JSON) list; each entry is one context and one therapist response::

    - id: gold-1                      # optional; default: its place in the file (1, 2, ...)
      context:                        # the conversation so far, oldest turn first
        - client: I haven't slept properly since the move.
        - therapist: That sounds exhausting. What keeps you awake?
        - client: Mostly worrying about money.
      response: Money is boring. Let's talk about something else.
      expected: low                   # gold: required, low or high; practice: optional

A turn may also be written ``{speaker: client, text: ...}``. A gold item is planted among the
study's items (the rater cannot tell it apart) and fails when rated on the wrong side of the
scale's midpoint (50 on 0-100; the midpoint itself is on neither side and fails too). Practice
items come first, are marked as practice on their page, and are never exported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml

from psysim.inputs.control_chars import control_character
from psysim.inputs.data_files import UniqueKeyLoader
from psysim.rating_app.items import CLIENT_VIEW, Item, Line, Response

Role = Literal["practice", "gold"]
SPEAKERS = tuple(CLIENT_VIEW)


class ExtraItemsError(ValueError):
    """A practice or gold file that cannot be used (the message names file, entry and field)."""


def load_extra_items(path: str | Path, role: Role) -> list[Item]:
    """The items of one practice or gold file.

    Raises:
        ExtraItemsError: no such file, not YAML, or an entry with a missing or bad field.
    """
    path = Path(path)
    option = f"--{role}"
    if not path.is_file():
        raise ExtraItemsError(f"{option} {path}: no such file")
    try:
        # like every other input file: a key given twice is an error, not the last one silently
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=UniqueKeyLoader)  # noqa: S506 - a SafeLoader
    except (yaml.YAMLError, UnicodeDecodeError) as ex:
        raise ExtraItemsError(f"{option} {path}: not valid YAML or JSON: {ex}") from ex
    if not isinstance(data, list) or not data:
        raise ExtraItemsError(f"{option} {path}: expected a non-empty list of items (context, response, expected)")
    items, seen = [], set()
    for number, entry in enumerate(data, start=1):
        where = f"{path} item {number}"
        if not isinstance(entry, dict):
            raise ExtraItemsError(f"{where}: expected a mapping with context, response and expected")
        unknown = sorted(set(entry) - {"id", "context", "response", "expected"})
        if unknown:
            raise ExtraItemsError(f"{where}: unknown field(s) {', '.join(map(str, unknown))}")
        item_id = str(entry.get("id", number)).strip()
        where = f"{path} item {number} (id {item_id})"
        if not item_id or item_id in seen:
            raise ExtraItemsError(f"{where}, field id: {'empty' if not item_id else 'used twice in the file'}")
        seen.add(item_id)
        lines = _context(entry.get("context"), where)
        response = entry.get("response")
        if not isinstance(response, str) or not response.strip():
            raise ExtraItemsError(f"{where}, field response: a non-empty text is required")
        if problem := control_character(response):
            raise ExtraItemsError(f"{where}, field response: {problem}")
        expected = entry.get("expected")
        if expected is None and role == "gold":
            raise ExtraItemsError(f"{where}, field expected: required for a gold item (low or high)")
        if expected is not None and expected not in ("low", "high"):
            raise ExtraItemsError(f"{where}, field expected: {expected!r} is not low or high")
        items.append(Item(task=role, kind="response", log=path.name, eval_id=path.name, sample_id=item_id, epoch=0,
                          context_key=f"{role}:{item_id}", lines=lines, responses=[Response(role, response.strip())],
                          role=role, expected=expected))
    return items


def _context(turns: object, where: str) -> list[Line]:
    if not isinstance(turns, list) or not turns:
        raise ExtraItemsError(f"{where}, field context: a non-empty list of turns (- client: ... / - therapist: ...)")
    lines = []
    for index, turn in enumerate(turns, start=1):
        if isinstance(turn, dict) and set(turn) == {"speaker", "text"}:
            speaker, text = turn["speaker"], turn["text"]
        elif isinstance(turn, dict) and len(turn) == 1:
            [(speaker, text)] = turn.items()
        else:
            raise ExtraItemsError(f"{where}, field context turn {index}: expected '- client: text' or "
                                  "'- therapist: text'")
        if speaker not in SPEAKERS:
            raise ExtraItemsError(f"{where}, field context turn {index}: speaker {speaker!r} is not client or therapist")
        if not isinstance(text, str) or not text.strip():
            raise ExtraItemsError(f"{where}, field context turn {index}: empty text")
        if problem := control_character(text):
            raise ExtraItemsError(f"{where}, field context turn {index}: {problem}")
        lines.append(Line(CLIENT_VIEW[speaker], text.strip()))
    return lines


def gold_failed(rating: float | None, expected: str | None, low: int = 0, high: int = 100) -> bool | None:
    """Whether a gold answer fails: rated on the wrong side of the scale's midpoint (the midpoint itself
    is on neither side: failed). None when there is nothing to judge (not gold, skipped or unanswered)."""
    if expected not in ("low", "high") or rating is None or rating != rating:  # NaN: unanswered
        return None
    middle = (low + high) / 2
    return bool(rating >= middle) if expected == "low" else bool(rating <= middle)
