"""computation.tensor_core: GEMM and convolution kernels running in FP32 on a GPU with Tensor Cores.

A GPU since Volta (AMD: CDNA) multiplies matrices on Tensor Cores many times faster than on its
CUDA cores, but only in TF32 (Ampere and later), half types or int8: FP32 GEMMs and convolutions
(cuBLAS `sgemm`, cuDNN `scudnn` / `implicit_convolve_sgemm`, `_f32f32_f32f32_f32` xmma kernels) run
on the CUDA cores. The kernel name tells the type (knowledge/gpu.json); the GPU's name (the trace's
deviceProperties) tells whether it has Tensor Cores. The gain is a model, the FP32 time times
(1 - 1/speedup), so an upper bound (at most medium); on a GPU whose name is not recorded or not
known the finding is at most low.
"""

from __future__ import annotations

import re

import pandas as pd

from ..report.model import Evidence, Finding
from .common import Gain, finding
from .knowledge import knowledge
from .registry import GPU_ONLY, NotEvaluated, RankContext, check
from .schedule_base import mean_step_time, step_windows

TOP = 10


def _matches(names: pd.Series, pattern: str) -> pd.Series:
    return names.str.contains(pattern, flags=re.IGNORECASE, regex=True).fillna(False)


def fp32_gemm(names: pd.Series) -> pd.Series:
    """True for a GEMM/convolution kernel whose name says FP32 and no Tensor Core type or shape."""
    cfg = knowledge("gpu")["tensor_core"]
    return (
        _matches(names, cfg["gemm_or_conv"])
        & _matches(names, cfg["fp32"])
        & ~_matches(names, cfg["tensor_core_dtype"])
    )


def _tensor_cores(device_type: str | None) -> bool | None:
    """Whether the GPU named `device_type` has Tensor Cores (None: not recorded or not known)."""
    cfg = knowledge("gpu")["tensor_core"]
    if not device_type:
        return None
    if re.search(cfg["gpus_without"], device_type, flags=re.IGNORECASE):
        return False
    return True if re.search(cfg["gpus_with"], device_type, flags=re.IGNORECASE) else None


@check(
    "computation.tensor_core",
    "computation",
    needs=frozenset({"kernels", "steps", "step_trace"}),
    devices=GPU_ONLY,
)
def tensor_core(ctx: RankContext) -> list[Finding]:
    m = ctx.messages
    cfg = knowledge("gpu")["tensor_core"]
    kernels = ctx.tables["kernels"]
    if kernels.empty:
        raise NotEvaluated(m.t("computation.tensor_core.no_kernels"))
    device_type = ctx.rank.device_type
    has_tensor_cores = _tensor_cores(device_type)
    if has_tensor_cores is False:
        return []
    steps = step_windows(ctx.tables["steps"])
    kernels = kernels[steps.contains(kernels["start_ns"])]
    names = kernels["name"].astype("string")
    fp32 = kernels[fp32_gemm(names).to_numpy(dtype=bool)]
    gemm_us = float(
        kernels.loc[_matches(names, cfg["gemm_or_conv"]).to_numpy(dtype=bool), "duration_us"].sum()
    )
    n_steps = steps.count
    fp32_us = float(fp32["duration_us"].sum()) / n_steps
    step_us = mean_step_time(ctx)
    fp32_share = fp32_us / step_us if step_us else 0.0
    if fp32.empty or fp32_share < cfg["min_share"]:
        return []

    gain = Gain.upper_bound(fp32_us * (1.0 - 1.0 / cfg["speedup"]), step_us)
    fp16_only = bool(device_type and re.search(cfg["fp16_only"], device_type, flags=re.IGNORECASE))
    gpu = device_type or m.t("computation.tensor_core.unknown_gpu")
    lines = [
        m.t(
            "computation.tensor_core.seen",
            count=len(fp32),
            fp32_ms=fp32_us / 1000.0,
            share=fp32_share,
            gemm_share=float(fp32["duration_us"].sum()) / gemm_us if gemm_us else 1.0,
            gpu=gpu,
        ),
        m.t(
            "computation.tensor_core.device.known"
            if has_tensor_cores
            else "computation.tensor_core.device.unknown",
            gpu=gpu,
        ),
        m.t("computation.tensor_core.gain", gain_ms=gain.ms, share=gain.share, speedup=cfg["speedup"]),
    ]
    top = (
        fp32.groupby("name", sort=False)
        .agg(count=("name", "size"), total_us=("duration_us", "sum"), mean_us=("duration_us", "mean"))
        .reset_index()
        .sort_values("total_us", ascending=False, kind="stable")
        .head(TOP)
    )
    rows = [
        [
            r.name,
            int(r.count),
            round(r.count / n_steps, 2),
            round(r.total_us / n_steps, 3),
            round(r.mean_us, 3),
        ]
        for r in top.itertuples(index=False)
    ]
    advice = "fp16" if fp16_only else "tf32"
    return [
        finding(
            title=m.t("computation.tensor_core.title", share=fp32_share, gpu=gpu, gain_ms=gain.ms),
            lines=lines,
            suggestions=m.t_list(f"computation.tensor_core.suggestions.{advice}"),
            ranks=[ctx.rank.rank],
            step=steps.single,
            gain=gain,
            at_most="medium" if has_tensor_cores else "low",
            evidence=[
                Evidence(
                    m.t("computation.tensor_core.evidence"),
                    ["kernel", "count", "count_per_step", "total_us_per_step", "mean_us"],
                    rows,
                )
            ],
        )
    ]
