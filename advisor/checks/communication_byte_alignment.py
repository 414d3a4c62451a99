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


def hccl_tasks(hccl: pd.DataFrame) -> pd.DataFrame:
    """The HCCL tasks (not the op rows) with `op_name` and `op_start_ns` of the op of the same group
    whose time span holds the task's start (<NA> where none does), `end_ns`, and `task_type`
    falling back to the task's name."""
    if hccl.empty:
        return hccl.assign(op_name=pd.Series(dtype="string"), op_start_ns=pd.Series(dtype="Int64"))
    is_op = hccl["is_op"].fillna(False).astype(bool)
    frame = hccl.assign(
        task_type=hccl["task_type"].fillna(hccl["name"]).astype("string"),
        _group=hccl["group"].fillna("").astype(str),
    )
    frame = frame[frame["start_ns"].notna()]
    ops = frame[is_op.loc[frame.index]]
    tasks = frame[~is_op.loc[frame.index]]
    tasks = tasks.assign(_start=tasks["start_ns"].astype("int64")).sort_values("_start", kind="stable")
    spans = pd.DataFrame(
        {
            "_start": ops["start_ns"].astype("int64").to_numpy(),
            "_group": ops["_group"].to_numpy(),
            "op_name": ops["name"].astype("string").to_numpy(),
            "_op_end": (ops["start_ns"].astype("float64") + ops["dur_us"].fillna(0.0) * 1e3).to_numpy(),
        }
    ).sort_values("_start", kind="stable")
    spans["op_start_ns"] = spans["_start"]
    joined = pd.merge_asof(tasks, spans, on="_start", by="_group", direction="backward")
    inside = joined["_start"].astype("float64") <= joined["_op_end"]
    joined["op_name"] = joined["op_name"].where(inside).astype("string")
    joined["op_start_ns"] = joined["op_start_ns"].where(inside).astype("Int64")
    joined["end_ns"] = (joined["start_ns"].astype("float64") + joined["dur_us"].fillna(0.0) * 1e3).round()
    return joined.drop(columns=["_start", "_group", "_op_end"]).reset_index(drop=True)


@per_rank_table
def sdma_transfers(hccl: pd.DataFrame, task_prefixes: list[str]) -> pd.DataFrame:
    """SDMA data-moving tasks (name prefix before '_' in `task_prefixes`, size and duration > 0),
    with their op and bandwidth in GB/s."""
    tasks = hccl_tasks(hccl)
    kind = tasks["task_type"].str.split("_", n=1).str[0]
    moving = (
        kind.isin(task_prefixes)
        & (tasks["transport"].astype("string").str.upper() == "SDMA")
        & (tasks["size_bytes"] > 0)
        & (tasks["dur_us"] > 0)
    ).fillna(False)
    tasks = tasks[moving].copy()
    tasks["link_type"] = tasks["link_type"].fillna("UNKNOWN").astype("string")
    tasks["bandwidth_gbps"] = tasks["size_bytes"] / (tasks["dur_us"] * 1e3)
    return tasks.reset_index(drop=True)


def in_profiled_steps(
    tasks: pd.DataFrame, steps: pd.DataFrame, rank: RankInfo, step_trace: pd.DataFrame
) -> tuple[pd.DataFrame, int]:
    """The tasks whose op started inside the ProfilerStep windows, and how many steps those are.

    Device work of a step runs on after the host's window closes, so each window reaches to the next
    one's start and the rank's last profiled step to the end of the profile. A profile without step
    windows keeps every task (the steps then come from step_trace)."""
    windows = steps.dropna(subset=["step", "start_ns", "dur_us"]).sort_values("start_ns")
    if windows.empty or tasks.empty:
        return tasks, count_steps(step_trace)
    begin = windows["start_ns"].astype("int64").to_numpy().astype("float64")
    reach = begin + windows["dur_us"].to_numpy(dtype="float64") * 1e3
    reach[:-1] = np.maximum(reach[:-1], begin[1:])
    last = int(windows["step"].iloc[-1])
    if not rank.steps or last >= max(rank.steps):
        reach[-1] = np.inf
    when = tasks["op_start_ns"].fillna(tasks["start_ns"]).astype("float64").to_numpy()
    idx = np.searchsorted(begin, when, side="right") - 1
    inside = (idx >= 0) & (when < reach[np.clip(idx, 0, None)])
    return tasks[inside], len(windows)


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
    tasks["abnormal"] = (tasks["size_bytes"].round().astype("int64") % align) != 0
    inspected_us = float(tasks["dur_us"].sum())
    abnormal = tasks[tasks["abnormal"]]
    if abnormal.empty:
        return []
    abnormal_us = float(abnormal["dur_us"].sum())
    share = abnormal_us / inspected_us if inspected_us > 0 else 0.0

    # Measured loss: abnormal tasks against aligned tasks of the same task and link type.
    aligned = tasks[~tasks["abnormal"]]
    reference = aligned.groupby(["task_type", "link_type"])["bandwidth_gbps"].median().rename("aligned_gbps")
    abnormal = abnormal.join(reference, on=["task_type", "link_type"])
    ideal = abnormal["size_bytes"] / (abnormal["aligned_gbps"] * 1e3)
    abnormal["lost_us"] = (abnormal["dur_us"] - ideal).clip(lower=0)
    exposed = exposed_share(ctx.tables["step_trace"])
    measured = abnormal["aligned_gbps"].notna().any()
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
