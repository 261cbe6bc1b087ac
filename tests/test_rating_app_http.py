"""The raters' web app over HTTP: pages, saving, security, 20 raters at once, a server killed mid-study."""

from __future__ import annotations

import re
import signal
import threading
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from psysim.rating_app.app import SECURITY_HEADERS, create_app
from psysim.rating_app.items import read_items
from psysim.rating_app.study import Study, close_study, create_study, export_frame
from psysim.rating_app.template import load_template
from psysim.study.log_series import load_selection

from rating_logs import exp2_log
from rating_server import REQUEST_TIMEOUT, post, served, served_process

RESPONSE_ID = re.compile(r'name="response" value="([0-9a-f]{16})"')
CONCURRENT_RATERS = 20


@pytest.fixture(scope="module")
def items(tmp_path_factory: pytest.TempPathFactory) -> list:
    root = tmp_path_factory.mktemp("http-logs") / "logs"
    exp2_log(root)
    [entry] = load_selection(root).used
    return read_items(entry)[0]


def new_study(items: list, tmp_path: Path, raters: int, started: bool = True) -> tuple[Path, list[str]]:
    """A study whose raters have passed the start page (unless ``started`` is False)."""
    created = create_study(tmp_path / "study.db", "http", items, raters, load_template(), seed=3)
    study = Study(created.path)
    for token in created.tokens.values():
        if started:
            study.start(study.rater(token)[0])
    return created.path, list(created.tokens.values())


def browser_like(path: Path, **app_args) -> TestClient:  # noqa: ANN003
    """A client that posts with the server's own Origin, as a browser does from the app's pages."""
    return TestClient(create_app(path, **app_args), follow_redirects=False, headers={"origin": "http://testserver"})


def rating_for(rater: int, position: int) -> int:
    return (rater * 7 + position * 13) % 101


def test_pages_save_resume_and_are_blind(items: list, tmp_path: Path) -> None:
    path, tokens = new_study(items, tmp_path, 2)
    client = browser_like(path)
    token = tokens[0]
    start = client.get(f"/r/{token}")
    assert start.status_code == 303 and start.headers["location"] == f"/r/{token}/1"
    page = client.get(f"/r/{token}/1")
    assert page.status_code == 200 and "Page 1 of 12" in page.text
    for name, value in SECURITY_HEADERS.items():
        assert page.headers[name] == value
    assert "http://" not in page.text.replace("http://www.w3.org", "")  # nothing from elsewhere
    # the mock responses carry their source as a mark; everything else on the page must not
    body = re.sub(r'<blockquote class="response">.*?</blockquote>', "", page.text, flags=re.DOTALL).lower()
    for word in ("revised", "llm", "human", "critique", "expert"):  # blind to the source
        assert word not in body
    response_id = RESPONSE_ID.search(page.text).group(1)
    saved = client.post(f"/r/{token}/1", data={"response": response_id, "rating": "65", "action": "save",
                                                 "comment": "<script>alert(1)</script>"})
    assert saved.status_code == 303 and saved.headers["location"] == f"/r/{token}/2"
    second = RESPONSE_ID.search(client.get(f"/r/{token}/2").text).group(1)
    skipped = client.post(f"/r/{token}/2", data={"response": second, "rating": "", "action": "skip", "comment": "unclear"})
    assert skipped.status_code == 303
    assert client.get(f"/r/{token}").headers["location"] == f"/r/{token}/3"  # resume
    shown = client.get(f"/r/{token}/1").text
    assert 'value="65"' in shown
    assert "<script>alert(1)" not in shown and "&lt;script&gt;alert(1)" in shown  # text is escaped
    assert "Saved as: skipped" in client.get(f"/r/{token}/2").text
    frame = export_frame(path)
    done = frame[frame["status"] != "unanswered"].set_index("position")
    assert done.loc[1, "rating"] == 65 and done.loc[2, "status"] == "skipped" and len(done) == 2


def test_server_side_validation_and_isolation(items: list, tmp_path: Path) -> None:
    path, (mine, theirs) = new_study(items, tmp_path, 2)
    client = browser_like(path)
    response_id = RESPONSE_ID.search(client.get(f"/r/{mine}/1").text).group(1)
    # issue 22: ASCII digits only; "²", "①" and a 5000-digit number gave HTTP 500, "٥٠" was saved as 50
    for value in ("101", "-5", "7.5", "seventy", "", "²", "①", "--5", "9" * 5000, "٥٠", "５٠", "+5", "0x32", "5 0"):
        bad = client.post(f"/r/{mine}/1", data={"response": response_id, "rating": value, "action": "save"})
        assert bad.status_code == 400 and "Not saved: rating" in bad.text
    unknown = client.post(f"/r/{mine}/1", data={"response": "f" * 16, "rating": "50", "action": "save"})
    assert unknown.status_code == 400 and "unknown item" in unknown.text
    # another rater's page and position: their token is needed; mine cannot reach their answers
    their_id = RESPONSE_ID.search(client.get(f"/r/{theirs}/1").text).group(1)
    if their_id != response_id:
        crossed = client.post(f"/r/{mine}/1", data={"response": their_id, "rating": "50", "action": "save"})
        assert crossed.status_code == 400
    assert client.get("/r/not-a-token").status_code == 404
    assert client.get("/r/not-a-token/1").status_code == 404
    assert client.post("/r/not-a-token/1", data={"response": response_id, "rating": "50"}).status_code == 404
    assert client.get(f"/r/{mine}/999").status_code == 404
    for position in (2**63, 2**63 - 1, 2**64 + 5, 10**30, 0):  # 2**63 and more gave HTTP 500
        assert client.get(f"/r/{mine}/{position}").status_code == 404
        assert client.post(f"/r/{mine}/{position}", data={"response": response_id, "rating": "50"}).status_code == 404
    assert (export_frame(path)["status"] != "unanswered").sum() == 0
    # no admin action over HTTP
    for route in ("/admin", "/export", "/close", "/study", "/status", "/reissue", f"/r/{mine}/status",
                  f"/r/{mine}/reissue"):
        assert client.get(route).status_code == 404 and client.post(route).status_code in (404, 405)
    close_study(path)
    closed = client.post(f"/r/{mine}/1", data={"response": response_id, "rating": "50", "action": "save"})
    assert closed.status_code == 409
    assert (export_frame(path)["status"] != "unanswered").sum() == 0


def test_twenty_raters_saving_at_once_lose_no_answer(items: list, tmp_path: Path) -> None:
    path, tokens = new_study(items, tmp_path, CONCURRENT_RATERS)
    per_rater = len(export_frame(path)) // CONCURRENT_RATERS
    barrier = threading.Barrier(CONCURRENT_RATERS, timeout=REQUEST_TIMEOUT)
    failures: list[str] = []
    study = Study(path)
    with served(path) as base:
        def rate(index: int, token: str) -> None:
            rater_id, _ = study.rater(token)
            pages = [study.page(rater_id, p).response_id for p in range(1, per_rater + 1)]
            barrier.wait()  # every rater starts together; their saves interleave
            for position, response_id in enumerate(pages, start=1):
                status, _ = post(f"{base}/r/{token}/{position}",
                                 {"response": response_id, "rating": str(rating_for(index, position)), "action": "save"})
                if status != 303:
                    failures.append(f"rater {index} page {position}: HTTP {status}")

        threads = [threading.Thread(target=rate, args=(i, t)) for i, t in enumerate(tokens)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not any(thread.is_alive() for thread in threads)
    assert failures == []
    frame = export_frame(path)
    expected = CONCURRENT_RATERS * per_rater
    saved = frame[frame["status"] == "rated"]
    assert len(saved) == expected  # answers lost: 0
    labels = sorted(frame["rater"].unique())
    for _, row in saved.iterrows():
        assert row["rating"] == rating_for(labels.index(row["rater"]), row["position"])


def test_answers_committed_before_the_page_advances_survive_a_kill(items: list, tmp_path: Path) -> None:
    path, tokens = new_study(items, tmp_path, 3)
    study = Study(path)
    confirmed: list[tuple[str, int]] = []
    with served_process(path) as (base, process):
        for index, token in enumerate(tokens):
            rater_id, _ = study.rater(token)
            for position in range(1, 5):
                response_id = study.page(rater_id, position).response_id
                status, location = post(f"{base}/r/{token}/{position}",
                                        {"response": response_id, "rating": str(rating_for(index, position)),
                                         "comment": "SECRET-COMMENT", "action": "save"})
                assert status == 303 and location.endswith(f"/{position + 1}")
                confirmed.append((token, position))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=REQUEST_TIMEOUT)
        stdout, stderr = process.communicate(timeout=REQUEST_TIMEOUT)
    assert process.returncode == -signal.SIGKILL
    frame = export_frame(path)
    assert (frame["status"] == "rated").sum() == len(confirmed) == 12
    # nothing the raters read or wrote, and no token, reached the server's output
    output = (stdout + stderr).decode()
    assert "SECRET-COMMENT" not in output and not any(t in output for t in tokens)
    assert not any(line.text[:40] in output for item in items for line in item.lines)


def test_cross_origin_posts_are_refused(items: list, tmp_path: Path) -> None:
    """Issue 22: a page on another site cannot post ratings for a rater who opened it."""
    path, (token,) = new_study(items, tmp_path, 1)
    app = create_app(path, base_url="https://rate.example.org/")
    client = TestClient(app, follow_redirects=False)
    response_id = RESPONSE_ID.search(client.get(f"/r/{token}/1").text).group(1)
    form = {"response": response_id, "rating": "50", "action": "save"}
    refused = [
        {},  # neither Origin nor Referer
        {"origin": "https://evil.example"},
        {"origin": "http://testserver.evil.example"},
        {"origin": "https://testserver"},  # another scheme is another origin
        {"origin": "http://testserver:8080"},
        {"origin": "null"},
        {"origin": "null", "referer": "https://evil.example/r/x"},
        {"referer": "https://evil.example/page?http://testserver/"},
        {"origin": "https://evil.example", "referer": "http://testserver/r/x/1"},  # Origin decides when present
        {"origin": "not a url"},
    ]
    for headers in refused:
        answer = client.post(f"/r/{token}/1", data=form, headers=headers)
        assert answer.status_code == 403 and "Request refused" in answer.text, headers
    assert (export_frame(path)["status"] != "unanswered").sum() == 0  # nothing saved
    accepted = [
        {"origin": "http://testserver"},
        {"origin": "HTTP://TestServer:80"},
        {"referer": f"http://testserver/r/{token}/1"},  # no Origin (older browsers): the Referer
        {"origin": "null", "referer": f"http://testserver/r/{token}/1"},
        {"origin": "https://rate.example.org"},  # the configured base URL (a proxy in front)
    ]
    for headers in accepted:
        assert client.post(f"/r/{token}/1", data=form, headers=headers).status_code == 303, headers
    assert (export_frame(path)["status"] == "rated").sum() == 1


def test_csv_export_escapes_formulas_in_text_only(items: list, tmp_path: Path) -> None:
    """Issue 22 (OWASP CSV injection): text cells starting with = + - @ tab CR are exported as text."""
    import pandas as pd

    from psysim.rating_app.cli import main as rate_main

    path, (token,) = new_study(items, tmp_path, 1)
    client = browser_like(path)
    comments = ['=HYPERLINK("https://evil.example","x")', "+1 great", "-worse", "@SUM(A1)", "\tindent", "\rcr",
                "fine - really", "50"]
    study = Study(path)
    rater_id, _ = study.rater(token)
    for position, comment in enumerate(comments, start=1):
        response_id = study.page(rater_id, position).response_id
        assert client.post(f"/r/{token}/{position}", data={"response": response_id, "rating": str(position),
                                                           "action": "save", "comment": comment}).status_code == 303
    out = tmp_path / "export.csv"
    assert rate_main(["export", "--study", str(path), "-o", str(out)]) == 0
    frame = pd.read_csv(out, dtype={"comment": str})
    rated = frame[frame["status"] == "rated"]
    exported = dict(zip(rated["rating"].astype(int), rated["comment"]))
    # a leading \t or \r is stripped by the app when saved; the rest are escaped with '
    assert [exported[p] for p in range(1, 5)] == ["'" + c for c in comments[:4]]
    assert exported[7] == "fine - really" and exported[8] == "50"
    assert sorted(rated["rating"]) == list(range(1, 9))  # numbers are written as numbers
    assert pd.api.types.is_numeric_dtype(frame["rating"]) and "'" not in "".join(map(str, frame["position"]))


def test_formula_escaping_touches_text_cells_only() -> None:
    import pandas as pd

    from psysim.analysis.safe_csv import escape_formulas

    frame = pd.DataFrame({"text": ["=1+1", "+x", "-x", "@x", "\tx", "\rx", "ok", None],
                          "number": [-1, 2, -3, 4, 5, 6, 7, 8], "mixed": [-1.5, "-a", 3, "b", None, 1, 2, 3]})
    escaped = escape_formulas(frame)
    assert list(escaped["text"][:7]) == ["'=1+1", "'+x", "'-x", "'@x", "'\tx", "'\rx", "ok"]
    assert pd.isna(escaped["text"][7])
    assert list(escaped["number"]) == list(frame["number"]) and escaped["number"].dtype == frame["number"].dtype
    assert list(escaped["mixed"][:4]) == [-1.5, "'-a", 3, "b"]


def test_start_page_once_with_consent_and_the_same_checks_as_the_rating_form(tmp_path: Path) -> None:
    """Issue 27: a start page a rater passes once (consent ticked when the template has a consent
    text), linked from every page; its POST has the rating form's origin check, validation and closing."""
    from rating_study_items import snippet_items, write_extra

    from psysim.rating_app.extra_items import load_extra_items

    template = load_template().model_copy(update={"consent": "I agree that my answers are used for research.",
                                                  "description": "A STUDY OF COUNSELLING REPLIES."})
    practice = load_extra_items(write_extra(tmp_path / "p.yaml", 1, None), "practice")
    created = create_study(tmp_path / "s.db", "start", snippet_items(2), 2, template, 0, practice=practice)
    token, other = created.tokens.values()
    client = browser_like(created.path)
    for path in (f"/r/{token}", f"/r/{token}/1", f"/r/{token}/done"):
        assert client.get(path).headers["location"] == f"/r/{token}/start"  # nothing before the start page
    start = client.get(f"/r/{token}/start")
    assert start.status_code == 200
    for shown in ("A STUDY OF COUNSELLING REPLIES.", "Put yourself", "I agree that my answers", "7 pages (1 practice "
                  "page first)", "about 4 minutes", 'name="consent"'):
        assert shown in start.text, shown
    assert RESPONSE_ID.search(start.text) is None  # the start page holds no item
    # a rating posted before the start page: refused, nothing saved
    page_id = Study(created.path).page(Study(created.path).rater(token)[0], 1).response_id
    early = client.post(f"/r/{token}/1", data={"response": page_id, "rating": "50", "action": "save"})
    assert early.status_code == 409 and "Start page first" in early.text
    # the origin check of the rating form
    for headers in ({"origin": "https://evil.example"}, {"origin": "null"}):
        refused = client.post(f"/r/{token}/start", data={"consent": "yes"}, headers=headers)
        assert refused.status_code == 403 and "Request refused" in refused.text
    assert TestClient(create_app(created.path), follow_redirects=False).post(
        f"/r/{token}/start", data={"consent": "yes"}).status_code == 403  # neither Origin nor Referer
    # validation: the consent box is required; an unexpected value is refused
    for form in ({}, {"consent": "no"}, {"consent": "yes" * 1000}):
        missing = client.post(f"/r/{token}/start", data=form)
        assert missing.status_code == 400 and "Not started: consent" in missing.text
    assert not Study(created.path).started(Study(created.path).rater(token)[0])
    assert client.post(f"/r/{token}/start", data={"consent": "yes"}).headers["location"] == f"/r/{token}"
    assert client.get(f"/r/{token}").headers["location"] == f"/r/{token}/1"
    assert "Continue rating" in client.get(f"/r/{token}/start").text  # once passed, no second form
    assert 'name="consent"' not in client.get(f"/r/{token}/start").text
    first = client.get(f"/r/{token}/1").text
    assert "Practice page" in first and f'href="/r/{token}/start"' in first  # the link back, on every page
    assert 'id="last-client-turn"' in first and "Your last turn" in first
    assert "Practice page" not in client.get(f"/r/{token}/2").text
    assert f'href="/r/{token}/start"' in client.get(f"/r/{token}/done").text
    # the other rater still has to pass it; once the study is closed, they cannot
    close_study(created.path)
    assert client.post(f"/r/{other}/start", data={"consent": "yes"}).status_code == 409
    assert client.get("/r/not-a-token/start").status_code == 404
    assert client.post("/r/not-a-token/start", data={"consent": "yes"}).status_code == 404


def test_reissued_link_works_and_the_old_one_is_refused(items: list, tmp_path: Path) -> None:
    from psysim.rating_app.study import reissue_link

    path, (old,) = new_study(items, tmp_path, 1)
    client = browser_like(path)
    response_id = RESPONSE_ID.search(client.get(f"/r/{old}/1").text).group(1)
    assert client.post(f"/r/{old}/1", data={"response": response_id, "rating": "33", "action": "save"}).status_code == 303
    new = reissue_link(path, "rater_01")
    for route in ("", "/1", "/start", "/done"):
        assert client.get(f"/r/{old}{route}").status_code == 404
    assert client.post(f"/r/{old}/2", data={"response": response_id, "rating": "50"}).status_code == 404
    assert client.get(f"/r/{new}").headers["location"] == f"/r/{new}/2"  # same rater: resumes after their answer
    assert 'value="33"' in client.get(f"/r/{new}/1").text
