"""psysim-report's Simulation integrity section and the Experiment 1 exclusions, on mock-run logs
where one persona's session 2 breaks (the client speaks as an assistant) in every run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from inspect_ai import eval

from psysim.analysis import integrity as integrity_section
from psysim.analysis.cli import main as report_main
from psysim.analysis.frames import apply_integrity, read_frames
from psysim.analysis.integrity import integrity_rates, warnings_for
from psysim.dialogue.integrity import load_integrity_config
from psysim.tasks.iterative_feedback import iterative_feedback

from mock_roles import RATING_MARKER, Call, Recorder, main_model, mock_role, session_of

PERSONAS, EPOCHS, SESSIONS = 2, 2, 3
BROKEN_NAME = "Margaret Ellison"  # persona grief_retired_teacher breaks in session 2 under `expert`


# one opening per session, so no session replays an earlier one (that is an echo too)
THERAPIST_OPENINGS = ["Welcome. What has been on your mind this week?",
                      "Good to see you again. How did the week go after we last spoke?",
                      "Hello again. Last time we talked about your evenings; what has changed since?"]
CLIENT_ANSWERS = ["Honestly it has been a hard week, I barely slept and kept thinking about everything.",
                  "A little better. I walked to the shops twice and talked to a neighbour on the way.",
                  "I still sit up late, but I phoned my sister on Sunday and we laughed about old times."]


def therapist(call: Call) -> str:
    advised = " Following my supervisor's advice, let us look at sleep." if "EXPERT-ADVICE" in call.system else ""
    return THERAPIST_OPENINGS[session_of(call) - 1] + advised


def client(call: Call) -> str:
    if RATING_MARKER in call.text:
        return f'{{"rating": {40 + 10 * session_of(call)}}}'
    session = call.system.count("\nSession ") + 1  # the earlier sessions it remembers, one heading each
    if BROKEN_NAME in call.system and session == 2 and "supervisor's advice" in call.last_user:
        return "Hello! I'm here to help you. How can I assist you today?"
    return CLIENT_ANSWERS[session - 1]


def expert(call: Call) -> str:
    return "EXPERT-ADVICE: ask about sleep and agree on one small goal for the coming week."


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("integrity") / "logs"
    recorder = Recorder()
    for condition in ("expert", "none"):
        roles = {"therapist": mock_role("therapist", recorder, therapist),
                 "client": mock_role("client", recorder, client), "expert": mock_role("expert", recorder, expert)}
        [log] = eval(iterative_feedback(condition=condition, sessions=SESSIONS, turns=1), model=main_model(recorder),
                     model_roles=roles, limit=PERSONAS, epochs=EPOCHS, log_dir=str(directory), display="none")
        assert log.status == "success"
    return directory


def test_frames_mark_and_exclude_failed_and_later_sessions(log_dir: Path) -> None:
    frames = read_frames(log_dir)
    exp1 = frames.exp1
    broken = exp1[(exp1["condition"] == "expert") & (exp1["persona"] == "grief_retired_teacher")]
    assert sorted(broken.groupby("session")["integrity"].first().items()) == [(1, "pass"), (2, "fail"), (3, "excluded")]
    assert set(exp1.drop(broken.index)["integrity"]) == {"pass"}
    used = apply_integrity(exp1)
    dropped = used[used["reason"].isin(["integrity", "integrity_upstream"])]
    assert len(dropped) == 2 * EPOCHS and dropped["rating"].isna().all() and dropped["missing"].all()
    assert sorted(dropped["reason"].unique()) == ["integrity", "integrity_upstream"]
    assert not exp1["missing"].any()  # the frame of all sessions keeps every rating

    rates = integrity_rates(frames.ratings["simulation_integrity"])
    expert_row = rates[rates["condition"] == "expert"].iloc[0]
    assert (expert_row["units"], expert_row["fail"], expert_row["excluded"]) == (PERSONAS * EPOCHS * SESSIONS, EPOCHS, 2 * EPOCHS)
    assert expert_row["role_break"] == EPOCHS and expert_row["client flag rate"] > 0
    none_row = rates[rates["condition"] == "none"].iloc[0]
    assert none_row["fail"] == 0 and pd.isna(none_row["expert flag rate"])  # no feedback under `none`


def test_warning_threshold() -> None:
    rates = pd.DataFrame([{"task": "iterative_feedback", "setting": "m", "unit": "sessions", "units": 10, "fail": 2},
                          {"task": "iterative_feedback", "setting": "n", "unit": "sessions", "units": 10, "fail": 3}])
    [warning] = warnings_for(rates, share=0.2)  # 20% is not more than 20%; 30% is
    assert "[iterative_feedback, n]: 3 of 10 sessions (30%)" in warning


def test_report_section_exclusion_counts_and_all_sessions(log_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    assert report_main([str(log_dir), "-o", str(out), "--quiet", "--bootstrap", "20"]) == 0
    summary = (out / "summary.md").read_text()
    assert "## Simulation integrity" in summary
    assert "Simulation integrity warning" not in summary  # 2 of 24 sessions: under the 20% default
    # the exclusion table: per condition, ratings, flagged and later sessions excluded, used, unchecked
    assert f"| mockllm/model | expert | {PERSONAS * EPOCHS * SESSIONS} | {EPOCHS} | {EPOCHS} | {PERSONAS * EPOCHS * SESSIONS - 2 * EPOCHS} | 0 |" in summary
    assert "### The same statistics on all sessions (integrity exclusions included)" in summary
    assert "Experiment 1 primary on all sessions [mockllm/model], 4 integrity exclusion(s) put back" in summary
    statistics = pd.read_csv(out / "statistics.csv")
    assert set(statistics["setting"]) == {"mockllm/model", "mockllm/model (all sessions)"}
    ratings = pd.read_csv(out / "exp1_ratings.csv", keep_default_na=False)
    assert (ratings["reason"] == "integrity").sum() == EPOCHS and (ratings["reason"] == "integrity_upstream").sum() == EPOCHS
    # the primary uses fewer ratings than the all-sessions run of the same test
    primary = statistics[(statistics["role"] == "primary")]
    main_n = primary[primary["setting"] == "mockllm/model"].iloc[0]
    all_n = primary[primary["setting"] == "mockllm/model (all sessions)"].iloc[0]
    # (a persona-run left without a slope is a missing unit, not also "missing inside": issue 21)
    def missing(row) -> int:  # noqa: ANN001
        return int(row["missing_a"] + row["missing_b"] + row["missing_within"])

    assert missing(main_n) > missing(all_n)
    assert (out / "integrity_rates.csv").exists()


def test_warning_at_the_top_above_the_share(log_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    strict = load_integrity_config().model_copy(update={"report_warning_share": 0.05})
    monkeypatch.setattr(integrity_section, "load_integrity_config", lambda: strict)
    out = tmp_path / "report"
    assert report_main([str(log_dir), "-o", str(out), "--quiet", "--bootstrap", "20"]) == 0
    summary = (out / "summary.md").read_text()
    warning = summary.index("**Simulation integrity warning** [iterative_feedback, mockllm/model]: 2 of 24 sessions (8%)")
    assert warning < summary.index("## Summary")
    assert "Simulation integrity warning" in (out / "index.html").read_text()
