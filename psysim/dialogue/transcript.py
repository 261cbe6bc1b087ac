"""One canonical dialogue record, rendered for each agent's point of view.

The session loop appends :class:`Turn` objects; each agent gets the same turns as chat
messages from its own perspective (its turns as ``assistant``, the other's as ``user``),
and the Expert and rating prompts get a plain-text rendering.
"""

from __future__ import annotations

from typing import Literal

from inspect_ai.model import ChatMessage, ChatMessageAssistant, ChatMessageUser
from pydantic import BaseModel

Speaker = Literal["therapist", "client"]
SPEAKER_LABELS: dict[str, str] = {"therapist": "Therapist", "client": "Client"}


class Turn(BaseModel):
    speaker: Speaker
    text: str
    session: int = 1


def session_turns(turns: list[Turn], session: int) -> list[Turn]:
    return [turn for turn in turns if turn.session == session]


def format_dialogue(turns: list[Turn], labels: dict[str, str] = SPEAKER_LABELS) -> str:
    """Plain text, one ``Speaker: text`` line per turn (``labels`` name the speakers)."""
    return "\n".join(f"{labels[turn.speaker]}: {turn.text}" for turn in turns)


def format_sessions(turns: list[Turn]) -> str:
    """Plain text of several sessions, each under a ``Session k`` heading."""
    sessions = sorted({turn.session for turn in turns})
    return "\n\n".join(
        f"Session {k}:\n{format_dialogue(session_turns(turns, k))}" for k in sessions
    )


def as_messages(turns: list[Turn], perspective: Speaker) -> list[ChatMessage]:
    """The turns as chat messages seen by ``perspective`` (own turns are ``assistant``)."""
    return [
        ChatMessageAssistant(content=turn.text)
        if turn.speaker == perspective
        else ChatMessageUser(content=turn.text)
        for turn in turns
    ]
