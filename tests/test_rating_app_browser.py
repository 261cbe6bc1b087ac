"""The rating app in a real browser: Playwright driving the system Chromium, axe-core for accessibility.

Skipped, with the reason, when no Chromium is installed (``.ci/run`` installs Debian's ``chromium``)
or when axe-core is absent (``npm ci`` at the repository root installs the pinned version).
Set ``PSYSIM_SCREENSHOT_DIR`` to also write the README's screenshots there.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest
from browser_tools import SERIOUS, axe_violations, chromium

from psysim.rating_app.items import read_items
from psysim.rating_app.study import Study, create_study, export_frame
from psysim.rating_app.template import load_template
from psysim.study.log_series import load_selection

from rating_logs import exp1_log, exp2_log
from rating_server import served

pytestmark = pytest.mark.browser
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')")

@pytest.fixture(scope="module")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("browser-logs") / "logs"
    exp2_log(root, snippets=3)
    exp1_log(root, personas=1, sessions=2)
    return root


@pytest.fixture(scope="module")
def browser(log_dir: Path) -> Iterator:
    # after the logs: Playwright's sync API holds an event loop that Inspect's eval would trip over
    del log_dir
    with chromium() as launched:
        yield launched


def study(log_dir: Path, tmp_path: Path, task: str = "human_comparison") -> tuple[Path, str]:
    """A one-rater study whose rater has passed the start page (tested on its own below)."""
    [entry] = [e for e in load_selection(log_dir).used if e.key.task == task]
    items = read_items(entry)[0]
    created = create_study(tmp_path / "study.db", "browser", items, 1, load_template(), seed=0)
    token = next(iter(created.tokens.values()))
    Study(created.path).start(Study(created.path).rater(token)[0])
    return created.path, token


def serious(violations: list[dict]) -> list[str]:
    return [f"{v['id']} ({v['impact']}): {v['help']}" for v in violations if v["impact"] in SERIOUS]


def test_rate_with_mouse_and_keyboard_reload_resume_and_export(browser, log_dir: Path, tmp_path: Path) -> None:  # noqa: ANN001
    path, token = study(log_dir, tmp_path)
    with served(path) as base:
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        page.goto(f"{base}/r/{token}")
        assert page.url.endswith(f"/r/{token}/1")
        assert "Page 1 of 9" in page.inner_text("header")
        # 1. mouse: click on the slider three quarters along, then the save button
        box = page.locator("#rating-slider").bounding_box()
        page.mouse.click(box["x"] + box["width"] * 0.75, box["y"] + box["height"] / 2)
        by_mouse = int(page.input_value("#rating"))
        assert 65 <= by_mouse <= 85
        page.click("text=Save and continue")
        page.wait_for_url(f"**/r/{token}/2")
        # 2. keyboard only: Tab to the slider, End, three steps left, Tab to the number, Enter
        for _ in range(15):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.id") == "rating-slider":
                break
        assert page.evaluate("document.activeElement.id") == "rating-slider"
        page.keyboard.press("End")
        for _ in range(3):
            page.keyboard.press("ArrowLeft")
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.id") == "rating"
        assert page.input_value("#rating") == "97"
        page.keyboard.press("Enter")
        page.wait_for_url(f"**/r/{token}/3")
        # 3. typed number and a comment
        page.fill("#rating", "42")
        page.fill("#comment", "felt rushed")
        page.click("text=Save and continue")
        page.wait_for_url(f"**/r/{token}/4")
        # a bad number is refused by the server too (the browser's own check bypassed)
        page.evaluate("document.querySelector('form').noValidate = true")
        page.fill("#rating", "150")
        page.click("text=Save and continue")
        assert "Not saved: rating: 150 is outside 0 to 100" in page.inner_text("#error")
        # reload, and resume from the link: the first unanswered page
        page.reload()
        page.goto(f"{base}/r/{token}")
        assert page.url.endswith(f"/r/{token}/4")
        assert "(3 answered)" in page.inner_text("header")
        page.goto(f"{base}/r/{token}/1")
        assert page.input_value("#rating") == str(by_mouse)
        page.close()
    frame = export_frame(path)
    answered = frame[frame["status"] != "unanswered"].set_index("position")
    assert list(answered.index) == [1, 2, 3]
    assert answered["rating"].tolist() == [by_mouse, 97, 42]
    assert answered["comment"].fillna("").tolist() == ["", "", "felt rushed"]


@pytest.mark.parametrize("task", ["human_comparison", "iterative_feedback"])
def test_pages_have_no_serious_accessibility_violations(browser, log_dir: Path, tmp_path: Path, task: str) -> None:  # noqa: ANN001
    path, token = study(log_dir, tmp_path, task)
    shots = [Path(d) for d in (os.environ.get("PSYSIM_SCREENSHOT_DIR"),) if d]
    with served(path) as base:
        # the app's CSP forbids injected scripts; axe (test-only) is let in by bypassing it here
        page = browser.new_context(bypass_csp=True, viewport={"width": 1300, "height": 820}).new_page()
        page.goto(f"{base}/r/{token}/1")
        found = serious(axe_violations(page))
        assert found == [], found
        page.fill("#rating", "500")
        page.evaluate("document.querySelector('form').noValidate = true")
        page.click("text=Save and continue")  # the error state
        assert serious(axe_violations(page)) == []
        page.goto(f"{base}/r/{token}/1")
        for directory in shots:
            directory.mkdir(parents=True, exist_ok=True)
            page.fill("#rating", "64")
            page.dispatch_event("#rating", "input")
            page.screenshot(path=str(directory / f"rating_page_{task}.png"))
        page.goto(f"{base}/r/{token}/done")
        assert serious(axe_violations(page)) == []
        page.close()


def test_axe_check_catches_a_serious_violation(browser, log_dir: Path, tmp_path: Path) -> None:  # noqa: ANN001
    """Known-bad input for the check above: an unlabelled field is reported as serious or critical."""
    path, token = study(log_dir, tmp_path)
    with served(path) as base:
        page = browser.new_context(bypass_csp=True).new_page()
        page.goto(f"{base}/r/{token}/1")
        page.evaluate("document.querySelector('form').insertAdjacentHTML('beforeend', '<input type=\"text\" name=\"x\">')")
        assert any(v.startswith("label") for v in serious(axe_violations(page)))
        page.close()
