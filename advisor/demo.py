"""A seedable generator of Ascend PyTorch Profiler text exports (demo data and test fixtures).

`DemoSpec` holds the knobs (ranks, steps, per-step time budget, per-rank slowdowns); `plan_demo`
turns it into exact per-rank, per-step numbers; `write_demo_profile` writes rank folders whose
`step_trace_time.csv` and `trace_view.json` (Overlap Analysis) agree with those numbers to the ns.
All times are integers in ns internally, written as µs with three decimals like the profiler does.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .errors import InputError

STEP_TRACE_HEADER = (
    "Step,Computing,Communication(Not Overlapped),Overlapped,Communication,Free,Stage,Bubble,"
    "Communication(Not Overlapped and Exclude Receive),Preparing"
)
_BASE_TIME_NS = 1_736_408_883_686_740_000  # 2025-01-09 07:48 UTC, like the corpus recordings
_OVERLAP_THREADS = ("Computing", "Communication", "Communication(Not Overlapped)", "Free")


@dataclass(frozen=True)
class DemoSpec:
    """What to generate. Per-step budgets are in µs before per-rank factors and jitter.

    The default has visible problems: communication is mostly not overlapped (the bottleneck) and
    rank 1 is idle three times longer than rank 0.
    """

    ranks: int = 2
    steps: tuple[int, ...] = (12, 13, 14)
    seed: int = 0
    computing_us: float = 40_000.0
    communication_us: float = 60_000.0  # all communication, overlapped or not
    overlap_ratio: float = 0.1  # share of the communication hidden under computing
    free_us: float = 6_000.0
    preparing_us: float = 1_500.0
    jitter: float = 0.02  # relative step-to-step noise on every component
    computing_factor: Mapping[int, float] = field(default_factory=dict)
    communication_factor: Mapping[int, float] = field(default_factory=dict)
    free_factor: Mapping[int, float] = field(default_factory=lambda: {1: 3.0})
    slices_per_step: int = 8
    host: str = "demo-node"
    ranks_per_node: int = 8

    def __post_init__(self) -> None:
        if self.ranks < 1:
            raise ValueError("ranks must be at least 1")
        if not self.steps or len(set(self.steps)) != len(self.steps) or min(self.steps) < 0:
            raise ValueError("steps must be distinct non-negative step numbers")
        if not 0.0 <= self.overlap_ratio <= 1.0:
            raise ValueError("overlap_ratio must be between 0 and 1")
        if min(self.computing_us, self.communication_us, self.free_us, self.preparing_us) < 0:
            raise ValueError("time budgets must not be negative")
        if self.slices_per_step < 1:
            raise ValueError("slices_per_step must be at least 1")


@dataclass(frozen=True)
class DemoStep:
    """The exact numbers written for one rank and step (ns)."""

    rank: int
    step: int
    computing_ns: int
    overlapped_ns: int
    not_overlapped_ns: int
    free_ns: int
    preparing_ns: int

    @property
    def communication_ns(self) -> int:
        return self.overlapped_ns + self.not_overlapped_ns

    @property
    def step_ns(self) -> int:
        return self.computing_ns + self.not_overlapped_ns + self.free_ns

    def us(self, name: str) -> float:
        """e.g. us("computing") -> µs as float."""
        return getattr(self, f"{name}_ns") / 1000.0


def _rng(spec: DemoSpec, *key: object) -> random.Random:
    # A string seed is hashed with SHA-512: stable across runs and Python versions.
    return random.Random(":".join(str(k) for k in (spec.seed, *key)))


def _ns(us: float, factor: float, rng: random.Random, jitter: float) -> int:
    return max(0, round(us * factor * (1.0 + jitter * rng.uniform(-1.0, 1.0)) * 1000))


def plan_demo(spec: DemoSpec) -> list[DemoStep]:
    """Per rank and step, the times the generator writes (the ground truth for tests)."""
    plan = []
    for rank in range(spec.ranks):
        for step in spec.steps:
            rng = _rng(spec, "plan", rank, step)
            computing = _ns(spec.computing_us, spec.computing_factor.get(rank, 1.0), rng, spec.jitter)
            communication = _ns(
                spec.communication_us, spec.communication_factor.get(rank, 1.0), rng, spec.jitter
            )
            overlapped = min(round(communication * spec.overlap_ratio), computing)
            free = _ns(spec.free_us, spec.free_factor.get(rank, 1.0), rng, spec.jitter)
            preparing = _ns(spec.preparing_us, 1.0, rng, spec.jitter)
            plan.append(
                DemoStep(rank, step, computing, overlapped, communication - overlapped, free, preparing)
            )
    return plan


def _split(total: int, parts: int, rng: random.Random) -> list[int]:
    """`total` cut into `parts` random non-negative integers that add up exactly."""
    weights = [0.5 + rng.random() for _ in range(parts)]
    scale = sum(weights)
    out = [int(total * w / scale) for w in weights]
    out[-1] += total - sum(out)
    return out


def _within(total: int, caps: list[int]) -> list[int]:
    """`total` spread over chunks in proportion to `caps`, never exceeding a cap (sum(caps) >= total)."""
    whole = sum(caps)
    out = [cap * total // whole if whole else 0 for cap in caps]
    for i in range(len(out)):
        if sum(out) == total:
            break
        out[i] += min(caps[i] - out[i], total - sum(out))
    return out


def _ts(ns: int) -> str:
    return f"{ns // 1000}.{ns % 1000:03d}"


def _dur(ns: int) -> float:
    return round(ns / 1000.0, 3)


def _timestamp17(ns: int) -> str:
    moment = datetime.fromtimestamp(ns // 1_000_000_000, tz=timezone.utc)
    return moment.strftime("%Y%m%d%H%M%S") + f"{(ns // 1_000_000) % 1000:03d}"


def _metadata(
    pid: int, name: str, sort_index: int, labels: str, threads: Sequence[str] = ()
) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = [
        {"ph": "M", "name": "process_name", "pid": pid, "tid": 0, "args": {"name": name}},
        {"ph": "M", "name": "process_labels", "pid": pid, "tid": 0, "args": {"labels": labels}},
        {"ph": "M", "name": "process_sort_index", "pid": pid, "tid": 0, "args": {"sort_index": sort_index}},
    ]
    for tid, thread in enumerate(threads):
        events.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": tid, "args": {"name": thread}})
    return events


def _rank_trace(
    spec: DemoSpec, rank: int, steps: list[DemoStep], host_pid: int, start_ns: int
) -> list[dict[str, Any]]:
    device_base = 3_170_820_000 + rank * 1_000
    hardware_pid, hccl_pid, overlap_pid = device_base + 512, device_base + 576, device_base + 832
    events = [
        *_metadata(host_pid, "Python", 0, "CPU"),
        *_metadata(hardware_pid, "Ascend Hardware", 1, "NPU"),
        *_metadata(hccl_pid, "HCCL", 2, "NPU"),
        *_metadata(overlap_pid, "Overlap Analysis", 11, "NPU", _OVERLAP_THREADS),
    ]
    cursor = start_ns
    for item in steps:
        rng = _rng(spec, "trace", rank, item.step)
        k = spec.slices_per_step
        computing = _split(item.computing_ns, k, rng)
        not_overlapped = _split(item.not_overlapped_ns, k, rng)
        free = _split(item.free_ns, k, rng)
        overlapped = _within(item.overlapped_ns, computing)
        host_start = cursor
        t = host_start + item.preparing_ns
        for i in range(k):
            c, o, n, f = computing[i], overlapped[i], not_overlapped[i], free[i]
            if c:
                events.append(
                    {
                        "name": "Computing",
                        "pid": overlap_pid,
                        "tid": 0,
                        "ts": _ts(t),
                        "dur": _dur(c),
                        "ph": "X",
                    }
                )
                events.append(
                    {
                        "ph": "X",
                        "name": f"MatMulV2_{i}",
                        "pid": hardware_pid,
                        "tid": 2,
                        "ts": _ts(t),
                        "dur": _dur(c),
                        "args": {"Task Type": "AI_CORE", "Stream Id": 2, "Task Id": i},
                    }
                )
                # The host launches each kernel a little before the device runs it.
                events.append(
                    {
                        "ph": "X",
                        "name": "aten::mm",
                        "pid": host_pid,
                        "tid": host_pid,
                        "cat": "cpu_op",
                        "ts": _ts(max(host_start, t - 300_000)),
                        "dur": 35.5,
                        "args": {"Sequence number": -1},
                    }
                )
            if o + n:
                comm_start = t + c - o
                events.append(
                    {
                        "name": "Communication",
                        "pid": overlap_pid,
                        "tid": 1,
                        "ts": _ts(comm_start),
                        "dur": _dur(o + n),
                        "ph": "X",
                    }
                )
                events.append(
                    {
                        "ph": "X",
                        "name": "hcom_allReduce__123_0_1",
                        "pid": hccl_pid,
                        "tid": 0,
                        "ts": _ts(comm_start),
                        "dur": _dur(o + n),
                        "args": {"model id": 0, "data_type": "FP32", "alg_type": "RING"},
                    }
                )
            if n:
                events.append(
                    {
                        "name": "Communication(Not Overlapped)",
                        "pid": overlap_pid,
                        "tid": 2,
                        "ts": _ts(t + c),
                        "dur": _dur(n),
                        "ph": "X",
                    }
                )
            if f:
                events.append(
                    {
                        "name": "Free",
                        "pid": overlap_pid,
                        "tid": 3,
                        "ts": _ts(t + c + n),
                        "dur": _dur(f),
                        "ph": "X",
                    }
                )
            t += c + n + f
        host_end = t + 250_000  # the host step ends after the device drained (loss.item())
        events.append(
            {
                "ph": "X",
                "name": f"ProfilerStep#{item.step}",
                "pid": host_pid,
                "tid": host_pid,
                "cat": "cpu_op",
                "ts": _ts(host_start),
                "dur": _dur(host_end - host_start),
                "args": {"Sequence number": -1},
            }
        )
        cursor = host_end
    return events


def _profiler_info(rank: int, start_ns: int, end_ns: int) -> dict[str, Any]:
    # Same shape as a real torch_npu profiler_info_{N}.json (no version keys: real files carry none).
    return {
        "config": {
            "common_config": {
                "activities": ["ProfilerActivity.CPU", "ProfilerActivity.NPU"],
                "schedule": {"wait": 0, "active": 3, "warmup": 1, "repeat": 1, "skip_first": 10},
                "record_shapes": True,
                "profile_memory": False,
                "with_stack": False,
                "with_flops": False,
                "with_modules": False,
            },
            "experimental_config": {
                "_profiler_level": "Level1",
                "_aic_metrics": "ACL_AICORE_PIPE_UTILIZATION",
                "_l2_cache": False,
                "_msprof_tx": False,
                "_data_simplification": True,
                "record_op_args": False,
                "_export_type": "text",
                "_op_attr": False,
                "_gc_detect_threshold": None,
            },
        },
        "start_info": {
            "syscnt_enable": True,
            "freq": 100,
            "start_cnt": 17238197612056,
            "start_monotonic": start_ns,
        },
        "end_info": {"collectionTimeEnd": end_ns, "MonotonicTimeEnd": end_ns},
        "rank_id": rank,
    }


def _csv_row(item: DemoStep) -> str:
    values = [
        item.computing_ns,
        item.not_overlapped_ns,
        item.overlapped_ns,
        item.communication_ns,
        item.free_ns,
        item.step_ns,
        0,
        item.not_overlapped_ns,
        item.preparing_ns,
    ]
    return ",".join([str(item.step), *(f"{v / 1000:.3f}" for v in values)])


def write_demo_profile(
    dest: str | Path,
    ranks: int = 2,
    steps: Sequence[int] = (12, 13, 14),
    *,
    seed: int = 0,
    spec: DemoSpec | None = None,
) -> Path:
    """Write a demo cluster (one `*_ascend_pt` folder per rank) into `dest`; returns `dest`.

    `spec` overrides `ranks`, `steps` and `seed`. Refuses a `dest` that exists and is not empty.
    """
    spec = spec or DemoSpec(ranks=ranks, steps=tuple(steps), seed=seed)
    root = Path(dest).expanduser()
    if root.exists() and not root.is_dir():
        raise InputError(f"{root}: exists and is not a directory")
    if root.is_dir() and any(root.iterdir()):
        raise InputError(
            f"{root}: already exists and is not empty; the demo writes only into a new or empty folder"
        )
    root.mkdir(parents=True, exist_ok=True)
    plan = plan_demo(spec)
    for rank in range(spec.ranks):
        rng = _rng(spec, "folder", rank)
        host_pid = 3_096_504 + 2 * rank
        start_ns = _BASE_TIME_NS + rank * 2_000_000 + rng.randrange(1_000_000)
        steps_of_rank = [p for p in plan if p.rank == rank]
        events = _rank_trace(spec, rank, steps_of_rank, host_pid, start_ns)
        end_ns = start_ns + sum(p.preparing_ns + p.step_ns + 250_000 for p in steps_of_rank)
        folder = (
            root / f"{spec.host}{rank // spec.ranks_per_node}_{host_pid}_{_timestamp17(start_ns)}_ascend_pt"
        )
        output = folder / "ASCEND_PROFILER_OUTPUT"
        output.mkdir(parents=True)
        (folder / f"profiler_info_{rank}.json").write_text(
            json.dumps(_profiler_info(rank, start_ns, end_ns), indent=4), encoding="utf-8"
        )
        env = {
            "ASCEND_GLOBAL_LOG_LEVEL": "3",
            "HCCL_RDMA_TC": "",
            "HCCL_RDMA_SL": "",
            "ACLNN_CACHE_LIMIT": "",
            "HOST_CACHE_CAPACITY": "",
            "ASCEND_ENHANCE_ENABLE": "1",
            "PYTORCH_NPU_ALLOC_CONF": "",
            "ASCEND_LAUNCH_BLOCKING": "0",
        }
        (folder / "profiler_metadata.json").write_text(
            json.dumps({"ENV_VARIABLES": env}, indent=4), encoding="utf-8"
        )
        lines = [STEP_TRACE_HEADER, *(_csv_row(p) for p in steps_of_rank)]
        (output / "step_trace_time.csv").write_bytes(("\r\n".join(lines) + "\r\n").encode("utf-8"))
        (output / "trace_view.json").write_text(json.dumps(events), encoding="utf-8")
    return root
