"""Rater validity (known groups): the task, its scorer, and the report's AUC section.

Mocks rate by a known feature of the input (whether the response comes from a high-label
transcript), so the expected means, difference and AUC are computed by hand here.
"""

from __future__ import annotations

import csv
import logging
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import shared_file
from inspect_ai import eval
from inspect_ai.log import read_eval_log
from scipy import stats

from psysim.analysis.bootstrap import cluster_bootstrap, percentile_ci
from psysim.analysis.cli import main as report_main
from psysim.analysis.discrimination import (
    DOES_NOT_SEPARATE,
    SEPARATES,
    auc,
    known_groups,
)
from psysim.analysis.report import write_report
from psysim.analysis.section import ReportOptions
from psysim.inputs.transcripts import TranscriptFileError
from psysim.tasks.rater_validity import DEFAULT_LABELLED_TRANSCRIPTS, rater_validity

from mock_roles import Call, Recorder, main_model, mock_role

RESPONSE = re.compile(r'The therapist now says to you:\n"(.*)"', re.DOTALL)


def responses_of(path: Path, label_column: str, value: str) -> set[str]:
    """Every therapist utterance of the transcripts whose label is ``value``."""
    with path.open(encoding="utf-8") as f:
        return {r["text"] for r in csv.DictReader(f) if r[label_column] == value and r["speaker"] == "therapist"}


def rater(high_texts: set[str], high: int = 70, low: int = 50):
    def client(call: Call) -> str:
        said = RESPONSE.search(next(m.text for m in call.messages if m.role == "user")).group(1)
        # a merged turn joins utterances: high if any part is a high-label utterance
        return f'{{"rating": {high if any(t in said for t in high_texts) else low}}}'

    return client


def run(tmp_path: Path, client, recorder: Recorder | None = None, **task_args):
    recorder = recorder or Recorder()
    task = rater_validity(**task_args)
    roles = {role: mock_role(role, recorder, (client if role == "client" else lambda c: "unexpected"))
             for role in ("therapist", "client", "expert")}
    [log] = eval(task, model=main_model(recorder), model_roles=roles, log_dir=str(tmp_path / "logs"), display="none")
    assert log.status == "success", log.error
    return read_eval_log(log.location), recorder


def report(tmp_path: Path, **options):
    out = tmp_path / "report"
    write_report(tmp_path / "logs", out, ReportOptions(**options))
    return pd.read_csv(out / "validity_auc.csv"), (out / "summary.md").read_text()


# --- the task --------------------------------------------------------------------------------

def test_demo_runs_out_of_the_box_balanced_and_blind(tmp_path: Path) -> None:
    high_texts = responses_of(DEFAULT_LABELLED_TRANSCRIPTS, "mi_quality", "high")
    log, recorder = run(tmp_path, rater(high_texts), per_group=6)
    groups = [s.scores["human_response_rating"].metadata["group"] for s in log.samples]
    assert groups.count("high") == groups.count("low") == 6
    for sample in log.samples:
        score = sample.scores["human_response_rating"]
        assert score.value == {"rating": 70.0 if score.metadata["group"] == "high" else 50.0}
        assert score.metadata["label_value"] == score.metadata["group"]
        assert score.metadata["transcript_id"].startswith("quality_")
        assert score.metadata["client_id"].startswith("client_")
        assert score.metadata["missing_reasons"] == {}
    # only the client is called, once per snippet, with Experiment 2's prompt and no label
    assert not recorder.of("main") and not recorder.of("therapist") and not recorder.of("expert")
    calls = recorder.of("client")
    assert len(calls) == 12
    for call in calls:
        assert "The therapist now says to you" in call.last_user
        assert "quality" not in call.text.lower() and "mi_quality" not in call.text


def test_shortfall_per_group_warns_with_both_numbers(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        task = rater_validity(per_group=9)
    assert task.metadata["shortfalls"] == [
        {"what": "high-quality snippets (mi_quality=high)", "requested": 9, "available": 6},
        {"what": "low-quality snippets (mi_quality=low)", "requested": 9, "available": 6},
    ]
    assert "9 requested but only 6 available" in caplog.text
    enough = rater_validity(per_group=6)
    assert enough.metadata["shortfalls"] == [] and len(enough.dataset) == 12


def test_unbalanced_groups_are_sampled_per_group() -> None:
    task = rater_validity(per_group=2)
    assert task.metadata["sampled_per_group"] == {"high": 2, "low": 2}
    # spread over clients as Experiment 2: two snippets of a group come from its two clients
    for group in ("high", "low"):
        clients = {s.metadata["snippet"]["client_id"] for s in task.dataset if s.metadata["group"] == group}
        assert len(clients) == 2


def test_missing_label_is_an_error_naming_field(tmp_path: Path) -> None:
    with pytest.raises(TranscriptFileError, match=r"field 'quality'.*labels: mi_quality, topic"):
        rater_validity(label="quality")
    with pytest.raises(ValueError, match="per_group"):
        rater_validity(per_group=0)
    with pytest.raises(ValueError, match="differ"):
        rater_validity(high="x", low="x")


def test_label_value_typo_stops_before_the_run_listing_the_values_found() -> None:
    # "High" matches no transcript of the demo (its values are high/low): an error at task
    # construction, i.e. before any model call, instead of rating the low group alone
    with pytest.raises(TranscriptFileError) as caught:
        rater_validity(high="High")
    message = str(caught.value)
    assert "field 'mi_quality': -T high=High matches no eligible snippet (did you mean -T high=high?)" in message
    assert "values found: 'high' (2 transcript(s), 6 snippet(s)), 'low' (2 transcript(s), 6 snippet(s))" in message
    with pytest.raises(TranscriptFileError, match=r"-T high=good matches.*-T low=bad matches.*e\.g\. -T label=mi_quality"):
        rater_validity(high="good", low="bad")
    assert len(rater_validity(high="low", low="high", per_group=None).dataset) == 12  # either order is fine


def test_generic_corpus_with_other_label_values(tmp_path: Path) -> None:
    rows = list(csv.DictReader(DEFAULT_LABELLED_TRANSCRIPTS.open(encoding="utf-8")))
    path = tmp_path / "rated.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["transcript_id", "turn", "speaker", "text", "rating_band"])
        writer.writeheader()
        for r in rows:
            band = {"quality_h1": "good", "quality_h2": "mid", "quality_l1": "bad", "quality_l2": "bad"}[r["transcript_id"]]
            writer.writerow({"transcript_id": r["transcript_id"], "turn": r["turn"], "speaker": r["speaker"],
                             "text": r["text"], "rating_band": band})
    task = rater_validity(transcripts=str(path), label="rating_band", high="good", low="bad", per_group=None)
    assert task.metadata["sampled_per_group"] == {"high": 3, "low": 6}
    assert task.metadata["eligible_other_label"] == 3  # "mid" is in neither group


def test_missing_rating_is_nan_with_reason(tmp_path: Path) -> None:
    log, _ = run(tmp_path, lambda call: "I would say about seventy", per_group=1, max_rating_attempts=2)
    for sample in log.samples:
        score = sample.scores["human_response_rating"]
        assert math.isnan(score.value["rating"])
        assert score.metadata["missing_reasons"]["rating"].startswith("rating_unparsed")


# --- statistics ------------------------------------------------------------------------------

def test_auc_perfect_ties_and_chance() -> None:
    assert auc(np.array([70, 70, 70]), np.array([50, 50])) == 1.0
    assert auc(np.array([50, 50]), np.array([70])) == 0.0
    assert auc(np.array([60, 60]), np.array([60, 60, 60])) == 0.5
    # by hand: high {60, 70}, low {60, 50}: pairs (60,60)=.5 (60,50)=1 (70,60)=1 (70,50)=1 -> 3.5/4
    assert auc(np.array([60, 70]), np.array([60, 50])) == 3.5 / 4
    rng = np.random.default_rng(1)
    x, y = rng.integers(0, 10, 30), rng.integers(0, 10, 25)
    u = stats.mannwhitneyu(x, y).statistic
    assert auc(x, y) == pytest.approx(u / (len(x) * len(y)))
    assert math.isnan(auc(np.array([]), np.array([1.0])))


def test_bootstrap_resamples_transcripts_within_groups() -> None:
    # two clusters per stratum; the statistic sees the concatenated units of the drawn clusters
    seen = []
    cluster_bootstrap([[np.array([1.0, 1.0]), np.array([2.0])], [np.array([5.0])]],
                      lambda s: seen.append((len(s[0]), len(s[1]))) or 0.0, resamples=200, seed=3)
    # high: 2 clusters drawn, of sizes 2 or 1 -> 2, 3 or 4 units; low always its one cluster
    assert {n for n, _ in seen} == {2, 3, 4} and {m for _, m in seen} == {1}
    a = cluster_bootstrap([[np.array([1.0]), np.array([3.0])]], lambda s: float(s[0].mean()), 100, seed=7)
    b = cluster_bootstrap([[np.array([1.0]), np.array([3.0])]], lambda s: float(s[0].mean()), 100, seed=7)
    assert np.array_equal(a, b)  # fixed seed, same CI
    assert percentile_ci(np.array([float("nan")])) != percentile_ci(np.array([1.0]))  # NaN when none


def test_known_groups_perfect_rater_degenerate_ci() -> None:
    high = [np.array([70.0, 70.0]), np.array([70.0])]
    low = [np.array([50.0]), np.array([50.0, 50.0, 50.0])]
    r = known_groups("snippet", "snippets", high, low, resamples=500, seed=0)
    assert (r.auc, r.auc_ci_low, r.auc_ci_high) == (1.0, 1.0, 1.0)
    assert (r.mean_high, r.mean_low, r.difference) == (70.0, 50.0, 20.0)
    assert (r.difference_ci_low, r.difference_ci_high) == (20.0, 20.0)
    assert r.verdict == SEPARATES and (r.transcripts_high, r.transcripts_low) == (2, 2)


def test_known_groups_constant_rater_does_not_separate() -> None:
    r = known_groups("snippet", "snippets", [np.array([60.0])] * 3, [np.array([60.0, 60.0])] * 2, resamples=200)
    assert r.auc == 0.5 and (r.auc_ci_low, r.auc_ci_high) == (0.5, 0.5)
    assert r.verdict == DOES_NOT_SEPARATE


def test_known_groups_without_ratings_is_not_testable() -> None:
    r = known_groups("snippet", "snippets (runs averaged)", [np.array([60.0])], [np.array([])], resamples=50)
    assert r.verdict == "not testable: no rated low-quality snippets" and math.isnan(r.auc)


def test_known_groups_ci_contains_estimate_and_depends_on_transcripts() -> None:
    rng = np.random.default_rng(0)
    high = [rng.normal(60, 10, 4) for _ in range(12)]
    low = [rng.normal(55, 10, 3) for _ in range(8)]
    r = known_groups("snippet", "snippets", high, low, resamples=1000, seed=5)
    assert r.auc_ci_low <= r.auc <= r.auc_ci_high and r.auc_ci_low < r.auc_ci_high
    assert r.difference_ci_low <= r.difference <= r.difference_ci_high
    again = known_groups("snippet", "snippets", high, low, resamples=1000, seed=5)
    assert (again.auc_ci_low, again.auc_ci_high) == (r.auc_ci_low, r.auc_ci_high)


# --- the report ------------------------------------------------------------------------------

def test_report_perfect_rater(tmp_path: Path) -> None:
    high_texts = responses_of(DEFAULT_LABELLED_TRANSCRIPTS, "mi_quality", "high")
    run(tmp_path, rater(high_texts), per_group=6)
    table, summary = report(tmp_path, ci_resamples=300)
    by_level = table.set_index("level")
    for level, n in (("snippet", 6), ("transcript", 2)):
        row = by_level.loc[level]
        assert (row["n high"], row["n low"]) == (n, n)
        assert (row["transcripts high"], row["transcripts low"]) == (2, 2)
        assert (row["mean high"], row["mean low"], row["difference"]) == (70.0, 50.0, 20.0)
        assert (row["AUC"], row["AUC CI low"], row["AUC CI high"]) == (1.0, 1.0, 1.0)
        assert row["resamples"] == 300
    assert "## Rater validity: known groups" in summary
    assert "Rater validity [" in summary and DOES_NOT_SEPARATE not in summary
    assert "Rater validity: transcript mean rating by human quality label" in (tmp_path / "report" / "index.html").read_text()


def test_report_constant_rater_says_it_does_not_separate(tmp_path: Path) -> None:
    run(tmp_path, lambda call: '{"rating": 80}', per_group=6)
    table, summary = report(tmp_path, ci_resamples=200)
    assert set(table["AUC"]) == {0.5}
    assert set(table["verdict"]) == {DOES_NOT_SEPARATE}
    assert DOES_NOT_SEPARATE in summary


def test_report_transcript_level_matches_independent_computation(tmp_path: Path) -> None:
    # ratings vary by snippet (by response length): the transcript level averages snippets first
    def by_length(call: Call) -> str:
        said = RESPONSE.search(call.last_user).group(1)
        return f'{{"rating": {len(said.split()) % 50 + 25}}}'

    log, _ = run(tmp_path, by_length, per_group=6)
    ratings = pd.DataFrame([{"t": s.scores["human_response_rating"].metadata["transcript_id"],
                             "g": s.scores["human_response_rating"].metadata["group"],
                             "r": s.scores["human_response_rating"].value["rating"]} for s in log.samples])
    means = ratings.groupby(["t", "g"])["r"].mean().reset_index()
    x, y = means[means.g == "high"]["r"].to_numpy(), means[means.g == "low"]["r"].to_numpy()
    expected = stats.mannwhitneyu(x, y).statistic / (len(x) * len(y))
    sx, sy = ratings[ratings.g == "high"]["r"].to_numpy(), ratings[ratings.g == "low"]["r"].to_numpy()
    table, _ = report(tmp_path, ci_resamples=200)
    by_level = table.set_index("level")
    assert by_level.loc["transcript", "AUC"] == pytest.approx(expected)
    assert by_level.loc["snippet", "AUC"] == pytest.approx(stats.mannwhitneyu(sx, sy).statistic / (len(sx) * len(sy)))
    assert by_level.loc["transcript", "difference"] == pytest.approx(x.mean() - y.mean())


def test_report_counts_missing_and_cli_options(tmp_path: Path) -> None:
    high_texts = responses_of(DEFAULT_LABELLED_TRANSCRIPTS, "mi_quality", "high")

    def sometimes_unreadable(call: Call) -> str:
        said = RESPONSE.search(next(m.text for m in call.messages if m.role == "user")).group(1)
        if "Running used to be" in said:  # one high snippet: never a readable rating
            return "seventy-ish"
        return rater(high_texts)(call)

    run(tmp_path, sometimes_unreadable, per_group=6, max_rating_attempts=1)
    out = tmp_path / "cli-report"
    assert report_main([str(tmp_path / "logs"), "-o", str(out), "--ci-resamples", "100", "--seed", "3"]) == 0
    table = pd.read_csv(out / "validity_auc.csv").set_index("level")
    assert table.loc["snippet", "n high"] == 5 and table.loc["snippet", "missing high"] == 1
    assert table.loc["snippet", "resamples"] == 100 and table.loc["snippet", "seed"] == 3
    assert table.loc["snippet", "AUC"] == 1.0
    assert "rating_unparsed" in (out / "summary.md").read_text()
    assert report_main([str(tmp_path / "logs"), "-o", str(out), "--ci-resamples", "1"]) == 2
    assert report_main([str(tmp_path / "logs"), "-o", str(out), "--primary", "rater_validity=session"]) == 2
    assert report_main([str(tmp_path / "logs"), "-o", str(out), "--primary", "rater_validity=snippet",
                        "--ci-resamples", "50"]) == 0
    summary = (out / "summary.md").read_text()
    assert summary.index("- snippet level: AUC") < summary.index("- transcript level: AUC")


# --- AnnoMI (shared data) --------------------------------------------------------------------

def test_annomi_balanced_high_low_snippets() -> None:
    path = shared_file("annomi", "AnnoMI-simple.csv")
    task = rater_validity(transcripts=str(path), per_group=40)
    meta = task.metadata
    assert meta["sampled_per_group"] == {"high": 40, "low": 40}
    assert meta["transcripts_per_group"]["low"] == 23 and meta["shortfalls"] == []
    low_clients = {s.metadata["snippet"]["client_id"] for s in task.dataset if s.metadata["group"] == "low"}
    assert len(low_clients) >= 20  # spread over clients before any gives two
    for sample in task.dataset:
        assert sample.metadata["snippet"]["labels"]["mi_quality"] == sample.metadata["group"]


def test_annomi_low_group_shortfall() -> None:
    path = shared_file("annomi", "AnnoMI-simple.csv")
    task = rater_validity(transcripts=str(path), per_group=500)
    [shortfall] = task.metadata["shortfalls"]
    assert shortfall["what"].startswith("low-quality") and shortfall["requested"] == 500
    assert shortfall["available"] == task.metadata["eligible_per_group"]["low"]


def test_annomi_mock_run_perfect_rater(tmp_path: Path) -> None:
    path = shared_file("annomi", "AnnoMI-simple.csv")
    high_texts = responses_of_annomi(path)
    run(tmp_path, rater(high_texts), transcripts=str(path), per_group=10)
    table, _ = report(tmp_path, ci_resamples=200)
    assert set(table["AUC"]) == {1.0}


def responses_of_annomi(path: Path) -> set[str]:
    with path.open(encoding="utf-8") as f:
        return {r["utterance_text"] for r in csv.DictReader(f)
                if r["mi_quality"] == "high" and r["interlocutor"] == "therapist" and len(r["utterance_text"]) > 20}


def test_relative_transcripts_path_is_read_from_where_the_command_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # inspect eval changes into tasks/ before building the task; $PWD keeps the shell's directory
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "q.csv").write_bytes(DEFAULT_LABELLED_TRANSCRIPTS.read_bytes())
    (tmp_path / "tasks").mkdir()
    monkeypatch.setenv("PWD", str(tmp_path))
    monkeypatch.chdir(tmp_path / "tasks")
    assert len(rater_validity(transcripts="data/q.csv", per_group=1).dataset) == 2
    with pytest.raises(TranscriptFileError, match="data/nothing.csv: file not found"):
        rater_validity(transcripts="data/nothing.csv")
