"""computation.ai_core_frequency: AI Core kernels that ran while the chip clocked below nominal.

The `AI Core Freq` counter is piecewise constant (a sample holds until the next one; kernels that
start before the first sample are left out). Each kernel gets the time-weighted mean frequency over its own
interval (the reference takes the minimum of every sample folded in so far, including samples that
ended before the kernel started, and has no db path). Nominal = `aic_frequency` of the device
info.json, else the highest sample. An op name is flagged when its time-weighted frequency is at
least 5 % under nominal. Time lost per kernel = duration × (1 − f / nominal): what the kernel would
save at nominal clock if its time scales with the clock (an upper bound for memory-bound kernels).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..report.model import Evidence, Finding
from .common import finding, group_rows
from .computation_base import (
    CUBE_TYPES,
    as_float,
    device_info,
    gain_line,
    kernel_columns,
    step_basis,
    us,
)
from .knowledge import knowledge
from .registry import NPU_ONLY, NotEvaluated, RankContext, check

CHECK = "computation.ai_core_frequency"
MAX_ROWS = 50


def kernel_mhz(kernels: pd.DataFrame, freq: pd.DataFrame) -> np.ndarray:
    """Time-weighted mean MHz of the counter over each kernel's [start, end] (NaN without samples)."""
    samples = freq.dropna(subset=["ts_ns", "mhz"]).sort_values("ts_ns", kind="stable")
    out = np.full(len(kernels), np.nan)
    if samples.empty or kernels.empty:
        return out
    t0 = int(samples["ts_ns"].iloc[0])
    # Relative ns as float: epoch-scale ns do not fit a float64 mantissa.
    ts = (samples["ts_ns"].astype("Int64") - t0).to_numpy(dtype="float64")
    mhz = samples["mhz"].to_numpy(dtype="float64")
    area = np.concatenate(([0.0], np.cumsum(mhz[:-1] * np.diff(ts))))  # ∫ f dt up to each sample

    def integral(t: np.ndarray) -> np.ndarray:
        i = np.searchsorted(ts, t, side="right") - 1  # >= 0: kernels start at or after the first sample
        return area[i] + mhz[i] * (t - ts[i])

    start = (kernels["start_ns"].astype("Int64") - t0).to_numpy(dtype="float64", na_value=np.nan)
    dur_ns = as_float(kernels["duration_us"]) * 1000.0
    end = start + dur_ns
    # Before the first sample the clock is unknown: such kernels are left out, not guessed.
    valid = np.isfinite(start) & np.isfinite(dur_ns) & (start >= 0)
    point = mhz[np.clip(np.searchsorted(ts, start[valid], side="right") - 1, 0, len(ts) - 1)]
    spread = dur_ns[valid]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (integral(end[valid]) - integral(start[valid])) / spread
    out[valid] = np.where(spread > 0, mean, point)  # a zero-length kernel: the sample at its start
    return out


@check(CHECK, "computation", needs=frozenset({"freq", "kernels", "device_info"}), devices=NPU_ONLY)
def ai_core_frequency(ctx: RankContext) -> list[Finding]:
    m = ctx.messages
    freq, kernels = ctx.tables["freq"], ctx.tables["kernels"]
    mhz_values = pd.to_numeric(freq["mhz"], errors="coerce") if len(freq) else pd.Series(dtype=float)
    mhz_values = mhz_values[mhz_values > 0]
    if mhz_values.empty:
        raise NotEvaluated(m.t(f"{CHECK}.no_samples"))
    device = device_info(ctx.tables["device_info"])
    if device is not None and device.aic_mhz:
        nominal, nominal_source = device.aic_mhz, m.t(f"{CHECK}.nominal.device", file=device.source)
    else:
        nominal, nominal_source = float(mhz_values.max()), m.t(f"{CHECK}.nominal.observed")
    threshold = float(knowledge("computation_thresholds")["frequency_drop_ratio"])

    columns = kernel_columns(kernels)
    chosen = columns.ai_core & kernels["start_ns"].notna().to_numpy(dtype=bool)
    if not chosen.any():
        return []
    basis = step_basis(kernels)
    mhz = kernel_mhz(kernels.loc[chosen, ["start_ns", "duration_us"]], freq[freq["mhz"] > 0])
    timed = np.flatnonzero(chosen)[~np.isnan(mhz)]  # the kernels with a known clock
    if not len(timed):
        return []
    mhz = mhz[~np.isnan(mhz)]
    dur = columns.duration_us[timed].clip(min=0.0)
    frame = pd.DataFrame(
        {
            "dur": dur,
            "mhz": mhz,
            "lost": dur * (1.0 - mhz / nominal).clip(min=0.0),
            "weighted": mhz * dur,
        }
    )
    key_columns = (columns.name[timed], columns.op_type[timed], columns.accelerator_core[timed])
    codes, first = group_rows(*key_columns)
    keys = list(zip(*(column[first] for column in key_columns), strict=True))
    # Grouped on one integer code: pandas' (compensated) sums and means as a groupby on the keys gives.
    by_group = frame.groupby(codes, sort=False)
    ops = by_group[["dur", "weighted", "lost"]].sum().rename(columns={"dur": "total"})
    total = ops["total"].to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_mhz = np.where(total > 0, ops["weighted"].to_numpy() / total, by_group["mhz"].mean().to_numpy())
    drop = (1.0 - mean_mhz / nominal).clip(min=0.0)
    ops = ops.assign(count=np.bincount(codes), mean_mhz=mean_mhz, min_mhz=by_group["mhz"].min(), drop=drop)
    flagged = ops[drop >= threshold].sort_values(["lost", "total"], ascending=False)
    if flagged.empty:
        return []

    lost_total = float(flagged["lost"].sum())
    gain = basis.gain(lost_total)
    reduced = frame[frame["mhz"] < nominal * (1.0 - threshold)]
    cube = flagged[[keys[code][2] in CUBE_TYPES for code in flagged.index]]
    lines = [
        m.t(
            f"{CHECK}.seen",
            ops=len(flagged),
            threshold=threshold,
            nominal=nominal,
            nominal_source=nominal_source,
            low=float(mhz_values.min()),
            kernels=len(reduced),
            reduced_us=float(reduced["dur"].sum()),
            core_us=float(frame["dur"].sum()),
        ),
        m.t(f"{CHECK}.cube", ops=len(cube), lost_us=float(cube["lost"].sum()))
        if len(cube)
        else m.t(f"{CHECK}.no_cube"),
        m.t(f"{CHECK}.estimate", gain=gain_line(m, gain), steps=basis.n_steps),
    ]
    # Per step, the unknown step last, as a groupby(dropna=False) orders them; plain sums, not a
    # groupby's compensated ones, as the figures have always been summed.
    step = kernels["step"].to_numpy(dtype="float64", na_value=np.nan)[timed]
    weighted, lost = frame["weighted"].to_numpy(), frame["lost"].to_numpy()
    step_rows = []
    for value in np.unique(step):
        part = np.isnan(step) if np.isnan(value) else step == value
        part_us = np.sum(dur[part])
        step_rows.append(
            [
                None if np.isnan(value) else int(value),
                us(part_us),
                round(float(np.sum(weighted[part]) / part_us), 1) if part_us > 0 else None,
                round(float(np.min(mhz[part])), 1),
                us(np.sum(lost[part])),
            ]
        )
    shown = flagged.head(MAX_ROWS)
    op_rows = [
        [
            *keys[code],
            int(count),
            us(total),
            round(float(mean), 1),
            round(float(lowest), 1),
            round(float(nominal), 1),
            round(float(decrease), 4),
            us(lost),
        ]
        for code, count, total, mean, lowest, decrease, lost in zip(
            shown.index,
            shown["count"],
            shown["total"],
            shown["mean_mhz"],
            shown["min_mhz"],
            shown["drop"],
            shown["lost"],
            strict=True,
        )
    ]
    return [
        finding(
            ranks=[ctx.rank.rank],
            gain=gain,
            title=m.t(f"{CHECK}.title", ops=len(flagged), low=float(mhz_values.min()), nominal=nominal),
            lines=lines,
            suggestions=m.t_list(f"{CHECK}.suggestions"),
            evidence=[
                Evidence(
                    m.t(f"{CHECK}.evidence.ops"),
                    [
                        "op_name",
                        "op_type",
                        "accelerator_core",
                        "count",
                        "total_us",
                        "mean_mhz",
                        "min_mhz",
                        "nominal_mhz",
                        "decrease_ratio",
                        "lost_us",
                    ],
                    op_rows,
                ),
                Evidence(
                    m.t(f"{CHECK}.evidence.steps"),
                    ["step", "ai_core_us", "mean_mhz", "min_mhz", "lost_us"],
                    step_rows,
                ),
            ],
        )
    ]
