"""Asking for more items than exist: take what there is, say so, and record both numbers.

A user who asks for N items (snippets, personas per group, raters per study) where fewer exist
gets all of them rather than an error, so that a default such as the paper's 50 snippets still
runs on a small set. The shortfall is never silent: it is logged as a warning (which the
Inspect CLI prints) and returned as a record for the task's metadata, so it reaches the log.
"""

from __future__ import annotations

import logging
from typing import Callable, Sequence, TypedDict, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")


class Shortfall(TypedDict):
    """Fewer items existed than were requested. Stored as-is in log metadata (``shortfalls``)."""

    what: str
    requested: int
    available: int


def take_at_most(
    items: Sequence[T],
    n: int | None,
    what: str,
    pick: Callable[[Sequence[T], int], list[T]] | None = None,
) -> tuple[list[T], Shortfall | None]:
    """Up to ``n`` of ``items``; all of them, with a warning and a record, if fewer exist.

    Args:
        items: Everything available.
        n: How many were requested; ``None`` means all (never a shortfall).
        what: What the items are, for the warning and the record (e.g. ``"snippets"``).
        pick: Chooses ``n`` items when there are more than ``n`` (e.g. seeded sampling);
            default: the first ``n``.

    Returns:
        The items taken and, when fewer than ``n`` existed, the :class:`Shortfall` record
        (``None`` otherwise).
    """
    if n is None or n == len(items):
        return list(items), None
    if n < len(items):
        return (pick(items, n) if pick else list(items[:n])), None
    record = Shortfall(what=what, requested=n, available=len(items))
    logger.warning("%s: %d requested but only %d available; using all %d", what, n, len(items), len(items))
    return list(items), record
