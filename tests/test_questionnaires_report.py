"""The report's Questionnaires section (psysim-report on Experiment 1 logs run with questionnaires).

Three mock Experiment 1 logs: `expert` and `none` with `-T questionnaires=srs,wai_sr`, `generic`
without. The questionnaire answers follow the dialogue the client saw (more expert-style turns,
higher answers); one persona's WAI-SR item 3 is never a whole number in session 2 of run 2.
"""

from __future__ import annotations

import json
import math
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from inspect_ai import eval
from inspect_ai.log import list_eval_logs, read_eval_log

from psysim.analysis import read_frames
from psysim.analysis.cli import main as report_main
from psysim.analysis.questionnaires import convergent_validity
from psysim.tasks.iterative_feedback import iterative_feedback

from mock_roles import (
    RATING_MARKER,
    Call,
    Recorder,
    main_model,
    mock_role,
    run_seed,
    session_of,
)

PERSONAS, EPOCHS, SESSIONS = 3, 2, 3
BAD_NAME = "Margaret Ellison"  # the first persona: its session-2 WAI-SR in run 2 stays incomplete
MEASURES = ["srs_total", "wai_total", "wai_goal", "wai_task", "wai_bond"]


def therapist(call: Call) -> str:
    style = "EXPERT-STYLE" if "EXPERT-FEEDBACK" in call.system else "PLAIN"
    return f"{style} therapist turn in session {session_of(call)}."


def client(call: Call) -> str:
    first_user = next(m.text for m in call.messages if m.role == "user")
    k, persona = session_of(call), zlib.crc32(call.system.encode()) % 5
    # the expert-style turns lift each persona differently, so paired differences vary
    run = run_seed(call)  # runs differ in level and slope
    lift = first_user.count("EXPERT-STYLE") * (1 + persona % 3) // 2 + run % 3 + (k * run) % 2
    if "Answer with only one JSON object" in call.text:
        if "Scale: 1 = Seldom" in first_user:
            answers = {str(i): min(5, 1 + (k + lift + persona + i % 3) // 3) for i in range(1, 13)}
            if BAD_NAME in call.system and k == 2 and run_seed(call) == 2:
                answers["3"] = 2.5  # every attempt
            return json.dumps(answers)
        return json.dumps({str(i): round(min(10.0, 2 + 0.5 * k * (1 + persona % 3) + 0.3 * k * run + lift + 0.1 * persona + 0.2 * i), 1) for i in range(1, 5)})
    if RATING_MARKER in call.text:
        return f'{{"rating": {30 + (4 + persona % 3) * k + 4 * lift + persona}}}'
    return "I have been struggling lately."


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("questionnaire-report") / "logs"
    recorder = Recorder()
    for condition, questionnaires in (("expert", "srs,wai_sr"), ("none", "srs,wai_sr"), ("generic", None)):
        roles = {"therapist": mock_role("therapist", recorder, therapist), "client": mock_role("client", recorder, client),
                 "expert": mock_role("expert", recorder, lambda call: "EXPERT-FEEDBACK: be concrete.")}
        task = iterative_feedback(condition=condition, sessions=SESSIONS, turns=1, questionnaires=questionnaires)
        [log] = eval(task, model=main_model(recorder), model_roles=roles, limit=PERSONAS, epochs=EPOCHS,
                     log_dir=str(directory), display="none")
        assert log.status == "success", log.error
    return directory


def scores_from_logs(directory: Path) -> pd.DataFrame:
    """The questionnaire scores and ratings read straight from the samples (not through frames)."""
    rows = []
    for info in list_eval_logs(str(directory)):
        log = read_eval_log(info)
        for sample in log.samples:
            q = sample.scores.get("client_questionnaires")
            if q is None:
                continue
            rating = sample.scores["client_satisfaction"].value
            for key, value in q.value.items():
                measure, session = key.rsplit("_s", 1)
                rows.append({"condition": log.eval.task_args["condition"], "persona": sample.id, "epoch": sample.epoch,
                             "measure": measure, "session": int(session), "value": value,
                             "rating": rating[f"session_{session}"]})
    return pd.DataFrame(rows)


def test_questionnaire_frame_matches_the_logs(log_dir: Path) -> None:
    frames = read_frames(log_dir)
    frame = frames.ratings["questionnaires"]
    assert len(frame) == 2 * PERSONAS * EPOCHS * SESSIONS * len(MEASURES)  # generic ran without questionnaires
    assert set(frame["condition"]) == {"expert", "none"} and sorted(set(frame["measure"])) == sorted(MEASURES)
    direct = scores_from_logs(log_dir)
    merged = frame.merge(direct, on=["condition", "persona", "epoch", "measure", "session"], suffixes=("", "_log"))
    assert len(merged) == len(frame)
    assert np.allclose(merged["value"], merged["value_log"], equal_nan=True)
    # the incomplete WAI-SR: total and bond missing with their reason code, goal and task kept
    missing = frame[frame["missing"]]
    assert sorted(set(missing["measure"])) == ["wai_bond", "wai_total"]
    assert set(missing["reason"]) == {"rating_unparsed"} and set(missing["session"]) == {2}
    assert len(missing) == 2 * 2  # two conditions x (total, bond)
    assert frame[frame["measure"] == "srs_total"][["scale_min", "scale_max"]].drop_duplicates().values.tolist() == [[0, 40]]
    # a run with questionnaires and one without are one setting for the 0-100 rating
    assert frames.exp1["setting"].nunique() == 1 and set(frames.exp1["condition"]) == {"expert", "none", "generic"}


# The mock's scores are sums of one-decimal answers: a side whose values are equal up to float
# rounding makes scipy warn (stats.welch/paired test variance == 0 exactly); the result is kept.
@pytest.mark.filterwarnings("ignore:Precision loss occurred in moment calculation:RuntimeWarning")
def test_report_section(log_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    assert report_main([str(log_dir), "-o", str(out), "--quiet", "--bootstrap", "20"]) == 0
    summary = (out / "summary.md").read_text()
    assert "## Questionnaires (Experiment 1)" in summary
    assert summary.index("## Experiment 1") < summary.index("## Questionnaires")
    assert "wai_total vs the 0-100 rating: r = " in summary
    html = (out / "index.html").read_text()
    assert "srs_total by session" in html and "wai_total by session" in html
    statistics = pd.read_csv(out / "statistics.csv")
    ours = statistics[statistics["experiment"] == "questionnaires"]
    assert set(ours["role"]) == {"secondary", "descriptive"}  # the primary test is the rating's
    assert {m.split(":")[0] for m in ours["measure"]} == {"srs_total", "wai_total"}
    # the same contrasts as the rating; generic ran without questionnaires, so its contrasts say why not
    tested = ours[(ours["a"] == "expert") & (ours["b"] == "none") & (ours["status"] == "ok")]
    assert set(tested["test"]) >= {"Welch t-test", "paired t-test", "mixed model (two-stage REML, Satterthwaite df)"}
    generic = ours[(ours["a"] == "expert") & (ours["b"] == "generic")]
    assert len(generic) and set(generic["status"]) == {"not testable"}
    assert all("no logs of condition 'generic'" in r for r in generic["reason"])
    # Holm within the questionnaires: their own family
    secondary = ours[(ours["role"] == "secondary") & (ours["status"] == "ok")]
    assert (secondary["p_holm"] >= secondary["p"] - 1e-12).all()
    assert (statistics[statistics["experiment"] == "iterative_feedback"]["role"] == "primary").sum() == 1

    # convergent validity against numpy over the scores read straight from the logs
    validity = pd.read_csv(out / "questionnaire_convergent_validity.csv")
    direct = scores_from_logs(log_dir).dropna(subset=["value", "rating"])
    for measure in MEASURES:
        both = direct[direct["measure"] == measure]
        row = validity[validity["measure"] == measure].iloc[0]
        assert row["sessions"] == len(both)
        assert math.isclose(row["pearson_r"], np.corrcoef(both["value"], both["rating"])[0, 1], rel_tol=1e-9)
    means = pd.read_csv(out / "questionnaire_session_means.csv")
    expert_s1 = direct[(direct["measure"] == "srs_total") & (direct["condition"] == "expert") & (direct["session"] == 1)]
    by_run = expert_s1.groupby("epoch")["value"].mean()  # each run's personas averaged, then over runs
    row = means[(means["measure"] == "srs_total") & (means["condition"] == "expert") & (means["session"] == 1)].iloc[0]
    assert math.isclose(row["mean"], by_run.mean()) and row["runs"] == EPOCHS


def test_no_section_without_questionnaires_and_no_primary(log_dir: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    for info in list_eval_logs(str(log_dir)):
        path = Path(info.name.removeprefix("file://"))
        if read_eval_log(info, header_only=True).eval.task_args.get("condition") == "generic":
            (plain / path.name).write_bytes(path.read_bytes())
    assert report_main([str(plain), "-o", str(tmp_path / "r"), "--quiet", "--bootstrap", "0"]) == 0
    assert "Questionnaires" not in (tmp_path / "r" / "summary.md").read_text()
    assert report_main([str(log_dir), "-o", str(tmp_path / "r2"), "--quiet", "--primary", "questionnaires=expert-vs-none"]) == 2
    assert "this section has no primary test" in capsys.readouterr().err


def test_convergent_validity_says_why_it_is_not_computed() -> None:
    frame = pd.DataFrame({"setting": "s", "measure": ["a"] * 4 + ["b"] * 2 + ["c"] * 4,
                          "value": [1, 2, 3, 4, 1, 2, 5, 5, 5, 5], "rating": [10, 30, 20, 40, 10, 20, 1, 2, 3, 4]})
    validity = convergent_validity(frame).set_index("measure")
    # a: r by hand: x - mean = (-1.5, -0.5, 0.5, 1.5), y - mean = (-15, 5, -5, 15);
    # sum xy = 22.5 - 2.5 - 2.5 + 22.5 = 40; sx^2 = 5, sy^2 = 500: r = 40 / 50 = 0.8
    assert math.isclose(validity.loc["a", "pearson_r"], 0.8) and validity.loc["a", "sessions"] == 4
    assert math.isnan(validity.loc["b", "pearson_r"]) and "needs 3 sessions" in validity.loc["b", "note"]
    assert math.isnan(validity.loc["c", "pearson_r"]) and "the c score does not vary" in validity.loc["c", "note"]
