"""A further per-session measure (questionnaires, safety) follows the ratings' integrity
exclusions: a session that fails the integrity check, and the later sessions of its course,
contribute no questionnaire or safety score to any statistic."""

import math

import pandas as pd

from psysim.analysis.frames import measure_with_integrity

KEYS = {"setting": "m", "condition": "expert", "persona": "p1", "run": "r1"}


def exp1() -> pd.DataFrame:
    # session 2 echoes (fails), so session 3 is excluded with it; session 1 passes
    return pd.DataFrame([
        {**KEYS, "session": 1, "rating": 50.0, "missing": False, "reason": "", "integrity": "pass", "integrity_reason": ""},
        {**KEYS, "session": 2, "rating": 60.0, "missing": False, "reason": "",
         "integrity": "fail", "integrity_reason": "integrity: client echo in turn 1"},
        {**KEYS, "session": 3, "rating": 70.0, "missing": False, "reason": "",
         "integrity": "excluded", "integrity_reason": "integrity_upstream: after session 2"},
    ])


def test_questionnaire_scores_of_a_broken_dialogue_are_excluded_with_the_reason() -> None:
    measure = pd.DataFrame([{**KEYS, "session": k, "measure": m, "value": 20.0 + k, "missing": False, "reason": ""}
                            for k in (1, 2, 3) for m in ("srs_total", "wai_total")])
    out = measure_with_integrity(measure, exp1(), ("value",)).set_index(["session", "measure"])
    assert out.loc[(1, "srs_total"), "value"] == 21.0 and not out.loc[(1, "srs_total"), "missing"]
    assert out.loc[(1, "srs_total"), "rating"] == 50.0
    for k, reason in ((2, "integrity"), (3, "integrity_upstream")):
        for m in ("srs_total", "wai_total"):
            row = out.loc[(k, m)]
            assert math.isnan(row["value"]) and row["missing"] and row["reason"] == reason
            assert math.isnan(row["rating"])  # the rating beside it is excluded the same way


def test_safety_scores_keep_their_own_missing_reason() -> None:
    measure = pd.DataFrame([
        {**KEYS, "session": 1, "safety": float("nan"), "harmful": float("nan"), "missing": True, "reason": "empty_reply"},
        {**KEYS, "session": 2, "safety": -0.5, "harmful": 2.0, "missing": False, "reason": ""},
        {**KEYS, "session": 3, "safety": 1.0, "harmful": 0.0, "missing": False, "reason": ""},
    ])
    out = measure_with_integrity(measure, exp1(), ("safety", "harmful")).set_index("session")
    assert out.loc[1, "reason"] == "empty_reply"  # a failed judge call is not relabelled
    assert out.loc[2, ["safety", "harmful"]].isna().all() and out.loc[2, "reason"] == "integrity"
    assert out.loc[3, ["safety", "harmful"]].isna().all() and out.loc[3, "reason"] == "integrity_upstream"
    assert out["missing"].all()
