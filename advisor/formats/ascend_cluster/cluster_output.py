"""An existing `cluster_analysis_output/` (written by msprof-analyze's cluster backend) as a source of
per-rank step_trace and communication tables, for clusters whose rank folders lack those files.

cluster_step_trace_time.csv: the rank step_trace columns plus `Type` ("rank" | "stage") and `Index`
(the global rank, or the pp stage's ranks "(0, 1, 2, 3)"; stage values are the max over its ranks).
cluster_communication.json: {"(r0, r1, …)" | "p2p": {step: {op_key: {rank: OpInfo}}}}, the OpInfo of a
rank's communication.json keyed by global rank. The backend never refreshes this folder, so it may
be older than the rank folders beside it: prefer the ranks' own files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pandas as pd

from ...errors import InputError
from ...model import RankInfo
from ..ascend_common.csvread import Column, expect_dict, input_error, labels, read_columns, read_json
from ..ascend_text.communication import TOTAL_OP, CommCollector, parse_step_key
from ..sanity import drop_damaged_rows
from ..schema import conform
from ..tables import register_table

CLUSTER_OUTPUT_DIR = "cluster_analysis_output"
CLUSTER_STEP_TRACE_CSV = "cluster_step_trace_time.csv"
CLUSTER_COMMUNICATION_JSON = "cluster_communication.json"

_STEP_TRACE = (
    Column("step", "step", ("Step",)),
    Column("type", "text", ("Type",), required=True),
    Column("index", "text", ("Index",), required=True),
    Column("computing_us", "us", ("Computing",), required=True),
    Column("communication_not_overlapped_us", "us", ("Communication(Not Overlapped)",), required=True),
    Column("overlapped_us", "us", ("Overlapped",)),
    Column("communication_us", "us", ("Communication",)),
    Column("free_us", "us", ("Free",), required=True),
    Column("preparing_us", "us", ("Preparing",)),
    Column("bubble_us", "us", ("Bubble",)),
    Column("stage_us", "us", ("Stage",)),
)

CommTables = tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]  # comm_ops, comm_bandwidth, comm_packets


@dataclass(frozen=True)
class ClusterOutput:
    """Tables by global rank (and pp stage); empty dicts for a file the folder does not have."""

    path: Path
    step_trace: dict[int, pd.DataFrame]
    stage_step_trace: dict[tuple[int, ...], pd.DataFrame]
    comm: dict[int, CommTables]

    @property
    def ranks(self) -> list[int]:
        return sorted({*self.step_trace, *self.comm})


def find_cluster_output(root: Path) -> Path | None:
    """`root/cluster_analysis_output` (or `root` itself) when it holds one of the files read here."""
    for folder in (root, root / CLUSTER_OUTPUT_DIR):
        if folder.name == CLUSTER_OUTPUT_DIR and any(
            (folder / name).is_file() for name in (CLUSTER_STEP_TRACE_CSV, CLUSTER_COMMUNICATION_JSON)
        ):
            return folder
    return None


def read_cluster_output(folder: Path) -> ClusterOutput:
    step_csv, comm_json = folder / CLUSTER_STEP_TRACE_CSV, folder / CLUSTER_COMMUNICATION_JSON
    if not step_csv.is_file() and not comm_json.is_file():
        raise InputError(f"{folder}: neither {CLUSTER_STEP_TRACE_CSV} nor {CLUSTER_COMMUNICATION_JSON}")
    ranks, stages = read_cluster_step_trace(step_csv) if step_csv.is_file() else ({}, {})
    comm = read_cluster_communication(comm_json) if comm_json.is_file() else {}
    return ClusterOutput(folder, ranks, stages, comm)


def read_cluster_step_trace(
    path: Path,
) -> tuple[dict[int, pd.DataFrame], dict[tuple[int, ...], pd.DataFrame]]:
    """step_trace tables by global rank and by pp stage (rows of other types are ignored)."""
    frame = read_columns(path, _STEP_TRACE)
    kinds = frame["type"].str.lower().fillna("")
    by_rank: dict[int, list[int]] = {}
    by_stage: dict[tuple[int, ...], list[int]] = {}
    for row, (kind, index) in enumerate(zip(kinds, frame["index"], strict=True)):
        text = "" if pd.isna(index) else str(index)
        if kind == "rank":
            if not text.isdigit():
                raise InputError(f"{path}: row {row + 2}, column 'Index': not a rank id: {text[:40]!r}")
            by_rank.setdefault(int(text), []).append(row)
        elif kind == "stage":
            by_stage.setdefault(tuple(int(r) for r in re.findall(r"\d+", text)), []).append(row)

    def table(rows: list[int], where: str) -> pd.DataFrame:
        out = conform(frame.iloc[rows].reset_index(drop=True), "step_trace")
        out.attrs["source"] = f"{CLUSTER_OUTPUT_DIR}/{CLUSTER_STEP_TRACE_CSV}"
        # The file holds every rank: a warning names the rank (or stage) that lost rows.
        return drop_damaged_rows(out, "step_trace", f"{path} ({where})", labels(_STEP_TRACE))

    return (
        {r: table(rows, f"rank {r}") for r, rows in by_rank.items()},
        {s: table(rows, f"stage {s}") for s, rows in by_stage.items()},
    )


def read_cluster_communication(path: Path) -> dict[int, CommTables]:
    """(comm_ops, comm_bandwidth, comm_packets) by global rank; a group key names its ranks or 'p2p'."""
    collectors: dict[int, CommCollector] = {}
    for group, steps in expect_dict(read_json(path) or {}, path, "top level").items():
        kind = "p2p" if group.strip().lower() == "p2p" else "collective"
        for step_key, ops in expect_dict(steps, path, group).items():
            step = parse_step_key(step_key, path)
            for op_key, ranks in expect_dict(ops, path, f"{group}/{step_key}").items():
                if op_key.strip() == TOTAL_OP:
                    continue
                for rank_key, info in expect_dict(ranks, path, f"{group}/{step_key}/{op_key}").items():
                    where = f"{group}/{step_key}/{op_key}/{rank_key}"
                    if not rank_key.strip().isdigit():
                        raise input_error(path, f"{where}: not a rank id")
                    rank = int(rank_key)
                    collector = collectors.setdefault(rank, CommCollector(path, f"{path} (rank {rank})"))
                    collector.add_op(where, step, kind, op_key, info)
    return {rank: collectors[rank].tables() for rank in sorted(collectors)}


@lru_cache(maxsize=2)
def _cached(folder: Path, stamp: tuple[int, ...]) -> ClusterOutput:
    return read_cluster_output(folder)


def _for_rank(rank: RankInfo) -> ClusterOutput:
    """The folder's tables, read once for all its ranks (re-read when a file changes)."""
    files = [rank.path / name for name in (CLUSTER_STEP_TRACE_CSV, CLUSTER_COMMUNICATION_JSON)]
    stamp = tuple(n for f in files if f.is_file() for n in (f.stat().st_size, f.stat().st_mtime_ns))
    return _cached(rank.path, stamp)


def _missing(rank: RankInfo, what: str) -> InputError:
    return InputError(f"{rank.path}: no {what} for rank {rank.rank}")


@register_table("step_trace", "ascend_cluster", sources=(CLUSTER_STEP_TRACE_CSV,))
def load_cluster_step_trace(rank: RankInfo) -> pd.DataFrame:
    table = _for_rank(rank).step_trace.get(rank.rank)
    if table is None:
        raise _missing(rank, CLUSTER_STEP_TRACE_CSV)
    return table


def _comm_loader(position: int, table: str):
    @register_table(table, "ascend_cluster", sources=(CLUSTER_COMMUNICATION_JSON,))
    def load(rank: RankInfo) -> pd.DataFrame:
        tables = _for_rank(rank).comm.get(rank.rank)
        if tables is None:
            raise _missing(rank, CLUSTER_COMMUNICATION_JSON)
        return tables[position]

    return load


for _position, _table in enumerate(("comm_ops", "comm_bandwidth", "comm_packets")):
    _comm_loader(_position, _table)
