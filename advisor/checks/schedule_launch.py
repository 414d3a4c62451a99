"""schedule.launch_overhead and schedule.fused_optimizer: the GPU waits for kernel launches.

A short kernel that starts right after its launch call returned, on a device that had nothing else
to run, was paced by the host: the device idled from the end of the previous work until the launch
arrived. Such gaps before many short kernels are launch overhead (schedule.launch_overhead); the
gap is measured, and the usual fixes (CUDA Graphs, fusion, foreach ops, larger batches) remove it.
Gaps in which the host stood still (a blocking call, a garbage collection) are left to
schedule.host_sync / schedule.gc, and gaps longer than `max_gap_us` are host stalls, not launch
overhead.

The commonest source in training is a per-parameter optimizer: `Optimizer.step#…` launching a few
kernels per parameter and no multi-tensor (foreach/fused) kernel (schedule.fused_optimizer). Its
gain is the device idle inside the optimizer's kernels, which is part of what
schedule.launch_overhead measures when those kernels are short: the two name one cause and their
gains are not to be added.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from ..report.model import Evidence, Finding
from .common import Gain, finding
from .knowledge import knowledge
from .registry import GPU_ONLY, NotEvaluated, RankContext, check
from .schedule_base import (
    busy_before,
    host_stalls,
    intervals,
    launched,
    mean_step_time,
    merge,
    outermost,
    overlap_ns,
    step_windows,
    us,
)

TOP = 10
_NEEDS = frozenset({"kernels", "runtime_api", "steps", "step_trace"})


def _launched_kernels(ctx: RankContext) -> pd.DataFrame:
    kernels = ctx.tables["kernels"]
    if kernels.empty or kernels["correlation"].isna().all():
        raise NotEvaluated(ctx.messages.t("schedule.launch.no_kernels"))
    return launched(kernels, ctx.tables["runtime_api"])


def _activity(ctx: RankContext, kernels: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Everything the device ran (kernels, copies, memsets) as (start, end) ns."""
    tasks = ctx.tables.get("device_tasks")
    if tasks is not None and not tasks.empty:
        return intervals(tasks)
    return kernels["start"].to_numpy(dtype=np.int64), kernels["end"].to_numpy(dtype=np.int64)


def _regions(ctx: RankContext, rows: pd.DataFrame) -> np.ndarray:
    """Per launched kernel, the user range (record_function, Optimizer.step#…) its launch ran in,
    outermost below the ProfilerStep; "" where none."""
    host = ctx.tables.get("host_ops")
    out = np.full(len(rows), "", dtype=object)
    if host is None or host.empty or rows.empty:
        return out
    names = host["name"].astype("string")
    ranges = host[
        (host["cat"].astype("string").str.lower() == "user_annotation").fillna(False).to_numpy(dtype=bool)
        & ~names.str.startswith("ProfilerStep#").fillna(False).to_numpy(dtype=bool)
    ].reset_index(drop=True)
    calls = pd.DataFrame(
        {
            "start_ns": rows["launch_start"].astype("Int64").to_numpy(),
            "dur_us": ((rows["launch_end"] - rows["launch_start"]) / 1000.0).astype("float64").to_numpy(),
            "tid": rows["tid"].astype("Int64").to_numpy(),
        }
    )
    owner = outermost(ranges, calls)
    hit = owner >= 0
    out[hit] = ranges["name"].astype(object).to_numpy()[owner[hit]]
    return out


@check(
    "schedule.launch_overhead",
    "schedule",
    needs=_NEEDS,
    optional=frozenset({"device_tasks", "host_ops", "gc"}),
    devices=GPU_ONLY,
)
def launch_overhead(ctx: RankContext) -> list[Finding]:
    m = ctx.messages
    cfg = knowledge("gpu")["launch_overhead"]
    steps = step_windows(ctx.tables["steps"])
    kernels = _launched_kernels(ctx)
    last_busy = busy_before(kernels["start"].to_numpy(dtype=np.int64), _activity(ctx, kernels))
    gap_ns = kernels["start"].to_numpy(dtype=np.int64) - last_busy
    launch_end = kernels["launch_end"].to_numpy(dtype=np.float64, na_value=np.nan)
    paced = (
        kernels["launch_end"].notna().to_numpy(dtype=bool)
        & (kernels["start"].to_numpy(dtype=np.float64) - launch_end <= cfg["launch_paced_us"] * 1000)
        & (kernels["dur_us"].to_numpy(dtype=np.float64) <= cfg["short_kernel_us"])
        & (gap_ns > 0)
        & (gap_ns <= cfg["max_gap_us"] * 1000)
        & steps.contains(kernels["start"].to_numpy(dtype=np.int64))
    )
    rows = kernels[paced].assign(gap_ns=gap_ns[paced], idle_from=last_busy[paced]).reset_index(drop=True)
    # A gap in which the host stood still (sync, GC) is that stall's cost, reported by its check.
    stalls = host_stalls(ctx.tables["runtime_api"], ctx.tables.get("gc"))
    stalled = overlap_ns(
        rows["idle_from"].to_numpy(dtype=np.int64), rows["start"].to_numpy(dtype=np.int64), *stalls
    )
    rows = rows[stalled == 0].reset_index(drop=True)
    n_steps = steps.count
    per_step = len(rows) / n_steps
    gain = Gain(us(float(rows["gap_ns"].sum()) / n_steps), mean_step_time(ctx))
    if per_step < cfg["min_kernels_per_step"] or gain.share < cfg["min_share"]:
        return []

    rows["region"] = _regions(ctx, rows)
    rows["region"] = rows["region"].replace("", m.t("schedule.launch.no_region"))
    in_steps = kernels[steps.contains(kernels["start"].to_numpy(dtype=np.int64))]
    launch_us = float(((rows["launch_end"] - rows["launch_start"]) / 1000.0).astype("float64").mean())
    by_name = (
        rows.groupby(["region", "name"], sort=False)
        .agg(count=("name", "size"), mean_us=("dur_us", "mean"), idle_ns=("gap_ns", "sum"))
        .reset_index()
        .sort_values("idle_ns", ascending=False, kind="stable")
    )
    top = by_name.iloc[0]
    lines = [
        m.t(
            "schedule.launch_overhead.seen",
            count=len(rows),
            per_step=per_step,
            kernels=len(in_steps) / n_steps,
            short_us=cfg["short_kernel_us"],
            mean_us=float(rows["dur_us"].mean()),
            gap_us=float(rows["gap_ns"].mean()) / 1000.0,
            launch_us=launch_us,
        ),
        m.t(
            "schedule.launch_overhead.top",
            region=top.region,
            name=_short(top["name"]),
            count=int(top["count"]),
        ),
        m.t("schedule.launch_overhead.gain", gain_ms=gain.ms, share=gain.share, max_gap_us=cfg["max_gap_us"]),
    ]
    evidence_rows = [
        [
            r.region,
            r.name,
            int(r.count),
            round(r.count / n_steps, 2),
            round(r.mean_us, 3),
            us(r.idle_ns / n_steps),
        ]
        for r in by_name.head(TOP).itertuples(index=False)
    ]
    regions = set(rows["region"])
    suggestions = m.t_list("schedule.launch_overhead.suggestions")
    if any(re.search(knowledge("gpu")["fused_optimizer"]["window"], r) for r in regions):
        suggestions = m.t_list("schedule.launch_overhead.suggestions.optimizer") + suggestions
    return [
        finding(
            title=m.t("schedule.launch_overhead.title", per_step=per_step, gain_ms=gain.ms, share=gain.share),
            lines=lines,
            suggestions=suggestions,
            ranks=[ctx.rank.rank],
            step=steps.single,
            gain=gain,
            evidence=[
                Evidence(
                    m.t("schedule.launch_overhead.evidence"),
                    ["region", "kernel", "count", "count_per_step", "mean_us", "idle_before_us_per_step"],
                    evidence_rows,
                )
            ],
        )
    ]


def _short(name: str, limit: int = 120) -> str:
    """A kernel name for a sentence: demangled C++ names run to hundreds of characters."""
    return name if len(name) <= limit else name[: limit - 1] + "…"


@check(
    "schedule.fused_optimizer",
    "schedule",
    needs=_NEEDS | {"host_ops"},
    optional=frozenset({"device_tasks"}),
    devices=GPU_ONLY,
)
def fused_optimizer(ctx: RankContext) -> list[Finding]:
    m = ctx.messages
    cfg = knowledge("gpu")["fused_optimizer"]
    steps = step_windows(ctx.tables["steps"])
    host = ctx.tables["host_ops"]
    names = host["name"].astype("string")
    windows = (
        host[
            names.str.contains(cfg["window"], regex=True).fillna(False).to_numpy(dtype=bool)
            & steps.contains(host["start_ns"])
        ]
        .sort_values("start_ns", kind="stable")
        .reset_index(drop=True)
    )
    if windows.empty:
        return []
    kernels = _launched_kernels(ctx)
    w_starts, w_ends = intervals(windows)
    launch = kernels["launch_start"].to_numpy(dtype=np.float64, na_value=np.nan)
    # The window each kernel's launch ran in (-1: none); windows of one process do not overlap.
    at = np.searchsorted(w_starts, np.nan_to_num(launch, nan=-1), side="right") - 1
    inside = (at >= 0) & ~np.isnan(launch)
    inside[inside] = launch[inside] < w_ends[at[inside]]
    ours = kernels[inside].assign(window=at[inside])
    if ours.empty:
        return []
    fused = ours["name"].str.contains(cfg["fused_kernels"], case=False, regex=True).fillna(False)
    n_steps = steps.count
    per_step = len(ours) / n_steps
    if fused.any() or per_step < cfg["min_kernels_per_step"]:
        return []

    # Device idle inside each window's kernels, from the first start to the last end.
    spans = ours.groupby("window").agg(first=("start", "min"), last=("end", "max"), kernels=("name", "size"))
    busy = merge(*_activity(ctx, kernels))
    span_ns = (spans["last"] - spans["first"]).to_numpy(dtype=np.int64)
    covered = overlap_ns(
        spans["first"].to_numpy(dtype=np.int64), spans["last"].to_numpy(dtype=np.int64), *busy
    )
    idle_ns = span_ns - covered
    gain = Gain(us(float(idle_ns.sum()) / n_steps), mean_step_time(ctx))
    optimizer = str(windows["name"].iloc[0]).split("#", 1)[-1].split(".", 1)[0]
    kernel_us = float(ours["dur_us"].sum()) / n_steps
    lines = [
        m.t(
            "schedule.fused_optimizer.seen",
            window=windows["name"].iloc[0],
            per_step=per_step,
            mean_us=float(ours["dur_us"].mean()),
            kernel_ms=kernel_us / 1000.0,
            span_ms=float(span_ns.sum()) / n_steps / 1e6,
            idle_ms=gain.ms,
        ),
        m.t("schedule.fused_optimizer.gain", gain_ms=gain.ms, share=gain.share),
    ]
    top = (
        ours.groupby("name", sort=False)
        .agg(count=("name", "size"), total_us=("dur_us", "sum"))
        .reset_index()
        .sort_values("count", ascending=False, kind="stable")
        .head(TOP)
    )
    rows = [
        [r.name, int(r.count), round(r.count / n_steps, 2), round(r.total_us / n_steps, 3)]
        for r in top.itertuples(index=False)
    ]
    return [
        finding(
            title=m.t(
                "schedule.fused_optimizer.title",
                optimizer=optimizer,
                per_step=per_step,
                gain_ms=gain.ms,
                share=gain.share,
            ),
            lines=lines,
            suggestions=m.t_list("schedule.fused_optimizer.suggestions", optimizer=optimizer),
            ranks=[ctx.rank.rank],
            step=steps.single,
            gain=gain,
            evidence=[
                Evidence(
                    m.t("schedule.fused_optimizer.evidence"),
                    ["kernel", "count", "count_per_step", "total_us_per_step"],
                    rows,
                )
            ],
        )
    ]
