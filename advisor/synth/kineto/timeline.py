"""The events of every rank, simulated step by step, and what the faults cost as the events show it.

Times are integer ns from the run's start; write.py turns them into each schema's µs. The CPU side
is one cursor (`RankState.t`): the main thread, the autograd thread during backward and the gloo
thread's waits are laid out on it. GPU work starts when launched and when its stream is free;
collectives end together on every rank, so a rank that reaches one early waits inside it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from math import prod
from typing import Any

from ..spec import rng
from .spec import KinetoSpec

US = 1_000
MS = 1_000_000
DEFAULT_STREAM = 7
SIDE_STREAMS = (13, 15, 17, 19, 21, 23, 25)
COMM_STREAM = 20
PINNED_GBPS = 22.0
PAGEABLE_GBPS = 6.0
NCCL_BUS_GBPS = 180.0  # A100 NVLink ring all-reduce, large messages
GLOO_GBPS = 5.0
MEMSET_GBPS = 1000.0
SCRATCH_MB = 4.0  # a buffer the forward zeroes each step (torch.zeros): the step's memset
CPU_SLOWDOWN = 4.0  # an op computed on the CPU takes this much longer than its kernels on a GPU
SLOW_RANK_FACTOR = 1.35
EXPOSED_TRAFFIC = 4.0
SYNCS_PER_STEP = 3  # injected aten::item calls in the forward
HOST_WORK_US = (1_500, 3_000)  # host-side work on the fetched value before the next launch
GC_MS = (20, 45)
# Automatic generation-0 collections: tens of µs each, after about one op in three (the recorded
# gc_pressure trace has hundreds per step). Written with the Python GC events, fault or not.
YOUNG_GC_US = (20, 80)
YOUNG_GC_CHANCE = 0.3
LOADER_US = (150, 350)  # a healthy loader: the next batch is prefetched
SLOW_LOADER_MS = (25, 45)
TINY_KERNELS = 1200  # per-parameter optimizer updates
TINY_KERNEL_US = (2, 4)
TINY_OP_US = (10, 18)  # host time of each eager op of the per-parameter loop before its launch

# (forward op, its ATen child, the child's kernels with their duration range in µs)
GEMM = "ampere_sgemm_128x64_tn"
SPLITK = (
    "void cublasLt::splitKreduce_kernel<32, 16, int, float, float, float, float, false, false, false>"
    "(cublasLt::cublasSplitKParams<float>, float const*, float const*, float*, float const*, float const*, "
    "float const*)"
)
RELU = (
    "void at::native::vectorized_elementwise_kernel<4, at::native::(anonymous namespace)::launch_clamp_scalar"
    "(at::TensorIteratorBase&, c10::Scalar, c10::Scalar, at::native::detail::ClampLimits)::{lambda()#1}::"
    "operator()() const::{lambda()#7}::operator()() const::{lambda(float)#1}, at::detail::Array<char*, 2> >"
    "(int, at::native::(anonymous namespace)::launch_clamp_scalar(at::TensorIteratorBase&, c10::Scalar, "
    "c10::Scalar, at::native::detail::ClampLimits)::{lambda()#1}::operator()() const::{lambda()#7}::"
    "operator()() const::{lambda(float)#1}, at::detail::Array<char*, 2>)"
)
LAYER_NORM = (
    "void at::native::(anonymous namespace)::vectorized_layer_norm_kernel<float, float>"
    "(int, float, float const*, float const*, float const*, float*, float*, float*)"
)
LAYER_NORM_BWD = (
    "void at::native::(anonymous namespace)::layer_norm_grad_input_kernel_vectorized<float, float>"
    "(float const*, float const*, float const*, float const*, float const*, float*, int)"
)
THRESHOLD_BWD = (
    "void at::native::vectorized_elementwise_kernel<4, at::native::(anonymous namespace)::"
    "threshold_kernel_impl<float>(at::TensorIteratorBase&, float, float)::{lambda(float, float)#1}, "
    "at::detail::Array<char*, 3> >(int, at::native::(anonymous namespace)::threshold_kernel_impl<float>"
    "(at::TensorIteratorBase&, float, float)::{lambda(float, float)#1}, at::detail::Array<char*, 3>)"
)
FOREACH = (
    "void at::native::(anonymous namespace)::multi_tensor_apply_kernel<at::native::(anonymous namespace)::"
    "TensorListMetadata<3>, at::native::(anonymous namespace)::BinaryOpListAlphaFunctor<float, 3, 2, 2>, "
    "std::plus<float>, float>(at::native::(anonymous namespace)::TensorListMetadata<3>, "
    "at::native::(anonymous namespace)::BinaryOpListAlphaFunctor<float, 3, 2, 2>, std::plus<float>, float)"
)
ADD = (
    "void at::native::vectorized_elementwise_kernel<4, at::native::CUDAFunctor_add<float>, "
    "at::detail::Array<char*, 3> >(int, at::native::CUDAFunctor_add<float>, at::detail::Array<char*, 3>)"
)
NCCL_ALLREDUCE = "ncclDevKernel_AllReduce_Sum_f32_RING_LL(ncclDevKernelArgsStorage<4096ul>)"
FORWARD_OPS = (
    ("aten::linear", "aten::addmm", ((GEMM, 250, 420), (SPLITK, 20, 40)), "AddmmBackward0", "aten::mm"),
    ("aten::relu", "aten::clamp_min", ((RELU, 40, 80),), "ReluBackward0", "aten::threshold_backward"),
    (
        "aten::layer_norm",
        "aten::native_layer_norm",
        ((LAYER_NORM, 50, 90),),
        "NativeLayerNormBackward0",
        "aten::native_layer_norm_backward",
    ),
)
BACKWARD_KERNELS = {
    "aten::mm": ((GEMM, 260, 440), (SPLITK, 20, 40)),
    "aten::threshold_backward": ((THRESHOLD_BWD, 40, 80),),
    "aten::native_layer_norm_backward": ((LAYER_NORM_BWD, 60, 110),),
}
# record_shapes: what each op's inputs look like (a 256 x 1024 activation, 1024-wide layers).
ACTIVATION = ([256, 1024], "float")
OP_INPUTS: dict[str, tuple[tuple[list[int], str], ...]] = {
    "aten::linear": (ACTIVATION, ([1024, 1024], "float"), ([1024], "float")),
    "aten::addmm": (([1024], "float"), ACTIVATION, ([1024, 1024], "float"), ([], "Scalar"), ([], "Scalar")),
    "aten::mm": (ACTIVATION, ([1024, 1024], "float")),
    "aten::relu": (ACTIVATION,),
    "aten::clamp_min": (ACTIVATION, ([], "Scalar")),
    "aten::threshold_backward": (ACTIVATION, ACTIVATION, ([], "Scalar")),
    "aten::layer_norm": (ACTIVATION, ([], "ScalarList"), ([1024], "float"), ([1024], "float")),
    "aten::native_layer_norm": (ACTIVATION, ([], "ScalarList"), ([1024], "float"), ([1024], "float")),
    "aten::native_layer_norm_backward": (ACTIVATION, ACTIVATION, ([256, 1], "float"), ([256, 1], "float")),
}


def shape_args(inputs: tuple[tuple[list[int], str], ...]) -> dict[str, Any]:
    """What record_shapes adds to an op: dims, types, contiguous strides, and scalars' values."""
    strides = [[prod(dims[i + 1 :]) for i in range(len(dims))] for dims, _ in inputs]
    return {
        "Input Dims": [dims for dims, _ in inputs],
        "Input type": [kind for _, kind in inputs],
        "Input Strides": strides,
        "Concrete Inputs": ["1" if kind == "Scalar" else "" for _, kind in inputs],
    }


CBID = {
    "cudaLaunchKernel": 211,
    "cudaMemcpyAsync": 41,
    "cudaStreamSynchronize": 131,
    "cudaStreamWaitEvent": 147,
    "cudaEventRecord": 135,
    "cudaMemsetAsync": 51,
}


@dataclass
class Gpu:
    """A GPU activity as the ground truth measures it."""

    start: int
    end: int
    role: str  # compute | comm | memcpy


@dataclass
class Pending:
    """A collective issued on one rank whose end depends on every rank."""

    ready: int  # when this rank's data is ready and its kernel (or gloo thread) can start
    nbytes: int
    event: dict[str, Any]  # the NCCL kernel or the gloo annotation, finished by resolve_collectives
    arrow: dict[str, Any] | None = None  # the kernel's ac2g finish, which moves with it
    start: int = 0


@dataclass
class RankState:
    spec: KinetoSpec
    rank: int
    pid: int
    device_index: int
    t: int  # the CPU cursor
    stream_free: dict[int, int] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    gpu: list[Gpu] = field(default_factory=list)
    next_external: int = 1
    next_ev_idx: int = 0
    next_correlation: int = 0
    next_sequence: int = 0
    next_flow: int = 1
    next_collective: int = 0  # the process group's sequence number (record_param_comms' Seq)
    steps: dict[int, tuple[int, int]] = field(default_factory=dict)
    step_events: dict[int, dict[str, Any]] = field(default_factory=dict)  # ProfilerStep#N, open until the end
    pending: list[Pending] = field(default_factory=list)
    # per fault and step, the windows whose GPU idle time (cuda) or length (cpu) the fault costs
    windows: dict[str, dict[int, list[list[int]]]] = field(default_factory=dict)
    benign_sync_windows: dict[int, list[list[int]]] = field(default_factory=dict)
    waits: dict[int, int] = field(default_factory=dict)  # per step: ns waited inside collectives
    extra_compute: dict[int, int] = field(default_factory=dict)  # slow rank: ns added to compute
    copy_ns: dict[int, int] = field(default_factory=dict)  # per step: the input copy's duration
    allocated: int = 0
    step: int = 0  # the step being built
    stream: random.Random = field(default_factory=random.Random)
    # Kernel durations of a step, drawn alike on every rank (same shapes, same kernels) before a
    # rank's own 1 % jitter: the ranks of a healthy run reach each collective nearly together.
    shared: random.Random = field(default_factory=random.Random)

    @property
    def cuda(self) -> bool:
        return self.spec.device == "cuda"

    @property
    def autograd_tid(self) -> int:
        return self.pid + 7 if self.cuda else self.pid

    @property
    def gloo_tid(self) -> int:
        return self.pid + 11

    def us(self, low: float, high: float) -> int:
        """A duration drawn between `low` and `high` µs, in ns."""
        return round(self.stream.uniform(low, high) * US)

    def new_ids(self) -> dict[str, int]:
        """The next External id (one per CPU op or range, as the profiler numbers them)."""
        external, self.next_external = self.next_external, self.next_external + 1
        return {"External id": external, "Record function id": 0}

    def with_ev_idx(self, args: dict[str, Any]) -> dict[str, Any]:
        """`args` with the next `Ev Idx`, the profiler's running index of CPU events."""
        args["Ev Idx"], self.next_ev_idx = self.next_ev_idx, self.next_ev_idx + 1
        return args

    def cpu(
        self, cat: str, name: str, tid: int, start: int, extra: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """An open CPU event (cpu_op or user_annotation); `close` sets its end."""
        event = {
            "ph": "X",
            "cat": cat,
            "name": name,
            "pid": self.pid,
            "tid": tid,
            "ts": start,
            "dur": 0,
            "args": self.with_ev_idx({**self.new_ids(), **(extra or {})}),
        }
        self.events.append(event)
        return event

    @staticmethod
    def close(event: dict[str, Any], end: int) -> None:
        event["dur"] = end - event["ts"]

    def runtime(self, name: str, tid: int, external: int | None, dur: int) -> dict[str, Any]:
        """A CUDA runtime call at the cursor; `external` None for a call outside any op (Kineto
        then leaves `External id` out)."""
        correlation, self.next_correlation = self.next_correlation, self.next_correlation + 1
        args = {"cbid": CBID[name], "correlation": correlation}
        event = {
            "ph": "X",
            "cat": "cuda_runtime",
            "name": name,
            "pid": self.pid,
            "tid": tid,
            "ts": self.t,
            "dur": dur,
            "args": args if external is None else {"External id": external, **args},
        }
        self.events.append(event)
        self.t += dur
        return event

    def gpu_event(
        self,
        runtime: dict[str, Any],
        cat: str,
        name: str,
        stream: int,
        start: int,
        dur: int,
        args: dict[str, Any],
        flow: bool = True,
    ) -> dict[str, Any]:
        """GPU work launched by `runtime`, with its ac2g flow pair unless `flow` is off."""
        correlation = runtime["args"]["correlation"]
        event = {
            "ph": "X",
            "cat": cat,
            "name": name,
            "pid": self.device_index,
            "tid": stream,
            "ts": start,
            "dur": dur,
            "args": {
                "External id": runtime["args"]["External id"],
                **({"queued": 0} if cat == "kernel" else {}),
                "device": self.device_index,
                "context": 1,
                "stream": stream,
                "correlation": correlation,
                **args,
            },
        }
        if not flow:
            self.events.append(event)
            return event
        link = {"id": correlation, "cat": "ac2g", "name": "ac2g"}
        self.events.append({"ph": "s", **link, "pid": self.pid, "tid": runtime["tid"], "ts": runtime["ts"]})
        self.events.append(event)
        self.events.append(
            {"ph": "f", **link, "pid": self.device_index, "tid": stream, "ts": start, "bp": "e"}
        )
        return event

    def kernel(
        self, tid: int, external: int, name: str, dur: int, stream: int, role: str = "compute"
    ) -> None:
        launch = self.runtime("cudaLaunchKernel", tid, external, self.us(4, 7))
        start = max(launch["ts"] + launch["dur"] + self.us(2, 5), self.stream_free.get(stream, 0))
        blocks = self.stream.choice((108, 216, 432, 864))
        self.gpu_event(launch, "kernel", name, stream, start, dur, kernel_args(blocks, self.stream))
        self.stream_free[stream] = start + dur
        self.gpu.append(Gpu(start, start + dur, role))
        self.t += self.us(1, 3)

    def compute_streams(self) -> tuple[int, ...]:
        return (DEFAULT_STREAM, *SIDE_STREAMS)[: self.spec.streams]

    def drained(self) -> int:
        """When every compute stream has finished what was launched so far."""
        return max([self.stream_free.get(s, 0) for s in self.compute_streams()], default=0)

    def op(
        self,
        outer: str,
        inner: str,
        kernels: tuple[tuple[str, float, float], ...],
        tid: int,
        stream: int,
        extra: dict[str, Any] | None = None,
        slow: float = 1.0,
    ) -> dict[str, Any]:
        """A cpu_op (and its ATen child) that launches `kernels` (cuda) or computes them itself (cpu)."""
        top = self.cpu("cpu_op", outer, tid, self.t, {**(extra or {}), **op_shapes(outer)})
        self.t += self.us(3, 8)
        child = (
            self.cpu("cpu_op", inner, tid, self.t, {**(extra or {}), **op_shapes(inner)})
            if inner != outer
            else top
        )
        self.t += self.us(5, 12)
        for index in range(self.spec.kernels_per_op):
            name, low, high = kernels[index % len(kernels)]
            base = round(self.shared.uniform(low, high) * US * self.stream.uniform(0.99, 1.01))
            base = base if self.cuda else round(base * CPU_SLOWDOWN)
            dur = round(base * slow)
            self.extra_compute[self.step] = self.extra_compute.get(self.step, 0) + dur - base
            if self.cuda:
                self.kernel(tid, child["args"]["External id"], name, dur, stream)
            else:
                self.t += dur
        self.t += self.us(1, 3)
        if child is not top:
            self.close(child, self.t)
            self.t += self.us(1, 3)
        self.close(top, self.t)
        self.t += self.us(2, 6)
        return top

    def memory(self, nbytes: int) -> None:
        if not self.spec.profile_memory:
            return
        self.allocated += nbytes
        self.events.append(
            {
                "ph": "i",
                "cat": "cpu_instant_event",
                "s": "t",
                "name": "[memory]",
                "pid": self.pid,
                "tid": self.pid,
                "ts": self.t,
                "args": self.with_ev_idx(
                    {
                        "Addr": 139_800_000_000_000 + self.stream.randrange(1 << 30) * 512,
                        "Bytes": nbytes,
                        "Total Allocated": self.allocated,
                        "Total Reserved": max(self.allocated, 2 << 30) if self.cuda else 0,
                        "Device Type": 1 if self.cuda else 0,
                        "Device Id": self.device_index if self.cuda else -1,
                    }
                ),
            }
        )

    def window(self, fault: str, step: int, start: int, end: int) -> None:
        self.windows.setdefault(fault, {}).setdefault(step, []).append([start, end])


def op_shapes(name: str) -> dict[str, Any]:
    """record_shapes' args of the op `name` (ops outside the table: one activation)."""
    return shape_args(OP_INPUTS.get(name, (ACTIVATION,)))


def kernel_args(blocks: int, stream: random.Random) -> dict[str, Any]:
    threads = stream.choice((128, 256))
    return {
        "registers per thread": stream.choice((32, 40, 64, 128)),
        "shared memory": stream.choice((0, 16384, 49152)),
        "blocks per SM": round(blocks / 108, 6),
        "warps per SM": round(blocks * threads / 32 / 108, 6),
        "grid": [blocks, 1, 1],
        "block": [threads, 1, 1],
        "est. achieved occupancy %": stream.randrange(20, 90),
    }


def comm_args(spec: KinetoSpec, nbytes: int, sequence: int, rank: int) -> dict[str, Any]:
    """record_param_comms' metadata (torch >= 2.1), which Kineto copies onto the NCCL kernel."""
    nelems = nbytes // 4
    return {
        "Collective name": "allreduce",
        "In msg nelems": nelems,
        "Out msg nelems": nelems,
        "Group size": spec.ranks,
        "dtype": "Float",
        "In split size": "[]",
        "Out split size": "[]",
        "Process Group Name": "0",
        "Process Group Description": "default_pg",
        "Process Group Ranks": str(list(range(spec.ranks))),
        "Global rank start": 0,
        "Global rank stride": 1,
        "Rank": rank,
        "Seq": sequence,
    }


def transfer_ns(spec: KinetoSpec, nbytes: int) -> int:
    """A ring all-reduce moves 2(n-1)/n of the buffer through each rank's link."""
    gbps = NCCL_BUS_GBPS if spec.device == "cuda" else GLOO_GBPS
    return round(2 * (spec.ranks - 1) / spec.ranks * nbytes / gbps) + 15 * US


def new_rank(spec: KinetoSpec, rank: int) -> RankState:
    stream = rng(spec.seed, "kineto", rank)
    state = RankState(
        spec=spec,
        rank=rank,
        pid=stream.randrange(2_000, 4_000_000),
        device_index=rank % 8,
        t=stream.randrange(2 * MS, 3 * MS),  # the profiler's warm-up before the first step
        stream=stream,
    )
    state.next_correlation = stream.randrange(1_000, 50_000)
    return state


def forward_and_backward(state: RankState, step: int) -> None:
    """From the step's start to the last gradient bucket issued: collectives stay pending."""
    spec, rank = state.spec, state.rank
    state.step = step
    state.shared = rng(spec.seed, "kernels", step)
    main = state.pid
    start = state.t
    state.steps[step] = (start, 0)
    state.step_events[step] = state.cpu("user_annotation", f"ProfilerStep#{step}", main, start)
    state.t += state.us(8, 20)
    loader_ns = (
        state.us(SLOW_LOADER_MS[0] * 1000, SLOW_LOADER_MS[1] * 1000)
        if spec.faulty("dataloader.slow", rank, step)
        else state.us(*LOADER_US)
    )
    loader = state.cpu(
        "user_annotation", "enumerate(DataLoader)#_SingleProcessDataLoaderIter.__next__", main, state.t
    )
    loader_end = state.t + loader_ns
    state.t = loader_end - state.us(40, 70)
    state.close(state.cpu("cpu_op", "aten::stack", main, state.t), loader_end - state.us(2, 4))
    state.t = loader_end
    state.close(loader, loader_end)
    if spec.faulty("dataloader.slow", rank, step):
        state.window("dataloader.slow", step, loader["ts"], loader_end)
    state.t += state.us(3, 8)
    batch_bytes = round(spec.batch_mb * (1 << 20))
    if state.cuda:
        copy_inputs(state, step, batch_bytes)
    state.memory(batch_bytes)
    zero = state.cpu("user_annotation", "Optimizer.zero_grad#SGD.zero_grad", main, state.t)
    state.t += state.us(20, 60)
    state.close(zero, state.t)
    state.t += state.us(3, 8)

    slow = SLOW_RANK_FACTOR if spec.faulty("cluster.slow_rank", rank, step) else 1.0
    ddp = (
        state.cpu("user_annotation", "DistributedDataParallel.forward", main, state.t)
        if spec.ranks > 1
        else None
    )
    if state.cuda:
        zeros(state, round(SCRATCH_MB * (1 << 20)))
    forward_ops = spec.ops_per_step // 3
    syncs = SYNCS_PER_STEP if spec.faulty("schedule.host_sync", rank, step) else 0
    sync_after = {forward_ops * (k + 1) // (syncs + 1) - 1 for k in range(syncs)}
    streams = state.compute_streams()
    sequences = []
    for index in range(forward_ops):
        outer, inner, kernels, _, _ = FORWARD_OPS[index % len(FORWARD_OPS)]
        sequence, state.next_sequence = state.next_sequence, state.next_sequence + 1
        event = state.op(
            outer,
            inner,
            kernels,
            main,
            streams[index % len(streams)],
            {"Sequence number": sequence, "Fwd thread id": 0},
            slow,
        )
        sequences.append((sequence, event))
        if state.stream.random() < YOUNG_GC_CHANCE:
            state.t += python_gc(state, state.us(*YOUNG_GC_US))
        if index in sync_after:
            gap = host_sync(state, step)
            state.window("schedule.host_sync", step, gap, gap)  # the end is the next GPU start
            state.t += state.us(*HOST_WORK_US)
    if ddp is not None:
        state.close(ddp, state.t)
    state.t += state.us(5, 15)
    if spec.faulty("schedule.gc", rank, step):
        gc_ns = state.us(GC_MS[0] * 1000, GC_MS[1] * 1000)
        state.window("schedule.gc", step, state.t, state.t + gc_ns)
        state.t += python_gc(state, gc_ns)

    backward(state, step, sequences, slow)


def zeros(state: RankState, nbytes: int) -> None:
    """`torch.zeros(..., device="cuda")`: aten::zeros -> aten::zero_ -> aten::fill_, one memset."""
    main = state.pid
    outer = [
        state.cpu("cpu_op", name, main, state.t) for name in ("aten::zeros", "aten::zero_", "aten::fill_")
    ]
    state.t += state.us(4, 8)
    launch = state.runtime("cudaMemsetAsync", main, outer[-1]["args"]["External id"], state.us(4, 8))
    start = max(launch["ts"] + launch["dur"] + state.us(2, 4), state.stream_free.get(DEFAULT_STREAM, 0))
    dur = round(nbytes / MEMSET_GBPS)
    args = {"bytes": nbytes, "memory bandwidth (GB/s)": round(nbytes / dur, 6)}
    state.gpu_event(launch, "gpu_memset", "Memset (Device)", DEFAULT_STREAM, start, dur, args)
    state.gpu.append(Gpu(start, start + dur, "memset"))
    state.stream_free[DEFAULT_STREAM] = start + dur
    for event in reversed(outer):
        state.t += state.us(1, 3)
        state.close(event, state.t)
    state.t += state.us(2, 5)


def project_annotations(state: RankState) -> None:
    """Kineto's gpu_user_annotation: each user range drawn again on every stream its launches ran
    on, from their first start to their last end (1 ns earlier, 2 ns longer, as Kineto does).
    ProfilerStep#N takes what any thread launched in its time; another range, what its thread did."""
    runtime = {e["args"]["correlation"]: e for e in state.events if e.get("cat") == "cuda_runtime"}
    work = [
        (runtime[e["args"]["correlation"]], e)
        for e in state.events
        if e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset")
    ]
    ranges = [e for e in state.events if e.get("cat") == "user_annotation"]
    for annotation in ranges:
        start, end = annotation["ts"], annotation["ts"] + annotation["dur"]
        any_thread = annotation["name"].startswith("ProfilerStep#")
        by_stream: dict[int, list[dict[str, Any]]] = {}
        for call, event in work:
            if start <= call["ts"] <= end and (any_thread or call["tid"] == annotation["tid"]):
                by_stream.setdefault(event["tid"], []).append(event)
        for stream, events in sorted(by_stream.items()):
            first = min(e["ts"] for e in events) - 1
            last = max(e["ts"] + e["dur"] for e in events) + 1
            state.events.append(
                {
                    "ph": "X",
                    "cat": "gpu_user_annotation",
                    "name": annotation["name"],
                    "pid": state.device_index,
                    "tid": stream,
                    "ts": first,
                    "dur": last - first,
                    "args": {"External id": annotation["args"]["External id"]},
                }
            )


def python_gc(state: RankState, dur: int) -> int:
    """A collector pass of `dur` ns at the cursor on the main thread, as a `Python GC` event where the
    trace records them; returns `dur` (the host is busy either way)."""
    if state.spec.python_gc_events and state.spec.schema == "new":
        event = {"ph": "X", "cat": "python_function", "name": "Python GC", "pid": state.pid, "tid": state.pid}
        state.events.append({**event, "ts": state.t, "dur": dur, "args": state.with_ev_idx({})})
    return dur


def copy_inputs(state: RankState, step: int, nbytes: int) -> None:
    """`batch.to("cuda", non_blocking=True)` from pinned memory, or a blocking copy from pageable memory."""
    main = state.pid
    pageable = state.spec.faulty("memory.pageable_memcpy", state.rank, step)
    dims = shape_args(
        (([nbytes // 4 // 64, 64], "float"), ([], ""), ([], ""), ([], "Scalar"), ([], "Scalar"))
    )
    to = state.cpu("cpu_op", "aten::to", main, state.t, dims)
    state.t += state.us(4, 8)
    to_copy = state.cpu("cpu_op", "aten::_to_copy", main, state.t, dims)
    state.t += state.us(6, 12)
    copy = state.cpu("cpu_op", "aten::copy_", main, state.t)
    state.t += state.us(3, 6)
    gbps = PAGEABLE_GBPS if pageable else PINNED_GBPS
    dur = round(nbytes / gbps)
    call_start = state.t
    launch = state.runtime("cudaMemcpyAsync", main, copy["args"]["External id"], state.us(8, 15))
    start = max(launch["ts"] + launch["dur"] + state.us(2, 4), state.stream_free.get(DEFAULT_STREAM, 0))
    if pageable:  # staged through a pinned buffer: the call returns when the copy is done
        start = call_start + state.us(6, 10)
        launch["dur"] = start + dur + state.us(3, 6) - call_start
        state.t = call_start + launch["dur"]
        state.window("memory.pageable_memcpy", step, start, start + dur - round(nbytes / PINNED_GBPS))
    name = f"Memcpy HtoD ({'Pageable' if pageable else 'Pinned'} -> Device)"
    args = {"bytes": nbytes, "memory bandwidth (GB/s)": round(nbytes / dur, 6)}
    state.gpu_event(launch, "gpu_memcpy", name, DEFAULT_STREAM, start, dur, args)
    state.stream_free[DEFAULT_STREAM] = start + dur
    state.gpu.append(Gpu(start, start + dur, "memcpy"))
    state.copy_ns[step] = dur
    for event in (copy, to_copy, to):
        state.t += state.us(1, 3)
        state.close(event, state.t)
    state.t += state.us(3, 8)


def host_sync(state: RankState, step: int) -> int:
    """`tensor.item()`: a 4-byte DtoH copy after everything launched, and a wait for it. Returns
    when the copy ends: from there the GPU idles until the host launches again."""
    main = state.pid
    item = state.cpu("cpu_op", "aten::item", main, state.t)
    state.t += state.us(3, 6)
    scalar = state.cpu("cpu_op", "aten::_local_scalar_dense", main, state.t)
    state.t += state.us(4, 8)
    external = scalar["args"]["External id"]
    launch = state.runtime("cudaMemcpyAsync", main, external, state.us(6, 10))
    start = max(launch["ts"] + launch["dur"] + state.us(2, 4), state.drained())
    dur = state.us(1, 3)
    args = {"bytes": 4, "memory bandwidth (GB/s)": round(4 / dur, 6)}
    state.gpu_event(
        launch, "gpu_memcpy", "Memcpy DtoH (Device -> Pageable)", DEFAULT_STREAM, start, dur, args
    )
    state.gpu.append(Gpu(start, start + dur, "memcpy"))
    state.stream_free[DEFAULT_STREAM] = start + dur
    state.t += state.us(1, 2)
    sync = state.runtime("cudaStreamSynchronize", main, external, 0)
    sync_end = max(state.t, start + dur) + state.us(3, 6)
    sync["dur"] = sync_end - sync["ts"]
    # What the GPU side waited on (enable_cuda_sync_events): no work, no flow arrow.
    sync_args = {"cuda_sync_kind": "Stream Sync"}
    state.gpu_event(
        sync, "cuda_sync", "Stream Sync", DEFAULT_STREAM, start + dur, state.us(2, 5), sync_args, False
    )
    state.t = sync_end + state.us(2, 5)
    state.close(scalar, state.t)
    state.t += state.us(1, 3)
    state.close(item, state.t)
    state.t += state.us(2, 5)
    return start + dur


def backward(state: RankState, step: int, sequences: list[tuple[int, dict[str, Any]]], slow: float) -> None:
    spec = state.spec
    tid = state.autograd_tid
    backward_ops = spec.ops_per_step - spec.ops_per_step // 3
    exposed = spec.faulty("communication.exposed", state.rank, step)
    gradient = round(spec.gradient_mb * (1 << 20) * (EXPOSED_TRAFFIC if exposed else 1))
    if spec.ranks > 1:
        bucket_after = [backward_ops * (b + 1) // spec.buckets - 1 for b in range(spec.buckets)]
        if exposed:  # DDP's hooks fire only after the whole backward (no_sync, then one reduction)
            bucket_after = [backward_ops - 1] * spec.buckets
    else:
        bucket_after = []
    streams = state.compute_streams()
    for index in range(backward_ops):
        forward_sequence, forward_event = sequences[-1 - index % len(sequences)]
        _, _, _, grad_fn, inner = next(op for op in FORWARD_OPS if op[0] == forward_event["name"])
        extra = {"Sequence number": forward_sequence, "Fwd thread id": state.pid}
        event = state.op(
            f"autograd::engine::evaluate_function: {grad_fn}",
            inner,
            BACKWARD_KERNELS[inner],
            tid,
            streams[index % len(streams)],
            extra,
            slow,
        )
        if index < len(sequences):  # the backward op of each forward op: an fwdbwd arrow
            flow = {"id": state.next_flow, "cat": "fwdbwd", "name": "fwdbwd"}
            state.next_flow += 1
            state.events.append(
                {"ph": "s", **flow, "pid": state.pid, "tid": forward_event["tid"], "ts": forward_event["ts"]}
            )
            state.events.append(
                {"ph": "f", **flow, "pid": state.pid, "tid": tid, "ts": event["ts"], "bp": "e"}
            )
        for _ in range(bucket_after.count(index)):
            issue_bucket(state, gradient // spec.buckets)


def issue_bucket(state: RankState, nbytes: int) -> None:
    spec = state.spec
    dims = shape_args((([nbytes // 4], "float"),))
    if state.cuda:
        tid = state.autograd_tid
        annotation = state.cpu("user_annotation", "nccl:all_reduce", tid, state.t, dims)
        state.t += state.us(3, 6)
        sequence, state.next_collective = state.next_collective, state.next_collective + 1
        params = state.cpu(
            "cpu_op", "record_param_comms", tid, state.t, comm_args(spec, nbytes, sequence, state.rank)
        )
        state.t += state.us(4, 8)
        external = params["args"]["External id"]
        state.runtime("cudaEventRecord", tid, external, state.us(2, 4))
        state.runtime("cudaStreamWaitEvent", tid, external, state.us(2, 4))
        launch = state.runtime("cudaLaunchKernel", tid, external, state.us(5, 9))
        ready = max(launch["ts"] + launch["dur"] + state.us(2, 5), state.drained())
        args = {
            **kernel_args(state.stream.choice((2, 4, 8)), state.stream),
            **comm_args(spec, nbytes, sequence, state.rank),
        }
        for key in (
            "In split size",
            "Out split size",
            "Global rank start",
            "Global rank stride",
            "Rank",
            "Seq",
        ):
            del args[key]  # Kineto copies only part of the metadata onto the kernel
        kernel = state.gpu_event(launch, "kernel", NCCL_ALLREDUCE, COMM_STREAM, ready, 0, args)
        state.pending.append(Pending(ready, nbytes, kernel, arrow=state.events[-1]))  # gpu_event's "f"
        state.t += state.us(2, 4)
        state.close(params, state.t)
        state.t += state.us(1, 3)
        state.close(annotation, state.t)
    else:
        issue = state.cpu("cpu_op", "c10d::allreduce_", state.autograd_tid, state.t, dims)
        state.t += state.us(60, 120)
        state.close(issue, state.t)
        # The gloo thread picks the work up and runs it; its range lasts until every rank is done.
        work = {
            "ph": "X",
            "cat": "user_annotation",
            "name": "gloo:all_reduce",
            "pid": state.pid,
            "tid": state.gloo_tid,
            "ts": 0,
            "dur": 0,
            "args": state.with_ev_idx({**state.new_ids(), **dims}),
        }
        state.events.append(work)
        state.pending.append(Pending(issue["ts"] + issue["dur"] + state.us(20, 80), nbytes, work))
    state.t += state.us(2, 5)


def resolve_collectives(ranks: list[RankState], step: int) -> None:
    """Each collective starts on a rank when that rank is ready (and its previous one ended) and
    ends on every rank when the last one started plus the transfer time."""
    if len(ranks) < 2:
        return
    channel_free = {state.rank: state.stream_free.get(COMM_STREAM, 0) for state in ranks}
    for index in range(len(ranks[0].pending)):
        items = [(state, state.pending[index]) for state in ranks]
        for state, item in items:
            item.start = max(item.ready, channel_free[state.rank])
        transfer = transfer_ns(ranks[0].spec, items[0][1].nbytes)
        last = max(item.start for _, item in items)
        for state, item in items:
            end = last + transfer + state.us(0, 3)
            item.event["ts"], item.event["dur"] = item.start, end - item.start
            if item.arrow is not None:
                item.arrow["ts"] = item.start
            channel_free[state.rank] = end
            state.waits[step] = state.waits.get(step, 0) + last - item.start
            if state.cuda:
                state.gpu.append(Gpu(item.start, end, "comm"))
    for state in ranks:
        state.stream_free[COMM_STREAM] = channel_free[state.rank]
        state.pending.clear()


def finish_step(state: RankState, step: int) -> None:
    """After the backward: wait for the gradients, the optimizer, the loss logged, the step's end."""
    spec = state.spec
    main = state.pid
    backward_end = state.t
    comm_end = state.stream_free.get(COMM_STREAM, 0) if spec.ranks > 1 else 0
    if state.cuda:
        if spec.ranks > 1:  # DDP's finalize: the default stream waits for the reductions
            state.runtime("cudaStreamWaitEvent", state.autograd_tid, None, state.us(2, 4))
            state.stream_free[DEFAULT_STREAM] = max(state.drained(), comm_end)
    else:
        state.t = max(state.t, comm_end)  # the main thread waits for the gloo work
        if spec.faulty("communication.exposed", state.rank, step):
            state.window("communication.exposed", step, backward_end, state.t)
    state.t += state.us(5, 15)
    optimizer = state.cpu("user_annotation", "Optimizer.step#SGD.step", main, state.t)
    state.t += state.us(20, 40)
    if spec.faulty("schedule.launch_overhead", state.rank, step):
        first = len(state.gpu)
        for _ in range(TINY_KERNELS):
            add = state.cpu("cpu_op", "aten::add_", main, state.t)
            state.t += state.us(*TINY_OP_US)
            state.kernel(main, add["args"]["External id"], ADD, state.us(*TINY_KERNEL_US), DEFAULT_STREAM)
            state.close(add, state.t)
            state.t += state.us(1, 2)
        tiny = state.gpu[first:]
        state.window("schedule.launch_overhead", step, tiny[0].start, tiny[-1].end)
    else:
        state.op("aten::_foreach_add_", "aten::_foreach_add_", ((FOREACH, 150, 300),), main, DEFAULT_STREAM)
    state.t += state.us(5, 10)
    state.close(optimizer, state.t)
    state.t += state.us(5, 10)
    if state.cuda:  # `running_loss += loss.item()`: one benign sync per step, after everything
        copied = host_sync(state, step)
        state.benign_sync_windows.setdefault(step, []).append([copied, copied])
    state.memory(-round(spec.batch_mb * (1 << 20)))
    state.t += state.us(30, 60)  # prof.step()
    start = state.steps[step][0]
    state.steps[step] = (start, state.t)
    state.close(state.step_events[step], state.t)
    state.t += state.us(2, 5)


def simulate(spec: KinetoSpec) -> list[RankState]:
    ranks = [new_rank(spec, rank) for rank in range(spec.ranks)]
    for step in spec.steps:
        for state in ranks:
            forward_and_backward(state, step)
        resolve_collectives(ranks, step)
        for state in ranks:
            finish_step(state, step)
    for state in ranks:
        if state.cuda:
            project_annotations(state)
    return ranks
