"""Re-judging finished logs with another client model, and the report's agreement section.

Mock raters with known offsets: the in-loop client rates each Experiment 2 response by its
length, a re-judge gives the same + 10, so the expected ICC(2,1) and Krippendorff's alpha are
computed here by hand (two-way ANOVA; coincidence-free pairwise form of alpha) from the scores
in the log. Test-retest: the in-loop client shifts its human-response rating by the epoch's seed.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from inspect_ai import eval, score
from inspect_ai.log import read_eval_log, write_eval_log

from psysim.analysis.report import write_report
from psysim.analysis.section import ReportOptions
from psysim.calls.raters import check_rater
from psysim.scorers.rejudge import rejudge
from psysim.tasks.human_comparison import human_comparison
from psysim.tasks.iterative_feedback import iterative_feedback
from psysim.testing.fake_server import FakeOpenAIServer

from mock_roles import Call, Recorder, critique_form, main_model, mock_role, roles

RESPONSE = re.compile(r'The therapist now says to you:\n"(.*?)"\n', re.DOTALL)
OFFSET = 10


def therapist(call: Call) -> str:
    if "supervisor critiqued" in call.last_user:
        return "REVISED: It sounds like this has been weighing on you; what matters most here?"
    return "LLM: You have been carrying a lot lately. What would you like to be different?"


def by_length(text: str, offset: int = 0, jitter: bool = False) -> int:
    """30 + (length mod 41) + offset, plus (length mod 5) with ``jitter`` (so that the two raters
    do not differ by a constant alone, which would leave no residual variance for the ICC's CI)."""
    return 30 + len(text) % 41 + offset + (len(text) % 5 if jitter else 0)


def length_rater(offset: int = 0, jitter: bool = False, by_seed: int = 0):
    """Rates a response :func:`by_length` (+ by_seed x seed parity for the human one)."""

    def reply(call: Call) -> str:
        said = RESPONSE.search(next(m.text for m in call.messages if m.role == "user")).group(1)
        shift = by_seed * (call.config.seed % 2) if not said.startswith(("LLM", "REVISED")) else 0
        return f'{{"rating": {by_length(said, offset, jitter) + shift}}}'

    return reply


def run_exp2(tmp_path: Path, client, snippets: int = 8, epochs: int = 1):
    recorder = Recorder()
    task = human_comparison(snippets=snippets)
    model_roles = {"therapist": mock_role("therapist", recorder, therapist),
                   "expert": mock_role("expert", recorder, lambda call: critique_form("reflect first.")),
                   "client": mock_role("client", recorder, client)}
    [log] = eval(task, model=main_model(recorder), model_roles=model_roles, epochs=epochs,
                 log_dir=str(tmp_path / "logs"), display="none")
    assert log.status == "success", log.error
    return read_eval_log(log.location)


def rejudged(log, rater: str, client, **args):
    """The log re-scored by ``client`` as ``rater``, written back over the original log file."""
    recorder = Recorder()
    scored = score(log, rejudge(rater=rater, **args), model_roles={"client": mock_role("client", recorder, client)},
                   action="append", display="none")
    write_eval_log(scored, log.location)
    return scored, recorder


def icc_by_hand(x: np.ndarray) -> float:
    """ICC(2,1), Shrout & Fleiss (1979) from the two-way ANOVA mean squares."""
    n, k = x.shape
    grand = x.mean()
    msr = k * ((x.mean(axis=1) - grand) ** 2).sum() / (n - 1)
    msc = n * ((x.mean(axis=0) - grand) ** 2).sum() / (k - 1)
    sse = ((x - x.mean(axis=1, keepdims=True) - x.mean(axis=0, keepdims=True) + grand) ** 2).sum()
    mse = sse / ((n - 1) * (k - 1))
    return (msr - mse) / (msr + (k - 1) * mse + k * (msc - mse) / n)


def alpha_by_hand(x: np.ndarray) -> float:
    """Krippendorff's alpha (interval) for complete data: 1 - D_o / D_e over all pairable values."""
    n, k = x.shape
    within = sum(((row[:, None] - row[None, :]) ** 2).sum() / (k - 1) for row in x) / (n * k)
    values = x.ravel()
    between = ((values[:, None] - values[None, :]) ** 2).sum() / (n * k * (n * k - 1))
    return 1 - within / between


def report(tmp_path: Path) -> tuple[pd.DataFrame, str]:
    out = tmp_path / "report"
    write_report(tmp_path / "logs", out, ReportOptions(ci_resamples=200))
    return pd.read_csv(out / "agreement.csv"), (out / "summary.md").read_text()


def test_rater_label_is_checked() -> None:
    assert check_rater("llama-8b.v2") == "llama-8b.v2"
    for bad in ("in_loop", "", "a b", "_x", None):
        with pytest.raises(ValueError, match="rater must be a label"):
            check_rater(bad)


def test_exp2_rejudge_with_known_offset_gives_known_agreement(tmp_path: Path) -> None:
    log = run_exp2(tmp_path, length_rater())
    scored, recorder = rejudged(log, "plus10", length_rater(OFFSET, jitter=True))
    in_loop, again = [], []
    for sample in scored.samples:
        first = sample.scores["client_rating"]
        second = sample.scores["rejudge"]
        assert second.metadata["rater"] == "plus10" and second.metadata["missing_reasons"] == {}
        assert set(second.value) == {"plus10_human", "plus10_llm", "plus10_revised"}
        for kind in ("human", "llm", "revised"):
            text = first.metadata["candidates"][kind]
            assert first.value[kind] == by_length(text)
            assert second.value[f"plus10_{kind}"] == by_length(text, OFFSET, jitter=True)
            in_loop.append(by_length(text))
            again.append(by_length(text, OFFSET, jitter=True))
    # the re-judge saw exactly Experiment 2's rating prompt, one call per response
    assert len(recorder.calls) == 3 * len(scored.samples)
    assert all(RESPONSE.search(c.last_user) and "client" in c.system.lower() for c in recorder.calls)
    matrix = np.column_stack([in_loop, again])
    table, summary = report(tmp_path)
    between = table[table["comparison"] == "between raters"].set_index("statistic")
    assert between.loc["ICC(2,1)", "value"] == pytest.approx(icc_by_hand(matrix))
    assert between.loc["Krippendorff's alpha (interval)", "value"] == pytest.approx(alpha_by_hand(matrix))
    assert between.loc["ICC(2,1)", "n items"] == len(in_loop) and between.loc["ICC(2,1)", "n raters"] == 2
    assert between.loc["ICC(2,1)", "CI low"] < between.loc["ICC(2,1)", "value"] < between.loc["ICC(2,1)", "CI high"]
    assert between.loc["ICC(2,1)", "raters"] == "in_loop vs plus10"
    assert "Agreement [human_comparison" in summary
    # a rater that agrees exactly has ICC 1; the offset lowers it (absolute agreement)
    assert icc_by_hand(np.column_stack([in_loop, in_loop])) == pytest.approx(1.0)
    assert between.loc["ICC(2,1)", "value"] < 1


def test_two_rejudges_keep_their_keys_and_pairs_are_reported(tmp_path: Path) -> None:
    log = run_exp2(tmp_path, length_rater(), snippets=4)
    scored, _ = rejudged(log, "plus10", length_rater(OFFSET))
    scored, _ = rejudged(scored, "same", length_rater())
    sample = scored.samples[0]
    assert sample.scores["rejudge"].metadata["rater"] == "plus10"
    assert sample.scores["rejudge1"].metadata["rater"] == "same"  # Inspect renames the second score
    table, _ = report(tmp_path)
    assert set(table[table["comparison"] == "between raters (pair)"]["raters"]) == {
        "in_loop vs plus10", "in_loop vs same", "plus10 vs same"}
    pair = table[(table["raters"] == "in_loop vs same") & (table["statistic"] == "ICC(2,1)")]
    assert pair["value"].iloc[0] == pytest.approx(1.0)


def test_rejudge_missing_rating_is_nan_with_reason_and_counted(tmp_path: Path) -> None:
    log = run_exp2(tmp_path, length_rater(), snippets=3)
    scored, _ = rejudged(log, "vague", lambda call: "quite good, I suppose", max_attempts=2)
    for sample in scored.samples:
        value = sample.scores["rejudge"].value
        assert all(math.isnan(v) for v in value.values())
        reasons = sample.scores["rejudge"].metadata["missing_reasons"]
        assert reasons["vague_human"].startswith("rating_unparsed")
        assert sample.scores["rejudge"].metadata["ratings"]["human"]["raw"] == ["quite good, I suppose"] * 2
    table, summary = report(tmp_path)
    between = table[table["comparison"] == "between raters"].set_index("statistic")
    assert math.isnan(between.loc["ICC(2,1)", "value"]) and between.loc["ICC(2,1)", "n dropped"] == 9
    assert "| human_comparison |" in summary and "rating_unparsed" in summary


def test_exp2_test_retest_across_epochs(tmp_path: Path) -> None:
    """The in-loop client adds 6 to the human response in odd-seed epochs: a known retest gap."""
    log = run_exp2(tmp_path, length_rater(by_seed=6), snippets=6, epochs=2)
    human = {}
    for sample in log.samples:
        human.setdefault(sample.id, {})[sample.epoch] = sample.scores["client_rating"].value["human"]
    matrix = np.array([[v[1], v[2]] for v in human.values()])
    assert set(matrix[:, 0] - matrix[:, 1]) == {6.0}  # seed 1 (odd) in epoch 1, seed 2 in epoch 2
    table, summary = report(tmp_path)
    retest = table[table["comparison"] == "test-retest of in_loop across epochs"].set_index("statistic")
    assert retest.loc["ICC(2,1)", "value"] == pytest.approx(icc_by_hand(matrix))
    assert retest.loc["Krippendorff's alpha (interval)", "value"] == pytest.approx(alpha_by_hand(matrix))
    assert retest.loc["ICC(2,1)", "n items"] == 6 and retest.loc["ICC(2,1)", "raters"] == "epoch 1 vs epoch 2"
    # llm/revised are new text each epoch: they are rated by one rater only, not compared
    assert set(table["comparison"]) == {"test-retest of in_loop across epochs"}


def test_exp1_rejudge_sees_transcript_and_baseline_not_earlier_ratings(tmp_path: Path) -> None:
    recorder = Recorder()
    [log] = eval(iterative_feedback(condition="none", sessions=3, turns=1, baseline=25), model=main_model(recorder),
                 model_roles=roles(recorder), limit=2, log_dir=str(tmp_path / "logs"), display="none")
    log = read_eval_log(log.location)

    def judge(call: Call) -> str:
        session = int(re.search(r"Session (\d+) has just ended", call.last_user).group(1))
        return f'{{"rating": {45 + 10 * session}}}'  # the in-loop mock gives 40 + 10 x session

    scored, judge_calls = rejudged(log, "fresh", judge)
    for sample in scored.samples:
        assert sample.scores["rejudge"].value == {"fresh_session_1": 55.0, "fresh_session_2": 65.0,
                                                  "fresh_session_3": 75.0}
    in_loop_prompts = [c.last_user for c in recorder.of("client") if "has just ended" in c.last_user]
    assert any("you rated your satisfaction 50 out of 100" in p for p in in_loop_prompts)  # the in-loop remembers
    assert len(judge_calls.calls) == 2 * 3
    for call in judge_calls.calls:
        prompt = call.last_user
        session = int(re.search(r"Session (\d+) has just ended", prompt).group(1))
        assert "you rated your satisfaction" not in prompt and "After session" not in prompt
        assert "was 25 out of 100" in prompt  # the run's baseline
        assert f"Session {session}:" in prompt and f"Session {session + 1}:" not in prompt  # sessions so far only
        assert "Persona" in call.system or call.system  # the persona's rating system prompt
    table, _ = report(tmp_path)
    between = table[table["comparison"] == "between raters"].set_index("statistic")
    matrix = np.array([[40 + 10 * s, 45 + 10 * s] for _ in range(2) for s in (1, 2, 3)], dtype=float)
    assert between.loc["ICC(2,1)", "value"] == pytest.approx(icc_by_hand(matrix))
    assert between.loc["ICC(2,1)", "task"] == "iterative_feedback"


def test_exp1_rejudge_records_sessions_not_held(tmp_path: Path) -> None:
    from mock_roles import default_therapist

    def failing_therapist(call: Call) -> str:
        return "" if "Session 2 begins" in call.text else default_therapist(call)

    recorder = Recorder()
    [log] = eval(iterative_feedback(condition="none", sessions=3, turns=1, max_reply_attempts=1),
                 model=main_model(recorder), model_roles=roles(recorder, therapist=failing_therapist), limit=1,
                 log_dir=str(tmp_path / "logs"), display="none")
    scored, judge_calls = rejudged(read_eval_log(log.location), "fresh", lambda call: '{"rating": 60}')
    rejudge_score = scored.samples[0].scores["rejudge"]
    assert rejudge_score.value["fresh_session_1"] == 60.0
    assert math.isnan(rejudge_score.value["fresh_session_2"]) and math.isnan(rejudge_score.value["fresh_session_3"])
    reasons = rejudge_score.metadata["missing_reasons"]
    assert reasons["fresh_session_2"].startswith("upstream_failed: session 2 was not held in full (empty_reply")
    assert reasons["fresh_session_3"].startswith("not_held")
    assert len(judge_calls.calls) == 1


def test_rejudge_of_other_logs_is_a_clear_error(tmp_path: Path) -> None:
    from psysim.tasks.rater_validity import rater_validity

    recorder = Recorder()
    [log] = eval(rater_validity(per_group=1), model=main_model(recorder),
                 model_roles={"client": mock_role("client", recorder, lambda call: '{"rating": 50}')},
                 log_dir=str(tmp_path / "logs"), display="none")
    with pytest.raises(Exception, match="neither an Experiment 1 course"):
        score(read_eval_log(log.location), rejudge(rater="x"), display="none")


def test_inspect_score_cli_binds_the_client_role(tmp_path: Path) -> None:
    """The documented command, ``inspect score LOG --scorer scorers/rejudge.py@rejudge -S rater=...
    --model-role client=...``, through Inspect's vllm/ provider against a local fake server that
    rates every response 77."""
    log = run_exp2(tmp_path, length_rater(), snippets=2)
    repo = Path(__file__).resolve().parents[1]
    out = tmp_path / "rescored.eval"
    with FakeOpenAIServer(rating=77, max_requests=50, max_seconds=240) as server:
        env = {**os.environ, "INSPECT_CACHE_DIR": str(tmp_path / "cache"), "VLLM_BASE_URL": server.base_url,
               "VLLM_API_KEY": "local"}
        done = subprocess.run(
            [sys.executable, "-m", "inspect_ai", "score", log.location, "--scorer", "scorers/rejudge.py@rejudge",
             "-S", "rater=judge2", "--model-role", "client=vllm/fake-judge", "--action", "append",
             "--output-file", str(out), "--display", "none"],
            cwd=repo, env=env, capture_output=True, text=True, timeout=300,
        )
        requests = list(server.requests)
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(requests) == 2 * 3 and all(b["response_format"]["type"] == "json_schema" for b in requests)
    rescored = read_eval_log(str(out))
    for sample in rescored.samples:
        assert sample.scores["rejudge"].value == {"judge2_human": 77.0, "judge2_llm": 77.0, "judge2_revised": 77.0}
        assert sample.scores["rejudge"].metadata["client_model"] == "vllm/fake-judge"
        candidates = sample.scores["client_rating"].metadata["candidates"]
        assert sample.scores["client_rating"].value["human"] == by_length(candidates["human"])  # the run's own kept


def test_exp2_rejudge_leaves_unproduced_candidate_missing(tmp_path: Path) -> None:
    def no_llm(call: Call) -> str:
        return therapist(call) if "supervisor critiqued" in call.last_user else ""

    recorder = Recorder()
    model_roles = {"therapist": mock_role("therapist", recorder, no_llm),
                   "expert": mock_role("expert", recorder, lambda call: critique_form("reflect first.")),
                   "client": mock_role("client", recorder, length_rater())}
    [log] = eval(human_comparison(snippets=2, max_reply_attempts=1), model=main_model(recorder),
                 model_roles=model_roles, log_dir=str(tmp_path / "logs"), display="none")
    scored, judge = rejudged(read_eval_log(log.location), "again", length_rater(OFFSET))
    for sample in scored.samples:
        value = sample.scores["rejudge"].value
        assert math.isnan(value["again_llm"]) and not math.isnan(value["again_human"])
        reason = sample.scores["rejudge"].metadata["missing_reasons"]["again_llm"]
        assert reason.startswith("upstream_failed: the llm response was not produced")
    assert len(judge.calls) == 2 * 2  # only the produced candidates are rated


def test_a_rejudge_that_says_nothing_shows_no_agreement(tmp_path: Path) -> None:
    """A re-judge that gives every response the same rating carries no information: against an
    in-loop rater that varies, ICC(2,1) is 0 by the ANOVA identity (the constant rater halves
    every deviation into the residual: MSR = MSE) and its CI includes 0; alpha is below 0."""
    log = run_exp2(tmp_path, length_rater())
    rejudged(log, "flat", lambda call: '{"rating": 50}')
    table, summary = report(tmp_path)
    between = table[table["comparison"] == "between raters"].set_index("statistic")
    icc = between.loc["ICC(2,1)"]
    assert icc["value"] == pytest.approx(0.0, abs=1e-9)
    assert icc["CI low"] < 0 < icc["CI high"]
    assert between.loc["Krippendorff's alpha (interval)", "value"] < 0
    assert "flat vs in_loop" in summary and "FLAG: no evidence that these ratings agree" in summary


def test_no_agreement_flag_only_when_the_icc_ci_reaches_zero() -> None:
    from psysim.analysis.rater_agreement import _no_agreement_flag

    def group(low: float) -> pd.DataFrame:
        return pd.DataFrame({"statistic": ["ICC(2,1)", "Krippendorff's alpha (interval)"], "CI low": [low, -0.5]})

    assert _no_agreement_flag(group(0.62)) == ""  # agreement: CI above 0 (alpha's CI is not the test)
    assert "FLAG" in _no_agreement_flag(group(-0.1))
    assert "FLAG" in _no_agreement_flag(group(float("nan")))
