"""Table `ge_graph_ops`: the operators of a GE graph dump (`ge_proto_*_Build.txt`, written with
DUMP_GE_GRAPH=2 in graph mode, e.g. torchair or MindSpore; a PyTorch eager profile has none).

The last dump (in path order) within MAX_DEPTH folders of the rank folder is read. One row per op:
its name, type and data inputs (producer op names, one per line; control edges left out). A rank
without a dump gives no rows; a dump without any op gives one row naming the file with no op, so a
check can tell the two apart. A dump that cannot be read is an InputError naming it.
"""

from __future__ import annotations

import fnmatch
import os
import re
from pathlib import Path
from typing import Any

import pandas as pd

from ...errors import InputError, cannot
from ...model import RankInfo
from ..schema import GRAPH_INPUT_SEPARATOR, conform
from ..tables import register_table

DUMP_NAMES = ("*_Build.txt", "ge_proto*Build*.txt", "*Build.txt")
# Dumps lie in folders of their own (e.g. ge/, dump/): anywhere in the rank folder, within reason.
GRAPH_DUMP_SOURCES = tuple(f"**/{name}" for name in DUMP_NAMES)
MAX_DEPTH = 6
_FIELD = re.compile(r'^\s*(name|type|input)\s*:\s*"(.*)"\s*$')


def find_dump(rank_path: Path) -> Path | None:
    """The last GE graph dump (path order) within MAX_DEPTH folders of the rank folder."""
    found: list[Path] = []
    for folder, dirs, files in os.walk(rank_path):
        depth = len(Path(folder).relative_to(rank_path).parts)
        if depth >= MAX_DEPTH:
            dirs[:] = []
        found += [Path(folder) / f for f in files if any(fnmatch.fnmatch(f, p) for p in DUMP_NAMES)]
    return sorted(found)[-1] if found else None


def parse_graph(text: str) -> list[dict[str, Any]]:
    """Ops ({name, type, inputs: producer op names}) of a GE protobuf-text dump; nested attr/desc
    blocks skipped."""
    ops: list[dict[str, Any]] = []
    depth, op_depth, current = 0, None, None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.endswith("{"):
            if stripped.split()[0] == "op" and op_depth is None:
                current, op_depth = {"name": "", "type": "", "inputs": []}, depth + 1
            depth += 1
            continue
        if stripped == "}":
            depth -= 1
            if op_depth is not None and depth < op_depth:
                if current is not None and current["name"]:
                    ops.append(current)
                current, op_depth = None, None
            continue
        if current is not None and depth == op_depth:
            match = _FIELD.match(line)
            if match:
                key, value = match.groups()
                if key == "input":
                    if value and not value.endswith(":-1"):  # ':-1' is a control edge
                        current["inputs"].append(value.rsplit(":", 1)[0])
                else:
                    current[key] = value
    return ops


def load_graph_ops(rank: RankInfo) -> pd.DataFrame:
    dump = find_dump(rank.path)
    if dump is None:
        out = conform(pd.DataFrame(), "ge_graph_ops")
        out.attrs["source"] = f"no GE graph dump ({', '.join(DUMP_NAMES)})"
        return out
    try:
        ops = parse_graph(dump.read_text(encoding="utf-8", errors="replace"))
    except OSError as exc:
        raise InputError(cannot("read", dump, exc)) from None
    rows = [{**op, "file": dump.name, "inputs": GRAPH_INPUT_SEPARATOR.join(op["inputs"])} for op in ops]
    out = conform(pd.DataFrame(rows or [{"file": dump.name}]), "ge_graph_ops")
    out.attrs["source"] = dump.relative_to(rank.path).as_posix()
    return out


# Graph mode writes the dump beside any export: every Ascend format lists this reader module.
for _format in ("ascend_text", "ascend_db", "ascend_cluster"):
    register_table("ge_graph_ops", _format, sources=GRAPH_DUMP_SOURCES)(load_graph_ops)
