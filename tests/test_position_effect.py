"""Experiment 2's joint A/B/C rating and the report's position effect.

A client that rates by position (A 60, B 55, C 50) has a known position effect (first minus last
= 10, flagged); one that rates by response type (human 50, llm 70, revised 80) has none when the
orders are balanced (6 snippets, each permutation once). Expected values are computed here
from the orders in the log, with numpy/scipy.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import shared_file
from inspect_ai import eval
from inspect_ai.log import read_eval_log
from inspect_ai.model import ChatMessageUser, GenerateConfig
from inspect_ai.model._model import (
    init_model_roles,  # binds roles as eval() does, for a direct call
)
from scipy import stats

from psysim.analysis.report import write_report
from psysim.analysis.section import ReportOptions
from psysim.calls.joint_rating import (
    RATING_SCALE,
    ask_joint_ratings,
    joint_schema,
    labels_for,
    order_for,
)
from psysim.questionnaires.parsing import parse_keyed_answers
from psysim.tasks.human_comparison import human_comparison

from mock_roles import Call, Recorder, critique_form, main_model, mock_role, output

TYPE_RATING = {"REVISED-RESPONSE": 80, "LLM-RESPONSE": 70}
POSITION_RATING = {"A": 60, "B": 55, "C": 50}
OPTION = re.compile(r'^([A-C]): "(.*?)"$', re.MULTILINE | re.DOTALL)


def therapist(call: Call) -> str:
    if "supervisor critiqued" in call.last_user:
        return "REVISED-RESPONSE: It sounds like this has been weighing on you; what matters most to you here?"
    return "LLM-RESPONSE: You have been carrying a lot. What would you like to be different?"


def by_type(text: str) -> int:
    return next((r for mark, r in TYPE_RATING.items() if text.startswith(mark)), 50)


def client(joint_by: str):
    def reply(call: Call) -> str:
        first_user = next(m.text for m in call.messages if m.role == "user")
        if "different things the therapist could say" in first_user:
            options = dict(OPTION.findall(first_user))
            ratings = {label: POSITION_RATING[label] if joint_by == "position" else by_type(text)
                       for label, text in options.items()}
            return "{" + ", ".join(f'"{label}": {r}' for label, r in ratings.items()) + "}"
        said = re.search(r'The therapist now says to you:\n"(.*)"', first_user, re.DOTALL).group(1)
        return f'{{"rating": {by_type(said)}}}'

    return reply


def run(tmp_path: Path, joint_by: str, snippets: int = 6, **task_args):
    recorder = Recorder()
    task = human_comparison(snippets=snippets, joint_rating=True, **task_args)
    roles = {"therapist": mock_role("therapist", recorder, therapist),
             "expert": mock_role("expert", recorder, lambda call: critique_form("reflect first.")),
             "client": mock_role("client", recorder, client(joint_by))}
    [log] = eval(task, model=main_model(recorder), model_roles=roles, log_dir=str(tmp_path / "logs"), display="none")
    assert log.status == "success", log.error
    return read_eval_log(log.location), recorder


def report(tmp_path: Path) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    out = tmp_path / "report"
    write_report(tmp_path / "logs", out, ReportOptions())
    return (pd.read_csv(out / "position_effect.csv"), pd.read_csv(out / "position_means.csv"),
            (out / "summary.md").read_text())


# --- orders --------------------------------------------------------------------------------------

def test_orders_cycle_through_all_permutations_balanced() -> None:
    kinds = ("human", "llm", "revised")
    orders = [order_for(i, kinds) for i in range(12)]
    assert len({tuple(o) for o in orders[:6]}) == 6 and orders[6:] == orders[:6]
    for position in range(3):
        assert Counter(o[position] for o in orders) == {"human": 4, "llm": 4, "revised": 4}
    assert labels_for(3) == ["A", "B", "C"]
    with pytest.raises(ValueError):
        labels_for(0)


# --- the strict parser ---------------------------------------------------------------------------

@pytest.mark.parametrize("reply, answers, problem", [
    ('{"A": 60, "B": 55, "C": 50}', {"A": 60.0, "B": 55.0, "C": 50.0}, None),
    ('```json\n{"A": 0, "B": 100, "C": 70.0}\n```', {"A": 0.0, "B": 100.0, "C": 70.0}, None),
    ('{"A": 60, "B": 55}', {"A": 60.0, "B": 55.0}, "response C: not answered"),
    ('{"A": 60, "B": 55, "C": 101}', {"A": 60.0, "B": 55.0}, "response C: out of range"),
    ('{"A": 60, "B": "55", "C": 50}', {"A": 60.0, "C": 50.0}, "response B: not a number"),
    ('{"A": 60, "B": 55.5, "C": 50}', {"A": 60.0, "C": 50.0}, "response B: not a whole number"),
    ('{"A": 60, "a": 55, "B": 1, "C": 2}', {}, "ambiguous"),
    ("A: 60, B: 55, C: 50", {}, "no JSON object"),
])
def test_joint_parser_is_strict(reply: str, answers: dict, problem: str | None) -> None:
    parsed = parse_keyed_answers(reply, ["A", "B", "C"], RATING_SCALE, what="response")
    assert parsed.answers == answers
    if problem is None:
        assert parsed.error is None
    else:
        assert problem in parsed.error


def test_schema_requires_every_label() -> None:
    schema = joint_schema(["A", "B", "C"])
    assert schema.required == ["A", "B", "C"] and schema.additionalProperties is False
    assert schema.properties["A"].type == "integer"


def ask(recorder: Recorder, reply, max_attempts: int):
    """:func:`ask_joint_ratings` with ``reply`` as the client (roles bound inside the event loop)."""

    async def go():
        init_model_roles({"client": mock_role("client", recorder, reply)})
        return await ask_joint_ratings("client", [ChatMessageUser(content="rate")], GenerateConfig(), ["A", "B", "C"],
                                       rating_format="json_schema", max_attempts=max_attempts, step="t", stops=[])

    return asyncio.run(go())


def test_reask_then_accept_and_missing_never_coerced() -> None:
    replies = iter(['{"A": 60, "B": 55}', '{"A": 61, "B": 56, "C": 51}'])
    recorder = Recorder()
    result = ask(recorder, lambda call: next(replies), 3)
    assert result.values == {"A": 61.0, "B": 56.0, "C": 51.0} and result.code is None and result.attempts == 2
    assert "response C: not answered" in recorder.calls[1].last_user  # the re-ask names the problem

    bad = ask(recorder, lambda call: '{"A": 60, "B": 55, "C": "high"}', 2)
    assert bad.values == {"A": 60.0, "B": 55.0} and bad.code == "rating_unparsed" and len(bad.raw) == 2
    assert bad.reason("C").startswith("rating_unparsed: not a number") and bad.reason("A") is None

    cut = ask(recorder, lambda call: output('{"A": 6', stop_reason="max_tokens"), 1)
    assert cut.values == {} and cut.code == "truncated" and cut.reason("A").startswith("truncated")


# --- end to end ----------------------------------------------------------------------------------

def test_position_rater_gives_known_position_effect(tmp_path: Path) -> None:
    log, recorder = run(tmp_path, "position")
    for sample in log.samples:
        joint = sample.scores["joint_rating"]
        order = joint.metadata["order"]
        assert joint.value["position_1"] == 60 and joint.value["position_2"] == 55 and joint.value["position_3"] == 50
        assert joint.value[order[0]] == 60 and joint.metadata["labels"] == dict(zip("ABC", order))
        # the independent blind ratings are still made, unchanged, beside the joint one
        assert sample.scores["client_rating"].value == {"human": 50.0, "llm": 70.0, "revised": 80.0}
    joint_calls = [c for c in recorder.of("client") if "different things" in c.last_user]
    assert len(joint_calls) == 6 and len(recorder.of("client")) == 6 * 4
    for call in joint_calls:  # blind: no source is named
        for word in ("human", "llm", "revised", "expert"):
            assert word not in call.text.lower().replace("revised-response", "").replace("llm-response", "")
    effect, means, summary = report(tmp_path)
    assert effect["first minus last"].iloc[0] == pytest.approx(10.0)
    assert effect["CI low"].iloc[0] == pytest.approx(10.0) and effect["CI high"].iloc[0] == pytest.approx(10.0)
    assert bool(effect["flagged"].iloc[0]) and effect["n snippets"].iloc[0] == 6
    assert means["mean"].tolist() == pytest.approx([60.0, 55.0, 50.0])
    assert "FLAG: position effect: first minus last = 10.00 points" in summary


def test_type_rater_with_balanced_orders_has_no_position_effect(tmp_path: Path) -> None:
    log, _ = run(tmp_path, "type")
    orders = [s.scores["joint_rating"].metadata["order"] for s in log.samples]
    assert len({tuple(o) for o in orders}) == 6  # each permutation once
    rating = {"human": 50, "llm": 70, "revised": 80}
    # independent computation: per snippet first minus last, then mean and t-interval
    diffs = np.array([rating[o[0]] - rating[o[-1]] for o in orders], dtype=float)
    by_position = [np.mean([rating[o[p]] for o in orders]) for p in range(3)]
    effect, means, summary = report(tmp_path)
    assert effect["first minus last"].iloc[0] == pytest.approx(diffs.mean()) == 0.0
    interval = stats.t.interval(0.95, len(diffs) - 1, loc=diffs.mean(), scale=stats.sem(diffs))
    assert effect["CI low"].iloc[0] == pytest.approx(interval[0]) and effect["CI high"].iloc[0] == pytest.approx(interval[1])
    assert not bool(effect["flagged"].iloc[0])
    assert means["mean"].tolist() == pytest.approx(by_position)
    assert "no position effect above 2 points" in summary and "FLAG: position" not in summary


def test_unparsed_joint_rating_is_missing_with_reason(tmp_path: Path) -> None:
    def bad_joint(call: Call) -> str:
        if "different things" in call.last_user or "could not be used" in call.last_user:
            return '{"A": 60, "B": 55, "C": "fine"}'
        return '{"rating": 50}'

    recorder = Recorder()
    task = human_comparison(snippets=2, joint_rating=True, max_rating_attempts=2)
    roles = {"therapist": mock_role("therapist", recorder, therapist),
             "expert": mock_role("expert", recorder, lambda call: critique_form("CRITIQUE")),
             "client": mock_role("client", recorder, bad_joint)}
    [log] = eval(task, model=main_model(recorder), model_roles=roles, log_dir=str(tmp_path / "logs"), display="none")
    for sample in read_eval_log(log.location).samples:
        joint = sample.scores["joint_rating"]
        third = joint.metadata["order"][2]
        assert math.isnan(joint.value["position_3"]) and math.isnan(joint.value[third])
        assert joint.metadata["missing_reasons"]["position_3"].startswith("rating_unparsed: not a number")
        assert not math.isnan(joint.value["position_1"])
        assert len(joint.metadata["rating"]["raw"]) == 2
    _, means, summary = report(tmp_path)
    assert means.set_index("position").loc[3, "missing ratings"] == 2
    assert "rating_unparsed" in summary


def test_joint_rating_argument_is_checked() -> None:
    with pytest.raises(ValueError, match="joint_rating must be true or false"):
        human_comparison(joint_rating="yes")  # type: ignore[arg-type]
    plain = human_comparison(snippets=2)
    assert all("joint_order" not in s.metadata for s in plain.dataset)


def test_orders_are_balanced_on_annomi() -> None:
    """On the real AnnoMI transcripts: 12 snippets, each type 4 times in each position."""
    path = shared_file("annomi", "AnnoMI-simple.csv")
    task = human_comparison(transcripts=str(path), snippets=12, joint_rating=True)
    orders = [s.metadata["joint_order"] for s in task.dataset]
    assert len(orders) == 12 and len({tuple(o) for o in orders}) == 6
    for position in range(3):
        assert Counter(o[position] for o in orders) == {"human": 4, "llm": 4, "revised": 4}
