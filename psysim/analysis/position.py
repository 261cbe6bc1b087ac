"""Position effect in Experiment 2: does the client rate a response by where it is shown?

From the joint A/B/C ratings (``-T joint_rating=true``; frame ``joint_rating``), per setting:
the mean rating by position across response types (the orders cycle through all 6
permutations, so each type appears equally often in each position), and the first-minus-last
difference: per snippet, the rating at the first position minus the rating at the last (runs
averaged), with a 95% t-interval over snippets. An absolute difference above
:data:`FLAG_POINTS` is flagged.
"""

from __future__ import annotations

import math

import pandas as pd

from psysim.analysis.exp1 import missing_by_reason
from psysim.analysis.frames import JOINT, Frames
from psysim.analysis.render import ci, fmt, markdown_table
from psysim.analysis.section import ReportOptions, Section, SectionResult
from psysim.analysis.stats import mean_ci

FLAG_POINTS = 2.0
"""An absolute first-minus-last difference above this (rating points) is flagged."""


def position_means(data: pd.DataFrame) -> pd.DataFrame:
    """Per position: mean rating over the snippets (each snippet's runs averaged), its 95%
    t-interval and n, and the missing ratings."""
    per_snippet = data.groupby(["position", "snippet"])["rating"].mean().reset_index()
    rows = []
    for position, group in per_snippet.groupby("position", sort=True):
        mean, low, high, n = mean_ci(group["rating"])
        missing = int(data[data["position"] == position]["missing"].astype(bool).sum())
        rows.append({"position": int(position), "mean": mean, "CI low": low, "CI high": high, "n snippets": n,
                     "missing ratings": missing})
    return pd.DataFrame(rows, columns=["position", "mean", "CI low", "CI high", "n snippets", "missing ratings"])


def first_minus_last(data: pd.DataFrame) -> dict[str, float | int | bool]:
    """Per snippet, first-position minus last-position rating (runs averaged over the runs that
    have both), then the mean over snippets with a 95% t-interval; ``flagged`` when its absolute
    value exceeds :data:`FLAG_POINTS`."""
    last = int(data["position"].max())
    wide = data.pivot_table(index=["snippet", "run"], columns="position", values="rating", aggfunc="first")
    if {1, last} <= set(wide.columns):
        per_snippet = (wide[1] - wide[last]).dropna().groupby(level="snippet").mean()
    else:
        per_snippet = pd.Series(dtype=float)
    mean, low, high, n = mean_ci(per_snippet)
    return {"last position": last, "first minus last": mean, "CI low": low, "CI high": high, "n snippets": n,
            "flagged": bool(not math.isnan(mean) and abs(mean) > FLAG_POINTS)}


def balance(data: pd.DataFrame) -> pd.DataFrame:
    """How often each response type was shown in each position (rows: types; columns: positions)."""
    shown = data.drop_duplicates(["snippet", "run", "response_type"])
    return shown.groupby(["response_type", "position"]).size().unstack("position", fill_value=0).reset_index()


def build(frames: Frames, options: ReportOptions) -> SectionResult:
    del options  # the t-interval needs no resampling
    section = SectionResult(title="Position effect (Experiment 2, joint A/B/C ratings)")
    data = frames.ratings[JOINT]
    lines = ["Does the client rate a response by where it is shown? With `-T joint_rating=true` the three "
             "responses are shown together, labelled A/B/C, in an order that cycles through all 6 permutations "
             "across snippets, so every response type appears equally often in every position. Mean rating by "
             "position across response types (each snippet's runs averaged; 95% t-interval over snippets), and "
             "first minus last position per snippet (95% t-interval over snippets). "
             f"An absolute first-minus-last difference above {FLAG_POINTS:g} points is flagged.", ""]
    effect_rows, mean_tables = [], []
    for setting, group in data.groupby("setting", sort=True):
        means = position_means(group)
        effect = first_minus_last(group)
        effect_rows.append({"setting": setting, **effect})
        mean_tables.append(means.assign(setting=setting))
        verdict = (f"FLAG: position effect: first minus last = {fmt(effect['first minus last'])} points "
                   f"(|difference| > {FLAG_POINTS:g})" if effect["flagged"] else
                   f"no position effect above {FLAG_POINTS:g} points")
        sentence = (f"first minus last position {fmt(effect['first minus last'])} (95% CI "
                    f"{ci(effect['CI low'], effect['CI high'])}, n = {effect['n snippets']} snippets): **{verdict}**")
        section.summary.append(f"Position effect [{setting}]: {sentence.replace('**', '')}")
        if effect["flagged"]:
            section.warnings.append(f"**Position effect [{setting}]: {verdict}.** Joint ratings depend on the order.")
        lines += [f"### Setting: {setting}", "", f"- {sentence}", "", "Mean rating by position:", "",
                  markdown_table(means), "", "Times each response type was shown in each position:", "",
                  markdown_table(balance(group)), ""]
    section.tables = {"position_ratings.csv": data, "position_means.csv": pd.concat(mean_tables),
                      "position_effect.csv": pd.DataFrame(effect_rows)}
    lines += ["Missing joint ratings by reason (excluded, never imputed):", "",
              markdown_table(missing_by_reason(data, ["setting", "position"]), empty="_no missing ratings_"), ""]
    section.markdown = lines
    return section


SECTION = Section(task=JOINT, title="Position effect (Experiment 2, joint A/B/C ratings)",
                  primary_help="first minus last position (no choice)", default_primary="first_minus_last",
                  build=build)
