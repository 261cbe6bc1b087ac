"""Integrity detectors on scripted dialogues: known echoes, placeholders, role breaks and
restatements are flagged; a clean dialogue and real advice are not."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from psysim.calls.generation import StopRecord
from psysim.dialogue.integrity import (
    SessionInput,
    comparison_integrity,
    copied_share,
    course_integrity,
    dialogue_flags,
    feedback_flags,
    load_integrity_config,
)
from psysim.dialogue.transcript import Turn

CONFIG = load_integrity_config()

CLEAN = [
    ("therapist", "Hello Margaret, thank you for coming in today. What would you like to talk about?"),
    ("client", "I suppose it's the evenings. Since Tom died the house is so quiet I can't stand it."),
    ("therapist", "The quiet in the evenings sounds especially hard. What do those evenings look like for you now?"),
    ("client", "Mostly I sit with the television on and don't really watch it. Then I go to bed too early."),
]
# a later session of the same course, in other words (CLEAN again would replay session 1)
CLEAN_LATER = [
    ("therapist", "Good to see you again, Margaret. Last time we talked about your evenings; how was this week?"),
    ("client", "A little better, I think. I went to choir on Thursday, though I left before the tea."),
    ("therapist", "You went back to choir, even if only for part of it. What made you leave early?"),
    ("client", "Everyone asked after me at once. I didn't want to cry in front of them, so I slipped out."),
]
# the session: both speakers repeat one assistant line; a placeholder for the name
BROKEN = [
    ("therapist", "Hello, [client's name]. I'm here to help you. How can I assist you today?"),
    ("client", "Hello, Margaret. I'm here to help you. How can I assist you today?"),
    ("therapist", "Hello, Margaret. I'm here to help you. How can I assist you today?"),
    ("client", "Hello, Margaret. I'm here to help you. How can I assist you today?"),
]
ADVICE = (
    "You opened warmly and your reflection of the quiet evenings was accurate. Next time, ask what "
    "a good evening used to look like for her and agree on one small goal for the week, such as a "
    "phone call with her sister. Check how the session felt for her before you close."
)


def turns(session: int, script: list[tuple[str, str]]) -> list[Turn]:
    return [Turn(session=session, speaker=speaker, text=text) for speaker, text in script]  # type: ignore[arg-type]


def kinds(flags) -> list[tuple[str, str, int | None]]:
    return sorted((f.kind, f.role, f.turn) for f in flags)


def test_clean_dialogue_has_no_flags() -> None:
    assert dialogue_flags(turns(1, CLEAN), 1, CONFIG) == []


def test_broken_dialogue_flags_echo_placeholder_and_role_break() -> None:
    flags = dialogue_flags(turns(2, BROKEN), 2, CONFIG)
    assert all(f.session == 2 for f in flags)
    found = kinds(flags)
    assert ("placeholder", "therapist", 1) in found
    assert ("role_break", "client", 1) in found and ("role_break", "client", 2) in found
    # the client echoes the therapist's turn; the therapist echoes the client's and its own
    assert ("echo", "client", 1) in found and ("echo", "therapist", 2) in found and ("echo", "client", 2) in found
    assert ("echo", "therapist", 1) not in found  # the first turn has nothing to echo
    placeholder = next(f for f in flags if f.kind == "placeholder")
    assert placeholder.evidence == "[client's name]" and placeholder.step == "session_2_turn_1"


@pytest.mark.parametrize(
    "text, flagged",
    [
        ("Hi {name}, how are you?", True),
        ("Good to see you, <client name>.", True),
        ("Thank you, [Your Name]", True),
        ("[pauses] I don't know where to start.", False),
        ("My son said {something} about it, I forget.", False),
    ],
)
def test_placeholders(text: str, flagged: bool) -> None:
    flags = dialogue_flags(turns(1, [("therapist", "Hello."), ("client", text)]), 1, CONFIG)
    assert any(f.kind == "placeholder" for f in flags) is flagged


@pytest.mark.parametrize(
    "speaker, text, flagged",
    [
        ("client", "As an AI, I don't have feelings, but I can help you explore yours.", True),
        ("therapist", "As an AI language model I cannot provide therapy.", True),
        ("client", "What brings you here today? I'm happy to help.", True),
        ("therapist", "What brings you here today?", False),  # the therapist's own line
        ("therapist", "That sounds hard.\nClient: Yes, it is.", True),  # writes the client's line
        ("client", "I don't know how anyone can help me, honestly. I've tried everything.", False),
    ],
)
def test_role_breaks(speaker: str, text: str, flagged: bool) -> None:
    script = [("therapist", "Hello, how are you?"), ("client", text)] if speaker == "client" else [("therapist", text)]
    flags = dialogue_flags(turns(1, script), 1, CONFIG)
    assert any(f.kind == "role_break" and f.role == speaker for f in flags) is flagged


def test_replayed_earlier_session_is_an_echo() -> None:
    # seed 0 of the offline model before client v4 / therapist v3: session 2 replayed session 1
    course = turns(1, CLEAN) + turns(2, CLEAN)
    flags = dialogue_flags(course, 2, CONFIG)
    assert kinds(flags) == [("echo", "client", 1), ("echo", "client", 2), ("echo", "therapist", 1), ("echo", "therapist", 2)]
    assert all(f.detail.startswith("repeats its own turn of session 1") for f in flags)
    assert dialogue_flags(course, 1, CONFIG) == []  # the first session has no earlier one


def test_new_session_in_other_words_is_not_an_echo() -> None:
    assert dialogue_flags(turns(1, CLEAN) + turns(2, CLEAN_LATER), 2, CONFIG) == []


def test_short_ritual_opening_may_recur_across_sessions() -> None:
    opening = "Good morning, Margaret. How are you feeling today?"  # 8 words, under cross_session_min_words
    course = turns(1, [("therapist", opening), *CLEAN[1:]]) + turns(2, [("therapist", opening), *CLEAN_LATER[1:]])
    assert len(opening.split()) < CONFIG.cross_session_min_words
    assert dialogue_flags(course, 2, CONFIG) == []
    # the same opening twice within a session is still an echo (the within-session rule is unchanged)
    same = turns(1, [("therapist", opening), ("client", "Fine."), ("therapist", opening)])
    assert kinds(dialogue_flags(same, 1, CONFIG)) == [("echo", "therapist", 2)]


def test_short_repeats_are_not_echoes() -> None:
    script = [("therapist", "Okay."), ("client", "Okay."), ("therapist", "Go on, please."), ("client", "Okay.")]
    assert dialogue_flags(turns(1, script), 1, CONFIG) == []


def test_expert_restatement_is_flagged_and_advice_is_not() -> None:
    session = turns(1, CLEAN)
    restated = "Transcript:\n" + "\n".join(f"{s.title()}: {t}" for s, t in CLEAN) + "\nGood job."
    [flag] = feedback_flags(1, restated, session, CONFIG)
    assert flag.kind == "restatement" and flag.role == "expert" and flag.step == "session_1_feedback"
    assert feedback_flags(1, ADVICE, session, CONFIG) == []
    # quoting one line to discuss it is advice, not a restatement
    quoting = f'When you said "{CLEAN[2][1]}", that was a good reflection. {ADVICE}'
    assert copied_share(quoting, [t.text for t in session], CONFIG.restatement_ngram)[0] < CONFIG.restatement_max_share
    assert feedback_flags(1, quoting, session, CONFIG) == []


def sessions_input(statuses: list[str], feedback: dict[int, str]) -> list[SessionInput]:
    return [
        SessionInput(session=k, status=status, feedback_after=feedback.get(k))
        for k, status in enumerate(statuses, start=1)
    ]


def test_session_exclusion_rule() -> None:
    # session 2 broken: it fails, session 3 (clean) is excluded because it depends on session 2
    course = turns(1, CLEAN) + turns(2, BROKEN) + turns(3, CLEAN_LATER)
    result = course_integrity(course, sessions_input(["complete"] * 3, {1: ADVICE, 2: ADVICE}), [], CONFIG)
    assert [(s.session, s.status) for s in result.sessions] == [(1, "pass"), (2, "fail"), (3, "excluded")]
    assert result.sessions[1].reason.startswith("integrity: ")
    assert result.sessions[2].reason == "integrity_upstream: depends on session 2, which failed integrity"
    assert result.value["held_sessions"] == 3 and result.value["sessions_failed"] == 1
    assert result.value["sessions_excluded"] == 2 and result.value["excluded_rate"] == pytest.approx(2 / 3)
    assert result.value["client_flag_rate"] == pytest.approx(2 / 6)
    assert result.value["expert_flag_rate"] == 0 and result.value["flagged"] == 1
    # flagged replies: therapist turns 1 and 2 and client turns 1 and 2 of session 2, of 12 turns + 2 feedbacks
    assert (result.value["replies"], result.value["flagged_replies"]) == (14, 4)


def test_restated_feedback_fails_the_next_session() -> None:
    course = turns(1, CLEAN) + turns(2, CLEAN_LATER)
    restated = "\n".join(f"{s.title()}: {t}" for s, t in CLEAN)
    result = course_integrity(course, sessions_input(["complete", "complete"], {1: restated}), [], CONFIG)
    assert [s.status for s in result.sessions] == ["pass", "fail"]
    assert "feedback read before it" in result.sessions[1].reason
    assert result.value["expert_flag_rate"] == 1 and result.value["restatement"] == 1


def test_clean_course_passes_and_counts_failed_calls_and_truncation() -> None:
    course = turns(1, CLEAN) + turns(2, CLEAN_LATER[:1])
    records = [
        SessionInput(session=1, status="complete", feedback_after=ADVICE),
        SessionInput(session=2, status="failed", failed_calls=1),
        SessionInput(session=3, status="not_held"),
    ]
    stops = [StopRecord(role="client", step="session_1_turn_2", stop_reason="max_tokens"),
             StopRecord(role="client", step="session_1_rating", stop_reason="max_tokens")]
    result = course_integrity(course, records, stops, CONFIG)
    assert [s.status for s in result.sessions] == ["pass", "failed_call", "not_held"]
    assert result.value["flagged"] == 0 and result.value["session_fail_rate"] == 0
    assert result.value["held_sessions"] == 1 and result.value["failed_calls"] == 1
    assert result.value["truncated"] == 1  # the truncated rating is the failed-call record's


def test_none_condition_has_no_expert_rate() -> None:
    result = course_integrity(turns(1, CLEAN), sessions_input(["complete"], {}), [], CONFIG)
    assert math.isnan(result.value["expert_flag_rate"])


def test_experiment2_identical_revision_is_noted_not_failed() -> None:
    context = turns(1, CLEAN[:2])
    human = CLEAN[2][1]
    same = comparison_integrity(human, context, {"human": human, "llm": CLEAN[2][1] + " Tell me more.",
                                                  "revised": human}, ADVICE, "therapist", 0, [], CONFIG)
    [flag] = same.flags
    assert flag.kind == "revision_identical" and not flag.failure
    assert same.value["revision_identical"] == 1 and same.value["flagged"] == 0
    other = comparison_integrity(human, context, {"human": human, "llm": "Tell me about the evenings.",
                                                   "revised": "What was a good evening like, before?"},
                                 ADVICE, "therapist", 0, [], CONFIG)
    assert other.flags == [] and other.value["revision_identical"] == 0
    broken = comparison_integrity(human, context, {"human": human, "llm": "Hello [client's name], how can I assist you?"},
                                  "", "therapist", 1, [], CONFIG)
    assert [f.kind for f in broken.flags] == ["placeholder"]
    assert broken.value["therapist_flag_rate"] == 1 and math.isnan(broken.value["revision_identical"])
    assert broken.value["failed_calls"] == 1


def test_bad_integrity_file_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "integrity.yaml"
    bad.write_text("version: 1\nnormalize: {min_words: 5}\n")
    with pytest.raises(ValueError, match="integrity.yaml: missing or malformed key"):
        load_integrity_config(bad)
