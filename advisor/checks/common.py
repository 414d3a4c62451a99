"""Helpers shared by the checks: priority from the share of the step at stake, and step times."""

from __future__ import annotations

import pandas as pd

# Share of the step time at stake -> priority (reference-advisor.md §2.0.1: 5 % high, 3 % medium).
HIGH_SHARE, MEDIUM_SHARE = 0.05, 0.03
STEP_PARTS = ("computing_us", "communication_not_overlapped_us", "free_us")


def priority_for(share: float) -> str:
    """'high' / 'medium' / 'low' for the share (0..1) of the step time a finding puts at stake."""
    if share >= HIGH_SHARE:
        return "high"
    return "medium" if share >= MEDIUM_SHARE else "low"


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
