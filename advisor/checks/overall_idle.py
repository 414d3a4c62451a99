"""overall.idle: the device is idle (free time: neither computing nor communicating) for a large
share of the step.

Free time is the device waiting for the host: slow operator dispatch, synchronising calls, Python
work or data loading between launches. A small floor of free time is normal (step boundaries, a
few launch gaps); the estimated gain is the free time above that floor.
"""

from __future__ import annotations

import pandas as pd

from ..report.model import Evidence, Finding
from .cluster_slow_rank import evidence_cell, thresholds
from .common import Gain, complete_steps, finding, ms, single_step
from .registry import NotEvaluated, RankContext, check


@check("overall.idle", "overall", needs=frozenset({"step_trace"}), scope="rank")
def overall_idle(ctx: RankContext) -> list[Finding]:
    m = ctx.messages.for_device(ctx.profile.device)
    cfg = thresholds("idle")
    rows, step_us = complete_steps(ctx.tables["step_trace"])
    mean_step = float(step_us.mean()) if len(rows) else 0.0
    if not mean_step > 0:
        raise NotEvaluated(m.t("overall.idle.no_data"))
    free = float(rows["free_us"].mean())
    share = free / mean_step
    if share < cfg["min_share"]:
        return []

    floor = cfg["floor_share"] * mean_step
    gain = Gain(max(free - floor, 0.0), mean_step)
    shares = (rows["free_us"] / step_us.where(step_us > 0)).fillna(0.0)
    worst = shares.idxmax()
    rank = ctx.rank.rank
    lines = [
        m.t("overall.idle.seen", rank=rank, free_ms=ms(free), share=share, step_ms=ms(mean_step)),
        m.t(
            "overall.idle.worst",
            step=_step(rows.loc[worst, "step"]),
            free_ms=ms(float(rows.loc[worst, "free_us"])),
            share=float(shares[worst]),
        ),
    ]
    preparing = rows["preparing_us"].mean()
    if pd.notna(preparing) and preparing > floor:
        lines.append(m.t("overall.idle.preparing", preparing_ms=ms(float(preparing))))
    if ctx.profile.stages:
        lines.append(m.t("overall.idle.pipeline"))
    lines.append(m.t("overall.idle.gain", gain_ms=gain.ms, floor=cfg["floor_share"], share=gain.share))

    columns = ["step", "step_us", "computing_us", "communication_not_overlapped_us", "free_us", "free_share",
               "preparing_us"]  # fmt: skip
    evidence_rows = [
        [
            _step(step),
            *(evidence_cell(float(v)) for v in (total, computing, communication)),
            evidence_cell(float(free_us)),
            round(float(s), 4),
            evidence_cell(float(preparing)),
        ]
        for step, total, computing, communication, free_us, s, preparing in zip(
            rows["step"],
            step_us,
            rows["computing_us"],
            rows["communication_not_overlapped_us"],
            rows["free_us"],
            shares,
            rows["preparing_us"],
            strict=True,
        )
    ]
    steps = [s for s in (_step(v) for v in rows["step"]) if s is not None]
    return [
        finding(
            title=m.t("overall.idle.title", share=gain.share, gain_ms=gain.ms),
            lines=lines,
            suggestions=m.t_list("overall.idle.suggestions"),
            ranks=[rank],
            step=single_step(steps),
            gain=gain,
            evidence=[Evidence(m.t("overall.idle.evidence"), columns, evidence_rows)],
        )
    ]


def _step(value: object) -> int | None:
    return None if pd.isna(value) else int(value)
