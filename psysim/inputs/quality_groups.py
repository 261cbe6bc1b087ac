"""Known groups for the rater-validity task: snippets split by a human quality label.

The label is a transcript-level column (AnnoMI's ``mi_quality``; in the generic format any
column that is constant within a transcript), carried in every snippet's ``labels``. Snippets
whose label is neither the ``high`` nor the ``low`` value are left out and counted.
"""

from __future__ import annotations

from collections import Counter

from pydantic import BaseModel, Field

from psysim.inputs.input_error import TaskArgumentError
from psysim.inputs.shortfall import Shortfall, take_at_most
from psysim.inputs.snippets import Snippet, sample_snippets
from psysim.inputs.transcripts import TranscriptFileError

GROUPS = ("high", "low")
"""The two known groups, in report order."""


class QualityGroups(BaseModel):
    """Eligible snippets per group, and how many carried neither label value."""

    label: str
    values: dict[str, str]
    """Group -> the label value that defines it (e.g. ``{"high": "high", "low": "low"}``)."""
    snippets: dict[str, list[Snippet]] = Field(default_factory=dict)
    other: int = 0
    """Snippets whose label was neither value (left out)."""


def split_by_label(snippets: list[Snippet], label: str, high: str, low: str, source: str = "transcripts") -> QualityGroups:
    """Split ``snippets`` into the ``high`` and ``low`` groups by the transcript label ``label``.

    Raises:
        TranscriptFileError: a snippet's transcript has no such label (named with the labels it
            has), or ``high`` equals ``low``.
    """
    if str(high) == str(low):
        raise TaskArgumentError(f"high and low must differ; both are {high!r}")
    groups = QualityGroups(label=label, values={"high": str(high), "low": str(low)},
                           snippets={group: [] for group in GROUPS})
    by_value = {str(high): "high", str(low): "low"}
    for snippet in snippets:
        if label not in snippet.labels:
            known = ", ".join(sorted(snippet.labels)) or "none"
            raise TranscriptFileError(
                f"{source}: transcript {snippet.transcript_id!r}: field {label!r}: no such transcript-level "
                f"label (labels: {known}); the label column must be constant within each transcript"
            )
        group = by_value.get(str(snippet.labels[label]))
        if group is None:
            groups.other += 1
        else:
            groups.snippets[group].append(snippet)
    _require_both_groups(groups, snippets, source)
    return groups


def _require_both_groups(groups: QualityGroups, snippets: list[Snippet], source: str) -> None:
    """A group value that matches no eligible snippet is a typo or the wrong column: stop before
    any model call (a run would rate one group only and end "not testable")."""
    empty = [group for group in GROUPS if not groups.snippets[group]]
    if not empty:
        return
    found = Counter(str(s.labels[groups.label]) for s in snippets)
    transcripts = Counter(str(v) for v in {s.transcript_id: s.labels[groups.label] for s in snippets}.values())
    listed = ", ".join(
        f"{value!r} ({transcripts[value]} transcript(s), {n} snippet(s))" for value, n in sorted(found.items())
    ) or "none (no eligible snippets)"
    example = (sorted(found) + ["<value>", "<value>"])[:2]
    problems = []
    for group in empty:
        value = groups.values[group]
        near = [v for v in found if v.strip().lower() == value.strip().lower() and v != value]
        hint = f" (did you mean -T {group}={near[0]}?)" if near else ""
        problems.append(f"-T {group}={value} matches no eligible snippet{hint}")
    raise TranscriptFileError(
        f"{source}: field {groups.label!r}: {'; '.join(problems)}; values found: {listed}. "
        f"Name the two groups' values, e.g. -T label={groups.label} -T high={example[0]} -T low={example[1]}"
    )


def group_of(snippet: Snippet, label: str, values: dict[str, str]) -> str:
    """``high`` or ``low`` for a snippet of either group."""
    value = str(snippet.labels[label])
    return next(group for group, v in values.items() if v == value)


def balanced_sample(groups: QualityGroups, per_group: int | None, seed: int) -> tuple[list[Snippet], list[Shortfall]]:
    """``per_group`` snippets of each group, spread over clients as Experiment 2 samples them.

    A group with fewer eligible snippets than ``per_group`` gives all of them, with a warning
    and a :class:`~psysim.inputs.shortfall.Shortfall` record naming the group and both numbers.
    """
    chosen: list[Snippet] = []
    shortfalls: list[Shortfall] = []
    for group in GROUPS:
        taken, shortfall = take_at_most(
            groups.snippets[group], per_group, f"{group}-quality snippets ({groups.label}={groups.values[group]})",
            pick=lambda items, n: sample_snippets(list(items), n, seed=seed),
        )
        chosen += taken
        shortfalls += [shortfall] if shortfall else []
    return chosen, shortfalls
