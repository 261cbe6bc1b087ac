"""The report as a document (issue 25): real HTML tables equal to the CSVs, figures in place,
"no data" instead of an empty figure, LaTeX tables, the methods paragraph, PNG export, and the
page in a real browser (Playwright + the system Chromium; axe-core for accessibility).

The browser tests skip, with the reason, when Chromium or axe-core is absent (``.ci/run``
installs both); the rest need no browser.
"""

from __future__ import annotations

import math
import re
import zlib
from html.parser import HTMLParser
from pathlib import Path
from typing import Iterator

import pandas as pd
import pytest
from browser_tools import SERIOUS, axe_violations, chromium, chromium_path
from inspect_ai import eval

from psysim.analysis.plots import NoData, forest_figure
from psysim.analysis.report import write_report
from psysim.analysis.section import ReportOptions
from psysim.analysis.stats import PRIMARY, SECONDARY, TestResult
from psysim.tasks.iterative_feedback import iterative_feedback

from mock_roles import RATING_MARKER, Call, Recorder, expert_replier, main_model, mock_role, session_of
from rating_logs import exp2_log

SLOPE = {"EXPERT": 6, "GENERIC": 3, "PLAIN": 1}


def therapist(call: Call) -> str:
    style = "EXPERT" if "EXPERT-FEEDBACK" in call.system else "GENERIC" if "Pay closer attention" in call.system else "PLAIN"
    return f"{style}-STYLE therapist turn in session {session_of(call)}."


def client(call: Call) -> str:
    if RATING_MARKER not in call.text:
        return f"Client answers in session {session_of(call)}."
    style = next((s for s in SLOPE if f"{s}-STYLE" in call.text), "PLAIN")
    persona = zlib.crc32(call.system.encode()) % 9
    wobble = zlib.crc32(f"{call.system}{call.config.seed}".encode()) % 5
    return f'{{"rating": {30 + SLOPE[style] * session_of(call) + persona + wobble}}}'


def exp1_logs(log_dir: Path, conditions: tuple[str, ...] = ("expert", "none"), personas: int = 3, epochs: int = 2,
              sessions: int = 3) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("INSPECT_CACHE_DIR", str(log_dir.parent / "inspect-cache"))
        for condition in conditions:
            recorder = Recorder()
            roles = {"therapist": mock_role("therapist", recorder, therapist),
                     "client": mock_role("client", recorder, client),
                     "expert": mock_role("expert", recorder, expert_replier)}
            [log] = eval(iterative_feedback(condition=condition, sessions=sessions, turns=1), model=main_model(recorder),
                         model_roles=roles, limit=personas, epochs=epochs, log_dir=str(log_dir), display="none")
            assert log.status == "success", log.error


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    logs = tmp_path_factory.mktemp("document") / "logs"
    exp1_logs(logs)
    exp2_log(logs, snippets=3)
    return logs


@pytest.fixture(scope="module")
def report_dir(study: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("document-report") / "report"
    write_report(study, out, ReportOptions(png=False, ci_resamples=50))
    return out


class _Tables(HTMLParser):
    """Each <table>: its caption, data-source, header names and body cells (text, class)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[dict] = []
        self._cell: list[str] | None = None
        self._where = ""

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attrs = dict(attrs)
        if tag == "table":
            self.tables.append({"source": attrs.get("data-source", ""), "caption": "", "header": [], "rows": []})
        elif tag == "caption":
            self._where = "caption"
        elif tag == "tr" and self.tables:
            self.tables[-1]["rows"].append([])
        elif tag in ("td", "th"):
            self._cell, self._where = [], tag
            self._class = attrs.get("class", "")
        elif tag == "span" and self._where == "th":
            self._where = "unit"

    def handle_endtag(self, tag: str) -> None:
        if tag == "caption":
            self._where = ""
        elif tag in ("td", "th") and self._cell is not None:
            text = "".join(self._cell).strip()
            if tag == "th":
                self.tables[-1]["header"].append(text)
            else:
                self.tables[-1]["rows"][-1].append((text, self._class))
            self._cell, self._where = None, ""

    def handle_data(self, data: str) -> None:
        if self._where == "caption":
            self.tables[-1]["caption"] += data
        elif self._cell is not None and self._where in ("td", "th", "unit"):
            self._cell.append(data)


def html_tables(page: str) -> list[dict]:
    parser = _Tables()
    parser.feed(page)
    for table in parser.tables:
        table["rows"] = [row for row in table["rows"] if row]
    return parser.tables


def equal_to_displayed(shown: str, value: object) -> bool:
    """The CSV's value rounded to the decimals the HTML shows (``–`` for a missing number)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return shown == "–"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        decimals = len(shown.split(".")[1]) if "." in shown else 0
        return shown != "–" and abs(float(shown) - float(value)) <= 0.5 * 10 ** -decimals + 1e-9
    return shown == str(value)


def test_tables_are_html_with_captions_units_and_equal_the_csvs(report_dir: Path) -> None:
    page = (report_dir / "index.html").read_text()
    tables = html_tables(page)
    assert len(tables) >= 10 and all(t["caption"].strip() for t in tables)
    assert "<pre>" not in page  # no Markdown pasted into a block
    assert any("(points)" in h or "(unit of the measure)" in h for t in tables for h in t["header"])
    sourced = [t for t in tables if t["source"]]
    assert {"exp1_session_means.csv", "exp2_type_means.csv"} <= {t["source"] for t in sourced}
    for table in sourced:
        csv = pd.read_csv(report_dir / table["source"], keep_default_na=True)
        assert len(csv) == len(table["rows"]), table["source"]
        for row, (_, expected) in zip(table["rows"], csv.iterrows()):
            for (shown, css), value in zip(row, expected.tolist()):
                assert equal_to_displayed(shown, value), (table["source"], shown, value)
                if isinstance(value, float) and shown != "–":
                    assert css == "num"  # numbers right-aligned
    # one number of decimals per numeric column, in every table (df "12.00" and "8" were once mixed)
    number = re.compile(r"^-?\d+(\.\d+)?$")
    checked = 0
    for table in tables:
        for index in range(len(table["header"])):
            cells = [row[index][0] for row in table["rows"] if index < len(row) and row[index][0] != "–"]
            if cells and all(number.match(c) for c in cells):
                assert len({len(c.split(".")[1]) if "." in c else 0 for c in cells}) == 1, (table["caption"], cells)
                checked += 1
    assert checked >= 20


def test_document_structure_figures_latex_methods_and_size(report_dir: Path) -> None:
    page = (report_dir / "index.html").read_text()
    toc = re.search(r'<nav class="toc".*?</nav>', page, re.S).group(0)
    anchors = re.findall(r'href="#([^"]+)"', toc)
    assert len(anchors) >= 8 and all(f'id="{a}"' in page for a in anchors)
    for name in ("sessions", "trajectories", "forest-iterative-feedback", "response-types", "forest-human-comparison",
                 "paper", "integrity"):
        assert f'id="figure-{name}"' in page, name
    assert 'class="plot no-data"' not in page.split('id="figure-sessions"')[1][:10]
    # plotly.js is one file beside the page, never inlined; the page itself stays small
    assert (report_dir / "plotly.min.js").is_file() and '<script src="plotly.min.js">' in page
    assert "plotly.js v" not in page and len(page.encode()) < 1_000_000
    # every table also in LaTeX, booktabs
    tex = (report_dir / "tables.tex").read_text()
    assert tex.count(r"\toprule") == len(html_tables(page)) and r"\bottomrule" in tex
    assert "summary.md" in page and (report_dir / "summary.md").read_text().startswith("# psychotherapy-in-silico")
    methods = (report_dir / "summary.md").read_text().split("## Methods (to paste into a paper)")[1].split("##")[0]
    for fact in ("3 client personas", "3 sessions per course of 1 turns each", "2 independent run(s) per condition",
                 "conditions expert and none", "Models per role: client mockllm/model", "Pre-declared primary test",
                 "inspect_ai ", "Seeds:", "Prompt versions:"):
        assert fact in methods, fact


def test_study_without_experiment_1_shows_no_data_in_place_of_figure_b(study: Path, tmp_path: Path) -> None:
    only_exp2 = tmp_path / "logs"
    only_exp2.mkdir()
    for log in study.glob("*human-comparison*.eval"):
        (only_exp2 / log.name).write_bytes(log.read_bytes())
    write_report(only_exp2, tmp_path / "r", ReportOptions(png=False, ci_resamples=20))
    page = (tmp_path / "r" / "index.html").read_text()
    figure = re.search(r'<figure id="figure-sessions"[^>]*>.*?</figure>', page, re.S).group(0)
    assert "no-data" in figure and "no data: no iterative_feedback logs with samples" in figure
    assert "js-plotly-plot" not in figure and "Plotly.newPlot" not in figure
    assert 'id="figure-response-types"' in page and "Plotly.newPlot" in page


def _test(role: str, diff: float, p_holm: float, measure: str = "slope (points per session)") -> TestResult:
    return TestResult("iterative_feedback", "s", measure, "expert", "none", "mixed model", "persona-runs", role, "ok", "",
                      5, 5, 0, 0, 0, 1.0, 0.0, diff, diff - 1, diff + 1, 2.0, 8.0, 0.01, p_holm, "", float("nan"))


def test_forest_plot_primary_first_holm_marked_and_no_data_when_untestable() -> None:
    figure = forest_figure([_test(SECONDARY, 0.5, 0.3), _test(PRIMARY, 2.0, float("nan")), _test(SECONDARY, 1.5, 0.01),
                            _test(SECONDARY, 3.0, 0.01, "final-session rating (points)")], "Exp 1")
    names = [trace.name for trace in figure.data]
    assert names[0] == "primary" and figure.data[0].marker.symbol == "diamond"
    assert {"secondary, Holm p < 0.05", "secondary, Holm p ≥ 0.05"} <= set(names)
    assert figure.data[0].y[0].startswith("PRIMARY: ")
    assert {figure.layout.xaxis.title.text, figure.layout.xaxis2.title.text} == {
        "difference a − b: slope (points per session)", "difference a − b: final-session rating (points)"}
    untestable = _test(PRIMARY, float("nan"), float("nan"))
    assert isinstance(forest_figure([untestable], "Exp 1"), NoData)


def test_png_unavailable_names_what_to_install(report_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import plotly.graph_objects as go
    import plotly.io as pio

    from psysim.analysis.static_images import write_pngs

    def no_browser(*args, **kwargs) -> None:  # noqa: ANN002, ANN003
        raise RuntimeError("Could not find a Chrome or Chromium browser")

    monkeypatch.setattr(pio, "write_images", no_browser)
    written, notes = write_pngs({"figure_x": go.Figure(go.Scatter(x=[1], y=[1]))}, tmp_path)
    assert written == {} and "apt-get install chromium" in notes[0] and "HTML report is complete" in notes[0]


# --- in a real browser ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser(report_dir: Path) -> Iterator:
    del report_dir  # logs first: Playwright's sync API holds an event loop that Inspect's eval would trip over
    with chromium() as launched:
        yield launched


@pytest.mark.browser
def test_report_in_chromium_renders_every_section_and_figure_and_passes_axe(browser, report_dir: Path) -> None:  # noqa: ANN001
    page_text = (report_dir / "index.html").read_text()
    drawn = len(re.findall(r'<figure id="figure-[^"]+" class="plot"', page_text))
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto((report_dir / "index.html").as_uri(), wait_until="load")
    page.wait_for_function(f"document.querySelectorAll('figure.plot .main-svg').length >= {drawn}", timeout=20_000)
    assert errors == []
    sections = page.eval_on_selector_all("nav.toc a", "links => links.map(a => a.getAttribute('href'))")
    for anchor in sections:
        assert page.locator(anchor).count() == 1, anchor
    # every drawn figure has its plot; every no-data figure says why
    assert page.locator("figure.plot:not(.no-data) .js-plotly-plot").count() == drawn
    for text in page.locator("figure.no-data").all_inner_texts():
        assert "no data: " in text
    # the numbers the reader sees equal the CSVs to the displayed precision
    for table in page.locator("table[data-source]").all():
        csv = pd.read_csv(report_dir / table.get_attribute("data-source"))
        cells = table.locator("tbody tr").evaluate_all("rows => rows.map(r => [...r.cells].map(c => c.innerText.trim()))")
        assert len(cells) == len(csv)
        for shown_row, (_, expected) in zip(cells, csv.iterrows()):
            assert all(equal_to_displayed(s, v) for s, v in zip(shown_row, expected.tolist())), shown_row
    # a warning callout links to its section
    for href in page.eval_on_selector_all(".callout a", "links => links.map(a => a.getAttribute('href'))"):
        assert page.locator(href).count() == 1
    serious = [f"{v['id']} ({v['impact']}): {v['help']}: {[n['target'] for n in v['nodes'][:3]]}"
               for v in axe_violations(page) if v["impact"] in SERIOUS]
    assert serious == []
    page.close()


@pytest.mark.browser
def test_png_beside_each_figure(study: Path, tmp_path: Path) -> None:
    chromium_path()
    pytest.importorskip("kaleido", reason="kaleido is not installed (pip install -e .)")
    logs = tmp_path / "logs"  # Experiment 2 only: few figures, so that the browser's work stays short
    logs.mkdir()
    for log in study.glob("*human-comparison*.eval"):
        (logs / log.name).write_bytes(log.read_bytes())
    report = write_report(logs, tmp_path / "r", ReportOptions(png=True, ci_resamples=20))
    page = (tmp_path / "r" / "index.html").read_text()
    drawn = re.findall(r'<figure id="figure-[^"]+" class="plot" data-figure="([^"]+)"', page)
    assert drawn and not [n for n in report.notes if "PNG" in n]
    for name in drawn:
        png = tmp_path / "r" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert f'href="{name}.png"' in page


# --- the further figures: known good vs known empty input -------------------------------------


def test_agreement_figures_identity_line_and_bland_altman_limits() -> None:
    from psysim.analysis.plots import agreement_figures

    rows = []
    for item in range(6):
        for rater, rating in (("in_loop", 40 + 5 * item), ("rejudge_b", 42 + 5 * item + (item % 2))):
            rows.append({"task": "iterative_feedback", "setting": "s", "sample": f"p{item}", "run": "r:1", "epoch": 1,
                         "item": "session_1", "rater": rater, "rating": rating, "missing": False, "reason": ""})
    data = pd.DataFrame(rows)
    figures = agreement_figures(data)
    scatter, bland = figures["figure_agreement_iterative_feedback_s"], figures["figure_bland_altman_iterative_feedback_s"]
    assert list(scatter.data[0].x) == [40 + 5 * i for i in range(6)]
    assert scatter.data[-1].name == "identity (same rating)" and list(scatter.data[-1].y) == [0, 100]
    diffs = pd.Series([2 + (i % 2) for i in range(6)], dtype=float)
    lines = sorted(shape.y0 for shape in bland.layout.shapes)
    assert lines == pytest.approx(sorted([diffs.mean(), diffs.mean() - 1.96 * diffs.std(), diffs.mean() + 1.96 * diffs.std()]))
    only_in_loop = agreement_figures(data[data["rater"] == "in_loop"])
    assert isinstance(only_in_loop["figure_agreement"], NoData) and "no re-judge" in only_in_loop["figure_agreement"].reason


def test_integrity_bars_and_no_data_when_nothing_fails() -> None:
    from psysim.analysis.plots import integrity_figure

    rates = pd.DataFrame([{"task": "iterative_feedback", "setting": "s", "condition": c, "units": 12, "fail": f,
                           "excluded": e, "echo": f, "role_break": 0, "placeholder": 0, "restatement": 0}
                          for c, f, e in (("expert", 2, 3), ("none", 0, 0))])
    figure = integrity_figure(rates)
    bars = {trace.name: list(trace.y) for trace in figure.data}
    assert bars["failing (the flagged session or snippet)"] == [2, 0]
    # excluded (3) = the failing sessions (2) + the later ones of their course (1)
    assert bars["excluded with them: later sessions of the course"] == [1, 0] and bars["flag: echo"] == [2, 0]
    clean = integrity_figure(rates.assign(fail=0, excluded=0, echo=0))
    assert isinstance(clean, NoData) and "0 of 24" in clean.reason


def test_a_condition_has_one_colour_in_every_figure(study: Path) -> None:
    from psysim.analysis.exp1 import session_means
    from psysim.analysis.figures import PALETTE, sessions_figure
    from psysim.analysis.frames import apply_integrity, read_frames
    from psysim.analysis.plots import trajectories_figure

    exp1 = apply_integrity(read_frames(study).exp1)
    sessions = sessions_figure(session_means(exp1), exp1)
    trajectories = trajectories_figure(exp1)
    for condition in ("expert", "none"):
        assert next(t.line.color for t in sessions.data if t.name == condition) == PALETTE[condition]
        assert next(t.line.color for t in trajectories.data if t.name == f"{condition}: mean") == PALETTE[condition]


def test_a_figure_whose_every_value_is_missing_is_not_drawn() -> None:
    import plotly.graph_objects as go

    from psysim.analysis.report import _figure, _has_data

    empty = go.Figure(go.Scatter(x=[float("nan")] * 2, y=[float("nan")] * 2))
    empty.update_layout(title="safety by session")
    shown = _figure("figure_safety", empty, {})
    assert not _has_data(empty) and shown.no_data == "no value to plot" and shown.html == ""
    drawn = _figure("figure_safety", go.Figure(go.Scatter(x=[1, 2], y=[3.0, float("nan")])), {})
    assert drawn.no_data == "" and "Plotly.newPlot" in drawn.html
