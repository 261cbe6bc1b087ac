"""The Expert's limits (issue 26, psysim/calls/critique.py): a critique in the form of short
fields with no response slot, a token cap from the word limit, a re-ask for a written response,
a field over its limit or missing fields; Experiment 1's feedback under its word limit."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from inspect_ai import eval

from psysim.calls.critique import (
    form_max_tokens,
    limit_problems,
    load_form,
    parse_fields,
    render_fields,
    response_passage,
)
from psysim.tasks.human_comparison import human_comparison
from psysim.tasks.iterative_feedback import iterative_feedback

from mock_roles import Call, Recorder, critique_form, main_model, mock_role, roles

FORM = load_form("critique_form")
ADVICE = "Reflect the client's tiredness before asking about goals, and leave room for her reasons."
WRITTEN = ('Improved response: "It sounds like you are exhausted by all of this and part of you wants '
           'it to stop. What would make the biggest difference for you this week?"')


def test_form_and_cap_come_from_the_prompt_file() -> None:
    assert [f.key for f in FORM.fields] == ["WORKS", "CHANGE", "WHY"]
    assert FORM.max_words == 105 and form_max_tokens(FORM) == math.ceil(105 * 2.5) + 40
    assert form_max_tokens(load_form("feedback_form")) == 540


@pytest.mark.parametrize(("text", "written"), [
    (WRITTEN, True),  # a labelled response
    ("A better response would be: It sounds like you are tired of it.", True),
    ("Therapist: It sounds like you are tired.", True),  # a therapist line
    ("You could say something like that you hear how tired she is.", True),
    ('Ask about it, e.g. "It sounds like this has been building for a long time and you are tired of it"', True),
    # advice quoting a few words of the client is not a response
    ('Reflect "tired of it" before asking; a better response would reflect the feeling first.', False),
    (ADVICE, False),
])
def test_a_written_response_is_told_from_advice(text: str, written: bool) -> None:
    assert (response_passage(text, FORM) is not None) == written


def test_fields_parse_render_and_keep_their_limits() -> None:
    fields, problem = parse_fields(critique_form(ADVICE), FORM)
    assert problem is None and fields["CHANGE"] == ADVICE
    assert render_fields(fields, FORM).splitlines()[1] == f"What to change: {ADVICE}"
    assert limit_problems(critique_form(ADVICE), fields, FORM) == []
    # markdown labels parse too; a reply without the fields does not
    assert parse_fields(f"**Works:** fine.\n**Change:** {ADVICE}\n**Why:** guidelines.", FORM)[0] is not None
    assert parse_fields(ADVICE, FORM) == (None, "the field(s) WORKS, CHANGE, WHY are missing or empty")
    # a field far over its limit, and a response written in a field, are problems
    long = critique_form(" ".join(["word"] * 60))
    assert limit_problems(long, parse_fields(long, FORM)[0], FORM) == ["the field CHANGE has 60 words; its limit is 45"]
    written = critique_form(ADVICE, why=WRITTEN)
    assert any("writes the therapist's response" in p for p in limit_problems(written, parse_fields(written, FORM)[0], FORM))


def therapist(call: Call) -> str:
    return "REVISED: what matters most?" if "supervisor critiqued" in call.last_user else "LLM: go on."


def run_exp2(tmp_path: Path, expert, snippets: int = 1):
    recorder = Recorder()
    model_roles = {"therapist": mock_role("therapist", recorder, therapist), "expert": mock_role("expert", recorder, expert),
                   "client": mock_role("client", recorder, lambda call: '{"rating": 60}')}
    [log] = eval(human_comparison(snippets=snippets), model=main_model(recorder), model_roles=model_roles,
                 log_dir=str(tmp_path / "logs"), display="none")
    assert log.status == "success", log.error
    return log.samples[0], recorder


def test_a_written_response_is_reasked_and_never_reaches_the_reviser(tmp_path: Path) -> None:
    def expert(call: Call) -> str:
        reasked = "could not be used" in call.last_user
        return critique_form(ADVICE) if reasked else critique_form(ADVICE, why=WRITTEN)

    sample, recorder = run_exp2(tmp_path, expert)
    first, second = recorder.of("expert")
    assert first.config.max_tokens == form_max_tokens(FORM)  # the cap from the word limit
    assert "writes the therapist's response itself" in second.last_user
    assert "exhausted" not in second.text  # the rejected reply is not shown back
    [revision] = [c for c in recorder.of("therapist") if "supervisor critiqued" in c.last_user]
    assert "exhausted" not in revision.last_user and f"What to change: {ADVICE}" in revision.last_user
    value = sample.scores["simulation_integrity"].value
    assert (value["critique_reasks"], value["critique_over_limit"], value["critique_word_limit"]) == (1, 0, 105)
    assert value["critique_words"] == len(sample.scores["client_rating"].metadata["critique"].split())


def test_a_critique_without_its_fields_fails_and_leaves_revised_unrated(tmp_path: Path) -> None:
    sample, recorder = run_exp2(tmp_path, lambda call: ADVICE)
    assert len(recorder.of("expert")) == 3  # the first ask and 2 re-asks naming the missing fields
    assert "WORKS, CHANGE, WHY are missing" in recorder.of("expert")[1].last_user
    reason = sample.scores["client_rating"].metadata["missing_reasons"]["revised"]
    assert reason.startswith("upstream_failed: ") and "critique_unparsed: " in reason
    assert not [c for c in recorder.of("therapist") if "supervisor critiqued" in c.last_user]


def test_experiment_1_feedback_over_its_limit_is_reasked_and_recorded(tmp_path: Path) -> None:
    from inspect_ai.log import read_eval_log

    def expert(call: Call) -> str:
        if "could not be used" in call.last_user:
            return "Reflect her tiredness first; agree on one small goal."
        return " ".join(["advice"] * 260)  # 260 words against a limit of 200

    recorder = Recorder()
    [log] = eval(iterative_feedback(condition="expert", sessions=2, turns=1), model=main_model(recorder),
                 model_roles=roles(recorder, expert=expert), limit=1, log_dir=str(tmp_path / "logs"), display="none")
    assert log.status == "success", log.error
    first, second = recorder.of("expert")
    assert first.config.max_tokens == 540 and "it has 260 words; the limit is 200" in second.last_user
    course = read_eval_log(log.location).samples[0].store
    [record] = [s for s in course["TherapyCourse:sessions"] if s.get("feedback_after")]
    assert record["feedback_after"].startswith("Reflect her tiredness")
    assert record["feedback_check"]["reasks"] == 1 and record["feedback_check"]["within_limits"]
    assert record["feedback_check"]["problems"] == ["attempt 1: it has 260 words; the limit is 200"]
