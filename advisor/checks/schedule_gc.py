"""schedule.gc: Python garbage-collection pauses that starve the device.

Recorded GC (torch_npu experimental_config gc_detect_threshold: trace 'Python GC' / db GC_RECORD):
every collection inside the profiled steps lasting at least 1 ms. Unlike the reference, the
collections are step-filtered and costed by the device idle time they overlap.

Without GC records (detection off, or a db export without GC_RECORD), conjectured GC: a long
device-idle slice during which the host dispatched next to nothing (no framework op started, almost
no AscendCL call) and no DataLoader wait explains it. The whole process stopping is what a GC pause
looks like from the profile (reference §2.19, with a lower gap threshold and the host-op test added).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..report.model import Evidence, Finding
from .common import Gain
from .registry import RankContext, check
from .schedule_base import (
    free_slices,
    intervals,
    mean_step_time,
    overlap_ns,
    step_windows,
    union_overlap_ns,
    us,
)

ABNORMAL_US = 1000.0  # a recorded collection this long is worth reporting (reference)
CONJECTURE_FREE_US = 50_000.0  # idle slices at least this long are GC candidates
ACL_TIME_SHARE = 0.01  # AscendCL time / idle time below this ...
ACL_PER_US = 0.0001  # ... and fewer AscendCL calls than 1 per 10 ms: the host stood still
DATALOADER_SHARE = 0.5  # an idle slice half covered by a DataLoader wait is the data loader's
TOP = 10


def _recorded(ctx: RankContext, gc: pd.DataFrame) -> list[Finding]:
    m = ctx.messages
    steps = step_windows(ctx.tables["steps"])
    starts, ends = intervals(gc)
    durations = (ends - starts) / 1000.0
    inside = steps.contains(starts)
    outside = int((~inside & (durations >= ABNORMAL_US)).sum())
    keep = inside & (durations >= ABNORMAL_US)
    if not keep.any():
        return []
    starts, ends, durations = starts[keep], ends[keep], durations[keep]
    free = free_slices(ctx.tables["overlap"], steps)
    idle = overlap_ns(starts, ends, *free) / 1000.0
    n_steps = steps.count
    gain = Gain(us(union_overlap_ns(starts, ends, *free) / n_steps), mean_step_time(ctx))
    step_of = steps.step_of(starts)
    first = dict(zip(steps.numbers, steps.starts, strict=True))
    order = np.argsort(-durations, kind="stable")[:TOP]
    rows = [
        [
            int(step_of[i]) if step_of[i] >= 0 else None,
            round((starts[i] - first[step_of[i]]) / 1e6, 3) if step_of[i] in first else None,
            round(float(durations[i]), 3),
            round(float(idle[i]), 3),
        ]
        for i in order
    ]
    per_step = pd.Series(durations).groupby(step_of).agg(["size", "sum"])
    step_rows = [
        [int(s) if s >= 0 else None, int(r["size"]), round(float(r["sum"]), 3)]
        for s, r in per_step.iterrows()
    ]
    lines = [
        m.t(
            "schedule.gc.recorded",
            count=len(durations),
            steps=n_steps,
            total_ms=float(durations.sum()) / 1000.0,
            max_ms=float(durations.max()) / 1000.0,
            idle_ms=gain.ms,
            share=gain.share,
        ),
        m.t("schedule.gc.gain.recorded"),
    ]
    if outside:
        lines.append(m.t("schedule.gc.outside", count=outside))
    return [
        Finding(
            check="schedule.gc",
            dimension="schedule",
            title=m.t("schedule.gc.title.recorded", count=len(durations), idle_ms=gain.ms, share=gain.share),
            description="\n".join(lines),
            suggestions=m.t_list("schedule.gc.suggestions"),
            ranks=[ctx.rank.rank],
            step=steps.numbers[0] if len(steps.numbers) == 1 else None,
            **gain.fields(),
            evidence=[
                Evidence(
                    m.t("schedule.gc.evidence.longest"),
                    ["step", "at_ms", "duration_us", "device_idle_us"],
                    rows,
                ),
                Evidence(
                    m.t("schedule.gc.evidence.per_step"), ["step", "collections", "total_us"], step_rows
                ),
            ],
        )
    ]


def _conjectured(ctx: RankContext) -> list[Finding]:
    m = ctx.messages
    steps = step_windows(ctx.tables["steps"])
    f_starts, f_ends = free_slices(ctx.tables["overlap"], steps)
    long = (f_ends - f_starts) >= CONJECTURE_FREE_US * 1000
    f_starts, f_ends = f_starts[long], f_ends[long]
    if not len(f_starts):
        return []
    cann = ctx.tables["cann_api"]
    acl = cann[cann["name"].str.startswith("AscendCL@").fillna(False).to_numpy(dtype=bool)]
    a_starts, a_ends = intervals(acl)
    host = ctx.tables["host_ops"]
    cpu = host[(host["cat"] == "cpu_op").fillna(False).to_numpy(dtype=bool)]
    h_starts, _ = intervals(cpu)
    loader = host[
        host["name"].str.contains("dataloader", case=False, regex=False).fillna(False).to_numpy(dtype=bool)
    ]
    l_starts, l_ends = intervals(loader)

    free_us = (f_ends - f_starts) / 1000.0
    acl_count = _count_in(a_starts, f_starts, f_ends)
    acl_us = _clipped_sum(a_starts, a_ends, f_starts, f_ends) / 1000.0
    host_count = _count_in(h_starts, f_starts, f_ends)
    loader_us = overlap_ns(f_starts, f_ends, l_starts, l_ends) / 1000.0
    quiet = (
        (acl_us / free_us < ACL_TIME_SHARE)
        & (acl_count / free_us < ACL_PER_US)
        & (host_count == 0)
        & (loader_us < DATALOADER_SHARE * free_us)
    )
    if not quiet.any():
        return []
    n_steps = steps.count
    # The pause is measured (the host stood still while the device idled); only its cause is a guess,
    # which the title and the advice to record GC say.
    gain = Gain(us(float(free_us[quiet].sum()) * 1000 / n_steps), mean_step_time(ctx))
    step_of = steps.step_of(f_starts)
    first = dict(zip(steps.numbers, steps.starts, strict=True))
    idx = np.flatnonzero(quiet)
    idx = idx[np.argsort(-free_us[idx], kind="stable")][:TOP]
    rows = [
        [
            int(step_of[i]) if step_of[i] >= 0 else None,
            round((f_starts[i] - first[step_of[i]]) / 1e6, 3) if step_of[i] in first else None,
            round(float(free_us[i]), 3),
            int(acl_count[i]),
            round(float(acl_us[i]), 3),
        ]
        for i in idx
    ]
    return [
        Finding(
            check="schedule.gc",
            dimension="schedule",
            title=m.t(
                "schedule.gc.title.conjectured", count=int(quiet.sum()), idle_ms=gain.ms, share=gain.share
            ),
            description="\n".join(
                [
                    m.t(
                        "schedule.gc.conjectured",
                        count=int(quiet.sum()),
                        steps=n_steps,
                        total_ms=float(free_us[quiet].sum()) / 1000.0,
                        min_ms=CONJECTURE_FREE_US / 1000.0,
                        share=gain.share,
                    ),
                    m.t("schedule.gc.gain.conjectured"),
                ]
            ),
            suggestions=m.t_list("schedule.gc.suggestions") + m.t_list("schedule.gc.suggestions.detect"),
            ranks=[ctx.rank.rank],
            step=steps.numbers[0] if len(steps.numbers) == 1 else None,
            **gain.fields(),
            evidence=[
                Evidence(
                    m.t("schedule.gc.evidence.quiet"),
                    ["step", "at_ms", "idle_us", "acl_calls", "acl_us"],
                    rows,
                )
            ],
        )
    ]


def _count_in(points: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """How many points fall in each [start, end)."""
    points = np.sort(points)
    return np.searchsorted(points, ends, side="left") - np.searchsorted(points, starts, side="left")


def _clipped_sum(
    a_starts: np.ndarray, a_ends: np.ndarray, starts: np.ndarray, ends: np.ndarray
) -> np.ndarray:
    """Per window, the summed time of the a-intervals that start in it, cut at its end."""
    if not len(a_starts):
        return np.zeros(len(starts))
    order = np.argsort(a_starts, kind="stable")
    a_s, a_e = a_starts[order], a_ends[order]
    lo = np.searchsorted(a_s, starts, side="left")
    hi = np.searchsorted(a_s, ends, side="left")
    out = np.zeros(len(starts))
    for w in np.flatnonzero(hi > lo):  # few long windows; the calls inside each are few by definition
        out[w] = float(np.minimum(a_e[lo[w] : hi[w]], ends[w]).sum() - a_s[lo[w] : hi[w]].sum())
    return out


@check(
    "schedule.gc",
    "schedule",
    needs=frozenset({"overlap", "cann_api", "host_ops", "steps", "step_trace"}),
    # GC records are optional: a db export without GC_RECORD must still get the conjecture.
    optional=frozenset({"gc"}),
)
def gc_pauses(ctx: RankContext) -> list[Finding]:
    gc = ctx.tables.get("gc")
    if gc is not None and not gc.empty:
        return _recorded(ctx, gc)
    return _conjectured(ctx)
