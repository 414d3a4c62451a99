"""HTML report: one self-contained file (inline CSS/JS, plotly.js embedded once), every value escaped."""

from __future__ import annotations

import json
import math
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template
from markupsafe import Markup, escape

from ..options import DIMENSIONS, VERSION_HINT_DEVICES
from ..ranges import number_ranges
from . import charts
from .messages import Messages
from .model import Evidence, Finding, Report
from .training_view import training_rows

MAX_HTML_ROWS = 200  # evidence rows shown per table; XLSX/JSON keep all of them
MIN_HTML_ROWS = 20  # never cut a table below this to meet the size budget
# Evidence cells in one page (~20 bytes each): with plotly.js (4.8 MB) a big cluster report stays < 6 MB.
HTML_CELL_BUDGET = 40_000
ACTION_CHARS = 160  # the one-line action of "What to fix first"
CHART_COLOURS = charts.CHART_COLOURS
# Sections of their own, not under "Problem analysis".
OVERALL_DIMENSIONS = ("overall", "cluster")
COMPARISON_DIMENSION = "comparison"
_TEMPLATES = Path(__file__).with_name("templates")

# Code inside suggestions: `backticks`, or what reads as code in a sentence (dotted calls, ENV=value,
# --flags, keyword=value). The copy button copies exactly this text.
_CODE = re.compile(
    r"`(?P<tick>[^`\n]+)`"
    r"|(?P<code>"
    r"(?:export\s+)?\b[A-Z][A-Z0-9_]{2,}=[^\s,;)]+"  # TASK_QUEUE_ENABLE=2
    r"|\b[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+\((?:[^()]|\([^()]*\))*\)"  # torch_npu.npu.set_compile_mode(...)
    r"|\b(?:[A-Za-z]*_\w*|[A-Z][a-z]+[A-Z]\w*)\((?:[^()]|\([^()]*\))*\)"  # empty_cache(), DataLoader(...)
    r"|\b[a-z_]\w*(?:\.[A-Za-z_]\w*){2,}(?:\s=\s\w+)?"  # torch.npu.config.allow_internal_format = False
    r"|(?<![\w-])--[a-z][\w-]*(?:=[^\s,;)]+)?"  # --overlap-grad-reduce
    r"|\b[a-z]\w*_\w*=[\w.\-]+"  # bucket_cap_mb=100
    r")"
)


@lru_cache(maxsize=1)
def _environment() -> Environment:
    # autoescape on for every template: profile strings (paths, op names) are untrusted.
    return Environment(
        loader=FileSystemLoader(str(_TEMPLATES)),
        autoescape=True,
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


# plotly.js's cartesian bundle (every trace type the charts use), copied here by the JS build
# (`jlpm build:report`): 1.5 MB, loaded in a third of the time of the full bundle.
PLOTLY_CARTESIAN = Path(__file__).parent / "vendor" / "plotly-cartesian.min.js"


def report_template() -> Template:
    """The report's template, compiled on the first call in a process (the server's warm worker makes
    that call before it forks the analyses)."""
    return _environment().get_template("report.html.j2")


@lru_cache(maxsize=1)
def _plotly_js() -> str:
    if PLOTLY_CARTESIAN.is_file():
        code = PLOTLY_CARTESIAN.read_text(encoding="utf-8")
    else:  # a source tree without the JS build: the full bundle of the plotly package
        from plotly.offline import get_plotlyjs

        code = get_plotlyjs()
    # Library code, not data; still make sure it cannot close its own <script> element.
    return re.sub(r"</(script)", r"<\\/\1", code, flags=re.IGNORECASE)


@lru_cache(maxsize=2)
def _asset(name: str) -> Markup:
    """Our own CSS/JS, inlined as is (trusted text, never formatted with data)."""
    return Markup((_TEMPLATES / name).read_text(encoding="utf-8"))


def json_for_script(text: str) -> Markup:
    """JSON text made safe inside <script>: no '<', '>' or '&' can end the element or open a comment."""
    return Markup(text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e"))


def figure_json(figure: dict[str, Any]) -> Markup:
    """Compact JSON of a figure for a <script type="application/json"> element."""
    return json_for_script(json.dumps(figure, ensure_ascii=False, separators=(",", ":"), allow_nan=False))


# Two overlapping sheets, drawn: a glyph such as U+29C9 is missing from many fonts (an empty box).
_COPY_ICON = (
    '<svg viewBox="0 0 16 16" width="1em" height="1em" aria-hidden="true" fill="none" '
    'stroke="currentColor" stroke-width="1.5"><rect x="5.5" y="5.5" width="8" height="8" rx="1"/>'
    '<path d="M10.5 3V2.5a1 1 0 0 0-1-1h-7a1 1 0 0 0-1 1v7a1 1 0 0 0 1 1H3"/></svg>'
)


def rich_text(text: str, *, copy_label: str | None = None) -> Markup:
    """`text` escaped, with code spans in <code> (and a copy button after each when `copy_label`)."""
    parts: list[str] = []
    last = 0
    for match in _CODE.finditer(text):
        code = match.group("tick") if match.group("tick") is not None else match.group("code")
        parts.append(str(escape(text[last : match.start()])))
        parts.append(f"<code>{escape(code)}</code>")
        if copy_label:
            label = escape(copy_label)
            button = f'<button type="button" class="pa-copy" title="{label}" aria-label="{label}">'
            parts.append(f"{button}{_COPY_ICON}</button>")
        last = match.end()
    parts.append(str(escape(text[last:])))
    return Markup("".join(parts))


def one_line(text: str, limit: int = ACTION_CHARS) -> str:
    """The first clause of a suggestion (up to ': ' or the end of its first sentence), at most `limit`."""
    cut = len(text)
    for match in re.finditer(r"(?<!e\.g)(?<!i\.e)(?:[.:;] )", text):
        if match.start() >= 20:
            cut = match.start()
            break
    line = text[:cut].strip()
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


# Unit suffixes of evidence column names (the tables' units: docs/design.md "Tables"), longest first.
# The header shows the unit instead of the suffix; "_share" columns hold fractions, shown in percent.
UNIT_SUFFIXES = (
    ("_us_per_step", "µs/step"),
    ("_us", "µs"),
    ("_ms", "ms"),
    ("_gbps", "GB/s"),
    ("_mb", "MB"),
    ("_mhz", "MHz"),
    ("_bytes", "bytes"),
    ("_share", "%"),
)
PERCENT = "%"
# Column-name prefixes that say which side of a comparison a figure is from (or their difference).
SIDE_PREFIXES = ("target", "baseline", "slowest", "fastest", "diff")
_ARROWS = ("->", "→")
_ARROW_SPAN = re.compile(r"\S*\s?(?:->|→)\s?\S*")


def column_unit(name: str) -> tuple[str, str | None]:
    """(the name without its unit suffix, the unit): 'duration_us' -> ('duration', 'µs');
    'share_of_communication' -> ('communication', '%')."""
    if name.startswith("share_of_"):
        return name.removeprefix("share_of_"), PERCENT
    for suffix, unit in UNIT_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name.removesuffix(suffix), unit
    return name, None


def _column_label(m: Messages, base: str) -> str:
    key = f"report.column.{base}"
    if m.has(key):
        return m.t(key)
    prefix, _, rest = base.partition("_")
    if prefix in SIDE_PREFIXES and rest:
        return m.t(
            "report.column.side", side=m.t(f"report.column.side.{prefix}"), label=_column_label(m, rest)
        )
    return base.replace("_", " ")


def column_header(m: Messages, name: str) -> str:
    """The header of an evidence column: its words, translated where the catalogue has them, with its
    unit ('duration_us' -> 'duration (µs)'). The raw name stays in the page as the header's title."""
    base, unit = column_unit(name)
    label = _column_label(m, base)
    return m.t("report.column.with_unit", label=label, unit=unit) if unit else label


def _cell(value: Any, percent: bool = False) -> tuple[str, bool]:
    """(text, is_number) of one evidence cell; `percent`: a fraction shown in percent."""
    if isinstance(value, bool) or value is None:
        return ("" if value is None else str(value).lower(), False)
    if percent and isinstance(value, (int, float)):
        if not math.isfinite(value):
            return ("", True)
        value = float(value) * 100
        return (f"{value:,.2f}" if abs(value) < 1 else f"{value:,.1f}", True)
    if isinstance(value, int):
        return (f"{value}", True)
    if isinstance(value, float):
        if not math.isfinite(value):
            return ("", True)
        return (f"{value:,.4f}" if abs(value) < 1 else f"{value:,.3f}", True)
    return (str(value), False)


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, float) and not math.isfinite(value)) or value == ""


def no_break_arrows(text: str) -> Markup:
    """`text` escaped, each 'a -> b' kept on one line: a wrapped arrow reads as two figures."""
    parts: list[str] = []
    last = 0
    for match in _ARROW_SPAN.finditer(text):
        parts.append(str(escape(text[last : match.start()])))
        parts.append(f'<span class="pa-nw">{escape(match.group())}</span>')
        last = match.end()
    parts.append(str(escape(text[last:])))
    return Markup("".join(parts))


def rows_cap(evidence: list[Evidence]) -> int:
    """Rows shown per evidence table so that the page stays under HTML_CELL_BUDGET cells."""
    cap = MAX_HTML_ROWS
    while cap > MIN_HTML_ROWS:
        cells = sum(min(len(e.rows), cap) * max(len(e.columns), 1) for e in evidence)
        if cells <= HTML_CELL_BUDGET:
            break
        cap = max(MIN_HTML_ROWS, int(cap * 0.8))
    return cap


def _evidence_view(evidence: Evidence, cap: int, m: Messages) -> dict[str, Any]:
    # Columns without a value in any row (e.g. a stage no run recorded) say nothing: left out here,
    # named under the table; the XLSX and JSON keep every column.
    width = len(evidence.columns)
    kept = [i for i in range(width) if any(i < len(row) and not _is_empty(row[i]) for row in evidence.rows)]
    percent = [column_unit(name)[1] == PERCENT for name in evidence.columns]
    shown = evidence.rows[:cap]
    cells = [[_cell(row[i], percent[i]) if i < len(row) else ("", False) for i in kept] for row in shown]
    numeric = [
        bool(any(row[j][1] for row in cells) and all(row[j][1] or not row[j][0] for row in cells))
        for j in range(len(kept))
    ]

    def td(text: str, number: bool) -> str:
        if number:
            return f"<td class=n>{escape(text)}"
        if any(arrow in text for arrow in _ARROWS):
            return f"<td class=a>{escape(text)}"  # kept on one line
        return f"<td>{escape(text)}"

    # Compact markup (optional end tags left out, as HTML allows): evidence is most of a big page. One
    # join of plain strings, each cell escaped once (Markup's format and + cost ~20 µs a cell).
    body = Markup("".join(f"<tr>{''.join(td(text, num) for text, num in row)}\n" for row in cells))
    hidden = [evidence.columns[i] for i in range(width) if i not in set(kept)]
    return {
        "name": evidence.name,
        "columns": [
            (evidence.columns[i], column_header(m, evidence.columns[i]), num)
            for i, num in zip(kept, numeric, strict=True)
        ],
        "body": body,
        "shown": len(shown),
        "total": len(evidence.rows),
        "rows_label": m.tn("report.finding.rows", len(evidence.rows)),
        "hidden": ", ".join(column_header(m, name) for name in hidden),
        "truncated": len(evidence.rows) > len(shown),
    }


# Components by their human names, in the order the header lists them; one the table does not name
# is shown by its key.
VERSION_NAMES = {
    "cann": "CANN",
    "torch_npu": "torch_npu",
    "torch": "torch",
    "cuda_runtime": "CUDA runtime",
    "cuda_driver": "CUDA driver",
    "cupti": "CUPTI",
    "nccl": "NCCL",
    "rocm": "ROCm",
}
# The components a version hint stands in for (AnalysisOptions field -> component).
HINTED = {"cann_version": "cann", "torch_version": "torch_npu"}


def version_lines(report: Report, m: Messages) -> list[str]:
    """One line per version: the one recorded in the data, else (for the components a hint applies
    to: CANN and torch_npu on Ascend data) the user's hint, else unknown, each saying which it is (a
    hint never passes for a fact about the data). A PyTorch profiler trace lists what it records."""
    info = report.input
    recorded = {**info.versions}
    for field, component in HINTED.items():
        recorded.setdefault(component, getattr(info, field) or "")
    # Reports built before `device` was recorded are Ascend reports.
    applies = info.device in ("", *VERSION_HINT_DEVICES)
    hinted = {c: report.version_hints.get(f, "") for f, c in HINTED.items()} if applies else {}
    lines = []
    for component in (*VERSION_NAMES, *sorted(set(recorded) - set(VERSION_NAMES))):
        name = VERSION_NAMES.get(component, component)
        found, hint = recorded.get(component), hinted.get(component)
        if found:
            lines.append(m.t("report.header.version.data", name=name, version=found))
        elif hint:
            lines.append(m.t("report.header.version.hint", name=name, version=hint))
        elif component in hinted:
            lines.append(m.t("report.header.version.unknown", name=name))
    return lines or [m.t("report.header.version.none")]


def _label(m: Messages, key: str, fallback: str) -> str:
    return m.t(key) if m.has(key) else fallback


def _finding_view(index: int, finding: Finding, m: Messages, cap: int) -> dict[str, Any]:
    gain, share = finding.estimated_gain_us, finding.share_of_step
    if gain is None or not math.isfinite(gain):
        why = m.t("report.finding.gain_none")
        gain_ms = share_text = ""
    else:
        gain_ms = f"{gain / 1000:,.3f}"
        share_text = f"{share:.1%}" if share is not None else ""
        basis = finding.gain_basis or "measured"
        key = f"report.finding.gain.{basis}" if share is not None else "report.finding.gain_value"
        why = m.t(key, gain_ms=gain_ms, share=share_text)
    copy = m.t("report.finding.copy")
    first = finding.suggestions[0] if finding.suggestions else ""
    return {
        "anchor": f"pa-finding-{index}",
        "check": finding.check,
        "priority": finding.priority,
        "title": finding.title,
        "description": no_break_arrows(finding.description),
        "suggestions": [rich_text(s, copy_label=copy) for s in finding.suggestions],
        "action": rich_text(one_line(first)) if first else "",
        "action_full": first,
        "dimension": finding.dimension,
        "dimension_label": _label(m, f"report.dimension.{finding.dimension}", finding.dimension),
        "ranks_label": number_ranges(finding.ranks) or m.t("report.fix_first.all_ranks"),
        "step": finding.step,
        "gain_ms": gain_ms,
        "share": share_text,
        "why": why,
        "ranked": finding.ranked,
        "counted_in": list(finding.counted_in),
        "evidence": [_evidence_view(e, cap, m) for e in finding.evidence],
    }


def _figures(report: Report, m: Messages) -> dict[str, Any]:
    return {
        "rank": charts.rank_figure(report, m),
        "step": charts.step_figure(report, m),
        "heatmap": charts.heatmap_figure(report, m),
        "links": charts.link_figures(report.findings, m),
    }


def overall_figure(report: Report, m: Messages) -> dict[str, Any] | None:
    """The step-time breakdown per rank (kept for callers of the first version)."""
    return charts.rank_figure(report, m)


def render_html(report: Report) -> str:
    """The full HTML text of `report`."""
    m = Messages(report.language)
    findings = report.sorted_findings()
    step_us = charts.mean_step_us(report)
    cap = rows_cap([e for f in findings for e in f.evidence])
    views = [_finding_view(i, f, m, cap) for i, f in enumerate(findings)]
    # "What to fix first": one row per cause, with the findings it explains listed under it.
    fix_first = [
        dict(v, explains=[e for e in views if v["check"] in e["counted_in"]]) for v in views if v["ranked"]
    ]
    figures = _figures(report, m)
    figure_views = {
        key: figure_json(fig) if fig is not None else None for key, fig in figures.items() if key != "links"
    }
    link_views = [figure_json(fig) for fig in figures["links"]]
    training_views = [
        (chart_id, figure_json(fig), title) for chart_id, fig, title in charts.training_figures(report, m)
    ]
    has_charts = any(figure_views.values()) or bool(link_views) or bool(training_views)

    checked = set(report.checked_dimensions)
    own_section = {*OVERALL_DIMENSIONS, COMPARISON_DIMENSION}
    extra = [
        d
        for d in dict.fromkeys(f.dimension for f in findings)
        if d not in DIMENSIONS and d not in own_section
    ]
    sections = []
    for dimension in [*[d for d in DIMENSIONS if d in report.dimensions], *extra]:
        found = [v for v in views if v["dimension"] == dimension]
        sections.append(
            {
                "id": f"pa-dim-{dimension}",
                "dimension": dimension,
                "label": _label(m, f"report.dimension.{dimension}", dimension),
                "findings": found,
                "counts": {p: sum(v["priority"] == p for v in found) for p in ("high", "medium", "low")},
                "has_checks": dimension in checked,
            }
        )
    cluster_views = [v for v in views if v["dimension"] == "cluster"]
    cluster_ran = "cluster" in checked and len(report.input.ranks) > 1
    comparison_views = [v for v in views if v["dimension"] == COMPARISON_DIMENSION]
    timings = report.timings_s
    context = {
        "t": m.t,
        "tn": m.tn,
        "language": report.language,
        "input": report.input,
        "profile_line": report.description(),
        "has_profile": report.has_profile,
        "training": report.training,
        "training_rows": training_rows(report, m),
        "training_figures": training_views,
        "versions": version_lines(report, m),
        "dimensions": [_label(m, f"report.dimension.{d}", d) for d in report.dimensions],
        "generated": report.generated.strftime("%Y-%m-%d %H:%M:%S %Z").strip(),
        "durations": m.t(
            "report.header.durations_value", load=timings.get("load", 0.0), checks=timings.get("checks", 0.0)
        ),
        "ranks_label": number_ranges(report.input.ranks),
        "steps_label": number_ranges(report.input.steps),
        "mean_step_ms": f"{step_us / 1000:,.3f}" if step_us else "",
        "warnings": report.warnings,
        "fix_first": fix_first,
        "counts": {p: sum(v["priority"] == p for v in fix_first) for p in ("high", "medium", "low")},
        "overall_findings": [v for v in views if v["dimension"] == "overall"],
        "cluster_findings": cluster_views,
        "cluster_ran": cluster_ran,
        "comparison_findings": comparison_views,
        "show_comparison": bool(comparison_views or report.input.compare_path),
        "dimension_sections": sections,
        "not_evaluated": report.not_evaluated,
        "not_applicable": report.not_applicable,
        "figures": figure_views,
        "link_figures": link_views,
        "plotly_js": Markup(_plotly_js()) if has_charts else "",
        "version": report.tool_version,
        "css": _asset("report.css"),
        "js": _asset("report.js"),
        "ui": {
            # {shown}/{total} stay placeholders: the page's script fills them in.
            key: m.t(f"report.ui.{key}", shown="{shown}", total="{total}")
            for key in (
                "copied",
                "copy_failed",
                "rows_shown",
                "sort_hint",
                "filter",
                "expand_all",
                "collapse_all",
            )
        },
    }
    context["ui_json"] = json_for_script(json.dumps(context["ui"], ensure_ascii=False))
    return report_template().render(**context)


def write_html(report: Report, path: Path) -> Path:
    text = render_html(report)
    with path.open("x", encoding="utf-8") as fh:
        fh.write(text)
    return path
