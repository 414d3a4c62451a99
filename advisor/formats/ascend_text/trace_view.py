"""Reading `trace_view.json` (Chrome-trace JSON array of the Ascend PyTorch Profiler) into typed tables.

One streaming pass (see `trace_json`) fills the tables `steps`, `host_ops`, `runtime_api`,
`device_tasks`, `hccl`, `overlap`, `freq`, `flows` and `gc` (schemas in `schema.py`). Events are
classified by the `process_name` of their pid; a byte pre-scan finds those names first, because
the profiler writes some metadata after the events it names. Per chunk only the needed fields are
kept, as Python lists that become compact arrays at the end of the chunk, so memory is bounded by
one chunk's objects plus the output.

The compiled scanner `_tracescan` (built with the package) does the same per piece in C, straight
into arrays, for the pieces it can read exactly as this module does; any other piece (odd types,
malformed events, invalid JSON) takes the Python path, which stays the reference.

Rows keep file order, except `steps`, `overlap`, `freq` and `flows`, which are sorted by time.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, NamedTuple

import msgspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ...errors import InputError, byte_size
from ...model import RankInfo
from ...worker_pool import worker_pool
from ..ascend_common.folder import OUTPUT_DIR, TRACE_VIEW_JSON, output_file
from ..ascend_common.trace_columns import (
    FLOAT,
    ID,
    INT,
    NS,
    STACK,
    STR,
    ColumnMap,
    ColumnSpill,
    Scanned,
    float_array,
    id_array,
    int_array,
    ns_array,
    scanned_array,
    stack_array,
    string_array,
)
from ..ascend_common.trace_json import (
    CHUNK_BYTES,
    MAX_EVENT_BYTES,
    ArrayReader,
    Span,
    is_gzip,
    scan_process_names,
    split_spans,
)
from ..file_memo import FileMemo
from ..sanity import INCOMPLETE, drop_damaged, with_lost_share
from ..schema import conform
from ..step_split import OVERLAP_NAMES
from ..tables import register_table
from ..trace_split import split_processes

try:
    from . import _tracescan
except ImportError:  # a source tree where the C scanner was not compiled: the Python path reads all
    _tracescan = None

OVERLAP_PROCESS = "Overlap Analysis"
TABLES = ("steps", "host_ops", "runtime_api", "device_tasks", "hccl", "overlap", "freq", "flows", "gc")
FLOW_CATS = frozenset({"async_npu", "HostToDevice"})  # torch_to_npu and CANN -> device links
AI_CORE_FREQ = "AI Core Freq"

# Process kinds; OTHER is a named process we do not read (HBM, QoS, …), None an unnamed pid.
OTHER, HOST, CANN, DEVICE, HCCL, OVERLAP, FREQ, GC = range(8)
_STEP = re.compile(r"^ProfilerStep#(\d+)$")
_GROUP_THREAD = re.compile(r"^Group (.+) Communication$")
_PLANE_THREAD = re.compile(r"^(?:Group (.+) )?Plane (.+)$")
_OP_GROUP = re.compile(r"^hcom_\w+?__(\d+)_")  # hcom_allReduce__586_0_1: 586 ends the group hash

# The raw columns kept per chunk, with their converters; NS columns drop rows they cannot read.
_RAW: dict[str, tuple[tuple[str, str], ...]] = {
    "host_ops": (
        ("name", STR),
        ("cat", STR),
        ("start_ns", NS),
        ("dur_us", FLOAT),
        ("tid", INT),
        ("call_stack", STACK),
    ),
    "cann_api": (("name", STR), ("start_ns", NS), ("dur_us", FLOAT), ("tid", INT)),
    "device_tasks": (
        ("name", STR),
        ("task_type", STR),
        ("start_ns", NS),
        ("dur_us", FLOAT),
        ("stream_id", INT),
        ("task_id", INT),
    ),
    "hccl": (
        ("name", STR),
        ("pid", INT),
        ("tid", INT),
        ("start_ns", NS),
        ("dur_us", FLOAT),
        ("task_type", STR),
        ("transport", STR),
        ("link_type", STR),
        ("size_bytes", FLOAT),
        ("src_rank", INT),
        ("dst_rank", INT),
    ),
    "overlap": (("kind", STR), ("start_ns", NS), ("dur_us", FLOAT)),
    "freq": (("ts_ns", NS), ("mhz", FLOAT)),
    "gc": (("start_ns", NS), ("dur_us", FLOAT)),
    # Flow ids: numbers (torch_to_npu) or strings of up to 20+ digits (HostToDevice), kept as text.
    "flow_start": (("cat", STR), ("id", ID), ("host_ns", NS)),
    "flow_end": (("cat", STR), ("id", ID), ("device_ns", NS)),
}


class Args(msgspec.Struct, gc=False):
    """Every args field a table reads, decoded with its event in msgspec's pass (other keys are skipped,
    and a per-event decode call would cost more than the decoding). Untyped, see `Event`."""

    call_stack: Any = msgspec.field(default=None, name="Call stack")
    task_type: Any = msgspec.field(default=None, name="Task Type")
    stream_id: Any = msgspec.field(default=None, name="Stream Id")
    physic_stream_id: Any = msgspec.field(default=msgspec.UNSET, name="Physic Stream Id")
    task_id: Any = msgspec.field(default=None, name="Task Id")
    hccl_task_type: Any = msgspec.field(default=None, name="task type")
    transport: Any = msgspec.field(default=None, name="transport type")
    link: Any = msgspec.field(default=None, name="link type")
    size: Any = msgspec.field(default=None, name="size(Byte)")
    src: Any = msgspec.field(default=None, name="src rank")
    dst: Any = msgspec.field(default=None, name="dst rank")
    mhz: Any = msgspec.field(default=None, name="MHz")
    name: Any = msgspec.UNSET  # thread_name metadata


_NO_ARGS = Args()


class Event(msgspec.Struct, gc=False):
    """One trace event. Fields are untyped: real files mix str and int pids, string and number
    timestamps, and a type check would fail a whole chunk. UNSET marks a field the event lacks."""

    ph: Any = msgspec.UNSET
    name: Any = msgspec.UNSET
    pid: Any = msgspec.UNSET
    tid: Any = None
    ts: Any = msgspec.UNSET
    dur: Any = None
    cat: Any = None
    id: Any = msgspec.UNSET
    args: Args | list | str | int | float | bool | None = None


class TraceTables(dict[str, pd.DataFrame]):
    """The tables of one trace_view.json; `warnings` (one line each), `processes` (pid -> name),
    `truncated` (the file ends inside its array) and `skipped_share` (malformed events of those read)."""

    def __init__(
        self,
        tables: dict[str, pd.DataFrame],
        warnings: list[str],
        processes: dict[Any, str],
        truncated: bool = False,
        skipped_share: float = 0.0,
    ):
        super().__init__(tables)
        self.warnings = warnings
        self.processes = processes
        self.truncated = truncated
        self.skipped_share = skipped_share


def process_kind(name: str) -> int:
    """The kind of a process from its `process_name` (OTHER for processes no table reads)."""
    name = name.strip()
    kinds = {"CANN": CANN, "Ascend Hardware": DEVICE, "HCCL": HCCL, "Communication": HCCL}
    if name in kinds:
        return kinds[name]
    if name == OVERLAP_PROCESS:
        return OVERLAP
    if name == AI_CORE_FREQ:
        return FREQ
    if "gc" in name.lower().split():  # "Python GC"
        return GC
    return HOST if name.lower().startswith("python") else OTHER


def read_trace(
    path: Path,
    chunk_bytes: int = CHUNK_BYTES,
    compiled: bool = True,
    max_event_bytes: int = MAX_EVENT_BYTES,
    processes: int = 1,
) -> TraceTables:
    """Parse `path` in one streaming pass (not memoised: see `parse_trace`). `compiled=False` reads
    every piece with the Python path (the reference that the C scanner is tested against). An event
    longer than `max_event_bytes` is skipped with a warning. With `processes` > 1 a plain (not gzip)
    file is cut into that many spans read side by side (`_read_split`); the tables are the same."""
    read = _SpanRead(path, chunk_bytes, compiled, max_event_bytes)
    if processes > 1 and not is_gzip(path):
        spans = split_spans(path, processes)
        if len(spans) > 1 and (split := _read_split(read, spans)) is not None:
            return split
    names = read.names(None)
    read.kinds = _kinds([names])
    return read.tables([names], [read.events(None)])


def _read_split(read: _SpanRead, spans: list[Span]) -> TraceTables | None:
    """The tables of `spans` read side by side: this process reads the first, a worker process each
    other one. None when a cut proved not to be an element boundary (the span before it does not end
    its array cleanly) or a span cannot be read: the caller then reads the file whole, which gives
    exactly the tables, warnings or error of an unsplit read."""
    spills = [_shared_file() for _ in spans[1:]]
    try:
        events = _read_spans(read, spans, spills)
        if events is None:
            return None
        names, events = events
        if any(part is None for part in events) or any(part.truncated_at is not None for part in events[:-1]):
            return None
        for part, spill in zip(events[1:], spills, strict=True):
            part.builder.load(ColumnMap(spill))  # mapped: the file's pages stay until the tables go
        return read.tables(names, events)
    finally:
        for spill in spills:
            with contextlib.suppress(OSError):
                os.unlink(spill)


def _read_spans(
    read: _SpanRead, spans: list[Span], spills: list[str]
) -> tuple[list[dict[Any, str]], list[_SpanEvents | None]] | None:
    """The process names and events of each span (None where a span cannot be read), or None when a
    worker process died (e.g. killed for memory)."""
    try:
        with worker_pool(len(spans) - 1, preload=[__name__]) as pool:
            later = [pool.submit(read.names, span) for span in spans[1:]]
            names = [read.names(spans[0]), *(future.result() for future in later)]
            read.kinds = _kinds(names)
            pending = [
                pool.submit(read.events_or_none, span, spill)
                for span, spill in zip(spans[1:], spills, strict=True)
            ]
            first = read.events_or_none(spans[0])
            if first is None:  # the file is read whole anyway: the workers' spans are not needed
                for future in pending:
                    future.cancel()
                return names, [None]
            return names, [first, *(future.result() for future in pending)]
    except BrokenProcessPool:
        return None


_SPILL_PREFIX = "advisor-trace-span-"


def _shared_file() -> str:
    """A new empty file for a worker's columns, named after this process: in shared memory where
    there is one (/dev/shm)."""
    folder = "/dev/shm" if os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()
    _remove_orphans(Path(folder))
    fd, path = tempfile.mkstemp(prefix=f"{_SPILL_PREFIX}{os.getpid()}-", dir=folder)
    os.close(fd)
    return path


def _remove_orphans(folder: Path) -> None:
    """Remove the files of reads whose process is gone: killed mid-read (a cancelled analysis gets
    SIGTERM, which skips `finally`), it left them holding shared memory until a reboot."""
    for path in folder.glob(f"{_SPILL_PREFIX}*-*"):
        pid = path.name[len(_SPILL_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            with contextlib.suppress(OSError):  # another reader removed it first
                path.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _kinds(names: list[dict[Any, str]]) -> dict[Any, int]:
    """pid -> process kind, from the names found per span in file order (a later name wins)."""
    return {pid: process_kind(name) for found in names for pid, name in found.items()}


class _SpanRead:
    """The two passes over one span of a trace, each a picklable call for a worker process: the
    process names it holds, then its events into a `_Builder`'s chunks."""

    def __init__(self, path: Path, chunk_bytes: int, compiled: bool, max_event_bytes: int) -> None:
        self.path = path
        self.chunk_bytes = chunk_bytes
        self.compiled = compiled
        self.max_event_bytes = max_event_bytes
        self.kinds: dict[Any, int] = {}
        self.trims = _trims_heap(path)

    def names(self, span: Span | None) -> dict[Any, str]:
        """The process names in `span` (None: the whole file)."""
        return scan_process_names(self.path) if span is None else scan_process_names(self.path, span)

    def events_or_none(self, span: Span, spill_path: str | None = None) -> _SpanEvents | None:
        try:
            return self.events(span, spill_path)
        except InputError:  # a cut inside a string may start a span on bytes that are not JSON
            return None

    def events(self, span: Span | None, spill_path: str | None = None) -> _SpanEvents:
        """The events of `span` (None: the whole file), their processes' kinds from `kinds`. With
        `spill_path` (in a worker process) each chunk's columns go to that file (`ColumnSpill`)."""
        builder = _Builder(self.kinds, self.trims)
        fast = builder.scan if self.compiled and _tracescan is not None else None
        reader = ArrayReader(self.path, Event, self.chunk_bytes, fast, self.max_event_bytes, span=span)
        spill = None if spill_path is None else ColumnSpill(spill_path)
        spilled = dict.fromkeys(builder.parts, 0)
        try:
            # The events are Structs untracked by the cyclic GC (gc=False): no need to pause collections.
            for events in reader:
                builder.feed(events)
                del events  # before the next batch is parsed
                if spill is not None:
                    builder.spill(spill, spilled)
        finally:
            if spill is not None:
                spill.close()
        if self.trims:  # the chunks' objects: else the tables would be built on top of them
            _release_freed_memory()
        return _SpanEvents(builder, reader.count, reader.oversized, reader.truncated_at)

    def tables(self, names: list[dict[Any, str]], spans: list[_SpanEvents]) -> TraceTables:
        """The tables of the spans' events, in file order (the names as found per span, in order)."""
        processes = {pid: name for found in names for pid, name in found.items()}
        builder = spans[0].builder
        for later in spans[1:]:
            builder.append(later.builder)
        count = sum(span.count for span in spans)
        oversized = [at for span in spans for at in span.oversized]
        truncated_at = spans[-1].truncated_at
        path, warnings = self.path, []
        if truncated_at is not None:
            warnings.append(f"{path}: truncated at byte {truncated_at}; read {count} events")
        if builder.skipped:
            warnings.append(f"{path}: skipped {builder.skipped} malformed events")
        if oversized:
            warnings.append(_oversized_warning(path, oversized, self.max_event_bytes))
        lost, seen = builder.skipped + len(oversized), count + len(oversized)
        skipped = lost / seen if seen else 0.0
        tables = builder.tables(flows_beside=len(spans) > 1)
        tables = TraceTables(tables, warnings, processes, truncated_at is not None, skipped)
        if self.trims:
            _release_freed_memory()
        return tables


class _SpanEvents(NamedTuple):
    builder: _Builder
    count: int
    oversized: list[tuple[int, int]]
    truncated_at: int | None


_OFFSETS_NAMED = 5  # in the warning about oversized events; the rest are counted


def _oversized_warning(path: Path, oversized: list[tuple[int, int]], limit: int) -> str:
    """One line: how many events over `limit` bytes were skipped, and where the first ones start."""
    where = ", ".join(f"byte {start} ({byte_size(size)})" for start, size in oversized[:_OFFSETS_NAMED])
    more = f" and {len(oversized) - _OFFSETS_NAMED} more" if len(oversized) > _OFFSETS_NAMED else ""
    events = "event" if len(oversized) == 1 else "events"
    return f"{path}: skipped {len(oversized)} {events} over the {byte_size(limit)} limit, at {where}{more}"


# Files from this size on are read with freed heap pages returned after each step: a trim walks the
# whole heap (~2 ms, 11 per read), which was a third of reading a 2 MiB trace, while what a small
# read frees does not count in a peak.
TRIM_FROM_BYTES = 64 * 2**20


def _trims_heap(path: Path) -> bool:
    try:
        return path.stat().st_size >= TRIM_FROM_BYTES
    except OSError:  # the read itself says why
        return False


def _release_freed_memory() -> None:
    """Return freed heap pages to the system: glibc keeps them mapped after many small objects die,
    which would count twice toward the peak RSS of a multi-GB trace. A no-op without glibc."""
    with contextlib.suppress(OSError, AttributeError, TypeError):
        ctypes.CDLL(None).malloc_trim(0)


# The trace's fields, for the warnings about damaged values.
_LABELS = {"dur_us": "dur", "start_ns": "ts", "ts_ns": "ts", "host_ns": "ts", "device_ns": "ts"}


def _checked(trace: TraceTables, path: Path) -> TraceTables:
    """`trace` without its damaged rows (sanity.py), with the file's warning about them; every table
    records what the file lost (an unknown share when the file was cut short)."""
    for frame in trace.values():  # frames just built by read_trace: not shared yet
        with_lost_share(frame, trace.skipped_share)
        if trace.truncated:
            frame.attrs[INCOMPLETE] = True
    tables, warning = drop_damaged(trace, path, _LABELS)
    warnings = trace.warnings if warning is None else [*trace.warnings, warning]
    return TraceTables(tables, warnings, trace.processes, trace.truncated, trace.skipped_share)


def _parse_checked(path: Path) -> TraceTables:
    return _checked(read_trace(path, processes=split_processes(path)), path)


# The tables of a file without damaged rows, parsed once per (file, size, mtime) in this process.
# Callers share the returned frames: copy before changing them.
parse_trace = FileMemo(_parse_checked)


def _loader(table: str) -> Callable[[RankInfo], pd.DataFrame]:
    def load(rank: RankInfo) -> pd.DataFrame:
        path = output_file(rank, TRACE_VIEW_JSON)
        if path is None:
            raise InputError(
                f"{rank.path}: no {TRACE_VIEW_JSON} in {OUTPUT_DIR} (collect with torch_npu.profiler "
                "and experimental_config export_type=Text; HCCL data needs profiler_level Level1)"
            )
        trace = parse_trace(path)
        frame = trace[table].copy(deep=False)  # a shallow copy: the memo's frame stays as is
        if trace.warnings:  # e.g. a truncated file: the report must say what was not read
            frame.attrs = {**frame.attrs, "warnings": list(trace.warnings)}
        return frame

    load.__doc__ = f"The {table} table of one rank, from its {TRACE_VIEW_JSON}."
    return load


for _table in TABLES:
    register_table(_table, "ascend_text", sources=(TRACE_VIEW_JSON,))(_loader(_table))


class _Builder:
    """Column buffers for every table, filled event by event and compacted once per chunk."""

    def __init__(self, kinds: dict[Any, int], trims: bool) -> None:
        self.kinds = kinds
        self.trims = trims  # return freed heap pages after each table (`TRIM_FROM_BYTES`)
        self.threads: dict[tuple[Any, Any], Any] = {}
        self.skipped = 0
        self.raw = {table: tuple([] for _ in columns) for table, columns in _RAW.items()}
        self.parts: dict[str, list[dict[str, Any]]] = {table: [] for table in _RAW}

    def spill(self, spill: ColumnSpill, done: dict[str, int]) -> None:
        """Write the chunks not yet written (`done` per table) to `spill`, keeping their layouts."""
        for table, parts in self.parts.items():
            for at in range(done[table], len(parts)):
                parts[at] = {column: spill.dump(value) for column, value in parts[at].items()}
            done[table] = len(parts)

    def load(self, columns: ColumnMap) -> None:
        """The chunks' columns back from the layouts `spill` kept."""
        for parts in self.parts.values():
            for at, part in enumerate(parts):
                parts[at] = {column: columns.load(layout) for column, layout in part.items()}

    def append(self, later: _Builder) -> None:
        """Add the chunks of `later`, read from the bytes after this builder's."""
        for table, parts in later.parts.items():
            self.parts[table] += parts
        self.threads.update(later.threads)  # as if read on: a later thread_name wins
        self.skipped += later.skipped

    def scan(self, piece: memoryview) -> Scanned | None:
        """A piece read by the C scanner, or None when it needs the Python path."""
        result = _tracescan.scan(piece, self.kinds)
        return None if result is None else Scanned(*result)

    def feed(self, events: list[Any] | Scanned) -> None:
        if type(events) is Scanned:
            self._add_scanned(events)
            return
        it = iter(events)
        while True:
            try:
                self._fill(it)
                break
            except (KeyError, TypeError, AttributeError):
                # `_fill` reads every field of an event before appending any, so a malformed event
                # (not an object, a field missing, args not an object) is simply left out; the
                # iterator resumes after it.
                self.skipped += 1
        self._compact()

    def _fill(self, it: Iterator[Any]) -> None:
        # The hot loop: locals only, appends bound once per chunk. The process kind comes first: it
        # discards the counters of other processes (~40% of events) at once.
        kind_of = self.kinds.get
        threads = self.threads
        h_name, h_cat, h_ts, h_dur, h_tid, h_stack = (c.append for c in self.raw["host_ops"])
        c_name, c_ts, c_dur, c_tid = (c.append for c in self.raw["cann_api"])
        d_name, d_type, d_ts, d_dur, d_stream, d_task = (c.append for c in self.raw["device_tasks"])
        m_name, m_pid, m_tid, m_ts, m_dur, m_type, m_transport, m_link, m_size, m_src, m_dst = (
            c.append for c in self.raw["hccl"]
        )
        o_kind, o_ts, o_dur = (c.append for c in self.raw["overlap"])
        f_ts, f_mhz = (c.append for c in self.raw["freq"])
        g_ts, g_dur = (c.append for c in self.raw["gc"])
        s_cat, s_id, s_ts = (c.append for c in self.raw["flow_start"])
        e_cat, e_id, e_ts = (c.append for c in self.raw["flow_end"])
        overlap_names = frozenset(OVERLAP_NAMES)
        flow_cats = FLOW_CATS
        other, host, cann, device = OTHER, HOST, CANN, DEVICE
        hccl, overlap, freq, gc_kind = HCCL, OVERLAP, FREQ, GC
        unset = msgspec.UNSET
        table_kinds = frozenset({host, cann, device, hccl})
        for e in it:
            pid = e.pid
            if pid is unset:
                raise KeyError("pid")
            kind = kind_of(pid)
            if kind == other:
                continue
            ph = e.ph
            if ph == "X":
                # A missing field is a malformed event only where the table reads it.
                name, ts = e.name, e.ts
                if kind in table_kinds and (name is unset or ts is unset):
                    raise KeyError("name or ts")
                if kind == host:
                    args = e.args
                    stack = (args if type(args) is Args else _odd_args(args)).call_stack
                    cat, dur, tid = e.cat, e.dur, e.tid
                    if cat == "GC":
                        g_ts(ts)
                        g_dur(dur)
                        continue
                    h_name(name)
                    h_cat(cat)
                    h_ts(ts)
                    h_dur(dur)
                    h_tid(tid)
                    h_stack(stack)
                elif kind == cann:
                    dur, tid = e.dur, e.tid
                    c_name(name)
                    c_ts(ts)
                    c_dur(dur)
                    c_tid(tid)
                elif kind == device:
                    a = e.args
                    if type(a) is not Args:
                        a = _odd_args(a)
                    stream = a.stream_id
                    if stream is None:  # newer torch_npu writes the physical stream only
                        stream = e.tid if a.physic_stream_id is unset else a.physic_stream_id
                    dur = e.dur
                    d_name(name)
                    d_type(a.task_type)
                    d_ts(ts)
                    d_dur(dur)
                    d_stream(stream)
                    d_task(a.task_id)
                elif kind == hccl:
                    a = e.args
                    if type(a) is not Args:
                        a = _odd_args(a)
                    tid, dur = e.tid, e.dur
                    m_name(name)
                    m_pid(pid)
                    m_tid(tid)
                    m_ts(ts)
                    m_dur(dur)
                    m_type(a.hccl_task_type)
                    m_transport(a.transport)
                    m_link(a.link)
                    m_size(a.size)
                    m_src(a.src)
                    m_dst(a.dst)
                elif kind == overlap:
                    if name is unset:
                        raise KeyError("name")
                    if name in overlap_names:
                        if ts is unset:
                            raise KeyError("ts")
                        dur = e.dur
                        o_kind(name)
                        o_ts(ts)
                        o_dur(dur)
                elif kind == gc_kind or str(e.cat).lower() == "gc":  # GC events may have no process
                    if ts is unset:
                        raise KeyError("ts")
                    dur = e.dur
                    g_ts(ts)
                    g_dur(dur)
            elif ph == "s" or ph == "f":
                cat = e.cat
                if cat in flow_cats:
                    flow_id, ts = e.id, e.ts
                    if flow_id is unset or ts is unset:
                        raise KeyError("id or ts")
                    if ph == "s":
                        s_cat(cat)
                        s_id(flow_id)
                        s_ts(ts)
                    else:
                        e_cat(cat)
                        e_id(flow_id)
                        e_ts(ts)
            elif ph == "C":
                if kind is None and e.name is unset:
                    raise KeyError("name")
                if kind == freq or (kind is None and e.name == AI_CORE_FREQ):
                    ts, mhz = e.ts, e.args.mhz  # args not an object: an AttributeError, the event is skipped
                    if ts is unset:
                        raise KeyError("ts")
                    f_ts(ts)
                    f_mhz(mhz)
            elif ph == "M" and e.name == "thread_name":
                name = e.args.name
                if name is unset:
                    raise KeyError("args.name")
                threads[(pid, e.tid)] = name
            elif ph is unset:
                raise KeyError("ph")

    def _compact(self) -> None:
        """Turn this chunk's lists into arrays (rows with an unreadable timestamp are dropped)."""
        for table, columns in _RAW.items():
            lists = self.raw[table]
            if not lists[0]:
                continue
            part: dict[str, Any] = {}
            keep = None
            for (column, kind), values in zip(columns, lists, strict=True):
                if kind == NS:
                    part[column], keep = ns_array(values)
                elif kind == FLOAT:
                    part[column] = float_array(values)
                elif kind == INT:
                    part[column] = int_array(values)
                elif kind == ID:
                    part[column] = id_array(values)
                elif kind == STACK:
                    part[column] = stack_array(values)
                else:
                    part[column] = string_array(values)
                values.clear()
            if keep is not None:
                part = {column: _take(value, keep) for column, value in part.items()}
            self.parts[table].append(part)

    def _add_scanned(self, scanned: Scanned) -> None:
        for (table, columns), values in zip(_RAW.items(), scanned.tables, strict=True):
            if values is None:  # no rows in this piece
                continue
            part = {}
            for (column, kind), value in zip(columns, values, strict=True):
                part[column] = scanned_array(kind, value)
            self.parts[table].append(part)
        for pid, tid, name in scanned.threads:
            self.threads[(pid, tid)] = name

    def _column(self, parts: list[dict[str, Any]], column: str, kind: str) -> Any:
        """One column over all chunks, as a pandas array of the schema's dtype (chunks released)."""
        pieces = [part.pop(column) for part in parts]
        if kind in (STR, ID, STACK):
            return pd.arrays.ArrowStringArray(pa.chunked_array(pieces, type=pa.large_string()))
        if kind == FLOAT:
            return np.concatenate(pieces) if pieces else np.zeros(0, np.float64)
        if kind == NS:
            values = np.concatenate(pieces) if pieces else np.zeros(0, np.int64)
            return pd.arrays.IntegerArray(values, np.zeros(len(values), np.bool_))
        values = np.concatenate([p[0] for p in pieces]) if pieces else np.zeros(0, np.int64)
        masks = [p[1] if p[1] is not None else np.zeros(len(p[0]), np.bool_) for p in pieces]
        return pd.arrays.IntegerArray(values, np.concatenate(masks) if masks else np.zeros(0, np.bool_))

    def _frame(self, table: str) -> pd.DataFrame:
        parts = self.parts.pop(table)
        return pd.DataFrame(
            {column: self._column(parts, column, kind) for column, kind in _RAW[table]}, copy=False
        )

    def tables(self, flows_beside: bool = False) -> dict[str, pd.DataFrame]:
        """The final tables, built one at a time so that only one table's raw chunks are copied at once.
        `flows_beside`: the flows (the costliest to build) in a thread beside the others, for a read
        whose worker processes have finished and left their cores idle (Arrow and numpy release the GIL)."""
        tables: dict[str, pd.DataFrame] = {}
        raw = {
            "host_ops": lambda: self._frame("host_ops"),
            "steps": lambda: _steps(tables["host_ops"]),
            "runtime_api": lambda: self._frame("cann_api"),
            "device_tasks": lambda: self._frame("device_tasks"),
            "hccl": lambda: _hccl(self._frame("hccl"), self.threads),
            "overlap": lambda: _sorted(self._frame("overlap"), "start_ns"),
            "freq": lambda: _sorted(self._frame("freq"), "ts_ns"),
            "flows": lambda: _flows(self._frame("flow_start"), self._frame("flow_end")),
            "gc": lambda: self._frame("gc"),
        }

        def build(name: str) -> pd.DataFrame:
            frame = conform(raw[name](), name)
            frame.attrs["source"] = TRACE_VIEW_JSON
            if self.trims:  # the raw columns just copied, before the next table is built
                _release_freed_memory()
            return frame

        with ThreadPoolExecutor(1) as thread:
            flows = thread.submit(build, "flows") if flows_beside else None
            for name in raw:
                if name != "flows" or flows is None:
                    tables[name] = build(name)
            if flows is not None:
                tables["flows"] = flows.result()
        return {name: tables[name] for name in TABLES}


def _odd_args(args: Any) -> Args:
    """Args that are not an object: empty when absent or falsy (null, [], "", 0), else malformed."""
    if args:
        raise TypeError("args is not an object")
    return _NO_ARGS


def _take(value: Any, keep: np.ndarray) -> Any:
    if isinstance(value, tuple):  # int column: values and missing mask
        return value[0][keep], None if value[1] is None else value[1][keep]
    if isinstance(value, pa.Array):
        return value.filter(pa.array(keep))
    return value[keep]


def _sorted(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    return frame.sort_values(column, kind="stable", ignore_index=True)


def _steps(host: pd.DataFrame) -> pd.DataFrame:
    """One row per ProfilerStep#N, from the host cpu_op event (another track only when it is alone)."""
    is_step = host["name"].str.startswith("ProfilerStep#").fillna(False)
    rows = host.loc[is_step, ["name", "cat", "start_ns", "dur_us"]]
    step = rows["name"].str.extract(_STEP, expand=False).astype("Int64")
    rows = rows.assign(step=step, secondary=(rows["cat"] != "cpu_op").fillna(True)).dropna(subset="step")
    rows = rows.sort_values(["secondary", "start_ns"], kind="stable").drop_duplicates("step")
    return _sorted(rows, "start_ns")


def _hccl(frame: pd.DataFrame, threads: dict[tuple[Any, Any], Any]) -> pd.DataFrame:
    """Ops (on "Group … Communication" threads) and plane tasks, with their group and plane."""
    labels = []
    for (pid, tid), thread in threads.items():
        if type(pid) is not int or type(tid) is not int or not isinstance(thread, str):
            continue
        if match := _GROUP_THREAD.match(thread):
            labels.append((pid, tid, True, match.group(1), None))
        elif match := _PLANE_THREAD.match(thread):
            labels.append((pid, tid, False, match.group(1), f"Plane {match.group(2)}"))
    lookup = pd.DataFrame(labels, columns=["pid", "tid", "is_op", "group", "plane"])
    lookup = lookup.astype(
        {"pid": "Int64", "tid": "Int64", "is_op": "boolean", "group": "string", "plane": "string"}
    )
    frame = frame.merge(lookup, on=["pid", "tid"], how="left")  # keeps the frame's row order
    frame["is_op"] = frame["is_op"].fillna(frame["name"].str.startswith("hcom_")).fillna(False)
    # Ops without a group thread: the digits after "__" in their name. Tasks: the only group, if one.
    ops = frame["is_op"]
    need = ops & frame["group"].isna()
    if need.any():
        frame.loc[need, "group"] = frame.loc[need, "name"].str.extract(_OP_GROUP, expand=False)
    groups = frame.loc[ops, "group"].dropna().unique()
    if len(groups) == 1:
        frame.loc[~ops & frame["group"].isna(), "group"] = groups[0]
    return frame


def _flows(starts: pd.DataFrame, ends: pd.DataFrame) -> pd.DataFrame:
    """Flow starts (host) and ends (device) matched by category and id; a repeated start counts once
    (its earliest). Strings become integer codes (one Arrow hash pass) and are matched with numpy:
    a join on the strings themselves needs several times the memory."""
    n = len(starts)
    if not n or not len(ends):
        return pd.DataFrame({"cat": pd.array([], dtype="string"), "host_ns": [], "device_ns": []})
    cats, cat_code = _codes(starts["cat"], ends["cat"])
    ids, id_code = _codes(starts["id"], ends["id"])
    key = cat_code * (len(ids) + 1) + id_code  # null cat or id: code -1, never matched below
    host_ns = starts["host_ns"].to_numpy(np.int64)
    order = np.lexsort((host_ns, key[:n]))
    start_key, start_ns = key[:n][order], host_ns[order]
    first = np.r_[True, start_key[1:] != start_key[:-1]]
    start_key, start_ns = start_key[first], start_ns[first]
    end_key = key[n:]
    at = np.minimum(np.searchsorted(start_key, end_key), len(start_key) - 1)
    matched = (start_key[at] == end_key) & (cat_code[n:] >= 0) & (id_code[n:] >= 0)
    host, device = start_ns[at[matched]], ends["device_ns"].to_numpy(np.int64)[matched]
    order = np.lexsort((device, host))
    cat = cats.take(pa.array(cat_code[n:][matched][order]))
    return pd.DataFrame(
        {
            "cat": pd.arrays.ArrowStringArray(pa.chunked_array([cat])),
            "host_ns": host[order],
            "device_ns": device[order],
        }
    )


def _codes(*columns: pd.Series) -> tuple[pa.Array, np.ndarray]:
    """The distinct strings of the columns and each row's index among them (-1 when missing)."""
    chunks = []
    for column in columns:
        values = pa.array(column.array, type=pa.large_string())
        chunks += values.chunks if isinstance(values, pa.ChunkedArray) else [values]
    encoded = pc.dictionary_encode(pa.chunked_array(chunks, type=pa.large_string()))
    codes = [pc.fill_null(chunk.indices, -1).to_numpy().astype(np.int64) for chunk in encoded.chunks]
    dictionary = encoded.chunks[0].dictionary if encoded.num_chunks else pa.array([], pa.large_string())
    return dictionary, np.concatenate(codes) if codes else np.zeros(0, np.int64)
