"""communication.bandwidth_contention: SDMA transfers that slow down while computation runs beside them.

Communication overlapped with computation shares HBM bandwidth with the kernels. The reference
(reference-advisor.md §2.24) flags whole ops overlapping a MatMul with SDMA bandwidth under a fixed
14.4 GB/s. Here each SDMA transfer task (Memcpy / Reduce, at least 1 MiB so that its bandwidth is
not latency-bound) gets the share of its own time that compute kernels cover; its bandwidth is
compared with that of the rank's transfers of the same task and link type that ran alone (median;
a nominal value for off-chip Memcpy when too few ran alone). A transfer is contended when at least
half of it overlaps computation and it reaches less than 80 % of that baseline, and it is not the
slow one among the links its op uses at the same time: contention slows every link of the rank
alike, while a link slower than its siblings in the same op is cluster.slow_link's. Gain per step: the
contended transfers' time beyond the baseline, times the share of communication not hidden under
computation (only an exposed transfer lengthens the step).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..report.model import Evidence, Finding
from .common import Gain, finding, mean_step_us, share_of_step
from .communication_byte_alignment import in_profiled_steps, median_bandwidth_by_kind, sdma_transfers
from .communication_small_packet import exposed_share
from .knowledge import knowledge
from .registry import NPU_ONLY, NotEvaluated, RankContext, check

ON_CHIP = "ON_CHIP"


def compute_blocks(kernels: pd.DataFrame, non_compute_cores: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (ns) of the union of the compute kernels' intervals, sorted and disjoint."""
    core = kernels["accelerator_core"].astype("string").str.upper()
    name = kernels["name"].astype("string").str.lower()
    duration = kernels["duration_us"].to_numpy(dtype="float64", na_value=np.nan)
    start = kernels["start_ns"].to_numpy(dtype="float64", na_value=np.nan)
    keep = (
        ~core.isin(non_compute_cores).fillna(False).to_numpy(dtype=bool)
        & ~name.str.startswith("hcom").fillna(False).to_numpy(dtype=bool)
        & ~np.isnan(start)
        & (duration > 0)
    )
    if not keep.any():
        return np.empty(0), np.empty(0)
    start = start[keep]
    end = start + duration[keep] * 1e3
    order = np.argsort(start, kind="stable")
    start, end = start[order], end[order]
    reach = np.maximum.accumulate(end)
    new_block = np.ones(len(start), dtype=bool)
    new_block[1:] = start[1:] > reach[:-1]
    block_id = np.cumsum(new_block) - 1
    block_start = start[new_block]
    block_end = np.zeros(len(block_start))
    np.maximum.at(block_end, block_id, end)
    return block_start, block_end


def covered_ns(
    block_start: np.ndarray, block_end: np.ndarray, start: np.ndarray, end: np.ndarray
) -> np.ndarray:
    """How much of each [start, end) the disjoint blocks cover (vectorised prefix sums)."""
    if len(block_start) == 0:
        return np.zeros(len(start))
    before = np.concatenate([[0.0], np.cumsum(block_end - block_start)])

    def until(t: np.ndarray) -> np.ndarray:
        idx = np.searchsorted(block_start, t, side="right") - 1
        safe = np.clip(idx, 0, None)
        inside = np.clip(np.minimum(t, block_end[safe]) - block_start[safe], 0, None)
        return np.where(idx >= 0, before[safe] + inside, 0.0)

    return until(end) - until(start)


def _medians(codes: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Median of `values` per code 0..n-1 (every code present), as the mean of the two middle values
    of each code's sorted values (one value twice for an odd count), which is how pandas takes it."""
    order = np.lexsort((values, codes))
    first = np.searchsorted(codes[order], np.arange(n))
    count = np.bincount(codes, minlength=n)
    ordered = values[order]
    return (ordered[first + (count - 1) // 2] + ordered[first + count // 2]) / 2


def slow_planes(tasks: pd.DataFrame, ratio: float) -> pd.Series:
    """Per transfer: whether its plane (one link of the op) moved data below `ratio` times the median
    of the op's planes. The planes of one op run at the same time beside the same computation, so
    contention slows them alike; one plane slower than its siblings is a slow link."""
    keys = pd.DataFrame(
        {
            "op": tasks["op_name"].astype("string").fillna(""),
            "at": tasks["op_start_ns"].astype("Int64").fillna(-1),
            "task": tasks["task_type"].astype("string").fillna(""),
            "plane": tasks["plane"].astype("string").fillna(""),
        }
    )
    gbps = tasks["bandwidth_gbps"].to_numpy(dtype="float64")
    plane = keys.groupby(["op", "at", "task", "plane"]).ngroup().to_numpy()
    op = keys.groupby(["op", "at", "task"]).ngroup().to_numpy()
    n_planes, n_ops = int(plane.max()) + 1, int(op.max()) + 1
    plane_gbps = _medians(plane, gbps, n_planes)
    # Each plane once, with its op: the op's median plane and how many planes it has.
    plane_op = np.zeros(n_planes, dtype=np.int64)
    plane_op[plane] = op
    op_median = _medians(plane_op, plane_gbps, n_ops)
    op_planes = np.bincount(plane_op, minlength=n_ops)
    slow = (op_planes[op] > 1) & (plane_gbps[plane] < ratio * op_median[op])
    return pd.Series(slow, index=tasks.index)


def _rounded_median(gbps: pd.Series) -> float | None:
    return round(float(gbps.median()), 3) if len(gbps) else None


def _collective(op_name: pd.Series) -> pd.Series:
    """'hcom_allReduce__101_3_1' -> 'hcom_allReduce'."""
    return op_name.astype("string").str.replace(r"_+\d+(_\d+)*$", "", regex=True)


@check(
    "communication.bandwidth_contention",
    "communication",
    needs=frozenset({"hccl", "kernels", "steps", "step_trace"}),
    devices=NPU_ONLY,
)
def bandwidth_contention(ctx: RankContext) -> list[Finding]:
    m = ctx.messages
    rules = knowledge("communication")["bandwidth_contention"]
    tasks, n_steps = in_profiled_steps(
        sdma_transfers(ctx.tables["hccl"], rules["transfer_tasks"]),
        ctx.tables["steps"],
        ctx.rank,
        ctx.tables["step_trace"],
    )
    tasks = tasks[tasks["size_bytes"] >= rules["min_task_bytes"]].copy()
    if tasks.empty:
        return []
    blocks = compute_blocks(ctx.tables["kernels"], rules["non_compute_cores"])
    start = tasks["start_ns"].astype("float64").to_numpy()
    end = tasks["end_ns"].astype("float64").to_numpy()
    tasks["overlap_share"] = np.clip(covered_ns(*blocks, start, end) / np.maximum(end - start, 1.0), 0.0, 1.0)

    alone = median_bandwidth_by_kind(tasks, (tasks["overlap_share"] <= rules["alone_share"]).to_numpy())
    keys = list(zip(tasks["task_type"], tasks["link_type"], strict=True))
    baselines: dict[tuple[str, str], tuple[float, str, int]] = {}
    for task_type, link in dict.fromkeys(keys):
        median, n_alone = alone.get((task_type, link), (np.nan, 0))
        if n_alone >= rules["min_alone_tasks"]:
            baselines[(task_type, link)] = (median, "measured", n_alone)
        elif task_type in rules["nominal_gbps"] and str(link).upper() != ON_CHIP:
            baselines[(task_type, link)] = (float(rules["nominal_gbps"][task_type]), "nominal", n_alone)
    tasks["baseline_gbps"] = [baselines.get(k, (np.nan,))[0] for k in keys]
    concurrent = tasks[tasks["overlap_share"] >= rules["concurrent_share"]]
    if len(concurrent) and concurrent["baseline_gbps"].isna().all():
        # Every transfer beside computation is of a kind that never ran alone, on a link without a
        # nominal bandwidth: nothing says what it would reach uncontended.
        pairs = zip(concurrent["task_type"], concurrent["link_type"], strict=True)
        kinds = sorted({f"{task} over {link}" for task, link in pairs})
        raise NotEvaluated(m.t("communication.bandwidth_contention.no_baseline", kinds=", ".join(kinds)))
    slowed = (tasks["overlap_share"] >= rules["concurrent_share"]) & (
        tasks["bandwidth_gbps"] < rules["slow_ratio"] * tasks["baseline_gbps"]
    )
    # Only a transfer slowed beside computation can be contended: the planes are compared for those.
    tasks["contended"] = slowed & ~slow_planes(tasks, rules["slow_ratio"]) if slowed.any() else slowed
    hit = tasks[tasks["contended"]].copy()
    if hit.empty:
        return []
    hit["lost_us"] = (hit["dur_us"] - hit["size_bytes"] / (hit["baseline_gbps"] * 1e3)).clip(lower=0)
    step_us = mean_step_us(ctx.tables["step_trace"])
    lost_per_step = float(hit["lost_us"].sum()) / n_steps
    if share_of_step(lost_per_step, step_us) < rules["min_lost_share"]:
        return []
    exposed = exposed_share(ctx.tables["step_trace"])
    # Scaled by the exposed share of communication: a model of what uncontended transfers would save.
    gain = Gain.upper_bound(lost_per_step * exposed, step_us)

    hit["op"] = hit["op_name"].fillna(m.t("communication.bandwidth_contention.no_op"))
    hit["collective"] = _collective(hit["op"])
    lines = [
        m.t(
            "communication.bandwidth_contention.summary",
            contended=len(hit),
            concurrent=len(concurrent),
            tasks=len(tasks),
            ops=hit["op"].nunique(),
            share=rules["concurrent_share"],
            ratio=rules["slow_ratio"],
        )
    ]
    by_collective = hit.groupby("collective").agg(
        ops=("op", "nunique"), tasks=("dur_us", "size"), lost_us=("lost_us", "sum")
    )
    for name, r in by_collective.sort_values("lost_us", ascending=False).iterrows():
        lines.append(
            m.t(
                "communication.bandwidth_contention.collective_line",
                collective=name,
                ops=int(r.ops),
                tasks=int(r.tasks),
                lost_ms=float(r.lost_us) / 1e3,
            )
        )
    lines.append(
        m.t(
            "communication.bandwidth_contention.gain",
            gain_us=gain.per_step_us,
            n_steps=n_steps,
            exposed=exposed,
        )
    )

    per_op = (
        hit.groupby("op", sort=False)
        .agg(
            collective=("collective", "first"),
            tasks=("dur_us", "size"),
            duration_us=("dur_us", "sum"),
            size_bytes=("size_bytes", "sum"),
            baseline_gbps=("baseline_gbps", "median"),
            overlap_share=("overlap_share", "mean"),
            lost_us=("lost_us", "sum"),
        )
        .sort_values("lost_us", ascending=False)
    )
    op_rows = [
        [
            op,
            r.collective,
            int(r.tasks),
            round(float(r.duration_us), 3),
            round(float(r.size_bytes) / 1e6, 3),
            round(float(r.size_bytes) / (float(r.duration_us) * 1e3), 3),
            round(float(r.baseline_gbps), 3),
            round(float(r.overlap_share), 3),
            round(float(r.lost_us), 3),
        ]
        for op, r in per_op.head(int(rules["top"])).iterrows()
    ]
    # Per kind of transfer (its own baseline): the title names the kind that loses the most time,
    # with its figures from this table; a median across kinds would mix copies and reductions.
    kind_rows = []
    for (task_type, link), (baseline, source, n_alone) in sorted(baselines.items()):
        same = (tasks["task_type"] == task_type) & (tasks["link_type"] == link)
        of_kind = tasks[same & (tasks["overlap_share"] >= rules["concurrent_share"])]
        hit_of_kind = hit[(hit["task_type"] == task_type) & (hit["link_type"] == link)]
        kind_rows.append(
            [
                task_type,
                link,
                n_alone,
                round(baseline, 3),
                source,
                len(of_kind),
                _rounded_median(of_kind["bandwidth_gbps"]),
                len(hit_of_kind),
                _rounded_median(hit_of_kind["bandwidth_gbps"]),
                round(float(hit_of_kind["lost_us"].sum()), 3),
            ]
        )
    worst = max((row for row in kind_rows if row[7]), key=lambda row: row[9])
    return [
        finding(
            title=m.t(
                "communication.bandwidth_contention.title",
                ops=hit["op"].nunique(),
                task_type=worst[0],
                link=worst[1],
                bandwidth=worst[8],
                baseline=worst[3],
            ),
            lines=lines,
            suggestions=m.t_list("communication.bandwidth_contention.suggestions"),
            ranks=[ctx.rank.rank],
            gain=gain,
            evidence=[
                Evidence(
                    m.t(
                        "communication.bandwidth_contention.evidence.ops", top=len(op_rows), total=len(per_op)
                    ),
                    [
                        "op_name",
                        "collective",
                        "contended_tasks",
                        "duration_us",
                        "size_mb",
                        "bandwidth_gbps",
                        "baseline_gbps",
                        "compute_overlap_share",
                        "lost_us",
                    ],
                    op_rows,
                ),
                Evidence(
                    m.t("communication.bandwidth_contention.evidence.baselines"),
                    [
                        "task_type",
                        "link_type",
                        "alone_tasks",
                        "baseline_gbps",
                        "baseline_source",
                        "concurrent_tasks",
                        "concurrent_median_gbps",
                        "contended_tasks",
                        "contended_median_gbps",
                        "lost_us",
                    ],
                    kind_rows,
                ),
            ],
        )
    ]
