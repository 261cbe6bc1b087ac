"""Human raters next to the Client LLM (``psysim-report LOGS --human-ratings STUDY.db|CSV``).

The human answers come from a ``psysim-rate`` study (its database, or the CSV ``psysim-rate
export`` wrote); each is matched with the Client LLM's rating of the very same response in the
logs by (task, eval id, sample id, epoch, response type). Per task:

* answers by status (rated / skipped / unanswered); a skip ("cannot judge") is never a number;
* Experiment 2: the human mean per response type with 95% CIs and the paper's paired contrasts
  on the human ratings (each item's raters averaged: the unit is the snippet), beside the LLM's;
* agreement among the raters and between the raters and the Client LLM: ICC(2,1) and
  Krippendorff's alpha (interval) with CIs, Spearman's rho; and the human-human ceiling next to
  the LLM-human agreement: for each rater, rho between that rater and the mean of the other
  raters, next to rho between the LLM and the same mean (same reference, so directly comparable).

A response the LLM could not rate is left out of the LLM comparisons and counted with its reason.

Gold items (attention checks planted by ``psysim-rate create --gold``) are never compared with
the LLM: they give the per-rater table (pages done, median seconds per page, skips, gold items
failed), and by default a rater who failed more than a third of their rated gold items is left
out of every statistic of this section, which says so (``--keep-all-raters`` keeps them).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from psysim.analysis import exp2 as exp2_section
from psysim.analysis.agreement import (
    Agreement,
    icc_2_1,
    krippendorff_alpha,
    spearman,
    wide_matrix,
)
from psysim.analysis.frames import EXP1_TASK, EXP2_TASK, VALIDITY_TASK, Frames
from psysim.analysis.render import (
    ci,
    fmt,
    markdown_table,
    not_testable_lines,
    render_tests,
)
from psysim.analysis.section import ReportOptions, Section, SectionResult
from psysim.analysis.stats import apply_holm, snippet_means
from psysim.rating_app.progress import GOLD_FAIL_LIMIT, rater_summary
from psysim.rating_app.study import EXPORT_COLUMNS, export_frame

HUMAN_RATINGS = "human_ratings"
"""The frame's key in ``Frames.ratings`` and the section's in the registry."""
STATUSES = ("rated", "skipped", "unanswered")
ROLES = ("study", "gold")
KEY = ["task", "eval_id", "sample_id", "epoch", "response_type"]
HUMANS = "human raters"
"""The ``setting`` of the human rows given to Experiment 2's tables and tests."""


class HumanRatingsError(ValueError):
    """A human-ratings file that cannot be used (the message names file, row and field)."""


def read_human_ratings(path: str | Path) -> pd.DataFrame:
    """The tidy answers (:data:`psysim.rating_app.study.EXPORT_COLUMNS`) from a study database or its CSV export.

    Raises:
        HumanRatingsError: no such file, missing columns, or a row whose status and rating disagree.
    """
    path = Path(path)
    if not path.is_file():
        raise HumanRatingsError(f"--human-ratings {path}: no such file")
    if path.suffix != ".csv":
        try:
            return export_frame(path)
        except ValueError as ex:
            raise HumanRatingsError(f"--human-ratings {ex}") from ex
    frame = pd.read_csv(path, dtype={"sample_id": str, "eval_id": str, "rater": str, "item": str}, keep_default_na=False,
                        na_values={"rating": [""], "session": [""]})
    absent = [c for c in ("rater", "item", *KEY, "status", "rating") if c not in frame.columns]
    if absent:
        raise HumanRatingsError(f"{path}: missing column(s) {', '.join(absent)} (expected a psysim-rate export)")
    if "role" not in frame.columns:  # an export from before gold items: every row is a study item
        frame["role"] = "study"
    for column, convert in (("seconds", lambda v: float(v) if str(v).strip() else math.nan),
                            ("gold_failed", lambda v: {"True": True, "False": False}.get(str(v).strip()))):
        if column in frame.columns:
            values = []
            for index, value in frame[column].items():
                try:
                    values.append(convert(value))
                except ValueError:
                    raise HumanRatingsError(f"{path} row {index + 1} (line {index + 2}), field {column}: "
                                            f"{value!r} is not a number") from None
            frame[column] = pd.Series(values, index=frame.index, dtype="float" if column == "seconds" else "boolean")
    for index, row in frame.iterrows():
        where = f"{path} row {index + 1} (line {index + 2})"
        if row["role"] not in ROLES:
            raise HumanRatingsError(f"{where}, field role: {row['role']!r} is not one of {', '.join(ROLES)}")
        if row["status"] not in STATUSES:
            raise HumanRatingsError(f"{where}, field status: {row['status']!r} is not one of {', '.join(STATUSES)}")
        rating = row["rating"]
        has = not (isinstance(rating, float) and math.isnan(rating))
        if row["status"] == "rated" and not (has and float(rating).is_integer() and 0 <= float(rating) <= 100):
            raise HumanRatingsError(f"{where}, field rating: a rated answer needs a whole number 0-100 (got {rating!r})")
        if row["status"] != "rated" and has:
            raise HumanRatingsError(f"{where}, field rating: a {row['status']} answer has no rating (got {rating!r})")
    frame["epoch"] = frame["epoch"].astype(int)
    return frame.reindex(columns=EXPORT_COLUMNS)


def llm_ratings(frames: Frames) -> pd.DataFrame:
    """The Client LLM's rating of every response in the logs, keyed like the human answers."""
    parts = []
    exp2 = frames.exp2
    if not exp2.empty:
        parts.append(exp2.assign(task=EXP2_TASK, sample_id=exp2["snippet"]))
    validity = frames.ratings.get(VALIDITY_TASK)
    if validity is not None and not validity.empty:
        parts.append(validity.assign(task=VALIDITY_TASK, sample_id=validity["snippet"], response_type="human"))
    exp1 = frames.exp1
    if not exp1.empty:
        parts.append(exp1.assign(task=EXP1_TASK, sample_id=exp1["persona"],
                                 response_type="session_" + exp1["session"].astype(str)))
    columns = [*KEY, "llm", "llm_reason"]
    if not parts:
        return pd.DataFrame(columns=columns)
    frame = pd.concat(parts, ignore_index=True).rename(columns={"rating": "llm", "reason": "llm_reason"})
    frame["epoch"] = frame["epoch"].astype(int)
    return frame[columns]


def joined(human: pd.DataFrame, frames: Frames) -> pd.DataFrame:
    """Human answers with the LLM's rating of the same response (``llm_found`` False when no log has it)."""
    llm = llm_ratings(frames).drop_duplicates(KEY)
    out = human.merge(llm, on=KEY, how="left", indicator=True)
    out["llm_found"] = out.pop("_merge") == "both"
    out["unit"] = out["item"].astype(str) + ":" + out["response_type"].astype(str)
    out["human"] = out["rating"].where(out["status"] == "rated").astype(float)
    return out


def _agreement_row(comparison: str, result: Agreement) -> dict:
    return {"comparison": comparison, "statistic": result.statistic, "value": result.value,
            "95% CI": ci(result.ci_low, result.ci_high), "ci_low": result.ci_low, "ci_high": result.ci_high,
            "responses": result.n_items, "raters": result.n_raters, "dropped": result.n_dropped, "note": result.note}


def _row_means(matrix: np.ndarray) -> np.ndarray:
    """Each response's mean over the raters who rated it (NaN when none did)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a row with no rating: NaN, as intended
        return np.nanmean(matrix, axis=1) if matrix.size else np.full(len(matrix), np.nan)


def agreement_table(data: pd.DataFrame, options: ReportOptions) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(agreement rows, per-rater ceiling rows) of one task's joined answers."""
    matrix, units, raters = wide_matrix(data, "unit", "rater", "human")
    llm = data.drop_duplicates("unit").set_index("unit")["llm"].reindex(units).to_numpy(float)
    rows = [
        _agreement_row("among human raters", icc_2_1(matrix)),
        _agreement_row("among human raters", krippendorff_alpha(matrix, resamples=options.ci_resamples, seed=options.seed)),
        _agreement_row("human raters + Client LLM as one more rater",
                       krippendorff_alpha(np.column_stack([matrix, llm]), resamples=options.ci_resamples,
                                          seed=options.seed)),
    ]
    human_mean = _row_means(matrix)
    rows += [_agreement_row("Client LLM vs mean of the raters", spearman(llm, human_mean)),
             _agreement_row("Client LLM vs mean of the raters", icc_2_1(np.column_stack([human_mean, llm])))]
    ceiling = []
    for index, rater in enumerate(raters):
        rows.append(_agreement_row(f"Client LLM vs {rater}", spearman(llm, matrix[:, index])))
        rows.append(_agreement_row(f"Client LLM vs {rater}", icc_2_1(np.column_stack([matrix[:, index], llm]))))
        if len(raters) < 2:
            continue
        others = _row_means(np.delete(matrix, index, axis=1))
        # same reference (the other raters' mean) for the rater and for the LLM: directly comparable
        for who, values in ((f"{rater} (human ceiling)", matrix[:, index]), ("Client LLM", llm)):
            result = spearman(values, others)
            ceiling.append({"rater left out": rater, "compared": who, "rho with the other raters' mean": result.value,
                            "95% CI": ci(result.ci_low, result.ci_high), "ci_low": result.ci_low, "ci_high": result.ci_high, "responses": result.n_items,
                            "note": result.note})
    return pd.DataFrame(rows), pd.DataFrame(ceiling)


def ceiling_figure(ceiling: pd.DataFrame, task: str) -> go.Figure:
    """Each rater's rho with the other raters (the human ceiling) next to the LLM's, with 95% CIs."""
    fig = go.Figure()
    for label, mask, color in (("rater vs the other raters (human ceiling)", ~ceiling["compared"].eq("Client LLM"), "#636363"),
                               ("Client LLM vs the same raters", ceiling["compared"].eq("Client LLM"), "#2166ac")):
        part = ceiling[mask]
        value = part["rho with the other raters' mean"]
        fig.add_trace(go.Scatter(
            x=part["rater left out"], y=value, mode="markers", name=label, marker={"color": color, "size": 10},
            error_y={"type": "data", "symmetric": False, "array": part["ci_high"] - value,
                     "arrayminus": value - part["ci_low"]}))
    fig.update_layout(title=f"Agreement with the other human raters ({task}): Spearman's rho, 95% CI",
                      xaxis_title="rater left out", yaxis_title="rho with the mean of the other raters",
                      yaxis_range=[-1, 1], template="plotly_white", scattermode="group")
    return fig


def build(frames: Frames, options: ReportOptions) -> SectionResult:
    section = SectionResult(title="Human raters and the Client LLM")
    human = frames.ratings[HUMAN_RATINGS]
    raters = rater_summary(human)
    failing = raters.loc[raters["excluded"], "rater"].tolist()
    left_out = [] if options.keep_all_raters else failing
    data = joined(human[human["role"].fillna("study") == "study"], frames)
    lines = ["Human raters rated the same responses as the Client LLM, blind to their source, with the study "
             "template's question. A skip (\"cannot judge\") and an unanswered page are counted and left out, never "
             "averaged. Agreement: ICC(2,1) (two-way random, absolute agreement, single rater; McGraw & Wong CI), "
             f"Krippendorff's alpha (interval; bootstrap CI over responses, {options.ci_resamples} resamples, seed "
             f"{options.seed}) and Spearman's rho (Fisher z CI). The human ceiling: each rater against the mean of the "
             "other raters, next to the Client LLM against the same mean.", ""]
    counts = data.groupby(["task", "rater", "status"]).size().unstack("status").reindex(columns=list(STATUSES)).fillna(0)
    lines += ["Answers by status:", "", markdown_table(counts.astype(int).reset_index()), ""]
    lines += ["Per rater (all pages but practice; seconds per page measured by the server, from the last view of a "
              "page to its first save; a gold item fails when rated on the wrong side of the scale's midpoint):", "",
              markdown_table(raters), ""]
    if failing:
        who = ", ".join(f"{r.rater} (failed {r.gold_failed} of {r.gold_rated} gold items)"
                        for r in raters[raters["excluded"]].itertuples())
        if left_out:
            note = (f"Left out of the statistics below for failing more than {_share(GOLD_FAIL_LIMIT)} of their rated "
                    f"gold items: {who}. psysim-report --keep-all-raters keeps them.")
            section.omissions.append(f"{HUMAN_RATINGS}: {note}")
        else:
            note = (f"Kept in the statistics below (--keep-all-raters) although they failed more than "
                    f"{_share(GOLD_FAIL_LIMIT)} of their rated gold items: {who}.")
        lines += [note, ""]
        section.warnings.append(f"Human raters: {note}")
    everyone, data = data, data[~data["rater"].isin(left_out)]
    not_found = data[~data["llm_found"]]
    if len(not_found):
        section.omissions.append(f"{HUMAN_RATINGS}: {not_found['unit'].nunique()} response(s) of the study are in no "
                                 "log given to the report: no LLM rating to compare (pass the logs the study was built from)")
    llm_missing = data[data["llm_found"] & data["llm"].isna()].drop_duplicates("unit")
    if len(llm_missing):
        reasons = llm_missing.groupby("llm_reason").size().rename("responses").reset_index()
        lines += ["Responses the Client LLM did not rate (left out of the LLM comparisons):", "", markdown_table(reasons), ""]
    tables = {"human_ratings.csv": everyone.drop(columns=["unit"]), "human_raters.csv": raters}
    for task, part in data.groupby("task", sort=True):
        lines += [f"### {task}", ""]
        if task == EXP2_TASK:
            lines += _exp2_lines(part, section, options, tables)
        agreement, ceiling = agreement_table(part, options)
        tables[f"human_agreement_{task}.csv"] = agreement
        lines += ["Agreement:", "", markdown_table(agreement.drop(columns=["ci_low", "ci_high"])), ""]
        if not ceiling.empty:
            tables[f"human_ceiling_{task}.csv"] = ceiling
            section.figures[f"figure_human_ceiling_{task}"] = ceiling_figure(ceiling, str(task))
            lines += ["Human ceiling next to the Client LLM (rho with the mean of the other raters):", "",
                      markdown_table(ceiling.drop(columns=["ci_low", "ci_high"])), ""]
        among = agreement.iloc[0]
        with_llm = agreement[agreement["comparison"] == "Client LLM vs mean of the raters"].iloc[0]
        section.summary.append(
            f"Human raters [{task}]: ICC(2,1) among {int(among['raters'])} raters {fmt(among['value'])} "
            f"(95% CI {among['95% CI']}); Client LLM vs the raters' mean: rho {fmt(with_llm['value'])} "
            f"(95% CI {with_llm['95% CI']}), {int(with_llm['responses'])} responses")
    section.tables = tables
    section.markdown = lines
    return section


def _share(fraction: float) -> str:
    return "a third" if abs(fraction - 1 / 3) < 1e-9 else f"{fraction:.0%}"


def _exp2_lines(part: pd.DataFrame, section: SectionResult, options: ReportOptions,
                tables: dict[str, pd.DataFrame]) -> list[str]:
    """Human means by response type and the paper's contrasts on the human ratings, beside the LLM's."""
    lines = ["The paper's contrasts on the human ratings: a snippet's \"runs\" in these tables are its raters, "
             "averaged before the paired tests over snippets.", ""]
    all_means = []
    for who, column in (("human raters", "human"), ("Client LLM, same responses", "llm")):
        rows = part.drop_duplicates(["unit", "rater"]) if column == "human" else part.drop_duplicates("unit")
        frame = pd.DataFrame({"setting": who, "snippet": rows["item"], "run": rows["rater"] if column == "human" else "llm",
                              "response_type": rows["response_type"], "rating": rows[column],
                              "missing": rows[column].isna(), "reason": ""})
        means = exp2_section.type_means(frame)
        all_means.append(means)
        how = "each snippet's raters averaged first" if column == "human" else "one rating per response"
        lines += [f"Mean by response type, {who} ({how}):", "", markdown_table(means), ""]
        wide = snippet_means(frame).droplevel("setting")
        tests = exp2_section.setting_tests(who, wide, frame, exp2_section.parse_primary(exp2_section.SECTION.primary(options)))
        apply_holm(tests)
        lines += [f"Paired contrasts over snippets, {who}:", "", render_tests(tests), "", *not_testable_lines(tests), ""]
        if column == "human":
            section.tests += tests
    tables["human_type_means.csv"] = pd.concat(all_means, ignore_index=True)
    return lines


SECTION = Section(task=HUMAN_RATINGS, title="Human raters and the Client LLM",
                  primary_help="none (descriptive agreement; the Experiment 2 contrasts follow its primary)",
                  default_primary="", build=build)
