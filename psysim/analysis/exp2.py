"""Experiment 2 section: human vs LLM vs revised responses, rated by the client.

Paired t-tests over snippets (each snippet's runs averaged first). Primary: revised vs human by
default; the others secondary, Holm-adjusted. Effect size: the difference divided by the SD
between snippets (averaged over the two response types), which does not depend on the
correlation between the pair as d_z does.
"""

from __future__ import annotations

import math

import pandas as pd

from psysim.analysis.exp1 import missing_by_reason
from psysim.analysis.figures import response_types_figure
from psysim.analysis.frames import EXP2_TASK, Frames, out_of_range_lines
from psysim.analysis.paper_values import for_task
from psysim.analysis.plots import NoData
from psysim.analysis.render import (
    ci,
    fmt,
    fmt_df,
    markdown_table,
    not_testable_lines,
    p_phrase,
    render_tests,
    result_sentence,
)
from psysim.analysis.section import ReportOptions, Section, SectionResult
from psysim.analysis.stats import (
    NOT_TESTABLE,
    PRIMARY,
    SECONDARY,
    TestResult,
    apply_holm,
    mean_ci,
    not_testable,
    paired,
    result,
    snippet_means,
)
from psysim.solvers.human_comparison import RESPONSE_TYPES

CONTRASTS = (("llm", "human"), ("revised", "llm"), ("revised", "human"))
DEFAULT_PRIMARY = "revised-vs-human"
PRIMARY_HELP = f"A-vs-B of {', '.join(RESPONSE_TYPES)}; default {DEFAULT_PRIMARY}"
TEST = "paired t-test"
UNIT = "snippets (runs averaged)"
EFFECT = "SD between snippets"


def parse_primary(spec: str) -> tuple[str, str]:
    a, sep, b = spec.partition("-vs-")
    if not sep or a not in RESPONSE_TYPES or b not in RESPONSE_TYPES:
        raise ValueError(f"primary test for {EXP2_TASK} {spec!r}: expected {PRIMARY_HELP}")
    return a, b


def type_means(exp2: pd.DataFrame) -> pd.DataFrame:
    """Mean per response type over snippets (each snippet's runs averaged first), 95% CI."""
    columns = ["setting", "response_type", "mean", "ci_low", "ci_high", "snippets", "missing_snippets", "missing_inside"]
    if exp2.empty:
        return pd.DataFrame(columns=columns)
    rows = []
    wide = snippet_means(exp2)
    inside = _missing_inside(exp2)
    for setting, group in wide.groupby(level="setting", sort=True):
        for kind in [t for t in RESPONSE_TYPES if t in group]:
            mean, low, high, n = mean_ci(group[kind])
            rows.append({"setting": setting, "response_type": kind, "mean": mean, "ci_low": low, "ci_high": high,
                         "snippets": n, "missing_snippets": int(group[kind].isna().sum()),
                         "missing_inside": int(inside.get((setting, kind), 0))})
    return pd.DataFrame(rows, columns=columns)


def _missing_inside(exp2: pd.DataFrame) -> pd.Series:
    """Per (setting, response type): missing ratings of snippets that still have a mean (averaged away)."""
    frame = exp2.assign(missing=exp2["missing"].astype(bool))
    per = frame.groupby(["setting", "response_type", "snippet"]).agg(missing=("missing", "sum"), rated=("rating", "count"))
    per = per[per["rated"] > 0]
    return per.groupby(level=["setting", "response_type"])["missing"].sum()


def setting_tests(setting: str, wide: pd.DataFrame, exp2: pd.DataFrame, primary: tuple[str, str]) -> list[TestResult]:
    inside = _missing_inside(exp2[exp2["setting"] == setting])
    results = []
    for a, b in CONTRASTS:
        role = PRIMARY if (a, b) == primary else SECONDARY
        if a not in wide or b not in wide:
            results.append(not_testable(EXP2_TASK, setting, "rating", a, b, TEST, UNIT, role,
                                        "response type not rated in these logs", EFFECT))
            continue
        sd_a, sd_b = wide[a].std(ddof=1), wide[b].std(ddof=1)
        sd = math.sqrt((sd_a**2 + sd_b**2) / 2) if len(wide) > 1 else float("nan")
        within = int(inside.get((setting, a), 0) + inside.get((setting, b), 0))
        results.append(result(EXP2_TASK, setting, "rating", a, b, TEST, UNIT, role, wide[a], wide[b],
                              paired(wide[a], wide[b], "snippets with both ratings"), EFFECT, sd if sd > 0 else float("nan"),
                              paired_units=True, missing_within=within))
    return results


def build(frames: Frames, options: ReportOptions) -> SectionResult:
    section = SectionResult(title="Experiment 2: human comparison")
    exp2 = frames.exp2
    primary = parse_primary(SECTION.primary(options))
    means = type_means(exp2)
    section.tables = {"exp2_ratings.csv": exp2, "exp2_type_means.csv": means}
    section.figures["figure_response_types"] = (
        response_types_figure(exp2) if exp2["rating"].notna().any() else
        NoData("Client rating per response type", "no rated response in the Experiment 2 logs (every rating is "
               "missing; see the reasons below)"))
    lines = [f"Primary test (pre-declared; `--primary {EXP2_TASK}=...`): {primary[0]} vs {primary[1]}; the others "
             "secondary, Holm-adjusted within this experiment and setting.", "",
             f"{exp2['snippet'].nunique()} snippets, {exp2['run'].nunique()} run(s); each snippet's runs are averaged "
             "before means, CIs and tests.", "",
             markdown_table(means, caption="Mean rating per response type (95% CI over snippets, each snippet's "
                                   "runs averaged first)"), "",
             "Missing ratings by reason (excluded, never imputed):", "",
             markdown_table(missing_by_reason(exp2, ["setting", "response_type"]), empty="_no missing ratings_"), ""]
    bad = out_of_range_lines(exp2, ["setting", "snippet", "run", "response_type"], "rating(s)")
    section.warnings += [line for line in bad if line]
    lines += bad
    for setting, wide in snippet_means(exp2).groupby(level="setting", sort=True):
        tests = setting_tests(str(setting), wide.droplevel("setting"), exp2, primary)
        apply_holm(tests)
        section.tests += tests
        lines += [f"Paired tests over snippets [{setting}] (the primary, then secondary with Holm-adjusted p):", "",
                  render_tests(tests), ""]
        untestable = not_testable_lines(tests)
        lines += ["Not testable (each with the reason):", "", *untestable, ""] if untestable else []
        for test in tests:
            if test.role == PRIMARY:
                section.summary.append(f"Experiment 2 primary [{setting}]: " + result_sentence(test))
        for paper in for_task(EXP2_TASK):
            test = next((t for t in tests if (t.a, t.b) == (paper.a, paper.b)), None)
            if test is not None:
                section.paper_rows.append(_paper_row(paper, str(setting), test))
        section.omissions += [f"{EXP2_TASK} [{setting}]: {line[2:]}" for line in not_testable_lines(tests)]
    section.markdown = lines
    return section


def _paper_row(paper, setting: str, t: TestResult) -> dict:  # noqa: ANN001
    shown = (f"not testable ({t.reason})" if t.status == NOT_TESTABLE else
             f"t({fmt_df(t.df)}) = {fmt(t.statistic)}, {p_phrase(t.p)}; diff {fmt(t.difference)} [{ci(t.ci_low, t.ci_high)}]")
    agrees = "–" if t.status == NOT_TESTABLE else ("yes" if t.difference > 0 and t.p < 0.05 else "no")
    return {"claim": paper.claim, "paper": f"t({paper.df}) = {paper.t}, p {paper.p}", "setting": setting,
            "this run, same unit": shown, "this run, recommended": f"{t.test} over {t.unit} (same)",
            "agrees (recommended: same direction, p < .05)": agrees}


SECTION = Section(task=EXP2_TASK, title="Experiment 2: human comparison", primary_help=PRIMARY_HELP,
                  default_primary=DEFAULT_PRIMARY, build=build)
