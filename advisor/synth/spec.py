"""What to generate: `SynthSpec` (the fault-injecting generator) and `DemoSpec` (the small demo).

All times are integers in ns internally and written as µs with three decimals like the profiler does.
Randomness comes from `rng(seed, *key)`: one independent, reproducible stream per purpose, rank and
step, so a rank or step can be regenerated alone and gives the same bytes.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone

EXPORTS = ("text", "db", "both")
WORKLOADS = ("cnn", "llm")
PMU_MODES = ("ideal", "realistic")
PROFILER_LEVELS = ("Level0", "Level1")


def rng(seed: int, *key: object) -> random.Random:
    """A stream keyed by `seed` and `key` (a string seed is hashed with SHA-512: stable everywhere)."""
    return random.Random(":".join(str(k) for k in (seed, *key)))


def jittered(value_ns: float, jitter: float, stream: random.Random) -> int:
    return max(0, round(value_ns * (1.0 + jitter * stream.uniform(-1.0, 1.0))))


def split_by_weights(total: int, weights: list[float]) -> list[int]:
    """`total` cut in proportion to `weights` into non-negative integers that add up exactly."""
    whole = sum(weights)
    if not weights:
        return []
    if whole <= 0:
        weights, whole = [1.0] * len(weights), float(len(weights))
    out = [int(total * w / whole) for w in weights]
    out[-1] += total - sum(out)
    return out


def split_random(total: int, parts: int, stream: random.Random) -> list[int]:
    """`total` cut into `parts` random non-negative integers that add up exactly."""
    return split_by_weights(total, [0.5 + stream.random() for _ in range(parts)])


def split_within(total: int, caps: list[int]) -> list[int]:
    """`total` spread over chunks in proportion to `caps`, never exceeding a cap (sum(caps) >= total)."""
    whole = sum(caps)
    out = [cap * total // whole if whole else 0 for cap in caps]
    for i in range(len(out)):
        if sum(out) == total:
            break
        out[i] += min(caps[i] - out[i], total - sum(out))
    return out


def ts_text(ns: int) -> str:
    """Trace and CSV timestamp: µs with exactly three decimals, as a string."""
    return f"{ns // 1000}.{ns % 1000:03d}"


def ts_ns(text: str) -> int:
    """A trace or CSV timestamp (µs with up to three decimals, TAB-suffixed or not) back in ns."""
    whole, _, frac = text.strip().partition(".")
    return int(whole) * 1000 + int(frac.ljust(3, "0")[:3])


def timestamp17(ns: int) -> str:
    moment = datetime.fromtimestamp(ns // 1_000_000_000, tz=timezone.utc)
    return moment.strftime("%Y%m%d%H%M%S") + f"{(ns // 1_000_000) % 1000:03d}"


@dataclass(frozen=True)
class SynthSpec:
    """One synthetic training run: a small CNN (or a decoder-only LLM, `workload="llm"`) trained on
    `ranks` NPUs, data parallel, optionally pipeline parallel (`pipeline_parallel`, `microbatches`).

    The defaults are a healthy run that stays clearly under every check threshold; `inject` names
    check ids (docs/architecture.md §3.3) whose problem the generator builds in. The LLM's kernel times
    and gradient size follow from its shapes (llm.py): `computing_us` and `gradient_mb` are the CNN's.
    `pmu` and `microbatches` default per workload (cnn: "ideal" and 1, llm: "realistic" and 8).
    """

    ranks: int = 2
    steps: tuple[int, ...] = (12, 13, 14)
    seed: int = 0
    size_mb: float | None = None  # target trace_view.json size per rank; sets the number of steps
    inject: tuple[str, ...] = ()
    inject_ranks: tuple[int, ...] | None = None  # default: per fault (see faults.py)
    export: str = "text"
    layers: int = 8  # conv blocks; about 9 kernels each per step
    batch: int = 32
    computing_us: float = 60_000.0  # device compute per micro-batch (one per step by default)
    gradient_mb: float = 96.0  # all-reduced per step, in buckets of bucket_mb
    bucket_mb: float = 32.0
    overlap_ratio: float = 0.9  # share of each all-reduce hidden under backward compute
    free_us: float = 1_200.0  # device idle between phases, per step
    preparing_us: float = 1_200.0  # step start to the first kernel (data loading)
    jitter: float = 0.01
    link_gbps: float = 18.0  # HCCS, per link
    rdma_gbps: float = 12.0
    ranks_per_node: int = 8
    tensor_parallel: int = 1
    pipeline_parallel: int = 1
    host: str = "synth-node"
    # GC detection on (experimental_config gc_detect_threshold): 'Python GC' events are recorded.
    # torch_npu leaves it off by default; then a GC pause shows only as a quiet host and an idle device.
    gc_events: bool = True
    workload: str = "cnn"
    pmu: str | None = None  # "ideal": one pipe > 0.8 per kernel; "realistic": pmu.py's ranges
    microbatches: int | None = None  # per step and pipeline (1F1B), or gradient accumulation at pp 1
    profiler_level: str = "Level1"

    @property
    def pmu_mode(self) -> str:
        return self.pmu or ("realistic" if self.workload == "llm" else "ideal")

    @property
    def microbatch_count(self) -> int:
        return self.microbatches or (8 if self.workload == "llm" else 1)

    def __post_init__(self) -> None:
        if not 1 <= self.ranks <= 1024:
            raise ValueError("ranks must be between 1 and 1024")
        if not self.steps or len(set(self.steps)) != len(self.steps) or min(self.steps) < 0:
            raise ValueError("steps must be distinct non-negative step numbers")
        if self.size_mb is not None and not 0.05 <= self.size_mb <= 100_000:
            raise ValueError("size_mb must be between 0.05 and 100000")
        if self.export not in EXPORTS:
            raise ValueError(f"export must be one of {', '.join(EXPORTS)}")
        if not 1 <= self.layers <= 256 or not 1 <= self.batch <= 4096:
            raise ValueError("layers must be 1-256 and batch 1-4096")
        if min(self.computing_us, self.free_us, self.preparing_us) < 0 or self.computing_us < 1000:
            raise ValueError("time budgets must not be negative; computing_us at least 1000")
        if not 0.0 <= self.overlap_ratio <= 1.0 or not 0.0 <= self.jitter <= 0.5:
            raise ValueError("overlap_ratio must be 0-1 and jitter 0-0.5")
        if min(self.gradient_mb, self.bucket_mb, self.link_gbps, self.rdma_gbps) <= 0:
            raise ValueError("sizes and bandwidths must be positive")
        if self.ranks_per_node < 1 or self.tensor_parallel < 1 or self.pipeline_parallel < 1:
            raise ValueError("ranks_per_node and parallel sizes must be at least 1")
        if self.ranks % (self.tensor_parallel * self.pipeline_parallel):
            raise ValueError("ranks must be a multiple of tensor_parallel * pipeline_parallel")
        if self.inject_ranks is not None and any(not 0 <= r < self.ranks for r in self.inject_ranks):
            raise ValueError(f"inject_ranks must be ranks between 0 and {self.ranks - 1}")
        if self.workload not in WORKLOADS or (self.pmu is not None and self.pmu not in PMU_MODES):
            raise ValueError(
                f"workload must be one of {', '.join(WORKLOADS)}, pmu one of {', '.join(PMU_MODES)}"
            )
        if self.profiler_level not in PROFILER_LEVELS:
            raise ValueError(f"profiler_level must be one of {', '.join(PROFILER_LEVELS)}")
        if self.microbatches is not None and not 1 <= self.microbatches <= 256:
            raise ValueError("microbatches must be 1-256")
        if self.layers % self.pipeline_parallel:
            raise ValueError("layers must be a multiple of pipeline_parallel (each stage holds layers/pp)")


@dataclass(frozen=True)
class DemoSpec:
    """The demo: per-step budgets (µs, before per-rank factors and jitter) written exactly.

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


def _demo_ns(us: float, factor: float, stream: random.Random, jitter: float) -> int:
    return jittered(us * factor * 1000, jitter, stream)


def plan_demo(spec: DemoSpec) -> list[DemoStep]:
    """Per rank and step, the times the demo writes (the ground truth for tests)."""
    plan = []
    for rank in range(spec.ranks):
        for step in spec.steps:
            stream = rng(spec.seed, "plan", rank, step)
            computing = _demo_ns(spec.computing_us, spec.computing_factor.get(rank, 1.0), stream, spec.jitter)
            communication = _demo_ns(
                spec.communication_us, spec.communication_factor.get(rank, 1.0), stream, spec.jitter
            )
            overlapped = min(round(communication * spec.overlap_ratio), computing)
            free = _demo_ns(spec.free_us, spec.free_factor.get(rank, 1.0), stream, spec.jitter)
            preparing = _demo_ns(spec.preparing_us, 1.0, stream, spec.jitter)
            plan.append(
                DemoStep(rank, step, computing, overlapped, communication - overlapped, free, preparing)
            )
    return plan
