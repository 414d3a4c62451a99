"""HTML report: one self-contained file (inline CSS, plotly.js embedded once), every value escaped."""

from __future__ import annotations

import math
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from ..options import DIMENSIONS
from .messages import Messages
from .model import Evidence, Finding, Report

MAX_HTML_ROWS = 200  # evidence rows shown per table; XLSX/JSON keep all of them
CHART_COLOURS = {"computing": "#187498", "communication_not_overlapped": "#B5495B", "free": "#fcaf17"}
_TEMPLATES = Path(__file__).with_name("templates")


@lru_cache(maxsize=1)
def _environment() -> Environment:
    # autoescape on for every template: profile strings (paths, op names) are untrusted.
    return Environment(
        loader=FileSystemLoader(str(_TEMPLATES)),
        autoescape=True,
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )


@lru_cache(maxsize=1)
def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    # Library code, not data; still make sure it cannot close its own <script> element.
    return re.sub(r"</(script)", r"<\\/\1", get_plotlyjs(), flags=re.IGNORECASE)


def json_for_script(text: str) -> Markup:
    """JSON text made safe inside <script>: no '<', '>' or '&' can end the element or open a comment."""
    return Markup(text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e"))


def _cell(value: Any) -> dict[str, Any]:
    if isinstance(value, bool) or value is None:
        return {"text": "" if value is None else str(value), "num": False}
    if isinstance(value, int):
        return {"text": f"{value}", "num": True}
    if isinstance(value, float):
        if not math.isfinite(value):
            return {"text": "", "num": True}
        return {"text": f"{value:,.4f}" if abs(value) < 1 else f"{value:,.3f}", "num": True}
    return {"text": str(value), "num": False}


def _evidence_view(evidence: Evidence) -> dict[str, Any]:
    rows = [[_cell(v) for v in row] for row in evidence.rows[:MAX_HTML_ROWS]]
    return {
        "name": evidence.name,
        "columns": evidence.columns,
        "rows": rows,
        "total": len(evidence.rows),
        "truncated": len(evidence.rows) > MAX_HTML_ROWS,
    }


def _finding_view(index: int, finding: Finding, m: Messages) -> dict[str, Any]:
    gain = finding.estimated_gain_us
    return {
        "anchor": f"pa-finding-{index}",
        "check": finding.check,
        "priority": finding.priority,
        "title": finding.title,
        "description": finding.description,
        "suggestions": finding.suggestions,
        "dimension_label": m.t(f"report.dimension.{finding.dimension}")
        if m.has(f"report.dimension.{finding.dimension}")
        else finding.dimension,
        "ranks_label": ", ".join(str(r) for r in finding.ranks) or m.t("report.fix_first.all_ranks"),
        "step": finding.step,
        "gain_ms": f"{gain / 1000:,.3f}" if gain is not None else "",
        "evidence": [_evidence_view(e) for e in finding.evidence],
        "dimension": finding.dimension,
    }


def overall_figure(report: Report, m: Messages) -> dict[str, Any] | None:
    """Stacked bars per (rank, step): computing / communication not overlapped / free, in ms."""
    rows = report.summary.get("per_rank") or []
    if not rows:
        return None
    ranks = [f"rank {row['rank']}" for row in rows]
    steps = [f"step {row['step']}" if row.get("step") is not None else "—" for row in rows]
    traces = []
    for component, colour in CHART_COLOURS.items():
        traces.append(
            {
                "type": "bar",
                "name": m.t(f"report.chart.{component}"),
                "x": [ranks, steps],
                "y": [round((row.get(f"{component}_us") or 0.0) / 1000, 3) for row in rows],
                "marker": {"color": colour},
                "hovertemplate": "%{x}<br>%{y:,.3f} ms<extra>%{fullData.name}</extra>",
            }
        )
    layout = {
        "barmode": "stack",
        "height": 420,
        "margin": {"l": 60, "r": 20, "t": 30, "b": 80},
        "yaxis": {
            "title": {"text": m.t("report.chart.y_axis")},
            "gridcolor": "#e5e5e5",
            "zerolinecolor": "#999",
        },
        "template": "none",  # the default template would add ~10 kB of unused styles
        "legend": {"orientation": "h", "y": 1.1, "traceorder": "normal"},
        "plot_bgcolor": "#fff",
        "paper_bgcolor": "#fff",
    }
    return {"data": traces, "layout": layout}


def render_html(report: Report) -> str:
    """The full HTML text of `report`."""
    import plotly.graph_objects as go

    m = Messages(report.language)
    findings = report.sorted_findings()
    views = [_finding_view(i, f, m) for i, f in enumerate(findings)]
    figure = overall_figure(report, m)
    # Round-trip through plotly so the figure is validated, then embed it as escaped JSON.
    chart_json = json_for_script(go.Figure(figure).to_json()) if figure else None

    dimensions_with_checks = set(report.checked_dimensions)
    sections = []
    extra = [
        d for d in dict.fromkeys(f.dimension for f in findings) if d not in DIMENSIONS and d != "overall"
    ]
    for dimension in [*[d for d in DIMENSIONS if d in report.dimensions], *extra]:
        sections.append(
            {
                "label": m.t(f"report.dimension.{dimension}")
                if m.has(f"report.dimension.{dimension}")
                else dimension,
                "findings": [v for v in views if v["dimension"] == dimension],
                "has_checks": dimension in dimensions_with_checks,
            }
        )
    timings = report.timings_s
    context = {
        "t": m.t,
        "language": report.language,
        "input": report.input,
        "description": report.description,
        "version_hints": report.version_hints,
        "dimensions": [m.t(f"report.dimension.{d}") for d in report.dimensions],
        "generated": report.generated.strftime("%Y-%m-%d %H:%M:%S %Z").strip(),
        "durations": m.t(
            "report.header.durations_value", load=timings.get("load", 0.0), checks=timings.get("checks", 0.0)
        ),
        "warnings": report.warnings,
        "findings": views,
        "overall_findings": [v for v in views if v["dimension"] == "overall"],
        "dimension_sections": sections,
        "not_evaluated": report.not_evaluated,
        "chart_json": chart_json,
        "plotly_js": Markup(_plotly_js()) if chart_json else "",
        "version": report.tool_version,
    }
    return _environment().get_template("report.html.j2").render(**context)


def write_html(report: Report, path: Path) -> Path:
    text = render_html(report)
    with path.open("x", encoding="utf-8") as fh:
        fh.write(text)
    return path
