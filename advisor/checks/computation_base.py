"""Helpers shared by the computation checks (no checks here): the kernel-based step basis, device
info (the `device_info` table), knowledge files, CANN version ordering, shapes and dtypes.

The computation checks only need the kernels table, so their step basis comes from it too: the mean
per-step span of the kernels (first kernel start to last kernel end of each step). Gains are per
step: the profile-wide saving divided by the number of profiled steps.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..report.messages import Messages
from .common import Gain
from .derived import per_rank_table
from .knowledge import knowledge

# Task types that run on the AI Core (cube and vector units); AI_CPU, HCCL, DSA_SQE … do not.
AI_CORE_TYPES = ("AI_CORE", "AI_VECTOR_CORE", "MIX_AIC", "MIX_AIV")
CUBE_TYPES = ("AI_CORE", "MIX_AIC")


@dataclass(frozen=True)
class StepBasis:
    """How many steps the kernels cover and their mean device span (µs; None when unknown)."""

    n_steps: int
    step_us: float | None

    def gain(self, total_us: float, *, upper_bound: bool = False) -> Gain:
        """A profile-wide saving as a gain per step, judged against the kernels' step span;
        `upper_bound` for figures against an ideal (docs/design.md "Priority")."""
        per_step = total_us / self.n_steps if self.n_steps else total_us
        return Gain.upper_bound(per_step, self.step_us) if upper_bound else Gain(per_step, self.step_us)


@per_rank_table
def step_basis(kernels: pd.DataFrame) -> StepBasis:
    """Steps and mean per-step kernel span; a table without step ids counts as one step."""
    start = kernels["start_ns"].to_numpy(dtype="float64", na_value=np.nan)
    duration = kernels["duration_us"].to_numpy(dtype="float64", na_value=np.nan)
    timed = ~np.isnan(start) & ~np.isnan(duration)
    if not timed.any():
        return StepBasis(max(1, int(kernels["step"].nunique(dropna=True))), None)
    start = start[timed]
    end = start + duration[timed].clip(min=0.0) * 1000.0
    step = kernels["step"].to_numpy(dtype="float64", na_value=-1.0)[timed]
    steps, of_step = np.unique(step, return_inverse=True)  # sorted, as a groupby orders them
    first_start, last_end = np.full(len(steps), np.inf), np.full(len(steps), -np.inf)
    np.minimum.at(first_start, of_step, start)
    np.maximum.at(last_end, of_step, end)
    spans = (last_end - first_start) / 1000.0
    spans = spans[spans > 0]
    return StepBasis(len(steps), float(np.mean(spans)) if len(spans) else None)


def us(value: float) -> float:
    """µs rounded to the ns for evidence tables."""
    return round(float(value), 3) if math.isfinite(float(value)) else math.nan


def gain_line(m: Messages, gain: Gain) -> str:
    """'x µs per step (y % of the mean step)' in the user's language."""
    if gain.step_us:
        return m.t("computation.common.gain_share", gain_us=gain.per_step_us, share=gain.share)
    return m.t("computation.common.gain", gain_us=gain.per_step_us)


# --- device info ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceInfo:
    ai_core_num: int | None
    aiv_num: int | None
    aic_mhz: float | None
    source: str  # the file read


def device_info(table: pd.DataFrame) -> DeviceInfo | None:
    """The first entry of the first device info file (the `device_info` table); None when there is
    none. Per rank (the reference keeps the first file of any rank process-wide)."""
    first = table[table["entry"] == 0]
    if first.empty:
        return None
    row = first.iloc[0]
    return DeviceInfo(
        ai_core_num=None if pd.isna(row["ai_core_num"]) else int(row["ai_core_num"]),
        aiv_num=None if pd.isna(row["aiv_num"]) else int(row["aiv_num"]),
        aic_mhz=None if pd.isna(row["aic_mhz"]) else float(row["aic_mhz"]),
        source=str(row["source"]),
    )


# --- CANN versions ---------------------------------------------------------------------------------

_VERSION = re.compile(r"(\d+)\.(\d+)(?:\.(?:(RC)(\d+)|(\d+)))?", re.IGNORECASE)


def cann_key(version: str | None) -> tuple[int, int, int, int] | None:
    """Sortable key: 7.0.RC1 < 7.0.0 < 8.0.RC1 < 8.0.RC2 < 8.0.0 < 8.0.1; None if unparseable."""
    if not version:
        return None
    match = _VERSION.search(str(version))
    if not match:
        return None
    major, minor, rc, rc_n, patch = match.groups()
    if rc:
        return int(major), int(minor), 0, int(rc_n)
    return int(major), int(minor), 1, int(patch or 0)


def version_in(version: str | None, low: str | None = None, high: str | None = None) -> bool:
    """low <= version < high (bounds optional); an unknown version counts as the newest."""
    key = cann_key(version) or (99, 0, 1, 0)
    low_key, high_key = cann_key(low), cann_key(high)
    return (low_key is None or key >= low_key) and (high_key is None or key < high_key)


# --- shapes and dtypes -----------------------------------------------------------------------------


def parse_shapes(text: Any) -> list[list[int]]:
    """'"81920,4096;8192,512"' -> [[81920, 4096], [8192, 512]]; unparseable tensors -> []."""
    if text is None or (not isinstance(text, str) and pd.isna(text)):
        return []
    out = []
    for tensor in str(text).strip().strip('"').split(";"):
        dims = [d.strip() for d in tensor.split(",") if d.strip()]
        try:
            out.append([int(d) for d in dims])
        except ValueError:
            out.append([])
    return out


def split_dtypes(text: Any) -> list[str]:
    """'DT_BF16;FLOAT' -> ['bf16', 'float32']: lower case, DT_ prefix gone, float -> float32,
    double -> float64 (the names differ between CANN versions)."""
    if text is None or (not isinstance(text, str) and pd.isna(text)):
        return []
    aliases = knowledge("dtypes")["aliases"]
    out = []
    for item in str(text).split(";"):
        name = item.strip().lower()
        name = name[3:] if name.startswith("dt_") else name
        if name:
            out.append(aliases.get(name, name))
    return out


def dtype_bytes(name: str) -> int | None:
    return knowledge("dtypes")["bytes"].get(name)


def text_or_empty(value: Any) -> str:
    return "" if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)


@dataclass(frozen=True)
class KernelColumns:
    """The kernels table's columns that the computation checks filter and group on, converted once
    per rank (read-only arrays, shared by every check of the rank): text as Python strings ('' where
    missing), numbers as float64 (NaN where missing)."""

    core_type: np.ndarray  # accelerator_core upper-cased
    accelerator_core: np.ndarray
    op_type: np.ndarray
    name: np.ndarray
    input_shapes: np.ndarray
    input_dtypes: np.ndarray
    output_shapes: np.ndarray
    duration_us: np.ndarray
    block_dim: np.ndarray
    ai_core: np.ndarray  # ran on the AI Core (AI_CORE_TYPES) with a duration


def _read_only(values: np.ndarray) -> np.ndarray:
    values.flags.writeable = False
    return values


def _text(column: pd.Series) -> np.ndarray:
    return _read_only(column.astype("string").to_numpy(dtype=object, na_value=""))


@per_rank_table
def kernel_columns(kernels: pd.DataFrame) -> KernelColumns:
    """The rank's KernelColumns (computed by the first computation check that asks)."""
    core = kernels["accelerator_core"].astype("string")
    core_type = core.str.upper().to_numpy(dtype=object, na_value="")
    has_duration = kernels["duration_us"].notna().to_numpy(dtype=bool)
    return KernelColumns(
        core_type=_read_only(core_type),
        accelerator_core=_text(core),
        op_type=_text(kernels["op_type"]),
        name=_text(kernels["name"]),
        input_shapes=_text(kernels["input_shapes"]),
        input_dtypes=_text(kernels["input_dtypes"]),
        output_shapes=_text(kernels["output_shapes"]),
        duration_us=_read_only(as_float(kernels["duration_us"])),
        block_dim=_read_only(as_float(kernels["block_dim"])),
        ai_core=_read_only(np.isin(core_type, AI_CORE_TYPES) & has_duration),
    )


def as_float(series: pd.Series) -> np.ndarray:
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
