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

from .faults import (
    EXPOSED_OVERLAP,
    EXPOSED_TRAFFIC,
    IDLE_FREE_FACTOR,
    LOW_MHZ,
    RETRANSMIT_NS,
    SLOW_LINK_FACTOR,
    SLOW_RANK_FACTOR,
    STAGE_IMBALANCE_FACTOR,
    Injection,
)
from .model import NOMINAL_MHZ, KernelTemplate, OpTemplate, aicpu_ops, build_model
from .spec import DemoSpec, DemoStep, SynthSpec, jittered, rng, split_by_weights, split_random, split_within

_US = 1000
CALL_SPACING = 10 * _US
STALL_MARGIN = 300 * _US  # device idle beyond the host stall: the launch that ends it


@dataclass(slots=True)
class Stall:
    """Host time before a kernel during which the device starves (gap = device idle, ns)."""

    kind: str  # gc, host_sync, memory, compile
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
    kind: str = "allreduce"  # reducescatter/allgather (a distributed optimizer), send/receive (pipeline.py)


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


class SynthPlanner:
    """Slices from the model: forward, one slice per gradient bucket (with its all-reduce), optimizer."""

    sync = True

    def __init__(self, spec: SynthSpec, injection: Injection) -> None:
        from .pipeline import stage_work  # it imports this module

        self.spec, self.inj = spec, injection
        self.seed = spec.seed
        faults = injection.faults
        self.topology = Topology(
            spec.ranks, injection.ranks_per_node, spec.tensor_parallel, spec.pipeline_parallel
        )
        affinity = "schedule.affinity_api" in faults
        small = "communication.small_packet" in faults
        self.work = [stage_work(spec, s, affinity, affinity, small) for s in range(spec.pipeline_parallel)]
        self.gbps = {"HCCS": spec.link_gbps, "ROCE": spec.rdma_gbps}
        self.communicates = self.topology.dp > 1

    def plan(self, rank: int, index: int, step: int) -> StepPlan:
        from .pipeline import add_pipeline_comm, block_labels, one_f_one_b, step_phases

        spec, inj, topo = self.spec, self.inj, self.topology
        work = self.work[topo.stage(rank)]
        model = work.model
        stream = rng(self.seed, "step", rank, step)
        slow = inj.on("cluster.slow_rank", rank)
        throttled = inj.on("computation.ai_core_frequency", rank, step)
        factor = (SLOW_RANK_FACTOR if slow else 1.0) * (NOMINAL_MHZ / LOW_MHZ if throttled else 1.0)
        if inj.on("computation.pp_stage_imbalance", rank):
            factor *= STAGE_IMBALANCE_FACTOR
        forward = list(model.forward)
        if inj.on("computation.aicpu", rank, step):
            forward += aicpu_ops()
        order = one_f_one_b(topo.stage(rank), topo.pp, spec.microbatch_count)
        phases, bucket_of = step_phases(forward, work, order, topo.pp > 1)
        ops = [op for phase in phases for op in phase]
        weights = [sum(k.weight for op in phase for k in op.kernels) for phase in phases]
        # The CNN's budget (per micro-batch) is split evenly over the stages; the LLM's kernel
        # weights are its times.
        budget_us = spec.computing_us * spec.microbatch_count / topo.pp
        total_us = sum(weights) if model.weights_us else budget_us
        computing = split_by_weights(jittered(total_us * _US * factor, spec.jitter, stream), weights)
        free_factor = IDLE_FREE_FACTOR if inj.on("overall.idle", rank, step) else 1.0
        free = split_random(
            jittered(spec.free_us * _US * free_factor, spec.jitter, stream), len(phases), stream
        )
        slices: list[Slice] = []
        first = 0
        for i, phase in enumerate(phases):
            kernels = _kernels(phase, first, computing[i], stream, 0.03)
            first += len(phase)
            comm = None
            # With a distributed optimizer (work.sharded) buckets are reduce-scattered, and the
            # first forward overlaps the all-gather of the parameters the optimizer updated.
            if bucket_of[i] is not None and self.communicates:
                kind = "reducescatter" if work.sharded else "allreduce"
                comm = self._comm(rank, index, step, bucket_of[i], computing[i], stream, kind)
            elif i == 0 and work.sharded and self.communicates:
                comm = self._comm(rank, index, step, 0, computing[i], stream, "allgather")
            else:
                for kernel in kernels[1:]:
                    if stream.random() < 0.3:  # launch jitter between kernels of one phase
                        kernel.gap = stream.randint(2 * _US, 12 * _US)
            slices.append(Slice(kernels, comm, free[i]))
        self._kernel_faults(rank, step, slices)
        self._stalls(rank, step, slices, stream)
        if topo.pp > 1:
            labels = block_labels(order, bucket_of)
            add_pipeline_comm(slices, labels, topo, rank, index, work, self.gbps, self.seed)
        preparing = jittered(spec.preparing_us * _US, spec.jitter, stream)
        loader = MULTI_PROCESS_LOADER
        if inj.on("dataloader.slow", rank, step):
            preparing += stream.randint(25_000, 45_000) * _US
            loader = "enumerate(DataLoader)#_SingleProcessDataLoaderIter.__next__"
        return StepPlan(
            rank,
            index,
            step,
            ops,
            slices,
            preparing,
            loader,
            model.optimizer_name,
            LOW_MHZ if throttled else NOMINAL_MHZ,
            inj.on("schedule.synchronize_stream", rank, step),
        )

    def _comm(
        self,
        rank: int,
        index: int,
        step: int,
        bucket: int,
        compute: int,
        stream: random.Random,
        kind: str = "allreduce",
    ) -> CommOp:
        """The collective of a gradient bucket (an all-gather: of all the stage's parameters)."""
        inj = self.inj
        work = self.work[self.topology.stage(rank)]
        traffic = EXPOSED_TRAFFIC if "communication.exposed" in inj.faults else 1.0
        count = len(work.bucket_ends)
        total = int(work.bucket_bytes * (count if kind == "allgather" else 1) * traffic)
        slow = {}
        if inj.slow_link and inj.slow_link[0] == rank:
            slow[inj.slow_link[1]] = SLOW_LINK_FACTOR
        planes = make_planes(
            rank, total, self.topology, self.gbps, stream, slow, 2 if kind == "allreduce" else 1
        )
        if inj.on("communication.byte_alignment", rank, step):
            for plane in planes:
                if plane.transport == "SDMA":
                    plane.size -= 200  # 200 bytes short of the 512-byte alignment
        if bucket == 0 and inj.on("communication.retransmission", rank, step):
            for plane in planes:
                if plane.transport == "RDMA":
                    plane.dur += RETRANSMIT_NS
        moved = transfer_ns(planes, kind in REDUCING)
        own = 8 * _US + moved + 3 * _US
        ratio = EXPOSED_OVERLAP if inj.on("communication.exposed", rank) else self.spec.overlap_ratio
        overlap = min(round(own * ratio), compute * 9 // 10)
        return CommOp(
            index * count + bucket, total, own, moved, overlap, planes, self.topology.group_of(rank), kind
        )

    def _kernel_faults(self, rank: int, step: int, slices: list[Slice]) -> None:
        inj = self.inj
        dynamic = inj.on("computation.dynamic_shape", rank, step)
        odd_block = inj.on("computation.block_dim", rank, step)
        unbound = inj.on("computation.operator_bound", rank, step)
        for piece in slices:
            for kernel in piece.kernels:
                if dynamic:
                    kernel.op_state = "dynamic"
                if odd_block and kernel.tpl.type in BLOCK_DIM_FAULT:
                    kernel.block_dim = BLOCK_DIM_FAULT[kernel.tpl.type]
                if unbound and kernel.tpl.type == UNBOUND_TYPE:
                    kernel.bound = "none"

    def _stalls(self, rank: int, step: int, slices: list[Slice], stream: random.Random) -> None:
        """Host stalls placed before kernels of the slices without communication."""
        inj = self.inj
        wanted: list[Stall] = []
        if inj.on("schedule.gc", rank, step):
            for _ in range(stream.randint(1, 2)):
                wanted.append(Stall("gc", 0, [stream.randint(20_000, 45_000) * _US]))
        if inj.on("schedule.host_sync", rank, step):
            for _ in range(HOST_SYNCS):
                wanted.append(Stall("host_sync", stream.randint(1_200, 2_500) * _US, [0]))
        if inj.on("memory.operators", rank, step):
            for _ in range(2):
                parts = [stream.randint(500, 800) * _US for _ in range(MEMORY_FREES)]
                parts += [stream.randint(600, 900) * _US for _ in range(10)]
                wanted.append(Stall("memory", 0, parts))
        compiles = 0
        if inj.on("schedule.operator_dispatch", rank, step):
            compiles += DISPATCH_COMPILES
        if inj.on("computation.dynamic_shape", rank, step):
            compiles += DYNAMIC_COMPILES
        for _ in range(compiles):
            dur = stream.randint(400, 1_200) * _US
            wanted.append(Stall("compile", dur + 150 * _US, [dur]))
        if not wanted:
            return
        spots = [k for piece in slices if piece.comm is None for k in piece.kernels[1:]]
        for i, stall in enumerate(wanted):
            kernel = spots[i * len(spots) // len(wanted)]
            if stall.kind in ("gc", "memory"):
                stall.gap = stall.span() + STALL_MARGIN
            kernel.stalls.append(stall)
            kernel.gap += stall.gap


MULTI_PROCESS_LOADER = "enumerate(DataLoader)#_MultiProcessingDataLoaderIter.__next__"
HOST_SYNCS = 6
MEMORY_FREES = 12  # aclrtFree calls of a burst, then aclMallocMemInner
DISPATCH_COMPILES = 24
DYNAMIC_COMPILES = 4
BLOCK_DIM_FAULT = {"BNTrainingUpdate": 40, "Conv2DBackpropFilter": 20}
UNBOUND_TYPE = "Conv2D"


def schedule(
    planner: DemoPlanner | SynthPlanner, ranks: int, steps: tuple[int, ...], start_ns: list[int]
) -> dict[tuple[int, int], StepTimes]:
    """Every (rank, step index) placed on the common clock.

    Demo: ranks run independently. Synthetic: all ranks start each step together, each all-reduce
    ends for its whole group when the last member's own transfer is done, and the step ends for all
    ranks when the last one is idle.
    """
    if planner.topology.pp > 1:
        from .pipeline import schedule_pipeline  # it imports this module

        return schedule_pipeline(planner, ranks, steps, start_ns)
    times: dict[tuple[int, int], StepTimes] = {}
    clock = list(start_ns)
    for index, step in enumerate(steps):
        plans = [planner.plan(rank, index, step) for rank in range(ranks)]
        if planner.sync:
            clock = [max(clock)] * ranks
        cursor = [clock[r] + plans[r].preparing for r in range(ranks)]
        rows = [StepTimes(clock[r], 0, 0, [], [], []) for r in range(ranks)]
        for i in range(len(plans[0].slices)):
            ends, starts = [], []
            for r in range(ranks):
                piece = plans[r].slices[i]
                rows[r].blocks.append(cursor[r])
                block_end = cursor[r] + piece.block()
                ends.append(block_end)
                starts.append(block_end - piece.comm.overlap if piece.comm else 0)
            finish: dict[int, tuple[int, int]] = {}
            if planner.sync:
                for r in range(ranks):
                    comm = plans[r].slices[i].comm
                    if comm:
                        done, last = finish.get(comm.group, (0, 0))
                        finish[comm.group] = (max(done, starts[r] + comm.own), max(last, starts[r]))
            for r in range(ranks):
                comm = plans[r].slices[i].comm
                if comm:
                    done, last = finish.get(comm.group, (starts[r] + comm.own, starts[r]))
                    rows[r].comm_end.append(done)
                    rows[r].comm_last.append(last)
                    cursor[r] = max(ends[r], done) + plans[r].slices[i].free
                else:
                    rows[r].comm_end.append(0)
                    rows[r].comm_last.append(0)
                    cursor[r] = ends[r] + plans[r].slices[i].free
        if planner.sync:
            cursor = [max(cursor)] * ranks
        tail = rng(planner.seed, "tail", step).randint(200, 400) * _US if planner.sync else 250 * _US
        for r in range(ranks):
            rows[r].device_end = cursor[r]
            rows[r].end = cursor[r] + tail
            times[(r, index)] = rows[r]
            clock[r] = rows[r].end
    return times
