"""The GPU checks (schedule.launch_overhead, schedule.fused_optimizer, memory.pageable_memcpy,
computation.tensor_core) and schedule.host_sync / synchronize_stream on GPU traces, on tables built
from the Kineto generator's simulated events, against its ground truth (advisor/synth/kineto/truth.py),
and on hand-built tables for the edge cases; and the device-neutral checks' wording per device."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from advisor.checks import computation_tensor_core, memory_pageable, schedule_launch, schedule_sync
from advisor.checks.overall_idle import overall_idle
from advisor.checks.registry import NotEvaluated, RankContext, running
from advisor.checks.schedule_base import BLOCKING
from advisor.formats.schema import conform
from advisor.model import ProfileSet, RankInfo
from advisor.options import AnalysisOptions
from advisor.report.messages import Messages
from advisor.synth.kineto.spec import KinetoSpec
from advisor.synth.kineto.timeline import simulate
from advisor.synth.kineto.truth import build_truth

A100 = "NVIDIA A100-SXM4-80GB"
MEMCPY_NAME = re.compile(r"Memcpy (\w+) \((\w+) -> (\w+)\)")


def _tables(events: list[dict[str, Any]]) -> dict[str, pd.DataFrame]:
    """The contract's tables (issue 18 §2) from simulated events (ts ns from the run's start):
    what the kineto reader fills from the written trace, for the columns these checks read."""
    x = [e for e in events if e.get("ph") == "X"]

    def rows(cats: tuple[str, ...]) -> list[dict[str, Any]]:
        return [e for e in x if e["cat"] in cats]

    def frame(items: list[dict[str, Any]], table: str, **columns: Any) -> pd.DataFrame:
        data = {name: [get(e) for e in items] for name, get in columns.items()}
        return conform(pd.DataFrame(data), table)

    start, dur, tid = (lambda e: e["ts"]), (lambda e: e["dur"] / 1000.0), (lambda e: e["tid"])
    corr = lambda e: e["args"].get("correlation")  # noqa: E731
    steps = [e for e in rows(("user_annotation",)) if e["name"].startswith("ProfilerStep#")]
    gpu = rows(("kernel", "gpu_memcpy", "gpu_memset"))
    copies = rows(("gpu_memcpy", "gpu_memset"))

    def copy_part(index: int):
        def get(e: dict[str, Any]) -> str:
            match = MEMCPY_NAME.match(e["name"])
            return "Memset" if match is None and index == 0 else (match.group(index + 1) if match else None)

        return get

    return {
        "steps": frame(steps, "steps", step=lambda e: int(e["name"][13:]), start_ns=start, dur_us=dur),
        "step_trace": conform(pd.DataFrame(), "step_trace"),
        "host_ops": frame(
            rows(("cpu_op", "user_annotation", "python_function")), "host_ops",
            name=lambda e: e["name"], cat=lambda e: e["cat"], start_ns=start, dur_us=dur, tid=tid,
        ),
        "runtime_api": frame(
            rows(("cuda_runtime", "cuda_driver")), "runtime_api",
            name=lambda e: e["name"], start_ns=start, dur_us=dur, tid=tid, correlation=corr,
        ),
        "kernels": frame(
            rows(("kernel",)), "kernels",
            name=lambda e: e["name"], start_ns=start, duration_us=dur, stream_id=tid, correlation=corr,
        ),
        "device_tasks": frame(
            gpu, "device_tasks", name=lambda e: e["name"], task_type=lambda e: e["cat"], start_ns=start,
            dur_us=dur, stream_id=tid,
        ),
        "memcpy": frame(
            copies, "memcpy", name=lambda e: e["name"], kind=copy_part(0), src_memory=copy_part(1),
            dst_memory=copy_part(2), size_bytes=lambda e: e["args"]["bytes"], start_ns=start, dur_us=dur,
            stream_id=tid, correlation=corr,
        ),
        # The device is busy whenever a kernel or copy runs (free_slices cuts the steps with these).
        "overlap": frame(gpu, "overlap", kind=lambda e: "Computing", start_ns=start, dur_us=dur),
        "gc": frame([e for e in x if e["name"] == "Python GC"], "gc", start_ns=start, dur_us=dur),
    }  # fmt: skip


def _profile(device: str = "gpu", device_type: str | None = A100, ranks: int = 1) -> ProfileSet:
    infos = [
        RankInfo(r, Path(f"rank{r}.json"), "kineto", device=device, device_type=device_type)
        for r in range(ranks)
    ]
    return ProfileSet(Path("."), "kineto", infos, [], device=device)


def _ctx(tables: dict[str, pd.DataFrame], rank: int = 0, profile: ProfileSet | None = None, language="en"):
    profile = profile or _profile(ranks=rank + 1)
    return RankContext(profile, profile.ranks[rank], tables, AnalysisOptions(), Messages(language))


def _run(check_id: str, fn, ctx: RankContext):
    with running(check_id):
        return fn(ctx)


@pytest.fixture(scope="module")
def runs():
    """Each GPU fault alone on 2 ranks, the healthy control, with their truth."""
    out = {}
    for name, inject in (
        ("healthy", ()),
        ("launch", ("schedule.launch_overhead",)),
        ("pageable", ("memory.pageable_memcpy",)),
        ("sync", ("schedule.host_sync",)),
    ):
        spec = KinetoSpec(ranks=2, inject=inject, inject_ranks=None if name == "healthy" else (1,))
        states = simulate(spec)
        out[name] = ([_tables(s.events) for s in states], build_truth(spec, states, {}))
    return out


def _lost(truth: dict[str, Any], check: str, rank: int) -> float:
    (entry,) = [e for e in truth["injected"] if e["check"] == check]
    return entry["expected"]["lost_us_per_step"][str(rank)]


# --- schedule.launch_overhead / schedule.fused_optimizer ----------------------------------------


def test_launch_overhead_on_the_faulty_rank_with_the_measured_idle(runs):
    tables, truth = runs["launch"]
    (f,) = _run("schedule.launch_overhead", schedule_launch.launch_overhead, _ctx(tables[1], 1))
    lost = _lost(truth, "schedule.launch_overhead", 1)
    # The truth counts the idle from the first tiny kernel's start to the last one's end; the check
    # also counts the gap before the first one (it waited for its launch too): at most one gap more.
    assert lost <= f.estimated_gain_us <= lost * 1.02
    assert f.priority == "high" and f.gain_basis == "measured" and f.ranks == [1]
    rows = f.evidence[0].rows
    assert rows[0][0] == "Optimizer.step#SGD.step" and "CUDAFunctor_add" in rows[0][1]
    # Of the 1200 tiny kernels per step, those queued behind the step's last all-reduce did not wait
    # for their launch (and cost nothing): the rest did.
    assert 600 < rows[0][3] < 1200
    assert "foreach=True" in f.suggestions[0]
    # The healthy rank 0 of the same run and the healthy control: nothing.
    assert _run("schedule.launch_overhead", schedule_launch.launch_overhead, _ctx(tables[0])) == []
    for rank, healthy in enumerate(runs["healthy"][0]):
        assert _run("schedule.launch_overhead", schedule_launch.launch_overhead, _ctx(healthy, rank)) == []


def test_fused_optimizer_names_the_optimizer_and_its_idle(runs):
    tables, truth = runs["launch"]
    (f,) = _run("schedule.fused_optimizer", schedule_launch.fused_optimizer, _ctx(tables[1], 1))
    assert "SGD" in f.title and f.ranks == [1]
    # The optimizer's kernels are the tiny ones: the idle among them is the fault's measured cost.
    assert f.estimated_gain_us == pytest.approx(_lost(truth, "schedule.launch_overhead", 1), rel=0.01)
    assert "torch.optim.SGD(params, ..., foreach=True)" in f.suggestions[0]
    assert f.evidence[0].rows[0][2] == 1200  # every per-parameter kernel of the optimizer step
    # With the multi-tensor kernel (the healthy optimizer) there is nothing to say.
    assert _run("schedule.fused_optimizer", schedule_launch.fused_optimizer, _ctx(tables[0])) == []


def test_launch_checks_need_correlated_kernels(runs):
    tables = dict(runs["launch"][0][1])
    tables["kernels"] = tables["kernels"].assign(correlation=pd.NA).astype({"correlation": "Int64"})
    with pytest.raises(NotEvaluated, match="correlation"):
        _run("schedule.launch_overhead", schedule_launch.launch_overhead, _ctx(tables, 1))


def test_launch_overhead_leaves_host_stalls_to_their_checks():
    """Short kernels after gaps in which the host sat in a sync are host_sync's cost, not launch
    overhead; gaps above max_gap_us are stalls too."""
    step_ns = 10_000_000
    starts = np.arange(100) * 50_000 + 1_000  # a 4 µs kernel every 50 µs: 46 µs idle before each
    kernels = {"name": ["k"] * 100, "start_ns": starts, "duration_us": [4.0] * 100, "stream_id": [7] * 100,
               "correlation": list(range(100))}  # fmt: skip
    launches = {"name": ["cudaLaunchKernel"] * 100, "start_ns": starts - 8_000, "dur_us": [5.0] * 100,
                "tid": [1] * 100, "correlation": list(range(100))}  # fmt: skip
    base = {
        "steps": conform(pd.DataFrame({"step": [1], "start_ns": [0], "dur_us": [step_ns / 1000]}), "steps"),
        "step_trace": conform(pd.DataFrame(), "step_trace"),
        "kernels": conform(pd.DataFrame(kernels), "kernels"),
    }
    ctx = _ctx({**base, "runtime_api": conform(pd.DataFrame(launches), "runtime_api")})
    (f,) = _run("schedule.launch_overhead", schedule_launch.launch_overhead, ctx)
    assert f.estimated_gain_us == pytest.approx(99 * 46.0)  # the first kernel has nothing before it
    assert f.evidence[0].rows[0][0] == "(no user range)"
    # A sync in every gap: the host stood still, so no launch overhead is left.
    syncs = {"name": ["cudaStreamSynchronize"] * 100, "start_ns": starts - 40_000, "dur_us": [30.0] * 100,
             "tid": [1] * 100}  # fmt: skip
    runtime = pd.concat([pd.DataFrame(launches), pd.DataFrame(syncs)], ignore_index=True)
    ctx = _ctx({**base, "runtime_api": conform(runtime, "runtime_api")})
    assert _run("schedule.launch_overhead", schedule_launch.launch_overhead, ctx) == []


# --- memory.pageable_memcpy ---------------------------------------------------------------------


def test_pageable_copies_cost_their_time_beyond_pinned_bandwidth(runs):
    tables, truth = runs["pageable"]
    (f,) = _run("memory.pageable_memcpy", memory_pageable.pageable_memcpy, _ctx(tables[1], 1))
    # No pinned copy of the same direction in that trace: the assumed 22 GB/s, the generator's own.
    assert f.estimated_gain_us == pytest.approx(_lost(truth, "memory.pageable_memcpy", 1), rel=1e-3)
    assert f.gain_basis == "upper_bound" and f.priority == "medium"
    kind, name, _, per_step = f.evidence[0].rows[0][:4]
    assert (kind, name, per_step) == ("HtoD", "Memcpy HtoD (Pageable -> Device)", 1.0)
    assert any("pin_memory=True" in s for s in f.suggestions)
    # Pinned copies (rank 0, the healthy control) and the 4-byte .item() reads: nothing.
    assert _run("memory.pageable_memcpy", memory_pageable.pageable_memcpy, _ctx(tables[0])) == []
    sync_tables = runs["sync"][0][1]
    assert _run("memory.pageable_memcpy", memory_pageable.pageable_memcpy, _ctx(sync_tables, 1)) == []


def test_pinned_copies_in_the_trace_measure_the_bandwidth(runs):
    """With a pinned copy of the same direction the bandwidth is measured: a measured gain."""
    tables = dict(runs["pageable"][0][1])
    pinned = runs["healthy"][0][1]["memcpy"]
    pinned = pinned[pinned["src_memory"] == "Pinned"].head(1)
    tables["memcpy"] = pd.concat([tables["memcpy"], pinned], ignore_index=True)
    (f,) = _run("memory.pageable_memcpy", memory_pageable.pageable_memcpy, _ctx(tables, 1))
    rate = float(pinned["size_bytes"].iloc[0] / (pinned["dur_us"].iloc[0] * 1000))
    assert rate == pytest.approx(22.0, rel=1e-3)  # PINNED_GBPS, as the copy's duration shows it
    assert f.gain_basis == "measured" and f.priority == "high"
    assert f.evidence[0].rows[0][7] == pytest.approx(rate, abs=1e-3)


# --- schedule.host_sync / synchronize_stream on GPU ---------------------------------------------


def test_cuda_blocking_calls():
    blocking = ["cudaStreamSynchronize", "cudaDeviceSynchronize", "cudaEventSynchronize", "cudaMemcpy",
                "cudaMemcpy2D", "cuMemcpyDtoH_v2", "cuCtxSynchronize", "hipMemcpy", "hipStreamSynchronize",
                "cudaStreamSynchronize_ptsz", "AscendCL@aclrtMemcpy",
                "AscendCL@aclrtSynchronizeStream"]  # fmt: skip
    asynchronous = ["cudaMemcpyAsync", "cudaMemcpy2DAsync", "cuMemcpyDtoHAsync_v2", "hipMemcpyAsync",
                    "cudaLaunchKernel", "cudaStreamWaitEvent", "AscendCL@aclrtMemcpyAsync"]  # fmt: skip
    assert [n for n in blocking if not re.search(BLOCKING, n)] == []
    assert [n for n in asynchronous if re.search(BLOCKING, n)] == []


def test_host_sync_on_gpu_finds_the_item_calls(runs):
    tables, truth = runs["sync"]
    (f,) = _run("schedule.host_sync", schedule_sync.host_sync, _ctx(tables[1], 1))
    sites = {r[0]: r for r in f.evidence[0].rows}
    # 3 injected .item() per step plus the benign one the loop logs its loss with.
    assert sites["aten::item"][2] == 4 * len(truth["steps"])
    logging = np.mean([s["logging_sync_idle_us"] for s in truth["ranks"]["1"]["steps"].values()])
    # Within 3 %: a wait that began on an already idle device (the copy done before the host
    # called cudaStreamSynchronize) costs nothing to the check, while the truth counts the idle from
    # the copy's end all the same.
    assert f.estimated_gain_us == pytest.approx(_lost(truth, "schedule.host_sync", 1) + logging, rel=0.03)
    assert f.priority == "high" and f.ranks == [1]
    assert "torch.profiler.profile(with_stack=True)" in " ".join(f.suggestions)
    assert "Overlap Analysis" not in f.description and "GPU" in f.description
    # The healthy rank's one logging .item() per step is no high finding.
    assert all(
        x.priority != "high" for x in _run("schedule.host_sync", schedule_sync.host_sync, _ctx(tables[0]))
    )


def test_explicit_cuda_synchronize():
    step = {"step": [1], "start_ns": [0], "dur_us": [100_000.0]}
    runtime = {"name": ["cudaDeviceSynchronize", "cudaLaunchKernel"], "start_ns": [10_000_000, 30_000_000],
               "dur_us": [5_000.0, 5.0], "tid": [1, 1]}  # fmt: skip
    overlap = {
        "kind": ["Computing", "Computing"],
        "start_ns": [0, 23_000_000],
        "dur_us": [14_000.0, 77_000.0],
    }
    tables = {
        "steps": conform(pd.DataFrame(step), "steps"),
        "step_trace": conform(pd.DataFrame(), "step_trace"),
        "host_ops": conform(pd.DataFrame(), "host_ops"),
        "runtime_api": conform(pd.DataFrame(runtime), "runtime_api"),
        "overlap": conform(pd.DataFrame(overlap), "overlap"),
    }
    (f,) = _run("schedule.synchronize_stream", schedule_sync.synchronize_stream, _ctx(tables))
    assert f.estimated_gain_us == pytest.approx(9_000.0)  # idle from 14 ms to 23 ms
    assert "torch.cuda.synchronize()" in f.description and "torch.npu" not in " ".join(f.suggestions)
    assert f.evidence[1].columns[-1] == "cuda_launch_blocking"
    (zh,) = _run("schedule.synchronize_stream", schedule_sync.synchronize_stream, _ctx(tables, language="zh"))
    assert "torch.cuda.synchronize()" in zh.description and "显式" in zh.description


# --- computation.tensor_core --------------------------------------------------------------------


def test_fp32_gemm_kernels_are_told_from_tensor_core_ones():
    names = pd.Series(
        [
            "ampere_sgemm_128x64_tn",  # cuBLAS FP32 SIMT
            "sm80_xmma_gemm_f32f32_f32f32_f32_tn_n_tilesize128x128x8_stage3",
            "implicit_convolve_sgemm",
            "sm80_xmma_gemm_f32f32_tf32f32_f32_nn_n_tilesize128x128x16",  # TF32
            "ampere_fp16_s16816gemm_fp16_128x128_ldg8_f2f_stages_32x5_tn",
            "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64_warpgroupsize1x1x1",
            "volta_h884gemm_64x64_ldg8_nn",
            "void at::native::vectorized_elementwise_kernel<4, at::native::CUDAFunctor_add<float>>",
            "sm80_xmma_fprop_implicit_gemm_indexed_tf32f32",
        ],
        dtype="string",
    )
    assert computation_tensor_core.fp32_gemm(names).tolist() == [True, True, True] + [False] * 6


def test_tensor_core_on_the_generator_gemms(runs):
    tables = runs["healthy"][0][0]
    (f,) = _run("computation.tensor_core", computation_tensor_core.tensor_core, _ctx(tables))
    kernels, steps = tables["kernels"], tables["steps"]
    fp32_us = kernels.loc[kernels["name"] == "ampere_sgemm_128x64_tn", "duration_us"].sum() / len(steps)
    assert f.estimated_gain_us == pytest.approx(fp32_us / 2, abs=1e-3)  # speedup 2: half of the FP32 time
    assert f.priority == "medium" and f.gain_basis == "upper_bound"  # a model, never high
    assert A100 in f.title and "allow_tf32" in f.suggestions[0]

    # A GPU without Tensor Cores: nothing; a V100 has no TF32: float16 AMP; unknown GPU: at most low.
    def on(gpu: str | None):
        check = computation_tensor_core.tensor_core
        return _run("computation.tensor_core", check, _ctx(tables, profile=_profile(device_type=gpu)))

    assert on("Tesla P100-PCIE-16GB") == []
    (v100,) = on("Tesla V100-SXM2-32GB")
    assert "GradScaler" in v100.suggestions[0] and "allow_tf32" not in " ".join(v100.suggestions)
    (unknown,) = on(None)
    assert unknown.priority == "low" and "this GPU" in unknown.title


# --- wording per device -------------------------------------------------------------------------


def test_device_neutral_checks_speak_of_the_device_they_run_on():
    parts = {"computing_us": 50_000.0, "communication_not_overlapped_us": 0.0, "free_us": 50_000.0}
    step_trace = conform(pd.DataFrame({"step": [1], **{k: [v] for k, v in parts.items()}}), "step_trace")
    said = {}
    for device in ("npu", "gpu", "cpu"):
        ctx = _ctx({"step_trace": step_trace}, profile=_profile(device=device))
        (f,) = _run("overall.idle", overall_idle, ctx)
        said[device] = " ".join(f.suggestions)
    assert "TASK_QUEUE_ENABLE" in said["npu"]
    assert "CUDA Graphs" in said["gpu"] and "torch_npu" not in said["gpu"] and "NPU" not in said["gpu"]
    assert "main thread" in said["cpu"] and "NPU" not in said["cpu"] and "CUDA" not in said["cpu"]


def test_device_variants_exist_in_both_languages():
    en, zh = Messages("en"), Messages("zh")
    variants = [k for k in en._fallback if re.search(r"\.(gpu|cpu)$", k) and not k.startswith("engine.")]
    assert len(variants) > 20
    assert [k for k in variants if k not in zh._strings] == []
    with_device = Messages("zh").for_device("gpu")
    assert "CUDA" in with_device.t("schedule.sync.no_cann") and "CANN" in zh.t("schedule.sync.no_cann")


# --- end to end: the generator's traces through the kineto reader and the engine ----------------


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    """Each GPU fault on rank 1 of 2, and the healthy control, written as traces and analysed."""
    from advisor.engine import run_analysis
    from advisor.synth.kineto import write_kineto_traces

    out = {}
    for name, inject in (
        ("healthy", ()),
        ("schedule.launch_overhead", ("schedule.launch_overhead",)),
        ("memory.pageable_memcpy", ("memory.pageable_memcpy",)),
        ("schedule.host_sync", ("schedule.host_sync",)),
    ):
        spec = KinetoSpec(ranks=2, inject=inject, inject_ranks=(1,) if inject else None)
        root = write_kineto_traces(tmp_path_factory.mktemp("kineto") / "run", spec)
        truth = json.loads((root / "ground_truth.json").read_text())
        out[name] = (run_analysis(root), truth)
    return out


def test_healthy_gpu_control_has_no_high_finding(analysed):
    report, _ = analysed["healthy"]
    assert [f.check for f in report.findings if f.priority == "high"] == []
    # Its GEMMs are FP32 sgemm on an A100: the one thing to say, as a model's upper bound.
    assert {f.check for f in report.findings} == {"overall.summary", "computation.tensor_core"}


@pytest.mark.parametrize(
    "fault", ["schedule.launch_overhead", "memory.pageable_memcpy", "schedule.host_sync"]
)
def test_each_gpu_fault_fires_its_check_on_its_rank(analysed, fault):
    report, truth = analysed[fault]
    (f,) = [f for f in report.findings if f.check == fault]
    assert f.ranks == [1]
    lost = _lost(truth, fault, 1)
    # host_sync also counts the loop's benign logging .item() (a few hundred µs per step).
    assert f.estimated_gain_us == pytest.approx(lost, rel=0.05 if fault == "schedule.host_sync" else 1e-3)
    # A fault on one rank of two also makes it the slow rank that the other waits for.
    one_rank = {"cluster.slow_rank", "communication.exposed", "comparison.api", "comparison.kernel"}
    allowed = {fault, "overall.summary", "computation.tensor_core", *truth["injected"][0]["collateral"]}
    allowed |= one_rank
    assert {x.check for x in report.findings} <= allowed


def test_one_launch_timed_by_a_sync_is_no_launch_blocking():
    """As in the corpus' triton example: one kernel, then torch.cuda.synchronize() after it ended, then
    seconds of host work. Too few launches to judge launch blocking; as an explicit sync made on an
    idle device it cost nothing."""
    step = {"step": [1], "start_ns": [0], "dur_us": [1_000_000.0]}
    runtime = {"name": ["cuLaunchKernel", "cudaDeviceSynchronize"], "start_ns": [100_000, 300_000],
               "dur_us": [48.0, 17.0], "tid": [1, 1]}  # fmt: skip
    overlap = {"kind": ["Computing"], "start_ns": [150_000], "dur_us": [2.0]}
    tables = {
        "steps": conform(pd.DataFrame(step), "steps"),
        "step_trace": conform(pd.DataFrame(), "step_trace"),
        "host_ops": conform(pd.DataFrame(), "host_ops"),
        "runtime_api": conform(pd.DataFrame(runtime), "runtime_api"),
        "overlap": conform(pd.DataFrame(overlap), "overlap"),
    }
    assert _run("schedule.synchronize_stream", schedule_sync.synchronize_stream, _ctx(tables)) == []
