"""memory.pageable_memcpy: host-device copies from or to pageable host memory.

The GPU's copy engines read and write only page-locked (pinned) memory: a copy from pageable memory
is staged through a pinned buffer by the driver, runs at a fraction of the bandwidth and blocks the
host until it is done (so `non_blocking=True` does nothing for it). The cost is the copy's time
beyond the same bytes at pinned bandwidth: measured from the trace's own pinned copies of the same
direction when it has some, else at the bandwidth of knowledge/gpu.json (then an upper bound).
Copies smaller than `min_bytes` (a scalar read back by .item()) are schedule.host_sync's business.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..report.model import Evidence, Finding
from .common import Gain, finding
from .knowledge import knowledge
from .registry import GPU_ONLY, RankContext, check
from .schedule_base import mean_step_time, step_windows

PAGEABLE = "Pageable"
PINNED = "Pinned"
# The host side of each direction.
HOST_SIDE = {"HtoD": "src_memory", "DtoH": "dst_memory"}
TOP = 10


def _host_memory(copies: pd.DataFrame) -> pd.Series:
    """The host-side memory kind of each HtoD / DtoH copy (<NA> for other kinds)."""
    out = pd.Series(pd.NA, index=copies.index, dtype="string")
    for kind, column in HOST_SIDE.items():
        rows = (copies["kind"] == kind).fillna(False)
        out[rows] = copies.loc[rows, column].astype("string")
    return out


def _pinned_gbps(copies: pd.DataFrame, kinds: set[str], cfg: dict) -> tuple[dict[str, float], bool]:
    """Pinned bandwidth (GB/s = bytes per ns) per direction: the median of the trace's pinned copies
    of at least min_bytes, else the assumed figure; and whether it was measured for every direction
    of `kinds` (those of the pageable copies)."""
    rates, measured = {}, True
    for kind in HOST_SIDE:
        pinned = copies[(copies["kind"] == kind) & (copies["host_memory"] == PINNED)]
        rate = pinned["size_bytes"] / (pinned["dur_us"] * 1000.0)
        rate = rate.replace([np.inf, -np.inf], np.nan).dropna()
        rates[kind] = float(rate.median()) if len(rate) else float(cfg["pinned_gbps"])
        measured = measured and (len(rate) > 0 or kind not in kinds)
    return rates, measured


@check(
    "memory.pageable_memcpy",
    "memory",
    needs=frozenset({"memcpy", "steps", "step_trace"}),
    devices=GPU_ONLY,
)
def pageable_memcpy(ctx: RankContext) -> list[Finding]:
    m = ctx.messages
    cfg = knowledge("gpu")["pageable_memcpy"]
    steps = step_windows(ctx.tables["steps"])
    copies = ctx.tables["memcpy"]
    copies = copies[
        steps.contains(copies["start_ns"])
        & (copies["size_bytes"] >= cfg["min_bytes"]).fillna(False).to_numpy(dtype=bool)
        & (copies["dur_us"] > 0).fillna(False).to_numpy(dtype=bool)
    ]
    copies = copies.assign(host_memory=_host_memory(copies))
    pageable = copies[(copies["host_memory"] == PAGEABLE).fillna(False)]
    if pageable.empty:
        return []
    rates, measured = _pinned_gbps(copies, set(pageable["kind"]), cfg)
    pinned_us = pageable["size_bytes"] / pageable["kind"].map(rates) / 1000.0
    excess_us = (pageable["dur_us"] - pinned_us).clip(lower=0.0)
    n_steps = steps.count
    per_step = float(excess_us.sum()) / n_steps
    step_us = mean_step_time(ctx)
    gain = Gain(per_step, step_us) if measured else Gain.upper_bound(per_step, step_us)
    if gain.share < cfg["min_share"]:
        return []

    table = pageable.assign(excess_us=excess_us, gbps=pageable["size_bytes"] / (pageable["dur_us"] * 1000.0))
    by_kind = (
        table.groupby(["kind", "name"], sort=False)
        .agg(
            count=("name", "size"),
            bytes=("size_bytes", "sum"),
            dur_us=("dur_us", "sum"),
            gbps=("gbps", "median"),
            excess_us=("excess_us", "sum"),
        )
        .reset_index()
        .sort_values("excess_us", ascending=False, kind="stable")
    )
    rows = [
        [r.kind, r.name, int(r.count), round(r.count / n_steps, 2), round(r.bytes / n_steps / 2**20, 3),
         round(r.dur_us / n_steps, 3), round(r.gbps, 3), round(rates[r.kind], 3),
         round(r.excess_us / n_steps, 3)]
        for r in by_kind.head(TOP).itertuples(index=False)
    ]  # fmt: skip
    source = "measured" if measured else "assumed"
    lines = [
        m.t(
            "memory.pageable_memcpy.seen",
            count=len(table),
            per_step=len(table) / n_steps,
            mb=float(table["size_bytes"].sum()) / n_steps / 2**20,
            copy_ms=float(table["dur_us"].sum()) / n_steps / 1000.0,
            gbps=float(table["size_bytes"].sum() / (table["dur_us"].sum() * 1000.0)),
        ),
        m.t(f"memory.pageable_memcpy.rate.{source}", htod=rates["HtoD"], dtoh=rates["DtoH"]),
        m.t(f"memory.pageable_memcpy.gain.{source}", gain_ms=gain.ms, share=gain.share),
    ]
    kinds = set(table["kind"])
    suggestions = [
        s
        for kind in ("HtoD", "DtoH")
        if kind in kinds
        for s in m.t_list(f"memory.pageable_memcpy.suggestions.{kind}")
    ]
    return [
        finding(
            title=m.t(
                "memory.pageable_memcpy.title",
                per_step=len(table) / n_steps,
                gain_ms=gain.ms,
                share=gain.share,
            ),
            lines=lines,
            suggestions=suggestions,
            ranks=[ctx.rank.rank],
            step=steps.single,
            gain=gain,
            evidence=[
                Evidence(
                    m.t("memory.pageable_memcpy.evidence"),
                    [
                        "kind",
                        "name",
                        "count",
                        "count_per_step",
                        "mb_per_step",
                        "copy_us_per_step",
                        "gbps",
                        "pinned_gbps",
                        "excess_us_per_step",
                    ],
                    rows,
                )
            ],
        )
    ]
