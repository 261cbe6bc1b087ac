"""What a report section is: one per task, found by the task name in each log.

A new experiment or rater check adds a :class:`Section` (and its row builder in
:mod:`psysim.analysis.frames`) and appears in the report with its tables, figures, tests and
paper rows; the report itself has no per-task code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from psysim.analysis.bootstrap import DEFAULT_RESAMPLES, DEFAULT_SEED
from psysim.analysis.stats import TestResult

if TYPE_CHECKING:
    from psysim.analysis.frames import Frames


@dataclass
class ReportOptions:
    """Choices that change what the report computes."""

    primary: dict[str, str] = field(default_factory=dict)
    """Per task, the pre-declared primary test (overrides the section's default)."""
    bootstrap: int = 0
    """No longer used: Experiment 1's model has analytic CIs (issue 21). Kept so that callers that
    still pass it, and ``--bootstrap``, keep working."""
    seed: int = DEFAULT_SEED
    """Seed of every bootstrap (the rater checks')."""
    ci_resamples: int = DEFAULT_RESAMPLES
    """Resamples of the cluster-bootstrap CIs of the rater checks (known-groups validity)."""
    human_ratings: str | None = None
    """A psysim-rate study database or its CSV export: adds the human-raters section."""
    keep_all_raters: bool = False
    """Keep raters who failed more than a third of their gold items in the human-raters statistics
    (by default they are left out, and the report says so)."""
    skip_unknown: bool = False
    quiet: bool = True
    png: bool | None = None
    """Write a PNG beside each figure: True/False, or None for ``PSYSIM_REPORT_PNG`` (default on)."""


@dataclass
class SectionResult:
    """What one section adds to the report."""

    title: str
    markdown: list[str] = field(default_factory=list)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)
    tests: list[TestResult] = field(default_factory=list)
    paper_rows: list[dict[str, Any]] = field(default_factory=list)
    """Rows of "The paper side by side": the paper's value next to this run's."""
    summary: list[str] = field(default_factory=list)
    """One-line results for the report's summary (the primary test first)."""
    omissions: list[str] = field(default_factory=list)
    """Everything left out or not testable, each with its reason."""
    warnings: list[str] = field(default_factory=list)
    """Shown at the top of the report, before the summary."""


@dataclass
class Section:
    task: str
    title: str
    primary_help: str
    """The primary-test choices and the default, for ``--help`` and the README."""
    default_primary: str
    build: Callable[[Frames, ReportOptions], SectionResult]

    def primary(self, options: ReportOptions) -> str:
        return options.primary.get(self.task, self.default_primary)
