"""computation.pp_stage_imbalance: pipeline stages that compute unequal amounts per step.

A pipeline runs at the pace of its slowest stage: the other stages idle (bubble or free time) while
it computes. A stage's computing time per step is that of its busiest profiled rank (the reference's
stage rows take the same column-wise max). Imbalance = slowest stage - mean of the stages: the time
the slowest stage would shed if the layers were spread evenly.
"""

from __future__ import annotations

import numpy as np

from ..report.model import Evidence, Finding
from .cluster_slow_rank import NO_STAGE, evidence_cell, rank_steps, thresholds
from .common import Gain, finding, ms, single_step
from .registry import ClusterContext, NotEvaluated, check


@check("computation.pp_stage_imbalance", "cluster", needs=frozenset({"step_trace"}), scope="cluster")
def pp_stage_imbalance(ctx: ClusterContext) -> list[Finding]:
    m = ctx.messages.for_device(ctx.profile.device)
    if len(ctx.profile.stages) < 2:
        raise NotEvaluated(m.t("computation.pp_stage_imbalance.no_stages"))
    cfg = thresholds("pp_stage_imbalance")
    rows = rank_steps(ctx)
    rows = rows[rows["stage"] != NO_STAGE] if not rows.empty else rows
    if rows.empty or rows["stage"].nunique() < 2:
        raise NotEvaluated(m.t("computation.pp_stage_imbalance.no_data"))

    rows = rows.assign(bubble_or_free_us=rows["bubble_us"].fillna(0.0) + rows["free_us"])
    stages = rows.groupby(["step", "stage"]).agg(
        ranks=("rank", "nunique"),
        computing_us=("computing_us", "max"),
        slowest_rank=("computing_us", lambda s: int(rows.loc[s.idxmax(), "rank"])),
        bubble_us=("bubble_us", "mean"),
        idle_us=("bubble_or_free_us", "mean"),
        step_us=("step_us", "max"),
    )
    stages = stages.reset_index()
    # Only steps where at least two stages have data can show an imbalance.
    counts = stages.groupby("step")["stage"].transform("nunique")
    stages = stages[counts >= 2]
    if stages.empty:
        raise NotEvaluated(m.t("computation.pp_stage_imbalance.no_data"))
    per_step = stages.groupby("step").agg(
        max_us=("computing_us", "max"), mean_us=("computing_us", "mean"), step_us=("step_us", "max")
    )
    per_step["imbalance_us"] = per_step["max_us"] - per_step["mean_us"]
    imbalance = float(per_step["imbalance_us"].mean())
    step_us = float(per_step["step_us"].median())
    means = stages.groupby("stage").agg(
        computing_us=("computing_us", "mean"),
        bubble_us=("bubble_us", "mean"),
        idle_us=("idle_us", "mean"),
        step_us=("step_us", "mean"),
        ranks=("ranks", "max"),
        slowest_rank=("slowest_rank", lambda s: int(s.mode().iloc[0])),
    )
    means["idle_share"] = np.where(means["step_us"] > 0, means["idle_us"] / means["step_us"], 0.0)
    means["bubble_share"] = np.where(means["step_us"] > 0, means["bubble_us"] / means["step_us"], np.nan)
    slow_stage = int(means["computing_us"].idxmax())
    fast_stage = int(means["computing_us"].idxmin())
    bubble_share = float(means["bubble_share"].max()) if means["bubble_share"].notna().any() else 0.0

    material = imbalance >= cfg["min_gap_share"] * step_us
    bubbly = bubble_share >= cfg["bubble_share"]
    if not (material or bubbly):
        return []

    lines = [
        m.t(
            "computation.pp_stage_imbalance.method",
            stages=len(means),
            gap=cfg["min_gap_share"],
        )
    ]
    for stage, rec in means.iterrows():
        lines.append(
            m.t(
                "computation.pp_stage_imbalance.stage_line",
                stage=int(stage),
                ranks=", ".join(str(r) for r in ctx.profile.stages[int(stage)]),
                computing_ms=ms(rec["computing_us"]),
                rank=int(rec["slowest_rank"]),
                idle_ms=ms(rec["idle_us"]),
                idle_share=rec["idle_share"],
            )
        )
    measured = imbalance if material else 0.0
    bubble_gain = 0.0
    if material:
        lines.append(
            m.t(
                "computation.pp_stage_imbalance.imbalance",
                slow=slow_stage,
                fast=fast_stage,
                imbalance_ms=ms(imbalance),
                share=imbalance / step_us if step_us > 0 else 0.0,
            )
        )
    if bubbly:
        # Bubble share ~ (p - 1) / (m + p - 1): doubling the micro-batches roughly halves it. With
        # unbalanced stages, much of the bubble is the fast stages waiting for the slow one, which
        # the imbalance already counts: the micro-batch estimate is only for balanced stages.
        if material:
            lines.append(m.t("computation.pp_stage_imbalance.bubble.imbalance", share=bubble_share))
        else:
            bubble_gain = float(means["bubble_us"].max()) / 2
            lines.append(
                m.t("computation.pp_stage_imbalance.bubble", share=bubble_share, gain_ms=ms(bubble_gain))
            )
    # The imbalance is measured; what more micro-batches would save of the bubble is a model's figure.
    gain = Gain(measured + bubble_gain, step_us, measured_us=measured)
    lines.append(m.t("computation.pp_stage_imbalance.gain", gain_ms=gain.ms, share=gain.share))

    if material:
        title = m.t(
            "computation.pp_stage_imbalance.title.imbalance",
            slow=slow_stage,
            imbalance_ms=ms(imbalance),
            gain_ms=gain.ms,
            share=gain.share,
        )
    else:
        title = m.t(
            "computation.pp_stage_imbalance.title.bubble",
            bubble_share=bubble_share,
            gain_ms=gain.ms,
            share=gain.share,
        )
    suggestions = (
        m.t_list("computation.pp_stage_imbalance.suggestions.imbalance", slow=slow_stage) if material else []
    )
    if bubbly:
        suggestions += m.t_list("computation.pp_stage_imbalance.suggestions.bubble")

    columns = ["step", "stage", "ranks", "computing_us", "slowest_rank", "bubble_us", "idle_us", "step_us"]
    table = stages.sort_values(["step", "stage"])[columns]
    evidence_rows = [[evidence_cell(v) for v in rec] for rec in table.itertuples(index=False, name=None)]
    stage_columns = ["stage", "ranks", "slowest_rank", "computing_us", "bubble_us", "idle_us", "step_us",
                     "bubble_share", "idle_share"]  # fmt: skip
    stage_rows = [
        [int(stage), *(evidence_cell(rec[c]) for c in stage_columns[1:7]),
         *(evidence_cell(round(float(rec[c]), 4)) for c in stage_columns[7:])]
        for stage, rec in means.iterrows()
    ]  # fmt: skip
    steps = sorted(int(s) for s in per_step.index if s >= 0)
    slow_ranks = sorted(ctx.profile.stages[slow_stage]) if material else []
    return [
        finding(
            title=title,
            lines=lines,
            suggestions=suggestions,
            ranks=[r for r in slow_ranks if r in ctx.tables],
            step=single_step(steps),
            evidence=[
                Evidence(m.t("computation.pp_stage_imbalance.evidence.stages"), stage_columns, stage_rows),
                Evidence(m.t("computation.pp_stage_imbalance.evidence"), columns, evidence_rows),
            ],
            gain=gain,
        )
    ]
