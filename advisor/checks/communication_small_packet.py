"""communication.small_packet: collectives that move their data in many small transfers.

Per transport (SDMA = on-node links, RDMA = between nodes), the share of a rank's communication ops
whose transfer is below 16 MB (SDMA) / 1 MB (RDMA), as the reference does (reference-advisor.md
§2.22), but per communication group and without the `Total Op Info` pseudo-op; and the small ones
must also take that share of the transit time, not only of the op count. Estimated gain per
step: (a) the transit time the small transfers lose against the bandwidth of the rank's own large
transfers (a nominal one when it has none), plus (b) the ops saved by bucketing each step's small
transfers up to the size limit times the fixed cost of an op (the smallest elapse - transit of the
rank's ops), both scaled by the share of communication not hidden under computation.

Point-to-point transfers (a pipeline's activations and gradients between stages) are left out: their
size is the micro-batch's, which bucketing cannot change.

Also holds the helpers the other communication checks of this package share.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..report.model import Evidence, Finding
from .common import Gain, finding, mean_step_us
from .derived import per_rank_table
from .knowledge import knowledge
from .registry import NPU_ONLY, RankContext, check

SDMA, RDMA = "SDMA", "RDMA"


def count_steps(frame: pd.DataFrame) -> int:
    """Distinct profiled steps in a per-step table (1 when it has no step numbers)."""
    if "step" not in frame.columns:
        return 1
    return max(1, int(frame["step"].dropna().nunique()))


@per_rank_table
def exposed_share(step_trace: pd.DataFrame | None) -> float:
    """Share of the communication time that is not hidden under computation (1.0 when unknown):
    a transfer made faster only shortens the step by its exposed part."""
    if step_trace is None or step_trace.empty:
        return 1.0
    parts = step_trace[["communication_not_overlapped_us", "communication_us"]].dropna()
    total = float(parts["communication_us"].sum())
    if total <= 0:
        return 1.0
    return min(1.0, max(0.0, float(parts["communication_not_overlapped_us"].sum()) / total))


@per_rank_table
def transport_rows(comm_bandwidth: pd.DataFrame) -> pd.DataFrame:
    """SDMA and RDMA rows that moved data. Where an export has no SDMA aggregate, the on-node links
    (HCCS, PCIE, SIO) of each op are summed into one."""
    bw = comm_bandwidth.assign(transport=comm_bandwidth["transport"].astype("string").str.upper().str.strip())
    bw = bw[(bw["size_bytes"] > 0).fillna(False)]
    keys = ["step", "kind", "op_name", "group"]
    if not (bw["transport"] == SDMA).any():
        links = bw[bw["transport"].isin(knowledge("communication")["on_node_links"])]
        if not links.empty:
            summed = links.groupby(keys, dropna=False, sort=False)[["size_bytes", "transit_us"]].sum(
                min_count=1
            )
            summed = summed.reset_index().assign(transport=SDMA)
            summed["bandwidth_gbps"] = np.nan  # recomputed below from size and transit
            bw = pd.concat([bw, summed], ignore_index=True)
    bw = bw[bw["transport"].isin([SDMA, RDMA])].copy()
    transit = bw["transit_us"].where(bw["transit_us"] > 0)
    bw["bandwidth_gbps"] = bw["bandwidth_gbps"].where(
        bw["bandwidth_gbps"] > 0, bw["size_bytes"] / (transit * 1e3)
    )
    return bw.reset_index(drop=True)


def lost_us(size_bytes: pd.Series, transit_us: pd.Series, reference_gbps: float) -> pd.Series:
    """Transit time beyond what `reference_gbps` would need for the same bytes (never negative;
    0 where the transit time is unknown or zero)."""
    ideal = size_bytes / (reference_gbps * 1e3)
    return (transit_us - ideal).clip(lower=0).where(transit_us > 0, 0.0).fillna(0.0)


def op_overhead_us(comm_ops: pd.DataFrame) -> float:
    """What every communication op of the rank pays besides moving data: the smallest
    elapse - transit over its ops (launch, handshakes; no rank was late for that op). 0 if unknown."""
    spare = (comm_ops["elapse_us"] - comm_ops["transit_us"]).where(comm_ops["elapse_us"] > 0)
    spare = spare.clip(lower=0).dropna()
    return float(spare.min()) if len(spare) else 0.0


def _saved_ops(small: pd.DataFrame, limit_bytes: float) -> float:
    """Ops saved if each step's small transfers of a group were bucketed up to `limit_bytes`."""
    per_bucket = small.groupby(["step", "group"], dropna=False)["size_bytes"].agg(["size", "sum"])
    merged = np.ceil(per_bucket["sum"] / limit_bytes).clip(lower=1)
    return float((per_bucket["size"] - merged).clip(lower=0).sum())


def _mb(size_bytes: float) -> float:
    return round(size_bytes / 1e6, 3)


@check(
    "communication.small_packet",
    "communication",
    needs=frozenset({"comm_bandwidth", "comm_ops", "step_trace"}),
    devices=NPU_ONLY,
)
def small_packet(ctx: RankContext) -> list[Finding]:
    m = ctx.messages
    rules = knowledge("communication")["small_packet"]
    bw = transport_rows(ctx.tables["comm_bandwidth"])
    bw = bw[~bw["kind"].astype("string").str.lower().eq("p2p").fillna(False).to_numpy(dtype=bool)]
    if bw.empty:
        return []
    limits = bw["transport"].map({t: float(v) for t, v in rules["small_bytes"].items()})
    bw["small"] = bw["size_bytes"] < limits
    n_steps = count_steps(bw)
    exposed = exposed_share(ctx.tables["step_trace"])

    overhead = op_overhead_us(ctx.tables["comm_ops"])
    per_transport, lines, flagged = [], [], []
    lost_total, saved_ops = 0.0, 0.0
    for transport, rows in bw.groupby("transport", sort=True):
        small = rows[rows["small"]]
        share = len(small) / len(rows)
        large = rows[~rows["small"] & (rows["transit_us"] > 0).fillna(False)]
        if large["bandwidth_gbps"].notna().any():
            reference, source = float(large["bandwidth_gbps"].median()), "measured"
        else:
            reference, source = float(rules["nominal_gbps"][transport]), "nominal"
        moving = small[(small["transit_us"] > 0).fillna(False)]
        small_transit = float(moving["transit_us"].sum())
        achieved = float(moving["size_bytes"].sum()) / (small_transit * 1e3) if small_transit > 0 else None
        lost = float(lost_us(moving["size_bytes"], moving["transit_us"], reference).sum()) / n_steps
        limit = float(rules["small_bytes"][transport])
        # By count (the reference's rule) and by transit time: a tiny collective now and then (a loss
        # or gradient-norm all-reduce) makes up ops, not communication time.
        total_transit = float(rows["transit_us"].clip(lower=0).sum())
        time_share = small_transit / total_transit if total_transit > 0 else share  # no times: by count
        is_flagged = share > rules["max_small_share"] and time_share > rules["max_small_share"]
        per_transport.append(
            [
                transport,
                len(rows),
                len(small),
                round(share, 4),
                _mb(float(small["size_bytes"].sum())),
                round(small_transit, 3),
                None if achieved is None else round(achieved, 3),
                round(reference, 3),
                source,
                round(lost, 3),
            ]
        )
        if not is_flagged:
            continue
        flagged.append((share, transport))
        lost_total += lost
        # The same op can be small on both transports: count its saved launches once.
        saved_ops = max(saved_ops, _saved_ops(small, limit) / n_steps)
        lines.append(
            m.t(
                "communication.small_packet.transport_line",
                transport=transport,
                small=len(small),
                ops=len(rows),
                share=share,
                limit_mb=rules["small_bytes"][transport] / 1e6,
                transit_ms=small_transit / 1e3,
                achieved="?" if achieved is None else f"{achieved:.2f}",
                reference=reference,
                source=m.t(f"communication.small_packet.source.{source}"),
            )
        )
    if not flagged:
        return []

    share, transport = max(flagged)
    step_us = mean_step_us(ctx.tables["step_trace"])
    # What bigger packets would save is modelled from the bandwidth they reach: an upper bound.
    gain = Gain.upper_bound((lost_total + saved_ops * overhead) * exposed, step_us)
    lines.append(
        m.t(
            "communication.small_packet.gain",
            gain_us=gain.per_step_us,
            lost_us=lost_total,
            saved_ops=saved_ops,
            overhead_us=overhead,
            exposed=exposed,
            n_steps=n_steps,
        )
    )
    bw["small_bytes"] = bw["size_bytes"].where(bw["small"], 0.0)
    bw["small_transit_us"] = bw["transit_us"].where(bw["small"], 0.0).fillna(0.0)
    groups = (
        bw.groupby(["group", "transport"], dropna=False, sort=True)
        .agg(
            ops=("small", "size"),
            small_ops=("small", "sum"),
            small_bytes=("small_bytes", "sum"),
            small_transit_us=("small_transit_us", "sum"),
        )
        .reset_index()
    )
    group_rows = [
        [
            None if pd.isna(g.group) else str(g.group),
            g.transport,
            int(g.ops),
            int(g.small_ops),
            round(g.small_ops / g.ops, 4),
            _mb(g.small_bytes / g.small_ops) if g.small_ops else None,
            round(g.small_transit_us, 3),
        ]
        for g in groups.itertuples(index=False)
    ]
    return [
        finding(
            title=m.t(
                "communication.small_packet.title",
                share=share,
                transport=transport,
                limit_mb=rules["small_bytes"][transport] / 1e6,
            ),
            lines=lines,
            suggestions=m.t_list("communication.small_packet.suggestions"),
            ranks=[ctx.rank.rank],
            gain=gain,
            evidence=[
                Evidence(
                    m.t("communication.small_packet.evidence.transports"),
                    [
                        "transport",
                        "ops",
                        "small_ops",
                        "small_share",
                        "small_mb",
                        "small_transit_us",
                        "small_gbps",
                        "large_packet_gbps",
                        "large_packet_gbps_source",
                        "lost_us_per_step",
                    ],
                    per_transport,
                ),
                Evidence(
                    m.t("communication.small_packet.evidence.groups"),
                    [
                        "group",
                        "transport",
                        "ops",
                        "small_ops",
                        "small_share",
                        "mean_small_mb",
                        "small_transit_us",
                    ],
                    group_rows,
                ),
            ],
        )
    ]
