"""The study's figures with plotly: ratings by session per condition, and per response type."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from psysim.analysis.stats import mean_ci, snippet_means

PALETTE = {"expert": "#1b7837", "generic": "#d95f02", "none": "#7570b3"}
TYPE_COLORS = {"human": "#636363", "llm": "#2166ac", "revised": "#1b7837"}


def _rgba(hex_color: str, alpha: float) -> str:
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
        color = PALETTE.get(str(condition), "#444444")
        band = table.dropna(subset=["ci_low", "ci_high"])
        if len(band):
            fig.add_trace(
                go.Scatter(
                    x=list(band["session"]) + list(band["session"][::-1]),
                    y=list(band["ci_high"]) + list(band["ci_low"][::-1]),
                    mode="lines", fill="toself", fillcolor=_rgba(color, 0.18), line={"width": 0},
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
    )
    fig.add_annotation(text="bands: 95% CI over runs (the unit of the study's independent runs), not over persona-runs",
                       xref="paper", yref="paper", x=0, y=-0.18, showarrow=False, font={"size": 11, "color": "#555"})
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
    for setting, group in wide.groupby(level="setting", sort=True):
        stats = [mean_ci(group[t]) for t in order]
        means = [s[0] for s in stats]
        fig.add_trace(
            go.Scatter(
                x=order, y=means, mode="markers", name=f"mean ({setting})",
                marker={"size": 14, "color": [TYPE_COLORS[t] for t in order], "line": {"width": 1, "color": "black"}},
                error_y={"type": "data", "symmetric": False,
                         "array": [s[2] - s[0] for s in stats], "arrayminus": [s[0] - s[1] for s in stats],
                         "thickness": 2, "width": 8},
                customdata=[[s[1], s[2], s[3]] for s in stats],
                hovertemplate="%{x}: mean %{y:.1f} (95% CI %{customdata[0]:.1f}–%{customdata[1]:.1f}), n=%{customdata[2]}<extra></extra>",
            )
        )
    fig.update_layout(
        title="Client rating per response type (mean over snippets, 95% CI; grey lines: one snippet)",
        xaxis_title="response", yaxis_title="Client rating (0–100)", template="plotly_white",
        yaxis={"range": [0, 100]},
    )
    return fig
