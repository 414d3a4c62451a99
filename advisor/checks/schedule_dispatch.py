"""schedule.operator_dispatch: operators compiled online while the step runs.

With jit_compile on, operators without a binary kernel go through aclopCompileAndExecute, which
compiles (AscendCL@opCompile) the first time a shape is seen, and again whenever shapes change.
Reported when such calls recur in the profiled steps: at least 20 per step (reference) or at least
1 % of the step in them (a few slow calls cost as much as many).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..report.model import Evidence, Finding
from .common import Gain, finding, share_of_step
from .registry import NPU_ONLY, RankContext, check
from .schedule_base import (
    COMPILE,
    COMPILE_EXECUTE,
    free_slices,
    intervals,
    mean_step_time,
    names_where,
    step_windows,
    union_overlap_ns,
    us,
)

MIN_PER_STEP = 20.0
MIN_SHARE = 0.01


@check(
    "schedule.operator_dispatch",
    "schedule",
    needs=frozenset({"runtime_api", "overlap", "steps", "step_trace"}),
    devices=NPU_ONLY,
)
def operator_dispatch(ctx: RankContext) -> list[Finding]:
    m = ctx.messages
    steps = step_windows(ctx.tables["steps"])
    cann = ctx.tables["runtime_api"]
    in_steps = steps.contains(cann["start_ns"])
    calls = cann[names_where(cann, {COMPILE_EXECUTE}.__contains__) & in_steps]
    compiles = cann[names_where(cann, {COMPILE}.__contains__) & in_steps]
    if calls.empty and compiles.empty:
        return []
    n_steps = steps.count
    count = len(calls) if len(calls) else len(compiles)
    per_step = count / n_steps
    total_us = float(calls["dur_us"].sum())
    compile_us = float(compiles["dur_us"].sum())
    # The whole compile-and-execute call: binary kernels (jit_compile=False) skip the compile and
    # the slower single-op path alike, even when the compile cache hits.
    cost = calls if len(calls) else compiles
    c_starts, c_ends = intervals(cost)
    free = free_slices(ctx.tables["overlap"], steps)
    step_us = mean_step_time(ctx)
    gain = Gain(us(union_overlap_ns(c_starts, c_ends, *free) / n_steps), step_us)
    cost_share = share_of_step(float(cost["dur_us"].sum()) / n_steps, step_us)
    if per_step < MIN_PER_STEP and cost_share < MIN_SHARE:
        return []
    step_of = steps.step_of(calls["start_ns"])
    per_step_calls = pd.Series(calls["dur_us"].to_numpy(dtype=np.float64)).groupby(step_of)
    counts, totals = per_step_calls.size(), per_step_calls.sum()
    step_rows = [
        [int(s) if s >= 0 else None, int(count), round(float(total), 3)]
        for s, count, total in zip(counts.index, counts, totals, strict=True)
    ]
    description = "\n".join(
        [
            m.t(
                "schedule.operator_dispatch.description",
                count=count,
                steps=n_steps,
                per_step=per_step,
                total_ms=total_us / n_steps / 1000.0,
                compile_ms=compile_us / n_steps / 1000.0,
                idle_ms=gain.ms,
                share=gain.share,
            ),
            m.t("schedule.operator_dispatch.gain"),
        ]
    )
    return [
        finding(
            title=m.t(
                "schedule.operator_dispatch.title",
                per_step=per_step,
                ms=total_us / n_steps / 1000.0,
                gain_ms=gain.ms,
                share=gain.share,
            ),
            lines=[description],
            suggestions=m.t_list("schedule.operator_dispatch.suggestions"),
            ranks=[ctx.rank.rank],
            step=steps.single,
            gain=gain,
            evidence=[
                Evidence(
                    m.t("schedule.operator_dispatch.evidence.summary"),
                    ["api", "count", "count_per_step", "total_us", "per_step_us"],
                    [
                        [
                            COMPILE_EXECUTE,
                            len(calls),
                            round(len(calls) / n_steps, 2),
                            round(total_us, 3),
                            round(total_us / n_steps, 3),
                        ],
                        [
                            COMPILE,
                            len(compiles),
                            round(len(compiles) / n_steps, 2),
                            round(compile_us, 3),
                            round(compile_us / n_steps, 3),
                        ],
                    ],
                ),
                Evidence(
                    m.t("schedule.operator_dispatch.evidence.per_step"),
                    ["step", "count", "total_us"],
                    step_rows,
                ),
            ],
        )
    ]
