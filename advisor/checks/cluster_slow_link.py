"""cluster.slow_link: links and ranks whose transfer bandwidth is far below their peers' on the same
transport (HCCS / PCIE / SIO on a node, RDMA between nodes).

Two views: per link (communication_matrix: src -> dst, group-local ranks mapped to global ranks where
the profiled ranks tell which is which) and per rank (communication.json: all of a rank's transfers
on one transport). Bandwidth is summed size / summed transit time; rows with no size or a zero
transit time are skipped, not divided. A link or rank is slow when it runs below a share of the
median of its peers on the same transport, is a robust outlier where there are enough peers, and
loses a material time per step. Time lost = transit - size / peers' median bandwidth.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..report.messages import Messages
from ..report.model import Evidence, Finding
from .cluster_slow_rank import evidence_cell, loo_median, rank_steps, robust_z, thresholds
from .common import Gain, finding, ms
from .registry import NPU_ONLY, ClusterContext, NotEvaluated, check

# SDMA is the sum of the on-node transports; used only where none of them is broken out.
ON_NODE = ("HCCS", "PCIE", "SIO")
AGGREGATE = "SDMA"
LOCAL = "LOCAL"


def _n_steps(frame: pd.DataFrame) -> int:
    return max(int(frame["step"].nunique(dropna=False)), 1) if not frame.empty else 1


def rank_bandwidth(ctx: ClusterContext) -> pd.DataFrame:
    """Per rank and transport: bytes and transit µs per step, GB/s."""
    frames, steps = [], []
    for rank, tables in ctx.tables.items():
        bw = tables.get("comm_bandwidth")
        if bw is None or bw.empty:
            continue
        usable = bw[(bw["size_bytes"] > 0) & (bw["transit_us"] > 0)]
        if usable.empty:
            continue
        frames.append(
            pd.DataFrame(
                {
                    "file": len(steps),
                    "transport": usable["transport"].astype("string").str.upper(),
                    "size_bytes": usable["size_bytes"],
                    "transit_us": usable["transit_us"],
                }
            )
        )
        steps.append((rank, _n_steps(bw)))
    if not frames:
        return pd.DataFrame(columns=["rank", "transport", "size_bytes", "transit_us", "bandwidth_gbps"])
    # One groupby over every rank's rows: the file (in rank order) first, as one per rank would do.
    sums = pd.concat(frames, ignore_index=True).groupby(["file", "transport"]).sum()
    files = sums.index.get_level_values("file").to_numpy()
    out = (sums / np.array([n for _, n in steps])[files, None]).reset_index()
    out = out.drop(columns="file").assign(rank=np.array([rank for rank, _ in steps])[files])
    if out["transport"].isin(ON_NODE).any():
        out = out[out["transport"] != AGGREGATE]
    out = out[out["transport"] != LOCAL]
    out["bandwidth_gbps"] = out["size_bytes"] / out["transit_us"] / 1000.0  # B/µs = MB/s; /1000 -> GB/s
    return out.reset_index(drop=True)


def _matrix_rows(matrix: pd.DataFrame) -> pd.DataFrame:
    """Real transfers of real ops: no self copies, no zero rows, no summary pseudo-ops twice."""
    real = (
        (matrix["src_rank"] != matrix["dst_rank"])
        & (matrix["transport"].str.upper() != LOCAL)
        & (matrix["size_bytes"] > 0)
        & (matrix["transit_us"] > 0)
    ).to_numpy(dtype=bool, na_value=False)
    if not real.any():
        return matrix[real]
    is_total = matrix["op_name"].astype("string").str.lower().str.endswith("total")
    is_total = is_total.to_numpy(dtype=bool, na_value=False) & real
    named = matrix["hccl_op_name"].notna().to_numpy() & real
    if named.any():
        # top1/middle/bottomN repeat real ops (hccl_op_name); keep each real op's link once.
        rows = matrix[named & ~is_total]
        return rows.drop_duplicates(["step", "group", "hccl_op_name", "src_rank", "dst_rank", "transport"])
    if is_total.any():
        return matrix[is_total]
    return matrix[real].drop_duplicates(["step", "group", "op_name", "src_rank", "dst_rank", "transport"])


def _local_ranks(matrix: pd.DataFrame) -> dict[str, int]:
    """Group -> the group-local rank of the rank whose file this is: the commonest source of its
    self copies (the smallest of equals, as Series.mode), or of all its rows where it lists none."""
    src = matrix["src_rank"].to_numpy(dtype="float64", na_value=np.nan)
    own = src == matrix["dst_rank"].to_numpy(dtype="float64", na_value=np.nan)
    chosen = (own if own.any() else np.ones(len(src), dtype=bool)) & ~np.isnan(src)
    groups = matrix["group"].astype("string").to_numpy(dtype=object, na_value=None)
    local = {}
    for group in sorted({g for g in groups[chosen] if g is not None}):
        values, counts = np.unique(src[chosen & (groups == group)], return_counts=True)
        local[str(group)] = int(values[np.argmax(counts)])
    return local


def link_bandwidth(ctx: ClusterContext) -> pd.DataFrame:
    """Per link (group, src -> dst, transport): bytes and transit µs per step, GB/s, and the global
    ranks of both ends where known (the rank whose file lists a self copy is that local rank)."""
    frames, steps, to_global = [], [], {}
    for rank, tables in ctx.tables.items():
        matrix = tables.get("comm_matrix")
        if matrix is None or matrix.empty:
            continue
        for group, local in _local_ranks(matrix).items():
            to_global[(group, local)] = rank
        rows = _matrix_rows(matrix)
        if rows.empty:
            continue
        frames.append(
            pd.DataFrame(
                {
                    "file": len(steps),
                    "group": rows["group"].astype("string"),
                    "src_rank": rows["src_rank"],
                    "dst_rank": rows["dst_rank"],
                    "transport": rows["transport"].str.upper(),
                    "size_bytes": rows["size_bytes"],
                    "transit_us": rows["transit_us"],
                }
            )
        )
        steps.append(_n_steps(matrix))
    if not frames:
        return pd.DataFrame()
    keys = ["group", "src_rank", "dst_rank", "transport"]
    sums = pd.concat(frames, ignore_index=True).groupby(["file", *keys], dropna=False).sum()
    per_step = sums / np.array(steps)[sums.index.get_level_values("file").to_numpy(), None]
    # A link listed by both ends' files counts once.
    links = per_step.groupby(keys, dropna=False).max().reset_index()
    groups = links["group"].astype(str).to_numpy()
    links["src"] = [to_global.get((g, int(s))) for g, s in zip(groups, links["src_rank"], strict=True)]
    links["dst"] = [to_global.get((g, int(d))) for g, d in zip(groups, links["dst_rank"], strict=True)]
    links["bandwidth_gbps"] = links["size_bytes"] / links["transit_us"] / 1000.0
    return links


def judge(frame: pd.DataFrame, cfg: dict[str, float], min_lost_us: float) -> pd.DataFrame:
    """Per transport: peers' median bandwidth, ratio, robust z, time lost per step and `slow`."""
    if frame.empty:
        return frame.assign(peer_median_gbps=[], ratio=[], robust_z=[], lost_us=[], slow=[])
    parts = []
    for _, part in frame.groupby("transport", sort=True):
        bw = part["bandwidth_gbps"].to_numpy(dtype=float)
        size, transit = part["size_bytes"].to_numpy(dtype=float), part["transit_us"].to_numpy(dtype=float)
        peers = loo_median(bw)
        ratio = np.where(peers > 0, bw / peers, np.nan)
        enough = len(part) >= cfg["min_ranks_for_z"]
        z = robust_z(bw, peers) if enough else np.full(len(part), np.nan)
        expected_us = np.where(peers > 0, size / (peers * 1000.0), np.nan)
        lost = np.clip(transit - expected_us, 0, None)
        slow = (ratio <= cfg["max_bandwidth_ratio"]) & (lost >= min_lost_us) & (size >= cfg["min_bytes"])
        if enough:
            slow &= z <= -cfg["robust_z"]
        parts.append(part.assign(peer_median_gbps=peers, ratio=ratio, robust_z=z, lost_us=lost, slow=slow))
    return pd.concat(parts, ignore_index=True)


def _exposed_fraction(ctx: ClusterContext) -> tuple[float, float | None]:
    """(median share of communication that is not overlapped, median step µs) from step_trace."""
    rows = rank_steps(ctx)
    if rows.empty:
        return 1.0, None
    per_rank = rows.groupby("rank")[["communication_not_overlapped_us", "communication_us", "step_us"]].sum()
    shares = per_rank["communication_not_overlapped_us"] / per_rank["communication_us"].where(
        per_rank["communication_us"] > 0
    )
    share = float(shares.median()) if shares.notna().any() else 1.0
    steps = rows.groupby("rank")["step_us"].mean()
    return min(max(share, 0.0), 1.0), float(steps.median())


def _end(global_rank: object, local: object) -> str:
    return str(int(global_rank)) if pd.notna(global_rank) else f"g{int(local)}"


@check(
    "cluster.slow_link",
    "cluster",
    needs=frozenset({"comm_bandwidth", "comm_matrix", "step_trace"}),
    scope="cluster",
    devices=NPU_ONLY,
)
def slow_link(ctx: ClusterContext) -> list[Finding]:
    m = ctx.messages
    if len(ctx.tables) < 2:
        raise NotEvaluated(m.t("cluster.slow_link.one_rank"))
    cfg = thresholds("slow_link")
    ranks = rank_bandwidth(ctx)
    links = link_bandwidth(ctx)
    if ranks.empty and links.empty:
        raise NotEvaluated(m.t("cluster.slow_link.no_data"))
    exposed, step_us = _exposed_fraction(ctx)
    min_lost = cfg["min_lost_share"] * step_us if step_us else 0.0
    ranks = judge(ranks, cfg, min_lost)
    links = judge(links, cfg, min_lost)
    slow_ranks = ranks[ranks["slow"]] if not ranks.empty else ranks
    slow_links = links[links["slow"]] if not links.empty else links
    if slow_ranks.empty and slow_links.empty:
        return []

    # Links of one op run in parallel and ranks wait for each other: the costliest one sets the loss.
    lost = max(
        float(slow_links["lost_us"].max()) if not slow_links.empty else 0.0,
        float(slow_ranks["lost_us"].max()) if not slow_ranks.empty else 0.0,
    )
    gain = Gain(lost * exposed, step_us)
    lines = [m.t("cluster.slow_link.method", ratio=cfg["max_bandwidth_ratio"])]
    if not slow_links.empty:
        worst = slow_links.loc[slow_links["lost_us"].idxmax()]
        label = f"{_end(worst['src'], worst['src_rank'])}→{_end(worst['dst'], worst['dst_rank'])}"
        title = m.t(
            "cluster.slow_link.title.link",
            transport=worst["transport"],
            link=label,
            gbps=worst["bandwidth_gbps"],
            ratio=worst["ratio"],
            peer_gbps=worst["peer_median_gbps"],
        )
        for rec in slow_links.sort_values("lost_us", ascending=False).itertuples(index=False):
            lines.append(
                m.t(
                    "cluster.slow_link.link_line",
                    transport=rec.transport,
                    link=f"{_end(rec.src, rec.src_rank)}→{_end(rec.dst, rec.dst_rank)}",
                    gbps=rec.bandwidth_gbps,
                    peer_gbps=rec.peer_median_gbps,
                    ratio=rec.ratio,
                    lost_ms=ms(rec.lost_us),
                )
            )
        if slow_links["src"].isna().any() or slow_links["dst"].isna().any():
            lines.append(m.t("cluster.slow_link.local_ranks"))
    else:
        worst = slow_ranks.loc[slow_ranks["lost_us"].idxmax()]
        title = m.t(
            "cluster.slow_link.title.rank",
            transport=worst["transport"],
            rank=int(worst["rank"]),
            gbps=worst["bandwidth_gbps"],
            ratio=worst["ratio"],
            peer_gbps=worst["peer_median_gbps"],
        )
    for rec in slow_ranks.sort_values("lost_us", ascending=False).itertuples(index=False):
        lines.append(
            m.t(
                "cluster.slow_link.rank_line",
                transport=rec.transport,
                rank=int(rec.rank),
                gbps=rec.bandwidth_gbps,
                peer_gbps=rec.peer_median_gbps,
                ratio=rec.ratio,
                lost_ms=ms(rec.lost_us),
            )
        )
    lines.append(
        m.t("cluster.slow_link.gain", lost_ms=ms(lost), exposed=exposed, gain_ms=gain.ms, share=gain.share)
    )

    transports = {str(t) for frame in (slow_links, slow_ranks) if not frame.empty for t in frame["transport"]}
    suggestions = m.t_list("cluster.slow_link.suggestions.rdma") if "RDMA" in transports else []
    if transports - {"RDMA"}:
        suggestions += m.t_list("cluster.slow_link.suggestions.on_node")
    suggestions += m.t_list("cluster.slow_link.suggestions.common")

    involved = set(int(r) for r in slow_ranks["rank"]) if not slow_ranks.empty else set()
    if not slow_links.empty:
        involved |= {int(r) for r in pd.concat([slow_links["src"], slow_links["dst"]]).dropna()}
    return [
        finding(
            title=title,
            lines=lines,
            suggestions=suggestions,
            ranks=sorted(involved),
            evidence=_evidence(m, links, ranks),
            gain=gain,
        )
    ]


def _evidence(m: Messages, links: pd.DataFrame, ranks: pd.DataFrame) -> list[Evidence]:
    out = []
    if not links.empty:
        columns = ["transport", "src", "dst", "group", "src_local", "dst_local", "size_bytes", "transit_us",
                   "bandwidth_gbps", "peer_median_gbps", "ratio", "robust_z", "lost_us", "slow"]  # fmt: skip
        table = links.sort_values(["slow", "transport", "ratio"], ascending=[False, True, True])
        rows = [
            [
                rec.transport,
                None if pd.isna(rec.src) else int(rec.src),
                None if pd.isna(rec.dst) else int(rec.dst),
                str(rec.group),
                int(rec.src_rank),
                int(rec.dst_rank),
                *(evidence_cell(v) for v in (rec.size_bytes, rec.transit_us, rec.bandwidth_gbps,
                                             rec.peer_median_gbps, rec.ratio, rec.robust_z, rec.lost_us)),
                bool(rec.slow),
            ]
            for rec in table.itertuples(index=False)
        ]  # fmt: skip
        out.append(Evidence(m.t("cluster.slow_link.evidence.links"), columns, rows))
    if not ranks.empty:
        columns = ["transport", "rank", "size_bytes", "transit_us", "bandwidth_gbps", "peer_median_gbps",
                   "ratio", "robust_z", "lost_us", "slow"]  # fmt: skip
        table = ranks.sort_values(["slow", "transport", "ratio"], ascending=[False, True, True])
        cells = ["transport", "rank", *columns[2:-1]]
        rows = [[*(evidence_cell(v) for v in rec[:-1]), bool(rec[-1])] for rec in
                table[[*cells, "slow"]].itertuples(index=False, name=None)]  # fmt: skip
        out.append(Evidence(m.t("cluster.slow_link.evidence.ranks"), columns, rows))
    return out
