"""``benchmarks/report_scale.py`` at a tiny size (not timed): its directly written logs are read
by ``psysim-report`` into the expected counts; and the report's fast read of score metadata
(re-reading a thinned key only when a row needs it) gives the same frames as the old read, which
re-read the full sample whenever any key was thinned."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest
from inspect_ai.log import EvalSample, read_eval_log_sample, read_eval_log_sample_summaries

from psysim.analysis import frames
from psysim.analysis.frames import read_frames

from log_edits import copy_log

REPO = Path(__file__).resolve().parents[1]
PERSONAS, EPOCHS, SESSIONS = 2, 2, 2
LONG_REASON = "unparseable: " + "the Client answered in prose " * 50  # over 1k: the summary drops the key


@pytest.fixture(scope="module")
def scale_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    sys.path.insert(0, str(REPO / "benchmarks"))
    import report_scale

    work = tmp_path_factory.mktemp("scale")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("INSPECT_CACHE_DIR", str(work / "inspect-cache"))
        code = report_scale.main(["--personas", str(PERSONAS), "--epochs", str(EPOCHS), "--sessions", str(SESSIONS),
                                  "--turns", "1", "--work", str(work)])
    assert code == 0
    return work


def test_scaled_logs_are_read_by_the_report_into_the_expected_counts(scale_run: Path) -> None:
    work = scale_run
    logs = sorted((work / f"logs-{PERSONAS}").glob("*.eval"))
    assert len(logs) == 3  # one per condition
    for log in logs:  # every persona-run of the template's personas, under its own id and epoch
        keys = {(s.id, s.epoch) for s in read_eval_log_sample_summaries(str(log))}
        assert len(keys) == PERSONAS * EPOCHS and {e for _, e in keys} == set(range(1, EPOCHS + 1))
    ratings = pd.read_csv(work / f"report-{PERSONAS}" / "exp1_ratings.csv")
    assert len(ratings) == 3 * PERSONAS * EPOCHS * SESSIONS
    assert sorted(ratings["condition"].unique()) == ["expert", "generic", "none"]
    assert ratings["rating"].notna().all() and ratings["rating"].between(0, 100).all()
    runs = pd.read_csv(work / f"report-{PERSONAS}" / "exp1_runs.csv")
    assert len(runs) == 3 * PERSONAS * EPOCHS
    # the shifted ratings differ between persona-runs copied from one template sample
    assert ratings.groupby(["condition", "session"])["rating"].nunique().max() > 1


def _old_score(entry, summary, scorer, needs=None):  # noqa: ANN001, ANN202
    """The report's read before the fast path: any thinned key re-reads the whole sample."""
    score = (summary.scores or {}).get(scorer)
    if score is None:
        return {}, {}
    value = score.value if isinstance(score.value, dict) else {}
    metadata = dict(score.metadata or {})
    if any(v == frames.THINNED for v in metadata.values()):
        sample = read_eval_log_sample(entry.path, id=summary.id, epoch=summary.epoch)
        full = sample.scores.get(scorer) if sample.scores else None
        metadata = dict(full.metadata or {}) if full is not None else metadata
    return value, metadata


def _long_reason(sample: EvalSample) -> None:
    """Session 2's rating missing, with a reason too long for the sample summary."""
    if sample.epoch != 1 or not str(sample.id).endswith("-0000"):
        return
    score = sample.scores["client_satisfaction"]
    score.value = {k: v for k, v in score.value.items() if k != "session_2"}
    score.metadata = {**score.metadata, "missing_reasons": {"session_2": LONG_REASON}}


def test_fast_read_gives_the_frames_of_the_old_read(scale_run: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    work = scale_run
    logs = tmp_path / "logs"
    for index, log in enumerate(sorted((work / f"logs-{PERSONAS}").glob("*.eval"))):
        copy_log(log, logs / log.name, edit_sample=_long_reason if index == 0 else None)
    summaries = read_eval_log_sample_summaries(str(next(iter(sorted(logs.glob("*.eval"))))))
    thinned = [s for s in summaries if s.scores["client_satisfaction"].metadata["missing_reasons"] == frames.THINNED]
    assert len(thinned) == 1  # the key a row needs is thinned: the fast read must re-read it

    fast = read_frames(logs)
    monkeypatch.setattr(frames, "_score", _old_score)
    old = read_frames(logs)
    assert fast.ratings.keys() == old.ratings.keys()
    for name in fast.ratings:
        pd.testing.assert_frame_equal(fast.ratings[name], old.ratings[name], check_exact=True)
    pd.testing.assert_frame_equal(fast.evals, old.evals)
    missing = fast.exp1[fast.exp1["missing"]]
    assert missing[["session", "reason"]].values.tolist() == [[2, "unparseable"]]
    assert json.dumps(sorted(fast.exp1["course_status"].unique().tolist())) == json.dumps(["complete"])
