"""XLSX workbook: a Summary sheet (one row per finding), one sheet per evidence table, then the checks
not evaluated, the warnings and the Input sheet (the HTML header: what was analysed). Evidence sheets
keep the tables' raw column names and values (`duration_us`, a share as a fraction): scripts read
them, unlike the HTML's headers with units."""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone
from io import BytesIO
from pathlib import Path
from typing import Any
from zipfile import ZIP_DEFLATED, ZipFile

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.drawing.spreadsheet_drawing import SpreadsheetDrawing
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._writer import WorksheetWriter
from openpyxl.worksheet.worksheet import Worksheet
from openpyxl.writer.excel import ExcelWriter

from ..ranges import number_ranges
from .html import version_lines
from .messages import Messages
from .model import Report
from .training_view import series_rows, training_rows

SUMMARY_SHEET = "Summary"  # stable name: scripts read it whatever the report language
NOT_EVALUATED_SHEET = "Not evaluated"
NOT_APPLICABLE_SHEET = "Not applicable"
WARNINGS_SHEET = "Warnings"
INPUT_SHEET = "Input"  # the report header: what was analysed
TRAINING_SHEET = "Training"  # the training log's figures (with a log only); its series on the next
MAX_SHEET_NAME = 31
MAX_COLUMN_WIDTH = 60
MAX_CELL_CHARS = 32767  # Excel's limit; openpyxl cuts a longer string there
WIDTH_SAMPLE_ROWS = 1000  # column widths from the first rows only: long tables write faster
_HEADER_FONT = Font(bold=True, color="FFFFFF")
_HEADER_FILL = PatternFill("solid", fgColor="187498")
_WRAP_TOP = Alignment(wrap_text=True, vertical="top")
_BAD_SHEET_CHARS = re.compile(r"[\[\]:*?/\\]")
_PRIORITY_FILLS = {
    "high": PatternFill("solid", fgColor="F2C4CC"),
    "medium": PatternFill("solid", fgColor="FDE3A7"),
    "low": PatternFill("solid", fgColor="C9EBD8"),
}


class _WriteOnlyBytes(BytesIO):
    """A BytesIO that says it cannot be read: the text layer the XML is written through then keeps no
    decoder, which it would otherwise reset after each of the sheet's many small writes."""

    def readable(self) -> bool:
        return False


class _SheetsInMemory(ExcelWriter):
    """openpyxl's workbook writer with each sheet's XML kept in memory. The stock one writes every
    sheet to a temporary file, copies it into the archive and deletes it: 1.5-4 ms a sheet here, a
    third of a small workbook's save. The sheet's part is written as `ExcelWriter.write_worksheet`
    (openpyxl 3.1) writes it for a workbook that is not write-only: private classes, hence the
    dependency on openpyxl 3.1.x in pyproject.toml."""

    def write_worksheet(self, ws: Worksheet) -> None:
        ws._drawing = SpreadsheetDrawing()
        ws._drawing.charts = ws._charts
        ws._drawing.images = ws._images
        writer = WorksheetWriter(ws, out=_WriteOnlyBytes())
        writer.write()
        ws._rels = writer._rels
        self._archive.writestr(ws.path[1:], writer.read())
        self.manifest.append(ws)


def save_workbook(book: Workbook, path: Path) -> None:
    """`book.save(path)` without temporary files; never overwrites `path`."""
    with path.open("xb") as fh, ZipFile(fh, "w", ZIP_DEFLATED, allowZip64=True) as archive:
        book.properties.modified = datetime.now(tz=timezone.utc).replace(tzinfo=None)
        _SheetsInMemory(book, archive).save()


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
    return ILLEGAL_CHARACTERS_RE.sub("", str(value))[:MAX_CELL_CHARS]


def _write_table(sheet: Worksheet, columns: list[str], rows: list[list[Any]]) -> None:
    # Widths and the cells that need a style come from the values as they are appended (the cells'
    # own values: `_value` cuts as openpyxl does), not from a walk over the sheet's cells afterwards.
    widths = [len(str(c)) for c in columns]
    formula_like: list[tuple[int, int]] = []
    multi_line: list[tuple[int, int]] = []
    sheet.append([_value(c) for c in columns])
    for row_number, row in enumerate(rows, start=2):
        values = [_value(v) for v in row]
        sheet.append(values)
        sampled = row_number <= WIDTH_SAMPLE_ROWS
        for i, value in enumerate(values):
            if sampled and i < len(widths):
                longest = max((len(line) for line in str(value or "").splitlines()), default=0)
                widths[i] = max(widths[i], longest)
            if isinstance(value, str):
                if value.startswith("="):
                    formula_like.append((row_number, i + 1))
                if "\n" in value:
                    multi_line.append((row_number, i + 1))
    # Profile strings are data, never formulas: "=HYPERLINK(...)" in an op name stays text.
    for row_number, column in formula_like:
        sheet.cell(row_number, column).data_type = "s"
    for row_number, column in multi_line:
        sheet.cell(row_number, column).alignment = _WRAP_TOP
    for cell in sheet[1]:
        cell.font, cell.fill = _HEADER_FONT, _HEADER_FILL
    for i, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(i)].width = min(max(width + 2, 8), MAX_COLUMN_WIDTH)
    sheet.freeze_panes = "A2"
    if columns:
        sheet.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{max(len(rows) + 1, 1)}"


def input_rows(report: Report, m: Messages) -> list[list[str]]:
    """The HTML report's header as rows: input, baseline, profile, ranks, steps, versions."""
    info = report.input
    rows = [[m.t("report.header.input"), info.path]]
    if info.compare_path:
        rows.append([m.t("report.header.compare"), info.compare_path])
    rows += [
        [m.t("report.header.profile"), report.description()],
        [m.t("report.header.ranks"), number_ranges(info.ranks)],
        [m.t("report.header.steps"), number_ranges(info.steps)],
        [m.t("report.header.versions"), "\n".join(version_lines(report, m))],
    ]
    return rows


def write_xlsx(report: Report, path: Path) -> Path:
    m = Messages(report.language)
    book = Workbook()
    summary = book.active
    summary.title = SUMMARY_SHEET
    taken = {SUMMARY_SHEET.lower()}
    findings = report.sorted_findings()
    # Evidence sheets are numbered after their finding's row in the summary ("3 Per rank"), so that
    # tables of the same name from different findings stay apart and easy to find.
    sheet_names = [
        [unique_sheet_name(f"{n} {evidence.name}", taken) for evidence in f.evidence]
        for n, f in enumerate(findings, start=1)
    ]
    keys = ("dimension", "check", "priority", "title", "description", "suggestion", "ranks", "gain", "share",
            "basis", "counted_in")  # fmt: skip
    columns = [m.t(f"xlsx.summary.{k}") for k in keys] + [m.t("report.xlsx.evidence")]
    rows = []
    for f, names in zip(findings, sheet_names, strict=True):
        suggestions = "\n".join(f"{i}. {s}" for i, s in enumerate(f.suggestions, start=1))
        gain = f.estimated_gain_us
        rows.append(
            [
                f.dimension,
                f.check,
                f.priority,
                f.title,
                f.description,
                suggestions,
                number_ranges(f.ranks),
                gain if gain is None or math.isfinite(gain) else None,
                f.share_of_step,
                f.gain_basis or "",
                ", ".join(f.counted_in),
                ", ".join(names),
            ]
        )
    _write_table(summary, columns, rows)
    for row, f in enumerate(findings, start=2):
        summary.cell(row, 3).fill = _PRIORITY_FILLS[f.priority]
        summary.cell(row, 8).number_format = "#,##0.0"
        summary.cell(row, 9).number_format = "0.0%"
        for col in (4, 5, 6):
            summary.cell(row, col).alignment = _WRAP_TOP
    for col, width in ((5, 70), (6, 70), (4, 40)):
        summary.column_dimensions[get_column_letter(col)].width = width

    for f, names in zip(findings, sheet_names, strict=True):
        for evidence, name in zip(f.evidence, names, strict=True):
            _write_table(book.create_sheet(name), evidence.columns, evidence.rows)
    for name, notes, key in (
        (NOT_EVALUATED_SHEET, report.not_evaluated, "xlsx.not_evaluated"),
        (NOT_APPLICABLE_SHEET, report.not_applicable, "xlsx.not_applicable"),
    ):
        if notes:
            _write_table(
                book.create_sheet(unique_sheet_name(name, taken)),
                [m.t(f"{key}.check"), m.t(f"{key}.reason")],
                [[n.check, n.reason] for n in notes],
            )
    if report.training is not None:
        _write_table(
            book.create_sheet(unique_sheet_name(TRAINING_SHEET, taken)),
            [m.t("xlsx.input.field"), m.t("xlsx.input.value")],
            training_rows(report, m),
        )
        _write_table(
            book.create_sheet(unique_sheet_name(m.t("xlsx.training.series"), taken)), *series_rows(report)
        )
    if report.warnings:
        sheet = book.create_sheet(unique_sheet_name(WARNINGS_SHEET, taken))
        _write_table(sheet, [m.t("xlsx.warnings.warning")], [[w] for w in report.warnings])
    _write_table(
        book.create_sheet(unique_sheet_name(INPUT_SHEET, taken)),
        [m.t("xlsx.input.field"), m.t("xlsx.input.value")],
        input_rows(report, m),
    )
    save_workbook(book, path)
    return path
