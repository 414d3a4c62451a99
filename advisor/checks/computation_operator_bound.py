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
from .common import finding
from .computation_ai_core_performance import category
from .computation_base import ai_core_kernels, as_float, gain_line, step_basis, text_or_empty, us
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


def unit_ratios(frame: pd.DataFrame) -> pd.DataFrame:
    """One column per pipe (max of the cube and vector side), NaN where the PMU gave nothing."""
    out = {}
    for unit, columns in UNITS.items():
        values = np.column_stack([as_float(frame[c]) for c in columns])
        with np.errstate(all="ignore"):
            out[unit] = np.where(
                np.isnan(values).all(axis=1), np.nan, np.nanmax(np.nan_to_num(values, nan=-1.0), axis=1)
            )
    return pd.DataFrame(out, index=frame.index)


@check(CHECK, "computation", needs=frozenset({"kernels"}), devices=NPU_ONLY)
def operator_bound(ctx: RankContext) -> list[Finding]:
    m = ctx.messages
    kernels = ctx.tables["kernels"]
    core = ai_core_kernels(kernels)
    if core.empty:
        return []
    if core[list(PMU_RATIOS)].isna().all().all():
        raise NotEvaluated(m.t(f"{CHECK}.no_pmu"))
    if core[list(MEMORY_RATIOS)].isna().all().all():
        raise NotEvaluated(m.t(f"{CHECK}.no_memory_pmu"))
    core = core[(category(core["op_type"], core["accelerator_core"]) == "").to_numpy(dtype=bool)]
    if core.empty:
        return []
    limits = knowledge("computation_thresholds")
    bound, min_us = float(limits["bound_ratio"]), float(limits["bound_min_kernel_us"])

    units = unit_ratios(core)
    busiest = units.max(axis=1, skipna=True)
    has_memory = core[list(MEMORY_RATIOS)].notna().any(axis=1)
    dur = pd.Series(as_float(core["duration_us"]), index=core.index)
    flagged = has_memory & (busiest > 0) & (busiest < bound) & (dur >= min_us)
    if not flagged.any():
        return []

    basis = step_basis(kernels)
    hits = core[flagged]
    frame = units[flagged].assign(
        name=hits["name"].astype("string").fillna(""),
        op_type=hits["op_type"].astype("string").fillna(""),
        core=hits["accelerator_core"].astype("string"),
        shapes=hits["input_shapes"].astype("string").fillna(""),
        block_dim=hits["block_dim"].astype("Float64"),
        dur=dur[flagged],
        busiest=busiest[flagged],
    )
    frame["lost"] = frame["dur"] * (1.0 - frame["busiest"] / bound)
    groups = frame.groupby(["op_type", "name", "core", "shapes"], sort=False)
    table = groups.agg(
        count=("dur", "size"),
        total=("dur", "sum"),
        lost=("lost", "sum"),
        block_dim=("block_dim", "max"),
        **{unit: (unit, "mean") for unit in UNITS},
    ).sort_values(["lost", "total"], ascending=False)
    lost = float(frame["lost"].sum())
    gain = basis.gain(lost, upper_bound=True)
    judged = int((has_memory & (busiest > 0) & (dur >= min_us)).sum())
    top_types = frame.groupby("op_type")["lost"].sum().sort_values(ascending=False)
    lines = [
        m.t(
            f"{CHECK}.seen",
            kernels=len(frame),
            judged=judged,
            min_us=min_us,
            bound=bound,
            total_us=float(frame["dur"].sum()),
            types=", ".join(map(str, top_types.index[:10])),
        ),
        m.t(f"{CHECK}.estimate", gain=gain_line(m, gain), steps=basis.n_steps, bound=bound),
    ]
    rows = []
    for (op_type, name, core_type, shapes), row in table.head(MAX_ROWS).iterrows():
        ratios = {u: (None if pd.isna(row[u]) else round(float(row[u]), 3)) for u in UNITS}
        present = {u: v for u, v in ratios.items() if v is not None}
        top = max(present, key=lambda u: present[u]) if present else ""
        rows.append(
            [
                op_type,
                name,
                core_type,
                int(row["count"]),
                us(row["total"]),
                *ratios.values(),
                top,
                None if pd.isna(row["block_dim"]) else int(row["block_dim"]),
                text_or_empty(shapes),
                us(row["lost"]),
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
