"""Sharded runs (issue 15, part 2): ``psysim-paper --shard K/N`` and the report over shards.

One unsharded psysim-paper run and the same run in two shards, through Inspect's ``vllm/``
provider against the scripted server: ratings are derived from a hash of each prompt and seed (so
they vary between personas, runs and sessions exactly as they would in one process), plus an
effect of the condition (a therapist who read feedback says something else, which the client
rates higher), so the report's contrasts are not all zero.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from inspect_ai.log import list_eval_logs, read_eval_log

from psysim.analysis.cli import main as report_main
from psysim.analysis.frames import read_frames
from psysim.analysis.report import write_report
from psysim.analysis.section import ReportOptions
from psysim.inputs.personas import persona_dataset
from psysim.study.log_series import load_selection
from psysim.study.paper import main
from psysim.study.sharding import Shard, shard_dataset
from psysim.testing.fake_server import FakeOpenAIServer, role_of

from log_edits import copy_log

LIMIT, EPOCHS = 5, 2
# its own model name: Inspect caches model instances by name, and another test's "vllm/fake" points
# at a server that has stopped
ARGS = ["--model", "vllm/fake-parts", "--epochs", str(EPOCHS), "--sessions", "2", "--turns", "1", "--limit", str(LIMIT)]


class FeedbackEffectServer(FakeOpenAIServer):
    """The scripted server, with a therapist who changes after feedback and a client who notices."""

    ADVISED = "Let us agree on one goal for this week."

    def reply_text(self, body: dict) -> str:
        system = str(body["messages"][0]["content"])
        if role_of(body["messages"]) == "therapist" and "FAKE-EXPERT" in system:  # the Expert's, not generic
            return self.ADVISED
        return super().reply_text(body)

    def rating_for(self, body: dict) -> int:
        prompt = " ".join(str(m["content"]) for m in body["messages"])
        return super().rating_for(body) // 2 + (40 if self.ADVISED in prompt else 0)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``whole``: one unsharded run; ``sharded``: the same in shards 1/2 and 2/2 (one directory each)."""
    root = tmp_path_factory.mktemp("sharding")
    with pytest.MonkeyPatch.context() as patch, FeedbackEffectServer(derive_ratings=True, max_seconds=600) as server:
        patch.setenv("INSPECT_CACHE_DIR", str(root / "cache"))
        patch.setenv("VLLM_BASE_URL", server.base_url)
        patch.setenv("VLLM_API_KEY", "local")
        patch.setenv("VLLM_DEFAULT_SERVER_ARGS", "{}")
        assert main([*ARGS, "--log-dir", str(root / "whole")]) == 0
        for k in (1, 2):
            assert main([*ARGS, "--log-dir", str(root / "sharded"), "--shard", f"{k}/2"]) == 0
    return {"whole": root / "whole", "sharded": root / "sharded"}


def samples_of(log_dir: Path) -> list[tuple[str, str, int, int | None]]:
    """(condition, sample id, epoch, seed) of every sample of every log under ``log_dir``."""
    out = []
    for info in list_eval_logs(str(log_dir)):
        log = read_eval_log(info)
        for sample in log.samples or []:
            out.append((log.eval.task_args["condition"], str(sample.id), sample.epoch,
                        sample.store.get("TherapyCourse:seed")))
    return out


def test_shard_parse_and_errors() -> None:
    assert Shard.parse("2/4") == Shard(2, 4) and str(Shard.parse(" 1 / 3 ")) == "1/3"
    for bad in ("0/2", "3/2", "2", "a/b", "1/0", 2):
        with pytest.raises(ValueError, match="shard must be K/N"):
            Shard.parse(bad)
    with pytest.raises(ValueError, match="no samples"):
        shard_dataset(persona_dataset(), "20/20")  # 15 personas, 20 shards


@pytest.mark.parametrize("count", [1, 2, 3, 4, 7])
def test_shards_partition_and_limit_is_a_prefix_of_each_shard(count: int) -> None:
    items = list(range(15))
    shards = [Shard(k, count) for k in range(1, count + 1)]
    assert sorted(i for s in shards for i in s.take(items)) == items  # a partition
    for limit in range(0, 17):
        firsts = [s.take(items)[: s.limit(limit)] for s in shards]
        assert sorted(i for part in firsts for i in part) == items[:limit]


def test_shards_partition_the_samples_and_seeds_of_one_run(runs: dict[str, Path]) -> None:
    whole, sharded = samples_of(runs["whole"]), samples_of(runs["sharded"])
    assert len(whole) == 3 * LIMIT * EPOCHS and len(set(whole)) == len(whole)
    assert sorted(sharded) == sorted(whole)  # the same samples, epochs and seeds, none twice
    assert all(seed is not None for *_, seed in whole)
    per_shard = {d.name: {s[1] for s in samples_of(d)} for d in runs["sharded"].iterdir() if d.is_dir()}
    # round robin over the first 5 personas; all runs of a persona in one shard
    assert sorted(per_shard) == ["shard-1-of-2", "shard-2-of-2"]
    assert len(per_shard["shard-1-of-2"]) == 3 and len(per_shard["shard-2-of-2"]) == 2
    assert not per_shard["shard-1-of-2"] & per_shard["shard-2-of-2"]


def test_report_over_shards_equals_the_unsharded_report(runs: dict[str, Path], tmp_path: Path) -> None:
    options = ReportOptions(bootstrap=20)
    reports = {name: write_report(path, tmp_path / name, options) for name, path in runs.items()}
    whole, sharded = read_frames(runs["whole"]).exp1, read_frames(runs["sharded"]).exp1
    # a run is one epoch across both shards: as many runs per condition as epochs
    assert sharded.groupby("condition")["run"].nunique().tolist() == [EPOCHS] * 3
    columns = ["condition", "persona", "epoch", "session", "rating", "setting"]
    key = ["condition", "persona", "epoch", "session"]
    pd.testing.assert_frame_equal(whole[columns].sort_values(key).reset_index(drop=True),
                                  sharded[columns].sort_values(key).reset_index(drop=True))
    for table in ("statistics.csv", "paper_comparison.csv", "exp1_session_means.csv", "exp1_mixed_fixed_effects.csv",
                  "integrity_rates.csv"):
        a, b = (pd.read_csv(tmp_path / name / table) for name in ("whole", "sharded"))
        # the model-based SE rests on variance components near 0, which the optimiser reaches by a
        # row-order-dependent path (as below); estimates and bootstrap CIs must be equal
        a, b = (t.drop(columns=["se_model"], errors="ignore") for t in (a, b))
        pd.testing.assert_frame_equal(a, b)
    # variance components (and the model-based SE) sit at the boundary near 0, where the optimiser's
    # result depends on row order: not compared; the estimates and bootstrap CIs above are
    assert not any("shard" in o for o in reports["sharded"].omissions)


def test_a_missing_or_incomplete_shard_is_named(runs: dict[str, Path], tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    partial = tmp_path / "partial"
    shutil.copytree(runs["sharded"] / "shard-1-of-2", partial / "shard-1-of-2")
    # of shard 2, only the expert condition's log, and that one ended in an error
    [expert] = [info.name for info in list_eval_logs(str(runs["sharded"] / "shard-2-of-2"))
                if read_eval_log(info, header_only=True).eval.task_args["condition"] == "expert"]
    (partial / "shard-2-of-2").mkdir()
    copy_log(expert, partial / "shard-2-of-2" / "expert.eval", status="error", error="server gone")
    notes = load_selection(partial).shard_notes
    assert sorted(("condition=\"expert\"" in n, "2/2 missing" in n, "2/2 incomplete" in n) for n in notes) == [
        (False, True, False), (False, True, False), (True, False, True)]
    # the report is written from what there is; the Slurm report job's flag then exits 3
    assert report_main([str(partial), "-o", str(tmp_path / "report"), "--fail-on-incomplete-shards", "--quiet"]) == 3
    summary = (tmp_path / "report" / "summary.md").read_text()
    assert "shard 2/2 missing" in summary and "shard 2/2 incomplete" in summary
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning: shard: ")]
    assert sum("shard 2/2" in w for w in warnings) == 3
    # complete shards: nothing named
    assert load_selection(runs["sharded"]).shard_notes == []
