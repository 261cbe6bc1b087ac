"""Control characters in loaded text: a NUL or an escape byte in a transcript or a persona would
go into a model's prompt unseen, so loaders reject them and say where they are.

Tab, line feed and carriage return are ordinary text; every other C0 control character
(U+0000-U+001F) and DEL (U+007F) is rejected.
"""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_NAMES = {0x00: "NUL", 0x07: "BEL", 0x08: "backspace", 0x0B: "vertical tab", 0x0C: "form feed", 0x1B: "ESC", 0x7F: "DEL"}


def control_character(text: str) -> str | None:
    """A description of the first control character in ``text`` and where it is; None if none."""
    match = _CONTROL.search(text)
    if match is None:
        return None
    code = ord(match.group())
    name = f" ({_NAMES[code]})" if code in _NAMES else ""
    return (
        f"control character U+{code:04X}{name} at character {match.start() + 1}; "
        "remove it (only tab, newline and carriage return are allowed in text)"
    )
