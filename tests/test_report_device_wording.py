"""GPU and CPU reports speak of the GPU or of the main thread, never of Ascend: no NPU, CANN, torch_npu,
AI Core, Ascend file name or "the device" in what a finding or a not-evaluated reason says, in English
and Chinese, on generated PyTorch profiler runs (a slow rank and a slow DataLoader) analysed alone
(comparison of the slowest rank with the fastest) and against a healthy baseline run."""

from __future__ import annotations

import re
import string

import pytest

from advisor.engine import run_analysis
from advisor.report.messages import Messages
from advisor.report.model import Report
from advisor.synth.kineto import KinetoSpec, write_kineto_traces

ASCEND_WORDS = re.compile(
    r"NPU|CANN|Ascend|昇腾|torch_npu|AI Core|AI_CPU|npu-smi|HCCL|TASK_QUEUE|ASCEND_|Overlap Analysis"
    r"|kernel_details|step_trace_time|trace_view\.json|communication\.json|profiler_metadata|profiler_level"
)
# On a GPU trace "the device" is the GPU, on a CPU trace the main thread: a report names which.
DEVICE_WORDS = re.compile(r"\bthe device\b|设备", re.IGNORECASE)
FAULTS = ("cluster.slow_rank", "dataloader.slow")


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[tuple[str, str, str], Report]:
    """(device, language, "alone" / "baseline") -> the report of the faulty run of that device."""
    out = {}
    for device in ("cuda", "cpu"):
        folder = tmp_path_factory.mktemp(device)
        faulty = write_kineto_traces(folder / "faulty", KinetoSpec(ranks=2, device=device, inject=FAULTS))
        healthy = write_kineto_traces(folder / "healthy", KinetoSpec(ranks=2, device=device))
        for language in ("en", "zh"):
            out[device, language, "alone"] = run_analysis(faulty, language=language)
            out[device, language, "baseline"] = run_analysis(faulty, compare_path=healthy, language=language)
    return out


def _texts(report: Report) -> list[tuple[str, str]]:
    """(check, text) for every title, description line, suggestion and not-evaluated reason."""
    said = []
    for f in report.findings:
        lines = [f.title, *f.description.splitlines(), *f.suggestions]
        said += [(f.check, line) for line in lines]
    said += [(n.check, n.reason) for n in report.not_evaluated]
    return said


@pytest.mark.parametrize("device", ["cuda", "cpu"])
@pytest.mark.parametrize("language", ["en", "zh"])
@pytest.mark.parametrize("mode", ["alone", "baseline"])
def test_no_ascend_wording_on_gpu_and_cpu_reports(reports, device, language, mode):
    report = reports[device, language, mode]
    said = _texts(report)
    assert [(c, t) for c, t in said if ASCEND_WORDS.search(t)] == []
    assert [(c, t) for c, t in said if DEVICE_WORDS.search(t)] == []


def test_the_wording_was_checked_on_the_findings_that_carried_it(reports):
    """The runs above must hold the findings whose base wording is Ascend's, or the test proves nothing."""
    found = {key: {f.check for f in r.findings} for key, r in reports.items()}
    for language in ("en", "zh"):
        assert {"dataloader.slow", "overall.idle", "overall.summary"} <= found["cuda", language, "alone"]
        compared = found["cuda", language, "baseline"]
        assert {"comparison.kernel", "comparison.api", "comparison.regression"} <= compared
        cpu_alone = found["cpu", language, "alone"]
        assert {"dataloader.slow", "cluster.slow_rank", "comparison.api", "overall.summary"} <= cpu_alone
        assert "comparison.regression" in found["cpu", language, "baseline"]


def test_gpu_and_cpu_titles_name_the_gpu_and_the_main_thread(reports):
    def title(key: tuple[str, str, str], check: str) -> str:
        return next(f.title for f in reports[key].findings if f.check == check)

    assert "leaves the GPU idle" in title(("cuda", "en", "alone"), "dataloader.slow")
    assert "使 GPU 每 step 空闲" in title(("cuda", "zh", "alone"), "dataloader.slow")
    assert "holds up the training loop" in title(("cpu", "en", "alone"), "dataloader.slow")
    assert title(("cuda", "en", "alone"), "overall.summary").startswith("The GPU is idle (free time) for")
    assert title(("cpu", "zh", "alone"), "dataloader.slow").startswith(
        "单进程 DataLoader（num_workers=0）使训练循环"
    )
    assert title(("cuda", "en", "baseline"), "comparison.api").startswith("rank 1 leaves the GPU idle")
    assert title(("cpu", "en", "baseline"), "comparison.regression").endswith("main thread runs no operator)")


def test_cpu_traces_have_no_kernel_comparison(reports):
    for language in ("en", "zh"):
        for mode in ("alone", "baseline"):
            report = reports["cpu", language, mode]
            assert "comparison.kernel" in {n.check for n in report.not_applicable}
            assert "comparison.kernel" not in {n.check for n in report.not_evaluated}


def test_ascend_keeps_its_own_wording():
    npu = Messages("en").for_device("npu")
    assert "near its NPU" in npu.t_list("comparison.api.suggestions.ranks.slower_calls")[0]
    assert "kernel_details.csv" in npu.t("comparison.kernel.no_data")
    assert npu.t("overall.summary.component.free") == "free time (device idle)"


def _placeholders(template: str | list[str]) -> set[str]:
    items = template if isinstance(template, list) else [template]
    return {name for text in items for _, name, _, _ in string.Formatter().parse(text) if name}


@pytest.mark.parametrize("language", ["en", "zh"])
def test_every_device_variant_is_free_of_ascend_words_and_fills_its_base_placeholders(language):
    strings = Messages(language)._strings
    # A variant replaces its base key; "report.device.gpu" and the like are names of their own.
    variants = {k: v for k, v in strings.items() if k.endswith((".gpu", ".cpu")) and k[:-4] in strings}
    assert len(variants) > 80
    texts = {k: " ".join(v) if isinstance(v, list) else v for k, v in variants.items()}
    assert {k: t for k, t in texts.items() if ASCEND_WORDS.search(t)} == {}
    for key, template in variants.items():
        base = strings[key[:-4]]
        assert type(template) is type(base), key
        assert _placeholders(template) == _placeholders(base), key
