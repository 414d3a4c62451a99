"""computation.aicpu: operators that ran on the AI CPU instead of the AI Core.

An AI_CPU kernel is slow (scalar CPU cores) and serialises the AI Core stream around it. Op types are
flagged when one of their kernels, or their total per step, reaches 20 µs (the reference takes the
longest kernel of *any* type). Replacement advice comes from knowledge/aicpu_rules.json: per op type
(NonZero, IndexPut, …), float64 inputs, and data types the op does not support on the AI Core in
the CANN version found in the data (else the version hint). Gain = the flagged AI_CPU time per
step: the upper bound if the op moves to the AI Core, whose replacement usually costs a fraction.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..report.messages import Messages
from ..report.model import Evidence, Finding
from .common import finding
from .computation_base import as_float, gain_line, split_dtypes, step_basis, text_or_empty, us, version_in
from .knowledge import knowledge
from .registry import NPU_ONLY, RankContext, check

CHECK = "computation.aicpu"
MAX_EXAMPLES = 3


def _rules_for(version: str | None) -> list[dict[str, Any]]:
    return [
        rule
        for rule in knowledge("aicpu_rules")["dtype_rules"]
        if version_in(version, rule.get("cann_min"), rule.get("cann_max"))
    ]


def unsupported_dtypes(op_type: str, inputs: list[str], outputs: list[str], version: str | None) -> list[str]:
    """Data types of the op that its AI Core implementation does not take in this CANN version."""
    key = op_type.lower()
    bad: list[str] = []
    for rule in _rules_for(version):
        types = rule["op_types"]
        if types == "__ALL__":
            if key in rule.get("ignore", ()):
                continue
        elif key not in types:
            continue
        bad += [d for d in inputs if d not in rule["input"]]
        bad += [d for d in outputs if d not in rule["output"]]
    return list(dict.fromkeys(bad))


def op_advice(op_type: str, version: str | None) -> str | None:
    entry = knowledge("aicpu_rules")["op_advice"].get(op_type.lower())
    if entry is None or not version_in(version, entry.get("cann_min"), entry.get("cann_max")):
        return None
    return str(entry["advice"])


def _version(ctx: RankContext) -> tuple[str | None, str]:
    """The CANN version of the data, else the user's hint, and where it came from: "data", "hint" or
    "unknown" (no hint given: advice then assumes a recent CANN, as `version_in` does)."""
    if ctx.rank.versions.get("cann"):
        return ctx.rank.versions["cann"], "data"
    if ctx.options.cann_version:
        return ctx.options.cann_version, "hint"
    return None, "unknown"


@check(CHECK, "computation", needs=frozenset({"kernels"}), devices=NPU_ONLY)
def aicpu(ctx: RankContext) -> list[Finding]:
    m = ctx.messages
    kernels = ctx.tables["kernels"]
    core = kernels["accelerator_core"].astype("string").str.upper()
    mask = (core == "AI_CPU").fillna(False).to_numpy(dtype=bool)
    if not mask.any():
        return []
    basis = step_basis(kernels)
    cpu = kernels[mask]
    frame = pd.DataFrame(
        {
            "op_type": cpu["op_type"]
            .astype("string")
            .fillna(cpu["name"].astype("string"))
            .fillna("?")
            .to_numpy(),
            "name": cpu["name"].astype("string").fillna("").to_numpy(),
            "dur": as_float(cpu["duration_us"]),
            "in_shapes": cpu["input_shapes"].astype("string").to_numpy(),
            "in_dtypes": cpu["input_dtypes"].astype("string").to_numpy(),
            "out_dtypes": cpu["output_dtypes"].astype("string").to_numpy(),
        }
    )
    frame["dur"] = frame["dur"].fillna(0.0).clip(lower=0.0)
    threshold = float(knowledge("computation_thresholds")["aicpu_min_us"])
    types = frame.groupby("op_type", sort=False)["dur"].agg(["size", "sum", "max"])
    types["per_step"] = types["sum"] / basis.n_steps
    flagged = types[(types["max"] >= threshold) | (types["per_step"] >= threshold)]
    if flagged.empty:
        return []
    flagged = flagged.sort_values("sum", ascending=False)
    version, source = _version(ctx)
    version_text = version or m.t("common.cann_unknown")

    rows, suggestions, doubles = [], [], []
    for op_type, stats in flagged.iterrows():
        part = frame[frame["op_type"] == op_type]
        combos = part.groupby(["in_dtypes", "out_dtypes"], dropna=False, sort=False)["dur"].sum()
        combos = combos.sort_values(ascending=False)
        reasons: list[str] = []
        for in_text, out_text in combos.index[:MAX_EXAMPLES]:
            inputs, outputs = split_dtypes(in_text), split_dtypes(out_text)
            if "float64" in inputs + outputs and op_type not in doubles:
                doubles.append(str(op_type))
            bad = unsupported_dtypes(str(op_type), inputs, outputs, version)
            if bad:
                reasons.append(m.t(f"{CHECK}.reason.dtype", dtypes=", ".join(bad)))
                suggestions.append(
                    m.t(
                        f"{CHECK}.advice.dtype",
                        op_type=op_type,
                        dtypes=", ".join(bad),
                        version=version_text,
                    )
                )
        advice = op_advice(str(op_type), version)
        if advice is not None:
            reasons.insert(0, m.t(f"{CHECK}.reason.{advice}"))
            suggestions.append(m.t(f"{CHECK}.advice.{advice}", op_type=op_type))
        longest = part.loc[part["dur"].idxmax()]
        rows.append(
            [
                op_type,
                longest["name"],
                int(stats["size"]),
                round(float(stats["size"]) / basis.n_steps, 2),
                us(stats["sum"]),
                us(stats["per_step"]),
                us(stats["max"]),
                text_or_empty(longest["in_shapes"]),
                " | ".join(text_or_empty(i) for i, _ in combos.index[:MAX_EXAMPLES]),
                " | ".join(text_or_empty(o) for _, o in combos.index[:MAX_EXAMPLES]),
                "; ".join(dict.fromkeys(reasons)),
            ]
        )
    if doubles:
        suggestions.insert(0, m.t(f"{CHECK}.advice.double", op_types=", ".join(doubles)))
    suggestions = list(dict.fromkeys(suggestions)) + m.t_list(f"{CHECK}.suggestions")

    total = float(flagged["sum"].sum())
    gain = basis.gain(total)
    all_kernel_us = float(as_float(kernels["duration_us"]).clip(min=0.0).sum())
    lines = [
        m.t(
            f"{CHECK}.seen",
            types=len(flagged),
            kernels=int(flagged["size"].sum()),
            total_us=total,
            kernel_share=total / all_kernel_us if all_kernel_us > 0 else 0.0,
            threshold=threshold,
            names=", ".join(map(str, flagged.index[:10])),
        ),
        m.t(f"{CHECK}.version.{source}", version=version_text),
        m.t(f"{CHECK}.estimate", gain=gain_line(m, gain), steps=basis.n_steps),
    ]
    return [
        finding(
            ranks=[ctx.rank.rank],
            gain=gain,
            title=m.t(f"{CHECK}.title", types=len(flagged), per_step_us=gain.per_step_us),
            lines=lines,
            suggestions=suggestions,
            evidence=[_evidence(m, rows)],
        )
    ]


def _evidence(m: Messages, rows: list[list[Any]]) -> Evidence:
    return Evidence(
        m.t(f"{CHECK}.evidence"),
        [
            "op_type",
            "longest_op_name",
            "count",
            "count_per_step",
            "total_us",
            "per_step_us",
            "max_us",
            "input_shapes",
            "input_dtypes",
            "output_dtypes",
            "reason",
        ],
        rows,
    )
