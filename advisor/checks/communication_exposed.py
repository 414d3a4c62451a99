"""communication.exposed: communication not overlapped with computation takes a large share of the
step, with the collectives behind it and what their time is made of.

The profiler splits each communication op's elapsed time into transit (data moving), wait (Notify
waits for peers: a slow or late peer) and idle (gaps between the op's tasks: the op issued before
its inputs or its peers were ready, or its tasks launched late). The exposed time is split in the
same proportions. Recoverable per step: the wait and idle parts, plus the transit part that the
computing time not yet overlapped could hide.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..report.messages import Messages
from ..report.model import Evidence, Finding
from .cluster_slow_rank import evidence_cell, thresholds
from .common import complete_steps, ms, priority_for
from .registry import NotEvaluated, RankContext, check

CAUSES = ("transit", "wait", "idle")
_KIND = r"^(?:hcom_)?([A-Za-z0-9]+?)(?:__|_\d|$)"


def collective_kind(op_name: pd.Series) -> pd.Series:
    """'hcom_allReduce__586_0_1' -> 'allReduce' (the collective, without its instance numbers)."""
    kind = op_name.astype("string").str.extract(_KIND, expand=False)
    return kind.fillna(op_name.astype("string")).fillna("?")


def _op_times(ops: pd.DataFrame) -> pd.DataFrame:
    """elapse/transit/wait/idle per op with idle filled in where the export left it out."""
    times = pd.DataFrame(
        {c: ops[f"{c}_us"].astype(float).clip(lower=0) for c in ("elapse", "transit", "wait", "idle")}
    )
    derived = (times["elapse"] - times["transit"].fillna(0) - times["wait"].fillna(0)).clip(lower=0)
    times["idle"] = times["idle"].fillna(derived)
    return times.fillna(0.0)


@check(
    "communication.exposed",
    "communication",
    needs=frozenset({"step_trace", "comm_ops"}),
    scope="rank",
)
def communication_exposed(ctx: RankContext) -> list[Finding]:
    m = ctx.messages
    cfg = thresholds("exposed")
    rows, step_us = complete_steps(ctx.tables["step_trace"])
    mean_step = float(step_us.mean()) if len(rows) else 0.0
    if not mean_step > 0:
        raise NotEvaluated(m.t("communication.exposed.no_data"))
    exposed = float(rows["communication_not_overlapped_us"].mean())
    share = exposed / mean_step
    if share < cfg["min_share"]:
        return []

    rank = ctx.rank.rank
    computing = float(rows["computing_us"].mean())
    overlapped = float(rows["overlapped_us"].fillna(0.0).mean())
    hideable = max(computing - overlapped, 0.0)  # computing still free of communication
    lines = [
        m.t(
            "communication.exposed.seen",
            rank=rank,
            exposed_ms=ms(exposed),
            share=share,
            step_ms=ms(mean_step),
            computing_ms=ms(computing),
            overlapped_ms=ms(overlapped),
        )
    ]

    ops = ctx.tables["comm_ops"]
    steps = rows["step"].dropna().unique()
    if not ops.empty and len(steps) and ops["step"].notna().any():
        ops = ops[ops["step"].isin(steps)]
    evidence: list[Evidence] = []
    split = {c: 0.0 for c in CAUSES}
    if ops.empty:
        lines.append(m.t("communication.exposed.no_ops"))
        dominant = None
        gain = exposed  # nothing tells the parts apart: the upper bound
    else:
        times = _op_times(ops)
        totals = times[list(CAUSES)].sum()
        whole = float(totals.sum())
        fractions = {c: (float(totals[c]) / whole if whole > 0 else 0.0) for c in CAUSES}
        split = {c: exposed * fractions[c] for c in CAUSES}
        dominant = max(CAUSES, key=lambda c: fractions[c])
        gain = split["wait"] + split["idle"] + min(split["transit"], hideable)
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
        evidence += _op_evidence(m, ops, times, cfg, max(len(steps), 1))
    gain = min(gain, exposed)
    lines.append(
        m.t("communication.exposed.gain", gain_ms=ms(gain), share=gain / mean_step, hideable_ms=ms(hideable))
    )

    columns = ["step", "step_us", "computing_us", "overlapped_us", "communication_not_overlapped_us",
               "exposed_share"]  # fmt: skip
    per_step = [
        [
            None if pd.isna(rec.step) else int(rec.step),
            evidence_cell(float(total)),
            evidence_cell(float(rec.computing_us)),
            evidence_cell(float(rec.overlapped_us)),
            evidence_cell(float(rec.communication_not_overlapped_us)),
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
        Finding(
            check="communication.exposed",
            dimension="communication",
            priority=priority_for(gain / mean_step),
            title=m.t(
                "communication.exposed.title",
                share=share,
                exposed_ms=ms(exposed),
                cause=m.t(f"communication.exposed.cause_short.{dominant or 'unknown'}"),
            ),
            description="\n".join(lines),
            suggestions=suggestions,
            ranks=[rank],
            step=step_values[0] if len(step_values) == 1 else None,
            estimated_gain_us=round(gain, 3),
            evidence=evidence,
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
    by_kind = data.groupby(["kind", "group"], sort=False).agg(
        ops=("elapse", "size"), elapse=("elapse", "sum"), transit=("transit", "sum"), wait=("wait", "sum"),
        idle=("idle", "sum"),
    )  # fmt: skip
    total = float(by_kind["elapse"].sum())
    by_kind = by_kind.sort_values("elapse", ascending=False)
    kind_rows = []
    for (kind, group), rec in by_kind.iterrows():
        moving = rec["wait"] + rec["transit"]
        kind_rows.append(
            [
                kind,
                group,
                round(float(rec["ops"]) / n_steps, 2),
                evidence_cell(rec["elapse"] / n_steps),
                evidence_cell(rec["transit"] / n_steps),
                evidence_cell(rec["wait"] / n_steps),
                evidence_cell(rec["idle"] / n_steps),
                round(float(rec["wait"] / moving), 4) if moving > 0 else None,
                round(float(rec["elapse"]) / total, 4) if total > 0 else None,
            ]
        )
    top = data.nlargest(int(cfg["top_ops"]), "elapse")
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
