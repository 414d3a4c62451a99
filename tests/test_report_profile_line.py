"""What the report, the CLI and the panel say was analysed: built from the model (ProfileSet, RankInfo),
in English and Chinese, for Ascend data and for PyTorch profiler (Kineto) traces."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import jsonschema
import pytest
from openpyxl import load_workbook

from advisor.formats import report_input_fields
from advisor.model import ProfileSet, RankInfo, device_counts
from advisor.options import AnalysisOptions, version_hints
from advisor.report.html import render_html, version_lines
from advisor.report.jsonout import report_json_text, report_schema
from advisor.report.messages import Messages, describe_input
from advisor.report.model import InputInfo, Report
from advisor.report.xlsx import write_xlsx

A100 = "NVIDIA A100-SXM4-80GB"
H100 = "NVIDIA H100 80GB HBM3"


def kineto_profile(
    devices: list[tuple[str, str | None]], versions: dict[str, str] | None = None
) -> ProfileSet:
    """A PyTorch profiler profile as the kineto format's discovery builds it: one rank per trace."""
    ranks = [
        RankInfo(rank=i, path=Path(f"/t/rank{i}.pt.trace.json.gz"), format="kineto", steps=(1, 2, 3),
                 versions=dict(versions or {}), device=device, device_type=model)
        for i, (device, model) in enumerate(devices)
    ]  # fmt: skip
    device = "gpu" if any(d == "gpu" for d, _ in devices) else "cpu"
    return ProfileSet(Path("/t"), "kineto", ranks, [1, 2, 3], device=device, versions=dict(versions or {}))


def kineto_input(profile: ProfileSet) -> InputInfo:
    """The report's input, mapped from the model as the engine maps it."""
    ranks = [r.rank for r in profile.ranks]
    return InputInfo(
        str(profile.root), None, ranks=ranks, steps=profile.steps, **report_input_fields(profile)
    )


def kineto_line(profile: ProfileSet, language: str = "en") -> str:
    return describe_input(Messages(language), kineto_input(profile))


def test_a_gpu_trace_names_the_device_model_and_counts_the_ranks():
    profile = kineto_profile([("gpu", A100)] * 8)
    assert kineto_line(profile) == f"PyTorch profiler trace (GPU: {A100} ×8), 8 ranks, steps 1–3"
    assert kineto_line(profile, "zh") == f"PyTorch Profiler trace（GPU：{A100} ×8），8 个 rank，step 1–3"
    one = kineto_profile([("gpu", A100)])
    assert kineto_line(one) == f"PyTorch profiler trace (GPU: {A100}), 1 rank, steps 1–3"


def test_a_cpu_trace_says_cpu_whatever_the_number_of_ranks():
    assert kineto_line(kineto_profile([("cpu", None)])) == "PyTorch profiler trace (CPU), 1 rank, steps 1–3"
    two = kineto_profile([("cpu", None)] * 2)
    assert kineto_line(two) == "PyTorch profiler trace (CPU), 2 ranks, steps 1–3"
    assert kineto_line(two, "zh") == "PyTorch Profiler trace（CPU），2 个 rank，step 1–3"


def test_mixed_device_models_and_kinds_are_each_listed():
    mixed = kineto_profile([("gpu", A100), ("gpu", H100), ("gpu", A100), ("gpu", H100)])
    assert kineto_line(mixed) == f"PyTorch profiler trace (GPU: {A100} ×2, {H100} ×2), 4 ranks, steps 1–3"
    assert kineto_line(mixed, "zh").startswith(f"PyTorch Profiler trace（GPU：{A100} ×2、{H100} ×2）")
    odd = kineto_profile([("gpu", A100), ("gpu", None), ("gpu", None), ("cpu", None)])
    assert kineto_line(odd) == (
        f"PyTorch profiler trace (GPU: {A100}, model not recorded ×2; CPU), 4 ranks, steps 1–3"
    )
    unnamed = kineto_profile([("gpu", None), ("gpu", None)])
    assert kineto_line(unnamed) == "PyTorch profiler trace (GPU ×2), 2 ranks, steps 1–3"


def test_ascend_data_keeps_its_wording():
    ranks = [
        RankInfo(rank=i, path=Path(f"/a/r{i}_ascend_pt"), format="ascend_text", steps=(12, 13, 14),
                 versions={"cann": "8.0.RC1"}, device_type="Ascend910B")
        for i in range(2)
    ]  # fmt: skip
    profile = ProfileSet(Path("/a"), "ascend_text", ranks, [12, 13, 14], versions={"cann": "8.0.RC1"})
    fields = report_input_fields(profile)
    assert fields["devices"] == device_counts(ranks) and fields["versions"] == {"cann": "8.0.RC1"}
    assert (fields["format"], fields["device"], fields["cann_version"]) == ("ascend_text", "npu", "8.0.RC1")
    info = InputInfo(str(profile.root), None, ranks=[0, 1], steps=profile.steps, **fields)
    assert describe_input(Messages("en"), info) == "2 ranks, text export, steps 12–14"
    assert describe_input(Messages("zh"), info) == "2 个 rank，文本格式导出，step 12–14"


def test_the_versions_a_trace_records_are_listed_by_name_and_hints_left_out():
    versions = {"cuda_runtime": "12040", "cuda_driver": "12020", "cupti": "21", "nccl": "2.20.5"}
    info = kineto_input(kineto_profile([("gpu", A100)] * 2, versions))
    report = Report(input=info, tool_version="t", version_hints={})
    assert version_lines(report, Messages("en")) == [
        "CUDA runtime 12040 (recorded in the data)",
        "CUDA driver 12020 (recorded in the data)",
        "CUPTI 21 (recorded in the data)",
        "NCCL 2.20.5 (recorded in the data)",
    ]
    cpu = Report(input=kineto_input(kineto_profile([("cpu", None)])), tool_version="t")
    assert version_lines(cpu, Messages("en")) == ["none recorded in the data"]
    assert version_lines(cpu, Messages("zh")) == ["数据中未记录版本"]
    html = render_html(report)
    assert f"PyTorch profiler trace (GPU: {A100} ×2), 2 ranks, steps 1–3" in html
    assert "CANN" not in html and "torch_npu" not in html


def test_the_json_and_xlsx_headers_say_what_was_analysed(tmp_path):
    versions = {"cuda_runtime": "12040", "nccl": "2.20.5"}
    report = Report(input=kineto_input(kineto_profile([("gpu", A100)] * 8, versions)), tool_version="t")
    data = json.loads(report_json_text(report))
    jsonschema.Draft202012Validator(report_schema()).validate(data)
    assert data["input"]["description"] == f"PyTorch profiler trace (GPU: {A100} ×8), 8 ranks, steps 1–3"
    assert data["input"]["devices"] == [{"device": "gpu", "type": A100, "ranks": 8}]
    assert data["input"]["versions"] == versions and data["input"]["device"] == "gpu"
    assert data["input"]["format"] == "kineto" and data["input"]["cann_version"] is None
    zh = json.loads(report_json_text(replace(report, language="zh")))
    assert zh["input"]["description"] == f"PyTorch Profiler trace（GPU：{A100} ×8），8 个 rank，step 1–3"
    book = load_workbook(write_xlsx(report, tmp_path / "r.xlsx"))
    rows = [[c.value for c in row] for row in book["Input"].iter_rows()]
    assert rows == [
        ["field", "value"],
        ["Input", "/t"],
        ["Profile", f"PyTorch profiler trace (GPU: {A100} ×8), 8 ranks, steps 1–3"],
        ["Ranks", "0–7"],
        ["Steps", "1–3"],
        ["Versions", "CUDA runtime 12040 (recorded in the data)\nNCCL 2.20.5 (recorded in the data)"],
    ]


@pytest.mark.parametrize("device", ["gpu", "cpu"])
def test_version_hints_apply_to_npu_profiles_only(device):
    options = AnalysisOptions(cann_version="8.0.RC1", torch_version="")
    assert version_hints(options, "npu") == ({"cann_version": "8.0.RC1", "torch_version": ""}, [])
    assert version_hints(options, device) == ({}, [("--cann-version", "8.0.RC1")])
    both = AnalysisOptions(cann_version="8.0.RC1", torch_version="2.1.0")
    assert version_hints(both, device)[1] == [("--cann-version", "8.0.RC1"), ("--torch-version", "2.1.0")]
    assert version_hints(AnalysisOptions(), device) == ({}, [])
