"""Experiment 2: human vs LLM vs Expert-revised therapist responses, rated blind by the Client.

    inspect eval tasks/human_comparison.py --model vllm/meta-llama/Llama-3.1-70B-Instruct

Roles: ``therapist`` (LLM response; the revision by default), ``expert`` (critique),
``client`` (ratings). Unbound roles fall back to ``--model``.
"""

from __future__ import annotations

from inspect_ai import Task, task
from inspect_ai.dataset import MemoryDataset

from psysim.calls.failed_calls import DEFAULT_MAX_REPLY_ATTEMPTS
from psysim.calls.joint_rating import order_for
from psysim.calls.rating import RATING_FORMATS
from psysim.inputs.shortfall import take_at_most
from psysim.inputs.snippets import build_snippets, sample_snippets, snippet_samples
from psysim.inputs.task_args import (
    require_bool,
    require_choice,
    require_ints,
    require_temperature,
)
from psysim.inputs.transcripts import TRANSCRIPT_FORMATS, load_transcripts
from psysim.dialogue.integrity import INTEGRITY_FILE
from psysim.inputs.transcripts import DEFAULT_TRANSCRIPTS
from psysim.prompts import DEFAULT_GUIDELINES, text_or_file
from psysim.provenance import file_record, prompt_files, provenance, source_record, text_or_file_record
from psysim.scorers.client_rating import client_rating
from psysim.scorers.joint_rating import joint_rating as joint_rating_scorer
from psysim.scorers.simulation_integrity import simulation_integrity
from psysim.solvers.human_comparison import (
    RESPONSE_TYPES,
    REVISERS,
    ComparisonSettings,
    candidate_responses,
)
from psysim.study.sharding import shard_dataset

VERSION = 2  # bumped on any change to the task's prompts or scoring, with a CHANGELOG.md line

DEFAULT_SNIPPETS = 50  # the study rated 50 snippets sampled at random
DEFAULT_MIN_WORDS = 15  # the study's minimum length of a human therapist response
DEFAULT_CONTEXT_TURNS = 20
DEFAULT_TEMPERATURE = 0.1


@task
def human_comparison(
    transcripts: str | None = None,
    snippets: int | None = DEFAULT_SNIPPETS,
    min_words: int = DEFAULT_MIN_WORDS,
    seed: int | None = 0,
    temperature: float = DEFAULT_TEMPERATURE,
    context_turns: int | None = DEFAULT_CONTEXT_TURNS,
    transcript_format: str = "auto",
    columns: dict[str, str] | None = None,
    speakers: dict[str, str] | None = None,
    split: str = "train",
    guidelines: str | None = None,
    reviser: str = "therapist",
    rating_format: str = "auto",
    max_rating_attempts: int = 3,
    max_reply_attempts: int = DEFAULT_MAX_REPLY_ATTEMPTS,
    response_max_tokens: int = 300,
    critique_max_tokens: int | None = None,
    joint_rating: bool = False,
    shard: str | None = None,
) -> Task:
    """Rate the human response, an LLM response and an Expert-guided revision per snippet.

    Args:
        transcripts: Local path or URL of a CSV/TSV/JSONL file (AnnoMI columns, or the generic
            long format), or ``hf:org/name`` for a Hugging Face dataset (only that explicit
            form goes to the hub; a missing local path fails at once as "file not found");
            default: the shipped demo set (fictional).
        snippets: How many snippets to sample (paper: 50); ``null`` for all eligible ones.
            Asking for more than are eligible takes all of them, logs a warning and records
            both numbers in the log's metadata (``shortfalls``).
        min_words: Minimum words of a human therapist response (paper: 15).
        seed: Seed for snippet sampling, and base seed of every model call (``seed + epoch``).
        temperature: Sampling temperature for every role (paper: 0.1).
        context_turns: Most recent turns kept as context (``null`` keeps all); recorded per sample.
        transcript_format: ``auto`` (by columns), ``annomi`` or ``generic``.
        columns: Generic format: map our fields (transcript_id, turn, speaker, text, client_id)
            to the file's column names.
        speakers: Map the file's speaker labels to ``therapist``/``client``.
        split: Split of a Hugging Face dataset.
        guidelines: Expert guidelines, as text or a path (default: as in Experiment 1).
        reviser: Role that rewrites the human response from the critique: ``therapist``
            (default) or ``expert``.
        rating_format: ``auto``, ``json_schema``, ``json_object`` or ``text`` (see docs/experiment-1.md, "Ratings").
        max_rating_attempts: Times the client is asked before a rating is recorded as missing.
        max_reply_attempts: Times the LLM response, the critique or the revision is asked when
            the reply is empty or an error message, before that candidate is recorded as failed
            (and not rated); default 3 (the first ask and 2 re-asks).
        response_max_tokens: Max tokens of the LLM response and the revision.
        critique_max_tokens: Max tokens of the Expert's critique; ``null`` (default) derives it
            from the critique form's word limit (``expert.yaml``: 105 words -> 303 tokens). The
            critique is a form of short fields with no place for a response; a critique over a
            field's limit or containing a written response is re-asked (``psysim.calls.critique``).
        joint_rating: Also show the three responses together, labelled A/B/C, and ask for one
            rating per label in one reply (scorer ``joint_rating``), beside the independent
            blind ratings. The orders cycle through all 6 permutations across snippets, so
            every response type appears equally often in every position (the report's
            position check).
        shard: ``K/N``: only shard K of N of the sampled snippets (round robin), so N
            processes together rate exactly the snippets of one run (``psysim-paper --shard``).
    """
    require_choice("reviser", reviser, REVISERS)
    require_choice("rating_format", rating_format, RATING_FORMATS)
    require_choice("transcript_format", transcript_format, TRANSCRIPT_FORMATS)
    require_ints(
        ("snippets", snippets, 1, True),
        ("min_words", min_words, 1, False),
        ("context_turns", context_turns, 1, True),
        ("max_rating_attempts", max_rating_attempts, 1, False),
        ("max_reply_attempts", max_reply_attempts, 1, False),
        ("response_max_tokens", response_max_tokens, 1, False),
        ("critique_max_tokens", critique_max_tokens, 1, True),
    )
    require_temperature(temperature)
    require_bool("joint_rating", joint_rating)

    loaded = load_transcripts(transcripts, transcript_format, columns, speakers, split)
    eligible = build_snippets(loaded, min_words=min_words, max_context_turns=context_turns)
    # asking for more snippets than are eligible takes them all, with a warning and a record
    chosen, shortfall = take_at_most(
        eligible, snippets, "snippets", pick=lambda items, n: sample_snippets(items, n, seed=seed or 0)
    )
    settings = ComparisonSettings(
        guidelines=text_or_file(guidelines, DEFAULT_GUIDELINES),
        reviser=reviser,
        temperature=float(temperature),
        seed=seed,
        response_max_tokens=response_max_tokens,
        critique_max_tokens=critique_max_tokens,
        max_reply_attempts=max_reply_attempts,
    )
    samples = snippet_samples(chosen)
    if joint_rating:
        for index, sample in enumerate(samples):
            sample.metadata["joint_order"] = order_for(index, RESPONSE_TYPES)  # type: ignore[index]
    scorers = [
        client_rating(temperature=float(temperature), seed=seed, rating_format=rating_format, max_attempts=max_rating_attempts),
        simulation_integrity(),
    ]
    if joint_rating:
        scorers.append(
            joint_rating_scorer(temperature=float(temperature), seed=seed, rating_format=rating_format,
                                max_attempts=max_rating_attempts)
        )
    return Task(
        dataset=shard_dataset(MemoryDataset(samples, name="transcript_snippets"), shard),
        solver=candidate_responses(settings),
        scorer=scorers,
        version=VERSION,
        metadata={
            "experiment": "human_comparison",
            "provenance": provenance(
                prompt_files(["therapist", "client", "expert", "rating", "reask"] + (["rating_joint"] if joint_rating else []))
                | {"transcripts": source_record(transcripts, DEFAULT_TRANSCRIPTS),
                   "guidelines": text_or_file_record(guidelines, DEFAULT_GUIDELINES),
                   "integrity": file_record(INTEGRITY_FILE)}),
            "transcripts": len(loaded),
            "clients": len({t.client_id for t in loaded}),
            "requested_snippets": snippets,
            "eligible_snippets": len(eligible),
            "sampled_snippets": len(chosen),
            "shortfalls": [shortfall] if shortfall else [],
        },
    )
