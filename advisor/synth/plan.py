"""Step plans (what runs on one rank in one step, with durations) and the cross-rank schedule.

A step is a list of slices: a block of back-to-back kernels (with small gaps and host stalls only in
slices without communication), optionally an all-reduce that starts `overlap` ns before the block
ends, then idle time. The demo fills slices from exact budgets; the synthetic run derives them from
the model, the link speeds and the faults, and all ranks of a group leave each all-reduce together
(the slowest rank makes the others wait), so cross-rank numbers agree like in a real cluster.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from .model import (
    NOMINAL_MHZ,
    KernelTemplate,
    OpTemplate,
    build_model,
)
from .spec import DemoSpec, DemoStep, jittered, rng, split_by_weights, split_random, split_within

_US = 1000
CALL_SPACING = 10 * _US
HCCL_LATENCY = 6 * _US  # a transfer of a few KB over HCCS: set by latency, not bandwidth
STALL_MARGIN = 300 * _US  # device idle beyond the host stall: the launch that ends it


@dataclass(slots=True)
class Stall:
    """Host time before a kernel during which the device starves (gap = device idle, ns)."""

    kind: str  # gc, host_sync, memory, compile, mask (SyncBatchNorm's count mask)
    gap: int
    parts: list[int]  # host-side durations: one GC, the calls of a memory burst, compilations

    def span(self) -> int:
        """Host time of the stall's calls, back to back with CALL_SPACING between them."""
        return sum(self.parts) + CALL_SPACING * (len(self.parts) - 1)


@dataclass(slots=True)
class Kernel:
    tpl: KernelTemplate
    op: int  # index into StepPlan.ops
    dur: int
    gap: int = 0  # device idle before it
    block_dim: int = 0
    bound: str = ""
    op_state: str = "static"
    stalls: list[Stall] = field(default_factory=list)


@dataclass(slots=True)
class Plane:
    peer: int
    transport: str  # SDMA or RDMA
    link: str  # HCCS or ROCE
    size: int  # bytes moved on this link
    dur: int  # ns of the Memcpy / RDMASend


@dataclass(slots=True)
class CommOp:
    index: int  # run-wide all-reduce counter: part of the op name
    bytes: int
    own: int  # ns this rank needs when nobody makes it wait
    transfer: int  # wall ns of the data movement
    overlap: int
    planes: list[Plane]
    group: int = 0
    # allreduce; allgather (SyncBatchNorm's statistics or a distributed optimizer's parameters),
    # reducescatter (a distributed optimizer's gradients); send/receive (pipeline.py)
    kind: str = "allreduce"
    contended: bool | None = None  # bandwidth contention fault: shares HBM with compute kernels


@dataclass(slots=True)
class Slice:
    kernels: list[Kernel]
    comm: CommOp | None
    free: int
    p2p: list[CommOp] = field(default_factory=list)  # transfers the block waits for, in order

    def block(self) -> int:
        return sum(k.gap + k.dur for k in self.kernels)


@dataclass(slots=True)
class StepPlan:
    rank: int
    index: int
    step: int
    ops: list[OpTemplate]
    slices: list[Slice]
    preparing: int
    dataloader: str
    optimizer: str
    mhz: int = NOMINAL_MHZ
    sync_after_launch: bool = False


@dataclass(slots=True)
class StepTimes:
    """Where a step of one rank lies on the common clock (ns)."""

    start: int  # ProfilerStep#N begins
    end: int  # and ends
    device_end: int  # the device's last idle time of the step ends
    blocks: list[int]  # start of each slice's kernel block
    comm_end: list[int]  # end of each slice's all-reduce (0: none)
    comm_last: list[int]  # latest start of that all-reduce in its group: earlier ranks waited for it
    # Per slice, for each Slice.p2p op: (start, end, when its data was ready to move).
    p2p: list[list[tuple[int, int, int]]] = field(default_factory=list)


class Topology:
    """Nodes and data-parallel groups (Megatron order: tp fastest, then dp, then pp)."""

    def __init__(self, ranks: int, per_node: int, tp: int = 1, pp: int = 1) -> None:
        self.ranks, self.per_node, self.tp, self.pp = ranks, per_node, tp, pp
        self.dp = ranks // (tp * pp)

    def node(self, rank: int) -> int:
        return rank // self.per_node

    def group_of(self, rank: int) -> int:
        return (rank // (self.dp * self.tp)) * self.tp + rank % self.tp

    def stage(self, rank: int) -> int:
        return rank // (self.dp * self.tp)

    def pipeline_group(self, rank: int) -> int:
        """The id of the rank's pipeline group (after the data-parallel groups' ids)."""
        return self.tp * self.pp + rank % (self.dp * self.tp)

    def groups(self, rank: int) -> list[int]:
        return [self.group_of(rank), *([self.pipeline_group(rank)] if self.pp > 1 else [])]

    def members(self, group: int) -> list[int]:
        if group >= self.tp * self.pp:
            first = group - self.tp * self.pp
            return [first + s * self.dp * self.tp for s in range(self.pp)]
        stage, tp_index = divmod(group, self.tp)
        base = stage * self.dp * self.tp + tp_index
        return [base + i * self.tp for i in range(self.dp)]

    def peers(self, rank: int) -> list[tuple[int, str]]:
        """The links an all-reduce of `rank` uses: HCCS to its node, RDMA to the next node."""
        members = self.members(self.group_of(rank))
        local = [(q, "HCCS") for q in members if q != rank and self.node(q) == self.node(rank)]
        remote = [
            q for q in members if self.node(q) == (self.node(rank) + 1) % self.nodes() != self.node(rank)
        ]
        if remote:
            same_slot = [q for q in remote if q % self.per_node == rank % self.per_node]
            local.append(((same_slot or remote)[0], "ROCE"))
        return local

    def nodes(self) -> int:
        return (self.ranks + self.per_node - 1) // self.per_node


def _align(value: float) -> int:
    return max(512, math.ceil(value / 512) * 512)


def make_planes(
    rank: int,
    total: int,
    topo: Topology,
    gbps: dict[str, float],
    stream: random.Random,
    factor: dict[int, float],
    passes: int = 2,
) -> list[Plane]:
    """One plane per peer link; each moves passes/G of the op (an all-reduce is a reduce-scatter
    and an all-gather: 2 passes)."""
    peers = topo.peers(rank)
    group = len(topo.members(topo.group_of(rank)))
    size = _align(passes * total / group) if peers else 0
    planes = []
    for peer, link in peers:
        speed = gbps[link] * factor.get(peer, 1.0) * (1 + 0.004 * stream.uniform(-1, 1))
        transport = "RDMA" if link == "ROCE" else "SDMA"
        planes.append(Plane(peer, transport, link, size, max(1, round(size / speed))))
    return planes


REDUCING = ("allreduce", "reducescatter")  # collectives that reduce each chunk they receive


def transfer_ns(planes: list[Plane], reduces: bool = True) -> int:
    # Planes move data in parallel; a reduction follows each Memcpy with a Reduce_Inline a quarter as long.
    return max((p.dur + (p.dur // 4 if reduces else 0) for p in planes), default=5 * _US)


def _kernels(
    ops: list[OpTemplate], first_op: int, compute: int, stream: random.Random, noise: float
) -> list[Kernel]:
    """The kernels of `ops`, sharing `compute` ns by weight (AI_CPU kernels keep their own time)."""
    items = [(first_op + i, k) for i, op in enumerate(ops) for k in op.kernels]
    shared = [(i, k) for i, k in items if not k.fixed_us]
    durations = iter(
        split_by_weights(compute, [k.weight * (1 + noise * stream.uniform(-1, 1)) for _, k in shared])
    )
    out = []
    for op, tpl in items:
        dur = next(durations) if not tpl.fixed_us else jittered(tpl.fixed_us * _US, 0.1, stream)
        out.append(Kernel(tpl, op, max(1, dur or 0), block_dim=tpl.default_block_dim(), bound=tpl.bound))
    return out


@dataclass(slots=True)
class Phase:
    """Ops run back to back as one slice, and the collective issued after them: the all-reduce of
    the gradient bucket they complete, or the one their last op issues (SyncBatchNorm's). In a
    pipeline, `label` is the micro-batch block it begins (("F" | "B", micro-batch), or ("end", 0)
    for the first phase after the micro-batches): its transfers go before it (pipeline.py)."""

    ops: list[OpTemplate]
    bucket: int | None = None
    collective: tuple[str, int] | None = None  # OpTemplate.collective of its last op
    label: tuple[str, int] | None = None

    def issues(self) -> bool:
        return self.bucket is not None or self.collective is not None


def _split_at_collectives(phase: Phase) -> list[Phase]:
    """`phase` cut after each op that issues a collective; the first piece keeps its label, the last
    its bucket."""
    pieces: list[Phase] = []
    current: list[OpTemplate] = []
    for op in phase.ops:
        current.append(op)
        if op.collective:
            pieces.append(Phase(current, collective=op.collective))
            current = []
    if current:
        pieces.append(Phase(current, phase.bucket))
    pieces[0].label = phase.label
    return pieces


def _chunks(items: list, parts: int) -> list[list]:
    """`items` in `parts` contiguous, nearly equal, non-empty chunks (fewer when items run short)."""
    parts = max(1, min(parts, len(items)))
    bounds = [round(i * len(items) / parts) for i in range(parts + 1)]
    return [items[bounds[i] : bounds[i + 1]] for i in range(parts)]


class DemoPlanner:
    """Slices filled with the exact per-step budgets of `plan_demo` (no gaps, no stalls, no waits)."""

    sync = False

    def __init__(self, spec: DemoSpec, plan: list[DemoStep]) -> None:
        self.spec = spec
        self.seed = spec.seed
        self.model = build_model(6, 32)  # ~60 kernels a step, spread over the demo's slices
        self.ops = [
            *self.model.forward,
            *(op for group in self.model.backward for op in group),
            *self.model.optimizer,
        ]
        self.budgets = {(p.rank, p.step): p for p in plan}
        self.topology = Topology(spec.ranks, spec.ranks_per_node)
        self.gbps = {"HCCS": 18.0, "ROCE": 12.0}

    def plan(self, rank: int, index: int, step: int) -> StepPlan:
        item = self.budgets[(rank, step)]
        stream = rng(self.seed, "trace", rank, step)
        k = self.spec.slices_per_step
        computing = split_random(item.computing_ns, k, stream)
        not_overlapped = split_random(item.not_overlapped_ns, k, stream)
        free = split_random(item.free_ns, k, stream)
        overlapped = split_within(item.overlapped_ns, computing)
        chunks = _chunks(list(range(len(self.ops))), k)
        chunks += [[] for _ in range(k - len(chunks))]
        slices = []
        for i in range(k):
            ops = [self.ops[j] for j in chunks[i]]
            kernels = _kernels(ops, chunks[i][0], computing[i], stream, 0.05) if ops and computing[i] else []
            comm = None
            own = overlapped[i] + not_overlapped[i]
            if own:
                # The demo's bytes follow from its times: 60 % of the op moves data near link speed.
                moved = own * 3 // 5
                total = int(moved * self.gbps["HCCS"] * 0.8)
                planes = make_planes(rank, total, self.topology, self.gbps, stream, {})
                comm = CommOp(index * k + i, total, own, moved, overlapped[i], planes)
            slices.append(Slice(kernels, comm, free[i]))
        return StepPlan(
            rank,
            index,
            step,
            self.ops,
            slices,
            item.preparing_ns,
            MULTI_PROCESS_LOADER,
            self.model.optimizer_name,
        )


MULTI_PROCESS_LOADER = "enumerate(DataLoader)#_MultiProcessingDataLoaderIter.__next__"
HOST_SYNCS = 6
MEMORY_FREES = 12  # aclrtFree calls of a burst, then aclMallocMemInner
DISPATCH_COMPILES = 24
DYNAMIC_COMPILES = 4
BLOCK_DIM_FAULT = {"BNTrainingUpdate": 40, "Conv2DBackpropFilter": 20}
UNBOUND_TYPE = "Conv2D"
