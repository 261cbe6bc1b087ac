"""Rater validity section: does the client's rating separate high- from low-quality counselling?

Per setting and at two levels, snippets (each snippet's runs averaged) and transcripts (the mean
of their snippets): the mean rating per group, the difference high - low and the AUC, with
percentile CIs from a bootstrap that resamples transcripts within each group
(:mod:`psysim.analysis.discrimination`). Missing ratings are excluded and counted. When the
AUC's CI includes 0.5 the report says plainly that the rater does not separate the groups.
Secondary: Welch's t-test of the transcript means (``statistics.csv``).
"""

from __future__ import annotations

import pandas as pd

from psysim.analysis.discrimination import SEPARATES, KnownGroups, known_groups
from psysim.analysis.exp1 import missing_by_reason
from psysim.analysis.figures import validity_figure
from psysim.analysis.frames import VALIDITY_TASK, Frames
from psysim.analysis.render import ci, fmt, markdown_table, render_tests
from psysim.analysis.section import ReportOptions, Section, SectionResult
from psysim.analysis.stats import (
    SECONDARY,
    TestResult,
    apply_holm,
    pooled_sd,
    result,
    welch,
)
from psysim.inputs.quality_groups import GROUPS

LEVELS = {"snippet": "snippets (runs averaged)", "transcript": "transcripts (mean of their snippets)"}
DEFAULT_PRIMARY = "transcript"
PRIMARY_HELP = f"the AUC level reported first: {' or '.join(LEVELS)}; default {DEFAULT_PRIMARY}"


def parse_primary(spec: str) -> str:
    if spec not in LEVELS:
        raise ValueError(f"primary test for {VALIDITY_TASK} {spec!r}: expected {PRIMARY_HELP}")
    return spec


def snippet_table(data: pd.DataFrame) -> pd.DataFrame:
    """One row per snippet: group, transcript, mean over runs of the ratings present (NaN when
    every run is missing) and the missing ratings averaged away inside it."""
    frame = data.assign(missing=data["missing"].astype(bool))
    per = frame.groupby(["snippet", "group", "transcript"]).agg(
        rating=("rating", "mean"), missing=("missing", "sum"), rated=("rating", "count")).reset_index()
    per["missing_inside"] = per["missing"].where(per["rated"] > 0, 0)
    return per


def transcript_table(snippets: pd.DataFrame) -> pd.DataFrame:
    """One row per transcript: group and the mean of its rated snippets (NaN if none is rated)."""
    return snippets.groupby(["transcript", "group"])["rating"].mean().reset_index()


def _clusters(frame: pd.DataFrame, group: str) -> list:
    rated = frame[(frame["group"] == group) & frame["rating"].notna()]
    return [g["rating"].to_numpy(float) for _, g in rated.groupby("transcript", sort=True)]


def setting_results(data: pd.DataFrame, options: ReportOptions) -> tuple[list[KnownGroups], pd.DataFrame, pd.DataFrame]:
    """(one :class:`KnownGroups` per level, snippet table, transcript table) of one setting."""
    snippets = snippet_table(data)
    transcripts = transcript_table(snippets)
    results = []
    for level, frame in (("snippet", snippets), ("transcript", transcripts)):
        results.append(known_groups(level, LEVELS[level], _clusters(frame, "high"), _clusters(frame, "low"),
                                    resamples=options.ci_resamples, seed=options.seed))
    return results, snippets, transcripts


def _row(setting: str, r: KnownGroups, frame: pd.DataFrame) -> dict:
    missing = {g: int(frame[(frame["group"] == g)]["rating"].isna().sum()) for g in GROUPS}
    return {"setting": setting, "level": r.level, "units": r.units,
            "n high": r.n_high, "n low": r.n_low, "missing high": missing["high"], "missing low": missing["low"],
            "transcripts high": r.transcripts_high, "transcripts low": r.transcripts_low,
            "mean high": r.mean_high, "mean low": r.mean_low, "difference": r.difference,
            "difference CI low": r.difference_ci_low, "difference CI high": r.difference_ci_high,
            "AUC": r.auc, "AUC CI low": r.auc_ci_low, "AUC CI high": r.auc_ci_high,
            "resamples": r.resamples, "seed": r.seed, "verdict": r.verdict}


def _sentence(r: KnownGroups) -> str:
    counts = (f"{r.n_high} / {r.n_low} transcripts" if r.level == "transcript" else
              f"{r.n_high} / {r.n_low} snippets from {r.transcripts_high} / {r.transcripts_low} transcripts")
    return (f"{r.level} level: AUC {fmt(r.auc)} (95% CI {ci(r.auc_ci_low, r.auc_ci_high)}), mean rating high "
            f"{fmt(r.mean_high)} vs low {fmt(r.mean_low)}, difference {fmt(r.difference)} (95% CI "
            f"{ci(r.difference_ci_low, r.difference_ci_high)}); {counts} (high / low): **{r.verdict}**")


def build(frames: Frames, options: ReportOptions) -> SectionResult:
    section = SectionResult(title="Rater validity: known groups")
    data = frames.ratings[VALIDITY_TASK]
    primary = parse_primary(SECTION.primary(options))
    rows, snippet_tables, transcript_tables = [], [], []
    lines = ["Does the client's rating separate counselling that humans labelled high quality from counselling "
             "labelled low quality? The client rates the human therapist response of each snippet, blind to the "
             "label, with Experiment 2's rating prompt. AUC: the chance that a high-quality unit is rated above a "
             "low-quality one (ties count one half; 0.5 is chance, 1 perfect separation). CIs: percentile bootstrap "
             f"resampling transcripts within each group ({options.ci_resamples} resamples, seed {options.seed}), "
             "because the snippets of one transcript are correlated. Missing ratings are excluded and counted.", ""]
    for setting, group in data.groupby("setting", sort=True):
        results, snippets, transcripts = setting_results(group, options)
        snippet_tables.append(snippets.assign(setting=setting))
        transcript_tables.append(transcripts.assign(setting=setting))
        for r in results:
            rows.append(_row(str(setting), r, snippets if r.level == "snippet" else transcripts))
        lines += [f"### Setting: {setting}", ""]
        lines += [f"- {_sentence(r)}" for r in sorted(results, key=lambda r: r.level != primary)]
        lines += [""]
        head = next(r for r in results if r.level == primary)
        section.summary.append(f"Rater validity [{setting}]: {_sentence(head).replace('**', '')}")
        if head.verdict != SEPARATES:  # shown at the top of the report
            section.warnings.append(f"**Rater validity warning** [{setting}]: {head.verdict} at the {head.level} "
                                    f"level (AUC {fmt(head.auc)}, 95% CI {ci(head.auc_ci_low, head.auc_ci_high)}): "
                                    "the client's ratings may not measure counselling quality.")
        tests = _tests(str(setting), transcripts)
        apply_holm(tests)
        section.tests += tests
        lines += ["Welch t-test of the transcript means (secondary):", "", render_tests(tests), ""]
    table = pd.DataFrame(rows)
    section.tables = {"validity_ratings.csv": data, "validity_auc.csv": table,
                      "validity_snippets.csv": pd.concat(snippet_tables) if snippet_tables else pd.DataFrame()}
    lines += ["Known-groups table (`validity_auc.csv`):", "",
              markdown_table(table.drop(columns=["units", "resamples", "seed"])), "",
              "Missing ratings by reason (excluded, never imputed):", "",
              markdown_table(missing_by_reason(data, ["setting", "group"]), empty="_no missing ratings_"), ""]
    if transcript_tables:
        section.figures["figure_rater_validity"] = validity_figure(pd.concat(transcript_tables))
    section.markdown = lines
    return section


def _tests(setting: str, transcripts: pd.DataFrame) -> list[TestResult]:
    high = transcripts[transcripts["group"] == "high"]["rating"].reset_index(drop=True)
    low = transcripts[transcripts["group"] == "low"]["rating"].reset_index(drop=True)
    return [result(VALIDITY_TASK, setting, "transcript mean rating", "high", "low", "Welch t-test",
                   "transcripts", SECONDARY, high, low, welch(high, low, "transcripts"),
                   "SD between transcripts", pooled_sd(high, low))]


SECTION = Section(task=VALIDITY_TASK, title="Rater validity: known groups", primary_help=PRIMARY_HELP,
                  default_primary=DEFAULT_PRIMARY, build=build)
