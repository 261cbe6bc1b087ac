"""Experiment 1 section: iterative feedback, conditions compared over sessions.

Primary analysis: the two-stage mixed model of :mod:`psysim.analysis.mixed`, one per setting.
Secondary tests (Holm-adjusted within the experiment and setting): the same contrasts from the
mixed model on the other measure, Welch's t-test over runs (each run's personas averaged: the study's
independent runs) and a paired t-test over personas (each persona's runs averaged). Descriptive
only: Welch over persona-runs (treats a persona's runs as independent). For the paper
comparison only: a paired t-test over the session means (df = sessions - 1).

Every row is of one quantity with its unit: the slope (points per session) or the final-session
rating (points); the mixed model's "mean a" and "mean b" are its condition means, so diff =
mean a - mean b on every row. The paper side by side compares the paper's level difference with
this run's level difference (mean rating over sessions, points) by the mixed model.

Effect sizes: the difference divided by the SD between persona-runs (pooled within the two
conditions) of the same measure, so they do not depend on how many personas a run averages.

Settings that differ only in a setting factor (the therapist style) are compared with the same
tests (:mod:`psysim.analysis.factors`); a negative-control style the rater does not rate lower
is flagged.
"""

from __future__ import annotations

import pandas as pd

from psysim.analysis.factors import compare_levels, negative_control
from psysim.analysis.figures import sessions_figure
from psysim.analysis.frames import EXP1_TASK, SETTING_FACTORS, Frames, apply_integrity, out_of_range_lines, run_summary
from psysim.analysis.mixed import MixedFit, MixedSettings, fit_exp1_mixed
from psysim.analysis.paper_values import for_task
from psysim.analysis.plots import NoData, trajectories_figure
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
    DESCRIPTIVE,
    NOT_TESTABLE,
    PAPER,
    PRIMARY,
    SECONDARY,
    Estimate,
    TestResult,
    apply_holm,
    mean_ci,
    not_testable,
    paired,
    pooled_sd,
    result,
    welch,
)
from psysim.prompts.therapist_styles import NEGATIVE_CONTROLS

REFERENCE = "none"
# Levels of a setting factor that a valid rater rates lower than the factor's reference level
# (negative controls), checked by _factor_lines.
EXPECTED_LOWER = {"therapist": NEGATIVE_CONTROLS}
CONTRASTS = (("expert", "none"), ("expert", "generic"), ("generic", "none"))
MEASURES = {"slope": "change per session (points per session)", "final": "final-session rating (points)"}
PAPER_MEASURE = "mean rating over sessions (points)"
DEFAULT_PRIMARY = "expert-vs-none:slope"
PRIMARY_HELP = ("A-vs-B:MEASURE, MEASURE slope (change per session: each persona-run's least-squares slope, "
                f"compared by the mixed model) or final; default {DEFAULT_PRIMARY}")

MIXED = "mixed model (two-stage REML, Satterthwaite df)"
MIXED_UNIT = "persona-runs (personas x conditions, runs within conditions)"
RUNS = "Welch t-test"
PERSONAS = "paired t-test"
PERSONA_RUNS = "Welch t-test, descriptive only"
SESSION_MEANS = "paired t-test over session means (the paper's apparent unit; not recommended)"
EFFECT = "SD between persona-runs"
SESSIONS_TITLE = "Client satisfaction by session (mean, 95% CI over runs)"


def parse_primary(spec: str) -> tuple[str, str, str]:
    """``expert-vs-none:slope`` -> ("expert", "none", "slope"); ValueError names what is wrong."""
    contrast, _, measure = spec.partition(":")
    a, sep, b = contrast.partition("-vs-")
    measure = measure or "slope"
    if not sep or not a or not b or measure not in MEASURES:
        raise ValueError(f"primary test for {EXP1_TASK} {spec!r}: expected {PRIMARY_HELP}")
    return a, b, measure


def contrasts_for(conditions: list[str]) -> list[tuple[str, str]]:
    """The default contrasts (listed even when a condition is absent), then any other condition vs none."""
    known = {c for pair in CONTRASTS for c in pair}
    return list(CONTRASTS) + [(c, REFERENCE) for c in sorted(conditions) if c not in known]


def session_means(exp1: pd.DataFrame) -> pd.DataFrame:
    """Per (setting, condition, session): mean and 95% CI over runs, each run's personas averaged.

    ``missing_runs`` counts runs with no rating at that session; ``missing_inside`` the persona
    ratings averaged away inside the runs used.
    """
    columns = ["setting", "condition", "session", "mean", "ci_low", "ci_high", "runs", "missing_runs", "missing_inside"]
    if exp1.empty:
        return pd.DataFrame(columns=columns)
    per_run = (exp1.assign(missing=exp1["missing"].astype(bool))
               .groupby(["setting", "condition", "session", "run"])
               .agg(rating=("rating", "mean"), missing=("missing", "sum")).reset_index())
    rows = []
    for (setting, condition, session), group in per_run.groupby(["setting", "condition", "session"], sort=True):
        mean, low, high, n = mean_ci(group["rating"])
        used = group["rating"].notna()
        rows.append({"setting": setting, "condition": condition, "session": int(session), "mean": mean,
                     "ci_low": low, "ci_high": high, "runs": n, "missing_runs": int((~used).sum()),
                     "missing_inside": int(group.loc[used, "missing"].sum())})
    return pd.DataFrame(rows, columns=columns)


def _mixed_result(setting: str, fit: MixedFit, a: str, b: str, measure: str, label: str, role: str,
                  xa: pd.Series, xb: pd.Series, sd: float, inside: int) -> TestResult:
    """The mixed model's row: mean a, mean b and diff are all the model's (condition means and
    their difference), so diff = mean a - mean b."""
    if not fit.fitted:
        estimate, means = Estimate(reason=f"mixed model not fitted: {fit.reason}"), None
    elif a not in fit.conditions or b not in fit.conditions:
        estimate, means = Estimate(reason="condition without rated sessions"), None
    else:
        c = fit.contrast(a, b, measure)
        estimate = Estimate(c.estimate, c.ci_low, c.ci_high, c.statistic, c.df, c.p, c.reason)
        means = (c.mean_a, c.mean_b)
    row = result(EXP1_TASK, setting, label, a, b, MIXED, MIXED_UNIT, role, xa, xb, estimate, EFFECT, sd,
                 missing_within=inside)
    if means is not None:
        row.mean_a, row.mean_b = means
    return row


def _missing_inside(units: pd.DataFrame, by: str, measure: str) -> int:
    """Ratings averaged away inside the units that have a value."""
    column = "missing_sessions" if measure == "slope" else "_final_missing"
    frame = units.assign(_final_missing=units["final"].isna().astype(int))
    values = frame.groupby(by)[measure].mean()
    used = values[values.notna()].index
    return int(frame[frame[by].isin(used)][column].sum())


def setting_tests(setting: str, data: pd.DataFrame, fit: MixedFit, primary: tuple[str, str, str],
                  contrasts: list[tuple[str, str]] | None = None) -> list[TestResult]:
    """Every test of one setting (not-testable ones included, with their reasons).

    The compared levels are those of the ``condition`` column; ``contrasts`` (default: the
    conditions') lets the same tests compare other levels, e.g. therapist styles.
    """
    runs = fit.units if fit.units is not None else run_summary(data)
    present = set(map(str, data["condition"].unique()))
    results: list[TestResult] = []
    for a, b in contrasts if contrasts is not None else contrasts_for(sorted(present)):
        absent = [c for c in (a, b) if c not in present]
        for measure, label in MEASURES.items():
            role = PRIMARY if (a, b, measure) == primary else SECONDARY
            tests = ((MIXED, MIXED_UNIT, role), (RUNS, "runs (personas averaged)", SECONDARY),
                     (PERSONAS, "personas (runs averaged)", SECONDARY), (PERSONA_RUNS, "persona-runs", DESCRIPTIVE))
            if absent:
                reason = f"no logs of condition {' or '.join(repr(c) for c in absent)} in this setting"
                results += [not_testable(EXP1_TASK, setting, label, a, b, test, unit, r, reason, EFFECT)
                            for test, unit, r in tests]
                continue
            ga, gb = runs[runs["condition"] == a], runs[runs["condition"] == b]
            sd = pooled_sd(ga[measure], gb[measure])
            pr_a, pr_b = ga[measure].reset_index(drop=True), gb[measure].reset_index(drop=True)
            # ratings missing inside the persona-runs that have a value; a persona-run with no value
            # is counted once, as a missing unit. A final-session rating averages nothing.
            inside = int(ga.loc[ga["slope"].notna(), "missing_sessions"].sum()
                         + gb.loc[gb["slope"].notna(), "missing_sessions"].sum()) if measure == "slope" else 0
            results.append(_mixed_result(setting, fit, a, b, measure, label, role, pr_a, pr_b, sd, inside))
            ra, rb = ga.groupby("run")[measure].mean(), gb.groupby("run")[measure].mean()
            results.append(result(EXP1_TASK, setting, label, a, b, RUNS, "runs (personas averaged)", SECONDARY,
                                  ra, rb, welch(ra, rb, "runs"), EFFECT, sd,
                                  missing_within=_missing_inside(ga, "run", measure) + _missing_inside(gb, "run", measure)))
            pa, pb = ga.groupby("persona")[measure].mean(), gb.groupby("persona")[measure].mean()
            common = pa.index.union(pb.index)
            pa, pb = pa.reindex(common), pb.reindex(common)
            results.append(result(EXP1_TASK, setting, label, a, b, PERSONAS, "personas (runs averaged)", SECONDARY,
                                  pa, pb, paired(pa, pb, "personas in both conditions"), EFFECT, sd, paired_units=True,
                                  missing_within=_missing_inside(ga, "persona", measure) + _missing_inside(gb, "persona", measure)))
            results.append(result(EXP1_TASK, setting, label, a, b, PERSONA_RUNS, "persona-runs", DESCRIPTIVE,
                                  pr_a, pr_b, welch(pr_a, pr_b, "persona-runs"), EFFECT, sd,
                                  missing_within=inside))
        results.append(_session_means_test(setting, data, runs, a, b, absent))
        results.append(_paper_level_test(setting, fit, runs, a, b, absent))
    return results


def _session_means_test(setting: str, data: pd.DataFrame, runs: pd.DataFrame, a: str, b: str,
                        absent: list[str]) -> TestResult:
    measure = PAPER_MEASURE
    effect = "SD between persona-runs of the mean rating"
    if absent:
        return not_testable(EXP1_TASK, setting, measure, a, b, SESSION_MEANS, "sessions", PAPER,
                            f"no logs of condition {' or '.join(repr(c) for c in absent)} in this setting", effect)
    sa = data[data["condition"] == a].groupby("session")["rating"].mean()
    sb = data[data["condition"] == b].groupby("session")["rating"].mean()
    index = sa.index.union(sb.index)
    sa, sb = sa.reindex(index), sb.reindex(index)
    level = data.groupby(["condition", "persona", "run"])["rating"].mean().reset_index()
    sd = pooled_sd(level[level["condition"] == a]["rating"], level[level["condition"] == b]["rating"])
    missing = int(data[data["condition"].isin([a, b])]["missing"].astype(bool).sum())
    return result(EXP1_TASK, setting, measure, a, b, SESSION_MEANS, "sessions", PAPER, sa, sb,
                  paired(sa, sb, "sessions"), effect, sd, paired_units=True, missing_within=missing)


def _paper_level_test(setting: str, fit: MixedFit, runs: pd.DataFrame, a: str, b: str,
                      absent: list[str]) -> TestResult:
    """The paper's quantity (the difference in rating level, here the mean over sessions) by the
    recommended mixed model, for the side by side with the paper only."""
    if absent:
        return not_testable(EXP1_TASK, setting, PAPER_MEASURE, a, b, MIXED, MIXED_UNIT, PAPER,
                            f"no logs of condition {' or '.join(repr(c) for c in absent)} in this setting", EFFECT)
    ga, gb = runs[runs["condition"] == a], runs[runs["condition"] == b]
    inside = int(ga.loc[ga["mean"].notna(), "missing_sessions"].sum() + gb.loc[gb["mean"].notna(), "missing_sessions"].sum())
    return _mixed_result(setting, fit, a, b, "mean", PAPER_MEASURE, PAPER, ga["mean"].reset_index(drop=True),
                         gb["mean"].reset_index(drop=True), pooled_sd(ga["mean"], gb["mean"]), inside)


def _overview(exp1: pd.DataFrame) -> pd.DataFrame:
    per_pr = exp1.groupby(["setting", "condition", "persona", "run"]).agg(
        status=("course_status", "first"), rated=("missing", lambda m: int((~m.astype(bool)).sum())))
    per_pr = per_pr.reset_index()
    rows = []
    for (setting, condition), group in exp1.groupby(["setting", "condition"], sort=True):
        units = per_pr[(per_pr["setting"] == setting) & (per_pr["condition"] == condition)]
        rows.append({
            "setting": setting, "condition": condition, "runs": group["run"].nunique(),
            "personas": group["persona"].nunique(), "persona-runs": len(units), "sessions": int(group["sessions"].max()),
            "ratings": int((~group["missing"].astype(bool)).sum()), "missing": int(group["missing"].astype(bool).sum()),
            "ended early": int((units["status"] == "ended_early").sum()),
            "not scored": int((units["status"] == "not_scored").sum()),
        })
    return pd.DataFrame(rows)


def missing_by_reason(frame: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Counts of missing ratings by reason code (the text before the first ':' of ``missing_reasons``)."""
    missing = frame[frame["missing"].astype(bool)]
    if missing.empty:
        return pd.DataFrame(columns=[*by, "reason", "missing ratings"])
    return (missing.groupby([*by, "reason"]).size().rename("missing ratings").reset_index())


def ended_by_reason(exp1: pd.DataFrame) -> pd.DataFrame:
    """Persona-runs whose course ended early, counted by the reason code of ``Score.metadata["ended"]``."""
    per = exp1.drop_duplicates(["setting", "condition", "persona", "run"])
    per = per[per["course_status"] == "ended_early"]
    if per.empty:
        return pd.DataFrame(columns=["setting", "condition", "reason", "persona-runs"])
    per = per.assign(reason=per["ended_reason"].replace("", "unrecorded"))
    return per.groupby(["setting", "condition", "reason"]).size().rename("persona-runs").reset_index()


def _incomplete_runs(data: pd.DataFrame) -> list[str]:
    counts = data.groupby(["condition", "run"])["persona"].nunique()
    full = data["persona"].nunique()
    return [f"run {run} ({condition}) has {n} of {full} personas: the others were not run or not written"
            for (condition, run), n in counts.items() if n < full]


def build(frames: Frames, options: ReportOptions) -> SectionResult:
    """The Experiment 1 section (see the module docstring)."""
    section = SectionResult(title="Experiment 1: iterative feedback")
    every_session = frames.exp1
    exp1 = apply_integrity(every_session)  # the primary statistics use the sessions that pass integrity
    primary = parse_primary(SECTION.primary(options))
    means = session_means(exp1)
    runs_table = run_summary(exp1)
    section.tables = {"exp1_ratings.csv": exp1, "exp1_runs.csv": runs_table, "exp1_session_means.csv": means}
    section.figures["figure_sessions"] = (sessions_figure(means, exp1) if means["mean"].notna().any() else
                                          NoData(SESSIONS_TITLE, "no rated session in the Experiment 1 logs (every "
                                                 "rating is missing or excluded; see the reasons below)"))
    section.figures["figure_trajectories"] = trajectories_figure(exp1)
    lines = [f"Primary test (pre-declared; `--primary {EXP1_TASK}=...`): {primary[0]} vs {primary[1]}, "
             f"{MEASURES[primary[2]]}, from the mixed model. Every other test is secondary (Holm-adjusted "
             "within this experiment and setting) or labelled descriptive.", ""]
    lines += ["Overview (a persona-run is one persona's course in one run; a run is one epoch of one log):", "",
              markdown_table(_overview(exp1)), ""]
    lines += integrity_lines(every_session)
    bad = out_of_range_lines(every_session, ["setting", "condition", "persona", "run", "session"], "rating(s)")
    section.warnings += [line for line in bad if line]
    lines += bad
    reasons = missing_by_reason(exp1, ["setting", "condition"])
    lines += ["Missing ratings by reason (excluded from every statistic, never imputed):", "",
              markdown_table(reasons, empty="_no missing ratings_"), ""]
    endings = ended_by_reason(exp1)
    if not endings.empty:
        lines += ["Courses that ended early, by reason (their later sessions are missing as `not_held`):", "",
                  markdown_table(endings), ""]
    fixed_tables, components_tables = [], []
    for setting, data in exp1.groupby("setting", sort=True):
        fit = fit_exp1_mixed(data, MixedSettings(reference=REFERENCE))
        tests = setting_tests(str(setting), data, fit, primary)
        apply_holm(tests)
        section.tests += tests
        lines += [f"### Setting: {setting}", ""]
        lines += _tests_lines(tests)
        if fit.fitted:
            fit.fit_all()
        lines += _mixed_lines(fit)
        if fit.fitted:
            fixed_tables.append(fit.fixed_effects().assign(setting=setting))
            components_tables.append(fit.components().assign(setting=setting))
        for line in _incomplete_runs(data):
            section.omissions.append(f"{EXP1_TASK} [{setting}]: {line}")
        section.omissions += [f"{EXP1_TASK} [{setting}]: mixed model: {fit.reason}"] if not fit.fitted else []
        for test in tests:
            if test.role == PRIMARY:
                section.summary.append(f"Experiment 1 primary [{setting}]: " + result_sentence(test))
        for a, b in contrasts_for(sorted(map(str, data["condition"].unique()))):
            _paper_rows(section, str(setting), a, b, tests)
        section.omissions += [f"{EXP1_TASK} [{setting}]: {line[2:]}" for line in not_testable_lines(tests)]
    lines += _all_sessions_lines(section, every_session, exp1, primary, options)
    if fixed_tables:
        section.tables["exp1_mixed_fixed_effects.csv"] = pd.concat(fixed_tables)
        section.tables["exp1_mixed_variance_components.csv"] = pd.concat(components_tables)
    lines += ["Mean rating by session (95% CI over runs; each run's personas averaged first):", "",
              markdown_table(means), ""]
    lines += _factor_lines(section, exp1, options)
    section.markdown = lines
    return section


def _factor_lines(section: SectionResult, exp1: pd.DataFrame, options: ReportOptions) -> list[str]:
    """Settings that differ only in a design factor (the therapist style), compared with the
    conditions' tests; a negative-control level the rater does not rate lower is flagged."""
    lines: list[str] = []
    checks = []
    for factor, reference in SETTING_FACTORS[EXP1_TASK].items():
        def tests(label: str, data: pd.DataFrame, contrasts: list[tuple[str, str]]) -> list[TestResult]:
            fit = fit_exp1_mixed(data, MixedSettings(reference=reference))
            a, b = contrasts[0]
            # the paper's apparent unit is for the side-by-side with the paper only
            found = [t for t in setting_tests(label, data, fit, (a, b, "final"), contrasts) if t.role != PAPER]
            apply_holm(found)
            return found

        comparisons, notes = compare_levels(exp1, factor, reference, tests)
        section.omissions += [f"{EXP1_TASK}: {note}" for note in notes]
        for comparison in comparisons:
            section.tests += comparison.tests
            lines += [f"### {factor}: {reference} vs {comparison.level} [{comparison.base_setting}, condition "
                      f"{comparison.condition}]", "",
                      f"The two {factor} settings are analysed apart above and never pooled; here the conditions' "
                      f"tests compare them (primary of this comparison: the final-session rating, mixed model).", ""]
            lines += _tests_lines(comparison.tests)
            if comparison.level in EXPECTED_LOWER.get(factor, ()):
                check = negative_control(comparison, MEASURES["final"], (MIXED, RUNS, PERSONAS))
                checks.append(check)
                lines += [f"Negative control: {check.verdict}.", ""]
                section.summary.append(f"Negative control [{comparison.base_setting}, condition {comparison.condition}]: "
                                       f"{check.verdict}")
    if checks:
        section.tables["exp1_negative_control.csv"] = pd.DataFrame([vars(c) for c in checks])
    return lines


INTEGRITY_CODES = ("integrity", "integrity_upstream")
ALL_SESSIONS = "all sessions"


def integrity_excluded(every_session: pd.DataFrame) -> pd.DataFrame:
    """Ratings the integrity rule takes out of the primary statistics, per setting and condition:
    ``flagged`` (the failing session itself) and ``later`` (later sessions of its course)."""
    rated = every_session[~every_session["missing"].astype(bool)]
    rows = []
    for (setting, condition), group in rated.groupby(["setting", "condition"], sort=True):
        flagged, later = int((group["integrity"] == "fail").sum()), int((group["integrity"] == "excluded").sum())
        unchecked = int((group["integrity"] == "").sum())
        rows.append({"setting": setting, "condition": condition, "ratings": len(group), "excluded: flagged": flagged,
                     "excluded: later sessions": later, "used": len(group) - flagged - later,
                     "not checked (no integrity score)": unchecked})
    return pd.DataFrame(rows)


def integrity_lines(every_session: pd.DataFrame) -> list[str]:
    table = integrity_excluded(every_session)
    return ["Simulation integrity (see its section): the statistics below use the sessions that pass. A session "
            "that fails, and every later session of its course (its dialogue depends on the failed one), is "
            "excluded: its rating counts as missing with reason `integrity` or `integrity_upstream`. The same "
            "statistics on all sessions follow at the end of this section.", "",
            markdown_table(table, empty="_no ratings_", caption="Ratings excluded by the integrity check"), ""]


def _all_sessions_lines(section: SectionResult, every_session: pd.DataFrame, used: pd.DataFrame,
                        primary: tuple[str, str, str], options: ReportOptions) -> list[str]:
    """The same tests on all sessions (integrity exclusions put back), for each setting with exclusions."""
    lines = ["### The same statistics on all sessions (integrity exclusions included)", ""]
    changed = False
    for setting, data in every_session.groupby("setting", sort=True):
        filtered = used[used["setting"] == setting]
        excluded = int(filtered["reason"].isin(INTEGRITY_CODES).sum())
        if not excluded:
            continue
        changed = True
        label = f"{setting} ({ALL_SESSIONS})"
        fit = fit_exp1_mixed(data, MixedSettings(reference=REFERENCE))
        tests = setting_tests(label, data, fit, primary)
        apply_holm(tests)
        section.tests += tests
        lines += [f"Setting {setting}: {excluded} rating(s) excluded above are included here.", "",
                  f"Tests on all sessions [{setting}]:", "",
                  render_tests([t for t in tests if t.role in (PRIMARY, SECONDARY)]), ""]
        for test in tests:
            if test.role == PRIMARY:
                section.summary.append(f"Experiment 1 primary on all sessions [{setting}], {excluded} integrity "
                                       "exclusion(s) put back: " + result_sentence(test))
    if not changed:
        lines += ["No rating was excluded for integrity: the statistics on all sessions are the ones above.", ""]
    return lines


def _tests_lines(tests: list[TestResult]) -> list[str]:
    lines = ["Tests (the primary, then secondary with Holm-adjusted p):", "",
             render_tests([t for t in tests if t.role in (PRIMARY, SECONDARY)]), "",
             "Descriptive only (not corrected, not in the summary): Welch over persona-runs treats the runs of "
             "one persona as independent (pseudo-replication).", "",
             render_tests([t for t in tests if t.role == DESCRIPTIVE]), "",
             "The paper's apparent unit (paired over the session means, df = sessions - 1; shown for the paper "
             "comparison, not recommended: it ignores persona and run variation):", "",
             render_tests([t for t in tests if t.role == PAPER]), ""]
    untestable = not_testable_lines(tests)
    if untestable:
        lines += ["Not testable (each with the reason):", "", *untestable, ""]
    return lines


def _mixed_lines(fit: MixedFit) -> list[str]:
    if not fit.fitted:
        return [f"Mixed model: **cannot be fitted**: {fit.reason}.", ""]
    lines = [
        f"Mixed model (two stages; see docs/report.md, \"The primary test\"): each persona-run's sessions reduced to "
        f"its slope, final-session rating and mean rating ({fit.n_obs} ratings, {fit.n_missing} missing, left out; "
        f"{fit.n_personas} personas, {fit.n_runs} runs); then per measure, summary ~ condition with random "
        "intercepts for persona, persona x condition and run (within condition), fitted by REML; 95% CIs and p "
        "from t with Satterthwaite df. Condition means:", "",
        markdown_table(fit.fixed_effects()), "",
        "Variance components:", "", markdown_table(fit.components()), "",
    ]
    lines += [f"Note: {note}." for note in fit.notes()]
    return lines + [""]


def _paper_rows(section: SectionResult, setting: str, a: str, b: str, tests: list[TestResult]) -> None:
    for paper in for_task(EXP1_TASK):
        if (paper.a, paper.b) != (a, b):
            continue
        unit = next(t for t in tests if t.a == a and t.b == b and t.role == PAPER and t.test == SESSION_MEANS)
        recommended = next(t for t in tests if t.a == a and t.b == b and t.role == PAPER and t.test == MIXED)
        section.paper_rows.append(_paper_row(paper, setting, unit, recommended))


def _paper_row(paper, setting: str, same_unit: TestResult, recommended: TestResult) -> dict:  # noqa: ANN001
    def show(t: TestResult) -> str:
        if t.status == NOT_TESTABLE:
            return f"not testable ({t.reason})"
        return (f"t({fmt_df(t.df)}) = {fmt(t.statistic)}, {p_phrase(t.p)}; diff {fmt(t.difference)} points "
                f"[{ci(t.ci_low, t.ci_high)}]")

    agrees = "–"
    if recommended.status != NOT_TESTABLE:
        agrees = "yes" if recommended.difference > 0 and recommended.p < 0.05 else "no"
    return {"claim": paper.claim, "paper": f"t({paper.df}) = {paper.t}, p {paper.p}", "setting": setting,
            "quantity": PAPER_MEASURE,
            "this run, same unit": show(same_unit), "this run, recommended": f"{recommended.test}: {show(recommended)}",
            "agrees (recommended: same direction, p < .05)": agrees}


SECTION = Section(task=EXP1_TASK, title="Experiment 1: iterative feedback", primary_help=PRIMARY_HELP,
                  default_primary=DEFAULT_PRIMARY, build=build)
