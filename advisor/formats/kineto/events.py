"""Streaming read of one PyTorch profiler (Kineto) trace, `.json` or `.json.gz`, into typed columns.

The file is one JSON object: metadata keys, the `traceEvents` array, and a few keys after it
(docs: ../shared/docs/kineto-format.md). `trace_json.ArrayReader` reads it in bounded memory: gzip
is decompressed chunk by chunk, the members around the array are decoded whole (they are small),
and the array's events are decoded piece by piece into `Event` Structs holding only the fields the
tables read. Per piece the kept fields become compact arrays (see `trace_columns`), so memory is
bounded by one piece's objects plus the output columns.

Values are normalised as the contract between the format's modules says (`KinetoTrace`): categories
lower-cased, pid and tid as text (Kineto writes both ints and strings), `ts` µs as exact int ns.

The compiled scanner (`_tracescan.scan_kineto`, built with the package) reads each piece straight
into the same columns when it can read it exactly as the Python path does; any other piece (odd
types, escapes where text is compared or re-encoded, invalid JSON) takes the Python path, which
stays the reference.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pandas as pd
import pyarrow as pa

from ..ascend_common.trace_columns import (
    FLOAT,
    INT,
    NS,
    STR,
    Scanned,
    float_array,
    int_array,
    ns_value,
    per_value,
    scanned_array,
    string_array,
)
from ..ascend_common.trace_json import CHUNK_BYTES, MAX_EVENT_BYTES, ArrayReader

try:  # the C scanner of trace_view.json, which reads Kineto pieces too
    from ..ascend_text._tracescan import scan_kineto as _scan_kineto
except ImportError:  # not compiled, or compiled before it read Kineto: the Python path reads all
    _scan_kineto = None

EVENTS_KEY = "traceEvents"
BASE_TIME_KEY = "baseTimeNanoseconds"
# A `ts` above this many ns is absolute epoch time (kineto-format.md §1: ts > 1e14 µs).
ABSOLUTE_TS_NS = 10**17
_MAX_MICROS = 9 * 10**15  # |ts| in µs whose ns fit int64 with room
THREAD_KINDS = ("process_name", "thread_name", "process_labels")
MEMORY_EVENT = "[memory]"
CHAKRA = (
    "a Chakra execution trace (ExecutionTraceObserver: top-level 'nodes', no 'traceEvents'), "
    "not a PyTorch profiler trace; give the trace that torch.profiler wrote"
)
MEMORY_TIMELINE = (
    "a JSON array at the top level (a memory timeline from export_memory_timeline?), not a PyTorch "
    "profiler trace (an object with 'traceEvents')"
)
# torch_npu's timeline is a JSON array too, read with the rest of its rank folder (formats/ascend_text).
ASCEND_TRACE_NAME = "trace_view.json"
ASCEND_TRACE = (
    "an Ascend timeline (a JSON array), read with the rest of its export: give the folder named "
    "ASCEND_PROFILER_OUTPUT that holds it (as torch_npu writes it), or its rank folder (*_ascend_pt)"
)

# The columns of each output frame and their kinds, in the contract's order.
COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "x": (
        ("cat", STR),
        ("name", STR),
        ("pid", STR),
        ("tid", STR),
        ("ts_ns", NS),
        ("dur_us", FLOAT),
        ("correlation", INT),
        ("external_id", INT),
        ("stream", INT),
        ("device", INT),
        ("bytes", FLOAT),
        ("collective", STR),
        ("in_nelems", INT),
        ("out_nelems", INT),
        ("dtype", STR),
        ("group_size", INT),
        ("pg_name", STR),
        ("pg_desc", STR),
        ("pg_ranks", STR),
        ("sync_kind", STR),
        ("call_stack", STR),
        ("input_dims", STR),
        ("input_type", STR),
    ),
    "instants": (
        ("ts_ns", NS),
        ("pid", STR),
        ("tid", STR),
        ("bytes", FLOAT),
        ("total_allocated", FLOAT),
        ("total_reserved", FLOAT),
        ("device_type", INT),
        ("device_id", INT),
    ),
    "flows": (("ph", STR), ("cat", STR), ("id", INT), ("pid", STR), ("tid", STR), ("ts_ns", NS)),
    "threads": (("kind", STR), ("pid", STR), ("tid", STR), ("value", STR)),
}


@dataclass
class KinetoTrace:
    """One trace file's events as columns (see COLUMNS) and its top-level keys."""

    path: Path
    meta: dict[str, Any]  # every top-level key except traceEvents, before or after the array
    base_ns: int | None  # absolute ns of ts == 0: baseTimeNanoseconds; 0 for absolute ts; None: unknown
    x: pd.DataFrame  # complete events (ph "X")
    instants: pd.DataFrame  # "[memory]" instant events
    flows: pd.DataFrame  # ph "s" / "f"
    threads: pd.DataFrame  # process_name / thread_name / process_labels metadata
    count: int  # events read
    truncated_at: int | None  # byte offset where the array was cut short (complete events kept)
    oversized: list[tuple[int, int]]  # (offset, bytes) of events over the size limit, skipped


class Args(msgspec.Struct, gc=False):
    """The args fields the columns read (other keys are skipped while decoding). Untyped: a type
    check would fail a whole piece for one odd value; the converters make odd values missing."""

    correlation: Any = None
    external_id: Any = msgspec.field(default=None, name="External id")
    external_id_old: Any = msgspec.field(default=None, name="external id")  # 2021 GPU/runtime events
    stream: Any = None
    device: Any = None
    bytes: Any = None  # gpu_memcpy / gpu_memset
    memory_bytes: Any = msgspec.field(default=None, name="Bytes")  # [memory] instants
    collective: Any = msgspec.field(default=None, name="Collective name")
    in_nelems: Any = msgspec.field(default=None, name="In msg nelems")
    out_nelems: Any = msgspec.field(default=None, name="Out msg nelems")
    dtype: Any = None
    group_size: Any = msgspec.field(default=None, name="Group size")
    pg_name: Any = msgspec.field(default=None, name="Process Group Name")
    pg_desc: Any = msgspec.field(default=None, name="Process Group Description")
    pg_ranks: Any = msgspec.field(default=None, name="Process Group Ranks")
    sync_kind: Any = msgspec.field(default=None, name="cuda_sync_kind")
    call_stack: Any = msgspec.field(default=None, name="Call stack")
    input_dims: Any = msgspec.field(default=None, name="Input Dims")
    input_type: Any = msgspec.field(default=None, name="Input type")
    total_allocated: Any = msgspec.field(default=None, name="Total Allocated")
    total_reserved: Any = msgspec.field(default=None, name="Total Reserved")
    device_type: Any = msgspec.field(default=None, name="Device Type")
    device_id: Any = msgspec.field(default=None, name="Device Id")
    name: Any = None  # process_name / thread_name metadata
    labels: Any = None  # process_labels metadata


_NO_ARGS = Args()


class Event(msgspec.Struct, gc=False):
    """One trace event (fields untyped, see Args)."""

    ph: Any = None
    cat: Any = None
    name: Any = None
    pid: Any = None
    tid: Any = None
    ts: Any = None
    dur: Any = None
    id: Any = None
    args: Args | list | str | int | float | bool | None = None


def _refuse(path: Path, key: str | None, members: dict[str, Any]) -> str | None:
    """Why the file is not a Kineto trace, as soon as its top level shows it (None: read on)."""
    if key is None:
        return ASCEND_TRACE if path.name == ASCEND_TRACE_NAME else MEMORY_TIMELINE
    if key == "nodes":
        return CHAKRA
    return None


def _reader(
    path: Path,
    chunk_bytes: int = CHUNK_BYTES,
    max_event_bytes: int = MAX_EVENT_BYTES,
    compiled: bool = True,
) -> ArrayReader:
    # Float literals stay text: an absolute µs timestamp with a ns fraction has more digits than a
    # float64 holds (kineto-format.md §1); the converters parse the text exactly.
    return ArrayReader(
        path,
        Event,
        chunk_bytes,
        max_element_bytes=max_event_bytes,
        member=EVENTS_KEY,
        refuse=functools.partial(_refuse, path),
        float_hook=str,
        fast=_scan if compiled and _scan_kineto is not None else None,
    )


def _scan(piece: memoryview) -> Scanned | None:
    """A piece read by the C scanner, or None when it needs the Python path."""
    result = _scan_kineto(piece)
    return None if result is None else Scanned(*result)


def read_header(path: Path) -> dict[str, Any]:
    """The top-level keys before `traceEvents` (cheap: the events are not read). InputError when the
    file is not a Kineto trace (no traceEvents, a Chakra execution trace, a memory timeline)."""
    return _reader(path).read_members_before()


def read_trace(
    path: Path,
    chunk_bytes: int = CHUNK_BYTES,
    max_event_bytes: int = MAX_EVENT_BYTES,
    compiled: bool = True,
) -> KinetoTrace:
    """Every event of `path` in one streaming pass. An event longer than `max_event_bytes` is skipped
    (listed in `oversized`); a file cut short keeps its complete events (`truncated_at`).
    `compiled=False` reads every piece with the Python path (the C scanner's reference)."""
    reader = _reader(path, chunk_bytes, max_event_bytes, compiled)
    columns = _Columns()
    for events in reader:
        columns.add_events(events)
        del events  # before the next piece is decoded
    frames = {table: columns.frame(table) for table in COLUMNS}
    base = reader.members.get(BASE_TIME_KEY)
    return KinetoTrace(
        path=path,
        meta=reader.members,
        base_ns=_base_ns(base, frames["x"]["ts_ns"]),
        x=frames["x"],
        instants=frames["instants"],
        flows=frames["flows"],
        threads=frames["threads"],
        count=reader.count,
        truncated_at=reader.truncated_at,
        oversized=reader.oversized,
    )


def _base_ns(base: Any, ts_ns: pd.Series) -> int | None:
    """kineto-format.md §1's safe rule: baseTimeNanoseconds; else 0 when ts are absolute epoch µs."""
    if type(base) is int:
        return base
    latest = ts_ns.max()
    return 0 if latest is not pd.NA and latest > ABSOLUTE_TS_NS else None


def ns_values(values: list[Any]) -> tuple[np.ndarray, np.ndarray | None]:
    """Exact int64 ns from µs timestamps (ints, or float literals kept as text), and a missing mask
    (None when none is missing). Vectorised for the forms Kineto writes (integers; `<int>.<up to 3
    digits>`), `ns_value` for anything else."""
    try:
        micros = np.array(values, dtype=np.int64)  # integers; a float literal's text raises
        if micros.ndim == 1 and (not len(micros) or np.abs(micros).max() < _MAX_MICROS):
            return micros * 1000, None
    except (TypeError, ValueError, OverflowError):
        pass
    text = np.array(values, dtype=str)
    head, _, tail = np.char.partition(text, ".").T
    plain = (
        np.char.isdigit(head).all()
        and (np.char.str_len(head) <= 16).all()
        and (np.char.str_len(tail) <= 3).all()
        and (np.char.isdigit(tail) | (tail == "")).all()
    )
    if plain and (micros := head.astype(np.int64)).max() < _MAX_MICROS:
        return micros * 1000 + np.char.ljust(tail, 3, "0").astype(np.int64), None
    out, missing = per_value(values, ns_value)
    return out, missing if missing.any() else None


def _text(value: Any) -> Any:
    """A value as JSON text (Input Dims, Input type), or None when absent."""
    return None if value is None else msgspec.json.encode(value).decode("utf-8", "replace")


def _lower(value: Any) -> Any:
    return value.lower() if type(value) is str else value


class _Columns:
    """Per-table column parts, one per piece of events."""

    def __init__(self) -> None:
        self.parts: dict[str, list[dict[str, Any]]] = {table: [] for table in COLUMNS}

    def add_events(self, events: list[Any] | Scanned) -> None:
        if type(events) is Scanned:
            self._add_scanned(events)
            return
        raw = {table: tuple([] for _ in columns) for table, columns in COLUMNS.items()}
        x = tuple(column.append for column in raw["x"])
        instant = tuple(column.append for column in raw["instants"])
        flow = tuple(column.append for column in raw["flows"])
        thread = tuple(column.append for column in raw["threads"])
        event_type, args_type, no_args = Event, Args, _NO_ARGS
        for e in events:
            if type(e) is not event_type:  # not an object: no event
                continue
            a = e.args if type(e.args) is args_type else no_args
            ph = e.ph
            if ph == "X":
                external = a.external_id if a.external_id is not None else a.external_id_old
                values = (
                    _lower(e.cat), e.name, e.pid, e.tid, e.ts, e.dur, a.correlation, external,
                    a.stream, a.device, a.bytes, a.collective, a.in_nelems, a.out_nelems, a.dtype,
                    a.group_size, a.pg_name, a.pg_desc, a.pg_ranks, a.sync_kind, a.call_stack,
                    _text(a.input_dims), _text(a.input_type),
                )  # fmt: skip
                for append, value in zip(x, values, strict=True):
                    append(value)
            elif (ph == "i" or ph == "I") and e.name == MEMORY_EVENT:
                values = (
                    e.ts, e.pid, e.tid, a.memory_bytes, a.total_allocated, a.total_reserved,
                    a.device_type, a.device_id,
                )  # fmt: skip
                for append, value in zip(instant, values, strict=True):
                    append(value)
            elif ph == "s" or ph == "f":
                for append, value in zip(flow, (ph, _lower(e.cat), e.id, e.pid, e.tid, e.ts), strict=True):
                    append(value)
            elif ph == "M" and e.name in THREAD_KINDS:
                value = a.labels if e.name == "process_labels" else a.name
                for append, item in zip(thread, (e.name, e.pid, e.tid, value), strict=True):
                    append(item)
        for table, columns in COLUMNS.items():
            lists = raw[table]
            if lists[0]:
                self.parts[table].append(
                    {name: _array(kind, values) for (name, kind), values in zip(columns, lists, strict=True)}
                )

    def _add_scanned(self, scanned: Scanned) -> None:
        for (table, columns), values in zip(COLUMNS.items(), scanned.tables, strict=True):
            if values is not None:  # None: no rows in this piece
                self.parts[table].append(
                    {
                        # ns come as ints do: values and a missing mask
                        name: scanned_array(INT if kind == NS else kind, value)
                        for (name, kind), value in zip(columns, values, strict=True)
                    }
                )

    def frame(self, table: str) -> pd.DataFrame:
        parts = self.parts.pop(table)
        return pd.DataFrame(
            {name: _column([part.pop(name) for part in parts], kind) for name, kind in COLUMNS[table]},
            copy=False,
        )


def _array(kind: str, values: list[Any]) -> Any:
    """One piece's values of one column as arrays: (int64 values, missing mask or None) for NS and
    INT, float64 for FLOAT, Arrow large_string for STR."""
    if kind == NS:
        return ns_values(values)
    if kind == INT:
        return int_array(values)
    if kind == FLOAT:
        return float_array(values)
    return string_array(values)


def _column(pieces: list[Any], kind: str) -> Any:
    """A column over all pieces, as a pandas array (Int64, float64 or string)."""
    if kind == STR:
        return pd.arrays.ArrowStringArray(pa.chunked_array(pieces, type=pa.large_string()))
    if kind == FLOAT:
        return np.concatenate(pieces) if pieces else np.zeros(0, np.float64)
    values = np.concatenate([p[0] for p in pieces]) if pieces else np.zeros(0, np.int64)
    masks = [p[1] if p[1] is not None else np.zeros(len(p[0]), np.bool_) for p in pieces]
    return pd.arrays.IntegerArray(values, np.concatenate(masks) if masks else np.zeros(0, np.bool_))
