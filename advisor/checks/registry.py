"""Check registry: each check declares its id, dimension, the tables it needs and its scope."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ..options import AnalysisOptions
from ..profiles.discover import ProfileSet, RankInfo
from ..report.messages import Messages
from ..report.model import Finding

# Dimensions the user cannot deselect: the overall picture always runs; cluster and comparison
# checks run whenever their data (several ranks, a baseline) is there.
ALWAYS_RUN = ("overall", "cluster", "comparison")
SCOPES = ("rank", "cluster")
# Modules holding the built-in checks (imported once by `load_builtin_checks`).
BUILTIN_MODULES = ("advisor.checks.overall_summary",)


class NotEvaluated(Exception):
    """Raised by a check that cannot give an answer on this data; `reason` is one line for the report."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class RankContext:
    """What a rank-scope check sees: one rank's tables."""

    profile: ProfileSet
    rank: RankInfo
    tables: Mapping[str, pd.DataFrame]
    options: AnalysisOptions
    messages: Messages


@dataclass(frozen=True)
class ClusterContext:
    """What a cluster-scope check sees: the (small) tables of every rank, keyed by rank id."""

    profile: ProfileSet
    tables: Mapping[int, Mapping[str, pd.DataFrame]]
    options: AnalysisOptions
    messages: Messages


@dataclass
class CheckResult:
    """A check may return this instead of a list to also contribute to the report's `summary`."""

    findings: list[Finding] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)


CheckFn = Callable[[Any], "list[Finding] | CheckResult"]


@dataclass(frozen=True)
class CheckSpec:
    id: str
    dimension: str
    needs: frozenset[str]
    scope: str
    fn: CheckFn


_CHECKS: dict[str, CheckSpec] = {}


def check(
    check_id: str,
    dimension: str,
    needs: frozenset[str] = frozenset({"step_trace"}),
    scope: str = "rank",
) -> Callable[[CheckFn], CheckFn]:
    """Register a check function (`fn(RankContext)` or `fn(ClusterContext)` -> findings)."""
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}; got {scope!r}")
    if not check_id.startswith(f"{dimension}.") and dimension not in ("overall", "cluster"):
        raise ValueError(f"check id {check_id!r} must start with its dimension {dimension!r}")

    def decorate(fn: CheckFn) -> CheckFn:
        if check_id in _CHECKS and _CHECKS[check_id].fn is not fn:
            raise ValueError(f"check {check_id!r} is registered twice")
        _CHECKS[check_id] = CheckSpec(check_id, dimension, frozenset(needs), scope, fn)
        return fn

    return decorate


def unregister(check_id: str) -> None:
    """Remove a check (tests register throw-away checks)."""
    _CHECKS.pop(check_id, None)


def load_builtin_checks() -> None:
    for module in BUILTIN_MODULES:
        importlib.import_module(module)


def all_checks() -> list[CheckSpec]:
    load_builtin_checks()
    return list(_CHECKS.values())


def selected_checks(dimensions: Iterable[str]) -> list[CheckSpec]:
    """The checks to run for the chosen dimensions (plus the always-run ones), in registration order."""
    chosen = set(dimensions) | set(ALWAYS_RUN)
    return [spec for spec in all_checks() if spec.dimension in chosen]
