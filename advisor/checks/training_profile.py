"""training.unrepresentative_profile: with a profile analysed beside the log, the profiled step's
time against the log's median step time. A profiled step much slower than the run's usual step is
profiler overhead or a warm-up step profiled; a much faster one, a step the log never shows (another
batch size, another job). From profile_off of relative difference (knowledge/training.json), medium
from profile_off_medium. No gain: the finding says how far the profile's figures can be trusted.
"""

from __future__ import annotations

import numpy as np

from ..report.model import Evidence, Finding
from .common import finding
from .knowledge import knowledge
from .registry import NotEvaluated, check
from .training_base import TRAINING_LOG, TrainingContext


@check("training.unrepresentative_profile", "training", needs=TRAINING_LOG, scope="training")
def unrepresentative_profile(ctx: TrainingContext) -> list[Finding]:
    m, rules = ctx.messages, knowledge("training")
    if ctx.profile_step_s is None:
        raise NotEvaluated(m.t("training.unrepresentative_profile.no_profile"))
    throughput = ctx.run.throughput
    log_step_s = throughput.step_time_s if throughput is not None else None
    if log_step_s is None or not np.isfinite(log_step_s) or log_step_s <= 0:
        raise NotEvaluated(m.t("training.unrepresentative_profile.no_step_time"))
    off = ctx.profile_step_s / log_step_s - 1
    if abs(off) < rules["profile_off"]:
        return []
    key = "slower" if off > 0 else "faster"
    return [
        finding(
            title=m.t(f"training.unrepresentative_profile.title.{key}", off=abs(off)),
            lines=[
                m.t(
                    f"training.unrepresentative_profile.{key}",
                    profile_s=ctx.profile_step_s,
                    log_s=log_step_s,
                    off=abs(off),
                )
            ],
            suggestions=m.t_list(f"training.unrepresentative_profile.suggestions.{key}"),
            priority="medium" if abs(off) >= rules["profile_off_medium"] else "low",
            step=ctx.profile_step,
            evidence=[
                Evidence(
                    m.t("training.unrepresentative_profile.evidence"),
                    ["profiled_step", "profiled_step_time_s", "log_median_step_time_s", "difference_share"],
                    [[ctx.profile_step, round(ctx.profile_step_s, 6), round(log_step_s, 6), round(off, 4)]],
                )
            ],
        )
    ]
