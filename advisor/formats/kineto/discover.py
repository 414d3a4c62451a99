"""What a path holds: one PyTorch profiler (Kineto) trace, or a folder of them, one per rank.

Discovery reads each trace's header (the keys before `traceEvents`, `events.read_header`) and scans
its bytes once for `ProfilerStep#N` names and GPU categories; the events themselves are read later by
`tables.py`, once per rank, only when a selected check needs them.
"""

from __future__ import annotations

import gzip
import itertools
import re
import statistics
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import InputError, cannot
from ...model import ProfileSet, RankInfo
from ..base import Detection
from ..runs import numbered, single_run
from .events import ABSOLUTE_TS_NS, BASE_TIME_KEY, read_header

FORMAT_NAME = "kineto"
TRACE_SUFFIXES = (".json", ".json.gz")
# tensorboard_trace_handler's names: <worker>.<ms or ns timestamp>.pt.trace.json[.gz]
_HANDLER_NAME = re.compile(r"^(?P<worker>.+)\.(?P<ts>\d{13}|\d{19})\.pt\.trace\.json(?:\.gz)?$")
# A rank in a file name: rank3, rank_3, rank-3, worker3 (and the cpu_worker0 of torch's examples).
_RANK_IN_NAME = re.compile(r"(?:rank|worker)[_\-]?(\d+)(?:[^0-9]|$)", re.IGNORECASE)
_STEP_NAME = re.compile(rb'"name"\s*:\s*"ProfilerStep#(\d+)"')
_TS = re.compile(rb'"ts"\s*:\s*(-?\d+(?:\.\d+)?)')
# Timestamps read from the head of a trace to place it in time: for the one-run rule (starts an hour
# apart are separate runs) any event of a trace will do; the median of a few shrugs off an odd one.
START_SAMPLE = 64
# What a trace header records of the profiler's configuration (torch 2.x): one job records the same
# on every rank, as it records one world size.
CONFIG_KEYS = ("record_shapes", "profile_memory", "with_stack", "with_flops", "with_modules")
# Categories only GPU activity has (2021 spellings too): a trace with one of them ran on a GPU.
_GPU_CAT = re.compile(rb'"cat"\s*:\s*"(?:kernel|Kernel|gpu_memcpy|Memcpy|gpu_memset|Memset)"')
_SCAN_CHUNK = 8 << 20
_SCAN_OVERLAP = 256  # bytes of one chunk searched again with the next: a match never straddles unseen
MAX_SUBFOLDER_DEPTH = 2  # tensorboard layouts: <run>/<worker>/*.pt.trace.json
SAMPLE_FILES = 4  # files whose header detection reads before it decides


@dataclass(frozen=True)
class TraceFile:
    """One trace file found by discovery, with what its header and a byte scan tell, and what tells
    its run apart (`formats.runs.RunMember`)."""

    path: Path
    header: dict[str, Any]
    steps: tuple[int, ...] = ()
    has_gpu_events: bool = False
    rank: int | None = None  # distributedInfo.rank, else rank<N>/worker<N> in the name
    process: str | None = None  # tensorboard_trace_handler's worker: the same in each window
    start_ns: int | None = None  # ns since the epoch of its first events, else of the name's time
    config: dict[str, object] = field(default_factory=dict)


def is_trace_name(name: str) -> bool:
    """A name a Kineto trace may have: `*.json` or `*.json.gz`."""
    return name.lower().endswith(TRACE_SUFFIXES)


def trace_candidates(root: Path) -> list[Path]:
    """`root` when it is a file, else the trace-named files in it, else in its sub-folders (one per
    run or worker) down to MAX_SUBFOLDER_DEPTH; hidden entries skipped."""
    if root.is_file():
        return [root]
    level = [root]
    for _ in range(MAX_SUBFOLDER_DEPTH + 1):
        files: list[Path] = []
        folders: list[Path] = []
        for folder in level:
            for entry in _entries(folder):
                if entry.name.startswith("."):
                    continue
                if entry.is_file() and is_trace_name(entry.name):
                    files.append(entry)
                elif entry.is_dir():
                    folders.append(entry)
        if files:
            return sorted(files)
        level = sorted(folders)
    return []


def _entries(folder: Path) -> list[Path]:
    try:
        return sorted(folder.iterdir())
    except OSError as exc:
        raise InputError(cannot("list", folder, exc)) from None


def header_problem(path: Path) -> tuple[dict[str, Any] | None, str]:
    """The header of a Kineto trace, or None and why the file is not one (not JSON, a Chakra
    execution trace, a memory timeline, …: `read_header` says)."""
    try:
        return read_header(path), ""
    except InputError as error:
        return None, str(error)


def detect(path: Path) -> Detection:
    """Certain when a sampled file's header is a Kineto trace's; the reason names what was refused
    (a Chakra execution trace, a memory timeline, not JSON) so that "not profiling data" says why."""
    looked_for = "a PyTorch profiler trace (*.json or *.json.gz with traceEvents)"
    try:
        candidates = trace_candidates(path.resolve())
    except InputError:
        return Detection(0.0, looked_for)
    refused = []
    for candidate in candidates[:SAMPLE_FILES]:
        header, problem = header_problem(candidate)
        if header is not None:
            return Detection(1.0, f"{len(candidates)} PyTorch profiler trace file(s)")
        refused.append(problem.removeprefix(f"{candidate}: "))
    if path.is_file() and refused:  # the one file given: why it is not a trace says it all
        return Detection(0.0, refused[0])
    if refused:
        return Detection(0.0, f"{looked_for}; found {candidates[0].name}: {refused[0]}")
    return Detection(0.0, looked_for)


def scan_trace(path: Path) -> tuple[tuple[int, ...], bool, list[float]]:
    """(ProfilerStep numbers, whether GPU categories occur, the first START_SAMPLE positive `ts`
    values in µs) from a regex scan of the bytes, gzip streamed in chunks, without parsing the JSON.
    A damaged tail just ends the scan (the table readers report it)."""
    steps: set[int] = set()
    gpu = False
    head_ts: list[float] = []
    for buf in _chunks(path):
        steps.update(int(m.group(1)) for m in _STEP_NAME.finditer(buf))
        gpu = gpu or _GPU_CAT.search(buf) is not None
        if len(head_ts) < START_SAMPLE:
            positive = (ts for m in _TS.finditer(buf) if (ts := float(m.group(1))) > 0)
            head_ts += itertools.islice(positive, START_SAMPLE - len(head_ts))
    return tuple(sorted(steps)), gpu, head_ts


def _chunks(path: Path) -> Iterator[bytes]:
    tail = b""
    try:
        with path.open("rb") as raw:
            gzipped = raw.read(2) == b"\x1f\x8b"
            raw.seek(0)
            stream = gzip.GzipFile(fileobj=raw) if gzipped else raw
            while chunk := stream.read(_SCAN_CHUNK):
                yield tail + chunk
                tail = chunk[-_SCAN_OVERLAP:]
    except (OSError, EOFError, zlib.error):
        return


def _rank_from_name(path: Path) -> int | None:
    match = _RANK_IN_NAME.search(path.name)
    return int(match.group(1)) if match else None


def _start_ns(header: dict[str, Any], head_ts: list[float], path: Path) -> int | None:
    """When the trace's events happened, ns since the epoch: its first timestamps (kineto-format.md
    §1: relative to baseTimeNanoseconds, else absolute when past ABSOLUTE_TS_NS), else the time in a
    tensorboard_trace_handler name (ms or ns: when the window was written); None when neither says."""
    if head_ts:
        ts_ns = round(statistics.median(head_ts) * 1000)
        base = header.get(BASE_TIME_KEY)
        if type(base) is int:
            return base + ts_ns
        if ts_ns > ABSOLUTE_TS_NS:
            return ts_ns
    match = _HANDLER_NAME.match(path.name)
    if match is None:
        return None
    digits = match.group("ts")
    return int(digits) * (1_000_000 if len(digits) == 13 else 1)


def _config(header: dict[str, Any]) -> dict[str, object]:
    """The profiler configuration the header records, and the job's world size."""
    config: dict[str, object] = {key: header[key] for key in CONFIG_KEYS if key in header}
    info = header.get("distributedInfo")
    world = info.get("world_size") if isinstance(info, dict) else None
    if isinstance(world, int) and not isinstance(world, bool):
        config["world_size"] = world
    return config


def _recorded_rank(header: dict[str, Any]) -> int | None:
    info = header.get("distributedInfo")
    value = info.get("rank") if isinstance(info, dict) else None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def read_trace_file(path: Path) -> TraceFile:
    header, problem = header_problem(path)
    if header is None:
        raise InputError(problem)
    steps, gpu, head_ts = scan_trace(path)
    recorded = _recorded_rank(header)
    handler = _HANDLER_NAME.match(path.name)
    return TraceFile(
        path,
        header,
        steps,
        gpu,
        rank=recorded if recorded is not None else _rank_from_name(path),
        process=handler.group("worker") if handler else None,
        start_ns=_start_ns(header, head_ts, path),
        config=_config(header),
    )


def discover(path: Path) -> ProfileSet:
    """The trace `path` is, or the traces of the folder `path`, one per rank."""
    root = path.resolve()
    candidates = trace_candidates(root)
    if not candidates:
        raise InputError(f"{path}: no *.json or *.json.gz trace files")
    warnings: list[str] = []
    traces: list[TraceFile] = []
    for candidate in candidates:
        header, problem = header_problem(candidate)
        if header is None:
            if len(candidates) == 1:
                raise InputError(problem)
            warnings.append(f"skipped {problem}")
            continue
        traces.append(read_trace_file(candidate))
    if not traces:
        raise InputError(f"{path}: none of its {len(candidates)} JSON files is a PyTorch profiler trace")
    by_rank = _numbered(single_run(str(path), root, traces, warnings, "traces"), warnings)
    ranks = [_rank_info(rank, by_rank[rank]) for rank in sorted(by_rank)]
    return ProfileSet(
        root=root,
        format=FORMAT_NAME,
        ranks=ranks,
        steps=sorted({s for r in ranks for s in r.steps}),
        framework="pytorch",
        device="gpu" if any(r.device == "gpu" for r in ranks) else "cpu",
        versions=_agreed_versions(ranks, warnings),
        warnings=warnings,
        groups=_groups(trace.header for trace in by_rank.values()),
    )


def _numbered(one_run: list[TraceFile], warnings: list[str]) -> dict[int, TraceFile]:
    """The traces of one run by rank: the recorded or named rank; traces without one numbered in path
    order, with a warning when there are several."""
    by_rank, guessed = numbered(one_run)
    if len(one_run) > 1:
        warnings += [
            f"{trace.path}: no rank recorded (distributedInfo.rank) or in the file name; "
            f"numbered rank {rank} by file order"
            for rank, trace in guessed
        ]
    return by_rank


def _device_name(header: dict[str, Any]) -> str | None:
    devices = header.get("deviceProperties")
    if isinstance(devices, list) and devices and isinstance(devices[0], dict):
        name = devices[0].get("name")
        return str(name) if name else None
    return None


def _cuda_version(value: Any) -> str | None:
    """CUDA encodes versions as 1000 * major + 10 * minor (12060: 12.6)."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return f"{value // 1000}.{value % 1000 // 10}"
    return str(value) if isinstance(value, str) and value.strip() else None


def recorded_versions(header: dict[str, Any]) -> dict[str, str]:
    """What the header records about the software: CUDA runtime and driver, CUPTI, NCCL, ROCm.
    Kineto records no torch version: none is given."""
    info = header.get("distributedInfo")
    nccl = info.get("nccl_version") if isinstance(info, dict) else None
    cupti = header.get("cupti_version")
    versions = {
        "cuda_runtime": _cuda_version(header.get("cuda_runtime_version")),
        "cuda_driver": _cuda_version(header.get("cuda_driver_version")),
        "cupti": str(cupti) if isinstance(cupti, (int, str)) and str(cupti).strip() else None,
        "nccl": str(nccl) if nccl and str(nccl).lower() != "unknown" else None,
        "rocm": next(
            (str(v) for k, v in header.items() if k.lower().startswith(("rocm", "hip")) and "version" in k),
            None,
        ),
    }
    return {key: value for key, value in versions.items() if value}


def _rank_info(rank: int, trace: TraceFile) -> RankInfo:
    gpu = bool(_device_name(trace.header)) or trace.has_gpu_events
    return RankInfo(
        rank=rank,
        path=trace.path.parent,
        format=FORMAT_NAME,
        steps=trace.steps,
        files=(trace.path.name,),
        versions=recorded_versions(trace.header),
        framework="pytorch",
        device="gpu" if gpu else "cpu",
        device_type=_device_name(trace.header) if gpu else None,
    )


def _agreed_versions(ranks: list[RankInfo], warnings: list[str]) -> dict[str, str]:
    agreed = {}
    for key in sorted({k for r in ranks for k in r.versions}):
        distinct = sorted({r.versions[key] for r in ranks if key in r.versions})
        if len(distinct) > 1:
            warnings.append(f"ranks disagree on the {key} version: {', '.join(distinct)}")
        agreed[key] = distinct[0]
    return agreed


def _groups(headers: Iterable[dict[str, Any]]) -> dict[str, tuple[int, ...]]:
    """Process group name -> global ranks, from distributedInfo.pg_config."""
    groups: dict[str, tuple[int, ...]] = {}
    for header in headers:
        info = header.get("distributedInfo")
        configs = info.get("pg_config") if isinstance(info, dict) else None
        for config in configs if isinstance(configs, list) else []:
            if not isinstance(config, dict) or config.get("pg_name") is None:
                continue
            members = config.get("ranks")
            if isinstance(members, list) and all(isinstance(r, int) for r in members):
                groups.setdefault(str(config["pg_name"]), tuple(members))
    return groups
