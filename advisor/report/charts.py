"""Plotly figures of the HTML report, as plain dicts (compact JSON; plotly.js draws them in the page).

Colours of the page theme (font, grid) are applied in the browser, so the figures stay theme-neutral.
"""

from __future__ import annotations

import math
from collections import defaultdict
from statistics import median
from typing import Any

from .messages import Messages
from .model import Evidence, Finding, Report

COMPONENTS = ("computing", "communication_not_overlapped", "free")
CHART_COLOURS = {"computing": "#187498", "communication_not_overlapped": "#B5495B", "free": "#fcaf17"}
HEATMAP_MIN_RANKS = 4
MAX_LINK_MATRICES = 3  # one per transport; more would bury the page
_BAR_HEIGHT = 420


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _ms(value_us: float | None) -> float | None:
    return None if value_us is None else round(value_us / 1000.0, 3)


def _layout(**extra: Any) -> dict[str, Any]:
    # template "none": the default template would add ~10 kB of unused styles per figure.
    layout: dict[str, Any] = {
        "template": "none",
        "height": _BAR_HEIGHT,
        "margin": {"l": 70, "r": 20, "t": 30, "b": 60},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "legend": {"orientation": "h", "y": 1.12, "traceorder": "normal"},
    }
    layout.update(extra)
    return layout


def _per_rank_means(report: Report) -> dict[int, dict[str, float]]:
    """Mean over the profiled steps of each component (µs), per rank."""
    sums: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    counts: dict[int, int] = defaultdict(int)
    for row in report.summary.get("per_rank") or []:
        rank = row.get("rank")
        if not isinstance(rank, int) or isinstance(rank, bool):
            continue
        counts[rank] += 1
        for key in (*COMPONENTS, "step"):
            sums[rank][key] += _num(row.get(f"{key}_us")) or 0.0
    return {rank: {k: v / counts[rank] for k, v in sums[rank].items()} for rank in sorted(sums)}


def mean_step_us(report: Report) -> float | None:
    """Mean step time over every (rank, step) row of the summary; None when there is none."""
    values = [_num(row.get("step_us")) for row in report.summary.get("per_rank") or []]
    values = [v for v in values if v is not None and v > 0]
    return sum(values) / len(values) if values else None


def rank_figure(report: Report, m: Messages) -> dict[str, Any] | None:
    """Stacked bars per rank: mean computing / communication not overlapped / free per step, in ms."""
    means = _per_rank_means(report)
    if not means:
        return None
    labels = [m.t("report.chart.rank", rank=rank) for rank in means]
    data = [
        {
            "type": "bar",
            "name": m.t(f"report.chart.{component}"),
            "x": labels,
            "y": [_ms(values.get(component, 0.0)) for values in means.values()],
            "marker": {"color": CHART_COLOURS[component]},
            "hovertemplate": "%{x}<br>%{y:,.3f} ms<extra>%{fullData.name}</extra>",
        }
        for component in COMPONENTS
    ]
    layout = _layout(barmode="stack", yaxis={"title": {"text": m.t("report.chart.y_axis")}})
    return {"data": data, "layout": layout}


def step_figure(report: Report, m: Messages) -> dict[str, Any] | None:
    """Per profiled step: stacked mean over ranks, plus the slowest rank's step time. None for one step."""
    by_step: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in report.summary.get("per_rank") or []:
        step = row.get("step")
        if isinstance(step, int) and not isinstance(step, bool):
            by_step[step].append(row)
    if len(by_step) < 2:
        return None
    steps = sorted(by_step)
    labels = [m.t("report.chart.step", step=step) for step in steps]

    def mean_of(step: int, key: str) -> float | None:
        values = [_num(row.get(key)) for row in by_step[step]]
        values = [v for v in values if v is not None]
        return _ms(sum(values) / len(values)) if values else None

    data: list[dict[str, Any]] = [
        {
            "type": "bar",
            "name": m.t(f"report.chart.{component}"),
            "x": labels,
            "y": [mean_of(step, f"{component}_us") for step in steps],
            "marker": {"color": CHART_COLOURS[component]},
            "hovertemplate": "%{x}<br>%{y:,.3f} ms<extra>%{fullData.name}</extra>",
        }
        for component in COMPONENTS
    ]
    slowest = []
    for step in steps:
        values = [_num(row.get("step_us")) for row in by_step[step]]
        values = [v for v in values if v is not None]
        slowest.append(_ms(max(values)) if values else None)
    data.append(
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": m.t("report.chart.slowest_rank"),
            "x": labels,
            "y": slowest,
            "line": {"color": "#7f7f7f", "dash": "dot"},
            "hovertemplate": "%{x}<br>%{y:,.3f} ms<extra>%{fullData.name}</extra>",
        }
    )
    layout = _layout(barmode="stack", yaxis={"title": {"text": m.t("report.chart.y_axis_mean")}})
    return {"data": data, "layout": layout}


def heatmap_figure(report: Report, m: Messages) -> dict[str, Any] | None:
    """Rank × component, coloured by the deviation from the ranks' median in % of the median step.

    One scale for every component (a share of the step) keeps small components readable and avoids
    dividing by a component median that may be zero.
    """
    means = _per_rank_means(report)
    if len(means) < HEATMAP_MIN_RANKS:
        return None
    keys = (*COMPONENTS, "step")
    medians = {key: median(values.get(key, 0.0) for values in means.values()) for key in keys}
    scale = medians["step"] if medians["step"] > 0 else None
    if scale is None:
        return None
    ranks = list(means)
    z = [
        [round((means[rank].get(key, 0.0) - medians[key]) / scale * 100.0, 2) for key in keys]
        for rank in ranks
    ]
    text = [[f"{(means[rank].get(key, 0.0)) / 1000:,.2f}" for key in keys] for rank in ranks]
    limit = max((abs(v) for row in z for v in row), default=0.0) or 1.0
    columns = [m.t(f"report.chart.{key}" if key != "step" else "report.chart.step_total") for key in keys]
    figure = {
        "data": [
            {
                "type": "heatmap",
                "x": columns,
                "y": [m.t("report.chart.rank", rank=rank) for rank in ranks],
                "z": z,
                "text": text,
                "zmin": -limit,
                "zmax": limit,
                "colorscale": [[0, "#2166ac"], [0.5, "#f4f4f4"], [1, "#b2182b"]],  # faster blue, slower red
                "colorbar": {"title": {"text": m.t("report.chart.heatmap_scale")}},
                "hovertemplate": "%{y}, %{x}<br>%{text} ms (%{z:+.1f} %)<extra></extra>",
                "xgap": 1,
                "ygap": 1,
            }
        ],
        "layout": _layout(
            height=max(300, 16 * len(ranks) + 110),
            margin={"l": 80, "r": 20, "t": 30, "b": 60},
            yaxis={"autorange": "reversed", "type": "category"},
        ),
    }
    return figure


def _link_columns(evidence: Evidence) -> tuple[int, int, int, int | None] | None:
    """Indexes of (src, dst, bandwidth, transport) when `evidence` is a per-link table."""
    columns = [c.lower() for c in evidence.columns]
    src = next((i for i, c in enumerate(columns) if c in ("src", "src_rank")), None)
    dst = next((i for i, c in enumerate(columns) if c in ("dst", "dst_rank")), None)
    bandwidth = next((i for i, c in enumerate(columns) if c.startswith("bandwidth")), None)
    if src is None or dst is None or bandwidth is None:
        return None
    transport = columns.index("transport") if "transport" in columns else None
    return src, dst, bandwidth, transport


def link_figures(findings: list[Finding], m: Messages) -> list[dict[str, Any]]:
    """Source × destination bandwidth matrices (GB/s) from per-link evidence tables, one per transport.

    Several rows of one link (several groups) are summarised by their median.
    """
    cells: dict[str, dict[tuple[int, int], list[float]]] = defaultdict(lambda: defaultdict(list))
    unit = "GB/s"
    for finding in findings:
        for evidence in finding.evidence:
            found = _link_columns(evidence)
            if found is None:
                continue
            src_i, dst_i, bw_i, transport_i = found
            for row in evidence.rows:
                if len(row) <= max(src_i, dst_i, bw_i):
                    continue
                src, dst, bandwidth = _num(row[src_i]), _num(row[dst_i]), _num(row[bw_i])
                if src is None or dst is None or bandwidth is None:
                    continue
                transport = str(row[transport_i]) if transport_i is not None else ""
                cells[transport][(int(src), int(dst))].append(bandwidth)
    figures = []
    for transport in sorted(cells)[:MAX_LINK_MATRICES]:
        links = cells[transport]
        ranks = sorted({r for pair in links for r in pair})
        index = {rank: i for i, rank in enumerate(ranks)}
        z: list[list[float | None]] = [[None] * len(ranks) for _ in ranks]
        for (src, dst), values in links.items():
            z[index[src]][index[dst]] = round(median(values), 3)
        labels = [str(rank) for rank in ranks]
        size = max(320, min(900, 14 * len(ranks) + 140))
        title = m.t("report.chart.link_matrix", transport=transport or "—")
        hover = (
            f"{m.t('report.chart.link_src')} %{{y}} → {m.t('report.chart.link_dst')} %{{x}}"
            f"<br>%{{z:,.2f}} {unit}<extra></extra>"
        )
        figures.append(
            {
                "data": [
                    {
                        "type": "heatmap",
                        "x": labels,
                        "y": labels,
                        "z": z,
                        "colorscale": "Viridis",
                        "colorbar": {"title": {"text": unit}},
                        "hovertemplate": hover,
                        "xgap": 1,
                        "ygap": 1,
                    }
                ],
                "layout": _layout(
                    height=size,
                    title={"text": title, "font": {"size": 14}},
                    margin={"l": 70, "r": 20, "t": 50, "b": 60},
                    xaxis={"title": {"text": m.t("report.chart.link_dst")}, "type": "category"},
                    yaxis={
                        "title": {"text": m.t("report.chart.link_src")},
                        "type": "category",
                        "autorange": "reversed",
                    },
                ),
            }
        )
    return figures


# The report's charts of the whole profile by the name the Python API gives them
# (`Analysis.figure(name)`); the HTML report draws the same functions' figures.
FIGURES = {"step_breakdown": rank_figure, "steps": step_figure, "rank_heatmap": heatmap_figure}
