"""Checks: one module per check, each a pure function of normalised tables -> findings."""

from __future__ import annotations

from .registry import (
    CheckResult,
    CheckSpec,
    ClusterContext,
    NotEvaluated,
    RankContext,
    all_checks,
    check,
    selected_checks,
)

__all__ = [
    "CheckResult",
    "CheckSpec",
    "ClusterContext",
    "NotEvaluated",
    "RankContext",
    "all_checks",
    "check",
    "selected_checks",
]
