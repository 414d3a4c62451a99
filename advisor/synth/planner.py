"""The synthetic run's planner (the model, the link speeds and the faults -> each rank's step plans)
and the cross-rank schedule. Apart from plan.py's step-plan types, which the pipeline builds on: the
planner asks the pipeline for each stage's work and order."""

from __future__ import annotations

import itertools
import random

from .faults import (
    CONTENTION_FACTOR,
    EMA_LAUNCH_US,
    EXPOSED_OVERLAP,
    EXPOSED_TRAFFIC,
    GC_FULL_MS,
    IDLE_FREE_FACTOR,
    LOW_MHZ,
    RETRANSMIT_NS,
    SLOW_LINK_FACTOR,
    SLOW_RANK_FACTOR,
    SMALL_PACKET_LATENCY_US,
    STAGE_IMBALANCE_FACTOR,
    SYNC_BN_WAIT_US,
    Injection,
)
from .model import (
    NOMINAL_MHZ,
    OpTemplate,
    aicpu_ops,
    attention_head_ops,
    build_model,
    ema_ops,
)
from .pipeline import add_pipeline_comm, one_f_one_b, schedule_pipeline, stage_work, step_phases
from .plan import (
    _US,
    BLOCK_DIM_FAULT,
    DISPATCH_COMPILES,
    DYNAMIC_COMPILES,
    HCCL_LATENCY,
    HOST_SYNCS,
    MEMORY_FREES,
    MULTI_PROCESS_LOADER,
    REDUCING,
    STALL_MARGIN,
    UNBOUND_TYPE,
    CommOp,
    DemoPlanner,
    Slice,
    Stall,
    StepPlan,
    StepTimes,
    Topology,
    _kernels,
    _split_at_collectives,
    make_planes,
    transfer_ns,
)
from .spec import SynthSpec, jittered, rng, split_by_weights, split_random


class SynthPlanner:
    """Slices from the model (the rank's pipeline stage): per micro-batch a forward and a backward block
    in the stage's order (pipeline.step_phases; 1F1B in a pipeline), the last backward cut into
    gradient buckets (each with its all-reduce or reduce-scatter), the optimizer; SyncBatchNorm's
    collectives cut the blocks where they are issued."""

    sync = True

    def __init__(self, spec: SynthSpec, injection: Injection) -> None:
        self.spec, self.inj = spec, injection
        self.seed = spec.seed
        faults = injection.faults
        self.topology = Topology(
            spec.ranks, injection.ranks_per_node, spec.tensor_parallel, spec.pipeline_parallel
        )
        self.sync_bn = "schedule.sync_batchnorm" in faults and self.topology.dp > 1
        affinity = "schedule.affinity_api" in faults
        cnn = None
        if spec.workload == "cnn":  # the LLM's stages are built per stage (pipeline.stage_work)
            cnn = build_model(
                spec.layers,
                spec.batch,
                gelu=affinity,
                stock_optimizer=affinity,
                sync_bn=self.topology.dp if self.sync_bn else 0,
                unaligned_head="computation.ai_core_performance" in faults,
            )
        small = "communication.small_packet" in faults
        self.work = [stage_work(spec, s, cnn, small) for s in range(spec.pipeline_parallel)]
        graph, ema = "computation.graph_fusion" in faults, "schedule.fusible_operators" in faults
        self.attention_head = attention_head_ops(spec.batch, spec.layers) if graph else ()
        self.ema = ema_ops(spec.layers) if ema else ()  # one stage, one micro-batch (faults.py)
        self.gbps = {"HCCS": spec.link_gbps, "ROCE": spec.rdma_gbps}
        self.communicates = self.topology.dp > 1

    def plan(self, rank: int, index: int, step: int) -> StepPlan:
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
        if inj.on("computation.graph_fusion", rank, step):
            forward += self.attention_head
        optimizer = list(model.optimizer)
        if inj.on("schedule.fusible_operators", rank, step):
            optimizer += self.ema
        order = one_f_one_b(topo.stage(rank), topo.pp, spec.microbatch_count)
        phases = step_phases(forward, optimizer, work, order, topo.pp > 1)
        if self.sync_bn:  # SyncBatchNorm's collectives cut the phases where they are issued
            phases = [piece for phase in phases for piece in _split_at_collectives(phase)]
        ops = [op for phase in phases for op in phase.ops]
        weights = [sum(k.weight for op in phase.ops for k in op.kernels) for phase in phases]
        # The CNN's budget (per micro-batch) is split evenly over the stages; the LLM's kernel
        # weights are its times.
        budget_us = spec.computing_us * spec.microbatch_count / topo.pp
        total_us = sum(weights) if model.weights_us else budget_us
        computing = split_by_weights(jittered(total_us * _US * factor, spec.jitter, stream), weights)
        free_factor = IDLE_FREE_FACTOR if inj.on("overall.idle", rank, step) else 1.0
        free = split_random(
            jittered(spec.free_us * _US * free_factor, spec.jitter, stream), len(phases), stream
        )
        # HCCL numbers the collectives of a step in the order they are issued (a distributed
        # optimizer's all-gather shares its number with the first bucket's reduce-scatter).
        per_step = sum(1 for phase in phases if phase.issues())
        slices: list[Slice] = []
        first = issued = 0
        for i, phase in enumerate(phases):
            kernels = _kernels(phase.ops, first, computing[i], stream, 0.03)
            first += len(phase.ops)
            op_index = index * per_step + issued
            issued += phase.issues()
            comm = None
            if phase.bucket is not None and self.communicates:
                kind = "reducescatter" if work.sharded else "allreduce"
                comm = self._comm(rank, op_index, step, phase.bucket, computing[i], stream, kind)
            elif phase.collective and self.communicates:
                comm = self._sync_bn_comm(rank, op_index, *phase.collective, stream)
            elif i == 0 and work.sharded and self.communicates:
                comm = self._comm(rank, op_index, step, 0, computing[i], stream, "allgather")
            else:
                for kernel in kernels[1:]:
                    if stream.random() < 0.3:  # launch jitter between kernels of one phase
                        kernel.gap = stream.randint(2 * _US, 12 * _US)
            slices.append(Slice(kernels, comm, free[i]))
        self._kernel_faults(rank, step, slices)
        if self.sync_bn:
            self._sync_bn_waits(rank, step, slices)
        if inj.on("schedule.fusible_operators", rank, step):
            self._ema_launches(rank, step, ops, slices[-1])
        self._stalls(rank, step, slices, stream)
        if topo.pp > 1:
            labels = [phase.label for phase in phases]
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
        op_index: int,
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
        if inj.on("communication.small_packet", rank, step):
            for plane in planes:
                plane.dur += SMALL_PACKET_LATENCY_US * _US
        if bucket == 0 and inj.on("communication.retransmission", rank, step):
            for plane in planes:
                if plane.transport == "RDMA":
                    plane.dur += RETRANSMIT_NS
        # Contention: the buckets reduced while backward kernels run share HBM with them and their
        # SDMA copies slow down; the last bucket is ready only when backward ends and runs alone.
        contended = None
        if kind in REDUCING and inj.on("communication.bandwidth_contention", rank, step):
            contended = bucket < count - 1
            for plane in planes:
                if contended and plane.transport == "SDMA":
                    plane.dur = round(plane.dur / CONTENTION_FACTOR)
        moved = transfer_ns(planes, kind in REDUCING)
        own = 8 * _US + moved + 3 * _US
        ratio = EXPOSED_OVERLAP if inj.on("communication.exposed", rank) else self.spec.overlap_ratio
        overlap = min(round(own * ratio), compute * 9 // 10)
        if contended is not None:  # the whole transfer beside compute, or none of it
            overlap = min(own - 3 * _US, compute * 9 // 10) if contended else 0
        return CommOp(
            op_index, total, own, moved, overlap, planes, self.topology.group_of(rank), kind, contended
        )

    def _sync_bn_comm(self, rank: int, op_index: int, kind: str, size: int, stream: random.Random) -> CommOp:
        """SyncBatchNorm's collective of a few KB, issued once its input is computed (no overlap):
        the all-gather sends this rank's statistics to every peer; latency, not bandwidth, sets
        each transfer's time."""
        planes = make_planes(rank, size, self.topology, self.gbps, stream, {})
        for plane in planes:
            if kind == "allgather":
                plane.size = size
            plane.dur += HCCL_LATENCY
        moved = transfer_ns(planes, kind in REDUCING)
        own = 8 * _US + moved + 3 * _US
        return CommOp(op_index, size, own, moved, 0, planes, self.topology.group_of(rank), kind=kind)

    def _sync_bn_waits(self, rank: int, step: int, slices: list[Slice]) -> None:
        """After each statistics all-gather the counts are masked (count_all[mask] in
        torch.nn.modules._functions.SyncBatchNorm.forward, which says it forces a host sync): the
        device idles until the sync returns and the next launch arrives."""
        stream = rng(self.seed, "sync_bn", rank, step)
        for before, piece in itertools.pairwise(slices):
            if before.comm and before.comm.kind == "allgather" and piece.kernels:
                wait = stream.randint(*SYNC_BN_WAIT_US) * _US
                piece.kernels[0].stalls.append(Stall("mask", wait, [0]))
                piece.kernels[0].gap += wait

    def _ema_launches(self, rank: int, step: int, ops: list[OpTemplate], piece: Slice) -> None:
        """The EMA loop launches one op every few tens of µs from when the optimizer's kernels are
        launched: its first kernels queue behind the optimizer's, then each waits for its launch."""
        stream = rng(self.seed, "ema", rank, step)
        device = host = 0  # since the optimizer slice began
        for kernel in piece.kernels:
            if ops[kernel.op].phase == "ema":
                host += stream.randint(*EMA_LAUNCH_US) * _US
                kernel.gap = max(kernel.gap, host - device)
            device += kernel.gap + kernel.dur

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
            if self.spec.gc_events:
                for _ in range(stream.randint(1, 2)):
                    wanted.append(Stall("gc", 0, [stream.randint(20_000, 45_000) * _US]))
            else:  # one full collection: the case met without GC events
                wanted.append(Stall("gc", 0, [stream.randint(*GC_FULL_MS) * _US * 1000]))
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


def schedule(
    planner: DemoPlanner | SynthPlanner, ranks: int, steps: tuple[int, ...], start_ns: list[int]
) -> dict[tuple[int, int], StepTimes]:
    """Every (rank, step index) placed on the common clock.

    Demo: ranks run independently. Synthetic: all ranks start each step together, each all-reduce
    ends for its whole group when the last member's own transfer is done, and the step ends for all
    ranks when the last one is idle.
    """
    if planner.topology.pp > 1:
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
