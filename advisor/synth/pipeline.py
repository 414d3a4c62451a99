"""Micro-batches and pipeline parallelism: the 1F1B schedule of each stage, its point-to-point
transfers, and the clock of a pipelined step.

A stage holds layers/pp layers (the first also the embedding, the last the head and loss). Each step
runs M micro-batches: at pp 1 as gradient accumulation (forward, backward, repeat), at pp > 1 in
Megatron's 1F1B order (pp - 1 - stage warm-up forwards, then one forward one backward, then the
remaining backwards). The data-parallel gradient all-reduce overlaps the last backward, as with one
micro-batch. Between two blocks a stage sends what the previous block produced (activations forward,
gradients backward) and receives what the next block needs, with torch.distributed send/recv
(`batch_p2p_comm` off, so each is its own hcom_send/hcom_receive op). A send only signals that its
tensor is ready; the receiver pulls the data, so a receive lasts until its peer has sent, plus the
transfer, and the next block waits for it. That wait is the pipeline bubble, which torch_npu's
step_trace_time.csv sums over the `hcom_receive` ops (`Bubble`) and takes off `Stage` and
`Communication(Not Overlapped)` (TraceStepTimeParser).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .faults import SMALL_BUCKET_MB
from .llm import HIDDEN, SEQ, build_llm, parameters
from .model import KernelTemplate, Model, OpTemplate, buckets
from .plan import CommOp, Phase, Plane, Slice, StepPlan, StepTimes, Topology, transfer_ns
from .spec import SynthSpec, rng

if TYPE_CHECKING:  # the planner builds on this module
    from .planner import SynthPlanner

_US = 1000
P2P_OVERHEAD = 6 * _US  # notify handshake around a transfer; a send is only that


@dataclass(frozen=True)
class StageWork:
    """What one pipeline stage computes and all-reduces."""

    model: Model
    bucket_ends: list[int]
    bucket_bytes: int
    activation_bytes: int  # sent to the next stage per micro-batch (and its gradient back)
    sharded: bool = False  # a distributed optimizer: reduce-scattered gradients, all-gathered parameters


def stage_work(spec: SynthSpec, stage: int, cnn: Model | None, small_packet: bool) -> StageWork:
    """The model slice of `stage` and its gradient buckets; `cnn` is the whole CNN as the planner built
    it (None for the LLM, whose stages are built here)."""
    pp = spec.pipeline_parallel
    per_stage = spec.layers // pp
    sharded = spec.workload == "llm"  # Megatron/MindSpeed LLM training's --use-distributed-optimizer
    if sharded:
        first, last = stage == 0, stage == pp - 1
        model = build_llm(per_stage, first, last, spec.ranks // (pp * spec.tensor_parallel))
        gradient_mb = parameters(per_stage, first, last) * 2 / 1e6  # bf16 gradients
        activation = SEQ * HIDDEN * 2
    else:
        assert cnn is not None
        model = cnn_stage(cnn, stage, pp)
        gradient_mb = spec.gradient_mb / pp
        channels, side = _cnn_boundary(spec.layers, stage, pp)
        activation = spec.batch * channels * side * side * 2
    bucket_mb = spec.bucket_mb
    if small_packet:
        bucket_mb = SMALL_BUCKET_MB
        gradient_mb = SMALL_BUCKET_MB * len(model.backward)
    ends = buckets(model, gradient_mb, bucket_mb)
    return StageWork(model, ends, int(gradient_mb * 1e6 / len(ends)), activation, sharded)


def cnn_stage(model: Model, stage: int, stages: int) -> Model:
    """The CNN's layers of `stage` (Model's layout: `layer_ops` forward ops per layer, then the head;
    backward: the head group, then one group per layer from the last)."""
    if stages == 1:
        return model
    k = model.layer_ops
    layers = len(model.backward) - 1
    per = layers // stages
    first, last = stage * per, (stage + 1) * per
    forward = model.forward[first * k : last * k]
    backward = model.backward[1 + layers - last : 1 + layers - first]
    if stage == stages - 1:
        forward += model.forward[layers * k :]
        backward = (model.backward[0], *backward)
    return Model(forward, backward, model.optimizer, model.optimizer_name, k)


def _cnn_boundary(layers: int, stage: int, stages: int) -> tuple[int, int]:
    """Channels and side of the activation leaving `stage` (model._layer_shape's ResNet stages)."""
    layer = (stage + 1) * (layers // stages) - 1
    step = layer * 4 // max(layers, 1)
    return min(512, 64 << step), max(7, 56 >> step)


def one_f_one_b(stage: int, stages: int, microbatches: int) -> list[tuple[str, int]]:
    """Megatron's non-interleaved schedule of one stage: ("F" | "B", micro-batch) in order."""
    warmup = min(stages - stage - 1, microbatches)
    order = [("F", m) for m in range(warmup)]
    for m in range(microbatches - warmup):
        order += [("F", warmup + m), ("B", m)]
    order += [("B", m) for m in range(microbatches - warmup, microbatches)]
    return order


def step_phases(
    forward: list[OpTemplate],
    optimizer: list[OpTemplate],
    work: StageWork,
    order: list[tuple[str, int]],
    pipelined: bool,
) -> list[Phase]:
    """The blocks of one step in order, each with the gradient bucket it all-reduces and the block of
    `order` it begins (its label: the transfers go before it). `forward` is the first micro-batch's
    forward and `optimizer` the optimizer's ops (both may carry extra ops); the last backward is cut
    into buckets; a pipeline then computes the gradient norm (its all-reduce spans the stages); the
    optimizer closes the step."""
    model = work.model
    last = order[-1]
    phases: list[Phase] = []
    for kind, m in order:
        if kind == "F":
            phases.append(Phase(forward if m == 0 else list(model.forward), label=(kind, m)))
        elif (kind, m) == last:
            start = 0
            for bucket, end in enumerate(work.bucket_ends):
                ops = [op for group in model.backward[start : end + 1] for op in group]
                phases.append(Phase(ops, bucket, label=(kind, m) if bucket == 0 else None))
                start = end + 1
        else:
            phases.append(Phase([op for group in model.backward for op in group], label=(kind, m)))
    # The first block after the micro-batches: its transfers send the last backward's gradient.
    if pipelined:
        phases.append(Phase([_grad_norm(model)], label=("end", 0)))
    phases.append(Phase(optimizer, label=None if pipelined else ("end", 0)))
    return phases


def _grad_norm(model: Model) -> OpTemplate:
    """Megatron's clip_grad_norm: one read of the gradients (a quarter of the optimizer's first pass,
    which reads and writes fp32), then an all-reduce of the norm over the model-parallel group."""
    first = model.optimizer[0].kernels[0]
    kernel = KernelTemplate(
        "ForeachNorm", "AI_VECTOR_CORE", first.weight / 4, first.inputs, first.in_dtypes,
        "1", "FLOAT", "vec", "aclnnForeachNorm",
    )  # fmt: skip
    return OpTemplate(
        "aten::_foreach_norm", None, "optimizer", (kernel,), model.optimizer[0].stack, first.inputs
    )


def add_pipeline_comm(
    slices: list[Slice],
    labels: list[tuple[str, int] | None],
    topo: Topology,
    rank: int,
    index: int,
    work: StageWork,
    gbps: dict[str, float],
    seed: int,
) -> None:
    """Each block's transfers (Slice.p2p, run before it: the previous micro-batch block's output goes
    out, this block's input comes in), and the gradient norm's all-reduce over the pipeline."""
    stage, stages = topo.stage(rank), topo.pp
    group = topo.pipeline_group(rank)
    members = topo.members(group)
    stream = rng(seed, "p2p", rank, index)
    count = 0
    previous: tuple[str, int] | None = None
    for piece, label in zip(slices, labels, strict=True):
        if label is None:
            continue
        ops: list[CommOp] = []
        if previous is not None:
            peer = stage + 1 if previous[0] == "F" else stage - 1
            if 0 <= peer < stages:
                ops.append(_p2p("send", members[peer], rank, topo, work, gbps, stream, group))
        if label[0] != "end":
            peer = stage - 1 if label[0] == "F" else stage + 1
            if 0 <= peer < stages:
                ops.append(_p2p("receive", members[peer], rank, topo, work, gbps, stream, group))
        for op in ops:  # HCCL numbers a communicator's ops; send and receive count apart here
            op.index = index * 4 * len(slices) + count
            count += 1
        piece.p2p = ops
        previous = label
    peers = [q for q in members if q != rank]
    planes = [_plane(q, rank, topo, _NORM_BYTES, gbps, stream) for q in peers]
    moved = transfer_ns(planes)
    slices[-2].comm = CommOp(index, _NORM_BYTES, 8 * _US + moved + 3 * _US, moved, 0, planes, group)


_NORM_BYTES = 512  # one fp32 norm, sent as HCCL's smallest aligned chunk


def _plane(
    peer: int, rank: int, topo: Topology, size: int, gbps: dict[str, float], stream: random.Random
) -> Plane:
    link = "HCCS" if topo.node(peer) == topo.node(rank) else "ROCE"
    dur = max(1, round(size / (gbps[link] * (1 + 0.004 * stream.uniform(-1, 1)))))
    return Plane(peer, "RDMA" if link == "ROCE" else "SDMA", link, size, dur)


def _p2p(
    kind: str,
    peer: int,
    rank: int,
    topo: Topology,
    work: StageWork,
    gbps: dict[str, float],
    stream: random.Random,
    group: int,
) -> CommOp:
    plane = _plane(peer, rank, topo, work.activation_bytes, gbps, stream)
    if kind == "send":
        return CommOp(0, plane.size, P2P_OVERHEAD, 0, 0, [plane], group, kind)
    return CommOp(0, plane.size, plane.dur + P2P_OVERHEAD, plane.dur, 0, [plane], group, kind)


def schedule_pipeline(
    planner: SynthPlanner, ranks: int, steps: tuple[int, ...], start_ns: list[int]
) -> dict[tuple[int, int], StepTimes]:
    """Every (rank, step index) of a pipelined run on the common clock: all ranks start a step
    together; a block starts when the stage's previous work and its transfers are done; a receive
    ends a transfer after its peer's send; an all-reduce ends for its group when the last member's
    own transfer is done; the step ends for all when the last rank is idle."""
    times: dict[tuple[int, int], StepTimes] = {}
    clock = max(start_ns)
    for index, step in enumerate(steps):
        plans = [planner.plan(rank, index, step) for rank in range(ranks)]
        rows = [StepTimes(clock, 0, 0, [], [], [], []) for _ in range(ranks)]
        cursor = [clock + plan.preparing for plan in plans]
        at = [0] * ranks  # next slice of each rank
        sent: dict[tuple[int, int], list[int]] = {}  # (sender, receiver) -> send ends not yet received
        members = collectives(plans)
        pending = set(range(ranks))
        while pending:
            before = _progress(rows, at)
            for r in sorted(pending):
                i = at[r]
                if i == len(plans[r].slices):
                    pending.discard(r)
                    continue
                if len(rows[r].blocks) == i:  # its transfers first, then the block starts
                    if not _transfers(plans[r].slices[i], rows[r], cursor, sent, r):
                        continue
                    rows[r].blocks.append(cursor[r])
                _block(plans, rows, cursor, at, r, members)
            if pending and _progress(rows, at) == before:
                raise RuntimeError("pipeline schedule deadlocked")
        end = max(cursor)
        tail = rng(planner.seed, "tail", step).randint(200, 400) * _US
        for r in range(ranks):
            rows[r].device_end = end
            rows[r].end = end + tail
            times[(r, index)] = rows[r]
        clock = end + tail
    return times


def _progress(rows: list[StepTimes], at: list[int]) -> int:
    return sum(at) + sum(len(r.blocks) + sum(len(spans) for spans in r.p2p) for r in rows)


def _transfers(
    piece: Slice, row: StepTimes, cursor: list[int], sent: dict[tuple[int, int], list[int]], r: int
) -> bool:
    """Rank r's transfers before its current block, as far as its peers have sent; True when all are
    done (the cursor then at the block's start)."""
    if len(row.p2p) == len(row.blocks):
        row.p2p.append([])
    done = row.p2p[-1]
    while len(done) < len(piece.p2p):
        op = piece.p2p[len(done)]
        peer, start = op.planes[0].peer, cursor[r]
        if op.kind == "send":
            sent.setdefault((r, peer), []).append(start + op.own)
            done.append((start, start + op.own, start))
        else:  # tensors between two ranks arrive in the order they were sent
            ready = sent.get((peer, r))
            if not ready:
                return False
            began = max(start, ready.pop(0))
            done.append((start, began + op.own, began))
        cursor[r] = done[-1][1]
    return True


def collectives(plans: list[StepPlan]) -> dict[tuple[int, int], list[tuple[int, int]]]:
    """(rank, slice) of each collective -> (rank, slice) of every op of that collective: the n-th op
    of a group and kind on each member (stages cut their steps into different slices)."""
    ops: dict[tuple[int, str, int], list[tuple[int, int]]] = {}
    for r, plan in enumerate(plans):
        seen: dict[tuple[int, str], int] = {}
        for i, piece in enumerate(plan.slices):
            if piece.comm is not None:
                key = (piece.comm.group, piece.comm.kind)
                ops.setdefault((*key, seen.get(key, 0)), []).append((r, i))
                seen[key] = seen.get(key, 0) + 1
    return {member: members for members in ops.values() for member in members}


def _block(
    plans: list[StepPlan],
    rows: list[StepTimes],
    cursor: list[int],
    at: list[int],
    r: int,
    members: dict[tuple[int, int], list[tuple[int, int]]],
) -> None:
    """Rank r's current block and its collective, once every member of the group has started its own."""
    i = at[r]
    piece = plans[r].slices[i]
    block_end = rows[r].blocks[i] + piece.block()
    finish = last = 0
    if piece.comm is not None:
        group = members[(r, i)]
        if any(len(rows[q].blocks) <= j for q, j in group):
            return
        starts = [
            rows[q].blocks[j] + plans[q].slices[j].block() - plans[q].slices[j].comm.overlap for q, j in group
        ]
        finish = max(t + plans[q].slices[j].comm.own for (q, j), t in zip(group, starts, strict=True))
        last = max(starts)
    rows[r].comm_end.append(finish)
    rows[r].comm_last.append(last)
    cursor[r] = max(block_end, finish) + piece.free
    at[r] += 1
