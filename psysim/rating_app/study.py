"""A rating study: creation from log items, each rater's order, saving answers, export, closing.

Fully crossed: every rater rates every response of every item (as ICC(2,1) needs). Each rater
has their own random order (seeded, stored at creation) in which two responses sharing a context
(the same snippet and its candidates) never follow each other; each Experiment 1 session is its
own context. Practice items (if any) come first, in the file's order; gold items (if any) are
planted at random positions among the study's, different for each rater, drawn from the seed.

A rater passes the start page once (:meth:`Study.start`) before their first page. The time per
item is measured here, not in the browser: from the last view of the page before its first save
to that save (:meth:`Study.page` with ``view=True`` records the view).
"""

from __future__ import annotations

import json
import random
import re
import secrets
import sqlite3
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from psysim.rating_app import db
from psysim.rating_app.extra_items import gold_failed
from psysim.rating_app.items import Item, Line
from psysim.rating_app.template import StudyTemplate

TOKEN_BYTES = 24
"""192 random bits per rater link (the issue asks for at least 128)."""
MAX_COMMENT = 2000
MAX_POSITION = 2**31 - 1
"""Positions past this are no page (SQLite integers end at 2**63 - 1; a study is far smaller)."""
EXPORT_COLUMN_DOCS = {
    "study": "the study's id (its name given to `create`, or the file name without .db), never a path",
    "rater": "the rater's label (rater_01, rater_02, ...); the export holds no name or link",
    "position": "the page number in this rater's order (practice pages, not exported, come first)",
    "item": "the item's random public id (the same for all raters and for every response of one context)",
    "role": "study (an item from the logs) or gold (an attention check from the organiser's --gold file)",
    "task": "human_comparison, rater_validity or iterative_feedback (gold: gold)",
    "log": "the log file the item came from (gold: the --gold file's name)",
    "eval_id": "the log's eval id (with sample_id, epoch and response_type: the Client LLM's rating of the same response)",
    "sample_id": "the sample id in the log (gold: the item's id in the --gold file)",
    "epoch": "the sample's epoch (gold: 0)",
    "session": "Experiment 1: the session rated after (empty otherwise)",
    "response_type": "human / llm / revised (Experiment 2 and validity), session_<k> (Experiment 1), gold",
    "status": "rated, skipped (the rater chose 'Skip / cannot judge') or unanswered",
    "rating": "the rater's number on the template's scale (empty unless rated)",
    "comment": "the rater's optional comment",
    "seconds": "time on the item, measured by the server: from the last view of the page before its first save "
               "to that save (empty when unanswered or the page was not viewed first)",
    "first_saved_at": "when the answer was first saved (UTC, ISO 8601)",
    "saved_at": "when it was last changed (UTC, ISO 8601)",
    "gold_expected": "a gold item's expected side: low or high (empty for study items)",
    "gold_failed": "a rated gold item: True when rated on the wrong side of the scale's midpoint (the midpoint "
                   "itself counts as failed), else False; empty when not gold, skipped or unanswered",
}
EXPORT_COLUMNS = list(EXPORT_COLUMN_DOCS)
"""One row per rater, item and response (practice items are never exported); ``status`` is
``rated``, ``skipped`` or ``unanswered``."""


def rating_text(low: int, high: int) -> re.Pattern[str]:
    """A typed rating on the scale ``low``..``high``: ASCII digits, no longer than the scale's
    widest end, a minus sign only on a scale below 0 (then checked against the scale)."""
    width = max(len(str(abs(low))), len(str(abs(high))))
    return re.compile(("-?" if low < 0 else "") + f"[0-9]{{1,{width}}}", re.ASCII)


class AnswerError(ValueError):
    """An answer the server refuses (the message says which field and why)."""


class StudyClosedError(AnswerError):
    """The study was closed with ``psysim-rate close``: no answer is accepted."""


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def rater_order(context_keys: Sequence[str], rng: random.Random) -> list[int]:
    """A random order of ``range(len(context_keys))`` in which equal keys are never adjacent.

    Each step draws uniformly among the remaining responses whose pick keeps the rest arrangeable:
    with r left after a pick from group x, every group needs at most ceil(r/2) of them, and x at
    most floor(r/2) (the next one cannot be from x).

    Raises:
        ValueError: no such order exists (one context holds more than half the responses, rounded up).
    """
    groups: dict[str, list[int]] = {}
    for index, key in enumerate(context_keys):
        groups.setdefault(key, []).append(index)
    n = len(context_keys)
    biggest = max((len(v) for v in groups.values()), default=0)
    if biggest > (n + 1) // 2:
        raise ValueError(f"no order keeps the responses of one context apart: one context has {biggest} of the "
                         f"{n} responses (at most {(n + 1) // 2} possible); add items from more contexts")
    for members in groups.values():
        rng.shuffle(members)
    order: list[int] = []
    previous = None
    while len(order) < n:
        left = n - len(order) - 1  # after this pick
        counts = {k: len(v) for k, v in groups.items() if v}
        top = sorted(counts.items(), key=lambda kv: -kv[1])[:2]
        allowed = []
        for key, count in counts.items():
            if key == previous:
                continue
            biggest_other = next((c for k, c in top if k != key), 0)
            if count - 1 <= left // 2 and biggest_other <= (left + 1) // 2:
                allowed.append(key)
        # uniform over the responses of the allowed groups
        pick = rng.choices(allowed, weights=[counts[k] for k in allowed])[0]
        order.append(groups[pick].pop())
        previous = pick
    return order


def plant(order: Sequence[int], extras: Sequence[int], rng: random.Random) -> list[int]:
    """``order`` with ``extras`` inserted at random positions (in random order); ``order`` keeps its sequence."""
    n = len(order) + len(extras)
    slots = set(rng.sample(range(n), len(extras)))
    shuffled = list(extras)
    rng.shuffle(shuffled)
    rest, planted = iter(order), iter(shuffled)
    return [next(planted) if index in slots else next(rest) for index in range(n)]


def study_id(name: str) -> str:
    """The study's id: the name given to ``create``, or a database path's file name without ``.db``."""
    return Path(name).stem if name.endswith(".db") or "/" in name or "\\" in name else name


@dataclass
class Created:
    path: Path
    tokens: dict[str, str]
    """Rater label -> link token (printed once; the database keeps only its hash)."""
    items: int
    responses: int
    practice: int = 0
    gold: int = 0


def create_study(path: str | Path, name: str, items: Sequence[Item], raters: int, template: StudyTemplate,
                 seed: int, practice: Sequence[Item] = (), gold: Sequence[Item] = ()) -> Created:
    """Write a new study database with its items, raters and each rater's order.

    Args:
        practice: Items every rater answers first (marked as practice; never exported).
        gold: Attention checks (each with its expected side), planted at random positions of
            each rater's order (drawn from ``seed``: the same study gives the same positions).

    Raises:
        ValueError: fewer than one rater, no items, or no order can keep contexts apart.
        FileExistsError: the database exists already.
    """
    if raters < 1:
        raise ValueError(f"--raters must be at least 1 (got {raters})")
    responses = [(item, response) for item in items for response in item.responses]
    if not responses:
        raise ValueError("no responses to rate in these logs")
    rng = random.Random(seed)
    orders = [rater_order([item.context_key for item, _ in responses], rng) for _ in range(raters)]
    # a stream of its own: a study without gold items keeps the orders it had before gold existed
    gold_rng = random.Random(f"{seed}/gold")
    extra = [*practice, *gold]
    connection = db.create(path)
    tokens: dict[str, str] = {}
    try:
        with connection:
            connection.execute("INSERT INTO study (id, name, template_json, created_at, seed) VALUES (1, ?, ?, ?, ?)",
                               (study_id(name), template.model_dump_json(), now(), seed))
            response_ids = []
            for item in [*items, *extra]:
                item_id = connection.execute(
                    "INSERT INTO items (public_id, task, kind, log, eval_id, sample_id, epoch, session, context_key,"
                    " persona, lines_json, role, expected) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (secrets.token_hex(8), item.task, item.kind, item.log, item.eval_id, item.sample_id, item.epoch,
                     item.session, item.context_key, item.persona, json.dumps([asdict(line) for line in item.lines]),
                     item.role, item.expected),
                ).lastrowid
                for response in item.responses:
                    response_ids.append(connection.execute(
                        "INSERT INTO responses (public_id, item_id, response_key, text) VALUES (?, ?, ?, ?)",
                        (secrets.token_hex(8), item_id, response.key, response.text)).lastrowid)
            # indices into response_ids: the logs' responses first, then practice, then gold (one response each)
            practice_ids = list(range(len(responses), len(responses) + len(practice)))
            gold_ids = list(range(len(responses) + len(practice), len(responses) + len(extra)))
            issued = now()
            for index, order in enumerate(orders, start=1):
                label = f"rater_{index:02d}"
                tokens[label] = secrets.token_urlsafe(TOKEN_BYTES)
                rater_id = connection.execute("INSERT INTO raters (label, token_sha256, token_issued_at) VALUES (?, ?, ?)",
                                              (label, db.token_hash(tokens[label]), issued)).lastrowid
                full = practice_ids + plant(order, gold_ids, gold_rng)
                connection.executemany(
                    "INSERT INTO assignments (rater_id, position, response_id) VALUES (?, ?, ?)",
                    [(rater_id, position, response_ids[i]) for position, i in enumerate(full, start=1)])
    finally:
        connection.close()
    return Created(Path(path), tokens, len(items), len(responses), len(practice), len(gold))


@dataclass
class Page:
    """What one rating page shows."""

    rater: str
    position: int
    total: int
    answered: int
    response_id: str
    response_text: str
    kind: str
    persona: str
    lines: list[Line]
    session: int | None
    rating: int | None
    skipped: bool
    comment: str
    practice: bool = False
    """A practice page (said on the page; a gold page looks like any other)."""

    @property
    def last_client(self) -> int | None:
        """Index of the client's last turn in ``lines`` (marked on the page), or None."""
        return next((i for i in range(len(self.lines) - 1, -1, -1) if self.lines[i].speaker in ("You", "Client")), None)


class Study:
    """An open study database, as the web app uses it (one short connection per call)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        with self._connection() as connection:  # fails early on a file that is not a study
            row = connection.execute("SELECT name, template_json FROM study WHERE id = 1").fetchone()
        self.name = row["name"]
        self.template = StudyTemplate.model_validate_json(row["template_json"])

    def _connection(self) -> _Closing:
        return _Closing(db.connect(self.path))

    def closed(self) -> bool:
        with self._connection() as connection:
            return connection.execute("SELECT closed_at FROM study").fetchone()[0] is not None

    def started(self, rater_id: int) -> bool:
        """Whether this rater has passed the start page."""
        with self._connection() as connection:
            row = connection.execute("SELECT started_at FROM raters WHERE id = ?", (rater_id,)).fetchone()
        return row is not None and row[0] is not None

    def start(self, rater_id: int) -> None:
        """Record that this rater passed the start page (the first time only).

        Raises:
            StudyClosedError: the study is closed.
        """
        with self._connection() as connection, connection:
            if connection.execute("SELECT closed_at FROM study").fetchone()[0] is not None:
                raise StudyClosedError("this study is closed: answers are no longer accepted")
            connection.execute("UPDATE raters SET started_at = ? WHERE id = ? AND started_at IS NULL", (now(), rater_id))

    def practice_count(self) -> int:
        with self._connection() as connection:
            return connection.execute("SELECT COUNT(*) FROM items WHERE role = 'practice'").fetchone()[0]

    def rater(self, token: str) -> tuple[int, str] | None:
        """(rater id, label) of a link token, or None for an unknown token."""
        with self._connection() as connection:
            row = connection.execute("SELECT id, label FROM raters WHERE token_sha256 = ?",
                                     (db.token_hash(token),)).fetchone()
        return (row["id"], row["label"]) if row else None

    def progress(self, rater_id: int) -> tuple[int, int, int | None]:
        """(answered, total, first unanswered position or None when all are answered)."""
        with self._connection() as connection:
            total = connection.execute("SELECT COUNT(*) FROM assignments WHERE rater_id = ?", (rater_id,)).fetchone()[0]
            answered = connection.execute("SELECT COUNT(*) FROM answers WHERE rater_id = ?", (rater_id,)).fetchone()[0]
            row = connection.execute(
                "SELECT MIN(a.position) FROM assignments a LEFT JOIN answers s ON s.rater_id = a.rater_id AND "
                "s.response_id = a.response_id WHERE a.rater_id = ? AND s.response_id IS NULL", (rater_id,)).fetchone()
        return answered, total, row[0]

    def page(self, rater_id: int, position: int, view: bool = False) -> Page | None:
        """The page at ``position`` of this rater's order, or None when there is none.

        Args:
            view: The rater is shown this page now: until its first save, the time of this view
                is kept (its ``seconds`` run from the last view before the first save).
        """
        if not 1 <= position <= MAX_POSITION:
            return None
        with self._connection() as connection:
            row = connection.execute(
                "SELECT a.response_id AS internal_id, r.public_id, r.text, i.kind, i.persona, i.lines_json, "
                "i.session, i.role, s.rating, s.skipped, s.comment, w.label FROM assignments a "
                "JOIN responses r ON r.id = a.response_id "
                "JOIN items i ON i.id = r.item_id JOIN raters w ON w.id = a.rater_id "
                "LEFT JOIN answers s ON s.rater_id = a.rater_id AND s.response_id = a.response_id "
                "WHERE a.rater_id = ? AND a.position = ?", (rater_id, position)).fetchone()
            if row is not None and view and row["skipped"] is None:
                with connection:
                    connection.execute(
                        "INSERT INTO views (rater_id, response_id, viewed_at) VALUES (?, ?, ?) "
                        "ON CONFLICT (rater_id, response_id) DO UPDATE SET viewed_at = excluded.viewed_at",
                        (rater_id, row["internal_id"], now()))
        if row is None:
            return None
        answered, total, _ = self.progress(rater_id)
        return Page(rater=row["label"], position=position, total=total, answered=answered,
                    response_id=row["public_id"], response_text=row["text"], kind=row["kind"],
                    persona=row["persona"], lines=[Line(**line) for line in json.loads(row["lines_json"])],
                    session=row["session"], rating=row["rating"], skipped=bool(row["skipped"]),
                    comment=row["comment"] or "", practice=row["role"] == "practice")

    def save(self, rater_id: int, position: int, response_id: str, rating: str | None, skip: bool,
             comment: str) -> None:
        """Validate and commit one answer (replacing this rater's earlier answer to it).

        Raises:
            StudyClosedError: the study is closed.
            AnswerError: unknown position or response, or a rating that is not an integer on the scale.
        """
        scale = self.template.scale
        if skip:
            value = None
        else:
            text = (rating or "").strip()
            # ASCII digits only: str.isdigit() and int() also take "²", "①", "٥٠" and "５٠", and int()
            # raises on some of them (an HTTP 500); a number longer than the scale's is refused unread
            if not rating_text(scale.min, scale.max).fullmatch(text):
                shown = text if len(text) <= 20 else text[:20] + "…"
                raise AnswerError(f"rating: expected a whole number from {scale.min} to {scale.max} in the digits "
                                  f"0-9, or skip (got {shown!r})" if text else "rating: give a number or choose skip")
            value = int(text)
            if not scale.min <= value <= scale.max:
                raise AnswerError(f"rating: {value} is outside {scale.min} to {scale.max}")
        comment = (comment or "").strip()
        if len(comment) > MAX_COMMENT:
            raise AnswerError(f"comment: at most {MAX_COMMENT} characters (got {len(comment)})")
        stamp = now()
        with self._connection() as connection, connection:
            if connection.execute("SELECT closed_at FROM study").fetchone()[0] is not None:
                raise StudyClosedError("this study is closed: answers are no longer accepted")
            row = connection.execute(
                "SELECT a.response_id FROM assignments a JOIN responses r ON r.id = a.response_id "
                "WHERE a.rater_id = ? AND a.position = ? AND r.public_id = ?",
                (rater_id, position, response_id)).fetchone()
            if row is None:
                raise AnswerError("item: unknown item for this rater and position")
            viewed = connection.execute("SELECT viewed_at FROM views WHERE rater_id = ? AND response_id = ?",
                                        (rater_id, row[0])).fetchone()
            seconds = None if viewed is None else round(
                (datetime.fromisoformat(stamp) - datetime.fromisoformat(viewed[0])).total_seconds(), 3)
            # a change keeps the first save's time and seconds: the time per item ends at the first save
            connection.execute(
                "INSERT INTO answers (rater_id, response_id, rating, skipped, comment, first_saved_at, saved_at, seconds) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (rater_id, response_id) DO UPDATE SET "
                "rating = excluded.rating, skipped = excluded.skipped, comment = excluded.comment, "
                "saved_at = excluded.saved_at",
                (rater_id, row[0], value, int(skip), comment, stamp, stamp, seconds))


class _Closing:
    """``with`` a connection that is closed afterwards (sqlite3's own ``with`` only commits)."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection

    def __enter__(self) -> sqlite3.Connection:
        return self.connection

    def __exit__(self, *exc: Any) -> None:
        self.connection.close()


def export_frame(path: str | Path) -> pd.DataFrame:
    """The tidy export: one row per rater, item and response (:data:`EXPORT_COLUMNS`); practice items left out."""
    with _Closing(db.connect(path)) as connection:
        name, template_json = connection.execute("SELECT name, template_json FROM study").fetchone()
        rows = connection.execute(
            "SELECT w.label AS rater, a.position, i.public_id AS item, i.role, i.task, i.log, i.eval_id, i.sample_id,"
            " i.epoch, i.session, r.response_key AS response_type, s.rating, s.skipped, s.comment, s.seconds,"
            " s.first_saved_at, s.saved_at, i.expected AS gold_expected FROM assignments a"
            " JOIN raters w ON w.id = a.rater_id JOIN responses r ON r.id = a.response_id"
            " JOIN items i ON i.id = r.item_id LEFT JOIN answers s ON s.rater_id = a.rater_id AND"
            " s.response_id = a.response_id WHERE i.role != 'practice' ORDER BY w.label, a.position").fetchall()
    scale = StudyTemplate.model_validate_json(template_json).scale
    records = []
    for row in rows:
        record = dict(row)
        skipped = record.pop("skipped")
        record["status"] = "unanswered" if skipped is None else ("skipped" if skipped else "rated")
        record["study"] = study_id(name)  # a study created before issue 27 may hold the path it was given
        record["gold_failed"] = (gold_failed(record["rating"], record["gold_expected"], scale.min, scale.max)
                                 if record["role"] == "gold" else None)
        records.append(record)
    frame = pd.DataFrame(records, columns=EXPORT_COLUMNS)
    frame["rating"] = frame["rating"].astype("Int64")
    frame["session"] = frame["session"].astype("Int64")
    frame["seconds"] = frame["seconds"].astype(float)
    frame["gold_failed"] = frame["gold_failed"].astype("boolean")
    return frame


def reissue_link(path: str | Path, label: str) -> str:
    """A new link token for rater ``label``; the old link stops working at once. Answers are kept.

    Raises:
        ValueError: no rater of that label.
    """
    token = secrets.token_urlsafe(TOKEN_BYTES)
    with _Closing(db.connect(path)) as connection, connection:
        changed = connection.execute(
            "UPDATE raters SET token_sha256 = ?, token_issued_at = ?, reissued = reissued + 1 WHERE label = ?",
            (db.token_hash(token), now(), label)).rowcount
        if not changed:
            known = ", ".join(r[0] for r in connection.execute("SELECT label FROM raters ORDER BY label"))
            raise ValueError(f"--rater {label!r}: no such rater in {path} (raters: {known})")
    return token


def close_study(path: str | Path) -> str:
    """Mark the study closed (answers are refused from then on); returns the time it was closed."""
    with _Closing(db.connect(path)) as connection, connection:
        closed = connection.execute("SELECT closed_at FROM study").fetchone()[0]
        if closed is None:
            closed = now()
            connection.execute("UPDATE study SET closed_at = ?", (closed,))
    return closed
