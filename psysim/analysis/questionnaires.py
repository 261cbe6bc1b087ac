"""Questionnaires section: Experiment 1 logs run with ``-T questionnaires=...``.

Rows come from the ``client_questionnaires`` scorer (:func:`psysim.analysis.frames.questionnaire_rows`):
one per (setting, condition, persona, run, session, measure), a measure being
``<instrument key>_<scale>`` (``srs_total``, ``wai_bond``). The section shows:

- each instrument's total by session per condition, with 95% bands over runs (a figure like
  figure B, one per total);
- the same condition contrasts as the 0-100 rating (:func:`psysim.analysis.exp1.setting_tests`:
  the mixed model, Welch over runs, paired over personas; descriptive Welch over persona-runs)
  on each total. All are secondary (Holm-adjusted within the questionnaires and setting): the
  pre-declared primary test is the rating's;
- convergent validity: each measure's correlation with the 0-100 rating of the same session,
  across the held sessions where both are present. Sessions of one persona-run are not
  independent, so its interval and p are descriptive.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from scipy import stats

from psysim.analysis import exp1
from psysim.analysis.figures import sessions_figure
from psysim.analysis.frames import (
    EXP1_TASK,
    QUESTIONNAIRES,
    Frames,
    measure_with_integrity,
)
from psysim.analysis.mixed import MixedSettings, fit_exp1_mixed
from psysim.analysis.render import fmt, markdown_table, not_testable_lines, render_tests
from psysim.analysis.section import ReportOptions, Section, SectionResult
from psysim.analysis.stats import (
    DESCRIPTIVE,
    PRIMARY,
    SECONDARY,
    TestResult,
    apply_holm,
)

TITLE = "Questionnaires (Experiment 1)"
NO_PRIMARY = "none"
PRIMARY_HELP = "none (every questionnaire contrast is secondary; the primary test is the 0-100 rating's)"


def total_measures(frame: pd.DataFrame) -> list[str]:
    """The measures that are an instrument's total (``srs_total``, ``wai_total``), sorted."""
    return sorted(str(m) for m in frame["measure"].unique() if str(m).endswith("_total"))


def as_ratings(frame: pd.DataFrame, measure: str) -> pd.DataFrame:
    """One measure in the shape of the Experiment 1 ratings frame (``rating`` = its score)."""
    return frame[frame["measure"] == measure].drop(columns=["rating"], errors="ignore").rename(columns={"value": "rating"})


def convergent_validity(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (setting, measure): Pearson r (95% Fisher-z interval) and Spearman rho with the 0-100
    rating, over sessions where both are present; a correlation that cannot be computed says why."""
    columns = ["setting", "measure", "sessions", "missing", "pearson_r", "ci_low", "ci_high", "p",
               "spearman_rho", "note"]
    rows = []
    for (setting, measure), group in frame.groupby(["setting", "measure"], sort=True):
        both = group.dropna(subset=["value", "rating"])
        n = len(both)
        row = {"setting": setting, "measure": measure, "sessions": n, "missing": int(len(group) - n),
               "pearson_r": math.nan, "ci_low": math.nan, "ci_high": math.nan, "p": math.nan,
               "spearman_rho": math.nan, "note": ""}
        if n < 3:
            row["note"] = f"not computed: needs 3 sessions with both scores (have {n})"
        elif both["value"].nunique() < 2 or both["rating"].nunique() < 2:
            which = f"the {measure} score" if both["value"].nunique() < 2 else "the 0-100 rating"
            row["note"] = f"not computed: {which} does not vary"
        else:
            r, p = stats.pearsonr(both["value"], both["rating"])
            row.update(pearson_r=float(r), p=float(p),
                       spearman_rho=float(stats.spearmanr(both["value"], both["rating"]).statistic))
            if n > 3 and abs(r) < 1:
                z, half = float(np.arctanh(r)), 1.959964 / math.sqrt(n - 3)
                row.update(ci_low=float(np.tanh(z - half)), ci_high=float(np.tanh(z + half)))
            row["note"] = "descriptive: sessions of one persona-run are not independent"
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)


def measure_tests(measure: str, data: pd.DataFrame, options: ReportOptions,
                  experiment: str = QUESTIONNAIRES) -> list[TestResult]:
    """The Experiment 1 contrasts on one further measure (a questionnaire total, the safety
    score), relabelled as ``experiment``'s and made secondary."""
    tests: list[TestResult] = []
    for setting, setting_data in data.groupby("setting", sort=True):
        fit = fit_exp1_mixed(setting_data, MixedSettings(reference=exp1.REFERENCE))
        for test in exp1.setting_tests(str(setting), setting_data, fit, ("", "", "")):
            if test.role not in (PRIMARY, SECONDARY, DESCRIPTIVE):
                continue  # the paper's apparent unit is for the paper comparison of the rating only
            test.experiment, test.measure = experiment, f"{measure}: {test.measure}"
            test.role = SECONDARY if test.role == PRIMARY else test.role
            tests.append(test)
    return tests


def contrast_lines(section: SectionResult, tests: list[TestResult], what: str, family: str, name: str) -> list[str]:
    """Report lines of the secondary contrasts on a further measure (``what``), Holm-adjusted
    within ``family``; the tests that could not be run go to ``section.omissions``."""
    section.omissions += [f"{name}: {line[2:]}" for line in not_testable_lines(tests)]
    return [f"Condition contrasts on {what}: the same tests as the 0-100 rating, all secondary "
            f"(Holm-adjusted within {family} and setting; the primary test is {EXP1_TASK}'s):", "",
            render_tests([t for t in tests if t.role == SECONDARY]), "",
            "Descriptive only: Welch over persona-runs.", "",
            render_tests([t for t in tests if t.role == DESCRIPTIVE]), ""]


def _figure(measure: str, means: pd.DataFrame, data: pd.DataFrame) -> go.Figure:
    """Figure (B) for one questionnaire total, its y axis spanning the scale's range."""
    figure = sessions_figure(means, data.drop(columns=["baseline"], errors="ignore"))
    low, high = float(data["scale_min"].min()), float(data["scale_max"].max())
    known = not (math.isnan(low) or math.isnan(high))  # ranges come from the scorer's metadata
    figure.update_layout(
        title=f"{measure} by session (mean, 95% CI over runs; each run's personas averaged)",
        yaxis_title=measure + (f" ({low:g}–{high:g})" if known else ""),
    )
    figure.update_yaxes(range=[low, high] if known else None, autorange=not known)
    return figure


def build(frames: Frames, options: ReportOptions) -> SectionResult:
    """The questionnaires section (see the module docstring)."""
    if SECTION.primary(options) != NO_PRIMARY:
        raise ValueError(f"--primary {QUESTIONNAIRES}=...: this section has no primary test ({PRIMARY_HELP})")
    section = SectionResult(title=TITLE)
    frame = measure_with_integrity(frames.ratings[QUESTIONNAIRES], frames.exp1, ("value",))
    lines = ["The client's questionnaire scores from the `client_questionnaires` scorer. The shipped instruments "
             "use adapted (paraphrased) wording, not the validated SRS / WAI-SR text. Missing scores (a failed or "
             "incomplete questionnaire, a session not held, a session that fails the integrity check and the later "
             "sessions of its course) are excluded and counted, never imputed or prorated.", ""]
    counts = (frame.assign(missing=frame["missing"].astype(bool))
              .groupby(["setting", "condition", "measure"])["missing"]
              .agg(scores=lambda m: int((~m).sum()), missing="sum").reset_index())
    lines += ["Scores and missing scores:", "", markdown_table(counts), ""]
    missing = frame[frame["missing"].astype(bool)]
    if not missing.empty:
        reasons = missing.groupby(["setting", "condition", "measure", "reason"]).size().rename("missing").reset_index()
        lines += ["Missing scores by reason:", "", markdown_table(reasons), ""]

    means_tables, tests = [], []
    for measure in total_measures(frame):
        data = as_ratings(frame, measure)
        means = exp1.session_means(data)
        means_tables.append(means.assign(measure=measure))
        section.figures[f"figure_{measure}"] = _figure(measure, means, data)
        tests += measure_tests(measure, data, options)
    apply_holm(tests)
    section.tests = tests
    means_all = pd.concat(means_tables, ignore_index=True) if means_tables else pd.DataFrame()
    validity = convergent_validity(frame)
    section.tables = {"questionnaire_scores.csv": frame, "questionnaire_session_means.csv": means_all,
                      "questionnaire_convergent_validity.csv": validity}
    lines += ["Mean total by session (95% CI over runs; each run's personas averaged first):", "",
              markdown_table(means_all), ""]
    lines += contrast_lines(section, tests, "each total", "the questionnaires", QUESTIONNAIRES)
    lines += ["Convergent validity: each score's correlation with the 0-100 rating of the same session, over the "
              "sessions where both are present (descriptive: sessions of one persona-run are not independent):",
              "", markdown_table(validity), ""]
    for row in validity.itertuples(index=False):
        if str(row.measure).endswith("_total") and not math.isnan(row.pearson_r):
            section.summary.append(f"Questionnaires [{row.setting}]: {row.measure} vs the 0-100 rating: "
                                   f"r = {fmt(row.pearson_r)} over {row.sessions} sessions (descriptive)")
    section.markdown = lines
    return section


SECTION = Section(task=QUESTIONNAIRES, title=TITLE, primary_help=PRIMARY_HELP, default_primary=NO_PRIMARY,
                  build=build)
