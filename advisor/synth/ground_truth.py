"""ground_truth.json: what was built in and the key numbers a check should find, measured from the
rendered files (not from the plan), the checks each fault legitimately triggers besides its own
(`collateral`, faults.COLLATERAL), plus `incidental`: problems the faults cause on the side (a GC
pause on one rank makes the others wait, which a slow-rank check rightly sees).
"""

from __future__ import annotations

import statistics
from dataclasses import asdict
from typing import Any

from .faults import BAD_ENV, COLLATERAL, HBM_CAPACITY_MB, LOW_MHZ, STAGE_IMBALANCE_FACTOR, Injection
from .graph_dump import DUMP_NAME
from .model import AI_CORE_NUM, AIV_NUM, NOMINAL_MHZ
from .plan import BLOCK_DIM_FAULT, UNBOUND_TYPE
from .planner import SynthPlanner
from .pmu import RANGES
from .render import CONTENTION_MIN_BYTES, RankResult
from .spec import SynthSpec

SLOW_RANK_GAP = 0.05


def _us(ns: float) -> float:
    return round(ns / 1000, 3)


def _sum(results: list[RankResult], key: str) -> float:
    return sum(r.renderer.tally[key] for r in results)


def _max(results: list[RankResult], key: str) -> float:
    return max((r.renderer.tally[key] for r in results), default=0.0)


def slow_rank_gaps(results: list[RankResult]) -> dict[str, float]:
    """The reference's slow-rank measure: per component, (max - min) over all (step, rank) / mean step."""
    rows = [row for r in results for row in r.trace_rows.values()]
    mean = statistics.fmean(row["step"] for row in rows)
    gaps = {}
    for name, key in (("computing", "computing"), ("communication", "not_overlapped"), ("free", "free")):
        values = [row[key] for row in rows]
        gaps[name] = round((max(values) - min(values)) / mean, 4) if mean else 0.0
    return gaps


def _mean_by_rank(results: list[RankResult], key: str, share: bool = False) -> dict[str, float]:
    out = {}
    for r in results:
        rows = list(r.trace_rows.values())
        value = statistics.fmean(row[key] / row["step"] if share else row[key] for row in rows)
        out[str(r.rank)] = round(value, 4) if share else _us(value)
    return out


def _expected(
    check: str, hit: list[RankResult], everyone: list[RankResult], inj: Injection, spec: SynthSpec
) -> dict[str, Any]:
    if check == "cluster.slow_rank":
        return {
            "dimension": "computing",
            "gap_ratios": slow_rank_gaps(everyone),
            "threshold": SLOW_RANK_GAP,
            "computing_us_by_rank": _mean_by_rank(everyone, "computing"),
        }
    if check == "communication.exposed":
        return {
            "not_overlapped_us_by_rank": _mean_by_rank(hit, "not_overlapped"),
            "share_of_step_by_rank": _mean_by_rank(hit, "not_overlapped", share=True),
        }
    if check == "overall.idle":
        return {
            "free_us_by_rank": _mean_by_rank(hit, "free"),
            "share_of_step_by_rank": _mean_by_rank(hit, "free", True),
        }
    if check == "schedule.gc":
        return {
            "events": int(_sum(hit, "gc.events")),
            "total_us": _us(_sum(hit, "gc.total_ns")),
            "max_us": _us(_max(hit, "gc.max_ns")),
            "threshold_us": 1000.0,
            "by_rank": {
                str(r.rank): {
                    "events": int(r.renderer.tally["gc.events"]),
                    "total_us": _us(r.renderer.tally["gc.total_ns"]),
                }
                for r in hit
            },
            # Without GC events the pauses are only a quiet host: where they are (the host's gap)
            # and how long the device idled around each.
            "gc_events_recorded": spec.gc_events,
            "pauses": {
                str(r.rank): [
                    {
                        "step": pause["step"],
                        "start_us": _us(pause["start"]),
                        "duration_us": _us(pause["dur"]),
                        "device_idle_us": _us(pause["idle"]),
                    }
                    for pause in r.renderer.gc_pauses
                ]
                for r in hit
            },
        }
    if check == "computation.aicpu":
        return {
            "kernels": int(_sum(hit, "aicpu.kernels")),
            "total_us": _us(_sum(hit, "aicpu.total_ns")),
            "max_us": _us(_max(hit, "aicpu.max_ns")),
            "min_duration_threshold_us": 20.0,
            "op_types": sorted(set().union(*(r.renderer.kinds["aicpu.types"] for r in hit))),
            "double_input_types": ["Cast"],
        }
    if check == "schedule.synchronize_stream":
        launches, syncs = _sum(hit, "launch.events"), _sum(hit, "sync.after_launch")
        return {
            "sync_events": int(syncs),
            "launch_events": int(launches),
            "co_occurrence_ratio": round(syncs / launches, 4) if launches else 0.0,
            "threshold": 0.5,
        }
    if check == "schedule.host_sync":
        return {
            "item_calls": int(_sum(hit, "host_sync.syncs")),
            "sync_events": int(_sum(hit, "host_sync.syncs")),
            "idle_after_us": _us(_sum(hit, "host_sync.idle_ns")),
        }
    if check in ("schedule.operator_dispatch", "computation.dynamic_shape"):
        steps = len(inj.faults[check].steps) * len(hit)
        compiles = _sum(hit, "compile.events")
        out: dict[str, Any] = {
            "compile_events": int(compiles),
            "compile_events_per_step": compiles / steps,
            "compile_total_us": _us(_sum(hit, "compile.total_ns")),
        }
        if check == "computation.dynamic_shape":
            out.update(
                {
                    "dynamic_kernels": int(_sum(hit, "op_state.dynamic")),
                    "static_kernels": int(_sum(hit, "op_state.static")),
                }
            )
        else:
            out["threshold_per_step"] = 20
        return out
    if check == "dataloader.slow":
        return {
            "events": int(_sum(hit, "dataloader.slow_events")),
            "max_us": _us(_max(hit, "dataloader.max_ns")),
            "name": "enumerate(DataLoader)#_SingleProcessDataLoaderIter.__next__",
            "threshold_us": 10000.0,
        }
    if check == "memory.operators":
        steps = len(inj.faults[check].steps) * len(hit)
        apis = {
            api: {
                "count": int(_sum(hit, f"memory.{api}.count")),
                "total_us": _us(_sum(hit, f"memory.{api}.ns")),
                "per_step_us": _us(_sum(hit, f"memory.{api}.ns") / steps),
            }
            for api in ("aclrtFree", "aclMallocMemInner")
        }
        return {
            "apis": apis,
            "threshold_us": 10000.0,
            "peak_reserved_mb": hit[0].renderer.reserved_mb + 312.0,
            "capacity_mb": HBM_CAPACITY_MB,
        }
    if check == "computation.ai_core_frequency":
        ratios = [
            decrease / (NOMINAL_MHZ * count)
            for r in hit
            for count, decrease in r.renderer.freq_by_op.values()
        ]
        return {
            "nominal_mhz": NOMINAL_MHZ,
            "throttled_mhz": LOW_MHZ,
            "threshold": 0.05,
            "decrease_ratio": round(statistics.fmean(ratios), 4) if ratios else 0.0,
            "ops_over_threshold": sum(1 for x in ratios if x >= 0.05),
        }
    if check == "computation.block_dim":
        return {
            "kernels": int(_sum(hit, "block_dim.kernels")),
            "total_us": _us(_sum(hit, "block_dim.total_ns")),
            "op_types": sorted(set().union(*(r.renderer.kinds["block_dim.types"] for r in hit))),
            "block_dims": BLOCK_DIM_FAULT,
            "ai_core_num": AI_CORE_NUM,
            "aiv_num": AIV_NUM,
        }
    if check == "computation.operator_bound":
        return {
            "kernels": int(_sum(hit, "unbound.kernels")),
            "max_us": _us(_max(hit, "unbound.max_ns")),
            "op_types": [UNBOUND_TYPE],
            "max_ratio": 0.6,
            "threshold": 0.8,
        }
    if check == "cluster.slow_link":
        assert inj.slow_link is not None
        src, dst = inj.slow_link
        source = next(r for r in everyone if r.rank == src).renderer.tally
        link = next(k.split(".")[1] for k in source if k.startswith("link.") and k.endswith(f".{dst}.bytes"))
        others = [
            t[key] / t[key.replace(".bytes", ".ns")]
            for t in (r.renderer.tally for r in everyone if r.rank != src)
            for key in t
            if key.startswith(f"link.{link}.") and key.endswith(".bytes")
        ]
        return {
            "src": src,
            "dst": dst,
            "transport": link,
            "bandwidth_gbps": round(source[f"link.{link}.{dst}.bytes"] / source[f"link.{link}.{dst}.ns"], 4),
            "normal_gbps": round(statistics.fmean(others), 4) if others else None,
            "sdma_bandwidth_gbps_by_rank": {
                str(r.rank): round(r.renderer.tally["sdma.mb"] / r.renderer.tally["sdma.ms"], 4)
                for r in everyone
                if r.renderer.tally["sdma.ms"]
            },
        }
    if check == "communication.small_packet":
        ops, small = _sum(hit, "packet.sdma_ops"), _sum(hit, "packet.small_sdma_ops")
        return {
            "sdma_ops": int(ops),
            "small_sdma_ops": int(small),
            "ratio": round(small / ops, 4) if ops else 0.0,
            "small_below_mb": 16,
            "threshold": 0.2,
        }
    if check == "communication.retransmission":
        step = inj.faults[check].steps[0]
        first = [next(op for op in r.comm if op["step"] == step) for r in everyone]
        return {
            "step": step,
            "op": first[0]["name"],
            "rdma_transit_ms_by_rank": {
                str(r.rank): round(r.renderer.tally["rdma.max_transit_ms"], 3) for r in hit
            },
            "min_elapse_ms": round(min(op["elapse"] for op in first) / 1e6, 3),
            "threshold_ms": 4000.0,
        }
    if check == "communication.byte_alignment":
        inspected, abnormal = _sum(hit, "alignment.inspected_ns"), _sum(hit, "alignment.abnormal_ns")
        return {
            "ops": int(_sum(hit, "alignment.ops")),
            "abnormal_us": _us(abnormal),
            "inspected_us": _us(inspected),
            "abnormal_share": round(abnormal / inspected, 4) if inspected else 0.0,
            "alignment_bytes": 512,
        }
    if check == "communication.bandwidth_contention":
        return _contention(hit, spec)
    if check == "computation.ai_core_performance":
        return {
            "kernels": int(_sum(hit, "mte2_bound.kernels")),
            "total_us": _us(_sum(hit, "mte2_bound.total_ns")),
            "op_type": "MatMulV2",
            "share_of_kernel_time_by_rank": {
                str(r.rank): {
                    key.removeprefix("mte2_bound.ns."): round(ns / _kernel_ns(r), 4)
                    for key, ns in r.renderer.tally.items()
                    if key.startswith("mte2_bound.ns.")
                }
                for r in hit
            },
            "min_group_share": 0.01,
            "align_bytes": 256,
            "mac_ratio": 0.2,
        }
    if check == "computation.graph_fusion":
        chain = ["BatchMatMulV2", "Mul", "SoftmaxV2", "BatchMatMulV2_1"]
        by_rank = {}
        for r in hit:
            times = [r.renderer.tally[f"graph.{name}.ns"] for name in chain]
            by_rank[str(r.rank)] = {"chain_us": _us(sum(times)), "saved_us": _us(sum(times) - max(times))}
        return {
            "dump": DUMP_NAME,
            "pattern": "FlashAttention",
            "chain": chain,
            "chain_types": ["BatchMatMulV2", "Mul", "SoftmaxV2", "BatchMatMulV2"],
            "by_rank": by_rank,
        }
    if check == "schedule.sync_batchnorm":
        steps = len(inj.faults[check].steps) * len(hit)
        calls = _sum(hit, "span.SyncBatchNorm")
        return {
            "layer_calls": int(calls),
            "layer_calls_per_step": calls / steps,
            "backward_calls": int(
                _sum(hit, "span.autograd::engine::evaluate_function: SyncBatchNormBackward")
            ),
            "allgathers": int(_sum(hit, "sync_bn.allgathers")),
            "allgather_bytes": sorted(
                int(b) for b in set().union(*(r.renderer.kinds["sync_bn.allgather_bytes"] for r in hit))
            ),
            "host_syncs": int(_sum(hit, "mask.syncs")),
            # Device idle inside the SyncBatchNorm events: after each all-gather, until the host's
            # sync returns and its next launch arrives.
            "idle_us_per_step": _us(_sum(hit, "span.SyncBatchNorm.idle_ns") / steps),
            "idle_share_by_rank": {
                str(r.rank): round(
                    r.renderer.tally["span.SyncBatchNorm.idle_ns"]
                    / sum(row["step"] for row in r.trace_rows.values()),
                    4,
                )
                for r in hit
            },
            "threshold_per_step": 20,
            "min_idle_share": 0.01,
        }
    if check == "schedule.fusible_operators":
        kernels, busy, wall = _sum(hit, "ema.kernels"), _sum(hit, "ema.busy_ns"), _sum(hit, "ema.wall_ns")
        return {
            "kernels": int(kernels),
            "tensors": int(kernels) // 4,
            "sequence": ["Mul", "Mul", "Add", "TensorMove"],
            "kernel_us": _us(busy),
            "wall_us": _us(wall),
            "busy_share": round(busy / wall, 4) if wall else 0.0,
            "host_threshold": 0.4,
            "min_occurrences": 5,
        }
    if check == "environment.variables":
        return {"variables": BAD_ENV}
    if check == "computation.pp_stage_imbalance":
        # The first stage's ranks are 0 .. n-1 (Megatron order), so a rank's stage is rank // n.
        per_stage = len(hit)
        return {
            "stage": 0,
            "factor": STAGE_IMBALANCE_FACTOR,
            "computing_us_by_stage": _by_stage(
                everyone, {r.rank: r.rank // per_stage for r in everyone}, "computing"
            ),
        }
    if check == "schedule.affinity_api":
        return {
            "patterns": {
                "aten::gelu": "torch_npu.fast_gelu",
                "Optimizer.step#AdamW.step": "torch_npu.optim.NpuFusedAdamW",
            }
        }
    raise KeyError(check)


def _kernel_ns(result: RankResult) -> float:
    return sum(stats[1] for stats in result.renderer.op_stats.values())


def _contention(hit: list[RankResult], spec: SynthSpec) -> dict[str, Any]:
    """Per kind of SDMA transfer (Memcpy; Reduce_Inline, a quarter as long, in a reduction), those of
    at least 1 MiB beside compute kernels and alone, as written."""
    out: dict[str, Any] = {"nominal_gbps": spec.link_gbps, "min_task_bytes": CONTENTION_MIN_BYTES}
    for task_type in ("Memcpy", "Reduce_Inline"):
        sides = {}
        for side in ("contended", "alone"):
            key = f"contention.{task_type}.{side}"
            size, ns = _sum(hit, f"{key}.bytes"), _sum(hit, f"{key}.ns")
            sides[side] = {
                "transfers": int(_sum(hit, f"{key}.transfers")),
                "ops": sorted(set().union(*(r.renderer.kinds[f"{key}.ops"] for r in hit))),
                "bandwidth_gbps": round(size / ns, 4) if ns else None,
            }
        out[task_type] = sides
    return out


def build_ground_truth(spec: SynthSpec, inj: Injection, results: list[RankResult]) -> dict[str, Any]:
    injected = []
    for check, fault in inj.faults.items():
        hit = [r for r in results if r.rank in fault.ranks]
        injected.append(
            {
                "check": check,
                "ranks": list(fault.ranks),
                "steps": list(fault.steps),
                "expected": _expected(check, hit, results, inj, spec),
                "collateral": list(COLLATERAL[check]),
            }
        )
    incidental = []
    if len(results) > 1 and "cluster.slow_rank" not in inj.faults:
        gaps = slow_rank_gaps(results)
        if max(gaps.values()) > SLOW_RANK_GAP:
            incidental.append(
                {"check": "cluster.slow_rank", "expected": {"gap_ratios": gaps, "threshold": SLOW_RANK_GAP}}
            )
    return {
        "seed": spec.seed,
        "spec": asdict(spec),
        "healthy": not injected,
        "injected": injected,
        "incidental": incidental,
        "slow_rank_gaps": slow_rank_gaps(results) if len(results) > 1 else {},
    }


def _by_stage(
    results: list[RankResult], stage_of: dict[int, int], key: str, share: bool = False
) -> dict[str, float]:
    """Per stage, the mean over its ranks and steps of a step_trace value ("idle": all but computing),
    or of its share of the step."""
    values: dict[int, list[float]] = {}
    for r in results:
        for row in r.trace_rows.values():
            value = row["step"] - row["computing"] if key == "idle" else row[key]
            values.setdefault(stage_of[r.rank], []).append(value / row["step"] if share else value)
    return {
        str(s): round(statistics.fmean(v), 4) if share else _us(statistics.fmean(v))
        for s, v in sorted(values.items())
    }


def workload_truth(spec: SynthSpec, planner: SynthPlanner, results: list[RankResult]) -> dict[str, Any]:
    """What the run is: workload, PMU mode (with the realistic ranges), profiler level, micro-batches,
    and the pipeline layout with each stage's expected and measured bubble."""
    out: dict[str, Any] = {
        "workload": spec.workload,
        "pmu": spec.pmu_mode,
        "profiler_level": spec.profiler_level,
        "microbatches": spec.microbatch_count,
    }
    if spec.pmu_mode == "realistic":
        out["pmu_ranges"] = {
            kind: {pipe: list(r) for pipe, r in pipes.items()} for kind, pipes in RANGES.items()
        }
    topo = planner.topology
    if topo.pp == 1:
        return out
    p, m = topo.pp, spec.microbatch_count
    stage_of = {r: topo.stage(r) for r in range(topo.ranks)}
    stages = []
    for s, work in enumerate(planner.work):
        forward = sum(k.weight for op in work.model.forward for k in op.kernels)
        backward = sum(k.weight for group in work.model.backward for op in group for k in op.kernels)
        share = forward / (forward + backward)
        # Balanced 1F1B: stage s waits s forwards for its first input and (p-1-s) forward-backward
        # pairs for gradients in between (receives: Bubble), and ends s backwards before stage 0
        # does (waiting in the gradient norm's all-reduce).
        stages.append(
            {
                "stage": s,
                "ranks": [r for r in range(topo.ranks) if topo.stage(r) == s],
                "expected_bubble_share": round((s * share + p - 1 - s) / (m + p - 1), 4),
            }
        )
    measured = {
        "bubble_share": _by_stage(results, stage_of, "bubble", share=True),
        "idle_share": _by_stage(results, stage_of, "idle", share=True),
        "computing_us": _by_stage(results, stage_of, "computing"),
    }
    for entry in stages:
        entry.update({name: values[str(entry["stage"])] for name, values in measured.items()})
    out["pipeline"] = {
        "schedule": "1F1B",
        "stages": stages,
        "microbatches": m,
        # Of a balanced pipeline: every stage idles (p-1) of its (m+p-1) micro-batch slots.
        "natural_idle_share": round((p - 1) / (m + p - 1), 4),
        "p2p_group_name": "pp",
    }
    return out
