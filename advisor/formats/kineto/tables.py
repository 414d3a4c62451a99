"""The normalised tables of one PyTorch profiler (Kineto) trace (schemas in `schema.py`).

One read of the file (`events.read_trace`, memoised per file in this process) fills every table:
`steps`, `host_ops`, `runtime_api`, `kernels`, `device_tasks`, `memcpy`, `comm_ops`, `overlap`,
`step_trace`, `flows`, `gc` and `memory_record`. Timestamps become absolute ns (the trace's base plus
its relative µs), durations stay µs.

The 2021 schema's capitalised categories are mapped to today's: `Operator` is a `user_annotation`
when its name is a record_function range (ProfilerStep#N, enumerate(DataLoader)…, Optimizer.step#…,
gloo:/nccl: collectives), else a `cpu_op`; `Runtime`, `Kernel`, `Memcpy`, `Memset` are
`cuda_runtime`, `kernel`, `gpu_memcpy`, `gpu_memset`.

The Ascend profiler draws the device's time split ("Overlap Analysis") itself; here it is derived
with the same meaning. GPU: Computing is the union of the non-collective kernels, copies and memsets
on all streams, Communication the union of the collective (NCCL) kernels, Communication(Not
Overlapped) the part of it outside Computing, Free the rest of the profiled steps. CPU-only traces:
the main thread plays the device: its ops are Computing, the gloo/nccl collective ranges
Communication, and time in no op (Python, sleeps, waits) is Free.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from ...errors import InputError
from ...model import RankInfo
from ..file_memo import FileMemo
from ..sanity import INCOMPLETE, drop_damaged
from ..schema import EVENT, conform
from ..step_split import COMMUNICATION, COMPUTING, FREE, NOT_OVERLAPPED, step_trace_from_overlap
from ..tables import register_table
from .discover import FORMAT_NAME
from .events import KinetoTrace, read_trace

TABLES = (
    "steps",
    "host_ops",
    "runtime_api",
    "kernels",
    "device_tasks",
    "memcpy",
    "comm_ops",
    "overlap",
    "step_trace",
    "flows",
    "gc",
    "memory_record",
)
SOURCE = "PyTorch profiler trace (overlap derived from kernel streams)"
SOURCE_CPU = "PyTorch profiler trace (overlap derived from the main thread's ops)"

HOST_CATS = ("cpu_op", "user_annotation", "python_function")
COMM_ARGS = ("collective", "in_nelems", "dtype", "pg_name")  # record_param_comms' and NCCL kernels'
HOST_COLUMNS = ["name", "cat", *EVENT, "tid", "call_stack", *COMM_ARGS]
DEVICE_COLUMNS = ["name", "cat", *EVENT, "tid", "stream", "correlation", "bytes", *COMM_ARGS]
RUNTIME_CATS = ("cuda_runtime", "cuda_driver")
DEVICE_CATS = ("kernel", "gpu_memcpy", "gpu_memset")
# 2021 spellings (already lower-cased by the reader) -> today's categories; "operator" is decided by name.
_OLD_CATS = {"runtime": "cuda_runtime", "memcpy": "gpu_memcpy", "memset": "gpu_memset"}
_ANNOTATION_NAME = re.compile(
    r"^(?:ProfilerStep#|enumerate\(DataLoader\)|Optimizer\.|gloo:|nccl:|DistributedDataParallel\.|##)"
)
_STEP = re.compile(r"^ProfilerStep#(\d+)$")
GC_EVENT = "Python GC"
GC_COLLECT_CALL = "<built-in function collect>"
# NCCL kernels (HTA's communication class, RCCL too): ncclKernel_*, ncclDevKernel_*.
_COLLECTIVE_KERNEL = re.compile(r"^nccl|ncclKernel", re.IGNORECASE)
_KERNEL_COLLECTIVE = re.compile(r"nccl(?:Dev)?Kernel_([A-Za-z]+)", re.IGNORECASE)
_COLLECTIVE_RANGE = re.compile(r"^(gloo|nccl):(\w+)")
_P2P = frozenset({"send", "recv", "sendrecv"})
RECORD_PARAM_COMMS = "record_param_comms"
# Bytes per element of the `dtype` that record_param_comms writes (torch ScalarType names).
_DTYPE_BYTES = {
    "double": 8, "long": 8, "complexfloat": 8, "int64": 8, "float64": 8,
    "float": 4, "int": 4, "float32": 4, "int32": 4, "complexhalf": 4,
    "half": 2, "bfloat16": 2, "short": 2, "float16": 2, "int16": 2,
    "byte": 1, "char": 1, "bool": 1, "uint8": 1, "int8": 1,
    "float8_e4m3fn": 1, "float8_e5m2": 1,
}  # fmt: skip
_MEMCPY_NAME = re.compile(r"^Memcpy (\w+)(?: \((\w+) -> (\w+)\))?")
_MEMSET_NAME = re.compile(r"^Memset(?: \((\w+)\))?")
_STREAM_TID = re.compile(r"(\d+)\s*$")
Spans = tuple[np.ndarray, np.ndarray]  # (starts, ends) of intervals, ns


class KinetoTables(dict[str, pd.DataFrame]):
    """The tables of one trace file, and the file's warnings (one line each)."""

    def __init__(self, tables: dict[str, pd.DataFrame], warnings: list[str]) -> None:
        super().__init__(tables)
        self.warnings = warnings


def build_tables(trace: KinetoTrace) -> KinetoTables:
    """Every table of `trace`, damaged rows dropped (sanity.py), with the file's warnings."""
    if trace.x.empty:
        raise InputError(f"{trace.path}: no complete events (ph X) in traceEvents: nothing was profiled")
    events = _normalised(trace)
    cat = events["cat"]
    # Each table takes only the columns it reads: copying the rows of every column costs most.
    host = events.loc[cat.isin(HOST_CATS) & (events["name"] != GC_EVENT).fillna(True), HOST_COLUMNS]
    steps = _steps(host)
    runtime = events.loc[cat.isin(RUNTIME_CATS), ["name", *EVENT, "tid", "correlation"]]
    device = _device_events(events.loc[cat.isin(DEVICE_CATS), DEVICE_COLUMNS], runtime, steps)
    kernels = device[device["cat"] == "kernel"]
    collective = kernels["name"].str.contains(_COLLECTIVE_KERNEL).fillna(False)
    comm = _comm_ops(kernels[collective], host, steps)
    gpu = len(device) > 0
    if gpu:
        overlap = _gpu_overlap(device, collective.reindex(device.index, fill_value=False), steps)
    else:
        overlap = _cpu_overlap(host, comm, steps)
    tables = {
        "steps": steps,
        "host_ops": host.assign(start_ns=host["start_ns"], tid=_int_tid(host["tid"])),
        "runtime_api": runtime.assign(tid=_int_tid(runtime["tid"])),
        "kernels": kernels.rename(columns={"dur_us": "duration_us"}),
        "device_tasks": device.assign(task_type=device["cat"]),
        "memcpy": _memcpy(device[device["cat"] != "kernel"]),
        "comm_ops": comm,
        "overlap": overlap,
        "flows": _flows(runtime, device),
        "gc": _gc(events.loc[cat == "python_function", ["name", *EVENT]]),
        "memory_record": _memory(trace),
    }
    tables = {name: conform(frame, name) for name, frame in tables.items()}
    warnings = _read_warnings(trace)
    checked, damaged = drop_damaged(tables, trace.path, {"dur_us": "dur", "duration_us": "dur"})
    if damaged is not None:
        warnings.append(damaged)
    source = SOURCE if gpu else SOURCE_CPU
    checked["step_trace"] = step_trace_from_overlap(checked["steps"], checked["overlap"], source)
    for frame in checked.values():
        frame.attrs.setdefault("source", trace.path.name)
        if trace.truncated_at is not None:
            frame.attrs[INCOMPLETE] = True
    return KinetoTables({name: checked[name] for name in TABLES}, warnings)


def _read_warnings(trace: KinetoTrace) -> list[str]:
    warnings = []
    if trace.truncated_at is not None:
        warnings.append(f"{trace.path}: truncated at byte {trace.truncated_at}; read {trace.count} events")
    if trace.oversized:
        warnings.append(f"{trace.path}: skipped {len(trace.oversized)} events over the size limit")
    if trace.base_ns is None:
        warnings.append(
            f"{trace.path}: relative timestamps without baseTimeNanoseconds: ranks cannot be aligned in time"
        )
    return warnings


def _normalised(trace: KinetoTrace) -> pd.DataFrame:
    """The complete events with today's categories and absolute start times (rows without a time
    dropped)."""
    x = trace.x
    cat = x["cat"].astype("string")
    operator = cat == "operator"
    annotation = x["name"].astype("string").str.contains(_ANNOTATION_NAME).fillna(False)
    cat = cat.replace(_OLD_CATS)
    cat = cat.mask(operator & annotation, "user_annotation").mask(operator & ~annotation, "cpu_op")
    start = x["ts_ns"].astype("Int64") + (trace.base_ns or 0)
    events = x.assign(cat=cat, start_ns=start).dropna(subset=["start_ns"])
    return events.reset_index(drop=True)


def _int_tid(tid: pd.Series) -> pd.Series:
    """Thread ids as numbers: Kineto writes ints and strings ("12345"); others become <NA>."""
    return pd.to_numeric(tid.astype("string").str.strip(), errors="coerce").astype("Int64")


def _steps(host: pd.DataFrame) -> pd.DataFrame:
    """One row per ProfilerStep#N (the first one when it repeats), by start."""
    rows = host[
        (host["cat"] == "user_annotation") & host["name"].str.startswith("ProfilerStep#").fillna(False)
    ]
    step = rows["name"].str.extract(_STEP, expand=False).astype("Int64")
    rows = rows.assign(step=step).dropna(subset=["step"]).sort_values("start_ns", kind="stable")
    return rows.drop_duplicates("step").reset_index(drop=True)


def _step_at(steps: pd.DataFrame, ns: np.ndarray) -> np.ndarray:
    """The step (float, NaN outside every step) whose window holds each time."""
    if steps.empty:
        return np.full(len(ns), np.nan)
    starts = steps["start_ns"].to_numpy(np.int64)
    ends = starts + np.round(steps["dur_us"].fillna(0).to_numpy(np.float64) * 1000).astype(np.int64)
    at = np.searchsorted(starts, ns, side="right") - 1
    inside = (at >= 0) & (ns < ends[np.maximum(at, 0)])
    numbers = steps["step"].to_numpy(np.float64)
    return np.where(inside, numbers[np.maximum(at, 0)], np.nan)


def _device_events(device: pd.DataFrame, runtime: pd.DataFrame, steps: pd.DataFrame) -> pd.DataFrame:
    """GPU activity with its stream and step: the step its launching runtime call falls in (through
    the correlation), else the step its own start falls in."""
    stream = device["stream"].astype("Int64")
    unnamed = stream.isna()
    if unnamed.any():  # 2021 traces may name the stream only in the tid: "stream 7"
        tid = device.loc[unnamed, "tid"].astype("string").str.extract(_STREAM_TID, expand=False)
        stream[unnamed] = pd.to_numeric(tid, errors="coerce").astype("Int64")
    launches = runtime.dropna(subset=["correlation"]).drop_duplicates("correlation")
    launched_at = device["correlation"].map(launches.set_index("correlation")["start_ns"])
    at = launched_at.fillna(device["start_ns"]).to_numpy(np.int64, na_value=0)
    step = pd.array(_step_at(steps, at)).astype("Int64") if len(device) else pd.array([], dtype="Int64")
    return device.assign(stream_id=stream, step=step)


def _collective_name(names: pd.Series, recorded: pd.Series) -> pd.Series:
    """allreduce, allgather, …: the recorded "Collective name", else the kernel's name part."""
    from_name = names.str.extract(_KERNEL_COLLECTIVE, expand=False).str.lower()
    return recorded.astype("string").str.lower().str.replace("_", "", regex=False).fillna(from_name)


def _size_bytes(frame: pd.DataFrame) -> pd.Series:
    per_element = frame["dtype"].astype("string").str.lower().map(_DTYPE_BYTES).astype("float64")
    return frame["in_nelems"].astype("float64") * per_element


def _comm_ops(nccl_kernels: pd.DataFrame, host: pd.DataFrame, steps: pd.DataFrame) -> pd.DataFrame:
    """One row per collective: the NCCL kernels on a GPU; without them the gloo:/nccl: ranges of the
    host (the worker thread's range lasts until every rank is done), else record_param_comms ops."""
    if len(nccl_kernels):
        ops = nccl_kernels.assign(op_name=_collective_name(nccl_kernels["name"], nccl_kernels["collective"]))
    else:
        ranges = host[
            (host["cat"] == "user_annotation") & host["name"].str.match(_COLLECTIVE_RANGE).fillna(False)
        ]
        if len(ranges):
            op = ranges["name"].str.extract(_COLLECTIVE_RANGE)[1].str.replace("_", "", regex=False)
            ops = ranges.assign(op_name=op.str.lower())
        else:
            params = host[host["name"] == RECORD_PARAM_COMMS]
            ops = params.assign(op_name=_collective_name(params["name"], params["collective"]))
        ops = ops.assign(step=pd.array(_step_at(steps, ops["start_ns"].to_numpy(np.int64))).astype("Int64"))
    kind = np.where(ops["op_name"].isin(_P2P).fillna(False), "p2p", "collective")
    return ops.assign(
        kind=kind, group=ops["pg_name"], elapse_us=ops["dur_us"], size_bytes=_size_bytes(ops)
    ).sort_values("start_ns", kind="stable")


def _merged(starts: np.ndarray, ends: np.ndarray) -> Spans:
    """The union of [start, end) intervals, as sorted disjoint intervals."""
    if not len(starts):
        return starts, ends
    order = np.argsort(starts, kind="stable")
    starts, ends = starts[order], ends[order]
    reach = np.maximum.accumulate(ends)
    first = np.flatnonzero(np.r_[True, starts[1:] > reach[:-1]])  # each merged interval's first
    return starts[first], np.maximum.reduceat(ends, first)


def _minus(a: Spans, b: Spans) -> Spans:
    """The parts of the disjoint intervals `a` outside the disjoint intervals `b`."""
    out_s, out_e = [], []
    b_s, b_e = b
    for start, end in zip(*a, strict=True):
        lo = np.searchsorted(b_e, start, side="right")
        hi = np.searchsorted(b_s, end, side="left")
        cursor = start
        for cut_s, cut_e in zip(b_s[lo:hi], b_e[lo:hi], strict=True):
            if cut_s > cursor:
                out_s.append(cursor)
                out_e.append(cut_s)
            cursor = max(cursor, cut_e)
        if cursor < end:
            out_s.append(cursor)
            out_e.append(end)
    return np.array(out_s, np.int64), np.array(out_e, np.int64)


def _gaps(busy: Spans, low: int, high: int) -> Spans:
    """The parts of [low, high) outside the sorted disjoint intervals `busy`."""
    starts, ends = _clip(busy, low, high)
    gap_starts = np.r_[np.int64(low), ends]
    gap_ends = np.r_[starts, np.int64(high)]
    keep = gap_ends > gap_starts
    return gap_starts[keep], gap_ends[keep]


def _clip(spans: Spans, low: int, high: int) -> Spans:
    starts, ends = np.maximum(spans[0], low), np.minimum(spans[1], high)
    keep = ends > starts
    return starts[keep], ends[keep]


def _ends(frame: pd.DataFrame) -> Spans:
    starts = frame["start_ns"].to_numpy(np.int64)
    durations = np.round(frame["dur_us"].fillna(0).clip(lower=0).to_numpy(np.float64) * 1000).astype(np.int64)
    return starts, starts + durations


def _window(
    steps: pd.DataFrame, busy_ends: np.ndarray, launched_in_steps: np.ndarray
) -> tuple[int, int] | None:
    """The profiled window: the steps, up to the end of the last work launched in them (the device
    runs behind the host); without steps, None (the span of the work)."""
    if steps.empty:
        return None
    starts, ends = _ends(steps)
    last = int(ends.max())
    if launched_in_steps.any():
        last = max(last, int(busy_ends[launched_in_steps].max()))
    return int(starts.min()), last


def _cut(spans: Spans, cuts: np.ndarray) -> Spans:
    """The intervals split at the sorted times `cuts` that fall strictly inside them."""
    starts, ends = spans
    first = np.searchsorted(cuts, starts, side="right")  # the first cut after each start
    inside = np.maximum(np.searchsorted(cuts, ends, side="left") - first, 0)
    if not inside.any():
        return spans
    pieces = inside + 1
    owner = np.repeat(np.arange(len(starts)), pieces)
    nth = np.arange(pieces.sum()) - np.repeat(np.cumsum(pieces) - pieces, pieces)  # piece 0..inside
    at = first[owner] + nth  # the cut that ends the piece (if it is not the last)
    last = len(cuts) - 1
    piece_starts = np.where(nth == 0, starts[owner], cuts[np.minimum(at - 1, last)])
    piece_ends = np.where(nth == inside[owner], ends[owner], cuts[np.minimum(at, last)])
    return piece_starts, piece_ends


def _slices(
    computing: Spans, communication: Spans, window: tuple[int, int] | None, cuts: np.ndarray
) -> pd.DataFrame:
    """The Overlap-Analysis slices of a timeline from its busy intervals (ns), split at `cuts` (the
    step starts): step_trace gives each slice to the step it starts in."""
    computing, communication = _merged(*computing), _merged(*communication)
    busy = _merged(np.r_[computing[0], communication[0]], np.r_[computing[1], communication[1]])
    if window is None:
        if not len(busy[0]):
            return pd.DataFrame({"kind": [], "start_ns": [], "dur_us": []})
        window = (int(busy[0].min()), int(busy[1].max()))
    low, high = window
    parts = {
        COMPUTING: _clip(computing, low, high),
        COMMUNICATION: _clip(communication, low, high),
        NOT_OVERLAPPED: _clip(_minus(communication, computing), low, high),
        FREE: _gaps(busy, low, high),
    }
    frames = [
        pd.DataFrame({"kind": kind, "start_ns": starts, "dur_us": (ends - starts) / 1000.0})
        for kind, spans in parts.items()
        for starts, ends in [_cut(spans, cuts)]
    ]
    return pd.concat(frames, ignore_index=True).sort_values("start_ns", kind="stable")


def _gpu_overlap(device: pd.DataFrame, collective: pd.Series, steps: pd.DataFrame) -> pd.DataFrame:
    starts, ends = _ends(device)
    comm = collective.to_numpy(bool)
    window = _window(steps, ends, device["step"].notna().to_numpy(bool))
    cuts = np.sort(steps["start_ns"].to_numpy(np.int64))
    return _slices((starts[~comm], ends[~comm]), (starts[comm], ends[comm]), window, cuts)


def main_thread(host: pd.DataFrame) -> str | None:
    """The thread of the ProfilerStep ranges, else the one with the most cpu_op time."""
    marked = host.loc[host["name"].str.startswith("ProfilerStep#").fillna(False), "tid"]
    if len(marked):
        return str(marked.mode().iloc[0])
    ops = host[host["cat"] == "cpu_op"]
    if ops.empty:
        return None
    return str(ops.groupby(ops["tid"].astype("string"))["dur_us"].sum().idxmax())


def _cpu_overlap(host: pd.DataFrame, comm: pd.DataFrame, steps: pd.DataFrame) -> pd.DataFrame:
    main = main_thread(host)
    ops = host[(host["cat"] == "cpu_op") & (host["tid"].astype("string") == main)]
    starts, ends = _ends(ops)
    comm_starts, comm_ends = _ends(comm)
    window = _window(steps, np.zeros(0, np.int64), np.zeros(0, bool))
    cuts = np.sort(steps["start_ns"].to_numpy(np.int64))
    return _slices((starts, ends), (comm_starts, comm_ends), window, cuts)


def _memcpy(copies: pd.DataFrame) -> pd.DataFrame:
    """Copies and memsets with their kind and the memory on each side, from the name."""
    names = copies["name"].astype("string")
    parts = names.str.extract(_MEMCPY_NAME)
    memset = names.str.extract(_MEMSET_NAME)[0]
    is_memset = copies["cat"] == "gpu_memset"
    return copies.assign(
        kind=parts[0].mask(is_memset, "Memset"),
        src_memory=parts[1],
        dst_memory=parts[2].mask(is_memset, memset),
        size_bytes=copies["bytes"],
    )


def _flows(runtime: pd.DataFrame, device: pd.DataFrame) -> pd.DataFrame:
    """Host start (the runtime call) and device start (the work it launched) per correlation."""
    launches = runtime.dropna(subset=["correlation"])[["correlation", "start_ns"]]
    work = device.dropna(subset=["correlation"])[["correlation", "start_ns"]]
    pairs = launches.drop_duplicates("correlation").merge(
        work, on="correlation", suffixes=("_host", "_device")
    )
    pairs = pairs.sort_values(["start_ns_host", "start_ns_device"], kind="stable")
    return pd.DataFrame(
        {
            "cat": "ac2g",
            "host_ns": pairs["start_ns_host"].to_numpy(),
            "device_ns": pairs["start_ns_device"].to_numpy(),
        }
    )


def _gc(python: pd.DataFrame) -> pd.DataFrame:
    """The collector's passes ("Python GC"), else the gc.collect() calls the Python tracer recorded."""
    passes = python[python["name"] == GC_EVENT]
    return passes if len(passes) else python[python["name"] == GC_COLLECT_CALL]


def _memory(trace: KinetoTrace) -> pd.DataFrame:
    samples = trace.instants
    device_type = samples["device_type"].astype("Int64")
    gpu = "GPU " + samples["device_id"].astype("Int64").astype("string")
    return pd.DataFrame(
        {
            "component": "torch",
            "ts_ns": samples["ts_ns"].astype("Int64") + (trace.base_ns or 0),
            "allocated_bytes": samples["total_allocated"],
            "reserved_bytes": samples["total_reserved"],
            "device": gpu.mask(device_type == 0, "CPU"),
        }
    )


def _parse(path: Path) -> KinetoTables:
    return build_tables(read_trace(path))


# The tables of a trace, read once per (file, size, mtime) in this process; callers share the frames.
parse_tables = FileMemo(_parse)


def _loader(table: str) -> Callable[[RankInfo], pd.DataFrame]:
    def load(rank: RankInfo) -> pd.DataFrame:
        tables = parse_tables(rank.path / rank.files[0])
        frame = tables[table].copy(deep=False)  # a shallow copy: the memo's frame stays as is
        if tables.warnings:
            known = [*frame.attrs.get("warnings", []), *tables.warnings]
            frame.attrs = {**frame.attrs, "warnings": list(dict.fromkeys(known))}
        return frame

    load.__doc__ = f"The {table} table of one rank, from its PyTorch profiler trace."
    return load


for _table in TABLES:
    register_table(_table, FORMAT_NAME)(_loader(_table))
