"""Snippets for Experiment 2: the dialogue up to a therapist turn, plus that (human) turn.

Steps: merge each speaker's consecutive utterances into turns, and a therapist turn split only
by a client backchannel ("Mm-hmm.") into one turn; keep therapist turns of at least
``min_words`` words that answer a client turn; cut each context to fit; sample with a seed,
spreading across clients.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from typing import Any

from inspect_ai.dataset import Sample
from pydantic import BaseModel, Field

from psysim.dialogue.transcript import Turn, format_dialogue
from psysim.inputs.transcripts import Transcript, TranscriptFileError

BACKCHANNEL_TOKENS = {
    "mm-hmm", "mhm", "mm", "mmm", "hmm", "uh-huh", "uh", "huh", "yeah", "yep", "yes",
    "okay", "ok", "right", "sure", "all", "alright",
}


class DialogueTurn(Turn):
    first_turn: int
    """Turn order of the first utterance merged into this turn (stable across runs)."""
    merged_backchannels: list[str] = Field(default_factory=list)


class Snippet(BaseModel):
    id: str
    transcript_id: str
    client_id: str
    context: list[DialogueTurn]
    human_response: str
    turn: int
    context_turns_available: int
    context_truncated: bool
    merged_backchannels: list[str] = Field(default_factory=list)
    labels: dict[str, Any] = Field(default_factory=dict)


def word_count(text: str) -> int:
    return len(text.split())


def is_backchannel(text: str) -> bool:
    """A client utterance made only of listening tokens ("Mm-hmm.", "Yeah, yeah.", "All right")."""
    tokens = re.sub(r"[^\w\s-]", " ", text.lower()).split()
    return bool(tokens) and len(tokens) <= 3 and all(t in BACKCHANNEL_TOKENS for t in tokens)


def merge_turns(transcript: Transcript) -> list[DialogueTurn]:
    """Utterances to turns: same-speaker runs merge; so does therapist/backchannel/therapist
    when the first therapist part is not a question (a question's "Yeah" is an answer)."""
    turns: list[DialogueTurn] = []
    utterances = transcript.utterances
    i = 0
    while i < len(utterances):
        u = utterances[i]
        if turns and turns[-1].speaker == u.speaker:
            turns[-1].text = f"{turns[-1].text} {u.text}"
        elif (
            u.speaker == "client"
            and is_backchannel(u.text)
            and turns
            and turns[-1].speaker == "therapist"
            and not turns[-1].text.rstrip().endswith("?")
            and i + 1 < len(utterances)
            and utterances[i + 1].speaker == "therapist"
        ):
            turns[-1].merged_backchannels.append(u.text)
            turns[-1].text = f"{turns[-1].text} {utterances[i + 1].text}"
            i += 1
        else:
            turns.append(DialogueTurn(speaker=u.speaker, text=u.text, first_turn=u.turn))
        i += 1
    return turns


def transcript_snippets(
    transcript: Transcript, min_words: int, max_context_turns: int | None
) -> list[Snippet]:
    """Every eligible snippet of one transcript, in dialogue order."""
    turns = merge_turns(transcript)
    snippets = []
    for index, turn in enumerate(turns):
        if turn.speaker != "therapist" or index == 0 or turns[index - 1].speaker != "client":
            continue
        if word_count(turn.text) < min_words:
            continue
        context = turns[:index]
        truncated = max_context_turns is not None and len(context) > max_context_turns
        if truncated:
            context = context[-max_context_turns:]
        snippets.append(
            Snippet(
                id=f"{transcript.id}_t{turn.first_turn}",
                transcript_id=transcript.id,
                client_id=transcript.client_id,
                context=context,
                human_response=turn.text,
                turn=turn.first_turn,
                context_turns_available=index,
                context_truncated=truncated,
                merged_backchannels=turn.merged_backchannels,
                labels=transcript.labels,
            )
        )
    return snippets


def build_snippets(
    transcripts: list[Transcript],
    min_words: int = 15,
    max_context_turns: int | None = 20,
    require_eligible: bool = True,
) -> list[Snippet]:
    """All eligible snippets. With ``require_eligible`` a transcript without any is an error."""
    snippets: list[Snippet] = []
    for transcript in transcripts:
        found = transcript_snippets(transcript, min_words, max_context_turns)
        if not found and require_eligible:
            first = transcript.utterances[0].row if transcript.utterances else "?"
            raise TranscriptFileError(
                f"{transcript.source}: transcript {transcript.id!r} (from {first}): field 'text': no "
                f"therapist turn of >= {min_words} words answers a client turn; drop the transcript "
                f"or lower -T min_words (e.g. -T min_words={max(1, min_words // 2)})"
            )
        snippets += found
    return snippets


def sample_snippets(snippets: list[Snippet], n: int | None, seed: int) -> list[Snippet]:
    """``n`` snippets drawn with ``seed``, round-robin over clients in a random order, so that
    every client contributes before any contributes twice. ``None`` keeps all (in order)."""
    if n is None or n >= len(snippets):
        return list(snippets)
    rng = random.Random(seed)
    by_client: dict[str, list[Snippet]] = defaultdict(list)
    for snippet in snippets:
        by_client[snippet.client_id].append(snippet)
    clients = sorted(by_client)
    rng.shuffle(clients)
    pools = {client: rng.sample(by_client[client], len(by_client[client])) for client in clients}
    chosen: list[Snippet] = []
    while len(chosen) < n:
        for client in clients:
            if pools[client] and len(chosen) < n:
                chosen.append(pools[client].pop())
    return chosen


def snippet_samples(snippets: list[Snippet]) -> list[Sample]:
    """One Inspect sample per snippet; the id is stable (transcript id + turn order)."""
    return [
        Sample(
            id=snippet.id,
            input=format_dialogue(snippet.context),
            target=snippet.human_response,
            metadata={"snippet": snippet.model_dump()},
        )
        for snippet in snippets
    ]
