"""schedule.gc: Python garbage-collection pauses that starve the device.

Recorded GC (torch_npu experimental_config gc_detect_threshold: trace 'Python GC' / db GC_RECORD):
every collection inside the profiled steps lasting at least 1 ms. Unlike the reference, the
collections are step-filtered and costed by the device idle time they overlap.

Without GC records (detection off, torch_npu's default, or a db export without GC_RECORD),
conjectured GC: a host pause (`quiet_pauses`), at least 50 ms in which no host event starts or ends
and no operator, blocking CANN call or DataLoader fetch runs, while the device idles. The whole
process standing still is what a GC pause looks like from the profile. The reference (§2.19) looks
only at device-idle slices over 200 ms with almost no AscendCL calls; this finds those and shorter
ones, and the pause inside a longer idle slice (the operator that ends a pause starts in the slice).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..report.model import Evidence, Finding
from .common import Gain, finding
from .registry import NotEvaluated, RankContext, check
from .schedule_base import (
    Steps,
    free_slices,
    host_stalls,
    intervals,
    mean_step_time,
    merge,
    names_where,
    overlap_ns,
    step_windows,
    union_overlap_ns,
    us,
)

ABNORMAL_US = 1000.0  # a recorded collection this long is worth reporting (reference)
CONJECTURE_FREE_US = 50_000.0  # idle slices at least this long are GC candidates
COVERED_SHARE = 0.01  # a stretch this much covered by an operator or a blocking call is not a pause
TOP = 10


def _recorded(ctx: RankContext, gc: pd.DataFrame) -> list[Finding]:
    m = ctx.messages.for_device(ctx.profile.device)
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
        finding(
            title=m.t("schedule.gc.title.recorded", count=len(durations), idle_ms=gain.ms, share=gain.share),
            lines=lines,
            suggestions=m.t_list("schedule.gc.suggestions"),
            ranks=[ctx.rank.rank],
            step=steps.single,
            gain=gain,
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


def quiet_pauses(ctx: RankContext, steps: Steps) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(starts, ends, device-idle µs) of the host pauses inside the steps: stretches of at least
    CONJECTURE_FREE_US in which no recorded host event (framework op, Python function, annotation)
    starts or ends, that no framework op, host-blocking CANN call or DataLoader wait covers, and
    during which the device idles that long too.

    A Python garbage collection stops the process between two operators: nothing is recorded
    meanwhile, and the device runs dry once its queue drains. The stretch ends when the next operator
    starts; its kernels then start the device again. Calls that keep running across the stretch
    (ProfilerStep, a module forward, optimizer.step) do not make the host busy: GC runs inside them.
    """
    host = ctx.tables["host_ops"]
    h_starts, h_ends = intervals(host)
    # Boundaries: every host event's start and end, and the step windows' edges.
    points = np.unique(np.concatenate([h_starts, h_ends, steps.starts, steps.ends]))
    points = points[steps.contains(points) | np.isin(points, steps.ends)]
    if len(points) < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    # A stretch starting in a step ends at the latest with it (its end is a boundary).
    g_starts, g_ends = points[:-1], points[1:]
    long = (g_ends - g_starts >= CONJECTURE_FREE_US * 1000) & (steps.step_of(g_starts) >= 0)
    g_starts, g_ends = g_starts[long], g_ends[long]
    # What keeps the host busy across a stretch, and belongs to other checks: an operator running
    # (aten::/npu::), a blocking or compiling CANN call, a DataLoader fetch.
    b_starts, b_ends = intervals(host[names_where(host, _keeps_host_busy)])
    s_starts, s_ends = host_stalls(ctx.tables.get("runtime_api"), None)
    covered = overlap_ns(g_starts, g_ends, *merge(np.r_[b_starts, s_starts], np.r_[b_ends, s_ends]))
    free = free_slices(ctx.tables["overlap"], steps)
    idle = overlap_ns(g_starts, g_ends, *free)
    keep = (covered < COVERED_SHARE * (g_ends - g_starts)) & (idle >= CONJECTURE_FREE_US * 1000)
    return g_starts[keep], g_ends[keep], idle[keep] / 1000.0


def _keeps_host_busy(name: str) -> bool:
    return name.startswith(("aten::", "npu::")) or "DATALOADER" in name.upper()


def _conjectured(ctx: RankContext) -> list[Finding]:
    m = ctx.messages.for_device(ctx.profile.device)
    if ctx.profile.device != "npu" and not _python_frames_recorded(ctx.tables["host_ops"]):
        # torch.profiler records neither Python code nor GC by default: a gap with no host event
        # is then as likely plain Python (a sleep, I/O, a JIT compile) as a collection. Only with
        # the stack recorded does a gap mean the whole process stood still.
        raise NotEvaluated(m.t("schedule.gc.no_python_frames"))
    steps = step_windows(ctx.tables["steps"])
    if not steps.known:
        return []
    starts, ends, idle_us = quiet_pauses(ctx, steps)
    if not len(starts):
        return []
    n_steps = steps.count
    # The pause is measured (the host stood still while the device idled); only its cause is a guess,
    # which the title and the advice to record GC say.
    gain = Gain(us(float(idle_us.sum()) * 1000 / n_steps), mean_step_time(ctx))
    step_of = steps.step_of(starts)
    first = dict(zip(steps.numbers, steps.starts, strict=True))
    order = np.argsort(-idle_us, kind="stable")[:TOP]
    rows = [
        [
            int(step_of[i]) if step_of[i] >= 0 else None,
            round((starts[i] - first[step_of[i]]) / 1e6, 3) if step_of[i] in first else None,
            round(float(ends[i] - starts[i]) / 1000.0, 3),
            round(float(idle_us[i]), 3),
        ]
        for i in order
    ]
    return [
        finding(
            title=m.t("schedule.gc.title.conjectured", count=len(starts), idle_ms=gain.ms, share=gain.share),
            lines=[
                m.t(
                    "schedule.gc.conjectured",
                    count=len(starts),
                    steps=n_steps,
                    total_ms=float(idle_us.sum()) / 1000.0,
                    min_ms=CONJECTURE_FREE_US / 1000.0,
                    share=gain.share,
                ),
                m.t("schedule.gc.gain.conjectured"),
            ],
            suggestions=m.t_list("schedule.gc.suggestions.detect") + m.t_list("schedule.gc.suggestions"),
            ranks=[ctx.rank.rank],
            step=steps.single,
            gain=gain,
            evidence=[
                Evidence(
                    m.t("schedule.gc.evidence.quiet"),
                    ["step", "at_ms", "host_quiet_us", "device_idle_us"],
                    rows,
                )
            ],
        )
    ]


def _python_frames_recorded(host_ops: pd.DataFrame) -> bool:
    """Whether the trace holds Python frames (torch.profiler with_stack=True)."""
    return bool(host_ops["cat"].eq("python_function").any())


@check(
    "schedule.gc",
    "schedule",
    needs=frozenset({"overlap", "host_ops", "steps", "step_trace"}),
    # GC records are optional: a db export without GC_RECORD must still get the conjecture. CANN calls
    # tell a host blocked in the runtime from a paused one where they were recorded (not at Level0).
    optional=frozenset({"gc", "runtime_api"}),
)
def gc_pauses(ctx: RankContext) -> list[Finding]:
    gc = ctx.tables.get("gc")
    if gc is not None and not gc.empty:
        return _recorded(ctx, gc)
    return _conjectured(ctx)
