"""communication.exposed: communication not overlapped with computation takes a large share of the
step, with the collectives behind it and what their time is made of.

The profiler splits each communication op's elapsed time into transit (data moving), wait (Notify
waits for peers: a slow or late peer) and idle (gaps between the op's tasks: the op issued before
its inputs or its peers were ready, or its tasks launched late). The exposed time is split in the
same proportions. Recoverable per step: the wait and idle parts, plus the transit part that the
computing time not yet overlapped could hide.

How sure that is (docs/design.md "Priority"): wait and idle are time the profile shows lost. Hidden
transfer is measured too when the job barely overlaps today (turning overlap on is the fix); when it
already hides most of its communication, the exposed rest is bandwidth-bound and the figure is an
upper bound.

Pipeline parallelism: a stage waiting in its receive ops for the previous stage's activations is
the pipeline bubble (step_trace's Bubble; the P2P ops of communication.json), not exposed
collectives: it is left out here and judged by computation.pp_stage_imbalance.

Level0 profiles have no communication.json: the share and the ranks come from the step time split
alone, and the report says that the per-collective split needs Level1.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..report.messages import Messages
from ..report.model import Evidence, Finding
from .cluster_slow_rank import evidence_cell, thresholds
from .common import MEASURED, Gain, complete_steps, finding, ms
from .registry import NotEvaluated, RankContext, check

CAUSES = ("transit", "wait", "idle")
P2P = "p2p"
# Below this share of its communication hidden under computation, a job is not overlapping: hiding
# the transfer is the fix and its gain is measured; above, the exposed rest is bandwidth-bound.
LOW_OVERLAP = 0.5
_KIND = r"^(?:hcom_)?([A-Za-z0-9]+?)(?:__|_\d|$)"


def collective_kind(op_name: pd.Series) -> pd.Series:
    """'hcom_allReduce__586_0_1' -> 'allReduce' (the collective, without its instance numbers)."""
    kind = op_name.astype("string").str.extract(_KIND, expand=False)
    return kind.fillna(op_name.astype("string")).fillna("?")


def _not_negative(values: np.ndarray) -> np.ndarray:
    """Negative values raised to 0 (NaN kept), as Series.clip(lower=0)."""
    return np.where(values < 0, 0.0, values)


def _op_times(ops: pd.DataFrame) -> pd.DataFrame:
    """elapse/transit/wait/idle per op with idle filled in where the export left it out."""
    elapse, transit, wait, idle = (
        _not_negative(ops[f"{c}_us"].to_numpy(dtype="float64", na_value=np.nan))
        for c in ("elapse", "transit", "wait", "idle")
    )
    derived = _not_negative(elapse - np.nan_to_num(transit, nan=0.0) - np.nan_to_num(wait, nan=0.0))
    idle = np.where(np.isnan(idle), derived, idle)
    columns = {"elapse": elapse, "transit": transit, "wait": wait, "idle": idle}
    return pd.DataFrame({c: np.nan_to_num(v, nan=0.0) for c, v in columns.items()})


def _is_p2p(ops: pd.DataFrame) -> np.ndarray:
    return ops["kind"].astype("string").str.lower().eq(P2P).fillna(False).to_numpy(dtype=bool)


def pipeline_bubble_us(rows: pd.DataFrame, ops: pd.DataFrame | None, n_steps: int) -> float:
    """Mean per-step time a pipeline stage spends waiting in its receive ops: step_trace's Bubble
    where the export recorded it, else the wait and idle of the P2P ops (their transfer is small)."""
    bubble = rows["bubble_us"].astype(float)
    if bubble.notna().any() and float(bubble.fillna(0.0).max()) > 0:
        return float(bubble.fillna(0.0).mean())
    if ops is None or ops.empty:
        return 0.0
    p2p = ops[_is_p2p(ops)]
    if p2p.empty:
        return 0.0
    times = _op_times(p2p)
    return float((times["wait"] + times["idle"]).sum()) / max(n_steps, 1)


@check(
    "communication.exposed",
    "communication",
    needs=frozenset({"step_trace"}),
    # communication.json (Level1) splits the exposed time by collective and cause; without it the
    # step split still tells how much is exposed.
    optional=frozenset({"comm_ops"}),
)
def communication_exposed(ctx: RankContext) -> list[Finding]:
    m = ctx.messages.for_device(ctx.profile.device)
    cfg = thresholds("exposed")
    rows, step_us = complete_steps(ctx.tables["step_trace"])
    mean_step = float(step_us.mean()) if len(rows) else 0.0
    if not mean_step > 0:
        raise NotEvaluated(m.t("communication.exposed.no_data"))
    steps = rows["step"].dropna().unique()
    ops = ctx.tables.get("comm_ops")
    if ops is not None and not ops.empty and len(steps) and ops["step"].notna().any():
        ops = ops[ops["step"].isin(steps)]
    total_exposed = float(rows["communication_not_overlapped_us"].mean())
    bubble = min(pipeline_bubble_us(rows, ops, len(steps)), total_exposed)
    exposed = total_exposed - bubble
    share = exposed / mean_step
    if share < cfg["min_share"]:
        return []

    rank = ctx.rank.rank
    computing = float(rows["computing_us"].mean())
    overlapped = float(rows["overlapped_us"].fillna(0.0).mean())
    hideable = max(computing - overlapped, 0.0)  # computing still free of communication
    overlap_share = overlapped / (overlapped + total_exposed) if overlapped + total_exposed > 0 else 0.0
    lines = [
        m.t(
            "communication.exposed.seen",
            rank=rank,
            exposed_ms=ms(total_exposed),
            share=total_exposed / mean_step,
            step_ms=ms(mean_step),
            computing_ms=ms(computing),
            overlapped_ms=ms(overlapped),
            overlap_share=overlap_share,
        )
    ]
    if bubble > 0:
        lines.append(m.t("communication.exposed.bubble", bubble_ms=ms(bubble), exposed_ms=ms(exposed)))

    evidence: list[Evidence] = []
    collectives = ops[~_is_p2p(ops)] if ops is not None and not ops.empty else ops
    overlapping = overlap_share >= LOW_OVERLAP
    # A PyTorch profiler trace times each collective (NCCL kernel, gloo range) whole: transfer and
    # waiting for peers are not told apart, and its duration is no idle time.
    unsplit = collectives is not None and not collectives.empty
    unsplit = unsplit and not collectives[["transit_us", "wait_us"]].notna().to_numpy().any()
    if collectives is None or collectives.empty or unsplit:
        key = "level0" if ops is None else "no_split" if unsplit else "no_ops"
        lines.append(m.t(f"communication.exposed.{key}"))
        dominant = None
        # Nothing tells wait and idle from transfer: all of it at most; the transfer that computing
        # could hide is sure where the job does not overlap yet.
        gain = Gain(exposed, mean_step, measured_us=0.0 if overlapping else min(exposed, hideable))
    else:
        times = _op_times(collectives)
        totals = times[list(CAUSES)].sum()
        whole = float(totals.sum())
        fractions = {c: (float(totals[c]) / whole if whole > 0 else 0.0) for c in CAUSES}
        split = {c: exposed * fractions[c] for c in CAUSES}
        dominant = max(CAUSES, key=lambda c: fractions[c])
        lost = split["wait"] + split["idle"]
        hidden = min(split["transit"], hideable)
        lines.append(
            m.t(
                "communication.exposed.split",
                transit_ms=ms(split["transit"]),
                transit=fractions["transit"],
                wait_ms=ms(split["wait"]),
                wait=fractions["wait"],
                idle_ms=ms(split["idle"]),
                idle=fractions["idle"],
            )
        )
        lines.append(m.t(f"communication.exposed.cause.{dominant}"))
        evidence += _op_evidence(m, collectives, times, cfg, max(len(steps), 1))
        gain = Gain(min(lost + hidden, exposed), mean_step, measured_us=lost if overlapping else None)
    key = "communication.exposed.gain" if gain.basis == MEASURED else "communication.exposed.gain.bound"
    lines.append(
        m.t(key, gain_ms=gain.ms, share=gain.share, hideable_ms=ms(hideable), overlap_share=overlap_share)
    )

    columns = ["step", "step_us", "computing_us", "overlapped_us", "communication_not_overlapped_us",
               "bubble_us", "exposed_share"]  # fmt: skip
    per_step = [
        [
            None if pd.isna(rec.step) else int(rec.step),
            evidence_cell(float(total)),
            evidence_cell(float(rec.computing_us)),
            evidence_cell(float(rec.overlapped_us)),
            evidence_cell(float(rec.communication_not_overlapped_us)),
            evidence_cell(float(rec.bubble_us)),
            round(float(rec.communication_not_overlapped_us) / total, 4) if total > 0 else None,
        ]
        for rec, total in zip(rows.itertuples(index=False), step_us, strict=True)
    ]
    evidence.insert(0, Evidence(m.t("communication.exposed.evidence.steps"), columns, per_step))

    suggestions = m.t_list("communication.exposed.suggestions.overlap")
    if dominant is not None:
        suggestions = m.t_list(f"communication.exposed.suggestions.{dominant}") + suggestions
    step_values = [int(s) for s in steps]
    return [
        finding(
            title=m.t(
                "communication.exposed.title",
                share=gain.share,
                gain_ms=gain.ms,
                cause=m.t(f"communication.exposed.cause_short.{dominant or 'unknown'}"),
            ),
            lines=lines,
            suggestions=suggestions,
            ranks=[rank],
            step=step_values[0] if len(step_values) == 1 else None,
            evidence=evidence,
            gain=gain,
        )
    ]


def _op_evidence(
    m: Messages, ops: pd.DataFrame, times: pd.DataFrame, cfg: dict[str, float], n_steps: int
) -> list[Evidence]:
    """Per collective kind (per step) and the longest single ops."""
    data = times.assign(
        kind=collective_kind(ops["op_name"]).to_numpy(),
        group=ops["group"].astype("string").fillna("").to_numpy(),
        op_name=ops["op_name"].astype("string").fillna("").to_numpy(),
        step=ops["step"].to_numpy(),
    )
    grouped = data.groupby(["kind", "group"], sort=False)
    by_kind = grouped[["elapse", "transit", "wait", "idle"]].sum().assign(ops=grouped.size())
    total = float(by_kind["elapse"].sum())
    by_kind = by_kind.sort_values("elapse", ascending=False)
    kind_rows = []
    for (kind, group), rec in zip(by_kind.index, by_kind.itertuples(index=False), strict=True):
        moving = rec.wait + rec.transit
        kind_rows.append(
            [
                kind,
                group,
                round(float(rec.ops) / n_steps, 2),
                evidence_cell(rec.elapse / n_steps),
                evidence_cell(rec.transit / n_steps),
                evidence_cell(rec.wait / n_steps),
                evidence_cell(rec.idle / n_steps),
                round(float(rec.wait / moving), 4) if moving > 0 else None,
                round(float(rec.elapse) / total, 4) if total > 0 else None,
            ]
        )
    # The longest ops, ties in table order (as nlargest).
    top = data.take(np.argsort(-data["elapse"].to_numpy(), kind="stable")[: int(cfg["top_ops"])])
    ratio = np.where((top["wait"] + top["transit"]) > 0, top["wait"] / (top["wait"] + top["transit"]), np.nan)
    top_rows = [
        [
            None if pd.isna(rec.step) else int(rec.step),
            rec.op_name,
            rec.kind,
            evidence_cell(rec.elapse),
            evidence_cell(rec.transit),
            evidence_cell(rec.wait),
            evidence_cell(rec.idle),
            evidence_cell(round(float(r), 4)),
        ]
        for rec, r in zip(top.itertuples(index=False), ratio, strict=True)
    ]
    t = m.t
    return [
        Evidence(
            t("communication.exposed.evidence.kinds"),
            [
                "collective",
                "group",
                "ops_per_step",
                "elapse_us",
                "transit_us",
                "wait_us",
                "idle_us",
                "wait_ratio",
                "share_of_communication",
            ],
            kind_rows,
        ),
        Evidence(
            t("communication.exposed.evidence.ops"),
            ["step", "op_name", "collective", "elapse_us", "transit_us", "wait_us", "idle_us", "wait_ratio"],
            top_rows,
        ),
    ]
