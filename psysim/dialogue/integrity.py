"""Simulation integrity: replies that arrived but show the simulation stopped being one.

Failed calls (no usable reply: :mod:`psysim.calls.failed_calls`) are counted here from the records
the solvers keep, never re-detected. This module flags replies that *are* replies but are wrong
for the role that gave them:

- ``echo``: a therapist or client turn that repeats the other speaker's previous turn, or one of
  its own earlier turns in the same session, or (if long enough) one of its own turns of an
  earlier session (difflib similarity of normalized text).
- ``role_break``: the client speaking as the therapist or an assistant ("How can I assist
  you?"), any role stepping out of the role-play ("As an AI ..."), or a turn writing the other
  speaker's lines.
- ``placeholder``: a template slot left unfilled (``[client's name]``, ``<name>``, ``{name}``).
- ``restatement``: Expert feedback that mostly copies the session's transcript instead of
  advising (share of its words in long runs shared with the transcript).
- ``expert_authored`` (Experiment 2): a Therapist revision that copies the Expert's critique (share
  of its words in long runs shared with the critique): the Expert wrote the "revised" response.
- ``revision_identical`` (Experiment 2, information only): the revision is the human turn again.

Thresholds and phrase lists live in ``psysim/data/integrity.yaml``. Every flag names the role,
the session and the turn (the exchange number, as in the call step ``session_<k>_turn_<n>``).

Experiment 1 sessions: a held session *fails* when a turn of it is flagged or the feedback the
therapist read before it is flagged; every later session of that course is *excluded* too, since
its dialogue (and the client's memory) depends on the failed one.
"""

from __future__ import annotations

import difflib
import math
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field

from psysim.calls.generation import StopRecord
from psysim.dialogue.transcript import Turn, session_turns
from psysim.inputs.data_files import package_file

INTEGRITY_FILE = package_file("data", "integrity.yaml")

FlagKind = Literal["echo", "role_break", "placeholder", "restatement", "expert_authored", "revision_identical"]
FLAG_KINDS: tuple[str, ...] = ("echo", "role_break", "placeholder", "restatement", "expert_authored")
"""The kinds that fail a turn (``revision_identical`` is information only)."""
SessionIntegrityStatus = Literal["pass", "fail", "excluded", "failed_call", "not_held"]
EVIDENCE_CHARS = 160


class IntegrityConfig(BaseModel):
    """The contents of ``integrity.yaml`` (compiled patterns built on demand)."""

    version: int
    min_words: int
    echo_threshold: float
    cross_session_min_words: int
    client_as_therapist: list[str]
    assistant: list[str]
    speaks_for_other: dict[str, str]
    placeholders: list[str]
    restatement_ngram: int
    restatement_max_share: float
    expert_authored_ngram: int
    expert_authored_max_share: float
    revision_identical_threshold: float
    max_flagged_reply_share: float
    report_warning_share: float

    def compiled(self, patterns: list[str]) -> list[re.Pattern[str]]:
        return [_compile(p) for p in patterns]


@lru_cache(maxsize=256)
def _compile(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


@lru_cache(maxsize=8)
def load_integrity_config(path: Path = INTEGRITY_FILE) -> IntegrityConfig:
    """Read the thresholds and phrase lists.

    Raises:
        ValueError: a missing key or a pattern that is not a regular expression, naming the file.
    """
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    try:
        config = IntegrityConfig(
            version=data["version"],
            min_words=data["normalize"]["min_words"],
            echo_threshold=data["echo"]["threshold"],
            cross_session_min_words=data["echo"]["cross_session_min_words"],
            client_as_therapist=data["role_break"]["client_as_therapist"],
            assistant=data["role_break"]["assistant"],
            speaks_for_other=data["role_break"]["speaks_for_other"],
            placeholders=data["placeholder"]["patterns"],
            restatement_ngram=data["restatement"]["ngram"],
            restatement_max_share=data["restatement"]["max_share"],
            expert_authored_ngram=data["expert_authored"]["ngram"],
            expert_authored_max_share=data["expert_authored"]["max_share"],
            revision_identical_threshold=data["revision_identical"]["threshold"],
            max_flagged_reply_share=data["check_gate"]["max_flagged_reply_share"],
            report_warning_share=data["report_warning_share"],
        )
    except (KeyError, TypeError) as ex:
        raise ValueError(f"{path}: missing or malformed key {ex}") from ex
    for pattern in [*config.client_as_therapist, *config.assistant, *config.placeholders,
                    *config.speaks_for_other.values()]:
        try:
            _compile(pattern)
        except re.error as ex:
            raise ValueError(f"{path}: pattern {pattern!r} is not a regular expression: {ex}") from ex
    return config


class Flag(BaseModel):
    """One integrity flag, pointing at the reply it is about."""

    kind: FlagKind
    role: str
    session: int | None = None
    """Experiment 1 session (None in Experiment 2)."""
    turn: int | None = None
    """Exchange number within the session (the ``n`` of step ``session_<k>_turn_<n>``); None for feedback."""
    step: str
    """The call step (``session_2_turn_3``, ``session_1_feedback``, ``llm_response``, ``revision``)."""
    evidence: str
    """A snippet of the flagged text."""
    detail: str
    failure: bool = True
    """False for information-only flags (``revision_identical``)."""


class SessionIntegrity(BaseModel):
    """Integrity verdict of one Experiment 1 session; ``reason`` says why it is not ``pass``."""

    session: int
    status: SessionIntegrityStatus
    reason: str | None = None


class CourseIntegrity(BaseModel):
    flags: list[Flag] = Field(default_factory=list)
    sessions: list[SessionIntegrity] = Field(default_factory=list)
    value: dict[str, float] = Field(default_factory=dict)


class SessionInput(BaseModel):
    """What the integrity check needs of one session record (kept free of solver types)."""

    session: int
    status: str
    """``complete``, ``failed`` or ``not_held`` (the failed-call record's status)."""
    feedback_after: str | None = None
    failed_calls: int = 0
    """Failed calls recorded for this session (its own failure, a failed feedback call)."""
    feedback_check: dict[str, Any] | None = None
    """How the Expert's feedback after this session kept its limits (``LimitCheck``; None: none)."""


# --- text similarity ---------------------------------------------------------------------------

_NON_WORD = re.compile(r"[^\w']+")


def normalize(text: str) -> str:
    """Lower case, punctuation to spaces, whitespace collapsed."""
    return " ".join(_NON_WORD.sub(" ", text.lower()).split())


def similarity(a: str, b: str) -> float:
    """difflib ratio (0-1) of the normalized texts."""
    return difflib.SequenceMatcher(None, normalize(a), normalize(b), autojunk=False).ratio()


def copied_share(text: str, sources: list[str], ngram: int) -> tuple[float, str]:
    """Share of ``text``'s words inside runs of >= ``ngram`` words that occur in ``sources``.

    Returns the share and the first copied run (for evidence).
    """
    words = normalize(text).split()
    if len(words) < ngram:
        return 0.0, ""
    grams: set[tuple[str, ...]] = set()
    for source in sources:
        tokens = normalize(source).split()
        grams.update(tuple(tokens[i:i + ngram]) for i in range(len(tokens) - ngram + 1))
    covered = [False] * len(words)
    first: tuple[int, int] | None = None
    for i in range(len(words) - ngram + 1):
        if tuple(words[i:i + ngram]) in grams:
            covered[i:i + ngram] = [True] * ngram
            first = first or (i, i + ngram)
    span = " ".join(words[first[0]:first[1]]) if first else ""
    return sum(covered) / len(words), span


def _snippet(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= EVIDENCE_CHARS else text[: EVIDENCE_CHARS - 1] + "…"


def _first_match(patterns: list[re.Pattern[str]], text: str) -> re.Match[str] | None:
    for pattern in patterns:
        match = pattern.search(text)
        if match:
            return match
    return None


# --- detectors ---------------------------------------------------------------------------------


def reply_flags(text: str, role: str, step: str, config: IntegrityConfig, *,
                session: int | None = None, turn: int | None = None) -> list[Flag]:
    """Role-break and placeholder flags of one reply (any role)."""
    flags: list[Flag] = []

    def add(kind: FlagKind, match: re.Match[str], detail: str) -> None:
        flags.append(Flag(kind=kind, role=role, session=session, turn=turn, step=step,
                          evidence=_snippet(match.group(0)), detail=detail))

    breaks = config.compiled(config.assistant)
    if role == "client":
        breaks = config.compiled(config.client_as_therapist) + breaks
    match = _first_match(breaks, text)
    if match:
        add("role_break", match, f"the {role} spoke as a therapist or assistant")
    other = config.speaks_for_other.get(role)
    if other and (match := _compile(other).search(text)):
        add("role_break", match, f"the {role} wrote the other speaker's lines")
    match = _first_match(config.compiled(config.placeholders), text)
    if match:
        add("placeholder", match, "an unfilled template placeholder")
    return flags


def dialogue_flags(turns: list[Turn], session: int, config: IntegrityConfig) -> list[Flag]:
    """Echo, role-break and placeholder flags of every turn of one session.

    ``turns`` may hold the whole course: a turn of ``session`` that repeats one of the same
    speaker's turns of an earlier session is an echo too, if it has at least
    ``cross_session_min_words`` words (a short ritual greeting may recur; a replayed turn may not).
    """
    flags: list[Flag] = []
    said = session_turns(turns, session)
    for i, turn in enumerate(said):
        exchange = i // 2 + 1
        step = f"session_{session}_turn_{exchange}"
        flags += reply_flags(turn.text, turn.speaker, step, config, session=session, turn=exchange)
        words = len(normalize(turn.text).split())
        if words < config.min_words:
            continue
        candidates = [t for t in said[:i] if t.speaker == turn.speaker]
        if i and said[i - 1].speaker != turn.speaker:
            candidates.append(said[i - 1])
        if words >= config.cross_session_min_words:
            candidates += [t for t in turns if t.session < session and t.speaker == turn.speaker]
        echo = _echo_of(turn, candidates, config)
        if echo is not None:
            source, ratio = echo
            if source.session != session:
                whose = f"its own turn of session {source.session}"
            elif source.speaker == turn.speaker:
                whose = "its own earlier turn"
            else:
                whose = f"the {source.speaker}'s previous turn"
            flags.append(Flag(kind="echo", role=turn.speaker, session=session, turn=exchange, step=step,
                              evidence=_snippet(turn.text), detail=f"repeats {whose} (similarity {ratio:.2f})"))
    return flags


def _echo_of(turn: Turn, candidates: list[Turn], config: IntegrityConfig) -> tuple[Turn, float] | None:
    """The candidate ``turn`` is most similar to, if at or above the echo threshold."""
    best: tuple[Turn, float] | None = None
    for candidate in candidates:
        ratio = similarity(turn.text, candidate.text)
        if ratio >= config.echo_threshold and (best is None or ratio > best[1]):
            best = (candidate, ratio)
    return best


def feedback_flags(session: int | None, feedback: str, transcript: list[Turn], config: IntegrityConfig,
                   *, step: str | None = None, role: str = "expert") -> list[Flag]:
    """Flags of the Expert's feedback on ``session``: restatement of ``transcript``, role breaks,
    placeholders. The flags carry the session the feedback is *about* (None in Experiment 2)."""
    step = step or f"session_{session}_feedback"
    flags = reply_flags(feedback, role, step, config, session=session)
    share, span = copied_share(feedback, [t.text for t in transcript], config.restatement_ngram)
    if share >= config.restatement_max_share:
        flags.append(Flag(kind="restatement", role=role, session=session, step=step, evidence=_snippet(span),
                          detail=f"{share:.0%} of the feedback's words copy the transcript "
                                 f"(runs of {config.restatement_ngram}+ words; limit {config.restatement_max_share:.0%})"))
    return flags


# --- Experiment 1: a course --------------------------------------------------------------------


def course_integrity(
    turns: list[Turn],
    sessions: list[SessionInput],
    stops: list[StopRecord],
    config: IntegrityConfig | None = None,
) -> CourseIntegrity:
    """Flags, per-session verdicts and the numeric score value of one course.

    ``value`` keys (numbers, so Inspect's metrics apply; NaN where there is nothing to rate):
    ``therapist_flag_rate``, ``client_flag_rate``, ``expert_flag_rate`` (flagged replies / replies
    of that role), ``replies`` and ``flagged_replies`` (all roles), ``echo``, ``role_break``, ``placeholder``, ``restatement`` (flag counts),
    ``truncated`` (dialogue and feedback calls cut at their token cap), ``failed_calls`` (from the
    session records), ``held_sessions``, ``sessions_failed``, ``sessions_excluded`` (failed plus
    the later sessions that depend on them), ``session_fail_rate``, ``excluded_rate``,
    ``flagged`` (1 if any flag); ``expert_authored`` (therapist turns copying the feedback they
    read: information) out of ``turns_after_feedback``; the Expert feedback's ``feedback_words``
    (mean) and ``feedback_words_max`` against ``feedback_word_limit``, ``feedback_reasks`` and
    ``feedback_over_limit`` (counts; NaN without Expert feedback or in logs before the limits).
    """
    config = config or load_integrity_config()
    flags: list[Flag] = []
    feedback_count = 0
    for record in sessions:
        flags += dialogue_flags(turns, record.session, config)
        if record.feedback_after:
            feedback_count += 1
            flags += feedback_flags(record.session, record.feedback_after,
                                    session_turns(turns, record.session), config)
            flags += scripted_turns(record.session + 1, record.feedback_after, turns, config)

    verdicts: list[SessionIntegrity] = []
    failed_at: int | None = None
    for record in sessions:
        k = record.session
        if record.status == "not_held":
            verdicts.append(SessionIntegrity(session=k, status="not_held", reason="not_held: the course ended earlier"))
            continue
        if record.status != "complete":
            verdicts.append(SessionIntegrity(session=k, status="failed_call", reason="failed_call: a call of this session failed"))
            continue
        own = [f for f in flags if f.failure and f.session == k and f.role != "expert"]
        before = [f for f in flags if f.failure and f.session == k - 1 and f.role == "expert"]
        if own or before:
            first = (own or before)[0]
            where = "the feedback read before it" if not own else f"{first.role} turn {first.turn}"
            reason = f"integrity: {first.kind} in {where}: {first.detail}"
            extra = len(own) + len(before) - 1
            verdicts.append(SessionIntegrity(session=k, status="fail",
                                             reason=reason + (f" (+{extra} more flags)" if extra else "")))
            failed_at = failed_at or k
        elif failed_at is not None:
            verdicts.append(SessionIntegrity(
                session=k, status="excluded",
                reason=f"integrity_upstream: depends on session {failed_at}, which failed integrity"))
        else:
            verdicts.append(SessionIntegrity(session=k, status="pass"))

    held = sum(1 for v in verdicts if v.status in ("pass", "fail", "excluded"))
    failed = sum(1 for v in verdicts if v.status == "fail")
    excluded = failed + sum(1 for v in verdicts if v.status == "excluded")
    value: dict[str, float] = {}
    replies = flagged_replies = 0
    for role in ("therapist", "client"):
        said = [(t.session, i // 2 + 1) for k in {s.session for s in sessions}
                for i, t in enumerate(session_turns(turns, k)) if t.speaker == role]
        flagged = {(f.session, f.turn) for f in flags if f.failure and f.role == role}
        value[f"{role}_flag_rate"] = _rate(len(flagged), len(said))
        replies, flagged_replies = replies + len(said), flagged_replies + len(flagged)
    flagged_feedback = {f.session for f in flags if f.failure and f.role == "expert"}
    value["expert_flag_rate"] = _rate(len(flagged_feedback), feedback_count)
    value["replies"] = float(replies + feedback_count)
    value["flagged_replies"] = float(flagged_replies + len(flagged_feedback))
    for kind in FLAG_KINDS:
        value[kind] = float(sum(1 for f in flags if f.kind == kind))
    value["truncated"] = float(truncated_calls(stops))
    value["failed_calls"] = float(sum(s.failed_calls for s in sessions))
    value["held_sessions"] = float(held)
    value["sessions_failed"] = float(failed)
    value["sessions_excluded"] = float(excluded)
    value["session_fail_rate"] = _rate(failed, held)
    value["excluded_rate"] = _rate(excluded, held)
    value["flagged"] = float(any(f.failure for f in flags))
    followed = {s.session + 1 for s in sessions if s.feedback_after}
    value["turns_after_feedback"] = float(sum(1 for t in turns if t.session in followed and t.speaker == "therapist"))
    checks = [s.feedback_check for s in sessions if s.feedback_after and s.feedback_check]
    words = [len((s.feedback_after or "").split()) for s in sessions if s.feedback_after and s.feedback_check]
    value["feedback_words"] = sum(words) / len(words) if words else math.nan
    value["feedback_words_max"] = float(max(words)) if words else math.nan
    value["feedback_word_limit"] = float(checks[0]["word_limit"]) if checks else math.nan
    value["feedback_reasks"] = float(sum(c["reasks"] for c in checks)) if checks else math.nan
    value["feedback_over_limit"] = float(sum(not c["within_limits"] for c in checks)) if checks else math.nan
    return CourseIntegrity(flags=flags, sessions=verdicts, value=value)


def truncated_calls(stops: list[StopRecord]) -> int:
    """Dialogue turns and feedback/critique/revision calls cut at their token cap (ratings are
    the failed-call records' ``truncated``, not counted here)."""
    return sum(1 for s in stops if s.stop_reason == "max_tokens" and "rating" not in s.step)


def _rate(count: int, total: int) -> float:
    return count / total if total else math.nan


# --- Experiment 2: one snippet -----------------------------------------------------------------


def comparison_integrity(
    human: str,
    context: list[Turn],
    candidates: dict[str, str],
    critique: str,
    reviser: str,
    failed_calls: int,
    stops: list[StopRecord],
    config: IntegrityConfig | None = None,
    critique_check: dict[str, Any] | None = None,
) -> CourseIntegrity:
    """Flags of one Experiment 2 snippet: the LLM response (echo of the client's last turn,
    role breaks, placeholders), the revision (likewise; identical to the human turn is noted),
    and the critique (role breaks, placeholders, restatement of the context).

    ``value``: ``therapist_flag_rate`` (flagged among the llm response and a therapist-written
    revision), ``expert_flag_rate`` (the critique, and an expert-written revision), ``replies`` and
    ``flagged_replies``, the flag
    counts, ``critique_words`` against ``critique_word_limit``, ``critique_reasks`` and
    ``critique_over_limit`` (1: kept over a limit after its attempts), ``revision_identical`` (1/0, NaN without a revision), ``truncated``, ``failed_calls``,
    ``flagged``.
    """
    config = config or load_integrity_config()
    flags: list[Flag] = []
    replies: list[tuple[str, str]] = []  # (role, step)
    last_client = next((t for t in reversed(context) if t.speaker == "client"), None)
    for kind, step, role in (("llm", "llm_response", "therapist"), ("revised", "revision", reviser)):
        text = candidates.get(kind)
        if text is None:
            continue
        replies.append((role, step))
        flags += reply_flags(text, "therapist" if role == "therapist" else role, step, config)
        if last_client and len(normalize(text).split()) >= config.min_words:
            ratio = similarity(text, last_client.text)
            if ratio >= config.echo_threshold:
                flags.append(Flag(kind="echo", role=role, step=step, evidence=_snippet(text),
                                  detail=f"repeats the client's last turn (similarity {ratio:.2f})"))
    if critique:
        replies.append(("expert", "critique"))
        flags += feedback_flags(None, critique, context, config, step="critique")
        revision = candidates.get("revised")
        if revision is not None and reviser == "therapist" and (flag := expert_authored(revision, critique, config)):
            flags.append(flag)
    value: dict[str, float] = {}
    for role in ("therapist", "expert"):
        steps = [step for r, step in replies if r == role]
        flagged = {f.step for f in flags if f.failure and f.step in steps}
        value[f"{role}_flag_rate"] = _rate(len(flagged), len(steps))
    value["replies"] = float(len(replies))
    value["flagged_replies"] = float(len({f.step for f in flags if f.failure}))
    revised = candidates.get("revised")
    value["revision_identical"] = math.nan
    # the Expert's length against its limit (expert.yaml: critique_form), its re-asks for a limit
    # (psysim/calls/critique.py), and whether the critique kept it; NaN without a critique (or,
    # for the limit fields, in a log written before the limits were enforced)
    value["critique_words"] = float(len(critique.split())) if critique else math.nan
    check = critique_check or {}
    value["critique_word_limit"] = float(check["word_limit"]) if critique and check else math.nan
    value["critique_reasks"] = float(check["reasks"]) if critique and check else math.nan
    value["critique_over_limit"] = float(not check["within_limits"]) if critique and check else math.nan
    if revised is not None:
        ratio = similarity(revised, human)
        value["revision_identical"] = float(ratio >= config.revision_identical_threshold)
        if value["revision_identical"]:
            flags.append(Flag(kind="revision_identical", role=reviser, step="revision", evidence=_snippet(revised),
                              detail=f"the revision is the human turn again (similarity {ratio:.2f})", failure=False))
    for kind in FLAG_KINDS:
        value[kind] = float(sum(1 for f in flags if f.kind == kind))
    value["truncated"] = float(truncated_calls(stops))
    value["failed_calls"] = float(failed_calls)
    value["flagged"] = float(any(f.failure for f in flags))
    return CourseIntegrity(flags=flags, value=value)


def scripted_turns(session: int, feedback: str, turns: list[Turn], config: IntegrityConfig) -> list[Flag]:
    """Experiment 1: therapist turns of ``session`` that copy the Expert feedback read before it.

    Information, never a failure: following the Expert's advice is the treatment. The flags are
    counted per condition (``expert_authored`` in the score value), so a report shows how much of
    the therapist's dialogue the Expert wrote.
    """
    flags = []
    for i, turn in enumerate(session_turns(turns, session)):
        if turn.speaker != "therapist" or len(normalize(turn.text).split()) < config.min_words:
            continue
        share, span = copied_share(turn.text, [feedback], config.expert_authored_ngram)
        if share >= config.expert_authored_max_share:
            exchange = i // 2 + 1
            flags.append(Flag(
                kind="expert_authored", role="therapist", session=session, turn=exchange,
                step=f"session_{session}_turn_{exchange}", evidence=_snippet(span), failure=False,
                detail=f"{share:.0%} of the turn's words copy the Expert feedback read before the session "
                       f"(runs of {config.expert_authored_ngram}+ words; information, not a failure)"))
    return flags


def expert_authored(revision: str, critique: str, config: IntegrityConfig) -> Flag | None:
    """The flag of a Therapist revision that copies the Expert's critique, or None.

    Near-verbatim copies are caught too: words are compared after :func:`normalize` (case and
    punctuation do not matter) and a changed word only breaks the run it is in.
    """
    share, span = copied_share(revision, [critique], config.expert_authored_ngram)
    if share < config.expert_authored_max_share:
        return None
    return Flag(kind="expert_authored", role="therapist", step="revision", evidence=_snippet(span),
                detail=f"{share:.0%} of the revision's words copy the Expert's critique (runs of "
                       f"{config.expert_authored_ngram}+ words; limit {config.expert_authored_max_share:.0%})")


def flags_metadata(flags: list[Flag]) -> list[dict[str, Any]]:
    return [flag.model_dump() for flag in flags]
