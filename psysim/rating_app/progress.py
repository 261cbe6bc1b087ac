"""For the organiser: each rater's progress (``psysim-rate status``) and the per-rater report of an export.

Both are CLI only: no page of the web app shows one rater anything about another.
"""

from __future__ import annotations

import statistics
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd

from psysim.rating_app import db
from psysim.rating_app.study import _Closing, now

GOLD_FAIL_LIMIT = 1 / 3
"""A rater who fails more than this share of their rated gold items is left out of the agreement statistics."""


def status_frame(path: str | Path, at: str | None = None) -> pd.DataFrame:
    """One row per rater: pages done of their pages (practice counted apart), skips, last activity,
    median seconds per page, and the expected finish (remaining pages x that median).

    Args:
        at: The present (UTC ISO time; default now): the expected finish is counted from it.
    """
    at = at or now()
    with _Closing(db.connect(path)) as connection:
        raters = connection.execute(
            "SELECT id, label, started_at, token_issued_at, reissued FROM raters ORDER BY label").fetchall()
        pages = connection.execute(
            "SELECT a.rater_id, i.role, s.skipped, s.seconds, s.saved_at FROM assignments a "
            "JOIN responses r ON r.id = a.response_id JOIN items i ON i.id = r.item_id "
            "LEFT JOIN answers s ON s.rater_id = a.rater_id AND s.response_id = a.response_id").fetchall()
        viewed = dict(connection.execute("SELECT rater_id, MAX(viewed_at) FROM views GROUP BY rater_id").fetchall())
    rows = []
    for rater in raters:
        mine = [p for p in pages if p["rater_id"] == rater["id"]]
        rated = [p for p in mine if p["role"] != "practice"]
        practice = [p for p in mine if p["role"] == "practice"]
        done = [p for p in rated if p["skipped"] is not None]
        times = [p["seconds"] for p in done if p["seconds"] is not None]
        median = statistics.median(times) if times else None
        remaining = len(rated) - len(done)
        stamps = [s for s in (rater["started_at"], viewed.get(rater["id"]), *(p["saved_at"] for p in mine)) if s]
        if remaining == 0:
            finish = "finished"
        elif median is None:
            finish = "unknown (no timed page yet)"
        else:
            left = timedelta(seconds=remaining * median)
            finish = f"{_clock(datetime.fromisoformat(at) + left)} (in {_duration(left)})"
        rows.append({"rater": rater["label"], "started": _clock(rater["started_at"]) if rater["started_at"] else "no",
                     "done": len(done), "pages": len(rated), "skipped": sum(bool(p["skipped"]) for p in done),
                     "practice": f"{sum(p['skipped'] is not None for p in practice)}/{len(practice)}",
                     "last_activity": _clock(max(stamps)) if stamps else "never",
                     "median_s": None if median is None else round(median, 1), "remaining": remaining,
                     "expected_finish": finish, "link_reissued": rater["reissued"]})
    return pd.DataFrame(rows)


def _clock(stamp: str | datetime) -> str:
    when = datetime.fromisoformat(stamp) if isinstance(stamp, str) else stamp
    return when.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _duration(left: timedelta) -> str:
    seconds = left.total_seconds()
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def rater_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Per rater of an export (:func:`psysim.rating_app.study.export_frame`): pages done, median seconds
    per page, skips, gold items rated and failed, and whether the rater is left out of the agreement
    statistics (more than :data:`GOLD_FAIL_LIMIT` of their rated gold items failed)."""
    rows = []
    for rater, part in frame.groupby("rater", sort=True):
        answered = part[part["status"] != "unanswered"]
        gold = part[part.get("role", pd.Series("study", index=part.index)) == "gold"]
        judged = gold["gold_failed"].dropna().astype(bool) if "gold_failed" in gold else pd.Series(dtype=bool)
        seconds = pd.to_numeric(answered.get("seconds", pd.Series(dtype=float)), errors="coerce").dropna()
        failed = int(judged.sum())
        rows.append({"rater": rater, "done": len(answered), "pages": len(part),
                     "skipped": int((part["status"] == "skipped").sum()),
                     "median_seconds": round(float(seconds.median()), 1) if len(seconds) else None,
                     "gold": len(gold), "gold_rated": len(judged), "gold_failed": failed,
                     "excluded": bool(len(judged)) and failed > GOLD_FAIL_LIMIT * len(judged)})
    return pd.DataFrame(rows, columns=["rater", "done", "pages", "skipped", "median_seconds", "gold", "gold_rated",
                                       "gold_failed", "excluded"])
