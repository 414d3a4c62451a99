"""A made-up report with a finding in every dimension: for renderer tests, the benchmark and browser tests.

It never reads profiling data: the numbers are plausible, not measured. `sample_report(ranks=64)` has the
size of a large cluster report (a per-link table of every rank pair, per-rank tables, long kernel lists).
"""

from __future__ import annotations

import math
import random
from datetime import datetime

from ..model import DeviceCount
from .model import Evidence, Finding, InputInfo, NotEvaluated, Report

SAMPLE_STEPS = (12, 13, 14)
SLOW_RANK = 5  # the rank made slow in computing
SLOW_LINK = (1, 0)  # the (src, dst) link made slow


def _per_rank(ranks: int, steps: tuple[int, ...], rng: random.Random) -> list[dict[str, float | int]]:
    rows = []
    for rank in range(ranks):
        for step in steps:
            computing = 60_000.0 * (1.25 if rank == SLOW_RANK % ranks else 1.0) * rng.uniform(0.98, 1.02)
            communication = 8_000.0 * rng.uniform(0.9, 1.1)
            free = 3_000.0 * rng.uniform(0.8, 1.2)
            rows.append(
                {
                    "rank": rank,
                    "step": step,
                    "step_us": round(computing + communication + free, 3),
                    "computing_us": round(computing, 3),
                    "communication_not_overlapped_us": round(communication, 3),
                    "free_us": round(free, 3),
                }
            )
    return rows


def _per_rank_table(ranks: int, gain: float, title: str) -> Evidence:
    return Evidence(
        "Per rank",
        ["rank", "findings", "priority", "estimated_gain_us", "title"],
        [[r, 1, "medium", round(gain * (1 + 0.01 * r), 3), title] for r in range(ranks)],
    )


def _links(ranks: int, rng: random.Random) -> Evidence:
    rows = []
    for src in range(ranks):
        for dst in range(ranks):
            if src == dst:
                continue
            transport = "HCCS" if src // 8 == dst // 8 else "RDMA"
            nominal = 18.0 if transport == "HCCS" else 12.0
            bandwidth = nominal * rng.uniform(0.95, 1.05) * (0.3 if (src, dst) == SLOW_LINK else 1.0)
            size = 32 * 2**20
            transit = size / (bandwidth * 1e3)
            rows.append(
                [
                    transport,
                    src,
                    dst,
                    "dp",
                    src % 8,
                    dst % 8,
                    size,
                    round(transit, 3),
                    round(bandwidth, 3),
                    nominal,
                    round(bandwidth / nominal, 4),
                    0.0,
                    0.0,
                    (src, dst) == SLOW_LINK,
                ]
            )
    rows.sort(key=lambda row: (not row[-1], row[0], row[10]))
    columns = ["transport", "src", "dst", "group", "src_local", "dst_local", "size_bytes", "transit_us",
               "bandwidth_gbps", "peer_median_gbps", "ratio", "robust_z", "lost_us", "slow"]  # fmt: skip
    return Evidence("Links", columns, rows)


def _kernels(n: int, rng: random.Random) -> Evidence:
    rows = []
    for i in range(n):
        base = rng.uniform(5, 2_000)
        shapes = f'"{i % 7 + 1},4096;4096,1024"'
        ratio = math.nan if i == 3 else 1.3
        timings = [round(base * 1.3, 3), round(base, 3), round(base * 0.3, 3)]
        rows.append([f"aclnnKernel_{i}", "MatMulV2" if i % 3 else "Add", shapes, 2, *timings, ratio])
    return Evidence(
        "Kernels: target vs baseline",
        ["name", "op_type", "input_shapes", "calls_per_step", "target_us", "baseline_us", "diff_us", "ratio"],
        rows,
    )


def sample_report(
    ranks: int = 4, *, language: str = "en", seed: int = 0, kernel_rows: int = 400, evil: str = ""
) -> Report:
    """A report with findings of every dimension (overall, cluster, comparison and the five others).

    `evil` is appended to every profile-derived string, to test escaping.
    """
    rng = random.Random(seed)
    steps = SAMPLE_STEPS
    per_rank = _per_rank(ranks, steps, rng)
    all_ranks = list(range(ranks))
    x = evil

    mean_step = sum(float(r["step_us"]) for r in per_rank) / len(per_rank)

    def finding(check: str, dimension: str, priority: str, gain: float | None, title: str, **kw) -> Finding:
        # Priorities follow the rule of docs/design.md "Priority" for these gains and bases.
        share = round(gain / mean_step, 4) if gain is not None else None
        basis = kw.pop("basis", "measured") if gain is not None else None
        return Finding(check=check, dimension=dimension, priority=priority, title=title + x,
                       estimated_gain_us=gain, share_of_step=share, gain_basis=basis, **kw)  # fmt: skip

    findings = [
        finding(
            "overall.summary",
            "overall",
            "low",
            None,
            "Step time is dominated by computing",
            description="Computing is 84 % of the step on every rank.\nCommunication not overlapped: 11 %.",
            suggestions=["Look at the computation findings first."],
            evidence=[
                Evidence(
                    "Step time breakdown",
                    ["rank", "step", "step_us", "computing_us", "communication_not_overlapped_us", "free_us"],
                    [
                        [
                            r["rank"],
                            r["step"],
                            r["step_us"],
                            r["computing_us"],
                            r["communication_not_overlapped_us"],
                            r["free_us"],
                        ]
                        for r in per_rank
                    ],
                )
            ],
        ),
        finding(
            "overall.idle",
            "overall",
            "low",
            900.0,
            "The device is idle 4 % of the step",
            description="Free time per step is 3.0 ms on average.",
            suggestions=["Enable the two-stage task queue: export TASK_QUEUE_ENABLE=2 before launching."],
            ranks=all_ranks,
        ),
        finding(
            "cluster.slow_rank",
            "cluster",
            "high",
            15_000.0,
            f"Rank {SLOW_RANK % ranks} is slow in computing",
            description=f"Rank {SLOW_RANK % ranks} computes 25 % longer than the median rank.",
            suggestions=["Compare its kernels with a normal rank's: performance-advisor analyze --compare."],
            ranks=[SLOW_RANK % ranks],
            evidence=[
                Evidence(
                    "Busy time per rank and step",
                    ["step", "rank", "computing_us", "excess_us"],
                    [
                        [r["step"], r["rank"], r["computing_us"], r["computing_us"] - 60_000.0]
                        for r in per_rank
                    ],
                )
            ],
        ),
        finding(
            "cluster.slow_link",
            "cluster",
            "medium",
            2_500.0,
            "Link 1 → 0 is 70 % slower than its peers",
            description="HCCS bandwidth of link 1 → 0 is 5.4 GB/s; the median link reaches 18 GB/s.",
            suggestions=["Check the link: hccn_tool -i 1 -link -g and the HCCS error counters."],
            ranks=list(SLOW_LINK),
            evidence=[_links(ranks, rng)],
        ),
        finding(
            "comparison.kernel",
            "comparison",
            "medium",
            3_000.0,
            "Kernels are 30 % slower than the baseline",
            description="The target spends 3.0 ms more per step in 120 kernels.",
            counted_in=["cluster.slow_rank"],
            suggestions=["Check the input shapes of the slower kernels."],
            ranks=[0],
            evidence=[_kernels(kernel_rows, rng)],
        ),
        finding(
            "computation.aicpu",
            "computation",
            "high",
            8_000.0,
            f"AI CPU operators take 8 ms per step{x}",
            description=f"12 operators ran on the AI CPU{x}, e.g. IndexPut with int64 inputs.",
            suggestions=[
                "Cast the indices to int32: `index.to(torch.int32)` before `tensor.index_put_`.",
                "Find the callers: torch_npu.profiler.profile(with_stack=True).",
            ],
            ranks=all_ranks,
            step=steps[0],
            evidence=[
                Evidence(
                    "AI CPU operators",
                    ["op_name", "op_type", "count", "total_us", "note"],
                    [[f"IndexPut_{i}{x}", "IndexPut", 3, 100.0 + i, None] for i in range(12)],
                )
            ],
        ),
        finding(
            "computation.dynamic_shape",
            "computation",
            "medium",
            4_000.0,
            "Operators are compiled every step",
            description="Dynamic shapes trigger online compilation.",
            basis="upper_bound",
            suggestions=["Run operators as binaries: torch_npu.npu.set_compile_mode(jit_compile=False)."],
            ranks=all_ranks,
        ),
        finding(
            "communication.small_packet",
            "communication",
            "low",
            600.0,
            "Many small all-reduces",
            description="40 % of all-reduces move less than 16 MB.",
            basis="upper_bound",
            suggestions=["Use larger buckets: DistributedDataParallel(model, bucket_cap_mb=100)."],
            ranks=all_ranks,
            evidence=[_per_rank_table(ranks, 600.0, "Many small all-reduces")],
        ),
        finding(
            "communication.exposed",
            "communication",
            "medium",
            3_000.0,
            "Communication is not overlapped",
            description="3 ms of communication per step is not hidden under computing.",
            suggestions=["Overlap gradient reduction: --overlap-grad-reduce (Megatron)."],
            ranks=all_ranks,
            evidence=[_per_rank_table(ranks, 3_000.0, "Communication is not overlapped")],
        ),
        finding(
            "schedule.gc",
            "schedule",
            "medium",
            2_500.0,
            "Python garbage collection pauses the host",
            description="GC ran 3 times per step for 2 ms in total.",
            suggestions=[
                "Call gc.freeze() once after the model, optimizer and data loader are built.",
                "Or take control: gc.disable() at start and gc.collect() every N steps.",
            ],
            ranks=all_ranks,
        ),
        finding(
            "schedule.synchronize_stream",
            "schedule",
            "low",
            None,
            "Stream synchronisation in the loop",
            description="torch.npu.synchronize() is called 4 times per step.",
            suggestions=["Remove torch.npu.synchronize() from the training loop."],
            ranks=[0],
        ),
        finding(
            "memory.operators",
            "memory",
            "low",
            400.0,
            "Memory is freed and allocated every step",
            description="empty_cache() returns 2 GB to the device every step.",
            suggestions=["Remove torch.npu.empty_cache() from the loop."],
            ranks=all_ranks,
        ),
        finding(
            "dataloader.slow",
            "dataloader",
            "high",
            10_000.0,
            "The data loader is slow",
            description="Each step waits 10 ms for its batch.",
            suggestions=[
                "Load batches in workers: DataLoader(dataset, num_workers=8, persistent_workers=True)."
            ],
            ranks=all_ranks,
        ),
    ]
    return Report(
        input=InputInfo(
            f"/data/sample_cluster{x}",
            "/data/baseline",
            "ascend_pt",
            "text",
            all_ranks,
            list(steps),
            "8.0.RC1",
            "2.1.0",
            format="ascend_text",
            device="npu",
            devices=[DeviceCount("npu", "Ascend910B", len(all_ranks))],
            versions={"cann": "8.0.RC1", "torch_npu": "2.1.0"},
        ),
        tool_version="sample",
        summary={"per_rank": per_rank},
        findings=findings,
        not_evaluated=[
            NotEvaluated("computation.graph_fusion", f"needs a GE graph dump (ge_proto_*_Build.txt){x}"),
            NotEvaluated("computation.pp_stage_imbalance", "no pipeline-parallel stages recorded"),
        ],
        timings_s={"load": 1.5, "checks": 2.25, "render": 0.0},
        generated=datetime(2025, 1, 2, 3, 4, 5).astimezone(),
        language=language,
        warnings=[f"rank folder skipped{x}"] if x else [],
        dimensions=("computation", "communication", "schedule", "memory", "dataloader"),
        checked_dimensions=(
            "overall",
            "cluster",
            "comparison",
            "computation",
            "communication",
            "schedule",
            "memory",
            "dataloader",
        ),
    )
