"""Failed model calls: replies that are not replies, and the record kept of them.

A call has *failed* when no usable reply came back after its attempts. This module decides
what counts as a failed reply (one place, so every role call and the rating parser agree) and
defines the record that the session loop, the Experiment 2 solver and the scorers store.

Reason codes (the shared contract; also used by the scorers' ``missing_reasons``):

- ``empty_reply``: the completion was empty or whitespace.
- ``context_length``: the prompt did not fit the model's context. Inspect's ``vllm/`` provider
  turns vLLM's HTTP 400 "maximum context length" into ``stop_reason == "model_length"`` with the
  error message as the completion; a known context-length phrasing in the completion counts too,
  whatever the stop reason.
- ``error_text``: a known server error message arrived in place of a reply.
- ``incomplete``: the server marked the reply as not finished: any stop reason but ``stop`` (or
  ``tool_calls`` where a tool call was asked), i.e. ``max_tokens``, ``content_filter`` or
  ``unknown`` (Inspect's name for every finish reason it does not know, vLLM's ``abort`` among
  them, and for a server that sends no ``finish_reason`` at all). "I think I" cut by an abort is
  not a turn and "Rating: 7" cut by a content filter is not a rating: both are re-asked within
  the bound and then failed with this code; every such call is in ``stops``.
- ``truncated``: a rating (structured) reply cut by its token cap (``stop_reason == "max_tokens"``),
  a special case of ``incomplete`` that is shown back to the client with the re-ask.
- ``rating_unparsed``: rating replies that could not be read as one rating after all attempts.
- ``critique_unparsed``: an Expert critique whose labelled fields were not found after all
  attempts (:mod:`psysim.calls.critique`): nothing to render for the Therapist.
- ``call_error``: an exception from the provider after Inspect's own retries.
- ``not_held``: a session never held because the course ended earlier.
- ``upstream_failed``: something that could not be produced because a call it needs failed
  (an Experiment 2 candidate, so it is not rated).

Error-text matching is deliberately conservative: only literal phrasings of known servers
(:data:`ERROR_TEXT_PATTERNS`), which no client, therapist or supervisor would say in character.
"""

from __future__ import annotations

import json
import re
from typing import Literal

from inspect_ai.model import ModelOutput
from pydantic import BaseModel, Field

FailureCode = Literal[
    "empty_reply",
    "context_length",
    "error_text",
    "incomplete",
    "truncated",
    "rating_unparsed",
    "critique_unparsed",
    "call_error",
    "not_held",
    "upstream_failed",
]

COMPLETE_STOPS = ("stop",)
"""Stop reasons of a finished reply; ``tool_calls`` too where a tool call was asked
(:func:`reply_fault`'s ``tool_call_asked``). Everything else is ``incomplete``."""

DEFAULT_MAX_REPLY_ATTEMPTS = 3
"""Attempts per role call (the first ask and 2 re-asks) before the call is recorded as failed."""

# (label, code, pattern). Labels, not the phrases, go into failure details and notes, so that
# no error text is ever copied into a transcript or a readable note.
ERROR_TEXT_PATTERNS: tuple[tuple[str, str, re.Pattern[str]], ...] = (
    # vLLM (OpenAI server): "This model's maximum context length is 4096 tokens. However, ..."
    ("vllm_max_context_length", "context_length", re.compile(r"maximum context length is \d+", re.I)),
    # vLLM v1: "The decoder prompt (length 5000) is longer than the maximum model length of 4096."
    ("vllm_longer_than_max_model_len", "context_length",
     re.compile(r"is longer than the maximum model length of \d+", re.I)),
    # vLLM: a prompt that leaves no room to generate
    ("vllm_max_tokens_at_least_1", "context_length", re.compile(r"max_tokens must be at least 1", re.I)),
    # llama.cpp server: "the request exceeds the available context size, try increasing it"
    ("llamacpp_exceeds_context", "context_length",
     re.compile(r"exceeds the available context size|exceed_context_size_error", re.I)),
    # OpenAI API error code / message
    ("openai_context_length_exceeded", "context_length",
     re.compile(r"context_length_exceeded|Please reduce the length of the messages", re.I)),
    # an exception rendered as text: "Error code: 500 - {...}" (openai SDK)
    ("sdk_error_code", "error_text", re.compile(r"^\s*Error code: \d{3}\b")),
    # an OpenAI-style error body as the whole reply: {"object": "error", ...} / {"error": {...}}
    ("json_error_body", "error_text", re.compile(r'^\s*\{\s*"(?:object"\s*:\s*"error|error"\s*:)', re.I)),
    # an HTTP status page as the whole reply
    ("http_error_status", "error_text",
     re.compile(r"^\s*(?:HTTP/\d(?:\.\d)?\s+)?(?:500 Internal Server Error|502 Bad Gateway|503 Service Unavailable"
                r"|504 Gateway Time-?out|400 Bad Request)\b", re.I)),
    # a bare reason phrase (or a status code with its phrase) as the WHOLE reply: a server or proxy
    # that answers "Internal Server Error" with status 200 (a turn that only mentions one is a turn)
    ("bare_reason_phrase", "error_text",
     re.compile(r"^\s*(?:HTTP/\d(?:\.\d)?\s+)?(?:(?:error\s*(?:code)?\s*:?\s*)?[45]\d\d\s*[:\-]?\s*)?"
                r"(?:Internal Server Error|Bad Gateway|Service (?:Temporarily )?Unavailable|Gateway Time-?out"
                r"|Too Many Requests|Request Time-?out|Server Error|Upstream request timeout|no healthy upstream"
                r"|upstream connect error or disconnect/reset before headers\b.*"
                r"|The server is temporarily unable to service your request\b.*)\s*[.!]?\s*$", re.I | re.S)),
    # a status code with a reason phrase every proxy uses, alone ("404 Not Found", "error code: 502")
    ("bare_status_code", "error_text",
     re.compile(r"^\s*(?:HTTP/\d(?:\.\d)?\s+)?(?:error\s*(?:code)?\s*:?\s*[45]\d\d"
                r"|[45]\d\d\s*[:\-]?\s*(?:Not Found|Forbidden|Unauthorized|Method Not Allowed|Payload Too Large"
                r"|Request Entity Too Large))\s*[.!]?\s*$", re.I)),
    # an HTML error page from a proxy or balancer (nginx, HAProxy, AWS ELB, Cloudflare, Apache): a
    # reply that opens as an HTML document and names a 4xx/5xx status or an error
    ("html_error_page", "error_text",
     re.compile(r"^\s*(?:<!DOCTYPE\s+html[^>]*>\s*)?<(?:html|head|body|title|h1|center)\b"
                r"(?=.*?(?:\b[45]\d\d\b|error|unavailable|bad gateway|time-?out))", re.I | re.S)),
)

# keys of the JSON error bodies of common servers and frameworks (OpenAI/vLLM ``error``,
# FastAPI/Starlette ``detail``, Spring/Express/AWS ``message`` with a status or code)
_JSON_STATUS_KEYS = {"code", "status", "statusCode", "status_code", "type", "error_code"}


class FailureRecord(BaseModel):
    """One failed call (or a step not taken because of one), as stored in the log."""

    code: FailureCode
    role: str
    step: str
    detail: str
    """Human-readable; never contains the raw reply (that is in ``raw``)."""
    raw: list[str] = Field(default_factory=list)
    """Every completion received, in order (may contain error text: kept here, never in a transcript)."""
    attempts: int = 0

    @property
    def reason(self) -> str:
        """``"<code>: <detail>"``, the form of ``Score.metadata["missing_reasons"]`` values."""
        return f"{self.code}: {self.detail}"


class CallFailed(Exception):
    """Raised when a role call gave no usable reply within its attempts."""

    def __init__(self, failure: FailureRecord) -> None:
        super().__init__(f"{failure.role} {failure.step}: {failure.reason}")
        self.failure = failure


def error_text_match(text: str) -> tuple[str, str] | None:
    """``(label, code)`` of the first known server error phrasing in ``text``, else None."""
    for label, code, pattern in ERROR_TEXT_PATTERNS:
        if pattern.search(text):
            return label, code
    if _is_json_error_body(text):
        return "json_error_body", "error_text"
    return None


def _is_json_error_body(text: str) -> bool:
    """True if the whole of ``text`` is a JSON object shaped as a server's error body
    (``{"detail": "Not Found"}``, ``{"message": "...", "statusCode": 502}``, ...). A rating reply
    (``{"rating": 70}``) or a questionnaire's answers never have these keys alone."""
    stripped = text.strip()
    if not (stripped.startswith("{") and stripped.endswith("}")):
        return False
    try:
        body = json.loads(stripped)
    except ValueError:
        return False
    if not isinstance(body, dict):
        return False
    keys = set(body)
    if "error" in keys or body.get("object") == "error" or body.get("success") is False:
        return True
    if keys == {"detail"} or keys <= {"detail", "status", "title", "type", "instance"} and "detail" in keys:
        return True
    return "message" in keys and bool(keys & _JSON_STATUS_KEYS) and keys <= {"message", "timestamp", "path", "error",
                                                                            "requestId", "request_id", *_JSON_STATUS_KEYS}


def reply_complete(output: ModelOutput, tool_call_asked: bool = False) -> bool:
    """True if the server marked ``output`` as finished (see :data:`COMPLETE_STOPS`)."""
    return output.stop_reason in COMPLETE_STOPS or (tool_call_asked and output.stop_reason == "tool_calls")


def reply_fault(output: ModelOutput, tool_call_asked: bool = False) -> tuple[FailureCode, str] | None:
    """Why ``output`` is not a usable reply (``(code, detail)``), or None if it is one.

    In order: a context-length stop, a server error message, an empty reply, a reply the server
    marked as incomplete (``incomplete``: any stop reason but ``stop``, see :data:`COMPLETE_STOPS`).
    """
    text = output.completion
    if output.stop_reason == "model_length":
        return "context_length", "the call stopped with stop_reason=model_length (prompt does not fit the context)"
    matched = error_text_match(text)
    if matched is not None:
        label, code = matched
        return code, f"a server error message ({label}) arrived in place of a reply"  # type: ignore[return-value]
    if not text.strip():
        return "empty_reply", "the reply was empty" if not text else "the reply was only whitespace"
    if not reply_complete(output, tool_call_asked):
        return "incomplete", (f"the server marked the reply as incomplete (stop_reason={output.stop_reason}; "
                              "only stop is a finished reply)")
    return None


def contains_error_text(text: str) -> bool:
    """True if ``text`` holds a known server error phrasing (for checks on transcripts)."""
    return error_text_match(text) is not None
