"""training.loss_divergence: the smoothed loss (training_base.smoothed) ends divergence_rise above its
minimum and the rise lasts at least divergence_min_share of the records (knowledge/training.json):
training moves away from convergence. The finding's step is the minimum, where the rise starts. No
time gain: medium.
"""

from __future__ import annotations

from ..report.model import Evidence, Finding
from .common import finding
from .knowledge import knowledge
from .registry import check
from .training_base import TRAINING_LOG, TrainingContext, finite_losses, rounded


@check("training.loss_divergence", "training", needs=TRAINING_LOG, scope="training")
def loss_divergence(ctx: TrainingContext) -> list[Finding]:
    m, rules = ctx.messages, knowledge("training")
    losses = finite_losses(ctx).reset_index(drop=True)
    smooth = losses["loss_smooth"]
    lowest = int(smooth.idxmin())
    after = len(losses) - 1 - lowest
    end = float(smooth.iloc[-1])
    floor = float(smooth.iloc[lowest])
    rise = (end - floor) / abs(floor) if floor else 0.0
    if rise < rules["divergence_rise"] or after < rules["divergence_min_share"] * len(losses):
        return []
    # The rise starts where the smoothed curve leaves the plateau around its minimum (noise makes the
    # minimum itself fall anywhere on a flat stretch).
    plateau = smooth.iloc[lowest:] <= floor + abs(floor) * rules["divergence_plateau"]
    start = int(losses["step"].iloc[lowest + int(plateau.cumprod().sum()) - 1])
    last = int(losses["step"].iloc[-1])
    return [
        finding(
            title=m.t("training.loss_divergence.title", step=start, rise=rise),
            lines=[
                m.t(
                    "training.loss_divergence.summary", step=start, floor=floor, end=end, last=last, rise=rise
                )
            ],
            suggestions=m.t_list("training.loss_divergence.suggestions"),
            priority="medium",
            step=start,
            evidence=[
                Evidence(
                    m.t("training.loss_divergence.evidence"),
                    ["step", "loss", "smoothed_loss"],
                    [
                        [int(r.step), rounded(r.loss), rounded(r.loss_smooth)]
                        for r in losses.iloc[lowest:].itertuples(index=False)
                    ],
                )
            ],
        )
    ]
