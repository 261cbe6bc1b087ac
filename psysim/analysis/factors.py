"""Design factors that separate settings, compared across them with the conditions' own tests.

A factor such as the therapist style (:data:`psysim.analysis.frames.SETTING_FACTORS`) changes
what is rated, so its levels are never pooled into one setting. To compare the levels, the
settings that differ only in the factor (same base setting) are matched, condition by
condition, and the section's tests for conditions are run with the factor's levels in their
place (:func:`compare_levels`). A level the rater is expected to rate lower (a negative
control, e.g. the poor therapist) is then checked (:func:`negative_control`): a rater that does
not rate it lower, with a 95% CI above 0, is flagged.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from psysim.analysis.render import ci, fmt
from psysim.analysis.stats import OK, TestResult

# (label, data with the levels in its "condition" column, contrasts) -> the tests
TestsFn = Callable[[str, pd.DataFrame, list[tuple[str, str]]], list[TestResult]]


@dataclass
class LevelComparison:
    base_setting: str
    condition: str
    label: str
    reference: str
    level: str
    tests: list[TestResult]


def compare_levels(frame: pd.DataFrame, factor: str, reference: str, tests: TestsFn) -> tuple[list[LevelComparison], list[str]]:
    """Every level of ``factor`` against ``reference``, per base setting and condition.

    Returns:
        The comparisons, and notes on levels that had nothing to be compared with.
    """
    comparisons, notes = [], []
    for base, data in frame.groupby("base_setting", sort=True):
        for condition, cdata in data.groupby("condition", sort=True):
            levels = sorted(set(map(str, cdata[factor].unique())))
            for level in [lv for lv in levels if lv != reference]:
                if reference not in levels:
                    notes.append(f"{factor}={level} [{base}, condition {condition}]: no {factor}={reference} runs "
                                 "with the same models and arguments to compare with")
                    continue
                pair = cdata[cdata[factor].astype(str).isin([reference, level])]
                label = f"{base} [condition={condition}; {factor}: {reference} vs {level}]"
                pair = pair.assign(condition=pair[factor].astype(str))
                comparisons.append(LevelComparison(str(base), str(condition), label, reference, level,
                                                   tests(label, pair, [(reference, level)])))
    return comparisons, notes


@dataclass
class ControlCheck:
    base_setting: str
    condition: str
    reference: str
    level: str
    test: str
    difference: float
    ci_low: float
    ci_high: float
    flagged: bool
    verdict: str


def negative_control(comparison: LevelComparison, measure: str, tests_in_order: tuple[str, ...]) -> ControlCheck:
    """Is ``level`` rated lower than ``reference`` on ``measure``?

    Decided by the first testable of ``tests_in_order``: passed when reference - level has its
    95% CI above 0, flagged otherwise. When none is testable (e.g. every rating equal within
    each side), a difference at or below 0 is flagged and a positive one is reported as lower
    but untested.
    """
    c = comparison
    candidates = [t for name in tests_in_order for t in c.tests if t.test == name and t.measure == measure]
    decisive = next((t for t in candidates if t.status == OK), None)
    if decisive is not None:
        flagged = not decisive.ci_low > 0
        verdict = (f"rated lower: {c.reference} - {c.level} = {fmt(decisive.difference)} (95% CI "
                   f"{ci(decisive.ci_low, decisive.ci_high)}, {decisive.test})") if not flagged else (
            f"FLAG: the rater does not rate {c.level} lower than {c.reference}: {c.reference} - {c.level} = "
            f"{fmt(decisive.difference)} (95% CI {ci(decisive.ci_low, decisive.ci_high)}, {decisive.test})")
        return ControlCheck(c.base_setting, c.condition, c.reference, c.level, decisive.test, decisive.difference,
                            decisive.ci_low, decisive.ci_high, flagged, verdict)
    shown = next((t for t in candidates if not math.isnan(t.difference)), None)
    difference = shown.difference if shown is not None else math.nan
    if shown is None:
        difference = next((t.mean_a - t.mean_b for t in candidates if not math.isnan(t.mean_a - t.mean_b)), math.nan)
    reason = candidates[0].reason if candidates else "no test"
    flagged = not difference > 0
    verdict = (f"FLAG: the rater does not rate {c.level} lower than {c.reference}: difference {fmt(difference)} "
               f"(not testable: {reason})") if flagged else (
        f"rated lower, untested: {c.reference} - {c.level} = {fmt(difference)} (not testable: {reason})")
    return ControlCheck(c.base_setting, c.condition, c.reference, c.level, shown.test if shown else "", difference,
                        math.nan, math.nan, flagged, verdict)
