"""computation.graph_fusion: unfused operator chains in a GE graph dump.

Needs a GE graph dump (the `ge_graph_ops` table: `ge_proto_*_Build.txt`, written with DUMP_GE_GRAPH=2 in
graph mode, e.g. torchair or MindSpore); a PyTorch eager profile has none, so the check says so instead
of staying silent. Chains of operator types that a fused operator replaces
(knowledge/graph_fusion_patterns.json: attention → FlashAttention, RmsNorm, MatMul + bias, SwiGLU, …)
are matched along the graph's edges. Matched operators are looked up in the kernels by name. Gain = the
time of each matched chain except its longest operator (which the fused operator keeps), per step: a
rough upper bound.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ..formats.schema import GRAPH_INPUT_SEPARATOR
from ..report.model import Evidence, Finding
from .common import finding
from .computation_base import as_float, gain_line, step_basis, us
from .knowledge import knowledge
from .registry import NPU_ONLY, NotEvaluated, RankContext, check

CHECK = "computation.graph_fusion"
MAX_ROWS = 50


@dataclass
class GraphOp:
    name: str
    type: str
    inputs: list[str]


def graph_ops(table: pd.DataFrame) -> list[GraphOp]:
    """The ops of the `ge_graph_ops` table (its row without an op name stands for an empty dump)."""
    ops = table.dropna(subset=["name"])
    return [
        GraphOp(name, op_type, inputs.split(GRAPH_INPUT_SEPARATOR) if inputs else [])
        for name, op_type, inputs in zip(
            ops["name"], ops["type"].fillna(""), ops["inputs"].fillna(""), strict=True
        )
    ]


def match_chains(ops: list[GraphOp], chain: list[list[str]]) -> list[list[GraphOp]]:
    """Every path producer → consumer whose op types follow `chain` (each step: any of the types)."""
    wanted = [{t.lower() for t in step} for step in chain]
    consumers: dict[str, list[GraphOp]] = {}
    for op in ops:
        for src in op.inputs:
            consumers.setdefault(src, []).append(op)
    paths = [[op] for op in ops if op.type.lower() in wanted[0]]
    for types in wanted[1:]:
        paths = [
            [*p, nxt] for p in paths for nxt in consumers.get(p[-1].name, []) if nxt.type.lower() in types
        ]
    return paths


@check(CHECK, "computation", needs=frozenset({"kernels", "ge_graph_ops"}), devices=NPU_ONLY)
def graph_fusion(ctx: RankContext) -> list[Finding]:
    m = ctx.messages
    dump = ctx.tables["ge_graph_ops"]
    if dump.empty:
        raise NotEvaluated(m.t(f"{CHECK}.no_dump"))
    dump_name = str(dump["file"].iloc[0])
    ops = graph_ops(dump)
    if not ops:
        raise NotEvaluated(m.t(f"{CHECK}.unreadable", file=dump_name, error="no op"))
    kernels = ctx.tables["kernels"]
    basis = step_basis(kernels)
    by_name = (
        pd.Series(as_float(kernels["duration_us"]), index=kernels["name"].astype("string").fillna(""))
        .groupby(level=0)
        .sum()
    )
    rows, advice, lost = [], [], 0.0
    for pattern in knowledge("graph_fusion_patterns")["patterns"]:
        for path in match_chains(ops, pattern["chain"]):
            times = [float(by_name.get(op.name, 0.0)) for op in path]
            saved = sum(times) - max(times)
            lost += saved
            rows.append(
                [
                    pattern["name"],
                    " → ".join(op.name for op in path),
                    " → ".join(op.type for op in path),
                    us(sum(times)),
                    us(saved),
                ]
            )
            advice.append(pattern["advice"])
    if not rows:
        return []
    gain = basis.gain(lost, upper_bound=True)
    rows.sort(key=lambda r: -r[3])
    suggestions = [m.t(f"{CHECK}.advice.{a}") for a in dict.fromkeys(advice)] + m.t_list(
        f"{CHECK}.suggestions"
    )
    return [
        finding(
            ranks=[ctx.rank.rank],
            gain=gain,
            title=m.t(f"{CHECK}.title", matches=len(rows)),
            lines=[
                m.t(
                    f"{CHECK}.seen",
                    matches=len(rows),
                    file=dump_name,
                    ops=len(ops),
                    names=", ".join(dict.fromkeys(r[0] for r in rows)),
                ),
                m.t(f"{CHECK}.estimate", gain=gain_line(m, gain), steps=basis.n_steps),
            ],
            suggestions=suggestions,
            evidence=[
                Evidence(
                    m.t(f"{CHECK}.evidence"),
                    ["pattern", "op_names", "op_types", "total_us", "saved_us"],
                    rows[:MAX_ROWS],
                )
            ],
        )
    ]
