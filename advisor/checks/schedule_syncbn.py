"""schedule.sync_batchnorm: SyncBatchNorm layers in multi-device training.

Each SyncBatchNorm forward gathers the batch statistics of every device (an all-gather and a
host-side wait) and its backward all-reduces the gradients' statistics: per layer, per step. The
framework records the module as 'SyncBatchNorm' and its statistics ops as
aten::batch_norm_gather_stats_with_counts; either one counts a layer call. Reported from 20 layer
calls per step (reference threshold) or when the device idles 1 % of the step during them.
"""

from __future__ import annotations

import re

import numpy as np

from ..report.model import Evidence, Finding
from .common import Gain, finding
from .registry import RankContext, check
from .schedule_base import (
    free_slices,
    intervals,
    mean_step_time,
    names_where,
    step_windows,
    union_overlap_ns,
    us,
)

LAYER_NAMES = re.compile(r"^(?:SyncBatchNorm|aten::batch_norm_gather_stats(?:_with_counts)?)$")
MIN_PER_STEP = 20.0
MIN_SHARE = 0.01


def _is_module(name: str) -> bool:
    return name.strip().lower() == "syncbatchnorm"


def _is_gather(name: str) -> bool:
    return LAYER_NAMES.search(name.strip()) is not None


@check("schedule.sync_batchnorm", "schedule", needs=frozenset({"host_ops", "overlap", "steps", "step_trace"}))
def sync_batchnorm(ctx: RankContext) -> list[Finding]:
    m = ctx.messages.for_device(ctx.profile.device)
    steps = step_windows(ctx.tables["steps"])
    host = ctx.tables["host_ops"]
    module = names_where(host, _is_module)
    gather = names_where(host, _is_gather) & ~module
    in_steps = steps.contains(host["start_ns"])
    # Prefer the module events (one per layer call); the gather op stands in when they are absent.
    layers = host[module & in_steps] if (module & in_steps).any() else host[gather & in_steps]
    if layers.empty:
        return []
    n_steps = steps.count
    per_step = len(layers) / n_steps
    starts, ends = intervals(layers)
    free = free_slices(ctx.tables["overlap"], steps)
    gain = Gain(us(union_overlap_ns(starts, ends, *free) / n_steps), mean_step_time(ctx))
    if per_step < MIN_PER_STEP and gain.share < MIN_SHARE:
        return []
    host_us = float(np.sum(ends - starts)) / 1000.0 / n_steps
    return [
        finding(
            title=m.t("schedule.sync_batchnorm.title", per_step=per_step, gain_ms=gain.ms, share=gain.share),
            lines=[
                m.t(
                    "schedule.sync_batchnorm.description",
                    count=len(layers),
                    steps=n_steps,
                    per_step=per_step,
                    host_ms=host_us / 1000.0,
                    idle_ms=gain.ms,
                    share=gain.share,
                ),
                m.t("schedule.sync_batchnorm.gain"),
            ],
            suggestions=m.t_list("schedule.sync_batchnorm.suggestions"),
            ranks=[ctx.rank.rank],
            step=steps.single,
            gain=gain,
            evidence=[
                Evidence(
                    m.t("schedule.sync_batchnorm.evidence"),
                    ["event", "count", "count_per_step", "host_us_per_step", "device_idle_us_per_step"],
                    [
                        [
                            str(layers["name"].iloc[0]),
                            len(layers),
                            round(per_step, 2),
                            round(host_us, 3),
                            gain.per_step_us,
                        ]
                    ],
                )
            ],
        )
    ]
