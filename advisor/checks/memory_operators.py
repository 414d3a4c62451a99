"""memory.operators: host time in device-memory APIs, read against how full the HBM is.

The reference (reference-advisor.md §2.21) sums aclMallocMemInner / aclrtFreePhysical / aclrtFree
over one step and reports each above 10 ms. Here every AscendCL memory API (allocation, release,
virtual-memory remapping; knowledge/memory.json) is counted inside the profiled ProfilerStep
windows and averaged per step; an API is flagged from 10 ms per step or 3 % of the step. Frequent
allocation and release mean the caching allocator is not reusing memory: torch.npu.empty_cache() in
the loop, or HBM so full that the allocator frees its cache and retries to avoid running out.
So the finding adds what the memory records say (when collected with profile_memory=True): peak
device memory against the HBM capacity (device info, else known per device type; unknown is said),
and the allocator's reserved − allocated memory. Gain per step: the device-idle time (Overlap
Analysis 'Free') while the host is in memory APIs, which a warm caching allocator avoids; without
the Overlap Analysis, the time in the APIs as an upper bound (aclrtFree waits for the device first).

Also holds `step_of`, which the dataloader check shares.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..model import RankInfo
from ..report.messages import Messages
from ..report.model import Evidence, Finding
from .common import Gain, finding, mean_step_us, share_of_step
from .knowledge import knowledge
from .registry import NPU_ONLY, NotEvaluated, RankContext, check
from .schedule_base import free_slices, intervals, step_windows, union_overlap_ns

MB = float(2**20)  # memory records count binary megabytes


def step_of(start_ns: pd.Series, steps: pd.DataFrame) -> pd.Series:
    """The step whose ProfilerStep window holds each timestamp (<NA> outside every window)."""
    windows = steps.dropna(subset=["step", "start_ns", "dur_us"]).sort_values("start_ns")
    known = start_ns.notna().to_numpy(dtype=bool)
    step = np.full(len(start_ns), -1, dtype="int64")
    if len(windows) and known.any():
        begin = windows["start_ns"].to_numpy(dtype="int64")
        end = begin + (windows["dur_us"].to_numpy(dtype="float64") * 1e3).round().astype("int64")
        t = start_ns[known].to_numpy(dtype="int64")
        idx = np.searchsorted(begin, t, side="right") - 1
        safe = np.clip(idx, 0, None)
        inside = (idx >= 0) & (t < end[safe])
        step[known] = np.where(inside, windows["step"].to_numpy(dtype="int64")[safe], -1)
    return pd.Series(pd.arrays.IntegerArray(step, step == -1), index=start_ns.index)


def hbm_capacity(rank: RankInfo, device_info: pd.DataFrame) -> tuple[float | None, str]:
    """(capacity MB, where it comes from): the first device info entry that records one (the
    `device_info` table), else the device type's; None with why when the device type is ambiguous."""
    recorded = device_info["hbm_capacity_mb"].dropna()
    if len(recorded):
        return float(recorded.iloc[0]), "device_info"
    table = knowledge("memory")["capacity_mb"]
    device = (rank.device_type or "").strip()
    value = table.get(device)
    if isinstance(value, (int, float)):
        return float(value), "device_type"
    if isinstance(value, list):
        return None, "ambiguous"
    return None, "unknown"


def _present(tables: Mapping[str, pd.DataFrame], name: str) -> pd.DataFrame | None:
    frame = tables.get(name)
    return frame if frame is not None and not frame.empty else None


def memory_state(tables: Mapping[str, pd.DataFrame]) -> dict[str, float] | None:
    """Peak figures (MB) from memory_record (and npu_module_mem), or None when not collected."""
    record = _present(tables, "memory_record")
    if record is None:
        return None
    out: dict[str, float] = {}
    component = record["component"].astype("string").str.upper()
    app = record[component == "APP"]["reserved_bytes"].dropna()
    if len(app):
        out["peak_device_mb"] = float(app.max()) / MB
    pta = record[component == "PTA"].dropna(subset=["reserved_bytes"])
    if not pta.empty:
        at_peak = pta.loc[pta["reserved_bytes"].idxmax()]
        out["pta_peak_reserved_mb"] = float(at_peak["reserved_bytes"]) / MB
        if pta["allocated_bytes"].notna().any():
            out["pta_peak_allocated_mb"] = float(pta["allocated_bytes"].max()) / MB
            if pd.notna(at_peak["allocated_bytes"]):
                spare = float(at_peak["reserved_bytes"] - at_peak["allocated_bytes"])
                out["pta_unallocated_at_peak_mb"] = spare / MB
    if "peak_device_mb" not in out and "pta_peak_reserved_mb" in out:
        out["peak_device_mb"] = out["pta_peak_reserved_mb"]  # the allocator's part is the best we have
    modules = _present(tables, "npu_module_mem")
    if modules is not None:
        named = modules[modules["component"].astype("string").str.upper() != "APP"]
        peak = named.groupby("component")["reserved_bytes"].max().sort_values(ascending=False)
        for name, value in peak.head(3).items():
            if value > 0:
                out[f"module_{str(name).lower()}_peak_mb"] = float(value) / MB
    return out or None


def _memory_lines(
    m: Messages, rank: RankInfo, device_info: pd.DataFrame, state: dict[str, float] | None
) -> tuple[list[str], bool]:
    """Description lines about the HBM and whether it is nearly full."""
    if state is None:
        return [m.t("memory.operators.no_records")], False
    lines: list[str] = []
    capacity, source = hbm_capacity(rank, device_info)
    peak = state.get("peak_device_mb")
    full = False
    if peak is not None and capacity:
        share = peak / capacity
        full = share >= knowledge("memory")["pressure_share"]
        state["capacity_mb"] = capacity
        state["peak_share"] = share
        lines.append(
            m.t(
                "memory.operators.hbm",
                peak_mb=peak,
                capacity_mb=capacity,
                share=share,
                source=m.t(f"memory.operators.capacity.{source}", device=rank.device_type or "?"),
            )
        )
    elif peak is not None:
        lines.append(
            m.t(
                "memory.operators.hbm_unknown",
                peak_mb=peak,
                why=m.t(f"memory.operators.capacity.{source}", device=rank.device_type or "?"),
            )
        )
    if "pta_peak_reserved_mb" in state:
        lines.append(
            m.t(
                "memory.operators.allocator",
                reserved_mb=state["pta_peak_reserved_mb"],
                allocated_mb=state.get("pta_peak_allocated_mb", float("nan")),
                spare_mb=state.get("pta_unallocated_at_peak_mb", float("nan")),
            )
        )
    return lines, full


@check(
    "memory.operators",
    "memory",
    needs=frozenset({"runtime_api", "steps", "step_trace", "device_info"}),
    # Memory records need profile_memory=True; without them the time part still stands.
    optional=frozenset({"memory_record", "npu_module_mem", "overlap"}),
    devices=NPU_ONLY,
)
def memory_operators(ctx: RankContext) -> list[Finding]:
    m = ctx.messages
    rules = knowledge("memory")
    cann = ctx.tables["runtime_api"]
    if cann.empty:
        raise NotEvaluated(m.t("memory.operators.no_cann"))
    categories = rules["apis"]
    names = cann["name"].astype("string").fillna("").to_numpy(dtype=object)
    api = np.array([name.rsplit("@", 1)[-1].strip() for name in names], dtype=object)
    keep = np.array([name in categories for name in api], dtype=bool) & cann["dur_us"].notna().to_numpy()
    calls = cann[keep].assign(api=api[keep], category=[categories[name] for name in api[keep]])
    steps = ctx.tables["steps"]
    if steps.dropna(subset=["start_ns", "dur_us"]).empty:
        n_steps, windowed = 1, False
    else:
        calls = calls[step_of(calls["start_ns"], steps).notna().to_numpy()]
        n_steps, windowed = int(steps["step"].nunique()) or 1, True
    if calls.empty:
        return []
    step_us = mean_step_us(ctx.tables["step_trace"])
    per_api = (
        calls.groupby(["api", "category"])["dur_us"]
        .agg(calls="size", total_us="sum", max_us="max")
        .reset_index()
        .sort_values("total_us", ascending=False)
    )
    per_api["per_step_us"] = per_api["total_us"] / n_steps
    per_api["step_share"] = [share_of_step(v, step_us) for v in per_api["per_step_us"]]
    flagged = per_api[
        (per_api["per_step_us"] >= rules["min_us_per_step"])
        | (per_api["step_share"] >= rules["min_step_share"])
    ]
    if flagged.empty:
        return []

    api_us = float(per_api["per_step_us"].sum())
    overlap = ctx.tables.get("overlap")
    if overlap is not None and not overlap.empty:
        starts, ends = intervals(calls)
        idle_ns = union_overlap_ns(starts, ends, *free_slices(overlap, step_windows(steps)))
        gain = Gain(idle_ns / 1000.0 / n_steps, step_us)
    else:
        gain = Gain.upper_bound(api_us, step_us)
    lines = [
        m.t(
            "memory.operators.api_line",
            api=r.api,
            calls=int(r.calls),
            per_step_ms=r.per_step_us / 1e3,
            share=r.step_share,
            max_us=r.max_us,
        )
        for r in flagged.itertuples(index=False)
    ]
    if not windowed:
        lines.append(m.t("memory.operators.no_steps"))
    state = memory_state(ctx.tables)
    memory_lines, full = _memory_lines(m, ctx.rank, ctx.tables["device_info"], state)
    lines.extend(memory_lines)
    key = "memory.operators.gain" if gain.basis == "measured" else "memory.operators.gain.bound"
    lines.append(m.t(key, gain_us=gain.per_step_us, share=gain.share, api_us=api_us, n_steps=n_steps))

    categories = set(flagged["category"])
    suggestions: list[str] = []
    for key in ("free", "alloc", "remap"):
        if key in categories:
            suggestions += m.t_list(f"memory.operators.suggestions.{key}")
    suggestions += m.t_list(
        "memory.operators.suggestions.full" if full else "memory.operators.suggestions.roomy"
    )
    worst = flagged.iloc[0]
    evidence = [
        Evidence(
            m.t("memory.operators.evidence.apis"),
            ["api", "category", "calls", "total_us", "per_step_us", "max_us", "step_share"],
            [
                [
                    r.api,
                    r.category,
                    int(r.calls),
                    round(float(r.total_us), 3),
                    round(float(r.per_step_us), 3),
                    round(float(r.max_us), 3),
                    round(float(r.step_share), 4),
                ]
                for r in per_api.itertuples(index=False)
            ],
        )
    ]
    if state:
        evidence.append(
            Evidence(
                m.t("memory.operators.evidence.memory"),
                ["metric", "value"],
                [[k, round(v, 4 if k == "peak_share" else 1)] for k, v in state.items()],
            )
        )
    return [
        finding(
            title=m.t(
                "memory.operators.title.full" if full else "memory.operators.title",
                api=worst["api"],
                per_step_ms=float(worst["per_step_us"]) / 1e3,
                hbm_share=state.get("peak_share", 0.0) if state else 0.0,
                gain_ms=gain.ms,
                share=gain.share,
            ),
            lines=lines,
            suggestions=suggestions,
            ranks=[ctx.rank.rank],
            evidence=evidence,
            gain=gain,
        )
    ]
