"""The study's figures with plotly: ratings by session per condition, and per response type.

Colours: the Okabe-Ito palette (colour-blind safe); a condition (or response type) has the same
colour in every figure of the report (:func:`color_for`).
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from psysim.analysis.stats import mean_ci, snippet_means

# Okabe & Ito (2008): distinguishable with every common colour-vision deficiency
PALETTE = {"expert": "#009E73", "generic": "#E69F00", "none": "#0072B2"}
TYPE_COLORS = {"human": "#D55E00", "llm": "#56B4E9", "revised": "#CC79A7"}
OTHER_COLORS = ("#F0E442", "#000000", "#882255", "#44AA99")
GREYS = ("#404040", "#8c8c8c", "#000000", "#bdbdbd", "#636363", "#d9d9d9")
"""Bars of reasons (not conditions): greys told apart by their patterns too."""


def color_for(name: str) -> str:
    """The colour of a condition or response type, the same in every figure."""
    known = {**PALETTE, **TYPE_COLORS}
    if name in known:
        return known[name]
    return OTHER_COLORS[sum(map(ord, name)) % len(OTHER_COLORS)]


def rgba(hex_color: str, alpha: float) -> str:
    r, g, b = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"



def sessions_figure(means: pd.DataFrame, exp1: pd.DataFrame) -> go.Figure:
    """(B) Mean Client rating by session for each condition, with 95% bands over runs.

    Args:
        means: :func:`psysim.analysis.exp1.session_means` (each run's personas averaged, then
            mean and CI over runs: the study's independent runs).
        exp1: The ratings frame (for the baseline line).
    """
    fig = go.Figure()
    many_settings = means["setting"].nunique() > 1
    for (setting, condition), table in means.groupby(["setting", "condition"], sort=True):
        name = f"{condition} ({setting})" if many_settings else str(condition)
        color = color_for(str(condition))
        band = table.dropna(subset=["ci_low", "ci_high"])
        if len(band):
            fig.add_trace(
                go.Scatter(
                    x=list(band["session"]) + list(band["session"][::-1]),
                    y=list(band["ci_high"]) + list(band["ci_low"][::-1]),
                    mode="lines", fill="toself", fillcolor=rgba(color, 0.18), line={"width": 0},
                    hoverinfo="skip", showlegend=False, legendgroup=name,
                )
            )
        fig.add_trace(
            go.Scatter(
                x=table["session"], y=table["mean"], mode="lines+markers", name=name, legendgroup=name,
                line={"color": color, "width": 2.5},
                customdata=table[["ci_low", "ci_high", "runs", "missing_runs", "missing_inside"]].to_numpy(),
                hovertemplate="session %{x}<br>mean %{y:.1f} (95% CI %{customdata[0]:.1f}–%{customdata[1]:.1f})"
                "<br>runs=%{customdata[2]}, runs missing=%{customdata[3]}, persona ratings missing inside=%{customdata[4]}"
                "<extra>" + name + "</extra>",
            )
        )
    baseline = exp1["baseline"].dropna().unique() if "baseline" in exp1 else []
    if len(baseline) == 1:
        fig.add_hline(y=float(baseline[0]), line_dash="dot", line_color="#999999",
                      annotation_text=f"baseline {baseline[0]:g}", annotation_position="bottom right")
    fig.update_layout(
        title="Client satisfaction by session (mean, 95% CI over runs; each run's personas averaged)",
        xaxis_title="session", yaxis_title="Client rating (0–100)", template="plotly_white",
        xaxis={"dtick": 1}, yaxis={"range": [0, 100]}, legend_title="feedback condition",
        # the caption sits under the figure on the page, never on the axis title
        meta={"caption": "Mean by session per condition; bands: 95% CI over runs (the unit of the study's "
                         "independent runs), not over persona-runs; each run's personas averaged first."},
    )
    return fig


def response_types_figure(exp2: pd.DataFrame) -> go.Figure:
    """(C) Mean rating per response type with 95% CIs, over thin paired lines per snippet."""
    fig = go.Figure()
    order = [t for t in ("human", "llm", "revised") if t in set(exp2["response_type"])]
    wide = snippet_means(exp2)
    for (setting, snippet), row in wide.iterrows():
        fig.add_trace(
            go.Scatter(
                x=order, y=[row.get(t) for t in order], mode="lines", line={"color": "rgba(120,120,120,0.25)", "width": 1},
                hovertemplate=f"{snippet}<br>%{{x}}: %{{y}}<extra></extra>", showlegend=False,
            )
        )
    settings = sorted(wide.index.get_level_values("setting").unique()) if len(wide) else []
    symbols = ("circle", "square", "diamond", "triangle-up")
    for index, (setting, group) in enumerate(wide.groupby(level="setting", sort=True)):
        for kind in order:
            mean, low, high, n = mean_ci(group[kind])
            name = f"{kind} ({setting})" if len(settings) > 1 else kind
            fig.add_trace(
                go.Scatter(
                    x=[kind], y=[mean], mode="markers", name=name,
                    marker={"size": 14, "color": color_for(kind), "symbol": symbols[index % len(symbols)],
                            "line": {"width": 1, "color": "black"}},
                    error_y={"type": "data", "symmetric": False, "array": [high - mean], "arrayminus": [mean - low],
                             "thickness": 2, "width": 8, "color": color_for(kind)},
                    customdata=[[low, high, n]],
                    hovertemplate="%{x}: mean %{y:.1f} (95% CI %{customdata[0]:.1f}–%{customdata[1]:.1f}), "
                                  "n=%{customdata[2]}<extra>" + name + "</extra>",
                )
            )
    fig.update_layout(
        title="Client rating per response type (mean over snippets, 95% CI; grey lines: one snippet)",
        xaxis_title="response", yaxis_title="Client rating (0–100)", template="plotly_white",
        yaxis={"range": [0, 100]}, legend_title="response (mean, 95% CI)",
    )
    return fig


# quality groups (not conditions): a colour-blind-safe pair of their own (Paul Tol, muted)
GROUP_COLORS = {"high": "#332288", "low": "#CC6677"}


def validity_figure(transcripts: pd.DataFrame) -> go.Figure:
    """Rater validity: each transcript's mean rating by quality group (box and points), per setting.

    Args:
        transcripts: Rows with ``setting``, ``group``, ``transcript`` and ``rating`` (the mean
            of the transcript's rated snippets; NaN rows are left out).
    """
    fig = go.Figure()
    rated = transcripts.dropna(subset=["rating"])
    for group in ("high", "low"):
        rows = rated[rated["group"] == group]
        fig.add_trace(go.Box(x=rows["setting"], y=rows["rating"], name=f"{group} quality", boxpoints="all",
                             jitter=0.4, pointpos=0, marker_color=GROUP_COLORS[group], text=rows["transcript"]))
    fig.update_layout(boxmode="group", title="Rater validity: transcript mean rating by human quality label",
                      yaxis_title="Client rating (0-100), transcript mean", yaxis_range=[0, 100], template="plotly_white")
    return fig
