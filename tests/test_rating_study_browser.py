"""Issue 27 in a real browser (Playwright + the system Chromium, axe-core): the start page once,
the rated turn in view, the slider's middle, practice and gold items, status and a reissued link.

Items are built in memory (no Inspect run). Skipped, with the reason, without Chromium or axe-core
(``PSYSIM_REQUIRE_BROWSER=1`` in CI turns those skips into failures). ``PSYSIM_SCREENSHOT_DIR``
also writes the docs' screenshots (start page, long-context page) there.
"""

from __future__ import annotations

import os
import re
import sqlite3
import statistics
from pathlib import Path
from typing import Iterator

import pytest
from browser_tools import SERIOUS, axe_violations, chromium

from psysim.rating_app.cli import main as rate_main
from psysim.rating_app.extra_items import load_extra_items
from psysim.rating_app.progress import rater_summary
from psysim.rating_app.study import Study, create_study, export_frame
from psysim.rating_app.template import load_template

from rating_server import served
from rating_study_items import snippet_items, write_extra

pytestmark = pytest.mark.browser
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')")
SHOTS = os.environ.get("PSYSIM_SCREENSHOT_DIR")
CONSENT = ("Taking part is voluntary. Your answers are stored without your name and used only for research; you may "
           "stop at any time by closing the page.")


@pytest.fixture(scope="module")
def browser() -> Iterator:
    with chromium() as launched:
        yield launched


def serious(violations: list[dict]) -> list[str]:
    return [f"{v['id']} ({v['impact']}): {v['help']}" for v in violations if v["impact"] in SERIOUS]


def new_study(tmp_path: Path, turns: int = 4, practice: int = 0, gold: int = 0, raters: int = 1,
              consent: str = "") -> tuple[Path, list[str]]:
    template = load_template().model_copy(update={"consent": consent})
    practice_items = load_extra_items(write_extra(tmp_path / "p.yaml", practice, None), "practice") if practice else []
    gold_items = load_extra_items(write_extra(tmp_path / "g.yaml", gold), "gold") if gold else []
    created = create_study(tmp_path / "study.db", "browser27", snippet_items(4, turns), raters, template, 0,
                           practice=practice_items, gold=gold_items)
    return created.path, list(created.tokens.values())


def press_start(page) -> None:  # noqa: ANN001
    if page.locator("#consent").count():
        page.check("#consent")
    page.click("form button.primary")


def test_start_page_appears_once_and_is_linked_from_every_page(browser, tmp_path: Path) -> None:  # noqa: ANN001
    path, [token] = new_study(tmp_path, practice=1, consent=CONSENT)
    with served(path) as base:
        page = browser.new_context(bypass_csp=True, viewport={"width": 1300, "height": 900}).new_page()
        page.goto(f"{base}/r/{token}")
        assert page.url.endswith(f"/r/{token}/start")
        assert "Instructions" in page.inner_text("main") and CONSENT in page.inner_text("main")
        assert "13 pages (1 practice page first)" in page.inner_text("main")
        assert serious(axe_violations(page)) == []
        if SHOTS:
            Path(SHOTS).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(SHOTS) / "rating_start_page.png"), full_page=True)
        page.click("form button.primary")  # consent not ticked: the browser keeps the rater on the page
        assert page.url.endswith("/start") and not Study(path).started(1)
        page.evaluate("document.querySelector('form').noValidate = true")  # the server's own check
        page.click("form button.primary")
        assert "Not started: consent" in page.inner_text("#error") and not Study(path).started(1)
        assert serious(axe_violations(page)) == []
        press_start(page)
        page.wait_for_url(f"**/r/{token}/1")
        assert "Practice page" in page.inner_text("main")
        # once passed, never again: the link, a reload and a new browser session open the rating pages
        page.goto(f"{base}/r/{token}")
        assert page.url.endswith(f"/r/{token}/1")
        fresh = browser.new_page()
        fresh.goto(f"{base}/r/{token}")
        assert fresh.url.endswith(f"/r/{token}/1")
        fresh.close()
        # the link back from the page: the instructions again, without a second form
        page.click("text=Instructions and study information")
        page.wait_for_url(f"**/r/{token}/start")
        assert page.locator("form").count() == 0 and "Continue rating" in page.inner_text("main")
        assert serious(axe_violations(page)) == []
        page.click("text=Continue rating")
        page.wait_for_url(f"**/r/{token}/1")
        page.close()


def test_last_client_turn_in_view_on_load_for_a_long_snippet(browser, tmp_path: Path) -> None:  # noqa: ANN001
    path, [token] = new_study(tmp_path, turns=20)
    Study(path).start(1)
    with served(path) as base:
        page = browser.new_context(bypass_csp=True, viewport={"width": 1300, "height": 820}).new_page()
        page.goto(f"{base}/r/{token}/1")
        panel = page.evaluate("(() => { const c = document.querySelector('.context'); "
                              "return [c.scrollTop, c.scrollHeight, c.clientHeight]; })()")
        top, height, visible = panel
        assert height > visible * 1.5, panel  # a long snippet: the panel scrolls
        assert top + visible >= height - 2, panel  # opened at the end
        marked = page.locator("#last-client-turn")
        assert marked.count() == 1 and "Snippet" in marked.inner_text() and "turn 20" in marked.inner_text()
        assert "Your last turn" in marked.inner_text()
        box, frame = marked.bounding_box(), page.locator(".context").bounding_box()
        assert frame["y"] <= box["y"] and box["y"] + box["height"] <= frame["y"] + frame["height"] + 1  # fully in view
        assert box["y"] + box["height"] <= 820  # and in the window
        assert serious(axe_violations(page)) == []
        if SHOTS:
            page.screenshot(path=str(Path(SHOTS) / "rating_long_context.png"))
        # the known-bad case the check must catch: the panel at its top hides the rated turn
        page.evaluate("document.querySelector('.context').scrollTop = 0")
        box = marked.bounding_box()
        assert box["y"] > frame["y"] + frame["height"]
        # a narrow (phone) window: one column, the panel still opens at its end
        phone = browser.new_context(viewport={"width": 390, "height": 800}).new_page()
        phone.goto(f"{base}/r/{token}/1")
        top, height, visible = phone.evaluate("(() => { const c = document.querySelector('.context'); "
                                              "return [c.scrollTop, c.scrollHeight, c.clientHeight]; })()")
        assert top + visible >= height - 2
        phone.close()
        page.close()


def test_slider_click_at_rest_records_the_middle_and_nothing_is_prefilled(browser, tmp_path: Path) -> None:  # noqa: ANN001
    path, [token] = new_study(tmp_path)
    Study(path).start(1)
    with served(path) as base:
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        page.goto(f"{base}/r/{token}/1")
        assert page.input_value("#rating") == "" and page.input_value("#rating-slider") == "50"
        box = page.locator("#rating-slider").bounding_box()
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)  # on the thumb at rest
        assert page.input_value("#rating") == "50"
        page.click("text=Save and continue")
        page.wait_for_url(f"**/r/{token}/2")
        # keyboard: Space on the slider at rest takes its value (one action)
        assert page.input_value("#rating") == ""
        page.focus("#rating-slider")
        page.keyboard.press("Space")
        assert page.input_value("#rating") == "50"
        page.close()
    rated = export_frame(path).query("status == 'rated'")
    assert rated["rating"].tolist() == [50]


def test_practice_not_exported_gold_failure_reported_status_matches_and_reissue(browser, tmp_path: Path,  # noqa: ANN001
                                                                             capsys: pytest.CaptureFixture) -> None:
    path, [token, _] = new_study(tmp_path, practice=1, gold=2, raters=2)
    study = Study(path)
    with sqlite3.connect(path) as connection:
        gold = dict(connection.execute(
            "SELECT a.position, i.expected FROM assignments a JOIN responses r ON r.id = a.response_id "
            "JOIN items i ON i.id = r.item_id WHERE a.rater_id = 1 AND i.role = 'gold'"))
    last = max(gold) + 1  # a partial session: up to one page past the last gold item
    with served(path) as base:
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        page.goto(f"{base}/r/{token}")
        press_start(page)
        page.wait_for_url(f"**/r/{token}/1")
        page.fill("#rating", "77")  # the practice page
        page.click("text=Save and continue")
        for position in range(2, last + 1):
            page.wait_for_url(f"**/r/{token}/{position}")
            if position == 3 and position not in gold:
                page.click("text=Skip / cannot judge")
                continue
            if position in gold:  # the first gold item failed (wrong side), the second passed
                first = position == min(gold)
                wrong, right = ("90", "10") if gold[position] == "low" else ("10", "90")
                page.fill("#rating", wrong if first else right)
            else:
                page.fill("#rating", str(30 + position))
            page.click("text=Save and continue")
        page.wait_for_url(f"**/r/{token}/{last + 1}")
        page.close()
    frame = export_frame(path)
    assert not frame["response_type"].eq("practice").any() and 1 not in frame["position"].tolist()
    assert 77 not in frame["rating"].dropna().tolist()  # the practice answer is nowhere in the export
    summary = rater_summary(frame).set_index("rater")
    assert summary.loc["rater_01", "gold_failed"] == 1 and summary.loc["rater_01", "gold_rated"] == 2
    assert summary.loc["rater_01", "excluded"]  # 1 of 2 is more than a third
    assert rate_main(["export", "--study", str(path), "-o", str(tmp_path / "out.csv")]) == 0
    assert re.search(r"rater_01\s+\d+\s+\d+\s+\d+\s+\S+\s+2\s+2\s+1\s+True", capsys.readouterr().out)
    # psysim-rate status after the partial session, against the database
    assert rate_main(["status", str(path)]) == 0
    out = capsys.readouterr().out
    with sqlite3.connect(path) as connection:
        done, skips = connection.execute(
            "SELECT COUNT(*), SUM(s.skipped) FROM answers s JOIN responses r ON r.id = s.response_id JOIN items i "
            "ON i.id = r.item_id WHERE s.rater_id = 1 AND i.role != 'practice'").fetchone()
        seconds = [row[0] for row in connection.execute(
            "SELECT s.seconds FROM answers s JOIN responses r ON r.id = s.response_id JOIN items i ON i.id = r.item_id "
            "WHERE s.rater_id = 1 AND i.role != 'practice'")]
        pages = connection.execute("SELECT COUNT(*) FROM assignments WHERE rater_id = 1").fetchone()[0] - 1
    assert done == last - 1 and None not in seconds  # every page was viewed before its save: all timed
    row = next(line for line in out.splitlines() if line.strip().startswith("rater_01")).split()
    assert row[4:7] == [str(done), str(pages), str(skips)]
    assert float(row[row.index("1/1") + 4]) == pytest.approx(round(statistics.median(seconds), 1))
    assert "remaining" in out and re.search(r"rater_02\s+no\s+0\s+14\s+0\s+0/1\s+never", out)
    # a reissued link works at once; the old one is refused
    assert rate_main(["reissue", str(path), "--rater", "rater_01"]) == 0
    new = re.search(r"/r/(\S+)", capsys.readouterr().out).group(1)
    with served(path) as base:
        page = browser.new_page()
        page.goto(f"{base}/r/{token}/2")
        assert "Link not recognised" in page.inner_text("main")
        page.goto(f"{base}/r/{new}")
        assert page.url.endswith(f"/r/{new}/{last + 1}")  # the same rater, where they stopped
        page.close()
    assert study.rater(token) is None
