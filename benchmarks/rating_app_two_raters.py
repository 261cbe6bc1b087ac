"""A scripted two-rater session in a real browser, with the export summary and ``psysim-rate status``.

    psysim-demo --log-dir /tmp/demo/logs --report-dir /tmp/demo/report --personas 2 --runs 2
    python benchmarks/rating_app_two_raters.py /tmp/demo/logs --items 6
    python benchmarks/rating_app_two_raters.py /tmp/demo/logs --items 6 --screenshots docs/images

Builds a study with ``psysim-rate create`` (the consent template and the example practice and
gold files in ``configs/rating/``), serves it on 127.0.0.1 and drives two raters through
Playwright and the system Chromium, with think time between pages:

* rater_01, attentive: passes the start page, does the practice page, rates every page (gold
  items on their expected side), skips one;
* rater_02, hurried: rates everything between 50 and 70 (so a "low" gold item fails) and stops
  after about 60% of the pages.

Then prints ``psysim-rate export``'s summary and ``psysim-rate status``. The raters are scripted:
a check of the pipeline, not a human result. ``--screenshots DIR`` also writes the docs' pictures
of the start page and of the page with the longest context.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from rating_server import served  # noqa: E402

CHROMIUM = "/usr/bin/chromium"


def rate(*args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "psysim.rating_app.cli", *args], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    return out.stdout + out.stderr


def gold_sides(db: Path, rater: int) -> dict[int, str]:
    with sqlite3.connect(db) as connection:  # the script knows the answers; the page does not show them
        return dict(connection.execute(
            "SELECT a.position, i.expected FROM assignments a JOIN responses r ON r.id = a.response_id "
            "JOIN items i ON i.id = r.item_id WHERE a.rater_id = ? AND i.role = 'gold'", (rater,)))


def longest_page(db: Path) -> int:
    with sqlite3.connect(db) as connection:
        return connection.execute(
            "SELECT a.position FROM assignments a JOIN responses r ON r.id = a.response_id JOIN items i "
            "ON i.id = r.item_id WHERE a.rater_id = 1 ORDER BY length(i.lines_json) DESC LIMIT 1").fetchone()[0]


def session(browser, base: str, token: str, db: Path, rater: int, careful: bool, rng: random.Random,  # noqa: ANN001
            stop_after: float, shots: Path | None) -> None:
    page = browser.new_page(viewport={"width": 1300, "height": 860})
    page.goto(f"{base}/r/{token}")
    assert page.url.endswith("/start"), page.url
    if shots:
        page.screenshot(path=str(shots / "rating_start_page.png"), full_page=True)
    time.sleep(rng.uniform(2, 4))  # reading the instructions
    page.check("#consent")
    page.click("form button.primary")
    page.wait_for_url("**/r/*/1")
    gold = gold_sides(db, rater)
    total = int(page.locator("#progress").get_attribute("max"))
    longest = longest_page(db)
    skipped = False
    for position in range(1, int(total * stop_after) + 1):
        page.wait_for_url(f"**/r/{token}/{position}")
        if shots and position == longest:  # as the rater first sees it: opened at the end of the context
            page.screenshot(path=str(shots / "rating_long_context.png"))
        time.sleep(rng.uniform(1.5, 4.0) if careful else rng.uniform(0.6, 1.5))
        if careful and not skipped and position > 3 and position not in gold:
            page.click("text=Skip / cannot judge")
            skipped = True
            continue
        if position in gold and careful:
            value = rng.randint(5, 30) if gold[position] == "low" else rng.randint(70, 95)
        elif careful:
            value = rng.randint(20, 90)
        else:
            value = rng.randint(50, 70)
        page.fill("#rating", str(value))
        page.click("text=Save and continue")
    page.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("logs", nargs="+", help="finished logs (e.g. psysim-demo's)")
    parser.add_argument("--items", type=int, default=6, help="contexts to sample (default 6)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--screenshots", default=None, help="write the docs' screenshots into this directory")
    parser.add_argument("--keep", default=None, help="keep the study database and its CSV in this directory "
                                                     "(default: a temporary directory, removed)")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    shots = Path(args.screenshots) if args.screenshots else None
    if shots:
        shots.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        tmp = Path(args.keep or scratch)
        tmp.mkdir(parents=True, exist_ok=True)
        db = tmp / "two_raters.db"
        created = rate("create", *args.logs, "--study", str(db), "--raters", "2", "--items", str(args.items),
                       "--seed", str(args.seed), "--template", "configs/rating/study_with_consent.yaml",
                       "--practice", "configs/rating/practice_example.yaml",
                       "--gold", "configs/rating/gold_example.yaml")
        print("$ psysim-rate create ...\n" + "\n".join(line for line in created.splitlines() if "/r/" not in line))
        tokens = [line.split("/r/")[1].strip() for line in created.splitlines() if "/r/" in line]
        started = time.monotonic()
        with served(db) as base, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            session(browser, base, tokens[0], db, 1, True, random.Random(args.seed), 1.0, shots)
            session(browser, base, tokens[1], db, 2, False, random.Random(args.seed + 1), 0.6, None)
            browser.close()
        print(f"(browser session: {time.monotonic() - started:.0f} s)")
        print("$ psysim-rate export --study two_raters.db\n" + rate("export", "--study", str(db), "-o",
                                                                     str(tmp / "two_raters.csv")))
        print("$ psysim-rate status two_raters.db\n" + rate("status", str(db)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
