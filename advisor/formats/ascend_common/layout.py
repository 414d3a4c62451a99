"""Communication groups and pipeline stages from the communication data itself, for runs whose
profiler_metadata.json does not record `parallel_group_info`.

Each rank lists the ops of the groups it belongs to (`op@group` keys in communication.json,
`group_name` in analysis.db), so a group's members are the ranks that name it. Send/receive ops make
a point-to-point group: such groups link the stages of a pipeline, and the collective groups inside
one stage (tensor/data parallel) never hold two ranks of one pipeline; stages follow from that.
"""

from __future__ import annotations

import mmap
import re
from collections.abc import Callable, Iterable
from pathlib import Path

from ...errors import InputError
from ...model import RankInfo
from .db_sqlite import SqliteFile
from .folder import DB_FILE, OUTPUT_DIR

_OP_KEY = re.compile(rb'"([^"\\]{1,200})@([^"\\@]{1,100})"\s*:')
_P2P = re.compile(r"send|receive|recv", re.IGNORECASE)
COMMUNICATION_FILES = ("communication.json", "communication_matrix.json")


def _text_ops(path: Path) -> set[tuple[str, str]]:
    """(op name, group) of every `op@group` key in a communication JSON file."""
    with path.open("rb") as fh:
        if path.stat().st_size == 0:
            return set()
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            found = {(m.group(1), m.group(2)) for m in _OP_KEY.finditer(buf)}
    return {(op.decode("utf-8", "replace"), group.decode("utf-8", "replace")) for op, group in found}


def _db_ops(rank: RankInfo) -> set[tuple[str, str]]:
    names = [f for f in rank.files if f.rsplit("/", 1)[-1] == "analysis.db"]
    if not names:
        return set()
    db = SqliteFile(rank.path / names[0])
    if not db.has("CommAnalyzerTime", "group_name"):
        return set()
    rows = db.query("SELECT DISTINCT hccl_op_name, group_name FROM CommAnalyzerTime")
    return {(str(op), str(group)) for op, group in zip(rows["hccl_op_name"], rows["group_name"], strict=True)}


def rank_ops(rank: RankInfo) -> set[tuple[str, str]]:
    """(op name, group) pairs the rank's communication data names; empty when it has none."""
    for name in COMMUNICATION_FILES:
        rel = f"{OUTPUT_DIR}/{name}"
        if rel in rank.files:
            return _text_ops(rank.path / rel)
    if any(DB_FILE.match(f.rsplit("/", 1)[-1]) or f.endswith("analysis.db") for f in rank.files):
        return _db_ops(rank)
    return set()


def groups_from_communication(
    ranks: Iterable[RankInfo],
    warnings: list[str],
    ops_of: Callable[[RankInfo], set[tuple[str, str]]] = rank_ops,
) -> tuple[dict[str, tuple[int, ...]], set[str]]:
    """Group -> member ranks, and the names of the point-to-point groups (`ops_of`: a rank's ops,
    read from its files, or as a worker that read them sent them)."""
    members: dict[str, set[int]] = {}
    p2p: set[str] = set()
    for rank in ranks:
        try:
            ops = ops_of(rank)
        except (OSError, ValueError, InputError) as exc:
            warnings.append(f"{rank.path}: communication groups not read ({exc})")
            continue
        for op, group in ops:
            members.setdefault(group, set()).add(rank.rank)
            if _P2P.search(op):
                p2p.add(group)
    return {g: tuple(sorted(r)) for g, r in sorted(members.items())}, p2p


def _union(sets: Iterable[set[int]]) -> list[set[int]]:
    """Merge overlapping sets into disjoint ones."""
    merged: list[set[int]] = []
    for current in sets:
        current = set(current)
        for other in [m for m in merged if m & current]:
            current |= other
            merged.remove(other)
        merged.append(current)
    return merged


def stages_from_groups(groups: dict[str, tuple[int, ...]], p2p: set[str]) -> list[tuple[int, ...]]:
    """Pipeline stages: collective groups holding at most one rank of each pipeline (p2p-linked
    ranks), merged where they overlap; ordered by their smallest rank. [] without p2p groups."""
    pipelines = _union(set(groups[g]) for g in p2p if len(groups[g]) > 1)
    if not pipelines:
        return []
    inside_stage = [
        set(ranks)
        for name, ranks in groups.items()
        if name not in p2p and all(len(set(ranks) & pipe) <= 1 for pipe in pipelines)
    ]
    linked = set().union(*pipelines)
    stages = [s for s in _union(inside_stage) if s & linked]
    return sorted((tuple(sorted(s)) for s in stages), key=lambda s: s[0]) if len(stages) > 1 else []
