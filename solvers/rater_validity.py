"""Rater-validity solver: nothing is generated; the snippet is shown for ``inspect view``.

The rating itself is the scorer's (:mod:`scorers.rater_validity`), so a finished log can be
re-rated by another client model with ``inspect score``.
"""

from __future__ import annotations

from inspect_ai.model import ChatMessageAssistant, ChatMessageSystem
from inspect_ai.solver import Generate, Solver, TaskState, solver

from psysim.dialogue.transcript import as_messages
from psysim.inputs.snippets import Snippet


@solver
def show_snippet() -> Solver:
    """The context (therapist as assistant, client as user) and the human response to be rated."""

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        snippet = Snippet.model_validate(state.metadata["snippet"])
        head = (f"Snippet {snippet.id}: transcript {snippet.transcript_id}, client {snippet.client_id}, "
                f"quality label {state.metadata['label']}={state.metadata['label_value']!r} "
                f"(group {state.metadata['group']}). The client rates the human response, blind to the label.")
        state.messages = [
            ChatMessageSystem(content=head),
            *as_messages(list(snippet.context), perspective="therapist"),
            ChatMessageAssistant(content=f"[human response] {snippet.human_response}"),
        ]
        return state

    return solve
