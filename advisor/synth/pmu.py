"""Realistic PMU busy ratios (`SynthSpec(pmu="realistic")`): each kernel draws every pipe's ratio from
its kind's range, so that, as in real profiles, few kernels drive any pipe above 0.8.

Where the ranges come from:
* reference-advisor.md §2.8/§2.11: the reference calls a kernel bound at mac >= 0.8 (cube),
  mte2 >= 0.95 (cube) or 0.8 (FlashAttention), vec/mte2/mte3 >= 0.7 (vector): well-tuned kernels sit
  just under those bounds, ordinary ones clearly below.
* The corpus recording (ascend-text-level1-2rank, kernel_details.csv of a 910B CNN): the busiest
  pipe has a median of 0.56 (10-90 % range 0.29-0.84) and 86 % of the kernels stay at or under 0.8;
  Conv2D runs mac 0.52-0.85 (its mte1/mte2 0.4-0.9), Conv2DBackpropFilter mac 0.65-0.84, MatMulV2
  with 32 rows (batch 32 against 4096-9216 columns) is mte2-bound (0.97-0.98, mac 0.15-0.2), vector
  kernels run vec 0.0-0.55 (median 0.06), scalar 0.2, mte2 0.28 (10-90 %: 0.06-0.67), mte3 0.17,
  and the pure copies (ForeachAddList, ForeachMulScalar) mte2 0.91-0.99.
* LLM kernels (bf16 GEMMs at 4096x4096 and more, fused RmsNorm/SwiGlu/rotary, FlashAttention) are
  larger than the corpus' fp32 CNN ones: their mac and vec ratios are set higher (MatMul mac 0.5-0.8,
  FlashAttention 0.5-0.75 on its busiest pipe, vector vec 0.2-0.6 with mte2 0.3-0.75), memory-bound
  vector kernels (Add, RmsNorm, rotary, optimizer updates, BN update) mte2 up to 0.85.
"""

from __future__ import annotations

import random

from .plan import Kernel

Range = tuple[float, float]
CUBE_PIPES = ("mac", "scalar", "mte1", "mte2", "fixpipe")  # the order of pmu()'s aic_ columns
VECTOR_PIPES = ("vec", "scalar", "mte2", "mte3")  # and of its aiv_ columns
RANGES: dict[str, dict[str, Range]] = {
    "matmul": {"mac": (0.5, 0.8), "scalar": (0.05, 0.25), "mte1": (0.3, 0.6), "mte2": (0.35, 0.7),
               "fixpipe": (0.02, 0.2)},
    # Few rows against a long K: the weights stream through once and the cube waits on mte2.
    "matmul_mte2": {"mac": (0.15, 0.45), "scalar": (0.1, 0.35), "mte1": (0.15, 0.4), "mte2": (0.8, 0.93),
                    "fixpipe": (0.0, 0.05)},
    "conv": {"mac": (0.55, 0.8), "scalar": (0.3, 0.55), "mte1": (0.4, 0.75), "mte2": (0.4, 0.78),
             "fixpipe": (0.05, 0.15)},
    "fa_cube": {"mac": (0.5, 0.75), "scalar": (0.1, 0.3), "mte1": (0.3, 0.55), "mte2": (0.35, 0.65),
                "fixpipe": (0.1, 0.35)},
    "fa_vector": {"vec": (0.35, 0.6), "scalar": (0.1, 0.25), "mte2": (0.1, 0.3), "mte3": (0.1, 0.3)},
    "vector": {"vec": (0.2, 0.6), "scalar": (0.05, 0.3), "mte2": (0.3, 0.75), "mte3": (0.15, 0.5)},
    "vector_memory": {"vec": (0.1, 0.35), "scalar": (0.05, 0.2), "mte2": (0.55, 0.85), "mte3": (0.3, 0.6)},
    # computation.operator_bound's kernels: no pipe near its bound.
    "unbound_cube": dict.fromkeys(CUBE_PIPES, (0.1, 0.45)),
    "unbound_vector": dict.fromkeys(VECTOR_PIPES, (0.1, 0.45)),
}  # fmt: skip
MTE2_BOUND_ROWS = 256  # a MatMul with fewer rows (first input's first axis) is mte2-bound


def categories(kernel: Kernel) -> tuple[str | None, str | None]:
    """The RANGES keys of the kernel's cube and vector pipes (None: that core does not run it)."""
    tpl = kernel.tpl
    if tpl.core == "AI_CPU":
        return None, None
    cube_core = tpl.core in ("AI_CORE", "MIX_AIC")
    vector_core = tpl.core != "AI_CORE"
    if kernel.bound == "none":
        return ("unbound_cube" if cube_core else None), ("unbound_vector" if vector_core else None)
    if tpl.type.startswith("FlashAttention"):
        return "fa_cube", "fa_vector"
    if not cube_core:
        return None, "vector_memory" if kernel.bound in ("mte2", "mte3") else "vector"
    if tpl.type.startswith("Conv2D"):
        cube = "conv"
    else:
        rows = int(tpl.inputs.split(";")[0].split(",")[0])
        # computation.ai_core_performance's unaligned MatMuls are MTE2-bound whatever their rows.
        cube = "matmul_mte2" if rows < MTE2_BOUND_ROWS or kernel.bound == "mte2" else "matmul"
    return cube, ("vector" if vector_core else None)


def draw(kernel: Kernel, stream: random.Random) -> tuple[list[float], list[float]]:
    """Cube and vector ratios in pmu()'s column order, each uniform in its range (empty: not run)."""
    cube, vector = categories(kernel)
    return (
        [stream.uniform(*RANGES[cube][p]) for p in CUBE_PIPES] if cube else [],
        [stream.uniform(*RANGES[vector][p]) for p in VECTOR_PIPES] if vector else [],
    )
