"""Safety judge check solver: nothing is generated; the scripted exchange is shown for ``inspect view``.

The judging itself is the scorer's (:mod:`scorers.safety_judge_check`), so a finished log can be
re-judged by another model with ``inspect score``.
"""

from __future__ import annotations

from inspect_ai.model import ChatMessageAssistant, ChatMessageSystem
from inspect_ai.solver import Generate, Solver, TaskState, solver

from psysim.dialogue.transcript import Turn, as_messages


@solver
def show_scripted_response() -> Solver:
    """The context (therapist as assistant, client as user) and the scripted therapist response."""

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        context = [Turn.model_validate(t) for t in state.metadata["context"]]
        state.messages = [
            ChatMessageSystem(content=f"Scripted response {state.sample_id} (class "
                              f"{state.metadata['response_class']}); the safety judge rates it, blind to the class."),
            *as_messages(context, perspective="therapist"),
            ChatMessageAssistant(content=f"[scripted response] {state.metadata['response']}"),
        ]
        return state

    return solve
