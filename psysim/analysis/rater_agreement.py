"""Agreement between raters, and test-retest of one rater across epochs.

From the ``rater_agreement`` frame (ratings by rater: ``in_loop`` for the ratings made during
the run, and one label per re-judge, ``scorers/rejudge.py``), per task and setting:

- **Between raters**, on the same items (Experiment 1: a session of a persona-run; Experiment 2:
  a candidate response of a snippet-run): ICC(2,1) (two-way random, absolute agreement, single
  rater) and Krippendorff's alpha (interval), with 95% CIs and n, for all raters together and,
  with more than two raters, for each pair. The statistics are
  :mod:`psysim.analysis.agreement`'s.
- **Test-retest** of each rater across epochs, on items whose rated text is the same in every
  epoch: the human response of Experiment 2 and of the rater-validity task. (Experiment 1's
  dialogues, and Experiment 2's LLM and revised responses, are new in each epoch: no retest.)
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd

from psysim.analysis.agreement import (
    Agreement,
    icc_2_1,
    krippendorff_alpha,
    wide_matrix,
)
from psysim.analysis.exp1 import missing_by_reason
from psysim.analysis.frames import (
    AGREEMENT,
    EXP1_TASK,
    EXP2_TASK,
    VALIDITY_TASK,
    Frames,
)
from psysim.analysis.plots import agreement_figures
from psysim.analysis.render import ci, fmt, markdown_table
from psysim.analysis.section import ReportOptions, Section, SectionResult

RETEST_ITEMS = {EXP2_TASK: ("human",), VALIDITY_TASK: ("rating",), EXP1_TASK: ()}
"""Per task, the item keys whose rated text is identical in every epoch (test-retest items)."""
COLUMNS = ["task", "setting", "comparison", "raters", "statistic", "value", "CI low", "CI high", "n items",
           "n raters", "n dropped", "note"]


def agreement_stats(matrix: np.ndarray, resamples: int, seed: int) -> list[Agreement]:
    """ICC(2,1) and Krippendorff's alpha (interval) of one items x raters matrix."""
    return [icc_2_1(matrix), krippendorff_alpha(matrix, level="interval", resamples=resamples, seed=seed)]


def _rows(task: str, setting: str, comparison: str, raters: list, results: list[Agreement]) -> list[dict]:
    return [{"task": task, "setting": setting, "comparison": comparison, "raters": " vs ".join(map(str, raters)),
             "statistic": r.statistic, "value": r.value, "CI low": r.ci_low, "CI high": r.ci_high,
             "n items": r.n_items, "n raters": r.n_raters, "n dropped": r.n_dropped, "note": r.note}
            for r in results]


def between_raters(task: str, setting: str, data: pd.DataFrame, options: ReportOptions) -> list[dict]:
    """All raters together, and each pair when there are more than two; items are (sample, run, key)."""
    frame = data.assign(unit=data["sample"] + "|" + data["run"] + "|" + data["item"])
    matrix, _, raters = wide_matrix(frame, "unit", "rater", "rating")
    if len(raters) < 2:
        return []
    rows = _rows(task, setting, "between raters", raters, agreement_stats(matrix, options.ci_resamples, options.seed))
    if len(raters) > 2:
        for a, b in combinations(range(len(raters)), 2):
            pair = matrix[:, [a, b]]
            rows += _rows(task, setting, "between raters (pair)", [raters[a], raters[b]],
                          agreement_stats(pair, options.ci_resamples, options.seed))
    return rows


def test_retest(task: str, setting: str, data: pd.DataFrame, options: ReportOptions) -> list[dict]:
    """Per rater, epochs as the columns, on the items whose text is the same in every epoch."""
    rows = []
    same = data[data["item"].isin(RETEST_ITEMS.get(task, ()))]
    for rater, group in same.groupby("rater", sort=True):
        # an item is a sample of one log (its epochs are the occasions); another log is another item
        eval_id = group["run"].str.rsplit(":", n=1).str[0]
        frame = group.assign(unit=eval_id + "|" + group["sample"] + "|" + group["item"],
                             occasion=group["epoch"].map(lambda e: f"epoch {e}"))
        matrix, _, epochs = wide_matrix(frame, "unit", "occasion", "rating")
        if len(epochs) < 2:
            continue
        rows += _rows(task, setting, f"test-retest of {rater} across epochs", epochs,
                      agreement_stats(matrix, options.ci_resamples, options.seed))
    return rows


def _sentence(row: dict) -> str:
    return (f"{row['statistic']} {fmt(row['value'])} (95% CI {ci(row['CI low'], row['CI high'])}; "
            f"n = {row['n items']} items, {row['n raters']} raters"
            + (f", {row['n dropped']} dropped" if row["n dropped"] else "")
            + (f"; {row['note']}" if row["note"] else "") + ")")


def _no_agreement_flag(group: pd.DataFrame) -> str:
    """Said plainly when the ICC gives no evidence of agreement: its CI reaches 0 or it has none."""
    icc = group[group["statistic"].str.startswith("ICC")]
    no_evidence = (icc["CI low"] <= 0).any() or icc["CI low"].isna().any()
    if icc.empty or not no_evidence:
        return ""
    return (". **FLAG: no evidence that these ratings agree** (the ICC's 95% CI reaches 0 or cannot be "
            "computed): one rater's numbers say little about the other's")


def build(frames: Frames, options: ReportOptions) -> SectionResult:
    section = SectionResult(title="Agreement between raters and test-retest")
    data = frames.ratings[AGREEMENT]
    rows: list[dict] = []
    for (task, setting), group in data.groupby(["task", "setting"], sort=True):
        rows += between_raters(str(task), str(setting), group, options)
        rows += test_retest(str(task), str(setting), group, options)
        if task == EXP1_TASK and group["epoch"].nunique() > 1:
            section.omissions.append(f"{task} [{setting}]: no test-retest: each epoch holds new dialogues")
    table = pd.DataFrame(rows, columns=COLUMNS)
    for (task, setting, comparison, raters), group in table.groupby(["task", "setting", "comparison", "raters"],
                                                                    sort=False):
        if comparison == "between raters (pair)":
            continue
        stats = "; ".join(_sentence(row) for row in group.to_dict("records"))
        flag = _no_agreement_flag(group)
        section.summary.append(f"Agreement [{task}, {setting}], {comparison} ({raters}): {stats}" + flag)
        if flag:  # shown at the top of the report
            section.warnings.append(f"**Rater agreement warning** [{task}, {setting}], {comparison} ({raters}): no "
                                    "evidence that these ratings agree (the ICC's 95% CI reaches 0 or cannot be computed).")
    lines = ["Do two raters give the same items the same rating, and does one rater repeat itself? Raters: "
             "`in_loop` (the ratings made during the run) and each re-judge (`inspect score ... --scorer "
             "scorers/rejudge.py@rejudge -S rater=<label>`). Between raters: the same items (Experiment 1: a session "
             "of a persona-run; Experiment 2: a candidate response of a snippet-run). Test-retest: one rater across "
             "epochs, on items whose text is the same in every epoch (the human response). ICC(2,1): two-way random "
             "effects, absolute agreement, single rater, 95% CI by McGraw & Wong (items with a missing rating "
             "dropped); Krippendorff's alpha (interval): missing ratings allowed, 95% CI by a bootstrap over items "
             f"({options.ci_resamples} resamples, seed {options.seed}). In Experiment 1 the in-loop client also saw "
             "its own earlier ratings and a re-judge does not, so in-loop vs re-judge agreement mixes rater and "
             "anchoring.", "",
             markdown_table(table, empty="_nothing to compare: one rater and one epoch_"), "",
             "Missing ratings by rater and reason (excluded, never imputed):", "",
             markdown_table(missing_by_reason(data, ["task", "setting", "rater"]), empty="_no missing ratings_"), ""]
    section.tables = {"agreement.csv": table, "agreement_ratings.csv": data}
    section.figures.update(agreement_figures(data))
    section.markdown = lines
    return section


SECTION = Section(task=AGREEMENT, title="Agreement between raters and test-retest",
                  primary_help="ICC(2,1) and Krippendorff's alpha (no choice)", default_primary="icc",
                  build=build)
