"""communication.byte_alignment: SDMA transfers whose size is not a multiple of 512 bytes.

HCCL's SDMA engine moves 512-byte aligned blocks best (reference-advisor.md §2.25). Inspected: the
Memcpy / Reduce tasks of the HCCL ops over SDMA that leave the chip (link type not ON_CHIP) and move
more than 512 bytes; abnormal: their size is not a multiple of 512. Weighted by time: the abnormal
share is abnormal task time / inspected task time. The gain is measured, not assumed: the abnormal
tasks' time beyond what they would take at the median bandwidth of the aligned tasks of the same
task and link type (none when the profile has no aligned transfer of that kind to compare with).

Also holds `hccl_tasks`, which the bandwidth contention check shares.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..model import RankInfo
from ..report.model import Evidence, Finding
from .common import Gain, finding, mean_step_us
from .communication_small_packet import count_steps, exposed_share
from .derived import per_rank_table
from .knowledge import knowledge
from .registry import NPU_ONLY, NotEvaluated, RankContext, check


@per_rank_table
def hccl_tasks(hccl: pd.DataFrame) -> pd.DataFrame:
    """The HCCL tasks (not the op rows) with `op_name` and `op_start_ns` of the op of the same group
    whose time span holds the task's start (<NA> where none does), `end_ns`, and `task_type`
    falling back to the task's name. Rows without a start are left out; the tasks come in start
    order (ties in table order)."""
    if hccl.empty:
        return hccl.assign(op_name=pd.Series(dtype="string"), op_start_ns=pd.Series(dtype="Int64"))
    timed = hccl["start_ns"].notna().to_numpy()
    start = hccl["start_ns"].to_numpy(dtype="int64", na_value=0)
    is_op = hccl["is_op"].fillna(False).to_numpy(dtype=bool)
    group = hccl["group"].fillna("").astype(str).to_numpy(dtype=object)
    task_rows = np.flatnonzero(timed & ~is_op)
    task_rows = task_rows[np.argsort(start[task_rows], kind="stable")]
    op_rows = np.flatnonzero(timed & is_op)
    op_rows = op_rows[np.argsort(start[op_rows], kind="stable")]
    op_end = start.astype("float64") + hccl["dur_us"].fillna(0.0).to_numpy(dtype="float64") * 1e3
    # Each task's op: the last op of its group that started at or before it (as merge_asof backward).
    owner = np.full(len(task_rows), -1)
    for name in np.unique(group[op_rows]):
        ops = op_rows[group[op_rows] == name]
        mine = np.flatnonzero(group[task_rows] == name)
        before = np.searchsorted(start[ops], start[task_rows[mine]], side="right") - 1
        owner[mine] = np.where(before >= 0, ops[np.clip(before, 0, None)], -1)
    inside = (owner >= 0) & (start[task_rows].astype("float64") <= op_end[owner])
    owner = np.where(inside, owner, -1)
    tasks = hccl.take(task_rows).reset_index(drop=True)
    return tasks.assign(
        task_type=hccl["task_type"].fillna(hccl["name"]).astype("string").array.take(task_rows),
        op_name=hccl["name"].astype("string").array.take(owner, allow_fill=True),
        op_start_ns=hccl["start_ns"].astype("Int64").array.take(owner, allow_fill=True),
        end_ns=(start[task_rows].astype("float64") + tasks["dur_us"].fillna(0.0).to_numpy() * 1e3).round(),
    )


@per_rank_table
def sdma_transfers(hccl: pd.DataFrame, task_prefixes: list[str]) -> pd.DataFrame:
    """SDMA data-moving tasks (of a task type in `task_prefixes`, or one of them and '_' then more:
    "Reduce" takes Reduce_Inline; size and duration > 0), with their op and bandwidth in GB/s."""
    tasks = hccl_tasks(hccl)
    types, typed_prefixes = tuple(task_prefixes), tuple(f"{prefix}_" for prefix in task_prefixes)
    kinds = tasks["task_type"].to_numpy(dtype=object, na_value="")
    size = tasks["size_bytes"].to_numpy(dtype="float64", na_value=np.nan)
    duration = tasks["dur_us"].to_numpy(dtype="float64", na_value=np.nan)
    moving = (
        np.fromiter((k in types or k.startswith(typed_prefixes) for k in kinds), dtype=bool, count=len(kinds))
        & (tasks["transport"].astype("string").str.upper() == "SDMA").to_numpy(dtype=bool, na_value=False)
        & (size > 0)
        & (duration > 0)
    )
    tasks = tasks[moving].reset_index(drop=True)
    return tasks.assign(
        link_type=tasks["link_type"].fillna("UNKNOWN").astype("string"),
        bandwidth_gbps=size[moving] / (duration[moving] * 1e3),
    )


def median_bandwidth_by_kind(
    tasks: pd.DataFrame, among: np.ndarray
) -> dict[tuple[str, str], tuple[float, int]]:
    """(task_type, link_type) -> median bandwidth (GB/s) and count of the transfers of `sdma_transfers`
    that `among` (a mask over the rows) selects."""
    kinds = zip(tasks["task_type"].to_numpy(), tasks["link_type"].to_numpy(), strict=True)
    by_kind: dict[tuple[str, str], list[float]] = {}
    for kind, gbps, chosen in zip(kinds, tasks["bandwidth_gbps"].to_numpy(), among, strict=True):
        if chosen:
            by_kind.setdefault(kind, []).append(gbps)
    return {kind: (float(np.median(values)), len(values)) for kind, values in by_kind.items()}


@per_rank_table
def _step_windows(steps: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, int | None]:
    """The ProfilerStep windows in start order: start (ns), end (ns) reaching to the next window's
    start, and the step of the last window (None when there are none)."""
    windows = steps.dropna(subset=["step", "start_ns", "dur_us"]).sort_values("start_ns")
    if windows.empty:
        return np.empty(0), np.empty(0), None
    begin = windows["start_ns"].astype("int64").to_numpy().astype("float64")
    reach = begin + windows["dur_us"].to_numpy(dtype="float64") * 1e3
    reach[:-1] = np.maximum(reach[:-1], begin[1:])
    return begin, reach, int(windows["step"].iloc[-1])


def in_profiled_steps(
    tasks: pd.DataFrame, steps: pd.DataFrame, rank: RankInfo, step_trace: pd.DataFrame
) -> tuple[pd.DataFrame, int]:
    """The tasks whose op started inside the ProfilerStep windows, and how many steps those are.

    Device work of a step runs on after the host's window closes, so each window reaches to the next
    one's start and the rank's last profiled step to the end of the profile. A profile without step
    windows keeps every task (the steps then come from step_trace)."""
    begin, reach, last = _step_windows(steps)
    if last is None or tasks.empty:
        return tasks, count_steps(step_trace)
    if not rank.steps or last >= max(rank.steps):
        reach[-1] = np.inf
    when = tasks["op_start_ns"].fillna(tasks["start_ns"]).astype("float64").to_numpy()
    idx = np.searchsorted(begin, when, side="right") - 1
    inside = (idx >= 0) & (when < reach[np.clip(idx, 0, None)])
    return tasks[inside], len(begin)


def _bandwidth(size_bytes: float, dur_us: float) -> float | None:
    return round(float(size_bytes) / (float(dur_us) * 1e3), 3) if dur_us > 0 else None


def _us(value: float) -> float:
    return round(float(value), 3)


@check(
    "communication.byte_alignment",
    "communication",
    needs=frozenset({"hccl", "steps", "step_trace"}),
    devices=NPU_ONLY,
)
def byte_alignment(ctx: RankContext) -> list[Finding]:
    m = ctx.messages
    rules = knowledge("communication")["byte_alignment"]
    hccl = ctx.tables["hccl"]
    if hccl.empty:
        return []
    if hccl["size_bytes"].isna().all() or hccl["transport"].isna().all():
        raise NotEvaluated(m.t("communication.byte_alignment.no_sizes"))
    tasks, n_steps = in_profiled_steps(
        sdma_transfers(hccl, rules["transfer_tasks"]), ctx.tables["steps"], ctx.rank, ctx.tables["step_trace"]
    )
    tasks = tasks[
        ~tasks["link_type"].str.upper().isin(rules["excluded_links"])
        & (tasks["size_bytes"] > rules["min_bytes"])
    ].copy()
    if tasks.empty:
        return []
    align = int(rules["alignment_bytes"])
    odd = (tasks["size_bytes"].round().astype("int64") % align).to_numpy() != 0
    if not odd.any():
        return []
    tasks["abnormal"] = odd
    inspected_us = float(tasks["dur_us"].sum())
    # Measured loss: abnormal tasks against aligned tasks of the same task and link type.
    reference = median_bandwidth_by_kind(tasks, ~odd)
    abnormal = tasks[odd]
    kinds = zip(abnormal["task_type"], abnormal["link_type"], strict=True)
    aligned_gbps = np.array([reference.get(kind, (np.nan,))[0] for kind in kinds])
    ideal = abnormal["size_bytes"].to_numpy() / (aligned_gbps * 1e3)
    abnormal = abnormal.assign(
        aligned_gbps=aligned_gbps, lost_us=np.clip(abnormal["dur_us"].to_numpy() - ideal, 0, None)
    )
    abnormal_us = float(abnormal["dur_us"].sum())
    share = abnormal_us / inspected_us if inspected_us > 0 else 0.0
    exposed = exposed_share(ctx.tables["step_trace"])
    measured = not np.isnan(aligned_gbps).all()
    step_us = mean_step_us(ctx.tables["step_trace"])
    gain = Gain(float(abnormal["lost_us"].sum()) * exposed / n_steps, step_us) if measured else None
    if share < rules["min_abnormal_share"] and (gain is None or gain.share < rules["min_gain_share"]):
        return []  # a few odd-sized tail transfers at full speed are not worth a finding
    # Without a gain (nothing aligned to measure against): the reference's rule on the abnormal share.
    bands = rules["share_priority"]
    priority = "high" if share >= bands["high"] else "medium" if share >= bands["medium"] else "low"

    ops = abnormal["op_name"].fillna(m.t("communication.byte_alignment.no_op")).nunique()
    lines = [
        m.t(
            "communication.byte_alignment.summary",
            tasks=len(abnormal),
            inspected=len(tasks),
            ops=ops,
            align=align,
            abnormal_ms=abnormal_us / 1e3,
            inspected_ms=inspected_us / 1e3,
            share=share,
        )
    ]
    if gain is None:
        lines.append(m.t("communication.byte_alignment.gain_unknown"))
    else:
        lines.append(
            m.t(
                "communication.byte_alignment.gain",
                gain_us=gain.per_step_us,
                exposed=exposed,
                n_steps=n_steps,
            )
        )

    by_kind = tasks.groupby(["task_type", "link_type", "abnormal"]).agg(
        tasks=("dur_us", "size"), dur_us=("dur_us", "sum"), size_bytes=("size_bytes", "sum")
    )
    kind_rows = [
        [
            task_type,
            link,
            bool(flag),
            int(r.tasks),
            _us(r.dur_us),
            int(r.size_bytes),
            _bandwidth(r.size_bytes, r.dur_us),
        ]
        for (task_type, link, flag), r in by_kind.iterrows()
    ]
    per_op = (
        tasks.assign(
            op=tasks["op_name"].fillna(m.t("communication.byte_alignment.no_op")),
            abnormal_us=tasks["dur_us"].where(tasks["abnormal"], 0.0),
            abnormal_n=tasks["abnormal"].astype(int),
        )
        .groupby("op", sort=False)
        .agg(
            tasks=("dur_us", "size"),
            abnormal_tasks=("abnormal_n", "sum"),
            size_bytes=("size_bytes", "sum"),
            dur_us=("dur_us", "sum"),
            abnormal_us=("abnormal_us", "sum"),
        )
    )
    per_op = per_op[per_op["abnormal_tasks"] > 0].sort_values("abnormal_us", ascending=False)
    op_rows = [
        [
            op,
            int(r.tasks),
            int(r.abnormal_tasks),
            int(r.size_bytes),
            _us(r.dur_us),
            _us(r.abnormal_us),
            _bandwidth(r.size_bytes, r.dur_us),
        ]
        for op, r in per_op.head(int(rules["top"])).iterrows()
    ]
    return [
        finding(
            title=m.t("communication.byte_alignment.title", ops=ops, share=share, align=align),
            lines=lines,
            suggestions=m.t_list("communication.byte_alignment.suggestions", align=align),
            ranks=[ctx.rank.rank],
            gain=gain,
            priority=priority,
            evidence=[
                Evidence(
                    m.t("communication.byte_alignment.evidence.ops", top=len(op_rows), total=len(per_op)),
                    [
                        "op_name",
                        "tasks",
                        "unaligned_tasks",
                        "size_bytes",
                        "duration_us",
                        "unaligned_us",
                        "bandwidth_gbps",
                    ],
                    op_rows,
                ),
                Evidence(
                    m.t("communication.byte_alignment.evidence.kinds"),
                    [
                        "task_type",
                        "link_type",
                        "unaligned",
                        "tasks",
                        "duration_us",
                        "size_bytes",
                        "bandwidth_gbps",
                    ],
                    kind_rows,
                ),
            ],
        )
    ]
