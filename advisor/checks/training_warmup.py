"""training.warmup_dominates: in a short run the warm-up is a large part of what was measured.

- Time: the leading records at least warmup_ratio times slower than the median step time (graph
  compilation, caches filling, the first data loading) cost their time above the median; a finding from
  warmup_share of the run's logged time (knowledge/training.json), medium from warmup_medium_share. The
  gain is that time per step over the run, measured by the log's clock (a longer run spreads it).
- Learning rate: the logged learning rate still rises over lr_warmup_share of the logged steps or more:
  the run ended inside (or just after) its warm-up schedule, so its loss and throughput say little of
  training at full learning rate.
"""

from __future__ import annotations

import pandas as pd

from ..report.model import Evidence, Finding
from .common import Gain, finding
from .knowledge import knowledge
from .registry import NotEvaluated, check
from .training_base import TRAINING_LOG, TrainingContext, rounded, timed_records


def lr_warmup_end(series: pd.DataFrame) -> int | None:
    """The index of the record where the learning rate peaks, when it first rises (None: no warm-up)."""
    lr = series["lr"].dropna()
    if len(lr) < 2 or not lr.iloc[1] > lr.iloc[0]:
        return None
    return int(series.index.get_loc(lr.idxmax()))


@check("training.warmup_dominates", "training", needs=TRAINING_LOG, scope="training")
def warmup_dominates(ctx: TrainingContext) -> list[Finding]:
    m, rules = ctx.messages, knowledge("training")
    series = ctx.run.series.reset_index(drop=True)
    timed = timed_records(series).reset_index(drop=True)
    peak = lr_warmup_end(series)
    lines, steps = [], []
    lr_share = None
    if peak is not None:
        lr_share = float(
            (series["step"].iloc[peak] - series["step"].iloc[0]) / max(series["step"].iloc[-1], 1)
        )
        if lr_share >= rules["lr_warmup_share"]:
            steps.append(int(series["step"].iloc[0]))
            lines.append(
                m.t("training.warmup_dominates.lr", step=int(series["step"].iloc[peak]), share=lr_share)
            )
    gain = None
    rows = []
    if len(timed) >= rules["min_records"]:
        usual = float(timed["step_time_s"].median())
        slow = timed["step_time_s"] >= rules["warmup_ratio"] * usual
        leading = int(slow.cumprod().sum())  # the records slow from the first on
        extra = ((timed["step_time_s"] - usual) * timed["covered"]).iloc[:leading].clip(lower=0)
        total_s = float((timed["step_time_s"] * timed["covered"]).sum())
        share = float(extra.sum()) / total_s if total_s else 0.0
        if leading and share >= rules["warmup_share"]:
            total_steps = float(timed["covered"].sum())
            gain = Gain(float(extra.sum()) / total_steps * 1e6, total_s / total_steps * 1e6)
            steps.append(int(timed["step"].iloc[0]))
            lines.append(
                m.t(
                    "training.warmup_dominates.time",
                    records=leading,
                    last=int(timed["step"].iloc[leading - 1]),
                    warmup_s=float(extra.sum()),
                    share=share,
                    usual_s=usual,
                )
            )
            rows = [
                [int(r.step), rounded(r.step_time_s), round(float(r.step_time_s / usual), 3)]
                for r in timed.iloc[:leading].itertuples(index=False)
            ]
    elif not lines:  # the learning rate shows no long warm-up, and without step times nothing else can
        raise NotEvaluated(m.t("training.throughput_drop.no_step_time", count=len(timed)))
    if not lines:
        return []
    share = gain.share if gain is not None else 0.0
    title = "training.warmup_dominates.title" if gain is not None else "training.warmup_dominates.title_lr"
    return [
        finding(
            title=m.t(title, share=share, lr_share=lr_share or 0.0),
            lines=lines,
            suggestions=m.t_list("training.warmup_dominates.suggestions"),
            gain=gain,
            at_most="high" if share >= rules["warmup_medium_share"] else "low",
            priority="low",
            step=min(steps),
            evidence=[
                Evidence(
                    m.t("training.warmup_dominates.evidence"),
                    ["step", "step_time_s", "step_time_vs_median"],
                    rows,
                )
            ]
            if rows
            else [],
        )
    ]
