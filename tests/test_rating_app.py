"""psysim-rate: items from logs, study creation, each rater's order, saving, resume, skip, export, close."""

from __future__ import annotations

import random
import re
import sqlite3
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from psysim.prompts import load_prompts
from psysim.rating_app import db
from psysim.rating_app.cli import main as rate_main
from psysim.rating_app.items import (
    EXP1_TASK,
    EXP2_TASK,
    VALIDITY_TASK,
    read_items,
    select,
)
from psysim.rating_app.study import (
    AnswerError,
    Study,
    StudyClosedError,
    close_study,
    create_study,
    export_frame,
    rater_order,
)
from psysim.rating_app.template import TemplateError, load_template
from psysim.study.log_series import load_selection

from rating_logs import exp1_log, exp2_log, validity_log

SOURCE_WORDS = ("human", "llm", "revised", "REVISED:", "LLM:")


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One log of each task in one directory."""
    root = tmp_path_factory.mktemp("rating-logs") / "logs"
    exp2_log(root)
    validity_log(root)
    exp1_log(root)
    return root


def all_items(log_dir: Path) -> dict:
    found = {}
    for entry in load_selection(log_dir).used:
        items, skipped = read_items(entry)
        found[entry.key.task] = (items, skipped)
    return found


def test_items_of_each_task(logs: Path) -> None:
    found = all_items(logs)
    exp2, _ = found[EXP2_TASK]
    assert len(exp2) == 4 and all(item.kind == "response" for item in exp2)
    assert all([r.key for r in item.responses] == ["human", "llm", "revised"] for item in exp2)
    assert all(item.lines and item.lines[-1].speaker == "You" for item in exp2)  # as the client saw it
    validity, _ = found[VALIDITY_TASK]
    assert len(validity) == 4 and all([r.key for r in item.responses] == ["human"] for item in validity)
    exp1, _ = found[EXP1_TASK]
    assert len(exp1) == 4  # 2 personas x 2 complete sessions
    assert all(count == 2 for count in Counter(i.sample_id for i in exp1).values())
    assert len({i.context_key for i in exp1}) == 4  # each session is its own context
    session_2 = next(i for i in exp1 if i.session == 2)
    assert {line.session for line in session_2.lines} == {1, 2} and session_2.persona
    # the Client LLM's ratings and the baseline are not shown: only what was said, and the persona
    shown = " ".join(line.text for line in session_2.lines) + session_2.persona
    assert "rating" not in shown.lower() and "baseline" not in shown.lower()


def test_unproduced_candidate_is_not_an_item_response(logs: Path, tmp_path: Path) -> None:
    from inspect_ai.log import read_eval_log, write_eval_log

    [entry] = [e for e in load_selection(logs).used if e.key.task == EXP2_TASK]
    log = read_eval_log(entry.path)
    del log.samples[0].scores["client_rating"].metadata["candidates"]["revised"]
    log.samples[1].scores = {}
    out = tmp_path / "edited" / Path(entry.path).name
    out.parent.mkdir()
    write_eval_log(log, str(out))
    [edited] = select([out]).used
    items, skipped = read_items(edited)
    assert [r.key for r in items[0].responses] == ["human", "llm"]
    assert len(items) == 3  # the unscored sample gives no item
    reasons = [s.reason for s in skipped]
    assert any(r.startswith("upstream_failed") and "revised" in r for r in reasons)
    assert any(r.startswith("not_scored") for r in reasons)


def test_a_sample_without_its_store_is_named_not_dropped(logs: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    """Issue 22: a sample rebuilt from Inspect's sample buffer keeps its scores but has no store;
    its sessions cannot be items, and ``create`` says so (46 of 48 items were built without a word)."""
    from inspect_ai.log import read_eval_log, write_eval_log

    [entry] = [e for e in load_selection(logs).used if e.key.task == EXP1_TASK]
    log = read_eval_log(entry.path)
    log.samples[0].store = {}
    out = tmp_path / "edited" / Path(entry.path).name
    out.parent.mkdir()
    write_eval_log(log, str(out))
    [edited] = select([out]).used
    items, skipped = read_items(edited)
    assert len(items) == 2  # the other persona's 2 sessions
    [missing] = skipped
    assert (missing.sample_id, missing.epoch) == (str(log.samples[0].id), log.samples[0].epoch)
    assert missing.reason.startswith("store_missing: ")
    assert rate_main(["create", str(out), "--study", str(tmp_path / "s.db"), "--raters", "1"]) == 0
    err = capsys.readouterr().err
    assert f"warning: {edited.name} sample {log.samples[0].id} epoch 1: store_missing" in err


def test_default_template_asks_the_client_llms_own_question() -> None:
    template = load_template()
    prompts = load_prompts(template.llm_prompt["file"])
    for kind, text in template.question.items():
        said = " ".join(prompts[template.llm_prompt[kind]].split())
        assert " ".join(text.split()) in said, kind
    assert (template.scale.min, template.scale.max) == (0, 100)


def test_bad_template_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "rubric.yaml"
    bad.write_text("version: 1\nname: x\ntitle: t\ninstructions: i\nquestion: {response: q}\nscale: {min: 5, max: 5, low: a, high: b}\n")
    with pytest.raises(TemplateError, match=r"rubric.yaml: .*question.*session|rubric.yaml: .*min \(5\)"):
        load_template(bad)
    with pytest.raises(TemplateError, match="no such template"):
        load_template("nonexistent_template")


def _adjacent_same(order: list[int], keys: list[str]) -> bool:
    return any(keys[a] == keys[b] for a, b in zip(order, order[1:]))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 4), min_size=1, max_size=12), st.integers(0, 10_000))
def test_order_keeps_contexts_apart(sizes: list[int], seed: int) -> None:
    keys = [f"c{i}" for i, size in enumerate(sizes) for _ in range(size)]
    n, biggest = len(keys), max(sizes)
    if biggest > (n + 1) // 2:
        with pytest.raises(ValueError, match="no order keeps"):
            rater_order(keys, random.Random(seed))
        return
    order = rater_order(keys, random.Random(seed))
    assert sorted(order) == list(range(n))
    assert not _adjacent_same(order, keys)


def test_order_check_detects_adjacency() -> None:
    """The property above would catch an order that puts one context's responses together."""
    keys = ["a", "a", "b", "b"]
    assert _adjacent_same([0, 1, 2, 3], keys) and not _adjacent_same([0, 2, 1, 3], keys)


def test_orders_differ_between_raters_and_are_reproducible() -> None:
    keys = [f"c{i // 3}" for i in range(30)]
    rng = random.Random(0)
    first, second = rater_order(keys, rng), rater_order(keys, rng)
    assert first != second
    again = random.Random(0)
    assert rater_order(keys, again) == first


def make_study(logs: Path, tmp_path: Path, raters: int = 3) -> tuple[Path, dict[str, str]]:
    items = all_items(logs)[EXP2_TASK][0]
    created = create_study(tmp_path / "s.db", "pilot", items, raters, load_template(), seed=0)
    assert (created.items, created.responses) == (4, 12)
    return created.path, created.tokens


def test_create_stores_token_hashes_and_crossed_orders(logs: Path, tmp_path: Path) -> None:
    path, tokens = make_study(logs, tmp_path)
    assert len(tokens) == 3 and len(set(tokens.values())) == 3
    assert all(len(t) >= 32 for t in tokens.values())  # 24 random bytes, urlsafe base64
    raw = path.read_bytes()
    assert not any(t.encode() in raw for t in tokens.values())  # only the hash is stored
    study = Study(path)
    rater_id, label = study.rater(tokens["rater_02"])
    assert label == "rater_02" and study.rater("not-a-token") is None
    frame = export_frame(path)
    assert len(frame) == 3 * 12 and set(frame["status"]) == {"unanswered"}
    # fully crossed: every rater has every response once
    assert frame.groupby("rater")["item"].count().tolist() == [12, 12, 12]
    assert frame.groupby(["rater", "item", "response_type"]).size().max() == 1
    orders = [list(g.sort_values("position")["item"] + g.sort_values("position")["response_type"])
              for _, g in frame.groupby("rater")]
    assert len({tuple(o) for o in orders}) == 3
    for _, g in frame.groupby("rater"):
        items = g.sort_values("position")["item"].tolist()
        assert all(a != b for a, b in zip(items, items[1:]))


def test_page_is_blind_to_the_source(logs: Path, tmp_path: Path) -> None:
    path, tokens = make_study(logs, tmp_path)
    study = Study(path)
    rater_id, _ = study.rater(tokens["rater_01"])
    for position in range(1, 13):
        page = study.page(rater_id, position)
        assert re.fullmatch(r"[0-9a-f]{16}", page.response_id)
        assert "human" not in page.response_id and page.kind == "response"
    assert study.page(rater_id, 13) is None and study.page(rater_id, 0) is None


def test_save_resume_skip_and_validation(logs: Path, tmp_path: Path) -> None:
    path, tokens = make_study(logs, tmp_path)
    study = Study(path)
    one, _ = study.rater(tokens["rater_01"])
    two, _ = study.rater(tokens["rater_02"])
    assert study.progress(one) == (0, 12, 1)
    first = study.page(one, 1)
    study.save(one, 1, first.response_id, "73", False, "  warm  ")
    study.save(one, 2, study.page(one, 2).response_id, None, True, "cannot tell")
    assert study.progress(one) == (2, 12, 3)  # resume at the first unanswered page
    study.save(one, 1, first.response_id, "74", False, "")  # a change replaces the answer
    page = study.page(one, 1)
    assert (page.rating, page.skipped) == (74, False)
    # known-bad inputs: each refused with the field named, nothing saved
    bad = [("-1", "whole number from 0 to 100"), ("101", "outside"), ("50.5", "whole number"), ("abc", "whole number"),
           ("", "give a number"), (" ", "give a number")]
    for value, message in bad:
        with pytest.raises(AnswerError, match=f"rating: .*{message}"):
            study.save(one, 3, study.page(one, 3).response_id, value, False, "")
    with pytest.raises(AnswerError, match="unknown item"):
        study.save(one, 3, "0123456789abcdef", "50", False, "")
    # rater 2 cannot answer for rater 1: their response ids do not match rater 1's positions
    other = study.page(two, 1).response_id
    position_in_one = next(p for p in range(1, 13) if study.page(one, p).response_id == other)
    if position_in_one != 1:
        with pytest.raises(AnswerError, match="unknown item"):
            study.save(two, position_in_one, other, "10", False, "")
    with pytest.raises(AnswerError, match="comment"):
        study.save(one, 3, study.page(one, 3).response_id, "50", False, "x" * 2001)
    assert study.progress(one)[0] == 2 and study.progress(two)[0] == 0
    frame = export_frame(path)
    mine = frame[frame["rater"] == "rater_01"].set_index("position")
    assert mine.loc[1, "status"] == "rated" and mine.loc[1, "rating"] == 74
    assert mine.loc[2, "status"] == "skipped" and pd.isna(mine.loc[2, "rating"]) and mine.loc[2, "comment"] == "cannot tell"
    assert (frame["status"] != "unanswered").sum() == 2


def test_database_refuses_a_skip_with_a_number(logs: Path, tmp_path: Path) -> None:
    path, _ = make_study(logs, tmp_path)
    connection = db.connect(path)
    with pytest.raises(sqlite3.IntegrityError):
        with connection:
            connection.execute("INSERT INTO answers VALUES (1, 1, 50, 1, '', 'x', 'x', NULL)")
    with connection:  # the known-good shapes are accepted
        connection.execute("INSERT INTO answers VALUES (1, 1, NULL, 1, '', 'x', 'x', NULL)")
        connection.execute("INSERT INTO answers VALUES (1, 2, 50, 0, '', 'x', 'x', 2.5)")
    connection.close()


def test_closed_study_refuses_answers(logs: Path, tmp_path: Path) -> None:
    path, tokens = make_study(logs, tmp_path)
    study = Study(path)
    one, _ = study.rater(tokens["rater_01"])
    study.save(one, 1, study.page(one, 1).response_id, "60", False, "")
    closed = close_study(path)
    assert close_study(path) == closed and study.closed()
    with pytest.raises(StudyClosedError):
        study.save(one, 2, study.page(one, 2).response_id, "60", False, "")
    assert (export_frame(path)["status"] == "rated").sum() == 1


def test_schema_version_is_checked(logs: Path, tmp_path: Path) -> None:
    path, _ = make_study(logs, tmp_path)
    assert db.connect(path).execute("PRAGMA user_version").fetchone()[0] == db.SCHEMA_VERSION
    connection = sqlite3.connect(path)
    connection.execute(f"PRAGMA user_version = {db.SCHEMA_VERSION + 1}")
    connection.close()
    with pytest.raises(db.StudyFileError, match=f"schema version {db.SCHEMA_VERSION + 1} is newer"):
        db.connect(path)
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(db.StudyFileError, match="not a study database"):
        db.connect(other)
    text = tmp_path / "text.db"
    text.write_text("not sqlite at all " * 100)
    with pytest.raises(db.StudyFileError, match="not a study database"):
        db.connect(text)


def test_older_schema_is_upgraded(logs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, _ = make_study(logs, tmp_path)
    monkeypatch.setattr(db, "SCHEMA_VERSION", db.SCHEMA_VERSION + 1)
    monkeypatch.setitem(db.MIGRATIONS, db.SCHEMA_VERSION - 1,
                        lambda c: c.execute("ALTER TABLE raters ADD COLUMN note TEXT NOT NULL DEFAULT ''"))
    connection = db.connect(path)
    assert connection.execute("PRAGMA user_version").fetchone()[0] == db.SCHEMA_VERSION
    assert "note" in [row[1] for row in connection.execute("PRAGMA table_info(raters)")]
    connection.close()


def test_cli_create_export_close(logs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)
    assert rate_main(["create", str(logs), "--study", "pilot", "--raters", "2", "--items", "5", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    links = re.findall(r"(rater_\d+)  http://127\.0\.0\.1:8765/r/(\S+)", out)
    assert [label for label, _ in links] == ["rater_01", "rater_02"]
    assert "5 items" in out
    study = Study(tmp_path / "studies" / "pilot.db")
    rater_id, _ = study.rater(links[0][1])
    study.save(rater_id, 1, study.page(rater_id, 1).response_id, "42", False, "")
    assert rate_main(["export", "--study", "pilot"]) == 0
    frame = pd.read_csv(tmp_path / "studies" / "pilot.csv")
    assert Counter(frame["status"])["rated"] == 1 and frame.loc[frame["status"] == "rated", "rating"].tolist() == [42]
    assert rate_main(["close", "--study", "pilot"]) == 0
    # a second create of the same name, a bad log path and an unknown study: a message, exit 2
    assert rate_main(["create", str(logs), "--study", "pilot", "--raters", "2"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert rate_main(["create", str(tmp_path / "nope"), "--study", "p2", "--raters", "2"]) == 2
    assert "no such log file or directory" in capsys.readouterr().err
    assert rate_main(["export", "--study", "unknown"]) == 2
    assert "no such study database" in capsys.readouterr().err
    assert rate_main(["create", str(logs), "--study", "p3", "--raters", "0"]) == 2
    assert "--raters must be at least 1" in capsys.readouterr().err


def test_cli_items_beyond_what_exists_takes_all_with_a_warning(logs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               caplog: pytest.LogCaptureFixture,
                                                               capsys: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)
    assert rate_main(["create", str(logs), "--study", "all", "--raters", "1", "--items", "500"]) == 0
    assert "500 requested but only 12 available" in caplog.text  # 4 + 4 snippets, 2 personas x 2 sessions
    assert "12 items" in capsys.readouterr().out


def test_log_with_unreadable_samples_is_named(logs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from psysim.rating_app import items as items_module

    [entry] = [e for e in load_selection(logs).used if e.key.task == EXP2_TASK]

    def broken(path: str, *args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise OSError("truncated zip")

    monkeypatch.setattr(items_module, "read_eval_log", broken)
    with pytest.raises(ValueError, match=rf"{re.escape(entry.name)}: samples unreadable \(OSError: truncated zip\)"):
        read_items(entry)


def test_cli_create_reads_a_copied_log_once(logs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture) -> None:
    """Issue 21: a byte-identical copy of a log under another name (same eval id) is the same run:
    its items are not doubled, and the copy is named."""
    import shutil

    monkeypatch.chdir(tmp_path)
    copied = tmp_path / "copied"
    shutil.copytree(logs, copied)
    original = sorted(copied.glob("*.eval"))[0]
    shutil.copy(original, copied / ("copy-of-" + original.name))
    assert rate_main(["create", str(copied), "--study", "dup", "--raters", "1", "--items", "500"]) == 0
    captured = capsys.readouterr()
    assert "12 items" in captured.out
    copy = f"copy-of-{original.name}"
    assert (f"{copy} skipped: a copy (same eval id) of {original.name}" in captured.err
            or f"{original.name} skipped: a copy (same eval id) of {copy}" in captured.err)


def test_scorers_name_a_sample_without_its_course() -> None:
    from inspect_ai.util import Store

    from psysim.solvers.course import SessionRecord, TherapyCourse, course_missing, require_course

    assert course_missing(TherapyCourse(store=Store()))
    with pytest.raises(ValueError, match="sample p1 epoch 2: store_missing: "):
        require_course(TherapyCourse(store=Store()), "p1", 2)
    written = TherapyCourse(store=Store())
    written.sessions = [SessionRecord(session=1, status="not_held")]
    assert require_course(written, "p1", 1) is written
