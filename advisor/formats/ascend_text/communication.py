"""Communication of one rank: communication.json (comm_ops, comm_bandwidth, comm_packets) and
communication_matrix.json (comm_matrix). Both are written at profiler_level Level1 or Level2.

communication.json: {step: {"collective"|"p2p": {"<op>@<group>": OpInfo, "Total Op Info": OpInfo}}}.
Step keys are "step50", "50" or a bare "step" (no step markers: <NA>). "Total Op Info" is a per-step
aggregate, not an op, and is left out. Times are ms (-> µs), sizes MB = 10^6 bytes. The SDMA entry
of the bandwidth info aggregates the on-node links (HCCS, PCIE, SIO): do not add it to them.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ...errors import InputError
from ...model import RankInfo
from ..ascend_common.csvread import (
    Column,
    expect_dict,
    frame_from_records,
    input_error,
    labels,
    rank_file,
    read_json,
)
from ..sanity import drop_damaged, drop_damaged_rows
from ..schema import conform
from ..tables import register_table

COMMUNICATION_JSON = "communication.json"
COMMUNICATION_MATRIX_JSON = "communication_matrix.json"
WRITTEN_WHEN = "profiler_level is Level1 or Level2 and the job communicates"
TOTAL_OP = "Total Op Info"

_STEP_KEY = re.compile(r"^(?:step)?\s*(\d*)$", re.IGNORECASE)
_LINK_KEY = re.compile(r"^\s*(\d+)\s*-\s*(\d+)\s*$")

_TIME_INFO = (
    Column("start_ns", "ts", ("Start Timestamp(us)",)),
    Column("elapse_us", "us", ("Elapse Time(ms)",)),
    Column("transit_us", "us", ("Transit Time(ms)",)),
    Column("wait_us", "us", ("Wait Time(ms)",)),
    Column("sync_us", "us", ("Synchronization Time(ms)",)),
    Column("idle_us", "us", ("Idle Time(ms)",)),
    Column("wait_ratio", "float", ("Wait Time Ratio",)),
    Column("sync_ratio", "float", ("Synchronization Time Ratio",)),
)
_LINK_INFO = (
    Column("transport", "text", ("Transport Type",)),
    Column("size_bytes", "comm_bytes", ("Transit Size(MB)",)),
    Column("transit_us", "us", ("Transit Time(ms)",)),
    Column("bandwidth_gbps", "float", ("Bandwidth(GB/s)",)),
    Column("large_packet_ratio", "float", ("Large Packet Ratio",)),
    Column("hccl_op_name", "text", ("Op Name",)),
)
_PACKET_INFO = (
    Column("packet_bytes", "comm_bytes", ("Packet Size(MB)",)),
    Column("count", "int", ("Count",)),
    Column("total_us", "us", ("Total Duration(ms)",)),
)
# The fields as the file names them, for the warnings about damaged values.
_LABELS = labels((*_TIME_INFO, *_LINK_INFO, *_PACKET_INFO))


def parse_step_key(key: str, path: Path) -> int | None:
    """50 for 'step50' or '50'; None for a bare 'step' (a profile without step markers)."""
    match = _STEP_KEY.match(key.strip())
    if match is None:
        raise InputError(f"{path}: {key[:40]!r} is not a step key (expected e.g. 'step50', '50' or 'step')")
    return int(match.group(1)) if match.group(1) else None


def split_op_key(key: str) -> tuple[str, str | None]:
    """('hcom_allReduce__586_0_1', '17522688603477080586') for 'hcom_allReduce__586_0_1@1752…586'."""
    name, at, group = key.partition("@")
    return name, group if at else None


@dataclass
class _Rows:
    """JSON records of one table plus their identity columns and where they are in the file."""

    records: list[dict[str, Any]] = field(default_factory=list)
    where: list[str] = field(default_factory=list)
    fixed: dict[str, list[Any]] = field(default_factory=dict)

    def add(self, record: dict[str, Any], where: str, **identity: Any) -> None:
        self.records.append(record)
        self.where.append(where)
        for name, value in identity.items():
            self.fixed.setdefault(name, []).append(value)

    def frame(self, path: Path, columns: tuple[Column, ...], table: str) -> pd.DataFrame:
        frame = frame_from_records(path, self.records, columns, self.where, self.fixed)
        if "bandwidth_gbps" in frame:
            frame["bandwidth_gbps"] = _guarded_bandwidth(frame)
        frame = conform(frame, table)
        frame.attrs["source"] = path.name
        return frame


def _guarded_bandwidth(frame: pd.DataFrame) -> pd.Series:
    """GB/s as written, else size / transit time; NaN where nothing moved (transit time 0 or absent)."""
    transit = frame.get("transit_us", pd.Series(float("nan"), index=frame.index))
    computed = frame.get("size_bytes", float("nan")) / 1e9 / (transit / 1e6)
    bandwidth = frame["bandwidth_gbps"].fillna(computed)
    return bandwidth.where(transit > 0)


@dataclass
class CommCollector:
    """Turns OpInfo objects of communication.json (or cluster_communication.json) into the three tables.
    `location` names them in warnings (default: the path)."""

    path: Path
    location: str | None = None
    ops: _Rows = field(default_factory=_Rows)
    bandwidth: _Rows = field(default_factory=_Rows)
    packets: _Rows = field(default_factory=_Rows)

    def add_op(self, where: str, step: int | None, kind: str, op_key: str, info: Any) -> None:
        info = expect_dict(info, self.path, where)
        op_name, group = split_op_key(op_key)
        identity = {"step": step, "kind": kind, "op_name": op_name, "group": group}
        time_info = info.get("Communication Time Info", {})
        self.ops.add(expect_dict(time_info, self.path, f"{where}/Communication Time Info"), where, **identity)
        bandwidth_info = info.get("Communication Bandwidth Info", {})
        links = expect_dict(bandwidth_info, self.path, f"{where}/Communication Bandwidth Info")
        for transport, link in links.items():
            at = f"{where}/{transport}"
            link = expect_dict(link, self.path, at)
            self.bandwidth.add(link, at, transport=transport, **identity)
            sizes = expect_dict(link.get("Size Distribution", {}), self.path, f"{at}/Size Distribution")
            for size, value in sizes.items():
                place = f"{at}/Size Distribution/{size}"
                if not isinstance(value, list) or len(value) != 2:
                    raise input_error(self.path, f"{place}: expected [count, total ms]")
                record = {"Packet Size(MB)": size, "Count": value[0], "Total Duration(ms)": value[1]}
                self.packets.add(record, place, transport=transport, **identity)

    def add_steps(self, data: Any) -> None:
        """{step: {kind: {op_key: OpInfo}}}, the layout of a rank's communication.json."""
        for step_key, kinds in expect_dict(data, self.path, "top level").items():
            step = parse_step_key(step_key, self.path)
            for kind, ops in expect_dict(kinds, self.path, step_key).items():
                for op_key, info in expect_dict(ops, self.path, f"{step_key}/{kind}").items():
                    if op_key.strip() != TOTAL_OP:
                        self.add_op(f"{step_key}/{kind}/{op_key}", step, kind, op_key, info)

    def tables(self) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        """The three tables, checked together: the ops' timestamps give the file's time span."""
        tables, _ = drop_damaged(
            {
                "comm_ops": self.ops.frame(self.path, _TIME_INFO, "comm_ops"),
                "comm_bandwidth": self.bandwidth.frame(self.path, _LINK_INFO, "comm_bandwidth"),
                "comm_packets": self.packets.frame(self.path, _PACKET_INFO, "comm_packets"),
            },
            self.location or self.path,
            _LABELS,
        )
        return tables["comm_ops"], tables["comm_bandwidth"], tables["comm_packets"]


@functools.lru_cache(maxsize=2)
def _communication(path: Path, _stamp: tuple[int, int]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    collector = CommCollector(path)
    collector.add_steps(read_json(path) or {})
    return collector.tables()


def read_communication(path: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(comm_ops, comm_bandwidth, comm_packets) of one communication.json, parsed once for all three."""
    try:
        stat = path.stat()
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    # The file's mtime and size join the cache key: a rewritten file is read again.
    ops, bandwidth, packets = _communication(path, (stat.st_mtime_ns, stat.st_size))
    return ops.copy(), bandwidth.copy(), packets.copy()


def read_communication_matrix(path: Path) -> pd.DataFrame:
    """comm_matrix: one row per link "src-dst" (ranks local to the group) of each matrix op."""
    rows = _Rows()
    data = read_json(path) or {}
    for step_key, kinds in expect_dict(data, path, "top level").items():
        step = parse_step_key(step_key, path)
        for kind, ops in expect_dict(kinds, path, step_key).items():
            for op_key, links in expect_dict(ops, path, f"{step_key}/{kind}").items():
                if op_key.strip() == TOTAL_OP:
                    continue
                op_name, group = split_op_key(op_key)
                for link_key, link in expect_dict(links, path, f"{step_key}/{kind}/{op_key}").items():
                    where = f"{step_key}/{kind}/{op_key}/{link_key}"
                    match = _LINK_KEY.match(link_key)
                    if match is None:
                        raise input_error(path, f"{where}: not a 'src-dst' link key")
                    src, dst = int(match.group(1)), int(match.group(2))
                    identity = {"step": step, "kind": kind, "op_name": op_name, "group": group}
                    rows.add(expect_dict(link, path, where), where, src_rank=src, dst_rank=dst, **identity)
    return drop_damaged_rows(rows.frame(path, _LINK_INFO, "comm_matrix"), "comm_matrix", path, _LABELS)


@register_table("comm_ops", "ascend_text", sources=("communication.json",))
def load_comm_ops(rank: RankInfo) -> pd.DataFrame:
    return read_communication(rank_file(rank, COMMUNICATION_JSON, WRITTEN_WHEN))[0]


@register_table("comm_bandwidth", "ascend_text", sources=("communication.json",))
def load_comm_bandwidth(rank: RankInfo) -> pd.DataFrame:
    return read_communication(rank_file(rank, COMMUNICATION_JSON, WRITTEN_WHEN))[1]


@register_table("comm_packets", "ascend_text", sources=("communication.json",))
def load_comm_packets(rank: RankInfo) -> pd.DataFrame:
    return read_communication(rank_file(rank, COMMUNICATION_JSON, WRITTEN_WHEN))[2]


@register_table("comm_matrix", "ascend_text", sources=("communication_matrix.json",))
def load_comm_matrix(rank: RankInfo) -> pd.DataFrame:
    return read_communication_matrix(rank_file(rank, COMMUNICATION_MATRIX_JSON, WRITTEN_WHEN))
