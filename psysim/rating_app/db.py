"""The study database: one SQLite file per study, through the standard library.

Schema version :data:`SCHEMA_VERSION` is stored in ``PRAGMA user_version``; :func:`connect`
refuses a file of a newer version and upgrades an older one through :data:`MIGRATIONS`, so old
studies stay readable. Every answer is one committed row (WAL journal), written before the page
advances: a server killed mid-study loses nothing that a rater saw saved.

What the file holds: the study template, the items' text (transcript contexts and responses, and
for Experiment 1 the persona), which log each came from, one row per rater (a label and the
SHA-256 of their link token, never the token), each rater's order, and their answers with
comments and times (and when each page was last viewed before its first save, for the time per
item). No names, e-mail or IP addresses.

Version 2 (issue 27) adds practice and gold items (``items.role``, ``items.expected``), when each
rater passed the start page and when their link was last issued (``raters``), page views
(``views``) and each answer's seconds (``answers.seconds``). A new database is the version-1
schema upgraded by the same migrations as an old one, so both have the same tables.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable
from pathlib import Path

SCHEMA_VERSION = 2
BUSY_TIMEOUT_MS = 30_000
"""How long a writer waits for another's transaction (20 raters saving at once queue, none fails)."""

SCHEMA = """
-- version 1 (the migrations below bring it to SCHEMA_VERSION)
CREATE TABLE study (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    name TEXT NOT NULL,
    template_json TEXT NOT NULL,
    created_at TEXT NOT NULL,
    seed INTEGER NOT NULL,
    closed_at TEXT
);
CREATE TABLE items (
    id INTEGER PRIMARY KEY,
    public_id TEXT NOT NULL UNIQUE,
    task TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('response', 'session')),
    log TEXT NOT NULL,
    eval_id TEXT NOT NULL,
    sample_id TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    session INTEGER,
    context_key TEXT NOT NULL,
    persona TEXT NOT NULL,
    lines_json TEXT NOT NULL
);
CREATE TABLE responses (
    id INTEGER PRIMARY KEY,
    public_id TEXT NOT NULL UNIQUE,
    item_id INTEGER NOT NULL REFERENCES items(id),
    response_key TEXT NOT NULL,
    text TEXT NOT NULL,
    UNIQUE (item_id, response_key)
);
CREATE TABLE raters (
    id INTEGER PRIMARY KEY,
    label TEXT NOT NULL UNIQUE,
    token_sha256 TEXT NOT NULL UNIQUE
);
CREATE TABLE assignments (
    rater_id INTEGER NOT NULL REFERENCES raters(id),
    position INTEGER NOT NULL,
    response_id INTEGER NOT NULL REFERENCES responses(id),
    PRIMARY KEY (rater_id, position),
    UNIQUE (rater_id, response_id)
);
CREATE TABLE answers (
    rater_id INTEGER NOT NULL REFERENCES raters(id),
    response_id INTEGER NOT NULL REFERENCES responses(id),
    rating INTEGER,
    skipped INTEGER NOT NULL CHECK (skipped IN (0, 1)),
    comment TEXT NOT NULL DEFAULT '',
    first_saved_at TEXT NOT NULL,
    saved_at TEXT NOT NULL,
    PRIMARY KEY (rater_id, response_id),
    -- a skip is never a number, a rating always one
    CHECK ((skipped = 1 AND rating IS NULL) OR (skipped = 0 AND rating IS NOT NULL))
);
"""


def _v1_to_v2(connection: sqlite3.Connection) -> None:
    """Practice and gold items, the start page, link reissue, page views and seconds per answer."""
    for statement in V2_STATEMENTS.split(";\n"):
        if statement.strip():
            connection.execute(statement)


V2_STATEMENTS = """
ALTER TABLE items ADD COLUMN role TEXT NOT NULL DEFAULT 'study' CHECK (role IN ('study', 'practice', 'gold'));
ALTER TABLE items ADD COLUMN expected TEXT CHECK (expected IS NULL OR expected IN ('low', 'high'));
ALTER TABLE raters ADD COLUMN started_at TEXT;
ALTER TABLE raters ADD COLUMN token_issued_at TEXT;
ALTER TABLE raters ADD COLUMN reissued INTEGER NOT NULL DEFAULT 0;
ALTER TABLE answers ADD COLUMN seconds REAL;
CREATE TABLE views (
    rater_id INTEGER NOT NULL REFERENCES raters(id),
    response_id INTEGER NOT NULL REFERENCES responses(id),
    viewed_at TEXT NOT NULL,
    PRIMARY KEY (rater_id, response_id)
);
"""


MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {1: _v1_to_v2}
"""From version v to v + 1: ``MIGRATIONS[v](connection)``."""


class StudyFileError(ValueError):
    """A file that is not a usable study database (the message names it and says why)."""


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create(path: str | Path) -> sqlite3.Connection:
    """A new, empty study database at ``path`` (which must not exist)."""
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"{path}: a study database already exists (choose another --study name)")
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = _open(path)
    with connection:
        connection.executescript(SCHEMA)
        for version in range(1, SCHEMA_VERSION):
            MIGRATIONS[version](connection)
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    return connection


def connect(path: str | Path) -> sqlite3.Connection:
    """Open an existing study database, upgrading an older schema.

    Raises:
        StudyFileError: no file, not SQLite, not a study, or a schema newer than this code.
    """
    path = Path(path)
    if not path.is_file():
        raise StudyFileError(f"{path}: no such study database")
    # checked before any setting is written, so a file that is not a study is left as it was
    connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
    try:
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as ex:
        connection.close()
        raise StudyFileError(f"{path}: not a study database ({ex})") from ex
    if version == 0 or "study" not in tables:
        connection.close()
        raise StudyFileError(f"{path}: not a study database (no study table or schema version)")
    if version > SCHEMA_VERSION:
        connection.close()
        raise StudyFileError(f"{path}: schema version {version} is newer than this psysim-rate ({SCHEMA_VERSION}); "
                             "upgrade the package to read it")
    _configure(connection)
    while version < SCHEMA_VERSION:
        with connection:
            MIGRATIONS[version](connection)
            version += 1
            connection.execute(f"PRAGMA user_version = {version}")
    return connection


def _open(path: Path) -> sqlite3.Connection:
    # check_same_thread off: the web app opens one connection per request, used by one thread at a time
    return _configure(sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False))


def _configure(connection: sqlite3.Connection) -> sqlite3.Connection:
    connection.row_factory = sqlite3.Row
    connection.execute("PRAGMA foreign_keys = ON")
    connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = FULL")  # a committed answer is on disk
    return connection
