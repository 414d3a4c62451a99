"""training.loss_spike: records whose residual above the smoothed loss (training_base.smoothed)
exceeds spike_mad_z robust standard deviations of the residuals and spike_min_rise of the smoothed
value (knowledge/training.json); consecutive ones are one spike. Each is listed with its step time
against the median: a spike that lines up with a slow step points at the data or the hardware of that
step. No time gain (the loss is not time): low, medium from spike_medium_rise.
"""

from __future__ import annotations

import numpy as np

from ..report.model import Evidence, Finding
from .common import finding
from .knowledge import knowledge
from .registry import check
from .training_base import (
    TRAINING_LOG,
    TrainingContext,
    finite_losses,
    robust_sigma,
    rounded,
    smoothing_width,
)


@check("training.loss_spike", "training", needs=TRAINING_LOG, scope="training")
def loss_spike(ctx: TrainingContext) -> list[Finding]:
    m, rules = ctx.messages, knowledge("training")
    losses = finite_losses(ctx)
    residual = losses["loss"] - losses["loss_smooth"]
    sigma = robust_sigma(residual)
    rise = residual / losses["loss_smooth"].abs()
    spiking = (residual > rules["spike_mad_z"] * sigma) & (rise > rules["spike_min_rise"])
    # At either end the centred median sees one side only: a steep early descent would read as spikes.
    edge = smoothing_width(len(losses)) // 2
    spiking.iloc[:edge] = False
    spiking.iloc[len(spiking) - edge :] = False
    if not spiking.any():
        return []
    # Consecutive spiking records are one spike: its peak and its first step.
    run_id = (spiking != spiking.shift()).cumsum()[spiking]
    median_time = ctx.run.series["step_time_s"].median()
    rows = []
    for _, group in losses[spiking].groupby(run_id):
        peak = group.loc[rise[group.index].idxmax()]
        time = peak["step_time_s"]
        rows.append(
            [
                int(group["step"].iloc[0]),
                rounded(peak["loss"]),
                rounded(peak["loss_smooth"]),
                round(float(rise[peak.name]), 4),
                rounded(time),
                round(float(time / median_time), 3) if np.isfinite(time) and median_time > 0 else None,
            ]
        )
    largest = max(row[3] for row in rows)
    steps = ", ".join(f"{row[0]:,}" for row in rows[:10])
    return [
        finding(
            title=m.tn("training.loss_spike.title", len(rows), rise=largest, step=rows[0][0]),
            lines=[
                m.t(
                    "training.loss_spike.summary",
                    count=len(rows),
                    steps=steps,
                    z=rules["spike_mad_z"],
                    sigma=sigma,
                    rise=largest,
                ),
                m.t("training.loss_spike.slow_steps", count=sum(1 for r in rows if (r[5] or 0) >= 1.5)),
            ],
            suggestions=m.t_list("training.loss_spike.suggestions"),
            priority="medium" if largest >= rules["spike_medium_rise"] else "low",
            step=rows[0][0],
            evidence=[
                Evidence(
                    m.t("training.loss_spike.evidence"),
                    ["step", "loss", "smoothed_loss", "rise_share", "step_time_s", "step_time_vs_median"],
                    rows,
                )
            ],
        )
    ]
