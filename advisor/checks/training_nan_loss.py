"""training.nan_loss: a logged loss that is NaN or infinite, Megatron's count of nan iterations, and
(from skipped_share of the iterations, knowledge/training.json) its skipped ones (fp16 loss-scale
overflows) past the loss scale's calibration (the leading skipped iterations while the scale halves). No
time gain: medium for a NaN/inf loss or nan iterations, low for skipped ones alone.

A loss of exactly 0 in zero_loss_min records or more is its own finding (medium): a language model's
cross-entropy on real data is never exactly 0, so the loss is not being computed (every label masked
with the ignore index, responses cut off by the sequence length, an empty batch), a different cause.
"""

from __future__ import annotations

import numpy as np

from ..report.model import Evidence, Finding
from .common import finding
from .knowledge import knowledge
from .registry import check
from .training_base import TRAINING_LOG, TrainingContext, rounded


@check("training.nan_loss", "training", needs=TRAINING_LOG, scope="training")
def nan_loss(ctx: TrainingContext) -> list[Finding]:
    return [*_nonfinite_loss(ctx), *_zero_loss(ctx)]


def _zero_loss(ctx: TrainingContext) -> list[Finding]:
    m, rules = ctx.messages, knowledge("training")
    records = ctx.run.log.records
    zero = records[records["loss_logged"] & (records["loss"] == 0)]
    if len(zero) < rules["zero_loss_min"]:
        return []
    step = int(zero["step"].iloc[0])
    since = records[records["step"] >= step].head(50)
    return [
        finding(
            title=m.t("training.nan_loss.zero.title", step=step),
            lines=[m.t("training.nan_loss.zero.summary", count=len(zero), records=len(records), step=step)],
            suggestions=m.t_list("training.nan_loss.zero.suggestions"),
            priority="medium",
            step=step,
            evidence=[
                Evidence(
                    m.t("training.nan_loss.zero.evidence"),
                    ["step", "loss"],
                    [[int(r.step), rounded(r.loss)] for r in since.itertuples(index=False)],
                )
            ],
        )
    ]


def _nonfinite_loss(ctx: TrainingContext) -> list[Finding]:
    m, rules = ctx.messages, knowledge("training")
    records = ctx.run.log.records
    bad = records[records["loss_logged"] & ~np.isfinite(records["loss"])]
    nan_iterations = records[records["nan_iterations"] > 0]
    # fp16's dynamic loss scale starts high and halves on each overflow: the leading skipped iterations
    # while it falls are its calibration, not a problem.
    falling = (records["loss_scale"].diff().fillna(-1) < 0) & records["loss_scale"].notna()
    calibrating = int(((records["skipped_iterations"] > 0) & falling).cumprod().sum())
    skipped = records.iloc[calibrating:]
    skipped = skipped[skipped["skipped_iterations"] > 0]
    iterations = float(records["step"].max() - records["step"].min() + 1) if len(records) else 0.0
    skipped_total = float(skipped["skipped_iterations"].sum())
    skipped_matters = iterations > 0 and skipped_total >= rules["skipped_share"] * iterations
    if bad.empty and nan_iterations.empty and not skipped_matters:
        return []
    lines, first_steps = [], []
    if not bad.empty:
        first_steps.append(int(bad["step"].iloc[0]))
        lines.append(m.t("training.nan_loss.nonfinite", count=len(bad), step=int(bad["step"].iloc[0])))
    if not nan_iterations.empty:
        first_steps.append(int(nan_iterations["step"].iloc[0]))
        lines.append(
            m.t(
                "training.nan_loss.nan_iterations",
                count=int(nan_iterations["nan_iterations"].sum()),
                step=int(nan_iterations["step"].iloc[0]),
            )
        )
    if skipped_matters:
        first_steps.append(int(skipped["step"].iloc[0]))
        lines.append(
            m.t(
                "training.nan_loss.skipped",
                count=int(skipped_total),
                share=skipped_total / iterations,
                step=int(skipped["step"].iloc[0]),
            )
        )
    rows = [
        [int(r.step), rounded(r.loss) if r.loss_logged else None, r.nan_iterations, r.skipped_iterations]
        for r in records.itertuples(index=False)
        if (r.loss_logged and not np.isfinite(r.loss)) or r.nan_iterations > 0 or r.skipped_iterations > 0
    ]
    rows = [[s, loss, _count(n), _count(k)] for s, loss, n, k in rows]
    diverged = not bad.empty or not nan_iterations.empty
    return [
        finding(
            title=m.t(
                "training.nan_loss.title" if diverged else "training.nan_loss.title_skipped",
                step=min(first_steps),
            ),
            lines=lines,
            suggestions=m.t_list("training.nan_loss.suggestions"),
            priority="medium" if diverged else "low",
            step=min(first_steps),
            evidence=[
                Evidence(
                    m.t("training.nan_loss.evidence"),
                    ["step", "loss", "nan_iterations", "skipped_iterations"],
                    rows,
                )
            ],
        )
    ]


def _count(value: float) -> int | None:
    return int(value) if np.isfinite(value) else None
