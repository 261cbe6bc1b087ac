"""The attempt loop shared by every structured answer the client gives (the 0-100 rating,
questionnaires): ask, judge the reply, re-ask naming the problem, never coerce.

- A reply that is not a reply (empty, a server error message: :func:`reply_fault`) is dropped
  and the same prompt asked again; it is never shown back to the client.
- A reply the server marked as incomplete (``content_filter``, ``unknown`` such as vLLM's
  ``abort``) is ``incomplete`` and never parsed; it is dropped and the same prompt asked again.
- A reply cut at its token cap is ``truncated`` and never parsed ("Rating: 7" may have been
  "75"); one the caller's parser rejects is ``rating_unparsed``. Both are shown back with the
  caller's re-ask message naming the problem.
- A context-length failure ends the attempts at once: re-asking would only make the prompt longer.

Every attempt uses :func:`reask_config` (a distinct, reproducible seed).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from inspect_ai.model import (
    ChatMessage,
    ChatMessageAssistant,
    ChatMessageUser,
    GenerateConfig,
)

from psysim.calls.failed_calls import reply_fault
from psysim.calls.generation import StopRecord, generate_once, reask_config


@dataclass
class Attempts:
    """What the attempts gave: ``code is None`` when the last reply was accepted."""

    code: str | None = None
    error: str | None = None
    raw: list[str] = field(default_factory=list)
    """Every completion received, in order."""
    attempts: int = 0


async def ask_until_accepted(
    role: str,
    messages: list[ChatMessage],
    config: GenerateConfig,
    *,
    accept: Callable[[str], str | None],
    reask: Callable[[str], str],
    max_attempts: int,
    step: str,
    stops: list[StopRecord],
) -> Attempts:
    """Ask the model bound to ``role`` until ``accept`` takes a reply, up to ``max_attempts`` times.

    Args:
        accept: Reads a reply (neither a fault nor truncated); returns None when it is accepted
            (the caller keeps what it parsed), else the problem with it.
        reask: The user message that follows a rejected reply, given the problem.

    Returns:
        The attempts; on failure ``code``/``error`` are those of the last attempt.
    """
    conversation = list(messages)
    result = Attempts()
    for attempt in range(1, max_attempts + 1):
        output = await generate_once(
            role, conversation, reask_config(config, attempt), step=f"{step}_attempt_{attempt}", stops=stops
        )
        result.raw.append(output.completion)
        result.attempts = attempt
        fault = reply_fault(output)
        if fault is not None and not (fault[0] == "incomplete" and output.stop_reason == "max_tokens"):
            result.code, result.error = fault
            if result.code == "context_length":
                return result
            continue  # not shown back: an empty, error or aborted message is not the client's reply
        if output.stop_reason == "max_tokens":
            result.code = "truncated"
            result.error = "the reply was cut at its token cap (stop_reason=max_tokens)"
            problem = "it was cut off before it ended"
        else:
            problem = accept(output.completion)
            if problem is None:
                result.code = result.error = None
                return result
            result.code, result.error = "rating_unparsed", problem
        conversation += [ChatMessageAssistant(content=output.completion), ChatMessageUser(content=reask(problem))]
    return result
