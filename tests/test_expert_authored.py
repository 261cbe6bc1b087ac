"""The ``expert_authored`` integrity flag (Experiment 2): a Therapist revision copied from the
Expert's critique is flagged, and its ``revised`` rating is left out of the statistics with that
reason; a revision that quotes one phrase of the advice is not flagged."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import yaml
from inspect_ai import eval

from psysim.analysis.frames import EXPERT_AUTHORED, read_frames
from psysim.dialogue.integrity import comparison_integrity, copied_share, load_integrity_config
from psysim.dialogue.transcript import Turn
from psysim.tasks.human_comparison import human_comparison

from mock_roles import Call, Recorder, critique_form, main_model, mock_role

CASES = yaml.safe_load((Path(__file__).parent / "expert_authored_cases.yaml").read_text(encoding="utf-8"))["cases"]
COPIES = ("copy", "near_copy")
CONTEXT = [Turn(speaker="client", text="I drink most evenings now, since the divorce. My doctor is worried.")]


def flags_of(revision: str, critique: str, reviser: str = "therapist") -> list[str]:
    result = comparison_integrity("Human turn.", CONTEXT, {"llm": "What brings that up?", "revised": revision},
                                  critique, reviser, 0, [])
    return [f.kind for f in result.flags]


@pytest.mark.parametrize("case", CASES, ids=[f"{i}-{c['label']}" for i, c in enumerate(CASES)])
def test_labelled_cases(case: dict) -> None:
    flagged = "expert_authored" in flags_of(case["revision"], case["critique"])
    assert flagged == (case["label"] in COPIES)
    # an Expert-written revision (-T reviser=expert) is the Expert's by design: never flagged
    assert "expert_authored" not in flags_of(case["revision"], case["critique"], reviser="expert")


def test_threshold_separates_the_labelled_cases_with_a_margin() -> None:
    config = load_integrity_config()
    shares = {label: [copied_share(c["revision"], [c["critique"]], config.expert_authored_ngram)[0]
                      for c in CASES if c["label"] == label] for label in ("copy", "near_copy", "short_quote", "own")}
    lowest_copy = min(shares["copy"] + shares["near_copy"])
    highest_other = max(shares["short_quote"] + shares["own"])
    assert highest_other + 0.2 <= config.expert_authored_max_share <= lowest_copy - 0.2, shares
    assert min(shares["short_quote"]) > 0  # the quotes do share a run: the test is not vacuous


# --- a scripted run: the Expert writes the response for some snippets, the Therapist copies it --

QUOTED = re.compile(r'A better response would be: "(.*?)"', re.DOTALL)


def first_user(call: Call) -> str:
    return next(m.text for m in call.messages if m.role == "user")  # a re-ask comes after it


def expert(call: Call) -> str:
    # derived from the prompt (not the re-ask), so the same snippets get a written response however
    # calls interleave: this Expert writes the response again on every re-ask
    if len(first_user(call)) % 2:
        return critique_form('The response jumps to advice. A better response would be: "It sounds like this has been '
                             'building for a long time and you are tired of carrying it on your own. What would help '
                             'most right now?" Reflect before asking.')
    return critique_form("Reflect the feeling before asking; avoid lecturing.")


def therapist(call: Call) -> str:
    if "supervisor critiqued" in call.last_user:
        written = QUOTED.search(call.last_user)
        return written.group(1) if written else "That sounds heavy. What feels most pressing for you today?"
    return "You have been carrying a lot. What would you like to be different?"


def client(call: Call) -> str:
    return '{"rating": 60}'


def test_scripted_copy_is_flagged_and_its_rating_left_out(tmp_path: Path) -> None:
    recorder = Recorder()
    roles = {"therapist": mock_role("therapist", recorder, therapist), "expert": mock_role("expert", recorder, expert),
             "client": mock_role("client", recorder, client)}
    [log] = eval(human_comparison(snippets=6), model=main_model(recorder), model_roles=roles,
                 log_dir=str(tmp_path / "logs"), display="none")
    assert log.status == "success", log.error
    copied = {str(s.id) for s in log.samples if "A better response" in s.scores["client_rating"].metadata["critique"]}
    assert 0 < len(copied) < 6
    for sample in log.samples:
        value = sample.scores["simulation_integrity"].value
        assert value["expert_authored"] == (str(sample.id) in copied) == value["flagged"]
        assert value["critique_words"] == len(sample.scores["client_rating"].metadata["critique"].split())
        # the written response is re-asked twice and kept (over its limit) after the third attempt
        assert value["critique_reasks"] == value["critique_over_limit"] * 2 == 2 * (str(sample.id) in copied)
        assert value["critique_word_limit"] == 105
    exp2 = read_frames(tmp_path / "logs").exp2
    revised = exp2[exp2["response_type"] == "revised"].set_index("snippet")
    assert set(revised.index[revised["reason"] == EXPERT_AUTHORED]) == copied
    assert revised.loc[sorted(copied), "rating"].map(math.isnan).all()
    assert (revised.drop(index=sorted(copied))["rating"] == 60).all()
    # the human and LLM ratings of a flagged snippet still count
    others = exp2[(exp2["response_type"] != "revised")]
    assert (others["rating"] == 60).all()


HUMAN_TURN = re.compile(r'The therapist\'s next response was:\n"(.*?)"\n\nA clinical supervisor', re.DOTALL)


def lazy_reviser(call: Call) -> str:
    """Copies a response the Expert wrote; otherwise hands back the human turn unchanged."""
    if "supervisor critiqued" in call.last_user:
        written = QUOTED.search(call.last_user)
        return written.group(1) if written else HUMAN_TURN.search(call.last_user).group(1)
    return "You have been carrying a lot. What would you like to be different?"


def test_expert_authorship_benchmark_counts_copies_and_unchanged_revisions(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """``benchmarks/expert_authorship.py`` (the before/after table of docs/experiment-2.md) counts
    both ways a "revised" candidate stops being a revision, as the log's integrity flags say."""
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import expert_authorship

    recorder = Recorder()
    roles = {"therapist": mock_role("therapist", recorder, lazy_reviser),
             "expert": mock_role("expert", recorder, expert), "client": mock_role("client", recorder, client)}
    [log] = eval(human_comparison(snippets=6), model=main_model(recorder), model_roles=roles,
                 log_dir=str(tmp_path / "logs"), display="none")
    assert log.status == "success", log.error
    copied = sum("A better response" in s.scores["client_rating"].metadata["critique"] for s in log.samples)
    assert 0 < copied < 6
    measured = expert_authorship.measure(str(tmp_path / "logs"))
    assert (measured["snippets"], measured["revisions"]) == (6, 6)
    assert measured["expert_authored"] == copied
    assert measured["revision_identical"] == 6 - copied
    assert measured["expert_reasks"] == measured["critiques_over_limit"] * 2 == 2 * copied
    assert measured["failed_calls"] == 0


# --- Experiment 1: flagged and counted, never excluded -----------------------------------------

FEEDBACK = ('Next session, open with the loss: say "I have been thinking about what you told me about your '
            'husband and how quiet the house has become in the evenings since he died" and then wait. '
            "Reflect before advising.")


def course(opening: str) -> list[Turn]:
    first = [("therapist", "Good morning. What would you like to talk about today?"),
             ("client", "The evenings mostly. The house is so quiet since my husband died.")]
    second = [("therapist", "Welcome again. How has the week been since we last met?"),
              ("client", "Much the same. I went to the shops on Tuesday, which was something."),
              ("therapist", opening),
              ("client", "Yes. I keep his chair as it was, and I cannot sit in it.")]
    return ([Turn(session=1, speaker=s, text=t) for s, t in first]  # type: ignore[arg-type]
            + [Turn(session=2, speaker=s, text=t) for s, t in second])  # type: ignore[arg-type]


@pytest.mark.parametrize(("opening", "scripted"), [
    # the Expert's line, said word for word
    ("I have been thinking about what you told me about your husband and how quiet the house has become in "
     "the evenings since he died.", True),
    # the Therapist's own words, with one short phrase of the advice
    ("You said the house has become so quiet. What are the evenings like for you now, on your own?", False),
])
def test_experiment_1_counts_scripted_turns_without_failing_the_session(opening: str, scripted: bool) -> None:
    from psysim.dialogue.integrity import SessionInput, course_integrity

    sessions = [SessionInput(session=1, status="complete", feedback_after=FEEDBACK),
                SessionInput(session=2, status="complete")]
    result = course_integrity(course(opening), sessions, [], load_integrity_config())
    flags = [f for f in result.flags if f.kind == "expert_authored"]
    assert result.value["expert_authored"] == float(scripted)
    if scripted:
        [flag] = flags
        assert (flag.session, flag.turn, flag.role, flag.failure) == (2, 2, "therapist", False)
    assert [s.status for s in result.sessions] == ["pass", "pass"]  # following the advice is the treatment
    assert result.value["flagged"] == 0


# --- the report: expert authorship per setting and condition ------------------------------------

SCRIPTED_LINE = "I have been thinking about what you told me about the evenings and how quiet the house is now"


def exp1_expert(call: Call) -> str:
    return f'Open with the loss. Say "{SCRIPTED_LINE}" and then wait.'


def exp1_therapist(call: Call) -> str:
    # under `expert` the therapist says the Expert's line in every turn after feedback; else its own words
    if SCRIPTED_LINE in call.system:
        return SCRIPTED_LINE + "."
    return f"Therapist turn {sum(1 for m in call.messages if m.role == 'assistant') + 1} of this session."


def test_report_counts_expert_authorship_per_setting_and_condition(tmp_path: Path) -> None:
    import pandas as pd

    from psysim.analysis.cli import main as report_main
    from psysim.analysis.frames import INTEGRITY
    from psysim.analysis.integrity import expert_authorship
    from psysim.tasks.iterative_feedback import iterative_feedback

    from mock_roles import client_replier

    logs = tmp_path / "logs"
    recorder = Recorder()
    exp2_roles = {"therapist": mock_role("therapist", recorder, therapist), "expert": mock_role("expert", recorder, expert),
                  "client": mock_role("client", recorder, client)}
    [log] = eval(human_comparison(snippets=6), model=main_model(recorder), model_roles=exp2_roles,
                 log_dir=str(logs), display="none")
    copied = sum(1 for s in log.samples if s.scores["simulation_integrity"].value["expert_authored"])
    for condition in ("expert", "none"):
        roles = {"therapist": mock_role("therapist", recorder, exp1_therapist),
                 "client": mock_role("client", recorder, client_replier()),
                 "expert": mock_role("expert", recorder, exp1_expert)}
        [exp1] = eval(iterative_feedback(condition=condition, sessions=2, turns=2), model=main_model(recorder),
                      model_roles=roles, limit=1, log_dir=str(logs), display="none")
        assert exp1.status == "success", exp1.error
    frames = read_frames(logs)
    table = expert_authorship(frames.ratings[INTEGRITY], frames.exp2).set_index(["task", "condition"])
    exp2 = table.loc[("human_comparison", "–")]
    assert 0 < copied < 6
    assert (exp2["units"], exp2["expert_authored"], exp2["excluded"]) == (6, copied, copied)
    assert exp2["word limit"] == 105 and exp2["re-asks"] == 2 * copied and exp2["kept over limit"] == copied
    # Experiment 1: both therapist turns of session 2 say the Expert's line; counted, never excluded
    scripted = table.loc[("iterative_feedback", "expert")]
    assert (scripted["units"], scripted["expert_authored"], scripted["excluded"]) == (2, 2, 0)
    # its feedback quotes a 19-word line: re-asked twice as a written line, then kept over the limit
    assert scripted["word limit"] == 200 and scripted["re-asks"] == 2 and scripted["kept over limit"] == 1
    own = table.loc[("iterative_feedback", "none")]
    assert (own["units"], own["expert_authored"]) == (0, 0)
    # the report writes it as a CSV and a table of the integrity section
    out = tmp_path / "report"
    assert report_main([str(logs), "-o", str(out), "--quiet", "--bootstrap", "20"]) == 0
    written = pd.read_csv(out / "expert_authorship.csv")
    assert list(written["expert_authored"]) == list(table["expert_authored"])
    assert "**Expert authorship.**" in (out / "summary.md").read_text()
    assert "Expert authorship per task, setting and condition" in (out / "index.html").read_text()
