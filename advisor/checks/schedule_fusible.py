"""schedule.fusible_operators: short kernel sequences that repeat and would gain from fusion.

Kernels in start order per step; for every window of 3..10 consecutive kernels without a barrier
(communication, AI_CPU) the key is the names with shapes. A window is host-bound when its kernels
fill less than 40 % of its wall time (launch gaps dominate) and MTE-bound when memory transfers
take over 80 % of its AI Core time (intermediate results go through HBM). Keys seen more than
5 times that are host- or MTE-bound and cover 1 % of the step are reported, longest keys first
(a key inside a reported longer one is dropped). Thresholds: knowledge/fusible_operators.json.

Gain: the launch gaps inside the reported occurrences (each gap counted once, at most 1 ms: longer
gaps are stalls that other checks report), per step: a fused kernel has none. Faster memory traffic
from fusing MTE-bound sequences is not estimated; below 0.5 % of the step nothing is reported.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..report.model import Evidence, Finding
from .common import priority_for, share_of_step
from .registry import NotEvaluated, RankContext, check
from .schedule_base import mean_step_time, us

KNOWLEDGE = Path(__file__).with_name("knowledge") / "fusible_operators.json"


@cache
def params() -> dict[str, Any]:
    with KNOWLEDGE.open(encoding="utf-8") as fh:
        return json.load(fh)


def _mte_us(k: pd.DataFrame) -> np.ndarray:
    """MTE time per kernel from the PMU ratios: max(cube, vector) MTE2 read + (fixpipe, MTE3) write."""
    aic = k["aicore_time_us"].to_numpy(dtype=np.float64, na_value=np.nan)
    aiv = k["aiv_time_us"].to_numpy(dtype=np.float64, na_value=np.nan)

    def ratio(column: str) -> np.ndarray:
        return k[column].to_numpy(dtype=np.float64, na_value=np.nan)

    read = np.fmax(ratio("aic_mte2_ratio") * aic, ratio("aiv_mte2_ratio") * aiv)
    write = np.fmax(ratio("aic_fixpipe_ratio") * aic, ratio("aiv_mte3_ratio") * aiv)
    return np.nan_to_num(read) + np.nan_to_num(write)


@check("schedule.fusible_operators", "schedule", needs=frozenset({"kernels", "step_trace"}))
def fusible_operators(ctx: RankContext) -> list[Finding]:
    m = ctx.messages
    p = params()
    kernels = ctx.tables["kernels"].dropna(subset=["start_ns", "duration_us"])
    if kernels.empty:
        raise NotEvaluated(m.t("schedule.fusible_operators.no_kernels"))
    k = kernels.sort_values(["step", "start_ns"], kind="stable").reset_index(drop=True)
    n = len(k)
    start = k["start_ns"].to_numpy(dtype=np.int64)
    dur = np.clip(k["duration_us"].to_numpy(dtype=np.float64), 0.0, None)
    end = start + np.round(dur * 1000).astype(np.int64)
    aicore = np.nan_to_num(k["aicore_time_us"].to_numpy(dtype=np.float64, na_value=np.nan)) + np.nan_to_num(
        k["aiv_time_us"].to_numpy(dtype=np.float64, na_value=np.nan)
    )
    mte = _mte_us(k)
    has_pmu = bool(np.any(aicore > 0))
    task = k["accelerator_core"].fillna("").astype(str).str.upper()
    name = k["name"].fillna("").astype(str)
    barrier = (
        task.isin(p["barrier_task_types"]).to_numpy()
        | name.str.lower().str.startswith(tuple(p["barrier_name_prefixes"])).to_numpy()
    )
    step = k["step"].fillna(-1).to_numpy(dtype=np.int64)
    key = (
        name
        + "|"
        + k["input_shapes"].fillna("").astype(str)
        + "|"
        + k["output_shapes"].fillna("").astype(str)
    )
    codes, labels = pd.factorize(key)
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
        wall = (end[j] - start[i]) / 1000.0
        busy = c_dur[j + 1] - c_dur[i]
        core = c_core[j + 1] - c_core[i]
        mte_sum = c_mte[j + 1] - c_mte[i]
        host_bound = (wall > 0) & (busy < p["host_threshold"] * wall)
        mte_bound = has_pmu & (core > 0) & (mte_sum > p["mte_threshold"] * np.where(core > 0, core, 1))
        flagged = host_bound | mte_bound
        if not flagged.any():
            continue
        i, wall, busy, mte_sum = i[flagged], wall[flagged], busy[flagged], mte_sum[flagged]
        hb, mb = host_bound[flagged], mte_bound[flagged]
        windows = np.stack([codes[i + t] for t in range(length)], axis=1)
        uniq, inverse, counts = np.unique(windows, axis=0, return_inverse=True, return_counts=True)
        inverse = inverse.reshape(-1)
        for g in np.flatnonzero(counts > p["min_occurrences"]):
            rows = np.flatnonzero(inverse == g)
            total = float(wall[rows].sum())
            is_mte = bool(mb[rows].mean() > 0.5)
            if share_of_step(total / n_steps, step_us) < p["min_share"] and not is_mte:
                continue
            candidates.append(
                {
                    "codes": tuple(int(c) for c in uniq[g]),
                    "starts": i[rows],
                    "length": length,
                    "count": len(rows),
                    "total_us": total,
                    "npu_us": float(busy[rows].sum()),
                    "mte_us": float(mte_sum[rows].sum()),
                    "host_bound": bool(hb[rows].mean() > 0.5),
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
    # Launch gaps inside the kept occurrences, each gap (kernel i -> i+1) counted once.
    covered = np.zeros(n + 1, dtype=np.int64)
    for cand in kept:
        np.add.at(covered, cand["starts"], 1)
        np.add.at(covered, cand["starts"] + cand["length"] - 1, -1)
    inside = np.cumsum(covered)[: n - 1] > 0
    gaps = np.clip((start[1:] - end[:-1]) / 1000.0, 0.0, p["max_gap_us"])
    gain = us(float(gaps[inside].sum()) * 1000 / n_steps)
    share = share_of_step(gain, step_us)
    if share < p["min_gain_share"]:
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
    priority = priority_for(share)
    if priority == "high":  # fusion is work for the model's developers: a lead, not a sure saving
        priority = "medium"
    return [
        Finding(
            check="schedule.fusible_operators",
            dimension="schedule",
            priority=priority,
            title=m.t("schedule.fusible_operators.title", count=len(kept), gain_ms=gain / 1000.0),
            description="\n".join(
                [
                    m.t(
                        "schedule.fusible_operators.description",
                        count=len(kept),
                        total_ms=sum(c["total_us"] for c in kept) / n_steps / 1000.0,
                        npu_ms=sum(c["npu_us"] for c in kept) / n_steps / 1000.0,
                        host=sum(c["host_bound"] for c in kept),
                        mte=sum(c["mte_bound"] for c in kept),
                    ),
                    m.t("schedule.fusible_operators.gain", gain_ms=gain / 1000.0, share=share),
                ]
            ),
            suggestions=m.t_list("schedule.fusible_operators.suggestions"),
            ranks=[ctx.rank.rank],
            step=int(step[0]) if n_steps == 1 and step[0] >= 0 else None,
            estimated_gain_us=gain,
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
