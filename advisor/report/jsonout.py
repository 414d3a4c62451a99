"""JSON report writer (schema_version 1, see docs/architecture.md §3.2)."""

from __future__ import annotations

import json
from pathlib import Path

from .model import Report


def report_json_text(report: Report) -> str:
    return json.dumps(report.to_json(), ensure_ascii=False, indent=2, allow_nan=False) + "\n"


def write_json(report: Report, path: Path) -> Path:
    text = report_json_text(report)
    with path.open("x", encoding="utf-8") as fh:
        fh.write(text)
    return path


SCHEMA_PATH = Path(__file__).with_name("report.schema.json")


def report_schema() -> dict:
    """The JSON Schema of the report contract (schema_version 1)."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
