"""schedule.fusible_operators: short kernel sequences that repeat and would gain from fusion.

Kernels in start order per step; for every window of 3..10 consecutive kernels without a barrier
(communication, AI_CPU) the key is the names with shapes. A window is host-bound when its kernels
fill less than 40 % of its wall time (launch gaps dominate) and MTE-bound when memory transfers
take over 80 % of its AI Core time (intermediate results go through HBM). Keys seen more than
5 times that are host- or MTE-bound and cover 1 % of the step are reported, longest keys first
(a key inside a reported longer one is dropped). Thresholds: knowledge/fusible_operators.json.

Launch gaps are the ordinary gaps between kernels that the host issues one by one. A gap during
which the host stood still (a blocking call, an online compilation, a device-memory call, a recorded
GC: schedule_base.host_stalls) is a stall that other checks report and fusing kernels would not
remove: it counts as no gap. The rest are read per repeated sequence: at each position, a gap counts
up to twice its median over the occurrences and at most 1 ms. A sequence is reported when most of
its occurrences are host- or MTE-bound.

Gain (an upper bound: fusing is work whose result a profile cannot promise): the launch gaps inside
the reported host-bound occurrences (each gap counted once), per step: a fused kernel has none. Faster memory
traffic from fusing MTE-bound sequences is not estimated; below 1 % of the step nothing is
reported.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..report.model import Evidence, Finding
from .common import Gain, finding, share_of_step
from .knowledge import knowledge
from .registry import NPU_ONLY, NotEvaluated, RankContext, check
from .schedule_base import host_stalls, mean_step_time, names_where, overlap_ns, us


def _mte_us(k: pd.DataFrame) -> np.ndarray:
    """MTE time per kernel from the PMU ratios: max(cube, vector) MTE2 read + (fixpipe, MTE3) write."""
    aic = k["aicore_time_us"].to_numpy(dtype=np.float64, na_value=np.nan)
    aiv = k["aiv_time_us"].to_numpy(dtype=np.float64, na_value=np.nan)

    def ratio(column: str) -> np.ndarray:
        return k[column].to_numpy(dtype=np.float64, na_value=np.nan)

    read = np.fmax(ratio("aic_mte2_ratio") * aic, ratio("aiv_mte2_ratio") * aiv)
    write = np.fmax(ratio("aic_fixpipe_ratio") * aic, ratio("aiv_mte3_ratio") * aiv)
    return np.nan_to_num(read) + np.nan_to_num(write)


def typical_gaps(gaps: np.ndarray, max_gap_us: float) -> np.ndarray:
    """Per occurrence (row) and position (column) of a repeated sequence, its launch gaps (µs) up to
    twice the position's median over the occurrences: what a stall adds in a few of them is left out."""
    ceiling = np.minimum(2.0 * np.median(gaps, axis=0), max_gap_us)
    return np.minimum(gaps, ceiling[np.newaxis, :])


@check(
    "schedule.fusible_operators",
    "schedule",
    needs=frozenset({"kernels", "step_trace"}),
    # Host calls and GC tell stalls from launch gaps where the trace recorded them.
    optional=frozenset({"runtime_api", "gc"}),
    devices=NPU_ONLY,
)
def fusible_operators(ctx: RankContext) -> list[Finding]:
    m = ctx.messages
    p = knowledge("fusible_operators")
    kernels = ctx.tables["kernels"]
    timed = np.flatnonzero(
        kernels["start_ns"].notna().to_numpy(dtype=bool) & kernels["duration_us"].notna().to_numpy(dtype=bool)
    )
    if not len(timed):
        raise NotEvaluated(m.t("schedule.fusible_operators.no_kernels"))
    # Kernels by step (those without one last), then start.
    steps_na_last = kernels["step"].to_numpy(dtype=np.int64, na_value=np.iinfo(np.int64).max)[timed]
    rows = timed[np.lexsort((kernels["start_ns"].to_numpy(dtype=np.int64, na_value=0)[timed], steps_na_last))]
    k = kernels.take(rows)
    n = len(k)
    start = k["start_ns"].to_numpy(dtype=np.int64)
    dur = np.clip(k["duration_us"].to_numpy(dtype=np.float64), 0.0, None)
    end = start + np.round(dur * 1000).astype(np.int64)
    step = k["step"].fillna(-1).to_numpy(dtype=np.int64)
    # Gap before kernel i+1 (µs); none across steps, and none where the host stood still meanwhile.
    gaps = np.clip((start[1:] - end[:-1]) / 1000.0, 0.0, None) * (step[1:] == step[:-1])
    stalled = overlap_ns(
        end[:-1],
        np.maximum(start[1:], end[:-1]),
        *host_stalls(ctx.tables.get("runtime_api"), ctx.tables.get("gc")),
    )
    gaps[stalled > 0] = 0.0
    aicore = np.nan_to_num(k["aicore_time_us"].to_numpy(dtype=np.float64, na_value=np.nan)) + np.nan_to_num(
        k["aiv_time_us"].to_numpy(dtype=np.float64, na_value=np.nan)
    )
    mte = _mte_us(k)
    has_pmu = bool(np.any(aicore > 0))
    barrier_types, barrier_prefixes = frozenset(p["barrier_task_types"]), tuple(p["barrier_name_prefixes"])
    barrier = (
        names_where(kernels, lambda task: task.upper() in barrier_types, "accelerator_core")[rows]
        | names_where(kernels, lambda name: name.lower().startswith(barrier_prefixes))[rows]
    )
    # A kernel's key: "name|input shapes|output shapes".
    texts = [
        k[column].to_numpy(dtype=object, na_value="") for column in ("name", "input_shapes", "output_shapes")
    ]
    codes, labels = pd.factorize(
        np.array([f"{a}|{b}|{c}" for a, b, c in zip(*texts, strict=True)], dtype=object)
    )
    n_steps = max(1, len(set(step.tolist()) - {-1}) or 1)
    step_us = mean_step_time(ctx)

    cum = lambda a: np.r_[0.0, np.cumsum(a)]  # noqa: E731
    c_dur, c_mte, c_core, c_bar = cum(dur), cum(mte), cum(aicore), cum(barrier.astype(np.float64))
    candidates = []
    for length in range(p["min_ops"], min(p["max_ops"], n) + 1):
        i = np.arange(n - length + 1)
        j = i + length - 1
        ok = (c_bar[j + 1] - c_bar[i] == 0) & (step[i] == step[j])
        if not ok.any():
            continue
        i, j = i[ok], j[ok]
        windows = np.stack([codes[i + t] for t in range(length)], axis=1)
        uniq, inverse, counts = np.unique(windows, axis=0, return_inverse=True, return_counts=True)
        inverse = inverse.reshape(-1)
        for g in np.flatnonzero(counts > p["min_occurrences"]):
            rows = np.flatnonzero(inverse == g)
            first, last = i[rows], j[rows]
            inner = typical_gaps(gaps[first[:, None] + np.arange(length - 1)], p["max_gap_us"])
            busy = c_dur[last + 1] - c_dur[first]
            wall = busy + inner.sum(axis=1)
            core = c_core[last + 1] - c_core[first]
            mte_sum = c_mte[last + 1] - c_mte[first]
            host_bound = (wall > 0) & (busy < p["host_threshold"] * wall)
            mte_bound = has_pmu & (core > 0) & (mte_sum > p["mte_threshold"] * np.where(core > 0, core, 1))
            is_host, is_mte = bool(host_bound.mean() > 0.5), bool(mte_bound.mean() > 0.5)
            if not (is_host or is_mte):
                continue
            total = float(wall.sum())
            if share_of_step(total / n_steps, step_us) < p["min_share"] and not is_mte:
                continue
            candidates.append(
                {
                    "codes": tuple(int(c) for c in uniq[g]),
                    "starts": first,
                    "gaps": inner,
                    "length": length,
                    "count": len(rows),
                    "total_us": total,
                    "npu_us": float(busy.sum()),
                    "mte_us": float(mte_sum.sum()),
                    "host_bound": is_host,
                    "mte_bound": is_mte,
                }
            )
    if not candidates:
        return []
    candidates.sort(key=lambda c: (-c["length"], -c["total_us"]))
    kept: list[dict[str, Any]] = []
    for cand in candidates:  # a key inside a kept longer key describes the same kernels
        text = "," + ",".join(map(str, cand["codes"])) + ","
        if any(text in "," + ",".join(map(str, k_["codes"])) + "," for k_ in kept):
            continue
        kept.append(cand)
    kept.sort(key=lambda c: -c["total_us"])
    kept = kept[: p["top"]]
    # Launch gaps inside the kept host-bound occurrences, each gap (kernel i -> i+1) counted once
    # (an MTE-bound sequence gains in memory traffic, which is not estimated).
    counted = np.full(max(n - 1, 0), np.nan)
    for cand in (c for c in kept if c["host_bound"]):
        at = cand["starts"][:, None] + np.arange(cand["length"] - 1)
        counted[at] = np.fmin(counted[at], cand["gaps"])
    gain = Gain.upper_bound(us(float(np.nansum(counted)) * 1000 / n_steps), step_us)
    if gain.share < p["min_gain_share"]:
        return []
    rows = [
        [
            " -> ".join(str(labels[c]).split("|")[0] for c in cand["codes"]),
            str(labels[cand["codes"][0]]).split("|")[1],
            cand["length"],
            cand["count"],
            round(cand["count"] / n_steps, 2),
            round(cand["total_us"], 3),
            round(cand["npu_us"], 3),
            round(cand["mte_us"], 3),
            cand["host_bound"],
            cand["mte_bound"],
        ]
        for cand in kept
    ]
    return [
        finding(
            title=m.t("schedule.fusible_operators.title", count=len(kept), gain_ms=gain.ms, share=gain.share),
            lines=[
                m.t(
                    "schedule.fusible_operators.description",
                    count=len(kept),
                    total_ms=sum(c["total_us"] for c in kept) / n_steps / 1000.0,
                    npu_ms=sum(c["npu_us"] for c in kept) / n_steps / 1000.0,
                    host=sum(c["host_bound"] for c in kept),
                    mte=sum(c["mte_bound"] for c in kept),
                ),
                m.t("schedule.fusible_operators.gain", gain_ms=gain.ms, share=gain.share),
            ],
            suggestions=m.t_list("schedule.fusible_operators.suggestions"),
            ranks=[ctx.rank.rank],
            step=int(step[0]) if n_steps == 1 and step[0] >= 0 else None,
            gain=gain,
            evidence=[
                Evidence(
                    m.t("schedule.fusible_operators.evidence"),
                    [
                        "sequence",
                        "first_input_shapes",
                        "kernels",
                        "occurrences",
                        "occurrences_per_step",
                        "total_us",
                        "kernel_us",
                        "mte_us",
                        "host_bound",
                        "mte_bound",
                    ],
                    rows,
                )
            ],
        )
    ]
