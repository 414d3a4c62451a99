"""computation.block_dim: kernels whose block count leaves AI Cores idle.

A kernel's blocks run in waves over the cores; with `b` blocks on `c` cores the last wave keeps only
`b mod c` busy, so the share of core time used is u = b / (ceil(b / c) · c). AI_CORE kernels are
judged against the cube cores, AI_VECTOR_CORE against the vector cores and MIX_AIC against the cube
cores unless its mixed (vector) block count fills the vector cores (the reference also counts
MIX_AIC blocks against the vector cores). Kernels under 20 µs are left out: their block count
follows their (small) data. Core counts: device info.json, else the device model's table, else the
count among the family's candidates that divides the block dims of most AI_CORE time.
Gain = Σ duration × (1 − u): the time saved if the work were spread evenly over every core.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..report.messages import Messages
from ..report.model import Evidence, Finding
from .common import finding, group_rows
from .computation_base import (
    as_float,
    device_info,
    gain_line,
    kernel_columns,
    step_basis,
    text_or_empty,
    us,
)
from .knowledge import knowledge
from .registry import NPU_ONLY, RankContext, check

CHECK = "computation.block_dim"
MAX_ROWS = 50


@dataclass(frozen=True)
class Cores:
    cube: int
    vector: int | None
    source: str  # message key suffix: device / model / inferred
    detail: str


def _family(device: str | None) -> dict:
    table = knowledge("computation_devices")
    if device:
        matches = [name for name in table["families"] if device.startswith(name)]
        if matches:
            return table["families"][max(matches, key=len)]
    return table["default"]


def core_counts(ctx: RankContext, kernels: pd.DataFrame, min_us: float) -> Cores:
    info = device_info(ctx.tables["device_info"])
    if info is not None and info.ai_core_num:
        return Cores(info.ai_core_num, info.aiv_num, "device", info.source)
    device = ctx.rank.device_type
    known = knowledge("computation_devices")["devices"].get(device or "")
    if known:
        return Cores(int(known["ai_core_num"]), known.get("aiv_num"), "model", str(device))
    family = _family(device)
    candidates = [int(c) for c in family["cube_candidates"]]
    columns = kernel_columns(kernels)
    cube = columns.accelerator_core == "AI_CORE"
    blocks, dur = columns.block_dim[cube], columns.duration_us[cube]
    keep = np.isfinite(blocks) & (blocks > 0) & np.isfinite(dur) & (dur >= min_us)
    # The candidate that divides most AI_CORE time; ties keep the family's first (most common) one.
    scores = [float(dur[keep][(blocks[keep] % c) == 0].sum()) for c in candidates]
    best = candidates[int(np.argmax(scores))] if any(scores) else candidates[0]
    per_cube = int(family.get("aiv_per_cube", 0))
    return Cores(best, best * per_cube if per_cube else None, "inferred", device or "?")


def utilisation(blocks: np.ndarray, cores: np.ndarray) -> np.ndarray:
    """Share of core time in use when `blocks` run in waves over `cores`."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return blocks / (np.ceil(blocks / cores) * cores)


@check(CHECK, "computation", needs=frozenset({"kernels", "device_info"}), devices=NPU_ONLY)
def block_dim(ctx: RankContext) -> list[Finding]:
    m = ctx.messages
    kernels = ctx.tables["kernels"]
    min_us = float(knowledge("computation_thresholds")["block_dim_min_kernel_us"])
    columns = kernel_columns(kernels)
    core_type = columns.core_type
    judged_types = np.isin(core_type, ["AI_CORE", "AI_VECTOR_CORE", "MIX_AIC"])
    blocks, dur = columns.block_dim, columns.duration_us
    usable = judged_types & np.isfinite(blocks) & (blocks > 0) & np.isfinite(dur) & (dur >= min_us)
    if not usable.any():
        return []
    cores = core_counts(ctx, kernels, min_us)
    vector = cores.vector or cores.cube
    counts = np.where(core_type == "AI_VECTOR_CORE", vector, cores.cube).astype("float64")
    mix = as_float(kernels["mix_block_dim"])
    mix_fills = (core_type == "MIX_AIC") & np.isfinite(mix) & (mix > 0) & (mix % vector == 0)
    flagged = usable & (blocks % counts != 0) & ~mix_fills
    if not flagged.any():
        return []
    basis = step_basis(kernels)
    op_types, shapes = columns.op_type[flagged], columns.input_shapes[flagged]
    block, core_num, dur = blocks[flagged].astype("int64"), counts[flagged].astype("int64"), dur[flagged]
    util = utilisation(block.astype(float), core_num.astype(float))
    lost = dur * (1.0 - util)
    key_columns = (op_types, columns.name[flagged], core_type[flagged], block, core_num)
    codes, first = group_rows(*key_columns)
    keys = list(zip(*(column[first] for column in key_columns), strict=True))
    # Grouped on one integer code: pandas' (compensated) sums as a groupby on the keys gives.
    by_group = pd.DataFrame({"total": dur, "lost": lost, "mix": mix[flagged]}).groupby(codes, sort=False)
    table = (
        pd.concat([by_group[["total", "lost"]].sum(), by_group["mix"].max()], axis=1)
        .assign(count=np.bincount(codes), util=util[first], shapes=shapes[first])
        .sort_values(["lost", "total"], ascending=False)
    )
    gain = basis.gain(float(np.sum(lost)), upper_bound=True)
    types = pd.Series(lost).groupby(op_types).sum().sort_values(ascending=False)
    lines = [
        _cores_line(m, cores),
        m.t(
            f"{CHECK}.seen",
            kernels=len(dur),
            total_us=float(np.sum(dur)),
            min_us=min_us,
            types=", ".join(map(str, types.index[:10])),
        ),
        m.t(f"{CHECK}.estimate", gain=gain_line(m, gain), steps=basis.n_steps),
    ]
    shown = table.head(MAX_ROWS)
    rows = [
        [
            op_type,
            name,
            core,
            int(block),
            None if np.isnan(most_mix) else int(most_mix),
            int(num),
            int(count),
            us(total),
            round(float(used), 4),
            text_or_empty(shape),
            us(lost_us),
        ]
        for (op_type, name, core, block, num), count, total, used, most_mix, shape, lost_us in zip(
            (keys[code] for code in shown.index),
            shown["count"],
            shown["total"],
            shown["util"],
            shown["mix"],
            shown["shapes"],
            shown["lost"],
            strict=True,
        )
    ]
    return [
        finding(
            ranks=[ctx.rank.rank],
            gain=gain,
            title=m.t(
                f"{CHECK}.title", kernels=len(dur), cube=cores.cube, vector=vector, gain_us=gain.per_step_us
            ),
            lines=lines,
            suggestions=m.t_list(f"{CHECK}.suggestions"),
            evidence=[
                Evidence(
                    m.t(f"{CHECK}.evidence"),
                    [
                        "op_type",
                        "op_name",
                        "accelerator_core",
                        "block_dim",
                        "mix_block_dim",
                        "core_num",
                        "count",
                        "total_us",
                        "core_utilisation",
                        "input_shapes",
                        "lost_us",
                    ],
                    rows,
                )
            ],
        )
    ]


def _cores_line(m: Messages, cores: Cores) -> str:
    vector = cores.vector if cores.vector is not None else m.t(f"{CHECK}.no_vector")
    return m.t(f"{CHECK}.cores.{cores.source}", cube=cores.cube, vector=vector, detail=cores.detail)
