"""Issue 27's study design in psysim-rate, without a browser: start page, practice and gold items,
time per item, per-rater report, status, link reissue, the export's study id and columns."""

from __future__ import annotations

import re
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest

from psysim.rating_app import db
from psysim.rating_app import study as study_module
from psysim.rating_app.cli import main as rate_main
from psysim.rating_app.extra_items import ExtraItemsError, gold_failed, load_extra_items
from psysim.rating_app.progress import rater_summary, status_frame
from psysim.rating_app.study import (
    EXPORT_COLUMN_DOCS,
    EXPORT_COLUMNS,
    Study,
    StudyClosedError,
    close_study,
    create_study,
    export_frame,
    plant,
    reissue_link,
    study_id,
)
from psysim.rating_app.template import load_template

from rating_study_items import snippet_items, write_extra

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)


class Clock:
    """``study.now`` under the test's control (the server's clock decides the time per item)."""

    def __init__(self) -> None:
        self.at = T0

    def __call__(self) -> str:
        return self.at.isoformat(timespec="milliseconds")

    def tick(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(study_module, "now", clock)
    monkeypatch.setattr("psysim.rating_app.progress.now", clock)
    return clock


def designed(tmp_path: Path, raters: int = 2, practice: int = 1, gold: int = 3, seed: int = 0, name: str = "design"):  # noqa: ANN201
    practice_items = load_extra_items(write_extra(tmp_path / "practice.yaml", practice, None), "practice") if practice else []
    gold_items = load_extra_items(write_extra(tmp_path / "gold.yaml", gold), "gold") if gold else []
    created = create_study(tmp_path / f"{name}-{seed}.db", name, snippet_items(), raters, load_template(), seed,
                           practice=practice_items, gold=gold_items)
    return created, Study(created.path)


def order_of(study: Study, rater_id: int) -> list[str]:
    with sqlite3.connect(study.path) as connection:
        return [row[0] for row in connection.execute(
            "SELECT r.text FROM assignments a JOIN responses r ON r.id = a.response_id WHERE a.rater_id = ? "
            "ORDER BY a.position", (rater_id,))]


# --- practice and gold files -------------------------------------------------------------------

def test_extra_items_file_is_read(tmp_path: Path) -> None:
    gold = load_extra_items(write_extra(tmp_path / "g.yaml", 2), "gold")
    assert [(g.role, g.expected, g.sample_id) for g in gold] == [("gold", "low", "x1"), ("gold", "high", "x2")]
    assert [line.speaker for line in gold[0].lines] == ["You", "Therapist", "You"]
    (tmp_path / "p.json").write_text('[{"context": [{"speaker": "client", "text": "hi"}], "response": "hello"}]')
    [practice] = load_extra_items(tmp_path / "p.json", "practice")
    assert (practice.role, practice.expected, practice.sample_id, practice.responses[0].text) == ("practice", None, "1", "hello")


@pytest.mark.parametrize("body, message", [
    ("- context: [{client: a}]\n  response: b\n", r"g.yaml item 1 \(id 1\), field expected: required for a gold item"),
    ("- context: [{client: a}]\n  response: b\n  expected: medium\n", r"field expected: 'medium' is not low or high"),
    ("- context: [{client: a}]\n  expected: low\n", r"item 1 \(id 1\), field response: a non-empty text"),
    ("- context: []\n  response: b\n  expected: low\n", r"field context: a non-empty list"),
    ("- context: [{patient: a}]\n  response: b\n  expected: low\n", r"field context turn 1: speaker 'patient'"),
    ("- {id: a, context: [{client: x}], response: b, expected: low}\n- {id: a, context: [{client: x}], response: c, "
     "expected: high}\n", r"item 2 \(id a\), field id: used twice"),
    ("- context: [{client: a}]\n  response: b\n  expected: low\n  answer: 3\n", r"item 1: unknown field\(s\) answer"),
    ("{}\n", r"expected a non-empty list"),
    ("- [unclosed\n", r"not valid YAML"),
    # as in every other input file: a key given twice, a control character in the text
    ("- context: [{client: a}]\n  response: b\n  response: c\n  expected: low\n", r"found key 'response' twice"),
    ('- context: [{client: a}]\n  response: "b\\0c"\n  expected: low\n',
     r"item 1 \(id 1\), field response: control character U\+0000 \(NUL\)"),
    ('- context: [{client: "a\\x1b[2J"}]\n  response: b\n  expected: low\n',
     r"field context turn 1: control character U\+001B \(ESC\)"),
])
def test_bad_gold_file_names_file_item_and_field(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "g.yaml"
    path.write_text(body)
    with pytest.raises(ExtraItemsError, match=message):
        load_extra_items(path, "gold")


def test_gold_fails_on_the_wrong_side_of_the_midpoint() -> None:
    # known good and known bad answers for both sides; the midpoint itself is on neither side
    assert [gold_failed(r, "low") for r in (0, 49, 50, 51, 100)] == [False, False, True, True, True]
    assert [gold_failed(r, "high") for r in (0, 49, 50, 51, 100)] == [True, True, True, False, False]
    assert gold_failed(None, "low") is None and gold_failed(float("nan"), "high") is None
    assert gold_failed(80, None) is None
    assert gold_failed(3, "high", 1, 7) is True and gold_failed(5, "high", 1, 7) is False  # another scale


# --- orders ------------------------------------------------------------------------------------

def test_plant_keeps_the_order_and_is_reproducible() -> None:
    import random

    order = list(range(10))
    planted = plant(order, [100, 101, 102], random.Random(4))
    assert [x for x in planted if x < 100] == order and sorted(x for x in planted if x >= 100) == [100, 101, 102]
    assert planted == plant(order, [100, 101, 102], random.Random(4))
    positions = {tuple(i for i, x in enumerate(plant(order, [100], random.Random(s))) if x == 100) for s in range(30)}
    assert len(positions) > 5  # random positions, not a fixed slot


def test_practice_first_gold_planted_per_rater_and_reproducible(tmp_path: Path) -> None:
    created, study = designed(tmp_path, raters=3, practice=2, gold=3)
    orders = [order_of(study, study.rater(t)[0]) for t in created.tokens.values()]
    for order in orders:
        assert len(order) == 2 + 12 + 3
        assert order[:2] == ["EXTRA RESPONSE 1", "EXTRA RESPONSE 2"]  # practice first, in the file's order
        assert sum(text.startswith("EXTRA") for text in order[2:]) == 3
    gold_slots = [tuple(i for i, text in enumerate(o) if text.startswith("EXTRA") and i >= 2) for o in orders]
    assert len(set(gold_slots)) > 1  # each rater has their own positions
    (tmp_path / "again").mkdir()
    again, study_again = designed(tmp_path / "again", raters=3, practice=2, gold=3)
    assert [order_of(study_again, study_again.rater(t)[0]) for t in again.tokens.values()] == orders
    # the study items keep the order they have without gold: adding gold items moves nothing else
    (tmp_path / "plain").mkdir()
    plain, plain_study = designed(tmp_path / "plain", raters=3, practice=0, gold=0)
    plain_orders = [order_of(plain_study, plain_study.rater(t)[0]) for t in plain.tokens.values()]
    assert [[t for t in o[2:] if not t.startswith("EXTRA")] for o in orders] == plain_orders


# --- start page, time per item, export -----------------------------------------------------------

def test_start_once_and_refused_when_closed(tmp_path: Path) -> None:
    created, study = designed(tmp_path)
    one, two = (study.rater(t)[0] for t in created.tokens.values())
    assert not study.started(one)
    study.start(one)
    study.start(one)  # a second pass changes nothing
    assert study.started(one) and not study.started(two) and study.practice_count() == 1
    close_study(created.path)
    with pytest.raises(StudyClosedError):
        study.start(two)


def answer(study: Study, clock: Clock, rater_id: int, position: int, rating: str | None, seconds: float,
           view: bool = True) -> None:
    page = study.page(rater_id, position, view=view)
    clock.tick(seconds)
    study.save(rater_id, position, page.response_id, rating, rating is None, "")


def test_seconds_from_last_view_to_first_save_and_practice_not_exported(tmp_path: Path, clock: Clock) -> None:
    created, study = designed(tmp_path)
    one = study.rater(created.tokens["rater_01"])[0]
    study.start(one)
    answer(study, clock, one, 1, "50", 30)  # the practice page
    study.page(one, 2, view=True)
    clock.tick(500)  # the rater left; on coming back the page is viewed again: the time starts there
    answer(study, clock, one, 2, "70", 12.5)
    clock.tick(5)
    study.save(one, 2, study.page(one, 2).response_id, "71", False, "changed")  # a change keeps the first time
    answer(study, clock, one, 3, None, 4)  # a skip is timed too
    answer(study, clock, one, 4, "20", 9, view=False)  # posted without a view: no time, never a guess
    frame = export_frame(created.path)
    assert list(frame.columns) == EXPORT_COLUMNS
    mine = frame[frame["rater"] == "rater_01"].set_index("position")
    assert 1 not in mine.index and not frame["response_type"].eq("practice").any()  # practice never exported
    assert len(frame) == 2 * (12 + 3)
    assert mine.loc[2, "seconds"] == 12.5 and mine.loc[2, "rating"] == 71
    assert mine.loc[3, "seconds"] == 4 and mine.loc[3, "status"] == "skipped"
    assert pd.isna(mine.loc[4, "seconds"]) and mine.loc[4, "status"] == "rated"
    assert set(frame["study"]) == {"design"}


def test_export_study_column_is_the_id_never_a_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture) -> None:
    assert study_id("pilot1") == "pilot1" and study_id("runs/2026/pilot1.db") == "pilot1"
    monkeypatch.chdir(tmp_path)
    created = create_study(tmp_path / "deep" / "pilot2.db", "deep/pilot2.db", snippet_items(2), 1, load_template(), 0)
    assert set(export_frame(created.path)["study"]) == {"pilot2"}
    # every export column is documented (docs/human-raters.md lists the same table)
    assert set(EXPORT_COLUMN_DOCS) == set(EXPORT_COLUMNS) and all(EXPORT_COLUMN_DOCS.values())


def test_version_1_database_is_upgraded_and_exports_the_id(tmp_path: Path) -> None:
    """A study made before issue 27 (schema 1, its path as name) is read: no gold, no times, the id."""
    path = tmp_path / "old.db"
    connection = sqlite3.connect(path)
    connection.executescript(db.SCHEMA)
    connection.execute("PRAGMA user_version = 1")
    connection.execute("INSERT INTO study VALUES (1, 'studies/old.db', ?, 'x', 0, NULL)",
                       (load_template().model_dump_json(),))
    connection.execute("INSERT INTO items VALUES (1, 'abc', 'human_comparison', 'response', 'l', 'e', 's', 1, NULL, "
                       "'k', '', '[]')")
    connection.execute("INSERT INTO responses VALUES (1, 'def', 1, 'human', 'text')")
    connection.execute("INSERT INTO raters VALUES (1, 'rater_01', 'hash')")
    connection.execute("INSERT INTO assignments VALUES (1, 1, 1)")
    connection.execute("INSERT INTO answers VALUES (1, 1, 64, 0, '', 't', 't')")
    connection.commit()
    connection.close()
    frame = export_frame(path)
    assert frame.loc[0, "study"] == "old" and frame.loc[0, "role"] == "study" and frame.loc[0, "rating"] == 64
    assert pd.isna(frame.loc[0, "seconds"]) and pd.isna(frame.loc[0, "gold_failed"])
    assert db.connect(path).execute("PRAGMA user_version").fetchone()[0] == db.SCHEMA_VERSION


# --- per-rater report, status, reissue -------------------------------------------------------------

def gold_positions(study: Study, rater_id: int) -> dict[int, str]:
    """position -> expected side of this rater's gold pages (read from the database, as a test may)."""
    with sqlite3.connect(study.path) as connection:
        return dict(connection.execute(
            "SELECT a.position, i.expected FROM assignments a JOIN responses r ON r.id = a.response_id "
            "JOIN items i ON i.id = r.item_id WHERE a.rater_id = ? AND i.role = 'gold'", (rater_id,)))


def test_failed_gold_items_are_counted_and_exclude_beyond_a_third(tmp_path: Path, clock: Clock) -> None:
    created, study = designed(tmp_path, raters=3, gold=3)
    for n, token in enumerate(created.tokens.values()):
        rater_id = study.rater(token)[0]
        gold = gold_positions(study, rater_id)
        wrong = list(gold)[:n]  # rater_01 fails none, rater_02 one (a third: kept), rater_03 two (excluded)
        for position in range(2, 2 + 12 + 3):
            if position in gold:
                right = "10" if gold[position] == "low" else "90"
                value = ("50" if gold[position] == "high" else "90") if position in wrong else right
            else:
                value = str(40 + position)
            answer(study, clock, rater_id, position, value, 10 + n)
    summary = rater_summary(export_frame(created.path)).set_index("rater")
    assert summary["gold_failed"].tolist() == [0, 1, 2] and summary["gold_rated"].tolist() == [3, 3, 3]
    assert summary["excluded"].tolist() == [False, False, True]
    assert summary["done"].tolist() == [15, 15, 15] and summary["median_seconds"].tolist() == [10, 11, 12]
    assert summary["skipped"].tolist() == [0, 0, 0]


def test_status_matches_the_database_and_reissue_replaces_the_link(tmp_path: Path, clock: Clock,
                                                                  capsys: pytest.CaptureFixture) -> None:
    created, study = designed(tmp_path, raters=2, practice=1, gold=2)
    one = study.rater(created.tokens["rater_01"])[0]
    study.start(one)
    answer(study, clock, one, 1, "50", 60)  # practice: not in the median, not a page done
    for position, seconds in zip(range(2, 6), (10, 20, 30, 40)):
        answer(study, clock, one, position, "60" if position != 4 else None, seconds)
    frame = status_frame(created.path, at=clock()).set_index("rater")
    assert frame.loc["rater_01", "done"] == 4 and frame.loc["rater_01", "pages"] == 14
    assert frame.loc["rater_01", "skipped"] == 1 and frame.loc["rater_01", "practice"] == "1/1"
    assert frame.loc["rater_01", "median_s"] == 25 and frame.loc["rater_01", "remaining"] == 10
    finish = clock.at + timedelta(seconds=10 * 25)
    assert frame.loc["rater_01", "expected_finish"] == f"{finish:%Y-%m-%d %H:%M} UTC (in 4 min)"
    assert frame.loc["rater_01", "last_activity"] == f"{clock.at:%Y-%m-%d %H:%M} UTC"
    assert frame.loc["rater_02", "started"] == "no" and frame.loc["rater_02", "last_activity"] == "never"
    assert frame.loc["rater_02", "expected_finish"].startswith("unknown")
    # the CLI prints the same table
    assert rate_main(["status", str(created.path)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"rater_01\s+\S+ \S+ UTC\s+4\s+14\s+1\s+1/1", out), out
    # reissue: the old link is refused, the new one is the same rater with their answers
    old = created.tokens["rater_01"]
    assert rate_main(["reissue", str(created.path), "--rater", "rater_01", "--base-url", "https://x.org/"]) == 0
    new = re.search(r"rater_01  https://x\.org/r/(\S+)", capsys.readouterr().out).group(1)
    assert study.rater(old) is None and study.rater(new) == (one, "rater_01")
    assert study.progress(one)[0] == 5 and status_frame(created.path).set_index("rater").loc["rater_01", "link_reissued"] == 1
    with pytest.raises(ValueError, match="no such rater"):
        reissue_link(created.path, "rater_09")
    assert rate_main(["reissue", str(created.path), "--rater", "rater_09"]) == 2
    assert "rater_09" in capsys.readouterr().err


def test_shipped_examples_load_and_keep_the_client_llms_question() -> None:
    root = Path(__file__).resolve().parents[1] / "configs" / "rating"
    gold = load_extra_items(root / "gold_example.yaml", "gold")
    assert {g.expected for g in gold} == {"low", "high"}
    assert load_extra_items(root / "practice_example.yaml", "practice")
    consent, default = load_template(root / "study_with_consent.yaml"), load_template()
    assert consent.consent and consent.description
    assert (consent.question, consent.scale, consent.instructions) == (default.question, default.scale, default.instructions)


def test_docs_list_every_export_column() -> None:
    docs = (Path(__file__).resolve().parents[1] / "docs" / "human-raters.md").read_text(encoding="utf-8")
    table = docs.split("### Export columns", 1)[1].split("\n\n`", 1)[0]
    assert re.findall(r"^\| `([a-z_]+)` \|", table, re.MULTILINE) == EXPORT_COLUMNS
