"""Kineto's JSON, byte for byte in its layouts: torch >= 2.4 (`schema="new"`) and 2021 (`"old"`).

New traces follow what torch 2.13 writes (tests/data/kineto): one key per line, `args` on one line,
`ts` in µs with three decimals relative to `baseTimeNanoseconds`. Old traces follow the tb_plugin
era (docs: ../shared/docs/kineto-format.md §1): capitalised categories, absolute integer µs, string
tids on X events, lower-case `external id` on runtime and GPU events, `async`/`launch` flows, no
`distributedInfo`, no Python GC or cuda_sync events, no record_param_comms op.
"""

from __future__ import annotations

import gzip as gzip_module
import json
import os
from pathlib import Path
from typing import Any

from ..generate import prepare_dest
from ..spec import rng
from .spec import KinetoSpec
from .timeline import RankState, simulate
from .truth import build_truth

# Wall clock rounded down to a multiple of 7,889,238 s, as Kineto does (a 2026 bucket).
BASE_TIME_NS = 1_790_857_026 * 1_000_000_000
OLD_EPOCH_NS = 1_630_000_000 * 1_000_000_000  # 2021-08-26: old traces carry absolute µs of their time
DEVICE_PROPERTIES = {
    "name": "NVIDIA A100-SXM4-80GB",
    "totalGlobalMem": 85_097_971_712,
    "computeMajor": 8,
    "computeMinor": 0,
    "maxThreadsPerBlock": 1024,
    "maxThreadsPerMultiprocessor": 2048,
    "regsPerBlock": 65536,
    "regsPerMultiprocessor": 65536,
    "warpSize": 32,
    "sharedMemPerBlock": 49152,
    "sharedMemPerMultiprocessor": 167936,
    "numSms": 108,
    "sharedMemPerBlockOptin": 166912,
}
OLD_CATEGORIES = {
    "cpu_op": "Operator",
    "user_annotation": "Operator",
    "cuda_runtime": "Runtime",
    "kernel": "Kernel",
    "gpu_memcpy": "Memcpy",
    "gpu_memset": "Memset",
    "Trace": "Trace",
}
_OLD_GPU_KEYS = ("queued", "device", "context", "stream", "correlation")
_OLD_KERNEL_KEYS = ("registers per thread", "shared memory", "blocks per SM", "warps per SM", "grid", "block")


def _ts_new(ns: int) -> str:
    return f"{ns // 1000}.{ns % 1000:03d}"


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _block_new(event: dict[str, Any], origin_ns: int) -> str:
    """One event as torch 2.13's Kineto prints it (its odd commas and blank lines included)."""
    ph = event["ph"]
    lines = [f'    "ph": "{ph}",']
    ts = _ts_new(origin_ns + event["ts"])
    if ph == "M":
        lines += [f'    "name": {_json(event["name"])},', f'    "ts": {ts},']
        lines += [f'    "pid": {_json(event["pid"])},', f'    "tid": {_json(event["tid"])},']
    elif ph in ("s", "f"):
        lines += [f'    "id": {event["id"]},', f'    "pid": {_json(event["pid"])},']
        lines += [f'    "tid": {_json(event["tid"])},', f'    "ts": {ts},']
        lines += [f'    "cat": "{event["cat"]}",', f'    "name": "{event["name"]}"']
        lines.append('    , "bp": "e"' if ph == "f" else "    ")
        return "  {\n" + "\n".join(lines) + "\n  }"
    else:
        if ph == "i":
            lines.append("    ")
        if "cat" in event:
            lines.append(f'    "cat": {_json(event["cat"])},')
        if ph == "i":
            lines.append(f'    "s": "{event["s"]}",')
        lines += [f'    "name": {_json(event["name"])},', f'    "pid": {_json(event["pid"])},']
        lines += [f'    "tid": {_json(event["tid"])},']
        if ph == "X":
            lines += [f'    "ts": {ts},', f'    "dur": {_ts_new(event["dur"])}']
        else:
            lines.append(f'    "ts": {ts}')
        if "args" not in event:
            return "  {\n" + "\n".join([*lines, "    "]) + "\n  }"
        lines[-1] += "\n    ,"
    items = ", ".join(f"{_json(k)}: {_json(v)}" for k, v in event["args"].items())
    lines += ['    "args": {', f"      {items}", "    }"]
    return "  {\n" + "\n".join(lines) + "\n  }"


def _block_old(event: dict[str, Any]) -> str:
    """One event in the compact 2021 layout: several keys a line."""
    head = ", ".join(
        f"{_json(k)}: {_json(event[k])}" for k in ("ph", "cat", "name", "pid", "tid") if k in event
    )
    if event["ph"] in ("s", "f", "i"):
        rest = ", ".join(
            f"{_json(k)}: {_json(v)}"
            for k, v in event.items()
            if k not in ("ph", "cat", "pid", "tid", "name")
        )
        return "  {\n    " + ", ".join(x for x in (head, rest) if x) + "\n  }"
    timing = f'"ts": {event["ts"]}' + (f', "dur": {event["dur"]}' if "dur" in event else "")
    args = ",\n      ".join(f"{_json(k)}: {_json(v)}" for k, v in event.get("args", {}).items())
    return "  {\n    " + head + ",\n    " + timing + ',\n    "args": {\n      ' + args + "\n    }\n  }"


def to_old(events: list[dict[str, Any]], origin_ns: int) -> list[dict[str, Any]]:
    """The same run as a 2021 profiler would have written it."""
    op_ts = {
        e["args"]["External id"]: e["ts"] for e in events if e.get("cat") in ("cpu_op", "user_annotation")
    }
    # record_param_comms did not exist: its calls and kernel belong to the nccl:* range around it.
    parent: dict[int, int] = {}
    last_range = 0
    for event in events:
        if event.get("cat") == "user_annotation" and event["name"].startswith("nccl:"):
            last_range = event["args"]["External id"]
        elif event.get("name") == "record_param_comms":
            parent[event["args"]["External id"]] = last_range

    def us(ns: int) -> int:
        return (origin_ns + ns) // 1000

    out = []
    for event in events:
        cat = event.get("cat")
        if (event["ph"] == "X" and cat not in OLD_CATEGORIES) or event.get("name") == "record_param_comms":
            continue  # python_function (Python GC) and cuda_sync came later
        if cat in ("fwdbwd", "gpu_user_annotation"):  # neither existed in 2021
            continue
        old = dict(event)
        if event["ph"] == "M":
            old["ts"] = us(event["ts"])
            out.append(old)
            continue
        old["ts"] = us(event["ts"])
        if event["ph"] == "X":
            old["dur"] = us(event["ts"] + event["dur"]) - old["ts"]
            old["cat"] = OLD_CATEGORIES[cat]
            gpu = cat in ("kernel", "gpu_memcpy", "gpu_memset")
            if isinstance(event["tid"], int):
                old["tid"] = f"stream {event['tid']}" if gpu else str(event["tid"])
            args = event["args"]
            external = args.get("External id")
            external = parent.get(external, external)
            if cat in ("cpu_op", "user_annotation"):
                old["args"] = {"Device": event["pid"], "External id": external}
                old["args"].update({"Trace name": "PyTorch Profiler", "Trace iteration": 0})
                for key in ("Input Dims", "Input type", "Sequence number", "Fwd thread id"):
                    if key in args:
                        old["args"][key] = args[key]
            elif cat == "cuda_runtime":
                old["args"] = {"cbid": args["cbid"], "correlation": args["correlation"]}
                if external is not None:
                    old["args"].update({"external id": external, "external ts": us(op_ts[external])})
            elif gpu:
                old["args"] = {k: args[k] for k in _OLD_GPU_KEYS if k in args}
                old["args"]["external id"] = external
                if cat == "kernel":
                    old["args"].update({k: args[k] for k in _OLD_KERNEL_KEYS})
                    old["args"]["theoretical occupancy %"] = args["est. achieved occupancy %"]
                else:
                    old["args"].update({k: args[k] for k in ("bytes", "memory bandwidth (GB/s)")})
        elif event["ph"] == "i" and cat == "cpu_instant_event":
            del old["cat"]
            old["args"] = {k: event["args"][k] for k in ("Device Type", "Device Id", "Bytes")}
        elif cat == "ac2g":
            old["cat"], old["name"] = "async", "launch"
        out.append(old)
    return out


def metadata_events(state: RankState, ts: int) -> list[dict[str, Any]]:
    """process and thread names, as Kineto writes them before the activities."""

    def meta(name: str, pid: Any, tid: Any, args: dict[str, Any]) -> dict[str, Any]:
        return {"ph": "M", "name": name, "ts": ts, "pid": pid, "tid": tid, "args": args}

    out = [
        meta("process_name", state.pid, 0, {"name": "python"}),
        meta("process_labels", state.pid, 0, {"labels": "CPU"}),
        meta("process_sort_index", state.pid, 0, {"sort_index": state.pid}),
    ]
    if state.cuda:
        device = state.device_index
        out += [
            meta("process_name", device, 0, {"name": "python"}),
            meta("process_labels", device, 0, {"labels": f"GPU {device}"}),
            meta("process_sort_index", device, 0, {"sort_index": 16_777_216 + device}),
        ]
    threads = sorted({e["tid"] for e in state.events if e["ph"] == "X" and e["pid"] == state.pid})
    for tid in threads:
        out.append(meta("thread_name", state.pid, tid, {"name": f"thread {tid} (python)"}))
        out.append(meta("thread_sort_index", state.pid, tid, {"sort_index": tid}))
    if state.cuda:
        streams = sorted(
            {e["tid"] for e in state.events if e["ph"] == "X" and e["pid"] == state.device_index}
        )
        for stream in streams:
            out.append(meta("thread_name", state.device_index, stream, {"name": f"stream {stream} "}))
            out.append(meta("thread_sort_index", state.device_index, stream, {"sort_index": stream}))
    return out


def closing_events(state: RankState, start: int, end: int, old: bool) -> list[dict[str, Any]]:
    """The profiling window's span and its global instants, which Kineto writes last."""
    spans = "Traces" if old else "Spans"
    return [
        {
            "ph": "X",
            "cat": "Trace",
            "name": "PyTorch Profiler (0)",
            "pid": spans,
            "tid": "PyTorch Profiler",
            "ts": start,
            "dur": end - start,
            "args": {"Op count": 0},
        },
        {
            "ph": "M",
            "name": "process_sort_index",
            "ts": start,
            "pid": spans,
            "tid": 0,
            "args": {"sort_index": 536870912},
        },
        {
            "ph": "i",
            "s": "g",
            "name": "Iteration Start: PyTorch Profiler",
            "pid": "Traces",
            "tid": "Trace PyTorch Profiler",
            "ts": start,
        },
        {"ph": "i", "s": "g", "name": "Record Window End", "pid": "", "tid": "", "ts": end + 1000},
    ]


def distributed_info(spec: KinetoSpec, rank: int) -> dict[str, Any]:
    backend_config = "cuda:nccl" if spec.comm_backend == "nccl" else "cpu:gloo,cuda:gloo"
    info: dict[str, Any] = {
        "backend": spec.comm_backend,
        "rank": rank,
        "world_size": spec.ranks,
        "pg_count": 1,
    }
    info["pg_config"] = [
        {
            "pg_name": "0",
            "pg_desc": "default_pg",
            "backend_config": backend_config,
            "pg_size": spec.ranks,
            "ranks": list(range(spec.ranks)),
        }
    ]
    if spec.comm_backend == "nccl":
        info["nccl_version"] = "2.21.5"
    return info


def run_origin(spec: KinetoSpec) -> int:
    """Where the run starts: weeks into the bucket of `baseTimeNanoseconds` (the same for every rank)."""
    return rng(spec.seed, "origin").randrange(10**15, 6 * 10**15)


def render(spec: KinetoSpec, state: RankState, trace_name: str) -> str:
    """The whole file of one rank."""
    origin = run_origin(spec)
    start = min(e["ts"] for e in state.events) - rng(spec.seed, "window", state.rank).randrange(
        200_000, 900_000
    )
    end = max(e["ts"] + e.get("dur", 0) for e in state.events)
    activities = [
        *metadata_events(state, start),
        *state.events,
        *closing_events(state, start, end, spec.schema == "old"),
    ]
    properties = [{"id": i, **DEVICE_PROPERTIES} for i in range(8)] if state.cuda else []
    if spec.schema == "old":
        body = ",\n".join(_block_old(e) for e in to_old(activities, OLD_EPOCH_NS + origin))
        return (
            '{\n  "schemaVersion": 1,\n  "deviceProperties": '
            + _json(properties)
            + ',\n  "traceEvents": [\n'
            + body
            + f'\n  ],\n  "traceName": {_json(trace_name)}\n}}\n'
        )
    token = rng(spec.seed, "trace_id", state.rank).getrandbits(128)
    header = [
        '    "schemaVersion": 1,',
        f'    "deviceProperties": {_json(properties)},',
        "    ",
        f'      "trace_id": "{token:032X}",',
        '      "record_shapes": 1,',
    ]
    if spec.profile_memory:
        header.append('      "profile_memory": 1,')
    if spec.python_gc_events:  # torch records them only through the Python tracer (with_stack)
        header.append('      "with_stack": 1,')
    if spec.ranks > 1:
        header.append(f'      "distributedInfo": {_json(distributed_info(spec, state.rank))},')
    if state.cuda:
        header += ['      "cupti_version": 24,', '      "cuda_runtime_version": 12060,']
        header.append('      "cuda_driver_version": 12080,')
    header += [
        f'      "host_name": {_json(spec.host)},',
        '    "displayTimeUnit": "ms",',
        f'    "baseTimeNanoseconds": {BASE_TIME_NS},',
        '    "traceEvents": [',
        "    ",
    ]
    body = ",\n".join(_block_new(e, origin) for e in activities)
    return " {\n" + "\n".join(header) + "\n" + body + f'\n  ],"traceName": {_json(trace_name)} }}'


def file_name(spec: KinetoSpec, state: RankState) -> str:
    suffix = ".gz" if spec.gzip else ""
    if spec.layout == "files":
        return f"rank{state.rank}.json{suffix}"
    # tensorboard_trace_handler: <hostname>_<pid>.<time>.pt.trace.json; ms in old torch, ns in new.
    written_ns = run_origin(spec) + state.t + rng(spec.seed, "written", state.rank).randrange(1_000_000_000)
    stamp = (OLD_EPOCH_NS + written_ns) // 1_000_000 if spec.schema == "old" else BASE_TIME_NS + written_ns
    return f"{spec.host}_{state.pid}.{stamp}.pt.trace.json{suffix}"


def write_atomic(path: Path, data: bytes) -> None:
    """Written beside `path` and renamed: a reader never sees half a file."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def write_kineto_traces(dest: str | Path, spec: KinetoSpec) -> Path:
    """Write one Kineto trace per rank and `ground_truth.json` into `dest` (new or empty); returns it."""
    root = prepare_dest(dest)
    states = simulate(spec)
    files: dict[str, int] = {}
    for state in states:
        name = file_name(spec, state)
        text = render(spec, state, name.removesuffix(".gz")).encode("utf-8")
        write_atomic(root / name, gzip_module.compress(text, mtime=0) if spec.gzip else text)
        files[name] = state.rank
    truth = build_truth(spec, states, files)
    write_atomic(root / "ground_truth.json", (json.dumps(truth, indent=2) + "\n").encode("utf-8"))
    return root
