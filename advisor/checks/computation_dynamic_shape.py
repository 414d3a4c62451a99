"""computation.dynamic_shape: dynamic-shape operators that are compiled online during the steps.

With CANN >= 8.0 kernel_details.csv marks each kernel `static` or `dynamic` (OP State). "dynamic" on
its own is harmless: binary (precompiled) kernels, which torch_npu runs with jit_compile=False,
are all reported dynamic. The cost appears when operators are compiled while training
(`aclopCompileAndExecute` in the CANN API): so a finding needs dynamic kernels *and* online
compilation. A missing or all-empty OP State column is no evidence either way (the reference
reports "all operators dynamic" then). Gain = the compile time per step, during which the device
waits for the kernel.
"""

from __future__ import annotations

import pandas as pd

from ..report.model import Evidence, Finding
from .common import finding
from .computation_base import as_float, gain_line, step_basis, us
from .registry import NPU_ONLY, NotEvaluated, RankContext, check

CHECK = "computation.dynamic_shape"
COMPILE_API = "aclopCompileAndExecute"
MAX_ROWS = 30


@check(CHECK, "computation", needs=frozenset({"kernels", "runtime_api"}), devices=NPU_ONLY)
def dynamic_shape(ctx: RankContext) -> list[Finding]:
    m = ctx.messages
    kernels, cann = ctx.tables["kernels"], ctx.tables["runtime_api"]
    state = kernels["op_state"].astype("string").str.strip().str.lower().fillna("").to_numpy(dtype=object)
    known = (state != "") & (state != "n/a")
    if not known.any():
        raise NotEvaluated(m.t(f"{CHECK}.no_op_state"))
    dynamic_mask = state == "dynamic"
    if not dynamic_mask.any():
        return []
    name = cann["name"].astype("string")
    compiles = cann[name.str.endswith(COMPILE_API).fillna(False).to_numpy(dtype=bool)]
    if compiles.empty:
        return []  # dynamic binary kernels, nothing compiled while profiling: no cost seen

    basis = step_basis(kernels)
    compile_us = float(as_float(compiles["dur_us"]).clip(min=0.0).sum())
    gain = basis.gain(
        compile_us, upper_bound=True
    )  # host compile time: what the device loses of it is schedule.operator_dispatch's measure
    dynamic = kernels[dynamic_mask]
    n_known = int(known.sum())
    types = (
        pd.Series(as_float(dynamic["duration_us"]))
        .groupby(dynamic["op_type"].astype("string").fillna("?").to_numpy(dtype=object))
        .agg(["size", "sum"])
        .sort_values("sum", ascending=False)
        .head(MAX_ROWS)
    )
    lines = [
        m.t(
            f"{CHECK}.seen",
            dynamic=len(dynamic),
            known=n_known,
            share=len(dynamic) / n_known,
            compiles=len(compiles),
            per_step=len(compiles) / basis.n_steps,
            compile_us=compile_us,
        ),
        m.t(f"{CHECK}.estimate", gain=gain_line(m, gain), steps=basis.n_steps),
    ]
    return [
        finding(
            ranks=[ctx.rank.rank],
            gain=gain,
            title=m.t(f"{CHECK}.title", per_step=len(compiles) / basis.n_steps, gain_us=gain.per_step_us),
            lines=lines,
            suggestions=m.t_list(f"{CHECK}.suggestions"),
            evidence=[
                Evidence(
                    m.t(f"{CHECK}.evidence.summary"),
                    [
                        "dynamic_kernels",
                        "kernels_with_op_state",
                        "compile_calls",
                        "compile_calls_per_step",
                        "compile_us",
                        "compile_us_per_step",
                    ],
                    [
                        [
                            len(dynamic),
                            n_known,
                            len(compiles),
                            round(len(compiles) / basis.n_steps, 2),
                            us(compile_us),
                            us(gain.per_step_us),
                        ]
                    ],
                ),
                Evidence(
                    m.t(f"{CHECK}.evidence.types"),
                    ["op_type", "dynamic_kernels", "total_us"],
                    [
                        [t, int(size), us(total)]
                        for t, size, total in zip(types.index, types["size"], types["sum"], strict=True)
                    ],
                ),
            ],
        )
    ]
