"""Helpers shared by the checks: the gain of a finding and its priority (one rule for every check,
docs/design.md "Priority"), and step times."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..report.model import PRIORITIES, Evidence, Finding
from .derived import per_rank_table
from .registry import running_check

# Share of the step time at stake -> priority (reference-advisor.md §2.0.1: 5 % high, 3 % medium).
HIGH_SHARE, MEDIUM_SHARE = 0.05, 0.03
STEP_PARTS = ("computing_us", "communication_not_overlapped_us", "free_us")
# A gain is measured (the profile shows that time lost, and the fix removes it), an upper bound (a
# model's figure against an ideal: pipe utilisation, shape efficiency, bandwidth, ...) or partly
# measured (a measured part plus a modelled one).
MEASURED, UPPER_BOUND, PARTLY_MEASURED = "measured", "upper_bound", "partly_measured"


def priority_for(share: float, basis: str = MEASURED) -> str:
    """'high' / 'medium' / 'low' for the share (0..1) of the step time a finding puts at stake.

    Only a measured gain earns high; an upper bound is at most medium, from the high share on."""
    if basis == UPPER_BOUND:
        return "medium" if share >= HIGH_SHARE else "low"
    if share >= HIGH_SHARE:
        return "high"
    return "medium" if share >= MEDIUM_SHARE else "low"


@dataclass(frozen=True)
class Gain:
    """What fixing a finding saves per step (µs), the step time it is judged against and how much
    of it is measured (None: all of it; the rest is an upper bound). `fields()` gives a Finding's
    priority, gain, share and basis, consistently."""

    us: float
    step_us: float | None
    measured_us: float | None = None

    @classmethod
    def upper_bound(cls, us: float, step_us: float | None) -> Gain:
        return cls(us, step_us, measured_us=0.0)

    @property
    def per_step_us(self) -> float:
        """The gain, never negative nor above the step it is part of (a fix cannot save more)."""
        return self._bounded(self.us)

    def _bounded(self, value: float) -> float:
        value = max(value, 0.0) if math.isfinite(value) else 0.0
        return min(value, self.step_us) if self.step_us else value

    @property
    def measured_part_us(self) -> float:
        if self.measured_us is None:
            return self.per_step_us
        return min(self._bounded(self.measured_us), self.per_step_us)

    @property
    def basis(self) -> str:
        if self.measured_us is None or 0 < self.per_step_us <= self.measured_part_us:
            return MEASURED
        return PARTLY_MEASURED if self.measured_part_us > 0 else UPPER_BOUND

    @property
    def share(self) -> float:
        """Share of the step (0 when the step time is unknown)."""
        return self.per_step_us / self.step_us if self.step_us else 0.0

    @property
    def ms(self) -> float:
        return self.per_step_us / 1000.0

    @property
    def priority(self) -> str:
        """From the measured part as measured, and from the whole as an upper bound."""
        measured = self.measured_part_us / self.step_us if self.step_us else 0.0
        candidates = (priority_for(measured, MEASURED), priority_for(self.share, UPPER_BOUND))
        return min(candidates, key=PRIORITIES.index)

    def fields(self, *, at_most: str = "high") -> dict[str, Any]:
        """The Finding fields; `at_most` caps the priority (a check's reason to trust its figure less,
        which its description says)."""
        return {
            "priority": max(self.priority, at_most, key=PRIORITIES.index),
            "estimated_gain_us": round(self.per_step_us, 3),
            "share_of_step": round(self.share, 4) if self.step_us else None,
            "gain_basis": self.basis,
        }


def finding(
    *,
    title: str,
    lines: Sequence[str],
    suggestions: Sequence[str] = (),
    evidence: Sequence[Evidence] = (),
    gain: Gain | None = None,
    at_most: str = "high",
    priority: str = "low",
    ranks: Iterable[int] = (),
    step: int | None = None,
) -> Finding:
    """A finding of the running check (its id and dimension come from the check's spec): the
    description is its lines; priority and gain fields from `gain` (priority at most `at_most`), or,
    with no gain that estimates it, the check's own `priority` (`no_gain_fields`). `ranks`: the ranks it
    is about (none: the whole cluster); `step`: the one step it is about (`single_step`), if only one."""
    spec = running_check()
    return Finding(
        check=spec.id,
        dimension=spec.dimension,
        title=title,
        description="\n".join(lines),
        suggestions=list(suggestions),
        ranks=list(ranks),
        step=step,
        evidence=list(evidence),
        **(gain.fields(at_most=at_most) if gain is not None else no_gain_fields(priority)),
    )


def single_step(steps: Iterable[int]) -> int | None:
    """The step when all of `steps` are one step, else None (a finding over several steps)."""
    distinct = set(steps)
    return next(iter(distinct)) if len(distinct) == 1 else None


def no_gain_fields(priority: str) -> dict[str, Any]:
    """A Finding's priority and gain fields when nothing estimates its gain: the check's own
    severity, at most medium (high needs a measured gain)."""
    return {
        "priority": max(priority, "medium", key=PRIORITIES.index),
        "estimated_gain_us": None,
        "share_of_step": None,
        "gain_basis": None,
    }


@per_rank_table
def complete_steps(step_trace: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """The step_trace rows that have every part of the step time, and their step times (µs):
    computing + communication not overlapped + free."""
    if step_trace.empty:
        return step_trace, pd.Series(dtype="float64")
    rows = step_trace.dropna(subset=list(STEP_PARTS))
    return rows, rows[list(STEP_PARTS)].sum(axis=1)


def step_times_us(step_trace: pd.DataFrame) -> pd.Series:
    """Step time per step, indexed by step; rows missing a part are left out."""
    rows, times = complete_steps(step_trace)
    return times.set_axis(rows["step"].to_numpy()) if len(rows) else times


def mean_step_us(step_trace: pd.DataFrame | None) -> float | None:
    """The mean step time of a rank in µs, or None when the step_trace table gives none."""
    if step_trace is None or step_trace.empty:
        return None
    times = step_times_us(step_trace)
    return float(times.mean()) if len(times) else None


def ms(us: float) -> float:
    """µs -> ms, for the messages."""
    return us / 1000.0


def share_of_step(time_us: float, step_us: float | None) -> float:
    """`time_us` as a share of the step (0 when the step time is unknown)."""
    return time_us / step_us if step_us else 0.0


def own_time_us(step_trace: pd.DataFrame | None) -> float | None:
    """Mean computing + free time per step of a rank (the time that is its own, not spent waiting for
    peers in communication), or None when the step_trace table gives none."""
    if step_trace is None or step_trace.empty:
        return None
    parts = step_trace[["computing_us", "free_us"]].dropna()
    return float(parts.sum(axis=1).mean()) if len(parts) else None


def recorded_env(environment: pd.DataFrame | None) -> dict[str, str]:
    """name -> value of the `environment` table (empty when the rank recorded none or it was not read)."""
    if environment is None:
        return {}
    return dict(zip(environment["name"], environment["value"].fillna(""), strict=True))


def group_rows(*columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's group among the distinct combinations of `columns`, numbered in order of first
    appearance (as a groupby with sort=False orders them), and each group's first row: grouping a
    table on one integer column instead of several text keys.

    A missing value (None, NaN) is one key of its own in its column, as groupby(dropna=False) has it,
    and never takes another combination's number."""
    groups = np.zeros(len(columns[0]), dtype=np.int64)
    for column in columns:
        codes, uniques = pd.factorize(column, use_na_sentinel=False)
        groups, _ = pd.factorize(groups * len(uniques) + codes)
    first = np.unique(groups, return_index=True)[1]
    return groups.astype(np.intp, copy=False), first
