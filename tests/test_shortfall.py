from __future__ import annotations

import logging

import pytest

from psysim.inputs.shortfall import take_at_most


def test_fewer_than_requested_takes_all_warns_and_records(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="psysim.inputs.shortfall"):
        taken, record = take_at_most(list("abc"), 5, "snippets")
    assert taken == ["a", "b", "c"]
    assert record == {"what": "snippets", "requested": 5, "available": 3}
    assert "snippets: 5 requested but only 3 available; using all 3" in caplog.text


@pytest.mark.parametrize("n, expected", [(3, ["a", "b", "c"]), (2, ["a", "b"]), (None, ["a", "b", "c"])])
def test_enough_items_is_no_shortfall(caplog: pytest.LogCaptureFixture, n: int | None, expected: list[str]) -> None:
    with caplog.at_level(logging.WARNING, logger="psysim.inputs.shortfall"):
        taken, record = take_at_most(list("abc"), n, "snippets")
    assert taken == expected and record is None
    assert caplog.text == ""


def test_pick_chooses_when_there_are_more() -> None:
    taken, record = take_at_most(list("abcd"), 2, "items", pick=lambda items, n: list(items[-n:]))
    assert taken == ["c", "d"] and record is None
    # pick is not consulted when everything is taken
    taken, record = take_at_most(list("ab"), 3, "items", pick=lambda items, n: pytest.fail("pick called"))
    assert taken == ["a", "b"] and record == {"what": "items", "requested": 3, "available": 2}


def test_task_records_requested_eligible_and_sampled(caplog: pytest.LogCaptureFixture) -> None:
    from psysim.tasks.human_comparison import human_comparison

    with caplog.at_level(logging.WARNING, logger="psysim.inputs.shortfall"):
        task = human_comparison(snippets=500)  # the demo set has 39 eligible snippets
    assert len(task.dataset) == 39
    assert task.metadata["requested_snippets"] == 500
    assert task.metadata["eligible_snippets"] == 39 == task.metadata["sampled_snippets"]
    assert task.metadata["shortfalls"] == [{"what": "snippets", "requested": 500, "available": 39}]
    assert "500 requested but only 39 available" in caplog.text

    task = human_comparison(snippets=10)
    assert len(task.dataset) == 10 and task.metadata["shortfalls"] == []
    assert task.metadata["requested_snippets"] == 10 and task.metadata["sampled_snippets"] == 10


def test_paper_default_of_50_runs_on_the_demo_set() -> None:
    from psysim.study.paper import paper_tasks

    [task] = paper_tasks(("human_comparison",))
    assert len(task.dataset) == 39
    assert task.metadata["shortfalls"] == [{"what": "snippets", "requested": 50, "available": 39}]


def test_shortfall_reaches_the_log(tmp_path) -> None:
    from inspect_ai import eval

    from psysim.tasks.human_comparison import human_comparison

    from mock_roles import Recorder, main_model, mock_role

    recorder = Recorder()
    roles = {role: mock_role(role, recorder, lambda call: '{"rating": 50}') for role in ("therapist", "expert", "client")}
    [log] = eval(
        human_comparison(snippets=500), model=main_model(recorder), model_roles=roles, limit=1,
        log_dir=str(tmp_path / "logs"), display="none",
    )
    assert log.status == "success", log.error
    assert log.eval.metadata["shortfalls"] == [{"what": "snippets", "requested": 500, "available": 39}]
    assert (log.eval.metadata["requested_snippets"], log.eval.metadata["sampled_snippets"]) == (500, 39)
