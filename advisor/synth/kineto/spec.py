"""What to generate: `KinetoSpec`, and the faults a Kineto trace can have built in (`KINETO_FAULTS`).

Fault keys are the check ids (docs/architecture.md §3.3) that should find them, as in the Ascend
generator, among them two GPU-only checks of issue 18: `schedule.launch_overhead` (host-bound: tiny
kernels paced by their launches) and `memory.pageable_memcpy` (host-to-device copies from pageable
memory).
"""

from __future__ import annotations

from dataclasses import dataclass

DEVICES = ("cuda", "cpu")
SCHEMAS = ("new", "old")
LAYOUTS = ("files", "tensorboard")
BACKENDS = ("nccl", "gloo")

KINETO_FAULTS: dict[str, str] = {
    "schedule.host_sync": "aten::item in the forward: a DtoH copy and cudaStreamSynchronize, then host work",
    "schedule.gc": "Python GC pauses of 20-45 ms between forward and backward in every other step",
    "dataloader.slow": "a single-process DataLoader taking 25-45 ms at the start of every step",
    "communication.exposed": "4x the gradient traffic, all-reduced only after the whole backward",
    "cluster.slow_rank": "one rank computes 35 % longer; the others wait inside every all-reduce",
    "schedule.launch_overhead": "a per-parameter optimizer: 1200 tiny kernels paced by their launches",
    "memory.pageable_memcpy": "the input batch copied from pageable memory (Memcpy HtoD (Pageable -> ...))",
}
# Checks a fault legitimately triggers besides its own (what it physically causes). A host stall
# idles the GPU, and as its length differs by rank, the others wait for the longest in the next
# all-reduce.
KINETO_COLLATERAL: dict[str, tuple[str, ...]] = {
    "schedule.host_sync": ("overall.idle", "communication.exposed"),
    "schedule.gc": ("overall.idle", "communication.exposed"),
    "dataloader.slow": ("overall.idle", "communication.exposed"),
    "communication.exposed": (),
    "cluster.slow_rank": ("communication.exposed",),  # the others' wait sits in the collectives
    "schedule.launch_overhead": ("overall.idle", "schedule.fused_optimizer"),  # a per-parameter optimizer
    "memory.pageable_memcpy": (),
}
_NEEDS_CUDA = {"schedule.host_sync", "schedule.launch_overhead", "memory.pageable_memcpy"}
_NEEDS_RANKS = {"communication.exposed", "cluster.slow_rank"}
# DDP's reduction settings are the same on every rank: on some ranks only, their collectives would
# not match (one rank reducing once after the backward while the others reduce per bucket).
_JOB_WIDE = {"communication.exposed"}


@dataclass(frozen=True)
class KinetoSpec:
    """One synthetic data-parallel training run profiled with torch.profiler, one trace per rank.

    The defaults are a healthy GPU-bound run: the GPU is busy over 90 % of every step and the
    gradient all-reduces overlap the backward. `inject` names KINETO_FAULTS keys.
    `schema="new"` writes torch >= 2.4 traces (lower-case categories, `baseTimeNanoseconds` and µs
    relative to it, `distributedInfo`); `"old"` writes 2021 (torch 1.8-1.9) ones (capitalised
    categories, absolute integer µs, string tids, no `distributedInfo`, no Python GC events).
    """

    ranks: int = 2
    steps: tuple[int, ...] = (2, 3, 4)  # ProfilerStep#N numbers (wait=1, warmup=1 come first)
    seed: int = 0
    device: str = "cuda"
    schema: str = "new"
    gzip: bool = True
    layout: str = "files"  # rank<N>.json[.gz], or tensorboard_trace_handler's names
    backend: str | None = None  # default: nccl on cuda, gloo on cpu
    ops_per_step: int = 36  # forward + backward ops (a third forward)
    kernels_per_op: int = 2
    streams: int = 1  # compute streams (the default stream 7, then side streams)
    buckets: int = 4  # DDP gradient buckets per step
    gradient_mb: float = 100.0
    batch_mb: float = 24.0  # the input batch copied to the device each step
    profile_memory: bool = False
    # record_python_gc_info with with_stack, which torch 2.13 needs for them: every collector pass is
    # a `Python GC` event (the Python frames with_stack adds are not written). Off: pauses are gaps.
    python_gc_events: bool = True
    inject: tuple[str, ...] = ()
    inject_ranks: tuple[int, ...] | None = None  # default: every rank; cluster.slow_rank: the last
    host: str = "synth-gpu-node"

    @property
    def comm_backend(self) -> str:
        return self.backend or ("nccl" if self.device == "cuda" else "gloo")

    def __post_init__(self) -> None:
        if not 1 <= self.ranks <= 256:
            raise ValueError("ranks must be between 1 and 256")
        if not self.steps or len(set(self.steps)) != len(self.steps) or min(self.steps) < 0:
            raise ValueError("steps must be distinct non-negative step numbers")
        if list(self.steps) != sorted(self.steps):
            raise ValueError("steps must be in increasing order")
        for name, value, choices in (
            ("device", self.device, DEVICES),
            ("schema", self.schema, SCHEMAS),
            ("layout", self.layout, LAYOUTS),
            ("backend", self.comm_backend, BACKENDS),
        ):
            if value not in choices:
                raise ValueError(f"{name} must be one of {', '.join(choices)}")
        if (self.comm_backend == "nccl") != (self.device == "cuda"):
            raise ValueError("backend nccl goes with device cuda, gloo with device cpu")
        if not 3 <= self.ops_per_step <= 2000 or not 1 <= self.kernels_per_op <= 16:
            raise ValueError("ops_per_step must be 3-2000 and kernels_per_op 1-16")
        if not 1 <= self.streams <= 8 or not 1 <= self.buckets <= 64:
            raise ValueError("streams must be 1-8 and buckets 1-64")
        if self.buckets > self.ops_per_step - self.ops_per_step // 3:
            raise ValueError("buckets must not exceed the backward ops (two thirds of ops_per_step)")
        if min(self.gradient_mb, self.batch_mb) <= 0:
            raise ValueError("gradient_mb and batch_mb must be positive")
        if self.inject_ranks is not None and any(not 0 <= r < self.ranks for r in self.inject_ranks):
            raise ValueError(f"inject_ranks must be ranks between 0 and {self.ranks - 1}")
        for fault in self.inject:
            if fault not in KINETO_FAULTS:
                raise ValueError(f"unknown fault {fault!r}; choose from {', '.join(sorted(KINETO_FAULTS))}")
            if fault in _NEEDS_CUDA and self.device != "cuda":
                raise ValueError(f"{fault} needs device cuda")
            if fault in _NEEDS_RANKS and self.ranks < 2:
                raise ValueError(f"{fault} needs at least 2 ranks")
            some_ranks = self.inject_ranks is not None and len(set(self.inject_ranks)) < self.ranks
            if fault in _JOB_WIDE and some_ranks:
                raise ValueError(f"{fault} is a setting of the whole job: inject it on every rank")

    def fault_ranks(self, fault: str) -> tuple[int, ...]:
        if self.inject_ranks is not None:
            return tuple(sorted(set(self.inject_ranks)))
        if fault == "cluster.slow_rank":
            return (self.ranks - 1,)
        return tuple(range(self.ranks))

    def fault_steps(self, fault: str) -> tuple[int, ...]:
        return self.steps[::2] if fault == "schedule.gc" else self.steps

    def faulty(self, fault: str, rank: int, step: int) -> bool:
        return fault in self.inject and rank in self.fault_ranks(fault) and step in self.fault_steps(fault)
