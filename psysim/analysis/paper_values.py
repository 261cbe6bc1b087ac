"""The paper's reported results, for the report's side-by-side comparison.

The paper does not state its Experiment 1 unit of analysis; df = 5 fits a paired t-test over
the 6 session means (conditions paired by session). Its reported p-values sit below even the
one-sided p for those t and df (t(5) = 4.73: 0.0026; t(5) = 4.03: 0.0050), so the exact test
cannot be reproduced.
"""

from __future__ import annotations

from dataclasses import dataclass

from scipy import stats


@dataclass(frozen=True)
class PaperResult:
    task: str
    a: str
    b: str
    claim: str
    t: float
    df: int
    p: str


PAPER_RESULTS = (
    PaperResult("iterative_feedback", "expert", "none", "feedback > no feedback", 4.73, 5, "= .002"),
    PaperResult("iterative_feedback", "expert", "generic", "feedback > generic feedback", 4.03, 5, "= .004"),
    PaperResult("human_comparison", "llm", "human", "LLM > human", 8.07, 49, "< .001"),
    PaperResult("human_comparison", "revised", "llm", "revised > LLM", 4.51, 49, "< .001"),
)


def one_sided_p(t: float, df: int) -> float:
    """One-sided p of a t statistic: the smallest p its t and df allow."""
    return float(stats.t.sf(t, df))


def for_task(task: str) -> list[PaperResult]:
    return [r for r in PAPER_RESULTS if r.task == task]
