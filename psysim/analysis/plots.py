"""The report's further figures: forest plot of the contrasts, per-persona trajectories,
simulation integrity, rater agreement (scatter and Bland-Altman) and the paper side by side.

A figure without data is never drawn: the builders return :class:`NoData` with the reason, and
the page shows "no data: <reason>" in its place. Colours: :mod:`psysim.analysis.figures`
(Okabe-Ito, one colour per condition in every figure).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from psysim.analysis.figures import GREYS, color_for, rgba
from psysim.analysis.paper_values import PAPER_RESULTS
from psysim.analysis.stats import NOT_TESTABLE, PAPER, PRIMARY, SECONDARY, TestResult
from psysim.dialogue.integrity import FLAG_KINDS


@dataclass
class NoData:
    """In place of a figure: what it would show, and why there is nothing to show."""

    title: str
    reason: str


def caption(figure: go.Figure) -> str:
    """The figure's caption for the page: ``layout.meta["caption"]`` or its title."""
    meta = figure.layout.meta
    if isinstance(meta, dict) and meta.get("caption"):
        return str(meta["caption"])
    return str(figure.layout.title.text or "")


def _finite(value: float) -> bool:
    return value is not None and isinstance(value, (int, float)) and math.isfinite(value)


MEASURE_AXIS = {"rating": "rating (points, 0–100)"}
SHORT_TASK = {"iterative_feedback": "Exp 1", "human_comparison": "Exp 2", "rater_validity": "validity"}


def forest_figure(tests: list[TestResult], title: str) -> go.Figure | NoData:
    """Every testable contrast (the primary first, highlighted; secondaries marked by their
    Holm-adjusted p), one panel per measure so that each x axis has one unit."""
    rows = [t for t in tests if t.role in (PRIMARY, SECONDARY) and t.status != NOT_TESTABLE
            and _finite(t.difference) and _finite(t.ci_low) and _finite(t.ci_high)]
    if not rows:
        return NoData(title, "no testable contrast (each untestable one is listed with its reason under "
                             "\"What is missing\")")
    rows.sort(key=lambda t: t.role != PRIMARY)
    measures = list(dict.fromkeys(t.measure for t in rows))
    counts = [sum(t.measure == m for t in rows) for m in measures]
    fig = make_subplots(rows=len(measures), cols=1, row_heights=[c + 1.5 for c in counts],
                        vertical_spacing=min(0.5 / len(measures), 120 / (60 * len(measures) + 24 * len(rows) + 200)))
    shown: set[str] = set()
    for index, measure in enumerate(measures, start=1):
        group = [t for t in rows if t.measure == measure]
        labels: list[str] = []
        for t in group:
            label = f"{'PRIMARY: ' if t.role == PRIMARY else ''}{t.a} vs {t.b}, {t.test.split(' (')[0]} [{t.setting}]"
            while label in labels:
                label += " "
            labels.append(label)
        kinds = {"primary": ([], "diamond", 15, "#000000"),
                 "secondary, Holm p < 0.05": ([], "circle", 10, "#404040"),
                 "secondary, Holm p ≥ 0.05": ([], "circle-open", 10, "#404040")}
        for t, label in zip(group, labels):
            kind = ("primary" if t.role == PRIMARY else
                    "secondary, Holm p < 0.05" if _finite(t.p_holm) and t.p_holm < 0.05 else "secondary, Holm p ≥ 0.05")
            kinds[kind][0].append((t, label))
        for kind, (members, symbol, size, color) in kinds.items():
            if not members:
                continue
            fig.add_trace(go.Scatter(
                x=[t.difference for t, _ in members], y=[label for _, label in members], mode="markers",
                name=kind, legendgroup=kind, showlegend=kind not in shown,
                marker={"symbol": symbol, "size": size, "color": color, "line": {"width": 2, "color": color}},
                error_x={"type": "data", "symmetric": False, "array": [t.ci_high - t.difference for t, _ in members],
                         "arrayminus": [t.difference - t.ci_low for t, _ in members], "color": color,
                         "thickness": 3 if kind == "primary" else 1.5},
                customdata=[[t.ci_low, t.ci_high, t.p, t.p_holm] for t, _ in members],
                hovertemplate="%{y}<br>difference %{x:.2f} (95% CI %{customdata[0]:.2f} to %{customdata[1]:.2f})"
                              "<br>p = %{customdata[2]:.3g}, Holm p = %{customdata[3]:.3g}<extra></extra>",
            ), row=index, col=1)
            shown.add(kind)
        fig.add_vline(x=0, line_dash="dash", line_color="#888888", row=index, col=1)
        fig.update_yaxes(categoryorder="array", categoryarray=labels[::-1], automargin=True, row=index, col=1)
        fig.update_xaxes(title_text=f"difference a − b: {MEASURE_AXIS.get(measure, measure)}", zeroline=False,
                         row=index, col=1)
    fig.update_layout(title=title, template="plotly_white", height=170 + 26 * len(rows) + 90 * len(measures),
                      legend={"orientation": "h", "y": 1.0, "yanchor": "bottom", "x": 0, "xanchor": "left"},
                      margin={"t": 110}, meta={"caption": f"{title}. Points: difference (a − b) with its 95% CI; "
                                               "the primary test first (black diamond); secondary tests filled when "
                                               "their Holm-adjusted p < 0.05, open otherwise. Dashed line: no difference."})
    return fig


def trajectories_figure(exp1: pd.DataFrame, title: str = "Experiment 1: every persona-run's rating by session") -> go.Figure | NoData:
    """One thin line per persona-run (its sessions that pass integrity), the condition means on top."""
    rated = exp1.dropna(subset=["rating"]) if "rating" in exp1 else exp1
    if rated.empty:
        return NoData(title, "no rated session in the Experiment 1 logs (every rating is missing or excluded)")
    fig = go.Figure()
    many = rated["setting"].nunique() > 1
    for (setting, condition), group in rated.groupby(["setting", "condition"], sort=True):
        name = f"{condition} ({setting})" if many else str(condition)
        color = color_for(str(condition))
        xs: list = []
        ys: list = []
        for _, unit in group.sort_values("session").groupby(["persona", "run"], sort=True):
            xs += [*unit["session"].astype(int), None]
            ys += [*unit["rating"].astype(float), None]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name=f"{name}: one line per persona-run", legendgroup=name,
                                 line={"color": rgba(color, 0.3), "width": 1}, hoverinfo="skip"))
        means = group.groupby("session")["rating"].mean()
        fig.add_trace(go.Scatter(x=list(means.index.astype(int)), y=list(means.round(2)), mode="lines+markers",
                                 name=f"{name}: mean", legendgroup=name, line={"color": color, "width": 4},
                                 marker={"size": 8}, hovertemplate="session %{x}: mean %{y:.1f}<extra>" + name + "</extra>"))
    fig.update_layout(title=title, xaxis_title="session", yaxis_title="Client rating (points, 0–100)",
                      template="plotly_white", xaxis={"dtick": 1}, yaxis={"range": [0, 100]},
                      legend_title="feedback condition",
                      meta={"caption": f"{title}: thin lines are single persona-runs (sessions that pass the "
                                       "integrity check), thick lines the mean over persona-runs: the spread the "
                                       "confidence intervals summarise."})
    return fig


def integrity_figure(rates: pd.DataFrame, title: str = "Simulation integrity: failing and excluded units per condition") -> go.Figure | NoData:
    """Bars per (task, setting, condition): failing and excluded units, and the flags by kind."""
    if rates.empty or not rates["units"].sum():
        return NoData(title, "no simulation_integrity scores in these logs")
    if not (rates["fail"].sum() or rates["excluded"].fillna(0).sum()):
        return NoData(title, f"no session or snippet fails the integrity check (0 of {int(rates['units'].sum())})")
    many = rates["setting"].nunique() > 1
    labels = [f"{SHORT_TASK.get(r.task, r.task)}: {r.condition}" + (f" [{r.setting}]" if many else "")
              for r in rates.itertuples()]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("units failing and excluded", "flags by kind"),
                        horizontal_spacing=0.12)
    patterns = ["", "/", "x", ".", "\\", "+"]
    # ``excluded`` counts the failing sessions plus the later ones of their course (Experiment 1 only)
    later = (rates["excluded"].fillna(rates["fail"]) - rates["fail"]).clip(lower=0)
    for index, (values, label) in enumerate(((rates["fail"], "failing (the flagged session or snippet)"),
                                             (later, "excluded with them: later sessions of the course"))):
        fig.add_trace(go.Bar(x=labels, y=values.fillna(0), name=label, marker_color=GREYS[index],
                             marker_pattern_shape=patterns[index]), row=1, col=1)
    for index, kind in enumerate(FLAG_KINDS):
        if kind in rates:
            fig.add_trace(go.Bar(x=labels, y=rates[kind], name=f"flag: {kind.replace('_', ' ')}",
                                 marker_color=GREYS[(index + 2) % len(GREYS)],
                                 marker_pattern_shape=patterns[(index + 2) % len(patterns)]), row=1, col=2)
    fig.update_layout(title=title, barmode="group", template="plotly_white", height=520,
                      legend={"orientation": "v", "x": 1.02, "y": 1, "yanchor": "top"},
                      meta={"caption": f"{title}: left, sessions (Experiment 1) or snippets (Experiment 2) that fail, "
                                       "and the later sessions excluded with them; right, flagged replies by kind."})
    fig.update_xaxes(automargin=True)
    fig.update_yaxes(title_text="units (sessions or snippets)", row=1, col=1)
    fig.update_yaxes(title_text="flagged replies", row=1, col=2)
    return fig


def agreement_figures(data: pd.DataFrame) -> dict[str, go.Figure | NoData]:
    """Per task and setting with a re-judge: re-judge vs in-loop scatter (identity line) and Bland-Altman."""
    out: dict[str, go.Figure | NoData] = {}
    rated = data[~data["missing"].astype(bool)].dropna(subset=["rating"]) if not data.empty else data
    raters = set(rated["rater"]) - {"in_loop"} if not rated.empty else set()
    if not raters or "in_loop" not in set(rated["rater"]):
        out["figure_agreement"] = NoData("Re-judge vs in-loop ratings", "no re-judge in these logs (add one with "
                                         "`inspect score LOG --scorer scorers/rejudge.py@rejudge -S rater=LABEL`)")
        return out
    for (task, setting), group in rated.groupby(["task", "setting"], sort=True):
        wide = (group.assign(unit=group["sample"].astype(str) + "|" + group["run"].astype(str) + "|" + group["item"].astype(str))
                .pivot_table(index="unit", columns="rater", values="rating", aggfunc="mean"))
        if "in_loop" not in wide:
            continue
        scatter, bland = go.Figure(), go.Figure()
        for index, rater in enumerate(sorted(r for r in wide.columns if r != "in_loop")):
            both = wide[["in_loop", rater]].dropna()
            if both.empty:
                continue
            color = GREYS[index % len(GREYS)] if index else "#0072B2"
            scatter.add_trace(go.Scatter(x=both["in_loop"], y=both[rater], mode="markers", name=str(rater),
                                         marker={"color": color, "opacity": 0.6}))
            mean, diff = (both["in_loop"] + both[rater]) / 2, both[rater] - both["in_loop"]
            bias, sd = float(diff.mean()), float(diff.std(ddof=1)) if len(diff) > 1 else float("nan")
            bland.add_trace(go.Scatter(x=mean, y=diff, mode="markers", name=str(rater), marker={"color": color, "opacity": 0.6}))
            bland.add_hline(y=bias, line_color=color, annotation_text=f"{rater}: bias {bias:.1f}")
            if math.isfinite(sd):
                for sign in (-1, 1):
                    bland.add_hline(y=bias + sign * 1.96 * sd, line_dash="dash", line_color=color,
                                    annotation_text=f"{bias + sign * 1.96 * sd:.1f}")
        if not scatter.data:
            continue
        key = f"{task}_{setting}".replace("/", "_").replace(" ", "_")
        scatter.add_trace(go.Scatter(x=[0, 100], y=[0, 100], mode="lines", name="identity (same rating)",
                                     line={"dash": "dot", "color": "#888888"}))
        scatter.update_layout(title=f"Re-judge vs in-loop rating [{task}, {setting}]", template="plotly_white",
                              xaxis_title="in-loop rating (points, 0–100)", yaxis_title="re-judge rating (points, 0–100)",
                              xaxis={"range": [0, 100]}, yaxis={"range": [0, 100], "scaleanchor": "x"}, height=560)
        bland.update_layout(title=f"Bland-Altman: re-judge minus in-loop [{task}, {setting}]", template="plotly_white",
                            xaxis_title="mean of the two ratings (points)", yaxis_title="re-judge − in-loop (points)",
                            meta={"caption": "Bland-Altman: the difference of the two raters against their mean; "
                                             "solid line the mean difference (bias), dashed the 95% limits of agreement "
                                             "(bias ± 1.96 SD)."})
        out[f"figure_agreement_{key}"] = scatter
        out[f"figure_bland_altman_{key}"] = bland
    return out or {"figure_agreement": NoData("Re-judge vs in-loop ratings", "no item rated by both the in-loop "
                                                                             "rater and a re-judge")}


def paper_figure(tests: list[TestResult], title: str = "The paper side by side: t statistics") -> go.Figure | NoData:
    """The paper's t next to this run's t for the same claim: same unit (Experiment 1: session means)
    and the recommended analysis, on one axis."""
    rows = []
    for paper in PAPER_RESULTS:
        for t in tests:
            if t.experiment != paper.task or (t.a, t.b) != (paper.a, paper.b) or not _finite(t.statistic):
                continue
            if paper.task == "iterative_feedback" and t.role != PAPER:
                continue
            kind = "this run: same unit as the paper" if "session means" in t.test or paper.task != "iterative_feedback" \
                else "this run: recommended (mixed model)"
            rows.append({"claim": f"{paper.claim} [{t.setting}]", "paper": paper.t, "kind": kind, "t": t.statistic,
                         "df": t.df})
    if not rows:
        return NoData(title, "no contrast of the paper's claims is testable in these logs")
    frame = pd.DataFrame(rows)
    fig = go.Figure()
    claims = list(dict.fromkeys(frame["claim"]))
    papers = frame.drop_duplicates("claim")
    fig.add_trace(go.Scatter(x=papers["paper"], y=papers["claim"], mode="markers", name="the paper",
                             marker={"symbol": "diamond", "size": 14, "color": "#000000"}))
    # greys and shapes: these are sources, not conditions (whose colours mean a condition everywhere)
    for (kind, group), (symbol, color) in zip(frame.groupby("kind", sort=False),
                                              (("circle", "#8c8c8c"), ("square-open", "#000000"))):
        fig.add_trace(go.Scatter(x=group["t"], y=group["claim"], mode="markers", name=kind,
                                 marker={"symbol": symbol, "size": 11, "color": color},
                                 customdata=group[["df"]].to_numpy(),
                                 hovertemplate="%{y}<br>t(%{customdata[0]:.1f}) = %{x:.2f}<extra>" + kind + "</extra>"))
    fig.add_vline(x=0, line_dash="dash", line_color="#888888")
    fig.update_yaxes(categoryorder="array", categoryarray=claims[::-1], automargin=True)
    fig.update_layout(title=title, template="plotly_white", xaxis_title="t statistic (the paper reports t only)",
                      height=200 + 45 * len(claims), legend={"orientation": "h", "y": 1.02, "yanchor": "bottom"},
                      margin={"t": 110},
                      meta={"caption": f"{title}: each claim's t in the paper (black) and in this run, by the paper's "
                                       "apparent unit and by the recommended analysis. t grows with the number of "
                                       "units, so compare directions and the tables' differences, not sizes alone."})
    return fig
