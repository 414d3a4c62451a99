"""XLSX workbook: a Summary sheet (one row per finding) and one sheet per evidence table."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from .messages import Messages
from .model import Report

SUMMARY_SHEET = "Summary"  # stable name: scripts read it whatever the report language
NOT_EVALUATED_SHEET = "Not evaluated"
MAX_SHEET_NAME = 31
MAX_COLUMN_WIDTH = 60
_HEADER_FONT = Font(bold=True, color="FFFFFF")
_HEADER_FILL = PatternFill("solid", fgColor="187498")
_BAD_SHEET_CHARS = re.compile(r"[\[\]:*?/\\]")


def unique_sheet_name(name: str, taken: set[str]) -> str:
    """A valid Excel sheet name (≤ 31 chars, no []:*?/\\), unique case-insensitively in `taken`."""
    base = _BAD_SHEET_CHARS.sub("_", name).strip().strip("'") or "Sheet"
    candidate = base[:MAX_SHEET_NAME]
    counter = 2
    while candidate.lower() in taken:
        suffix = f" ({counter})"
        candidate = base[: MAX_SHEET_NAME - len(suffix)] + suffix
        counter += 1
    taken.add(candidate.lower())
    return candidate


def _value(value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value if not (isinstance(value, float) and not math.isfinite(value)) else None
    if hasattr(value, "item"):  # numpy scalars
        return _value(value.item())
    return ILLEGAL_CHARACTERS_RE.sub("", str(value))


def _write_table(sheet: Worksheet, columns: list[str], rows: list[list[Any]]) -> None:
    sheet.append([_value(c) for c in columns])
    for row in rows:
        sheet.append([_value(v) for v in row])
    widths = [len(str(c)) for c in columns]
    for row_cells in sheet.iter_rows(min_row=2):
        for i, cell in enumerate(row_cells):
            # Profile strings are data, never formulas: "=HYPERLINK(...)" in an op name stays text.
            if isinstance(cell.value, str) and cell.value.startswith("="):
                cell.data_type = "s"
            if i < len(widths):
                longest = max((len(line) for line in str(cell.value or "").splitlines()), default=0)
                widths[i] = max(widths[i], longest)
            if isinstance(cell.value, str) and "\n" in cell.value:
                cell.alignment = Alignment(wrap_text=True, vertical="top")
    for cell in sheet[1]:
        cell.font, cell.fill = _HEADER_FONT, _HEADER_FILL
    for i, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(i)].width = min(max(width + 2, 8), MAX_COLUMN_WIDTH)
    sheet.freeze_panes = "A2"
    if columns:
        sheet.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{max(len(rows) + 1, 1)}"


def write_xlsx(report: Report, path: Path) -> Path:
    m = Messages(report.language)
    book = Workbook()
    summary = book.active
    summary.title = SUMMARY_SHEET
    taken = {SUMMARY_SHEET.lower()}
    keys = ("dimension", "check", "priority", "title", "description", "suggestion", "ranks", "gain")
    rows = []
    findings = report.sorted_findings()
    for f in findings:
        suggestions = "\n".join(f"{i}. {s}" for i, s in enumerate(f.suggestions, start=1))
        rows.append(
            [
                f.dimension,
                f.check,
                f.priority,
                f.title,
                f.description,
                suggestions,
                ", ".join(str(r) for r in f.ranks),
                f.estimated_gain_us,
            ]
        )
    _write_table(summary, [m.t(f"xlsx.summary.{k}") for k in keys], rows)

    for f in findings:
        for evidence in f.evidence:
            sheet = book.create_sheet(unique_sheet_name(evidence.name, taken))
            _write_table(sheet, evidence.columns, evidence.rows)
    if report.not_evaluated:
        sheet = book.create_sheet(unique_sheet_name(NOT_EVALUATED_SHEET, taken))
        _write_table(
            sheet,
            [m.t("xlsx.not_evaluated.check"), m.t("xlsx.not_evaluated.reason")],
            [[n.check, n.reason] for n in report.not_evaluated],
        )
    with path.open("xb") as fh:
        book.save(fh)
    return path
