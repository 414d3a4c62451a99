"""Loaders for analysis.db (CommAnalyzerTime / Bandwidth / Matrix): communication(_matrix).json as a db.

Units as in communication.json: times ms, sizes MB (10^6 bytes), bandwidth GB/s, start_timestamp µs.
Verified on the corpus: elapse_time × 10^6 equals COMMUNICATION_OP endNs − startNs of the profiler db.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...model import RankInfo
from ..ascend_common.db_sqlite import SqliteFile
from ..tables import register_table
from .db import (
    ANALYSIS_SOURCES,
    PROFILER_SOURCES,
    analysis_db,
    comm_op_frame,
    finish,
    profiler_db,
    step_numbers,
)

MS_TO_US = 1000.0
MB_TO_BYTES = 1e6  # communication MB are decimal
_P2P_WORDS = ("send", "receive", "recv")


def _read(
    db: SqliteFile, table: str, required: tuple[str, ...], optional: tuple[str, ...], why: str
) -> pd.DataFrame:
    db.require(table, *required, why=why)
    columns = [*required, *(db.optional(table, c) for c in optional)]
    return db.query(f"SELECT {', '.join(columns)} FROM {table}")


def _common(frame: pd.DataFrame) -> pd.DataFrame:
    """step, kind, op_name and group, as communication.json's keys give them (`step50`, `collective`)."""
    names = frame["hccl_op_name"].astype("string")
    # Without a type the reference infers p2p from the op name; so do we.
    p2p = names.str.lower().str.contains("|".join(_P2P_WORDS)).fillna(False).to_numpy(dtype=bool)
    inferred = pd.Series(np.where(p2p, "p2p", "collective"), index=frame.index, dtype="string")
    return frame.assign(
        step=step_numbers(frame["step"]),
        kind=frame["type"].astype("string").str.lower().fillna(inferred),
        op_name=names,
        group=frame["group_name"].astype("string"),
    )


def _ms(values: pd.Series) -> pd.Series:
    return values.astype("float64") * MS_TO_US


def _mb(values: pd.Series) -> pd.Series:
    return (values.astype("float64") * MB_TO_BYTES).round()  # whole bytes: MB values are bytes / 10^6


def _ratio(part: pd.Series, transit: pd.Series) -> pd.Series:
    """part / (part + transit), 0 when both are 0: communication.json's Wait / Synchronization Time Ratio."""
    denominator = part + transit
    return (part / denominator.where(denominator != 0)).fillna(0.0).where(part.notna() & transit.notna())


def _op_starts(rank: RankInfo) -> pd.Series:
    """op name -> COMMUNICATION_OP startNs in the profiler db, for names that occur once."""
    ops = comm_op_frame(profiler_db(rank), "needed for comm op start times", optional=True)
    ops = ops.dropna(subset=["name", "start_ns"]).drop_duplicates("name", keep=False)
    return ops.set_index(ops["name"].astype(str))["start_ns"].astype("Int64")


@register_table("comm_ops", "ascend_db", sources=ANALYSIS_SOURCES + PROFILER_SOURCES)
def load_comm_ops(rank: RankInfo) -> pd.DataFrame:
    """CommAnalyzerTime in µs. start_ns is the op's startNs in the profiler db (as the text export,
    where Start Timestamp equals the HCCL op start): analysis.db's start_timestamp is a float µs on a
    clock that was 13.4 µs (rank 0) and −21.4 µs (rank 1) off in the corpus."""
    db = analysis_db(rank)
    optional = (
        "group_name", "start_timestamp", "transit_time", "wait_time", "synchronization_time", "idle_time",
        "step", "type",
    )  # fmt: skip
    why = "needed for the comm op table"
    frame = _common(_read(db, "CommAnalyzerTime", ("hccl_op_name", "elapse_time"), optional, why))
    for column in ("elapse", "transit", "wait", "idle"):
        frame[f"{column}_us"] = _ms(frame[f"{column}_time"])
    frame["sync_us"] = _ms(frame["synchronization_time"])
    frame["wait_ratio"] = _ratio(frame["wait_us"], frame["transit_us"])
    frame["sync_ratio"] = _ratio(frame["sync_us"], frame["transit_us"])
    fallback = (frame["start_timestamp"].astype("float64") * 1000.0).round().astype("Int64")
    frame["start_ns"] = frame["op_name"].astype(str).map(_op_starts(rank)).astype("Int64").fillna(fallback)
    return finish(frame, "comm_ops", "analysis.db CommAnalyzerTime", db.path)


_BANDWIDTH_OPTIONAL = (
    "group_name", "bandwidth", "large_packet_ratio", "package_size", "count", "total_duration",
    "step", "type",
)  # fmt: skip


def _bandwidth_rows(rank: RankInfo, why: str, required: tuple[str, ...] = ()) -> pd.DataFrame:
    required = ("hccl_op_name", "transport_type", "transit_size", "transit_time", *required)
    optional = tuple(c for c in _BANDWIDTH_OPTIONAL if c not in required)
    frame = _read(analysis_db(rank), "CommAnalyzerBandwidth", required, optional, why)
    return _common(frame).assign(transport=frame["transport_type"].astype("string"))


@register_table("comm_bandwidth", "ascend_db", sources=ANALYSIS_SOURCES)
def load_comm_bandwidth(rank: RankInfo) -> pd.DataFrame:
    """One row per op and transport. The db repeats the totals on each packet-size row and, unlike
    communication.json, has no rows for transports that carried nothing."""
    frame = _bandwidth_rows(rank, "needed for the comm bandwidth table")
    frame = frame.drop_duplicates(["step", "kind", "op_name", "group", "transport"], ignore_index=True)
    frame = frame.assign(
        size_bytes=_mb(frame["transit_size"]),
        transit_us=_ms(frame["transit_time"]),
        bandwidth_gbps=frame["bandwidth"].astype("float64"),
    )
    return finish(frame, "comm_bandwidth", "analysis.db CommAnalyzerBandwidth", analysis_db(rank).path)


@register_table("comm_packets", "ascend_db", sources=ANALYSIS_SOURCES)
def load_comm_packets(rank: RankInfo) -> pd.DataFrame:
    """The 'Size Distribution': CommAnalyzerBandwidth rows that counted packets."""
    packet_columns = ("package_size", "count", "total_duration")
    frame = _bandwidth_rows(rank, "needed for the comm packet table", packet_columns)
    frame = frame[(frame["count"].astype("float64") > 0).fillna(False)]
    frame = frame.assign(packet_bytes=_mb(frame["package_size"]), total_us=_ms(frame["total_duration"]))
    return finish(frame, "comm_packets", "analysis.db CommAnalyzerBandwidth", analysis_db(rank).path)


@register_table("comm_matrix", "ascend_db", sources=ANALYSIS_SOURCES)
def load_comm_matrix(rank: RankInfo) -> pd.DataFrame:
    """CommAnalyzerMatrix. Its hccl_op_name is communication_matrix.json's op key (`allreduce-top1`,
    -> op_name) and its op_name that link's HCCL op (`hcom_allReduce__…`, -> hccl_op_name)."""
    required = ("hccl_op_name", "src_rank", "dst_rank", "transport_type", "transit_size", "transit_time")
    optional = ("group_name", "bandwidth", "step", "type", "op_name")
    db = analysis_db(rank)
    raw = _read(db, "CommAnalyzerMatrix", required, optional, "needed for the comm matrix table")
    link_op = raw["op_name"].astype("string").replace("", pd.NA)
    frame = _common(raw).assign(
        hccl_op_name=link_op,
        src_rank=pd.to_numeric(raw["src_rank"], errors="coerce").astype("Int64"),
        dst_rank=pd.to_numeric(raw["dst_rank"], errors="coerce").astype("Int64"),
        transport=raw["transport_type"].astype("string"),
        size_bytes=_mb(raw["transit_size"]),
        transit_us=_ms(raw["transit_time"]),
        bandwidth_gbps=raw["bandwidth"].astype("float64"),
    )
    return finish(frame, "comm_matrix", "analysis.db CommAnalyzerMatrix", db.path)
