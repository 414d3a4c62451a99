"""Which problems to build in (check ids of docs/architecture.md §3.3), on which ranks and steps.

Each fault is chosen so that it clearly crosses the threshold of its check (reference-advisor.md §2,
Appendix A) while the clean defaults stay clearly under every threshold. The numbers each check
should find are measured from what was actually written (ground_truth.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .spec import SynthSpec

FAULTS: dict[str, str] = {
    "cluster.slow_rank": "one rank computes 35 % longer; the others wait for it in every all-reduce",
    "cluster.slow_link": "one HCCS link (src -> dst) runs at a quarter of its bandwidth",
    "communication.exposed": "4x the gradient traffic and almost no overlap with backward compute",
    "communication.small_packet": "gradients all-reduced in 2 MB buckets",
    "communication.retransmission": "one all-reduce spends 4.5 s in RDMA retransmission (ranks on 2 nodes)",
    "communication.byte_alignment": "all-reduce transfer sizes not multiples of 512 bytes",
    "schedule.gc": "Python GC pauses of 20-45 ms while the device starves",
    "schedule.synchronize_stream": "every kernel launch followed by aclrtSynchronizeStream",
    "schedule.host_sync": "aten::item calls that synchronize the stream and leave the device idle",
    "schedule.operator_dispatch": "24 aclopCompileAndExecute online compilations per step",
    "schedule.affinity_api": "aten::gelu activations and the stock AdamW optimizer",
    "dataloader.slow": "a single-process DataLoader taking 25-45 ms per step",
    "memory.operators": "bursts of aclrtFree / aclMallocMemInner (empty_cache) with HBM nearly full",
    "computation.aicpu": "NonZero, IndexPutV2 and a DOUBLE Cast running on AI_CPU",
    "computation.ai_core_frequency": "AI Core frequency throttled to 1100 MHz (nominal 1800) in later steps",
    "computation.dynamic_shape": "every operator dynamic (OP State) and recompiled",
    "computation.block_dim": "block dims that are not multiples of the core counts",
    "computation.operator_bound": "Conv2D kernels bound by no unit (every PMU ratio <= 0.6)",
    "environment.variables": "log level 1, ASCEND_LAUNCH_BLOCKING=1, HCCL_ALGO set, caches off",
    "overall.idle": "the device idle about a third of every step",
    "communication.bandwidth_contention": "all-reduce copies at 45 % of link speed beside backward kernels",
    "computation.ai_core_performance": "MTE2-bound head MatMuls on a 1000 x fp16 axis (not 256 B aligned)",
    "computation.graph_fusion": "a GE graph dump with unfused BatchMatMul-Mul-Softmax-BatchMatMul attention",
    "schedule.sync_batchnorm": "SyncBatchNorm in every layer: an all-gather and a host sync per layer",
    "schedule.fusible_operators": "a per-tensor EMA update after the optimizer: tiny kernels paced by launch",
    "computation.pp_stage_imbalance": "the first pipeline stage computes 1.5x the others (needs pp >= 2)",
}
# Faults that need communication (a second rank) and, for retransmission, a second node.
_NEEDS_RANKS = {f for f in FAULTS if f.startswith(("cluster.", "communication."))} | {
    "schedule.sync_batchnorm"
}
# Faults built into the CNN's layers or head: the LLM workload has neither (ValueError).
_CNN_ONLY = {
    "computation.ai_core_performance": "the unaligned MatMuls are the CNN's 1000-class head",
    "computation.graph_fusion": "the compiled attention head pools the CNN's last feature map",
    "schedule.sync_batchnorm": "SyncBatchNorm replaces the CNN's BatchNorm (the LLM normalises with RMSNorm)",
    "schedule.fusible_operators": "the EMA updates the CNN's parameters tensor by tensor",
}
# Faults on the data-parallel collectives: they need a data-parallel group of 2 ranks or more.
_NEEDS_DP = {"communication.bandwidth_contention", "schedule.sync_batchnorm"}
# The contended gradient buckets and the EMA come once per optimizer step: with more micro-batches
# (or, for the EMA, a pipeline's stage holding part of the model) their cost falls under 1 % of the
# step, below what their checks flag.
MAX_CONTENTION_MICROBATCHES = 4  # the CNN's; the LLM's gradients are large enough for any count
# Faults in the CNN's head: with pipeline parallelism, on the last stage's ranks only.
_LAST_STAGE = {"computation.ai_core_performance", "computation.graph_fusion"}
# Hardware faults hit one rank unless --inject-ranks says otherwise; software ones hit every rank.
_ONE_RANK = {
    "cluster.slow_rank": -1,
    "cluster.slow_link": -1,
    "computation.ai_core_frequency": 0,
    "communication.retransmission": 0,
}

SLOW_RANK_FACTOR = 1.35
STAGE_IMBALANCE_FACTOR = 1.5
SLOW_LINK_FACTOR = 0.25
LOW_MHZ = 1100
RETRANSMIT_NS = 4_500_000_000
EXPOSED_TRAFFIC = 4.0
EXPOSED_OVERLAP = 0.05
SMALL_BUCKET_MB = 2.0
# Per transfer of a small bucket: the fixed cost of each step of the collective's algorithm (HCCL
# handshakes), which a 2 MB transfer cannot amortise as a 32 MB one does.
SMALL_PACKET_LATENCY_US = 40
IDLE_FREE_FACTOR = 25.0
HBM_CAPACITY_MB = 65_536.0
CLEAN_ENV = {
    "ASCEND_GLOBAL_LOG_LEVEL": "3",
    "HCCL_RDMA_TC": "",
    "HCCL_RDMA_SL": "",
    "ACLNN_CACHE_LIMIT": "100000",
    "HOST_CACHE_CAPACITY": "20",
    "ASCEND_ENHANCE_ENABLE": "1",
    "PYTORCH_NPU_ALLOC_CONF": "expandable_segments:True",
    "ASCEND_LAUNCH_BLOCKING": "0",
}
CONTENTION_FACTOR = 0.45  # link speed left to a transfer that shares HBM with compute kernels
UNALIGNED_SLOWDOWN = 4.0  # MTE2-bound MatMul (mac ratio 0.2) against the mac-bound one (0.82)
SYNC_BN_WAIT_US = (150, 350)  # device idle while the host waits for the statistics and relaunches
EMA_LAUNCH_US = (28, 45)  # host time per eager launch of the EMA loop (tens of µs, like the corpus)
GC_FULL_MS = (150, 400)  # full (generation 2) collections: what users without GC events meet

# Checks a fault legitimately triggers besides its own: what it physically causes, not what the
# checks happen to say. Written per injected fault into ground_truth.json.
COLLATERAL: dict[str, tuple[str, ...]] = {
    # The others wait for the slow rank inside every all-reduce: exposed communication there. The
    # slowest rank compared with the fastest shows where it loses: its kernels, and its host waiting
    # longer in syncs on its slower device.
    "cluster.slow_rank": ("communication.exposed", "comparison.kernel", "comparison.api"),
    # Every all-reduce of the group lasts as long as its slowest link: exposed on all members.
    "cluster.slow_link": ("communication.exposed",),
    "communication.exposed": (),
    "communication.small_packet": (),
    # The 4.5 s op is exposed on every rank, and the retransmitting RDMA link is slow in that step.
    "communication.retransmission": ("communication.exposed", "cluster.slow_link"),
    "communication.byte_alignment": (),
    # A pause starves the device (idle) and delays that rank's next all-reduce: the others wait.
    "schedule.gc": ("overall.idle", "cluster.slow_rank", "communication.exposed"),
    # A wait after every launch leaves the device idle between kernels.
    "schedule.synchronize_stream": ("overall.idle",),
    "schedule.host_sync": ("overall.idle",),  # the device drains while the host waits
    "schedule.operator_dispatch": ("overall.idle",),  # the device idles while the host compiles
    "schedule.affinity_api": (),
    "dataloader.slow": (),  # the wait is Preparing, before the first kernel: not Free time
    "memory.operators": ("overall.idle",),  # free/malloc bursts stall the host: the device idles
    "computation.aicpu": (),
    # The throttled rank computes slower in its later steps; the others wait for it, and the
    # slowest-against-fastest comparison shows its slower kernels (and longer host waits).
    "computation.ai_core_frequency": (
        "cluster.slow_rank",
        "communication.exposed",
        "comparison.kernel",
        "comparison.api",
    ),
    # Every new shape is compiled online: compile calls, and the device idles meanwhile.
    "computation.dynamic_shape": ("schedule.operator_dispatch", "overall.idle"),
    "computation.block_dim": (),
    "computation.operator_bound": (),
    "environment.variables": (),  # only the variables are written, not their effect
    "overall.idle": (),
    "communication.bandwidth_contention": (),
    "computation.ai_core_performance": (),
    "computation.graph_fusion": (),
    # Per-layer all-gathers of (2C + 1) floats: many latency-bound small packets whose sizes are
    # not 512-byte multiples, and the boolean mask over the counts syncs the host each layer.
    "schedule.sync_batchnorm": (
        "communication.small_packet",
        "communication.byte_alignment",
        "schedule.host_sync",
    ),
    # Launch gaps between the tiny kernels are device idle time, and decay * ema + (1 - decay) * value
    # is the mul-mul-add sequence the affinity rules map to a fused API.
    "schedule.fusible_operators": ("overall.idle", "schedule.affinity_api"),
    # The other stages wait for the slow one: in their receives (the bubble) and in the gradient
    # norm's all-reduce over the stages, which is exposed communication.
    "computation.pp_stage_imbalance": ("communication.exposed",),
}

BAD_ENV = {
    "ASCEND_GLOBAL_LOG_LEVEL": "1",
    "ACLNN_CACHE_LIMIT": "",
    "HOST_CACHE_CAPACITY": "0",
    "PYTORCH_NPU_ALLOC_CONF": "",
    "ASCEND_LAUNCH_BLOCKING": "1",
    "HCCL_ALGO": "level0:NA;level1:ring",
}


def parse_faults(
    names: str | tuple[str, ...] | list[str], catalogue: Mapping[str, object] = FAULTS
) -> tuple[str, ...]:
    """Check ids of `catalogue` (the Ascend faults, or KINETO_FAULTS) from 'gc,aicpu' or full ids;
    ValueError naming the unknown ones."""
    items = names.split(",") if isinstance(names, str) else list(names)
    out: list[str] = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        matches = [f for f in catalogue if f == item or f.split(".", 1)[1] == item]
        if len(matches) != 1:
            raise ValueError(f"unknown fault {item!r}; choose from {', '.join(sorted(catalogue))}")
        if matches[0] not in out:
            out.append(matches[0])
    return tuple(out)


@dataclass(frozen=True)
class Fault:
    check: str
    ranks: tuple[int, ...]
    steps: tuple[int, ...]


def check_fault_choices(spec: SynthSpec) -> None:
    """ValueError when `spec` asks for a fault it cannot have, as far as the spec alone tells
    (`validate.check_faults` also asks the workload)."""
    for check in spec.inject:
        if check not in FAULTS:
            raise ValueError(f"unknown fault {check!r}")
        if check in _NEEDS_RANKS and spec.ranks < 2:
            raise ValueError(f"{check} needs at least 2 ranks")
        if check in _NEEDS_DP and spec.ranks // (spec.tensor_parallel * spec.pipeline_parallel) < 2:
            raise ValueError(f"{check} needs a data-parallel group of at least 2 ranks")
        if check in _CNN_ONLY and spec.workload != "cnn":
            raise ValueError(f"{check} needs workload 'cnn': {_CNN_ONLY[check]}")
        if check == "schedule.fusible_operators" and spec.microbatch_count * spec.pipeline_parallel > 1:
            raise ValueError(f"{check} needs one micro-batch per step and pipeline_parallel 1")
        if check == "computation.pp_stage_imbalance" and spec.pipeline_parallel < 2:
            raise ValueError(f"{check} needs pipeline_parallel >= 2")


class Injection:
    """The resolved faults of one run: `on(check, rank, step)` is what the generator asks."""

    def __init__(self, spec: SynthSpec, steps: tuple[int, ...]) -> None:
        self.faults: dict[str, Fault] = {}
        for check in spec.inject:
            if spec.inject_ranks is not None:
                ranks = tuple(sorted(set(spec.inject_ranks)))
            elif check in _ONE_RANK:
                ranks = (_ONE_RANK[check] % spec.ranks,)
            elif check == "computation.pp_stage_imbalance":  # every rank of the first stage
                ranks = tuple(range(spec.ranks // spec.pipeline_parallel))
            elif check in _LAST_STAGE:  # Megatron order: the last stage's ranks come last
                ranks = tuple(range(spec.ranks - spec.ranks // spec.pipeline_parallel, spec.ranks))
            else:
                ranks = tuple(range(spec.ranks))
            self.faults[check] = Fault(check, ranks, _fault_steps(check, steps))
        self.ranks_per_node = spec.ranks_per_node
        if "communication.retransmission" in self.faults and spec.ranks_per_node >= spec.ranks:
            self.ranks_per_node = (spec.ranks + 1) // 2  # RDMA needs a second node
        slow = self.faults.get("cluster.slow_link")
        # The slow link leaves the first injected rank towards its next peer on the same node.
        self.slow_link = (
            (slow.ranks[0], _next_peer(slow.ranks[0], spec.ranks, self.ranks_per_node)) if slow else None
        )

    def on(self, check: str, rank: int, step: int | None = None) -> bool:
        fault = self.faults.get(check)
        return fault is not None and rank in fault.ranks and (step is None or step in fault.steps)

    def env(self) -> dict[str, str]:
        env = dict(CLEAN_ENV)
        if "environment.variables" in self.faults:
            env.update(BAD_ENV)
        return env


def _fault_steps(check: str, steps: tuple[int, ...]) -> tuple[int, ...]:
    if check == "schedule.gc":
        return steps[::2]
    if check == "computation.ai_core_frequency":
        return steps[len(steps) // 2 :]
    if check == "communication.retransmission":
        return (steps[len(steps) // 2],)
    return steps


def _next_peer(rank: int, ranks: int, per_node: int) -> int:
    node = rank // per_node
    members = [r for r in range(node * per_node, min(ranks, (node + 1) * per_node)) if r != rank]
    return members[0] if members else (rank + 1) % ranks
