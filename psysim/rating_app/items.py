"""The items of a rating study, read from finished Inspect logs.

An item is one context shown to raters and the responses rated in it:

* Experiment 2 (``human_comparison``): a snippet's context and each candidate response the log
  holds (human, llm, revised), one item per sample and epoch (the llm and revised responses
  differ between epochs). A candidate that was not produced is not in the log, so not rated.
* Rater validity (``rater_validity``): a snippet's context and its human response, one item per
  snippet (its epochs rate the same text).
* Experiment 1 (``iterative_feedback``): the persona and every session held so far, as the Client
  LLM saw them when it rated session k, without its ratings or the baseline; one item per complete
  session (a session that failed or was not held was not rated by the LLM either).

Each response carries its ids in the logs (log, eval id, sample id, epoch, response key) so that
human ratings are matched with the Client LLM's in ``psysim-report --human-ratings``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from inspect_ai.log import EvalSample, read_eval_log

from psysim.dialogue.transcript import SPEAKER_LABELS, Turn
from psysim.inputs.personas import Persona
from psysim.inputs.snippets import Snippet
from psysim.prompts import prompt
from psysim.rating_app.template import ItemKind
from psysim.solvers.course import STORE_MISSING, TherapyCourse, course_missing
from psysim.study.log_series import (
    LogEntry,
    LogSelection,
    Unreadable,
    load_selection,
    select_logs,
    series_key,
)

EXP1_TASK, EXP2_TASK, VALIDITY_TASK = "iterative_feedback", "human_comparison", "rater_validity"
TASKS = (EXP2_TASK, VALIDITY_TASK, EXP1_TASK)
CLIENT_VIEW = {"client": "You", "therapist": "Therapist"}
"""Speaker labels of Experiment 2's rating prompt (``scorers.client_rating``): the client is "You"."""


@dataclass(frozen=True)
class Line:
    """One turn as shown to raters."""

    speaker: str
    text: str
    session: int | None = None


@dataclass(frozen=True)
class Response:
    key: str
    """``human`` / ``llm`` / ``revised`` (Experiment 2 and validity) or ``session_<k>`` (Experiment 1)."""
    text: str


@dataclass
class Item:
    """One context and the responses rated in it."""

    task: str
    kind: ItemKind
    log: str
    eval_id: str
    sample_id: str
    epoch: int
    context_key: str
    """Responses sharing it never follow each other in a rater's order (each Experiment 1 session is its
    own context, so that one course can be rated: its sessions may follow each other)."""
    persona: str = ""
    lines: list[Line] = field(default_factory=list)
    responses: list[Response] = field(default_factory=list)
    session: int | None = None
    role: str = "study"
    """``study`` (from the logs), ``practice`` or ``gold`` (from an organiser's file: :mod:`psysim.rating_app.extra_items`)."""
    expected: str | None = None
    """A gold item's expected side of the scale: ``low`` or ``high``."""


@dataclass
class Skipped:
    """A sample that gives no item, and why."""

    log: str
    sample_id: str
    epoch: int
    reason: str


def select(paths: Iterable[str | Path]) -> LogSelection:
    """The logs to read: files and directories, through the one log-identity rule (:mod:`psysim.study.log_series`)."""
    entries: list[LogEntry] = []
    unreadable = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            selection = load_selection(path)
            entries += selection.used + [old for old, _ in selection.superseded]
            entries += [d.entry for d in selection.duplicates]  # dropped again, once, by select_logs below
            unreadable += selection.unreadable
        elif path.is_file():
            try:
                header = read_eval_log(str(path), header_only=True)
                entries.append(LogEntry(path=str(path), header=header, key=series_key(header)))
            except Exception as ex:  # named and skipped, like an unreadable log in a directory
                unreadable.append(Unreadable(str(path), f"not a readable Inspect log ({type(ex).__name__}: {ex})"))
        else:
            raise FileNotFoundError(f"{path}: no such log file or directory")
    unique = {e.path: e for e in entries}
    return select_logs(unique.values(), unreadable)


def read_items(entry: LogEntry) -> tuple[list[Item], list[Skipped]]:
    """Every item of one log, and the samples that give none (each with the reason).

    Raises:
        ValueError: a task without rating items, or a log whose samples cannot be read.
    """
    task = entry.key.task
    if task not in READERS:
        raise ValueError(f"{entry.name}: task '{task}' has no rating items (expected one of {', '.join(TASKS)})")
    try:
        log = read_eval_log(entry.path)
    except Exception as ex:  # a header that reads but samples that do not: named, never a traceback
        raise ValueError(f"{entry.name}: samples unreadable ({type(ex).__name__}: {ex})") from ex
    items: list[Item] = []
    skipped: list[Skipped] = []
    seen: set[str] = set()
    for sample in log.samples or []:
        where = Skipped(entry.name, str(sample.id), int(sample.epoch), "")
        if sample.error is not None:
            skipped.append(_with(where, f"sample_error: {str(sample.error.message).splitlines()[0][:200]}"))
            continue
        if task == VALIDITY_TASK and str(sample.id) in seen:
            continue  # the same snippet again in a later epoch
        seen.add(str(sample.id))
        found, reason = READERS[task](entry, sample)
        items += found
        if reason:
            skipped.append(_with(where, reason))
    return items, skipped


def _with(skipped: Skipped, reason: str) -> Skipped:
    skipped.reason = reason
    return skipped


def _snippet_lines(snippet: Snippet) -> list[Line]:
    return [Line(CLIENT_VIEW[turn.speaker], turn.text) for turn in snippet.context]


def _base(entry: LogEntry, sample: EvalSample, kind: ItemKind, context_key: str) -> Item:
    return Item(task=entry.key.task, kind=kind, log=entry.name, eval_id=entry.eval_id, sample_id=str(sample.id),
                epoch=int(sample.epoch), context_key=context_key)


def exp2_items(entry: LogEntry, sample: EvalSample) -> tuple[list[Item], str]:
    """One item: the snippet's context and the candidates the scorer rated."""
    score = (sample.scores or {}).get("client_rating")
    if score is None:
        return [], "not_scored: the sample has no client_rating score"
    candidates = (score.metadata or {}).get("candidates") or {}
    snippet = Snippet.model_validate(sample.metadata["snippet"])
    item = _base(entry, sample, "response", f"{entry.eval_id}:{sample.id}:{sample.epoch}")
    item.lines = _snippet_lines(snippet)
    item.responses = [Response(kind, text) for kind, text in candidates.items() if text]
    unavailable = sorted(set(("human", "llm", "revised")) - set(candidates))
    return [item], (f"upstream_failed: not produced, so not rated: {', '.join(unavailable)}" if unavailable else "")


def validity_items(entry: LogEntry, sample: EvalSample) -> tuple[list[Item], str]:
    """One item: the snippet's context and its human response."""
    snippet = Snippet.model_validate(sample.metadata["snippet"])
    item = _base(entry, sample, "response", f"{entry.eval_id}:{sample.id}")
    item.lines = _snippet_lines(snippet)
    item.responses = [Response("human", snippet.human_response)]
    return [item], ""


def exp1_items(entry: LogEntry, sample: EvalSample) -> tuple[list[Item], str]:
    """One item per complete session: the persona and every turn up to the end of that session."""
    course = sample.store_as(TherapyCourse)
    if course_missing(course):
        return [], STORE_MISSING  # said, not silently dropped (46 items of 48 built without a word)
    persona = prompt("client", "persona", p=Persona.model_validate(sample.metadata["persona"]))
    items = []
    for record in course.sessions:
        if record.status != "complete":
            continue
        turns: list[Turn] = [t for t in course.turns if t.session <= record.session]
        item = _base(entry, sample, "session", f"{entry.eval_id}:{sample.id}:{sample.epoch}:{record.session}")
        item.persona, item.session = persona, record.session
        item.lines = [Line(SPEAKER_LABELS[t.speaker], t.text, t.session) for t in turns]
        item.responses = [Response(f"session_{record.session}", f"Session {record.session} has just ended.")]
        items.append(item)
    held = {r.session for r in course.sessions if r.status == "complete"}
    not_rated = [r.session for r in course.sessions if r.session not in held]
    return items, (f"sessions not complete, so not rated: {not_rated}" if not_rated else "")


READERS = {EXP2_TASK: exp2_items, VALIDITY_TASK: validity_items, EXP1_TASK: exp1_items}
