"""computation.operator_bound: long AI Core kernels that saturate no unit.

A kernel is "bound" when one pipe (cube mac, vector, scalar, mte1/mte2/mte3 data movement, fixpipe)
is busy for at least 80 % of its time; a kernel below that on every pipe waits on something else
(synchronisation between pipes, small tiles, poor tiling or core split) and is worth tuning. Every
kernel is examined (the reference looks at the first row of the file only). Kernels under 20 µs are
left out (launch-latency dominated), and so are kernels without memory-pipe ratios: an
ArithmeticUtilization PMU set has no mte ratios and cannot show that nothing is bound.
Gain = Σ duration × (1 − busiest pipe ratio / 0.8): the time saved if the kernel reached the bound
threshold on its busiest pipe.

One row per cause: MatMul, FlashAttention and vector kernels are computation.ai_core_performance's,
which judges them against their own pipes' bounds and finds the concrete causes (unaligned axes,
head dimensions); this check takes the other AI Core kernels (convolutions, custom and fused
operators). Real kernels rarely drive any pipe to 80 %, and "bound by no unit" names no cause to
change: the finding is a lead for kernel tuning, low priority whatever its upper bound.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..formats.schema import PMU_RATIOS
from ..report.model import Evidence, Finding
from .common import finding, group_rows
from .computation_ai_core_performance import kernel_categories
from .computation_base import gain_line, kernel_columns, step_basis, text_or_empty, us
from .knowledge import knowledge
from .registry import NPU_ONLY, NotEvaluated, RankContext, check

CHECK = "computation.operator_bound"
MEMORY_RATIOS = ("aic_mte2_ratio", "aiv_mte2_ratio", "aiv_mte3_ratio", "aic_mte1_ratio")
# Evidence columns: one per pipe, the cube and vector variants of scalar / mte2 merged (max).
UNITS = {
    "mac": ("aic_mac_ratio",),
    "vec": ("aiv_vec_ratio",),
    "scalar": ("aic_scalar_ratio", "aiv_scalar_ratio"),
    "mte1": ("aic_mte1_ratio",),
    "mte2": ("aic_mte2_ratio", "aiv_mte2_ratio"),
    "mte3": ("aiv_mte3_ratio",),
    "fixpipe": ("aic_fixpipe_ratio",),
}
MAX_ROWS = 50


# Every PMU ratio column this check reads, in one matrix.
RATIO_COLUMNS = list(dict.fromkeys([*PMU_RATIOS, *MEMORY_RATIOS, *(c for cs in UNITS.values() for c in cs)]))
_POSITION = {column: i for i, column in enumerate(RATIO_COLUMNS)}
PMU, MEMORY = [_POSITION[c] for c in PMU_RATIOS], [_POSITION[c] for c in MEMORY_RATIOS]


def unit_ratios(ratios: np.ndarray) -> np.ndarray:
    """One column per pipe (max of the cube and vector side, in UNITS' order) of the RATIO_COLUMNS
    matrix `ratios`, NaN where the PMU gave nothing."""
    out = np.empty((len(ratios), len(UNITS)))
    for j, columns in enumerate(UNITS.values()):
        values = ratios[:, [_POSITION[c] for c in columns]]
        with np.errstate(all="ignore"):
            out[:, j] = np.where(
                np.isnan(values).all(axis=1), np.nan, np.nanmax(np.nan_to_num(values, nan=-1.0), axis=1)
            )
    return out


@check(CHECK, "computation", needs=frozenset({"kernels"}), devices=NPU_ONLY)
def operator_bound(ctx: RankContext) -> list[Finding]:
    m = ctx.messages
    kernels = ctx.tables["kernels"]
    columns = kernel_columns(kernels)
    on_core = columns.ai_core
    if not on_core.any():
        return []
    ratios = kernels[RATIO_COLUMNS].to_numpy(dtype="float64", na_value=np.nan)
    if np.isnan(ratios[on_core][:, PMU]).all():
        raise NotEvaluated(m.t(f"{CHECK}.no_pmu"))
    if np.isnan(ratios[on_core][:, MEMORY]).all():
        raise NotEvaluated(m.t(f"{CHECK}.no_memory_pmu"))
    mine = on_core & (kernel_categories(kernels) == "")
    if not mine.any():
        return []
    limits = knowledge("computation_thresholds")
    bound, min_us = float(limits["bound_ratio"]), float(limits["bound_min_kernel_us"])

    ratios = ratios[mine]
    units = unit_ratios(ratios)
    busiest = np.fmax.reduce(units, axis=1)  # the busiest pipe; NaN only where every pipe is
    has_memory = ~np.isnan(ratios[:, MEMORY]).all(axis=1)
    dur = columns.duration_us[mine]
    judged = has_memory & (busiest > 0) & (dur >= min_us)
    flagged = judged & (busiest < bound)
    if not flagged.any():
        return []

    basis = step_basis(kernels)
    op_types = columns.op_type[mine][flagged]
    dur, busiest, units = dur[flagged], busiest[flagged], units[flagged]
    lost = dur * (1.0 - busiest / bound)
    keys = (
        op_types,
        columns.name[mine][flagged],
        columns.accelerator_core[mine][flagged],
        columns.input_shapes[mine][flagged],
    )
    codes, first = group_rows(*keys)
    # Grouped on one integer code: pandas' sums and means (compensated) as a groupby on the keys gives.
    frame = pd.DataFrame(units, columns=list(UNITS)).assign(
        dur=dur, lost=lost, block_dim=columns.block_dim[mine][flagged]
    )
    by_group = frame.groupby(codes, sort=False)
    table = pd.concat(
        [
            by_group[["dur", "lost"]].sum().set_axis(["total", "lost"], axis=1),
            by_group["block_dim"].max(),
            by_group[list(UNITS)].mean(),
        ],
        axis=1,
    ).assign(count=np.bincount(codes))
    table = table.sort_values(["lost", "total"], ascending=False)
    lost_total = float(np.nansum(lost))
    gain = basis.gain(lost_total, upper_bound=True)
    top_types = pd.Series(lost).groupby(op_types).sum().sort_values(ascending=False)
    lines = [
        m.t(
            f"{CHECK}.seen",
            kernels=len(frame),
            judged=int(judged.sum()),
            min_us=min_us,
            bound=bound,
            total_us=float(np.nansum(dur)),
            types=", ".join(map(str, top_types.index[:10])),
        ),
        m.t(f"{CHECK}.estimate", gain=gain_line(m, gain), steps=basis.n_steps, bound=bound),
    ]
    rows = []
    shown = table.head(MAX_ROWS)
    for code, count, total, group_lost, block, *means in zip(
        shown.index,
        shown["count"],
        shown["total"],
        shown["lost"],
        shown["block_dim"],
        *(shown[u] for u in UNITS),
        strict=True,
    ):
        op_type, name, core_type, shapes = (key[first[code]] for key in keys)
        ratios_of = {
            u: (None if np.isnan(v) else round(float(v), 3)) for u, v in zip(UNITS, means, strict=True)
        }
        present = {u: v for u, v in ratios_of.items() if v is not None}
        top = max(present, key=lambda u: present[u]) if present else ""
        rows.append(
            [
                op_type,
                name,
                core_type,
                int(count),
                us(total),
                *ratios_of.values(),
                top,
                None if np.isnan(block) else int(block),
                text_or_empty(shapes),
                us(group_lost),
            ]
        )
    return [
        finding(
            ranks=[ctx.rank.rank],
            gain=gain,
            title=m.t(f"{CHECK}.title", kernels=len(frame), bound=bound, gain_us=gain.per_step_us),
            lines=lines,
            suggestions=m.t_list(f"{CHECK}.suggestions"),
            at_most="low",
            evidence=[
                Evidence(
                    m.t(f"{CHECK}.evidence"),
                    [
                        "op_type",
                        "op_name",
                        "accelerator_core",
                        "count",
                        "total_us",
                        *(f"{u}_ratio" for u in UNITS),
                        "busiest_unit",
                        "block_dim",
                        "input_shapes",
                        "lost_us",
                    ],
                    rows,
                )
            ],
        )
    ]
