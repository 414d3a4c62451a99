"""The report model and its renderers (HTML, XLSX, JSON)."""

from __future__ import annotations

from .model import Evidence, Finding, InputInfo, NotEvaluated, Report

__all__ = ["Evidence", "Finding", "InputInfo", "NotEvaluated", "Report"]
