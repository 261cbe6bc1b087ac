"""The Expert's limits: a critique (Experiment 2) or feedback (Experiment 1) that advises and does
not write the therapist's words for them (issue 26).

A prompt alone ("Do not write the improved response yourself. At most 150 words.") did not hold:
the offline model wrote 350-400-word critiques ending in a full response, and the Therapist
copied it, so the "revised" candidate was the Expert's text. The limits are enforced here:

- **No response slot.** Experiment 2's critique is a form of short labelled fields (``WORKS:``,
  ``CHANGE:``, ``WHY:`` by default; ``expert.yaml: critique_form``), each with its own word limit.
  Only the fields are rendered into the text the Therapist reads; the form has no place for a
  response. Experiment 1's feedback stays free text (``feedback_form``: one word limit).
- **A token cap from the word limit** (:func:`form_max_tokens`) when the task gives none.
- **A re-ask** when a reply is over a limit, contains a written response anyway (a labelled
  response, a therapist line, or a long quoted passage: :func:`response_passage`), or (critique)
  lacks a field. The re-ask names the problem (``expert.yaml: limit_reask``); the rejected reply
  is never shown back (it would put the written response in front of the model again).
- After the attempts a reply whose fields were all found is kept with its problems recorded
  (:class:`LimitCheck`): the integrity check's ``expert_authored`` flag on the revision is the
  backstop that keeps a copied revision out of the statistics. A critique whose fields were never
  found fails the call (``critique_unparsed``): there is nothing to render.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache

from inspect_ai.model import ChatMessage, ChatMessageUser, GenerateConfig
from pydantic import BaseModel, Field

from psysim.calls.failed_calls import CallFailed, FailureRecord, reply_fault
from psysim.calls.generation import StopRecord, cut_at_cap, generate_once, reask_config
from psysim.inputs.snippets import word_count
from psysim.prompts import load_prompts, prompt

EXPERT_PROMPTS = "expert"


class FormField(BaseModel):
    key: str
    """The label the Expert writes (``WORKS``)."""
    heading: str
    """How the field is shown to the Therapist (``What works``)."""
    max_words: int = Field(ge=1)
    instruction: str
    """What the prompt asks for in the field."""


class LimitForm(BaseModel):
    """A form from ``expert.yaml``: the fields (none: free text) and the limits."""

    name: str
    fields: list[FormField] = Field(default_factory=list)
    max_words: int = Field(ge=1)
    """Limit of the whole text (the sum of the fields' limits for a form with fields)."""
    tokens_per_word: float = Field(gt=0)
    token_slack: int = Field(ge=0)
    word_tolerance: float = Field(ge=0)
    """A reply is re-asked for length only past its limit by more than this share (0.2: 37 words
    against a limit of 30): the offline model overshoots a field by a word or four (measured)."""
    quote_max_words: int = Field(ge=1)
    """A quoted passage longer than this is a written response, not a quoted phrase."""
    response_patterns: list[str]


@lru_cache(maxsize=8)
def load_form(name: str) -> LimitForm:
    """``critique_form`` or ``feedback_form`` of ``expert.yaml``.

    Raises:
        ValueError: a malformed form or a pattern that is not a regular expression, naming the file.
    """
    data = load_prompts(EXPERT_PROMPTS)
    limits = data.get("limits") or {}
    raw = data.get(name)
    where = f"psysim/prompts/{EXPERT_PROMPTS}.yaml: {name}"
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: missing (expected a mapping)")
    try:
        fields = [FormField(key=k, **v) for k, v in (raw.get("fields") or {}).items()]
        max_words = sum(f.max_words for f in fields) if fields else raw.get("max_words")
        form = LimitForm(name=name, fields=fields, max_words=max_words, **limits)
    except (TypeError, ValueError) as ex:
        raise ValueError(f"{where}: {ex}") from ex
    for pattern in form.response_patterns:
        try:
            re.compile(pattern)
        except re.error as ex:
            raise ValueError(f"{where}: response pattern {pattern!r} is not a regular expression: {ex}") from ex
    return form


def form_max_tokens(form: LimitForm) -> int:
    """The token cap derived from the word limit: ``max_words * tokens_per_word + token_slack``."""
    return math.ceil(form.max_words * form.tokens_per_word) + form.token_slack


_QUOTED = re.compile(r'"([^"]+)"|“([^”]+)”')


def response_passage(text: str, form: LimitForm) -> str | None:
    """The start of a written response in ``text`` (a labelled response, a therapist line, a
    quoted passage longer than ``quote_max_words``), or None. A few quoted words are allowed."""
    for pattern in form.response_patterns:
        if match := re.search(pattern, text, re.IGNORECASE | re.MULTILINE):
            return text[match.start(): match.start() + 80].strip()
    for match in _QUOTED.finditer(text):
        quoted = match.group(1) or match.group(2)
        if word_count(quoted) > form.quote_max_words:
            return quoted[:80].strip()
    return None


def parse_fields(text: str, form: LimitForm) -> tuple[dict[str, str] | None, str | None]:
    """``(fields, problem)``: the labelled fields of a critique in form order, or None with the problem.

    A label is the field's key at the start of a line (``WORKS:``, ``**Works:**``, ``- works:``);
    a field's text runs to the next label. A few words before the first label are tolerated
    (``Here is my critique:``); more is a problem, since it is text outside the form.
    """
    keys = "|".join(re.escape(f.key) for f in form.fields)
    label = re.compile(rf"^[ \t>*#\-\d.]*\**\s*({keys})\s*\**\s*:\s*\**", re.IGNORECASE | re.MULTILINE)
    matches = list(label.finditer(text))
    found: dict[str, str] = {}
    for i, match in enumerate(matches):
        key = match.group(1).upper()
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        if key in found:
            return None, f"the field {key} appears twice"
        found[key] = text[match.end(): end].strip().strip("*").strip()
    missing = [f.key for f in form.fields if not found.get(f.key.upper())]
    if missing:
        return None, f"the field(s) {', '.join(missing)} are missing or empty"
    preamble = text[: matches[0].start()] if matches else text
    if word_count(preamble) > 8:
        return None, f"it has {word_count(preamble)} words before the first field"
    return {f.key: found[f.key.upper()] for f in form.fields}, None


def render_fields(fields: dict[str, str], form: LimitForm) -> str:
    """The text the Therapist reads: one line per field, under its heading."""
    return "\n".join(f"{f.heading}: {' '.join(fields[f.key].split())}" for f in form.fields)


def limit_problems(text: str, fields: dict[str, str] | None, form: LimitForm, evidence: bool = True) -> list[str]:
    """What breaks the limits in an (otherwise parsed) reply; empty when it keeps them.
    ``evidence=False`` leaves out the written response's start (for the re-ask, which must not
    show it back)."""
    problems = []
    if fields:
        for f in form.fields:
            if (n := word_count(fields[f.key])) > f.max_words * (1 + form.word_tolerance):
                problems.append(f"the field {f.key} has {n} words; its limit is {f.max_words}")
    elif (n := word_count(text)) > form.max_words * (1 + form.word_tolerance):
        problems.append(f"it has {n} words; the limit is {form.max_words}")
    if (passage := response_passage(text, form)) is not None:
        shown = f" ({passage!r})" if evidence else ""
        problems.append(f"it writes the therapist's response itself{shown}; advise, do not write the response")
    return problems


class LimitCheck(BaseModel):
    """How the Expert's reply kept its limits, as stored in the log."""

    form: str
    words: int
    """Words of the text the Therapist read (the rendered fields, or the feedback)."""
    word_limit: int
    reasks: int = 0
    """Re-asks (attempts after the first) for a limit, a missing field, a cut or empty reply."""
    problems: list[str] = Field(default_factory=list)
    """Per rejected attempt, what was wrong (``attempt n: ...``)."""
    within_limits: bool = True
    """False when the kept reply still breaks a limit (kept after the last attempt)."""


@dataclass
class LimitedReply:
    text: str
    check: LimitCheck


async def ask_within_limits(
    role: str,
    messages: list[ChatMessage],
    config: GenerateConfig,
    form: LimitForm,
    *,
    step: str,
    stops: list[StopRecord],
    max_attempts: int,
) -> LimitedReply:
    """The Expert's reply under ``form``'s limits (see the module docstring).

    Raises:
        CallFailed: no usable reply (empty, error text, cut at the cap, context length; or a
            critique whose fields were never found: ``critique_unparsed``) within ``max_attempts``.
    """
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be >= 1; got {max_attempts}")
    raw: list[str] = []
    problems: list[str] = []
    asked = messages
    kept: LimitedReply | None = None
    for attempt in range(1, max_attempts + 1):
        attempt_step = step if attempt == 1 else f"{step}_attempt_{attempt}"
        output = await generate_once(role, asked, reask_config(config, attempt), step=attempt_step, stops=stops)
        raw.append(output.completion)
        fault = reply_fault(output)
        if fault is not None:
            code, detail = fault
            problems.append(f"attempt {attempt}: {code}: {detail}")
            if code == "context_length":
                break
            # cut at its cap: a shorter reply is asked (prompts/reask.yaml); other faults: the same prompt
            asked = messages + [ChatMessageUser(content=prompt("reask", "cut_off"))] if cut_at_cap(output) else messages
            continue
        text = output.completion.strip()
        fields = None
        if form.fields:
            fields, unparsed = parse_fields(text, form)
            if fields is None:
                problems.append(f"attempt {attempt}: critique_unparsed: {unparsed}")
                asked = messages + [ChatMessageUser(content=_reask(form, unparsed or ""))]
                continue
        shown = render_fields(fields, form) if fields else text
        broken = limit_problems(text, fields, form)
        kept = LimitedReply(shown, LimitCheck(form=form.name, words=word_count(shown), word_limit=form.max_words,
                                              reasks=attempt - 1, within_limits=not broken))
        if not broken:
            break
        problems.append(f"attempt {attempt}: " + "; ".join(broken))
        if attempt < max_attempts:
            asked = messages + [ChatMessageUser(content=_reask(form, "; ".join(limit_problems(text, fields, form, False))))]
    if kept is not None:
        # the last reply with every field (over a limit, if it got here after the attempts)
        kept.check.reasks = len(raw) - 1
        kept.check.problems = problems
        return kept
    code, detail = _failure(problems)
    raise CallFailed(FailureRecord(code=code, role=role, step=step, raw=raw, attempts=len(raw),  # type: ignore[arg-type]
                                   detail=f"{detail} (attempt {len(raw)} of {max_attempts})"))


def _failure(problems: list[str]) -> tuple[str, str]:
    last = problems[-1].split(": ", 2) if problems else ["", "empty_reply", "no reply"]
    return (last[1], last[2]) if len(last) == 3 else ("empty_reply", "no reply")


def _reask(form: LimitForm, problem: str) -> str:
    limits = ", ".join(f"{f.key} at most {f.max_words} words" for f in form.fields) or f"at most {form.max_words} words"
    return prompt(EXPERT_PROMPTS, "limit_reask", problem=problem, limits=limits,
                  fields=" / ".join(f"{f.key}:" for f in form.fields))
