"""Checks declare the devices they apply to: on a profile of another device they are not run and are
listed once as not applicable (a list of its own, not "not evaluated"), in every output."""

from __future__ import annotations

import dataclasses
import json

import jsonschema
import pytest
from openpyxl import load_workbook

from advisor import engine
from advisor.checks.registry import ALL_DEVICES, GPU_ONLY, NPU_ONLY, all_checks, check, unregister
from advisor.engine import run_analysis, write_reports
from advisor.formats import discover
from advisor.report.jsonout import report_json_text, report_schema
from advisor.synth import SynthSpec, write_synth_profile

# What reads Ascend-only data: AI Core counters, CANN calls and variables, HCCL transports, GE graphs.
NPU_CHECKS = {
    "environment.variables", "cluster.slow_link",
    "computation.ai_core_frequency", "computation.aicpu", "computation.dynamic_shape",
    "computation.operator_bound", "computation.block_dim", "computation.ai_core_performance",
    "computation.graph_fusion",
    "schedule.operator_dispatch", "schedule.affinity_api", "schedule.fusible_operators",
    "communication.small_packet", "communication.bandwidth_contention",
    "communication.retransmission", "communication.byte_alignment",
    "memory.operators",
}  # fmt: skip
# What reads what only a GPU trace records: kernels with their launches' correlation ids, copies
# from pageable memory, CUDA kernel names.
GPU_CHECKS = {
    "schedule.launch_overhead", "schedule.fused_optimizer", "memory.pageable_memcpy",
    "computation.tensor_core",
}  # fmt: skip
# Blocking calls of the device runtime (CANN on an NPU, CUDA/HIP on a GPU) and kernels: a CPU trace has none.
NPU_GPU_CHECKS = {"schedule.host_sync", "schedule.synchronize_stream", "comparison.kernel"}


@pytest.fixture(scope="module")
def profile(tmp_path_factory):
    """A run with one problem an NPU-only check finds and one that any device's check finds."""
    spec = SynthSpec(steps=(1, 2), ranks=2, inject=("computation.aicpu", "dataloader.slow"))
    return write_synth_profile(tmp_path_factory.mktemp("devices") / "run", spec=spec)


@pytest.fixture(scope="module")
def reports(profile):
    """The same profile analysed as recorded (npu) and as if it were a GPU trace."""
    npu = run_analysis(profile)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engine, "discover", lambda path: dataclasses.replace(discover(path), device="gpu"))
        gpu = run_analysis(profile)
    return npu, gpu


def test_checks_declare_their_devices():
    devices = {spec.id: spec.devices for spec in all_checks()}
    assert {c for c, d in devices.items() if d == NPU_ONLY} == NPU_CHECKS
    assert {c for c, d in devices.items() if d == GPU_ONLY} == GPU_CHECKS
    assert {c for c, d in devices.items() if d == {"npu", "gpu"}} == NPU_GPU_CHECKS
    special = NPU_CHECKS | GPU_CHECKS | NPU_GPU_CHECKS
    assert all(d == ALL_DEVICES for c, d in devices.items() if c not in special)
    with pytest.raises(ValueError, match="devices"):
        check("overall.tpu_only", "overall", devices=frozenset({"tpu"}))
    unregister("overall.tpu_only")


def test_npu_only_checks_are_not_applicable_to_a_gpu_trace(reports):
    npu, gpu = reports
    assert sorted(n.check for n in npu.not_applicable) == sorted(GPU_CHECKS)
    assert {n.reason for n in npu.not_applicable} == {"not applicable to NPU profiles"}
    listed = [n.check for n in gpu.not_applicable]
    assert sorted(listed) == sorted(NPU_CHECKS)  # each once, whatever the number of ranks
    assert {n.reason for n in gpu.not_applicable} == {"not applicable to GPU traces"}
    assert not NPU_CHECKS & {n.check for n in gpu.not_evaluated}
    assert not NPU_CHECKS & {f.check for f in gpu.findings}
    # The others still run: the overall picture, and what they found on the NPU run they find again.
    assert gpu.summary["per_rank"] == npu.summary["per_rank"]
    assert {"computation.aicpu", "dataloader.slow"} <= {f.check for f in npu.findings}
    others = [f for f in npu.findings if f.check not in NPU_CHECKS]
    assert "dataloader.slow" in [f.check for f in others]
    assert [(f.check, f.estimated_gain_us) for f in gpu.findings] == [
        (f.check, f.estimated_gain_us) for f in others
    ]
    ran = {n.check for n in npu.not_evaluated} - NPU_CHECKS
    # The GPU checks find on Ascend tables no kernel correlation ids and no copy table; schedule.gc
    # makes no GC guess on a GPU trace without Python frames (Ascend host_ops have none).
    assert ran == {n.check for n in gpu.not_evaluated} - GPU_CHECKS - {"schedule.gc"}
    [gc] = [n for n in gpu.not_evaluated if n.check == "schedule.gc"]
    assert "no Python GC events and no Python frames" in gc.reason


def test_not_applicable_in_every_output(reports, tmp_path):
    npu, gpu = reports
    assert sorted(n["check"] for n in json.loads(report_json_text(npu))["not_applicable"]) == sorted(
        GPU_CHECKS
    )
    data = json.loads(report_json_text(gpu))
    jsonschema.Draft202012Validator(report_schema()).validate(data)
    assert sorted(n["check"] for n in data["not_applicable"]) == sorted(NPU_CHECKS)
    paths = write_reports(gpu, tmp_path, ("html", "xlsx"))
    html = paths["html"].read_text(encoding="utf-8")
    assert 'id="pa-not-applicable"' in html and "not applicable to GPU traces" in html
    sheet = load_workbook(paths["xlsx"])["Not applicable"]
    assert sorted(row[0] for row in sheet.iter_rows(min_row=2, values_only=True)) == sorted(NPU_CHECKS)


def test_not_applicable_in_chinese(profile, monkeypatch):
    monkeypatch.setattr(engine, "discover", lambda path: dataclasses.replace(discover(path), device="cpu"))
    report = run_analysis(profile, language="zh")
    assert {n.reason for n in report.not_applicable} == {"不适用于 CPU 跟踪数据"}
