"""psysim-report --human-ratings: human answers matched with the Client LLM's, agreement and means.

Human answers are set by hand as known functions of the LLM's ratings, so each statistic is
checked against an independent computation (scipy, numpy) on the same numbers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from psysim.analysis.cli import main as report_main
from psysim.analysis.human_ratings import HumanRatingsError, read_human_ratings
from psysim.analysis.report import write_report
from psysim.analysis.section import ReportOptions
from psysim.rating_app.items import read_items
from psysim.rating_app.study import Study, create_study, export_frame
from psysim.rating_app.template import load_template
from psysim.study.log_series import load_selection

from rating_logs import exp1_log, exp2_log, validity_log

RATERS = 3


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("human-report") / "logs"
    exp2_log(root, snippets=6)
    return root


def llm_of(logs: Path) -> dict[tuple[str, str], float]:
    """(sample id, response type) -> the Client LLM's rating, straight from the log's scores."""
    from inspect_ai.log import read_eval_log

    [entry] = load_selection(logs).used
    log = read_eval_log(entry.path)
    return {(str(s.id), kind): float(v) for s in log.samples for kind, v in s.scores["client_rating"].value.items()}


def human_value(rater: int, llm: float, unit: int) -> int:
    """rater_01 = the LLM; rater_02 = the LLM + 5; rater_03 = a different ranking."""
    return int([llm, llm + 5, (unit * 37) % 90][rater])


@pytest.fixture
def answered(logs: Path, tmp_path: Path) -> tuple[Path, dict]:
    [entry] = load_selection(logs).used
    items = read_items(entry)[0]
    created = create_study(tmp_path / "study.db", "report", items, RATERS, load_template(), seed=0)
    study = Study(created.path)
    llm = llm_of(logs)
    order = {(i.sample_id, r.key): n for n, (i, r) in enumerate((i, r) for i in items for r in i.responses)}
    frame = export_frame(created.path)
    expected: dict[tuple[str, str, str], float] = {}
    for label, token in created.tokens.items():
        rater_id, _ = study.rater(token)
        index = int(label[-2:]) - 1
        for _, row in frame[frame["rater"] == label].iterrows():
            page = study.page(rater_id, int(row["position"]))
            key = (row["sample_id"], row["response_type"])
            if index == 2 and order[key] == 0:  # one skip: never a number
                study.save(rater_id, int(row["position"]), page.response_id, None, True, "cannot judge")
                continue
            value = human_value(index, llm[key], order[key])
            study.save(rater_id, int(row["position"]), page.response_id, str(value), False, "")
            expected[(label, *key)] = value
    return created.path, expected


def run_report(logs: Path, ratings: Path, out: Path) -> str:
    write_report(logs, out, ReportOptions(human_ratings=str(ratings), ci_resamples=200))
    return (out / "summary.md").read_text()


def test_agreement_against_independent_computations(logs: Path, answered, tmp_path: Path) -> None:  # noqa: ANN001
    path, expected = answered
    summary = run_report(logs, path, tmp_path / "report")
    assert "## Human raters and the Client LLM" in summary
    table = pd.read_csv(tmp_path / "report" / "human_agreement_human_comparison.csv")
    llm = llm_of(logs)
    keys = sorted(llm)
    matrix = np.array([[expected.get((f"rater_{r:02d}", *k), np.nan) for r in range(1, RATERS + 1)] for k in keys])
    x = np.array([llm[k] for k in keys])

    def value(comparison: str, statistic: str) -> float:
        row = table[(table["comparison"] == comparison) & (table["statistic"].str.startswith(statistic))]
        assert len(row) == 1, (comparison, statistic)
        return float(row["value"].iloc[0])

    # rater_01 gave the LLM's own numbers: perfect agreement; rater_02 the same ranking, shifted
    assert value("Client LLM vs rater_01", "Spearman") == pytest.approx(1.0)
    assert value("Client LLM vs rater_01", "ICC") == pytest.approx(1.0)
    assert value("Client LLM vs rater_02", "Spearman") == pytest.approx(1.0)
    assert value("Client LLM vs rater_02", "ICC") < 1.0
    keep = ~np.isnan(matrix[:, 2])
    assert value("Client LLM vs rater_03", "Spearman") == pytest.approx(stats.spearmanr(x[keep], matrix[keep, 2]).statistic)
    assert value("Client LLM vs mean of the raters", "Spearman") == pytest.approx(
        stats.spearmanr(x, np.nanmean(matrix, axis=1)).statistic)
    # the skip is left out: one response fewer in the ICC among raters
    among = table[(table["comparison"] == "among human raters") & table["statistic"].str.startswith("ICC")].iloc[0]
    assert (among["responses"], among["dropped"], among["raters"]) == (len(keys) - 1, 1, RATERS)
    # ceiling: each rater against the others' mean, and the LLM against the same mean
    ceiling = pd.read_csv(tmp_path / "report" / "human_ceiling_human_comparison.csv")
    others = np.nanmean(matrix[:, [1, 2]], axis=1)
    row = ceiling[(ceiling["rater left out"] == "rater_01") & (ceiling["compared"] == "Client LLM")]
    assert float(row["rho with the other raters' mean"].iloc[0]) == pytest.approx(stats.spearmanr(x, others).statistic)
    # human means by response type: each snippet's raters averaged, then the mean over snippets
    means = pd.read_csv(tmp_path / "report" / "human_type_means.csv")
    human = means[means["setting"] == "human raters"].set_index("response_type")
    for kind in ("human", "llm", "revised"):
        per_item = [np.nanmean(matrix[i]) for i, k in enumerate(keys) if k[1] == kind]
        assert human.loc[kind, "mean"] == pytest.approx(np.mean(per_item))
    # the ceiling figure is embedded (its name reaches the page only in a PNG-skipped note, so find its title)
    assert "Agreement with the other human raters (human_comparison)" in (tmp_path / "report" / "index.html").read_text()
    stats_rows = pd.read_csv(tmp_path / "report" / "statistics.csv")
    assert (stats_rows["setting"] == "human raters").sum() == 3  # the paper's three contrasts on human ratings


def test_exported_csv_gives_the_same_report(logs: Path, answered, tmp_path: Path) -> None:  # noqa: ANN001
    path, _ = answered
    csv = tmp_path / "answers.csv"
    export_frame(path).to_csv(csv, index=False)
    from_db = read_human_ratings(path)
    from_csv = read_human_ratings(csv)
    assert from_csv["rating"].astype(float).equals(from_db["rating"].astype(float))
    run_report(logs, csv, tmp_path / "r_csv")
    run_report(logs, path, tmp_path / "r_db")
    a = pd.read_csv(tmp_path / "r_csv" / "human_agreement_human_comparison.csv")
    b = pd.read_csv(tmp_path / "r_db" / "human_agreement_human_comparison.csv")
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.parametrize("status, rating, message", [
    ("rated", "", "row 1 (line 2), field rating: a rated answer needs a whole number"),
    ("rated", "120", "field rating: a rated answer needs a whole number 0-100"),
    ("skipped", "50", "row 1 (line 2), field rating: a skipped answer has no rating"),
    ("maybe", "", "field status: 'maybe' is not one of"),
])
def test_bad_csv_names_row_and_field(logs: Path, answered, tmp_path: Path, status: str, rating: str,  # noqa: ANN001
                                     message: str, capsys: pytest.CaptureFixture) -> None:
    path, _ = answered
    frame = export_frame(path).astype({"rating": object})
    frame.loc[0, "status"], frame.loc[0, "rating"] = status, rating
    csv = tmp_path / "bad.csv"
    frame.to_csv(csv, index=False)
    with pytest.raises(HumanRatingsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_human_ratings(csv)
    assert report_main([str(logs), "-o", str(tmp_path / "out"), "--human-ratings", str(csv)]) == 2
    assert "bad.csv row 1" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_a_study_from_other_logs_is_named(logs: Path, answered, tmp_path: Path) -> None:  # noqa: ANN001
    path, _ = answered
    other = tmp_path / "other-logs"
    validity_log(other)
    summary = run_report(other, path, tmp_path / "report")
    assert "response(s) of the study are in no log given to the report" in summary


def test_validity_and_experiment_1_items_meet_their_llm_ratings(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    validity_log(logs)
    exp1_log(logs, personas=2, sessions=3)
    items = [item for entry in load_selection(logs).used for item in read_items(entry)[0]]
    created = create_study(tmp_path / "s.db", "mixed", items, 2, load_template(), seed=0)
    study = Study(created.path)
    for n, token in enumerate(created.tokens.values()):
        rater_id, _ = study.rater(token)
        for position in range(1, len(items) + 1):
            study.save(rater_id, position, study.page(rater_id, position).response_id, str(10 * n + position), False, "")
    run_report(logs, created.path, tmp_path / "report")
    for task, units in (("rater_validity", 4), ("iterative_feedback", 6)):
        table = pd.read_csv(tmp_path / "report" / f"human_agreement_{task}.csv")
        row = table[(table["comparison"] == "Client LLM vs mean of the raters") & (table["statistic"] == "Spearman rho")]
        # every response found its LLM rating in the logs (none dropped for a missing LLM value)
        assert (int(row["responses"].iloc[0]), int(row["dropped"].iloc[0])) == (units, 0)


def test_raters_failing_gold_items_are_left_out_saying_so(logs: Path, tmp_path: Path) -> None:
    """Issue 27: by default a rater who failed more than a third of their gold items is left out of
    the statistics, and the report says so; --keep-all-raters keeps them. Gold rows never meet the LLM."""
    import sqlite3

    from rating_study_items import write_extra

    from psysim.rating_app.extra_items import load_extra_items

    [entry] = load_selection(logs).used
    items = read_items(entry)[0]
    gold = load_extra_items(write_extra(tmp_path / "gold.yaml", 3), "gold")
    created = create_study(tmp_path / "gold.db", "gold", items, RATERS, load_template(), seed=0, gold=gold)
    study = Study(created.path)
    llm = llm_of(logs)
    with sqlite3.connect(created.path) as connection:
        expected_side = dict(connection.execute(
            "SELECT r.public_id, i.expected FROM responses r JOIN items i ON i.id = r.item_id WHERE i.role = 'gold'"))
    frame = export_frame(created.path)
    for label, token in created.tokens.items():
        rater_id, _ = study.rater(token)
        index = int(label[-2:]) - 1
        for _, row in frame[frame["rater"] == label].iterrows():
            page = study.page(rater_id, int(row["position"]))
            if row["role"] == "gold":  # rater_03 fails two of three gold items, rater_02 one (a third: kept)
                wrong = (index == 2 and row["sample_id"] != "x3") or (index == 1 and row["sample_id"] == "x1")
                low = expected_side[page.response_id] == "low"
                value = (90 if low else 10) if wrong else (10 if low else 90)
            else:
                value = human_value(index, llm[(row["sample_id"], row["response_type"])], 0)
            study.save(rater_id, int(row["position"]), page.response_id, str(value), False, "")
    summary = run_report(logs, created.path, tmp_path / "report")
    assert "rater_03 (failed 2 of 3 gold items)" in summary and "--keep-all-raters keeps them" in summary
    raters = pd.read_csv(tmp_path / "report" / "human_raters.csv").set_index("rater")
    assert raters["gold_failed"].tolist() == [0, 1, 2] and raters["excluded"].tolist() == [False, False, True]
    table = pd.read_csv(tmp_path / "report" / "human_agreement_human_comparison.csv")
    among = table[(table["comparison"] == "among human raters") & table["statistic"].str.startswith("ICC")].iloc[0]
    assert among["raters"] == 2 and not table["comparison"].str.contains("rater_03").any()
    assert among["responses"] == len(llm)  # gold items are not responses of the study
    assert "in no log given to the report" not in summary  # gold rows are never matched with the LLM
    write_report(logs, tmp_path / "all", ReportOptions(human_ratings=str(created.path), ci_resamples=200,
                                                       keep_all_raters=True))
    kept = pd.read_csv(tmp_path / "all" / "human_agreement_human_comparison.csv")
    assert kept[(kept["comparison"] == "among human raters") & kept["statistic"].str.startswith("ICC")].iloc[0]["raters"] == 3
    assert "Kept in the statistics below (--keep-all-raters)" in (tmp_path / "all" / "summary.md").read_text()
    # the exported CSV reads back with its roles and gold results, and gives the same exclusion
    csv = tmp_path / "gold.csv"
    assert rate_main_export(created.path, csv) == 0
    from_csv = read_human_ratings(csv)
    assert from_csv["role"].value_counts()["gold"] == 3 * RATERS
    assert from_csv["gold_failed"].dropna().astype(bool).sum() == 3
    run_report(logs, csv, tmp_path / "from_csv")
    assert pd.read_csv(tmp_path / "from_csv" / "human_raters.csv")["excluded"].tolist() == [False, False, True]


def rate_main_export(path: Path, out: Path) -> int:
    from psysim.rating_app.cli import main as rate_main

    return rate_main(["export", "--study", str(path), "-o", str(out)])
