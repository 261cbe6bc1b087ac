"""Rater validity (known groups): does the Client's rating separate high- from low-quality counselling?

    inspect eval tasks/rater_validity.py -T transcripts=AnnoMI-simple.csv --model vllm/...

The ``client`` role rates the human therapist response of snippets from transcripts with a human
quality label (AnnoMI ``mi_quality``: high/low), balanced between the two groups, exactly as
Experiment 2 rates its ``human`` candidate. ``psysim-report`` gives the group means, their
difference and the AUC with bootstrap CIs over transcripts.
"""

from __future__ import annotations

from inspect_ai import Task, task
from inspect_ai.dataset import MemoryDataset

from psysim.calls.rating import RATING_FORMATS
from psysim.inputs.data_files import package_file
from psysim.inputs.quality_groups import (
    GROUPS,
    balanced_sample,
    group_of,
    split_by_label,
)
from psysim.inputs.snippets import build_snippets, snippet_samples
from psysim.inputs.task_args import require_choice, require_ints, require_temperature
from psysim.inputs.transcripts import TRANSCRIPT_FORMATS, load_transcripts
from psysim.provenance import prompt_files, provenance, source_record
from psysim.scorers.rater_validity import human_response_rating
from psysim.solvers.rater_validity import show_snippet

# Fictional labelled demo (not real therapy), so the task runs out of the box; see its README.
VERSION = 1  # bumped on any change to the task's prompts or scoring, with a CHANGELOG.md line
DEFAULT_LABELLED_TRANSCRIPTS = package_file("datasets", "transcripts", "demo_quality_transcripts.csv")
DEFAULT_LABEL = "mi_quality"  # AnnoMI's expert label of the counselling quality of a transcript
DEFAULT_PER_GROUP = 40
DEFAULT_MIN_WORDS = 15  # as Experiment 2
DEFAULT_CONTEXT_TURNS = 20  # as Experiment 2
DEFAULT_TEMPERATURE = 0.1


@task
def rater_validity(
    transcripts: str | None = None,
    label: str = DEFAULT_LABEL,
    high: str = "high",
    low: str = "low",
    per_group: int | None = DEFAULT_PER_GROUP,
    min_words: int = DEFAULT_MIN_WORDS,
    seed: int | None = 0,
    temperature: float = DEFAULT_TEMPERATURE,
    context_turns: int | None = DEFAULT_CONTEXT_TURNS,
    transcript_format: str = "auto",
    columns: dict[str, str] | None = None,
    speakers: dict[str, str] | None = None,
    split: str = "train",
    rating_format: str = "auto",
    max_rating_attempts: int = 3,
) -> Task:
    """The client rates human therapist responses from high- and low-quality transcripts.

    Args:
        transcripts: As Experiment 2 (local CSV/TSV/JSONL, URL, or ``hf:org/name``); default:
            the shipped fictional labelled demo (4 transcripts, not real therapy).
        label: Transcript-level column holding the quality label (AnnoMI: ``mi_quality``); in
            the generic format, a column constant within each transcript.
        high: Label value of the high-quality group.
        low: Label value of the low-quality group.
        per_group: Snippets per group (``null``: all eligible). Asking for more than a group
            has takes all of it, warns, and records both numbers in the log (``shortfalls``).
        min_words: Minimum words of the human response (as Experiment 2).
        seed: Snippet sampling (spread over clients, as Experiment 2); base seed of every call.
        temperature: Sampling temperature of the client.
        context_turns: Most recent turns kept as context (``null`` keeps all).
        transcript_format: ``auto``, ``annomi`` or ``generic``.
        columns: Generic format: map of our fields to the file's columns.
        speakers: Map of the file's speaker labels to ``therapist``/``client``.
        split: Split of a Hugging Face dataset.
        rating_format: ``auto``, ``json_schema``, ``json_object`` or ``text``.
        max_rating_attempts: Times the client is asked before a rating is recorded as missing.
    """
    require_choice("rating_format", rating_format, RATING_FORMATS)
    require_choice("transcript_format", transcript_format, TRANSCRIPT_FORMATS)
    require_ints(
        ("per_group", per_group, 1, True),
        ("min_words", min_words, 1, False),
        ("context_turns", context_turns, 1, True),
        ("max_rating_attempts", max_rating_attempts, 1, False),
    )
    require_temperature(temperature)

    source = transcripts or str(DEFAULT_LABELLED_TRANSCRIPTS)
    loaded = load_transcripts(source, transcript_format, columns, speakers, split)
    eligible = build_snippets(loaded, min_words=min_words, max_context_turns=context_turns)
    groups = split_by_label(eligible, label, high, low, source=source)
    chosen, shortfalls = balanced_sample(groups, per_group, seed=seed or 0)
    samples = snippet_samples(chosen)
    for sample, snippet in zip(samples, chosen):
        sample.metadata.update(  # type: ignore[union-attr]
            label=label, label_value=str(snippet.labels[label]), group=group_of(snippet, label, groups.values)
        )
    return Task(
        dataset=MemoryDataset(samples, name="quality_labelled_snippets"),
        solver=show_snippet(),
        scorer=human_response_rating(
            temperature=float(temperature), seed=seed, rating_format=rating_format, max_attempts=max_rating_attempts,
        ),
        version=VERSION,
        metadata={
            "experiment": "rater_validity",
            "provenance": provenance(prompt_files(["client", "rating"])
                                     | {"transcripts": source_record(transcripts, DEFAULT_LABELLED_TRANSCRIPTS)}),
            "label": label,
            "groups": groups.values,
            "transcripts": len(loaded),
            "transcripts_per_group": {g: len({s.transcript_id for s in groups.snippets[g]}) for g in GROUPS},
            "requested_per_group": per_group,
            "eligible_per_group": {g: len(groups.snippets[g]) for g in GROUPS},
            "sampled_per_group": {g: sum(1 for s in chosen if group_of(s, label, groups.values) == g) for g in GROUPS},
            "eligible_other_label": groups.other,
            "shortfalls": shortfalls,
        },
    )
