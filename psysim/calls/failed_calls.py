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
- ``truncated``: a rating reply was cut by its token cap (``stop_reason == "max_tokens"``). A
  dialogue turn or feedback cut at its cap is still a reply (recorded in ``stops``), not a fault.
- ``rating_unparsed``: rating replies that could not be read as one rating after all attempts.
- ``call_error``: an exception from the provider after Inspect's own retries.
- ``not_held``: a session never held because the course ended earlier.
- ``upstream_failed``: something that could not be produced because a call it needs failed
  (an Experiment 2 candidate, so it is not rated).

Error-text matching is deliberately conservative: only literal phrasings of known servers
(:data:`ERROR_TEXT_PATTERNS`), which no client, therapist or supervisor would say in character.
"""

from __future__ import annotations

import re
from typing import Literal

from inspect_ai.model import ModelOutput
from pydantic import BaseModel, Field

FailureCode = Literal[
    "empty_reply",
    "context_length",
    "error_text",
    "truncated",
    "rating_unparsed",
    "call_error",
    "not_held",
    "upstream_failed",
]

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
)


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
    return None


def reply_fault(output: ModelOutput) -> tuple[FailureCode, str] | None:
    """Why ``output`` is not a usable reply (``(code, detail)``), or None if it is one.

    A reply cut at its token cap is not a fault here (see ``truncated`` for ratings).
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
    return None


def contains_error_text(text: str) -> bool:
    """True if ``text`` holds a known server error phrasing (for checks on transcripts)."""
    return error_text_match(text) is not None
