"""training.throughput_drop: the step time of the log rises for good (a sustained drop of throughput),
or stalls now and then (checkpoint saves, evaluation, a slow node), with their period and cost.

- Sustained: the split of the records that maximises median(step time after) / median(before), each
  side at least drop_min_share of the records; a drop from drop_ratio (knowledge/training.json). Its
  cost per step over the run: (after - before) x the steps after / all steps.
- Both: a difference of one tick of the log's clock per record is its rounding, never a finding.
- Stalls: records at least stall_ratio times the median step time (outside a sustained drop), from
  stall_min of them; periodic when the spread (coefficient of variation) of the steps between them is
  under stall_period_cv. Cost: each stall's time above the median over the steps it covers.

The gain is measured (the log's own clock): per step, against the mean step time.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..report.messages import Messages
from ..report.model import Evidence, Finding
from .common import Gain, finding
from .knowledge import knowledge
from .registry import NotEvaluated, check
from .training_base import TRAINING_LOG, TrainingContext, rounded, timed_records


def sustained_split(times: pd.Series, min_side: int, cap: float) -> int:
    """The index that splits `times` into the two stretches closest to their own means (least squares,
    O(n) by cumulative sums), each at least `min_side` long; values are capped at `cap` first, so that a
    few stalls do not pass for a change of pace."""
    values = np.minimum(times.to_numpy(dtype="float64"), cap)
    count = len(values)
    splits = np.arange(min_side, count - min_side + 1)
    if not len(splits):
        return 0
    sums, squares = np.cumsum(values), np.cumsum(values**2)
    left_sum, left_sq = sums[splits - 1], squares[splits - 1]
    right_sum, right_sq = sums[-1] - left_sum, squares[-1] - left_sq
    cost = (left_sq - left_sum**2 / splits) + (right_sq - right_sum**2 / (count - splits))
    return int(splits[int(np.argmin(cost))])


@check("training.throughput_drop", "training", needs=TRAINING_LOG, scope="training")
def throughput_drop(ctx: TrainingContext) -> list[Finding]:
    m, rules = ctx.messages, knowledge("training")
    timed = timed_records(ctx.run.series).reset_index(drop=True)
    if len(timed) < rules["min_records"]:
        raise NotEvaluated(m.t("training.throughput_drop.no_step_time", count=len(timed)))
    times = timed["step_time_s"]
    total_steps = float(timed["covered"].sum())
    mean_step_us = float((times * timed["covered"]).sum() / total_steps) * 1e6
    findings = []
    min_side = max(2, int(np.ceil(rules["drop_min_share"] * len(timed))))
    # Leading slow records are the warm-up (training.warmup_dominates), neither a drop nor stalls.
    warmup = int((times >= rules["warmup_ratio"] * float(times.median())).cumprod().sum())
    timed, times = timed.iloc[warmup:].reset_index(drop=True), times.iloc[warmup:].reset_index(drop=True)
    split = sustained_split(times, min_side, rules["stall_ratio"] * float(times.median()))
    before = float(times.iloc[:split].median()) if split else 0.0
    after = float(times.iloc[split:].median())
    # A clock of whole seconds (LLaMA-Factory) reads a 5.5 s interval as 5 or 6 s: a difference of one
    # clock step per interval is the clock's rounding, not a change of pace.
    resolution_s = ctx.run.log.clock_resolution_s
    covered = float(timed["covered"].median())
    dropped = (
        split > 0 and after >= rules["drop_ratio"] * before and (after - before) * covered > resolution_s
    )
    if dropped:
        steps_after = float(timed["covered"].iloc[split:].sum())
        gain = Gain((after - before) * steps_after / total_steps * 1e6, mean_step_us)
        step = int(timed["step"].iloc[split])
        findings.append(
            finding(
                title=m.t("training.throughput_drop.title", step=step, drop=1 - before / after),
                lines=[
                    m.t(
                        "training.throughput_drop.summary",
                        step=step,
                        before_s=before,
                        after_s=after,
                        drop=1 - before / after,
                        share_after=steps_after / total_steps,
                    ),
                    m.t("training.throughput_drop.gain", gain_ms=gain.ms, share=gain.share),
                ],
                suggestions=m.t_list("training.throughput_drop.suggestions"),
                gain=gain,
                step=step,
                evidence=[_evidence(m, timed.iloc[max(0, split - 3) : split + 3], before)],
            )
        )
    usual = float(times.iloc[:split].median()) if dropped else float(times.median())
    stalls = timed[
        (times >= rules["stall_ratio"] * usual)
        & ((times - usual) * timed["covered"] > resolution_s)
        & (timed.index < (split if dropped else len(timed)))
    ]
    if len(stalls) >= rules["stall_min"]:
        spacing = stalls["step"].diff().dropna()
        periodic = len(spacing) >= 2 and float(spacing.std() / spacing.mean()) < rules["stall_period_cv"]
        extra_s = ((stalls["step_time_s"] - usual) * stalls["covered"]).clip(lower=0)
        gain = Gain(float(extra_s.sum()) / total_steps * 1e6, mean_step_us)
        step = int(stalls["step"].iloc[0])
        key = "periodic" if periodic else "irregular"
        findings.append(
            finding(
                title=m.t(
                    f"training.throughput_drop.stalls.title.{key}",
                    count=len(stalls),
                    period=spacing.median() if periodic else 0,
                    share=gain.share,
                ),
                lines=[
                    m.t(
                        f"training.throughput_drop.stalls.{key}",
                        count=len(stalls),
                        step=step,
                        period=float(spacing.median()) if periodic else 0.0,
                        cost_s=float(extra_s.mean()),
                        usual_s=usual,
                    ),
                    m.t("training.throughput_drop.gain", gain_ms=gain.ms, share=gain.share),
                ],
                suggestions=m.t_list(f"training.throughput_drop.stalls.suggestions.{key}"),
                gain=gain,
                step=step,
                evidence=[_evidence(m, stalls, usual)],
            )
        )
    return findings


def _evidence(m: Messages, records: pd.DataFrame, usual: float) -> Evidence:
    return Evidence(
        m.t("training.throughput_drop.evidence"),
        ["step", "step_time_s", "step_time_vs_median", "steps_covered"],
        [
            [int(r.step), rounded(r.step_time_s), round(float(r.step_time_s / usual), 3), int(r.covered)]
            for r in records.itertuples(index=False)
        ],
    )
