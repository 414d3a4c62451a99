"""Check registry: each check declares its id, dimension, the tables it needs and its scope."""

from __future__ import annotations

import functools
import importlib
import pkgutil
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ..model import DEVICES, ProfileSet, RankInfo
from ..options import AnalysisOptions
from ..report.messages import Messages
from ..report.model import Finding

# Dimensions the user cannot deselect: the overall picture always runs; cluster and comparison
# checks run whenever their data (several ranks, a baseline) is there.
ALWAYS_RUN = ("overall", "cluster", "comparison")
# "training": a check of the training log (checks/training_base.TrainingContext), run once per analysis.
SCOPES = ("rank", "cluster", "comparison", "training")
# What a profile was recorded on (ProfileSet.device, one of model.DEVICES). A check that reads what
# only one device records (AI Core counters, CANN calls and variables, HCCL transports, GE graphs)
# declares that device.
ALL_DEVICES = frozenset(DEVICES)
NPU_ONLY = frozenset({"npu"})
# What only a GPU trace records: kernels with their launches' correlation ids, host-device copies by
# memory kind, CUDA kernel names.
GPU_ONLY = frozenset({"gpu"})
# What a device records but a CPU-only trace does not: device kernels and the device runtime's calls.
ACCELERATORS = frozenset({"npu", "gpu"})
# Modules of this package that hold no checks; every other module registers its checks on import.
_NOT_CHECKS = frozenset({"registry", "catalogue", "common", "links"})


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


@dataclass(frozen=True)
class ComparisonContext:
    """What a comparison check sees: one rank of the target run against one rank of a baseline.

    `mode` is "baseline" (another run given with --compare; ranks matched by id) or "ranks" (no
    baseline: the slowest rank of the cluster against the fastest). Per-step tables are as loaded
    (all profiled steps unless --step chose one); compare per-step figures, as the two sides may
    hold different numbers of steps.
    """

    mode: str
    target: ProfileSet
    target_rank: RankInfo
    target_tables: Mapping[str, pd.DataFrame]
    baseline: ProfileSet
    baseline_rank: RankInfo
    baseline_tables: Mapping[str, pd.DataFrame]
    options: AnalysisOptions
    messages: Messages

    def label(self, side: str) -> str:
        """'rank 3 (slowest)' / 'baseline rank 0': what to call a side in titles and tables."""
        m = self.messages
        if side not in ("target", "baseline"):
            raise ValueError(f"side must be target or baseline; got {side!r}")
        rank = (self.target_rank if side == "target" else self.baseline_rank).rank
        return m.t(f"comparison.label.{self.mode}.{side}", rank=rank)


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
    # Tables used when the profile has them: in the context's tables only if they could be read.
    optional: frozenset[str] = frozenset()
    # Cluster checks only: big tables looked up for a few ranks; read when first looked up (absent
    # when unreadable), never sent from every rank.
    on_demand: frozenset[str] = frozenset()
    # The devices whose profiles the check applies to; on others it is listed as not applicable.
    devices: frozenset[str] = ALL_DEVICES

    def applies_to(self, device: str) -> bool:
        return device in self.devices

    @property
    def tables(self) -> frozenset[str]:
        return self.needs | self.optional


_CHECKS: dict[str, CheckSpec] = {}
_RUNNING: ContextVar[CheckSpec | None] = ContextVar("running_check", default=None)


def check(
    check_id: str,
    dimension: str,
    needs: frozenset[str] = frozenset({"step_trace"}),
    scope: str = "rank",
    optional: frozenset[str] = frozenset(),
    on_demand: frozenset[str] = frozenset(),
    devices: frozenset[str] = ALL_DEVICES,
) -> Callable[[CheckFn], CheckFn]:
    """Register a check function (`fn(RankContext)`, `fn(ClusterContext)` or `fn(ComparisonContext)`
    -> findings, by scope)."""
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}; got {scope!r}")
    if not devices or not devices <= ALL_DEVICES:
        raise ValueError(f"check {check_id!r}: devices must be some of {DEVICES}; got {sorted(devices)}")
    if on_demand and scope != "cluster":
        raise ValueError(f"check {check_id!r}: only a cluster check reads tables on demand")
    if not check_id.startswith(f"{dimension}.") and dimension not in ("overall", "cluster"):
        raise ValueError(f"check id {check_id!r} must start with its dimension {dimension!r}")

    def decorate(fn: CheckFn) -> CheckFn:
        known = _CHECKS.get(check_id)
        if known is not None and getattr(known.fn, "__wrapped__", None) is not fn:
            raise ValueError(f"check {check_id!r} is registered twice")

        @functools.wraps(fn)
        def run_as_check(ctx: Any) -> list[Finding] | CheckResult:
            with running(check_id):
                return fn(ctx)

        _CHECKS[check_id] = CheckSpec(
            check_id,
            dimension,
            frozenset(needs),
            scope,
            run_as_check,
            frozenset(optional),
            frozenset(on_demand),
            frozenset(devices),
        )
        return run_as_check

    return decorate


@contextmanager
def running(check_id: str) -> Iterator[CheckSpec]:
    """Run the block as the check `check_id`, as every call of a registered check does: the findings
    made in it take their check id and dimension from its spec (`common.finding`)."""
    spec = _CHECKS[check_id]
    token = _RUNNING.set(spec)
    try:
        yield spec
    finally:
        _RUNNING.reset(token)


def running_check() -> CheckSpec:
    """The spec of the check running now (RuntimeError outside one: a finding belongs to a check)."""
    spec = _RUNNING.get(None)
    if spec is None:
        raise RuntimeError("a finding is made by a running check (see checks.registry.running)")
    return spec


def unregister(check_id: str) -> None:
    """Remove a check (tests register throw-away checks)."""
    _CHECKS.pop(check_id, None)


def load_builtin_checks() -> None:
    package = importlib.import_module(__package__)
    for module in pkgutil.iter_modules(package.__path__):
        if module.name not in _NOT_CHECKS and not module.ispkg:
            importlib.import_module(f"{__package__}.{module.name}")


def all_checks() -> list[CheckSpec]:
    load_builtin_checks()
    return list(_CHECKS.values())


def selected_checks(dimensions: Iterable[str]) -> list[CheckSpec]:
    """The checks to run for the chosen dimensions (plus the always-run ones), in registration order."""
    chosen = set(dimensions) | set(ALWAYS_RUN)
    return [spec for spec in all_checks() if spec.dimension in chosen]
