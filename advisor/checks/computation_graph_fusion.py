"""computation.graph_fusion: unfused operator chains in a GE graph dump.

Needs a GE graph dump (`ge_proto_*_Build.txt`, written with DUMP_GE_GRAPH=2 in graph mode, e.g.
torchair or MindSpore); a PyTorch eager profile has none, so the check says so instead of staying
silent. Chains of operator types that a fused operator replaces (knowledge/graph_fusion_patterns.json:
attention → FlashAttention, RmsNorm, MatMul + bias, SwiGLU, …) are matched along the graph's edges.
Matched operators are looked up in the kernels by name. Gain = the time of each matched chain
except its longest operator (which the fused operator keeps), per step: a rough upper bound.
"""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..report.model import Evidence, Finding
from .computation_base import as_float, gain_line, step_basis, us
from .knowledge import knowledge
from .registry import NotEvaluated, RankContext, check

CHECK = "computation.graph_fusion"
_FIELD = re.compile(r'^\s*(name|type|input)\s*:\s*"(.*)"\s*$')
MAX_ROWS = 50


@dataclass
class GraphOp:
    name: str = ""
    type: str = ""
    inputs: list[str] = field(default_factory=list)


def find_dump(rank_path: Path) -> Path | None:
    """The last GE graph dump (walk order) within max_depth folders of the rank folder."""
    cfg = knowledge("graph_fusion_patterns")
    patterns, limit = cfg["dump_patterns"], int(cfg["max_depth"])
    found: list[Path] = []
    for folder, dirs, files in os.walk(rank_path):
        depth = len(Path(folder).relative_to(rank_path).parts)
        if depth >= limit:
            dirs[:] = []
        found += [Path(folder) / f for f in files if any(fnmatch.fnmatch(f, p) for p in patterns)]
    return sorted(found)[-1] if found else None


def parse_graph(text: str) -> list[GraphOp]:
    """Ops (name, type, data inputs) of a GE protobuf-text dump; nested attr/desc blocks skipped."""
    ops: list[GraphOp] = []
    depth, op_depth, current = 0, None, None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.endswith("{"):
            if stripped.split()[0] == "op" and op_depth is None:
                current, op_depth = GraphOp(), depth + 1
            depth += 1
            continue
        if stripped == "}":
            depth -= 1
            if op_depth is not None and depth < op_depth:
                if current is not None and current.name:
                    ops.append(current)
                current, op_depth = None, None
            continue
        if current is not None and depth == op_depth:
            match = _FIELD.match(line)
            if match:
                key, value = match.groups()
                if key == "input":
                    if value and not value.endswith(":-1"):  # ':-1' is a control edge
                        current.inputs.append(value.rsplit(":", 1)[0])
                else:
                    setattr(current, key, value)
    return ops


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


@check(CHECK, "computation", needs=frozenset({"kernels"}))
def graph_fusion(ctx: RankContext) -> list[Finding]:
    m = ctx.messages
    dump = find_dump(ctx.rank.path)
    if dump is None:
        raise NotEvaluated(m.t(f"{CHECK}.no_dump"))
    try:
        ops = parse_graph(dump.read_text(encoding="utf-8", errors="replace"))
    except OSError as exc:
        raise NotEvaluated(
            m.t(f"{CHECK}.unreadable", file=dump.name, error=exc.strerror or str(exc))
        ) from None
    if not ops:
        raise NotEvaluated(m.t(f"{CHECK}.unreadable", file=dump.name, error="no op"))
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
        basis.finding(
            CHECK,
            ctx.rank.rank,
            gain,
            title=m.t(f"{CHECK}.title", matches=len(rows)),
            lines=[
                m.t(
                    f"{CHECK}.seen",
                    matches=len(rows),
                    file=dump.name,
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
