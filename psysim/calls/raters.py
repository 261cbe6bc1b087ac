"""Who rated: the rater labels shared by the re-judging scorer and the report.

The ratings made during a run belong to the rater :data:`IN_LOOP`; a re-judge
(``scorers/rejudge.py``) names itself with a label chosen by the user, which prefixes its score
keys (``<label>_session_1``, ``<label>_human``).
"""

from __future__ import annotations

import re

REJUDGE_MARK = "rejudge"
"""``Score.metadata[REJUDGE_MARK]`` is True on every re-judge score (how the report finds them)."""
IN_LOOP = "in_loop"
"""The rater label of the ratings made during the run."""
_RATER = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]*")


def check_rater(rater: object) -> str:
    """The rater label, checked: letters, digits, ``.`` and ``-`` (no ``_``: it separates the
    label from the key in ``<label>_<key>``), so never ``in_loop``.

    Raises:
        ValueError: any other label.
    """
    if not isinstance(rater, str) or not _RATER.fullmatch(rater):
        raise ValueError(f"rater must be a label of letters, digits, '.' and '-' (e.g. llama8b); got {rater!r}")
    return rater
