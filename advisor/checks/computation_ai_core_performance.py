"""computation.ai_core_performance: MatMul, FlashAttention and vector kernels with poor efficiency.

Kernels are grouped by (name, input shapes, input dtypes); a group is examined when it takes at least
1 % of the kernel time (or 1 s). Per category (reference-advisor.md §2.11, thresholds in
knowledge/ai_core_performance.json):
* cube (MatMul): inner axis of the first two ND inputs not a multiple of 256 bytes (inefficient GM
  moves / ND→NZ conversion), unless the cube is saturated anyway; bound by mac ≥ 0.8 or mte2 ≥ 0.95;
* FlashAttention: head dim D and sequence length S not multiples of 128 (layouts BSH/SBH/BNSD/BSND
  and TND for varlen); forward bound by mte2 ≥ 0.8 or vec ≥ 0.75, backward mte2 ≥ 0.8 or
  fixpipe ≥ 0.75 (the reference labels the mte2 bound "mac");
* vector: vec+mte2+mte3 ≥ 0.9, or one of them ≥ 0.7.
Not bound: optimisation space = 1 − max(ratio / bound). A finding needs an unaligned group or one
with at least 10 % space. Gain = Σ duration × space over the groups that are not bound: the time
saved if they reached their bound (this overlaps computation.operator_bound for the same kernels).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..report.messages import Messages
from ..report.model import Evidence, Finding
from .common import finding, group_rows
from .computation_base import (
    CUBE_TYPES,
    dtype_bytes,
    gain_line,
    kernel_columns,
    parse_shapes,
    split_dtypes,
    step_basis,
    text_or_empty,
    us,
)
from .derived import per_rank_table
from .knowledge import knowledge
from .registry import NPU_ONLY, NotEvaluated, RankContext, check

CHECK = "computation.ai_core_performance"
RATIOS = {
    "mac": "aic_mac_ratio",
    "mte2": "aic_mte2_ratio",
    "fixpipe": "aic_fixpipe_ratio",
    "vec": "aiv_vec_ratio",
    "vec_mte2": "aiv_mte2_ratio",
    "vec_mte3": "aiv_mte3_ratio",
}
CATEGORIES = ("cube", "fa", "vector")
VECTOR_TYPES = ("AI_VECTOR_CORE", "MIX_AIV")


def category(op_type: np.ndarray, core_type: np.ndarray) -> np.ndarray:
    """'cube', 'fa', 'vector' or '' per kernel, from its op type and upper-cased core type."""
    out = []
    for kind, core in zip(op_type, core_type, strict=True):
        kind = kind.lower()
        if kind.startswith("flashattentionscore"):
            out.append("fa")
        elif "matmul" in kind and core in CUBE_TYPES:
            out.append("cube")
        elif core in VECTOR_TYPES:
            out.append("vector")
        else:
            out.append("")
    return np.asarray(out, dtype=object)


@per_rank_table
def kernel_categories(kernels: pd.DataFrame) -> np.ndarray:
    """`category` of every kernel of the rank (this check's and computation.operator_bound's)."""
    columns = kernel_columns(kernels)
    return category(columns.op_type, columns.core_type)


def bound_or_space(limits: dict[str, float], ratios: dict[str, float]) -> tuple[str | None, float]:
    """('mte2', 0) when a pipe reaches its bound (several joined by '+'), else (None, space)."""
    hit = [unit for unit, limit in limits.items() if ratios.get(unit, np.nan) >= limit]
    if hit:
        return "+".join(hit), 0.0
    usage = [ratios[u] / limit for u, limit in limits.items() if np.isfinite(ratios.get(u, np.nan))]
    return None, float(max(0.0, 1.0 - max(usage))) if usage else np.nan


def cube_alignment(shapes: str, dtypes: str, align: int) -> list[str]:
    """Inputs (of the first two) whose inner axis is not `align`-byte aligned, as 'input0 (15365 × 2 B)'."""
    tensors, types = parse_shapes(shapes), split_dtypes(dtypes)
    out = []
    for i, dims in enumerate(tensors[:2]):
        if not 2 <= len(dims) <= 3:  # 1-D bias or 4-D fractal (NZ) layouts are aligned by construction
            continue
        size = dtype_bytes(types[i]) if i < len(types) else None
        if size and (dims[-1] * size) % align:
            out.append(f"input{i} ({dims[-1]} × {size} B)")
    return out


def fa_dims(name: str, shapes: str, out_shapes: str) -> tuple[int | None, int | None]:
    """(head dim D, sequence length S) of a FlashAttention kernel, None where the layout hides it."""
    inputs, outputs = parse_shapes(shapes), parse_shapes(out_shapes)
    query = inputs[0] if inputs else []
    if "varlen" in name.lower():  # TND
        return (query[2] if len(query) == 3 else None), None
    stats = outputs[0] if outputs else []  # softmax max/sum: (B, N, S, 8)
    heads = stats[1] if len(stats) == 4 else None
    seq = stats[2] if len(stats) == 4 else None
    if len(query) == 4:
        return query[3], seq
    if len(query) == 3 and heads:
        return (query[2] // heads if query[2] % heads == 0 else None), seq
    return None, seq


@check(CHECK, "computation", needs=frozenset({"kernels"}), devices=NPU_ONLY)
def ai_core_performance(ctx: RankContext) -> list[Finding]:
    m = ctx.messages
    kernels = ctx.tables["kernels"]
    cfg = knowledge("ai_core_performance")
    columns = kernel_columns(kernels)
    kind = kernel_categories(kernels)
    duration = columns.duration_us
    mask = (kind != "") & np.isfinite(duration)
    if not mask.any():
        return []
    ratio_values = kernels[list(RATIOS.values())].to_numpy(dtype="float64", na_value=np.nan)[mask]
    if np.isnan(ratio_values).all():
        raise NotEvaluated(m.t(f"{CHECK}.no_pmu"))
    all_us = float(np.nansum(duration.clip(min=0.0)))
    cat, op_types, dur = kind[mask], columns.op_type[mask], duration[mask]
    key_columns = (
        cat,
        op_types,
        columns.name[mask],
        columns.input_shapes[mask],
        columns.input_dtypes[mask],
        columns.output_shapes[mask],
    )
    codes, first = group_rows(*key_columns)
    keys = list(zip(*(column[first] for column in key_columns), strict=True))
    # Grouped on one integer code: pandas' sums and means (compensated) as a groupby on the keys gives.
    frame = pd.DataFrame(ratio_values, columns=list(RATIOS)).assign(dur=dur)
    by_group = frame.groupby(codes, sort=False)
    totals = by_group["dur"].sum().to_numpy()
    means = by_group[list(RATIOS)].mean().to_numpy()
    counts_of = np.bincount(codes)
    is_vector = cat == "vector"
    if is_vector.any():  # vector types qualify by their whole share, as the reference
        type_share = pd.Series(dur[is_vector]).groupby(op_types[is_vector]).sum()
        keep_types = set(
            type_share[(type_share >= cfg["min_group_share"] * all_us) | (type_share >= 1e6)].index
        )
    else:
        keep_types = set()
    big = (totals >= cfg["min_group_share"] * all_us) | (totals >= cfg["min_group_us"])

    rows: list[dict[str, Any]] = []
    for code, (cat, op_type, name, shapes, dtypes, out_shapes) in enumerate(keys):
        if not (op_type in keep_types if cat == "vector" else big[code]):
            continue
        ratios = dict(zip(RATIOS, map(float, means[code]), strict=True))
        kernel_us = float(totals[code])
        issues: list[str] = []
        if cat == "cube":
            bound, space = bound_or_space(cfg["cube"], ratios)
            bad = cube_alignment(shapes, dtypes, int(cfg["inner_axis_align_bytes"]))
            if bad and (bound is None or "mac" not in bound):  # a saturated cube gains nothing from it
                issues.append(
                    m.t(
                        f"{CHECK}.issue.inner_axis",
                        inputs=", ".join(bad),
                        align=cfg["inner_axis_align_bytes"],
                    )
                )
        elif cat == "fa":
            limits = cfg["fa_backward"] if op_type.lower().endswith("grad") else cfg["fa_forward"]
            bound, space = bound_or_space(limits, ratios)
            head, seq = fa_dims(name, shapes, out_shapes)
            align = int(cfg["fa_align"])
            if head is not None and head % align:
                issues.append(m.t(f"{CHECK}.issue.head_dim", value=head, align=align))
            if seq is not None and seq % align:
                issues.append(m.t(f"{CHECK}.issue.seq_len", value=seq, align=align))
        else:
            limits = cfg["vector"]
            vec_ratios = {"vec": ratios["vec"], "mte2": ratios["vec_mte2"], "mte3": ratios["vec_mte3"]}
            total = float(np.nansum(list(vec_ratios.values())))
            if total >= limits["sum"]:
                bound, space = "vec+mte2+mte3", 0.0
            else:
                bound, space = bound_or_space({k: limits[k] for k in ("mte2", "mte3", "vec")}, vec_ratios)
        space = 0.0 if not np.isfinite(space) else space
        rows.append(
            {
                "category": cat,
                "op_type": op_type,
                "name": name,
                "shapes": shapes,
                "dtypes": dtypes,
                "count": int(counts_of[code]),
                "total": kernel_us,
                "ratios": ratios,
                "bound": bound,
                "space": space,
                "issues": issues,
                "lost": kernel_us * space,
            }
        )
    # Space alone flags only kernels long enough to be worth tuning (short ones are launch-bound).
    min_us = float(knowledge("computation_thresholds")["bound_min_kernel_us"])
    flagged = [
        r
        for r in rows
        if r["issues"] or (r["space"] >= cfg["min_space"] and r["total"] / r["count"] >= min_us)
    ]
    if not flagged:
        return []

    basis = step_basis(kernels)
    lost = sum(r["lost"] for r in flagged if r["bound"] is None)
    gain = basis.gain(lost, upper_bound=True)
    counts = {c: sum(1 for r in flagged if r["category"] == c) for c in CATEGORIES}
    lines = [m.t(f"{CHECK}.seen", cube=counts["cube"], fa=counts["fa"], vector=counts["vector"])]
    for r in sorted(flagged, key=lambda r: -r["total"])[:5]:
        lines.append(_line(m, r))
    lines.append(m.t(f"{CHECK}.estimate", gain=gain_line(m, gain), steps=basis.n_steps))
    # Below its pipes' bounds is how real kernels run: without a concrete cause to change (an
    # unaligned axis, a head dimension or sequence length off the tile) the space is only a lead.
    concrete = any(r["issues"] for r in flagged)
    if not concrete:
        lines.append(m.t(f"{CHECK}.no_concrete_cause"))
    suggestions: list[str] = []
    for cat in CATEGORIES:
        if counts[cat]:
            suggestions += m.t_list(f"{CHECK}.suggestions.{cat}")
    return [
        finding(
            ranks=[ctx.rank.rank],
            gain=gain,
            title=m.t(f"{CHECK}.title", groups=len(flagged), gain_us=gain.per_step_us),
            lines=lines,
            suggestions=suggestions,
            evidence=[_evidence(m, rows, int(cfg["max_rows_per_category"]))],
            at_most="medium" if concrete else "low",
        )
    ]


def _status(m: Messages, row: dict[str, Any]) -> str:
    if row["bound"]:
        return m.t(f"{CHECK}.status.bound", units=row["bound"])
    return m.t(f"{CHECK}.status.space", space=row["space"])


def _line(m: Messages, row: dict[str, Any]) -> str:
    return m.t(
        f"{CHECK}.line",
        category=m.t(f"{CHECK}.category.{row['category']}"),
        op_type=row["op_type"],
        shapes=row["shapes"],
        dtypes=row["dtypes"],
        total_us=row["total"],
        status=_status(m, row),
        issues="; ".join(row["issues"]) or m.t(f"{CHECK}.issue.none"),
    )


def _evidence(m: Messages, rows: list[dict[str, Any]], per_category: int) -> Evidence:
    table = []
    for cat in CATEGORIES:
        chosen = sorted((r for r in rows if r["category"] == cat), key=lambda r: (-r["lost"], -r["total"]))
        for r in chosen[:per_category]:
            ratio = r["ratios"]
            table.append(
                [
                    cat,
                    r["op_type"],
                    r["name"],
                    text_or_empty(r["shapes"]),
                    text_or_empty(r["dtypes"]),
                    r["count"],
                    us(r["total"]),
                    *(None if not np.isfinite(ratio[u]) else round(ratio[u], 3) for u in RATIOS),
                    r["bound"] or "",
                    round(r["space"], 4),
                    "; ".join(r["issues"]),
                    us(r["lost"]),
                ]
            )
    return Evidence(
        m.t(f"{CHECK}.evidence"),
        [
            "category",
            "op_type",
            "op_name",
            "input_shapes",
            "input_dtypes",
            "count",
            "total_us",
            "aic_mac_ratio",
            "aic_mte2_ratio",
            "aic_fixpipe_ratio",
            "aiv_vec_ratio",
            "aiv_mte2_ratio",
            "aiv_mte3_ratio",
            "bound",
            "optimisation_space",
            "issues",
            "lost_us",
        ],
        table,
    )
