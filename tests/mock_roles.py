"""Per-role mock models for offline tests: each derives its reply from the prompt it is shown.

Every call is recorded (role, messages, config) so tests can assert on what each agent saw.
Samples run concurrently, so replies depend only on the prompt, never on call order.
"""

from __future__ import annotations

import inspect
import re
import threading
from dataclasses import dataclass, field
from typing import Awaitable, Callable

from inspect_ai.model import (
    ChatMessage,
    GenerateConfig,
    Model,
    ModelOutput,
    ModelUsage,
    get_model,
)

from psysim.calls.generation import REASK_SEED_STEP, SESSION_SEED_STEP

RATING_MARKER = "Reply with only a JSON object"


def run_seed(call: "Call") -> int:
    """The run's (epoch's) seed of a call: its seed without the per-session and re-ask offsets."""
    return int(call.config.seed or 0) % REASK_SEED_STEP % SESSION_SEED_STEP


@dataclass
class Call:
    role: str
    messages: list[ChatMessage]
    config: GenerateConfig

    @property
    def system(self) -> str:
        return next((m.text for m in self.messages if m.role == "system"), "")

    @property
    def last_user(self) -> str:
        return next((m.text for m in reversed(self.messages) if m.role == "user"), "")

    @property
    def text(self) -> str:
        return "\n".join(m.text for m in self.messages)


@dataclass
class Recorder:
    calls: list[Call] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, call: Call) -> None:
        with self.lock:
            self.calls.append(call)

    def of(self, role: str) -> list[Call]:
        return [c for c in self.calls if c.role == role]


def output(text: str, stop_reason: str = "stop") -> ModelOutput:
    out = ModelOutput.from_content(model="mockllm/model", content=text, stop_reason=stop_reason)  # type: ignore[arg-type]
    # explicit usage: without it Inspect counts tokens with tiktoken (a download)
    out.usage = ModelUsage(input_tokens=10, output_tokens=5, total_tokens=15)
    return out


Reply = Callable[[Call], "ModelOutput | str | Awaitable[ModelOutput | str]"]


def mock_role(role: str, recorder: Recorder, reply: Reply) -> Model:
    """A mockllm model for ``role``; ``reply`` may be async (e.g. to wait for another call)."""

    def generate(input, tools, tool_choice, config):  # noqa: ANN001 - mockllm signature
        call = Call(role=role, messages=list(input), config=config)
        recorder.add(call)
        result = reply(call)
        if inspect.isawaitable(result):  # mockllm awaits an awaitable result
            return _as_output(result)
        return output(result) if isinstance(result, str) else result

    return get_model("mockllm/model", custom_outputs=generate, memoize=False)


async def _as_output(result: Awaitable[ModelOutput | str]) -> ModelOutput:
    value = await result
    return output(value) if isinstance(value, str) else value


def session_of(call: Call) -> int:
    """Session number from the prompts (therapist system prompt, or the opening cue)."""
    match = re.search(r"Session (\d+) begins", call.text) or re.search(
        r"Session (\d+) has just ended", call.text
    ) or re.search(r"transcript of session (\d+)", call.text, re.IGNORECASE)
    return int(match.group(1)) if match else 1


def default_therapist(call: Call) -> str:
    # under 10 words, like the client's line below: the integrity check compares only longer turns
    # across sessions (echo.cross_session_min_words), so these stock lines replay no session
    n = sum(1 for m in call.messages if m.role == "assistant") + 1
    return f"Therapist says turn {n} of session {session_of(call)}."


def default_client_ratings(session: int, persona_hint: str) -> str:
    return f'{{"rating": {40 + 10 * session}}}'


def client_replier(rating: Callable[[int, Call], str] | None = None) -> Callable[[Call], str]:
    def reply(call: Call) -> str:
        if RATING_MARKER in call.text:
            session = session_of(call)
            return rating(session, call) if rating else f'{{"rating": {40 + 10 * session}}}'
        n = sum(1 for m in call.messages if m.role == "assistant") + 1
        return f"Client answers turn {n}. I have been struggling lately."

    return reply


def expert_replier(call: Call) -> str:
    return f"EXPERT-FEEDBACK-{session_of(call)}: reflect the client's feelings and agree on one goal."


def roles(
    recorder: Recorder,
    therapist: Reply = default_therapist,
    client: Reply | None = None,
    expert: Reply = expert_replier,
) -> dict[str, Model]:
    return {
        "therapist": mock_role("therapist", recorder, therapist),
        "client": mock_role("client", recorder, client or client_replier()),
        "expert": mock_role("expert", recorder, expert),
    }


def main_model(recorder: Recorder) -> Model:
    """The main --model; no solver should call it (every call goes to a role)."""
    return mock_role("main", recorder, lambda call: "unexpected main-model call")


def critique_form(change: str, works: str = "The response stays with the client.",
                  why: str = "The guidelines ask to reflect before advising.") -> str:
    """An Experiment 2 critique in the Expert's form (expert.yaml: critique_form), ``change`` in its
    CHANGE field: only a critique in that form is rendered for the reviser (psysim/calls/critique.py)."""
    return f"WORKS: {works}\nCHANGE: {change}\nWHY: {why}"
