"""communication.retransmission: RDMA transfers that stalled for seconds (packet retransmission).

An RDMA packet that gets no acknowledgement is resent after a timeout of several seconds, so a
retransmission shows as an RDMA transit time above 4 s (reference-advisor.md §2.23). Per
communication group, op and step over all ranks: when even the fastest rank spent at least 4 s in
the op (so it is not one late rank that the others waited for) and some rank's RDMA transit time
exceeds 4 s, that op suffered a retransmission; the ranks listed are those whose RDMA transit
exceeds 4 s. Gain per step: each such op's RDMA transit beyond what its bytes need at the RDMA
bandwidth of the run's unaffected ops (a nominal one when there are none), summed over the ops
(one per group, op and step: every rank waited for the same stall) and averaged over the steps.
"""

from __future__ import annotations

import pandas as pd

from ..report.model import Evidence, Finding
from .common import Gain, finding, mean_step_us
from .communication_small_packet import RDMA, count_steps, lost_us, transport_rows
from .knowledge import knowledge
from .registry import NPU_ONLY, ClusterContext, NotEvaluated, check

_KEYS = ["group", "op_name", "step"]


def _ms(us: float) -> float:
    return round(float(us) / 1e3, 3)


@check(
    "communication.retransmission",
    "communication",
    needs=frozenset({"comm_ops", "comm_bandwidth", "step_trace"}),
    scope="cluster",
    devices=NPU_ONLY,
)
def retransmission(ctx: ClusterContext) -> list[Finding]:
    m = ctx.messages
    rules = knowledge("communication")["retransmission"]
    ops = pd.concat([t["comm_ops"].assign(rank=rank) for rank, t in ctx.tables.items()], ignore_index=True)
    links = pd.concat(
        [transport_rows(t["comm_bandwidth"]).assign(rank=rank) for rank, t in ctx.tables.items()],
        ignore_index=True,
    )
    if ops.empty:
        return []
    if ops["elapse_us"].isna().all():
        raise NotEvaluated(m.t("communication.retransmission.no_elapse"))
    rdma = links[links["transport"] == RDMA].copy()
    if rdma.empty:
        return []  # nothing crossed nodes: nothing to retransmit
    for frame in (ops, rdma):
        frame["group"] = frame["group"].astype("string").fillna("")
        frame["op_name"] = frame["op_name"].astype("string").fillna("")
        frame["step"] = frame["step"].astype("Int64").fillna(-1)

    per_op = ops.groupby(_KEYS)["elapse_us"].min().rename("min_elapse_us")
    worst = rdma.groupby(_KEYS)["transit_us"].max().rename("max_rdma_transit_us")
    table = pd.concat([per_op, worst], axis=1, join="inner").reset_index()
    suspect = table[
        (table["min_elapse_us"] >= rules["min_elapse_us"])
        & (table["max_rdma_transit_us"] > rules["rdma_transit_us"])
    ]
    if suspect.empty:
        return []

    hit_rows = rdma.merge(suspect[_KEYS], on=_KEYS)
    stalled = hit_rows[hit_rows["transit_us"] > rules["rdma_transit_us"]]
    healthy = rdma.merge(suspect[_KEYS], on=_KEYS, how="left", indicator=True)
    healthy = healthy[(healthy["_merge"] == "left_only") & (healthy["transit_us"] > 0)]
    if len(healthy) and healthy["bandwidth_gbps"].notna().any():
        normal_gbps, source = float(healthy["bandwidth_gbps"].median()), "measured"
    else:
        normal_gbps, source = float(rules["nominal_rdma_gbps"]), "nominal"
    # One stall per op: every rank of the group waited for it, so take the worst rank's loss once.
    stalled = stalled.assign(lost_us=lost_us(stalled["size_bytes"], stalled["transit_us"], normal_gbps))
    lost_per_op = stalled.groupby(_KEYS)["lost_us"].max()
    steps = max(count_steps(t["step_trace"]) for t in ctx.tables.values())
    ranks = sorted(int(r) for r in stalled["rank"].unique())
    step_us = max(
        (s for s in (mean_step_us(t["step_trace"]) for t in ctx.tables.values()) if s is not None),
        default=None,
    )
    gain = Gain(float(lost_per_op.sum()) / steps, step_us)

    lines = [
        m.t(
            "communication.retransmission.summary",
            ops=len(suspect),
            groups=suspect["group"].nunique(),
            ranks=", ".join(map(str, ranks)),
            threshold_s=rules["rdma_transit_us"] / 1e6,
        )
    ]
    for rec in suspect.itertuples(index=False):
        lines.append(
            m.t(
                "communication.retransmission.op_line",
                op=rec.op_name,
                group=rec.group,
                step=rec.step,
                min_elapse_s=rec.min_elapse_us / 1e6,
                max_transit_s=rec.max_rdma_transit_us / 1e6,
            )
        )
    lines.append(
        m.t(
            "communication.retransmission.gain",
            gain_us=gain.per_step_us,
            normal_gbps=normal_gbps,
            source=m.t(f"communication.retransmission.source.{source}"),
            n_steps=steps,
        )
    )
    rows = [
        [
            r.group,
            r.op_name,
            None if r.step == -1 else int(r.step),
            int(r.rank),
            round(float(r.size_bytes) / 1e6, 3),
            _ms(r.transit_us),
            None if pd.isna(r.bandwidth_gbps) else round(float(r.bandwidth_gbps), 4),
        ]
        for r in stalled.sort_values(["group", "op_name", "step", "rank"]).itertuples(index=False)
    ]
    op_rows = [
        [
            r.group,
            r.op_name,
            None if r.step == -1 else int(r.step),
            _ms(r.min_elapse_us),
            _ms(r.max_rdma_transit_us),
        ]
        for r in suspect.itertuples(index=False)
    ]
    return [
        finding(
            title=m.t(
                "communication.retransmission.title",
                ops=len(suspect),
                groups=suspect["group"].nunique(),
                max_transit_s=float(suspect["max_rdma_transit_us"].max()) / 1e6,
            ),
            lines=lines,
            suggestions=m.t_list("communication.retransmission.suggestions"),
            ranks=ranks,
            step=int(suspect["step"].iloc[0])
            if suspect["step"].nunique() == 1 and suspect["step"].iloc[0] != -1
            else None,
            gain=gain,
            evidence=[
                Evidence(
                    m.t("communication.retransmission.evidence.ranks"),
                    [
                        "group",
                        "op_name",
                        "step",
                        "rank",
                        "rdma_size_mb",
                        "rdma_transit_ms",
                        "rdma_bandwidth_gbps",
                    ],
                    rows,
                ),
                Evidence(
                    m.t("communication.retransmission.evidence.ops"),
                    ["group", "op_name", "step", "min_elapse_ms", "max_rdma_transit_ms"],
                    op_rows,
                ),
            ],
        )
    ]
