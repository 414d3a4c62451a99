"""Computation checks: generated profiles with each fault (text and db), clean controls, hand-built
edge cases, the reference advisor's kernel_details fixtures and the shared corpus."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from advisor.checks.computation_ai_core_performance import ai_core_performance, cube_alignment, fa_dims
from advisor.checks.computation_aicpu import aicpu, op_advice, unsupported_dtypes
from advisor.checks.computation_base import cann_key, device_info, split_dtypes, step_basis, version_in
from advisor.checks.computation_block_dim import block_dim, utilisation
from advisor.checks.computation_dynamic_shape import dynamic_shape
from advisor.checks.computation_frequency import ai_core_frequency, kernel_mhz
from advisor.checks.computation_graph_fusion import graph_fusion
from advisor.checks.computation_operator_bound import operator_bound
from advisor.checks.registry import NotEvaluated, RankContext
from advisor.engine import run_analysis
from advisor.formats import discover, load_table
from advisor.formats.ascend_common.device_info import load_device_info
from advisor.formats.ascend_text.kernels import read_kernel_details
from advisor.formats.schema import conform
from advisor.model import RankInfo
from advisor.options import AnalysisOptions
from advisor.report.messages import Messages
from advisor.synth import SynthSpec, write_synth_profile

from .engine_fixtures import CORPUS, DB_CORPUS, TEXT_CORPUS, corpus_path

FAULTS = (
    "computation.aicpu",
    "computation.ai_core_frequency",
    "computation.dynamic_shape",
    "computation.block_dim",
    "computation.operator_bound",
)
COMPUTATION = AnalysisOptions(analysis_dimensions=("computation",))
FIXTURES = CORPUS / "ascend-reference-fixtures" / "ut" / "advisor"
NEW_PMU_CSV = FIXTURES / "compute_advice" / "data" / "kernel_details.csv"
OLD_PMU_CSV = FIXTURES / "advisor_backend" / "compute_advice" / "kernel_details.csv"
MESSAGES = Path(__file__).resolve().parents[1] / "advisor" / "report" / "messages"


# --- fixtures and helpers ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def faulty(tmp_path_factory):
    """Every computation fault, both exports of the same run, and ground_truth.json."""
    root = write_synth_profile(
        tmp_path_factory.mktemp("computation") / "faulty",
        SynthSpec(ranks=2, inject=FAULTS, seed=3, export="both"),
    )
    truth = json.loads((Path(root) / "ground_truth.json").read_text())
    return Path(root), {item["check"]: item for item in truth["injected"]}


@pytest.fixture(scope="module")
def faulty_db(tmp_path_factory):
    return write_synth_profile(
        tmp_path_factory.mktemp("computation") / "faulty_db",
        SynthSpec(ranks=2, inject=FAULTS, seed=3, export="db"),
    )


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    return write_synth_profile(tmp_path_factory.mktemp("computation") / "clean", SynthSpec(ranks=1, seed=5))


@pytest.fixture(scope="module")
def dispatch(tmp_path_factory):
    return write_synth_profile(
        tmp_path_factory.mktemp("computation") / "dispatch",
        SynthSpec(ranks=1, seed=5, inject=("schedule.operator_dispatch",)),
    )


# Tables of the files a rank holds beside its export: every computation check may declare them.
FILES_BESIDE_EXPORT = ("device_info", "ge_graph_ops")


def contexts(root: Path, needs: tuple[str, ...], export: str = "text") -> list[RankContext]:
    profile = discover(root)
    out = []
    for rank in profile.ranks:
        rank = dataclasses.replace(rank, format=f"ascend_{export}")
        names = {*needs, *FILES_BESIDE_EXPORT}
        tables = {name: load_table(name, rank, use_cache=False) for name in names}
        out.append(RankContext(profile, rank, tables, AnalysisOptions(), Messages("en")))
    return out


def hand_ctx(
    tables: dict[str, pd.DataFrame], path: Path = Path("/nonexistent"), **rank: object
) -> RankContext:
    info = RankInfo(0, path, "ascend_text", **rank)  # type: ignore[arg-type]
    found = {name: load_table(name, info, use_cache=False) for name in FILES_BESIDE_EXPORT}
    tables = {**found, **tables}
    return RankContext(None, info, tables, AnalysisOptions(), Messages("en"))  # type: ignore[arg-type]


def kernels(rows: list[dict]) -> pd.DataFrame:
    return conform(pd.DataFrame(rows), "kernels")


def rows_of(finding, index: int = 0) -> pd.DataFrame:
    evidence = finding.evidence[index]
    return pd.DataFrame(evidence.rows, columns=evidence.columns)


def by_check(report) -> dict:
    return {f.check: f for f in report.findings if f.dimension == "computation"}


# --- end to end on generated profiles --------------------------------------------------------------


def test_every_fault_found_text(faulty):
    root, _ = faulty
    found = by_check(run_analysis(root, options=COMPUTATION))
    assert set(FAULTS) <= set(found)
    assert found["computation.ai_core_frequency"].ranks == [0]
    for check in ("computation.aicpu", "computation.dynamic_shape", "computation.block_dim"):
        assert found[check].ranks == [0, 1]
    assert found["computation.operator_bound"].ranks == [0, 1]
    for finding in found.values():
        assert finding.estimated_gain_us is not None and finding.estimated_gain_us > 0
        assert finding.suggestions and finding.evidence


def test_every_fault_found_db(faulty_db):
    report = run_analysis(faulty_db, options=COMPUTATION)
    assert report.input.export == "db"
    found = by_check(report)
    assert set(FAULTS) <= set(found)
    assert found["computation.ai_core_frequency"].ranks == [0]


@pytest.mark.parametrize("export", ["text", "db"])
def test_aicpu_numbers(faulty, export):
    root, truth = faulty
    expected = truth["computation.aicpu"]["expected"]
    findings = [f for ctx in contexts(root, ("kernels",), export) for f in aicpu(ctx)]
    assert len(findings) == 2
    table = pd.concat([rows_of(f) for f in findings])
    assert set(table["op_type"]) == set(expected["op_types"])
    assert table["count"].sum() == expected["kernels"]
    assert table["total_us"].sum() == pytest.approx(expected["total_us"], abs=0.01)
    assert table["max_us"].max() == pytest.approx(expected["max_us"], abs=0.001)
    text = " ".join(findings[0].suggestions)
    assert "float64 (DOUBLE)" in text and "Cast" in text  # double_input_types
    assert "torch.where" in text  # NonZero / IndexPut replacements
    reasons = dict(zip(table["op_type"], table["reason"], strict=True))
    assert "float64" in reasons["Cast"]


@pytest.mark.parametrize("export", ["text", "db"])
def test_block_dim_numbers(faulty, export):
    root, truth = faulty
    expected = truth["computation.block_dim"]["expected"]
    findings = [f for ctx in contexts(root, ("kernels",), export) for f in block_dim(ctx)]
    table = pd.concat([rows_of(f) for f in findings])
    assert set(table["op_type"]) == set(expected["op_types"])
    assert table["count"].sum() == expected["kernels"]
    assert table["total_us"].sum() == pytest.approx(expected["total_us"], abs=0.05)
    dims = dict(zip(table["op_type"], table["block_dim"], strict=True))
    assert dims == expected["block_dims"]
    assert set(table["core_num"]) == {expected["ai_core_num"], expected["aiv_num"]}
    assert "info.json" in findings[0].description  # core counts from the device info
    # 20 of 24 cube cores and 40 of 48 vector cores: a sixth of the time is idle core time.
    assert table["lost_us"].sum() == pytest.approx(table["total_us"].sum() / 6, rel=1e-3)


@pytest.mark.parametrize("export", ["text", "db"])
def test_operator_bound_numbers(faulty, export):
    root, truth = faulty
    expected = truth["computation.operator_bound"]["expected"]
    findings = [f for ctx in contexts(root, ("kernels",), export) for f in operator_bound(ctx)]
    table = pd.concat([rows_of(f) for f in findings])
    assert set(table["op_type"]) == set(expected["op_types"])
    assert table["count"].sum() == expected["kernels"]
    ratios = table[[c for c in table.columns if c.endswith("_ratio")]]
    assert (ratios.max(axis=1) <= expected["max_ratio"]).all()
    busiest = ratios.max(axis=1)
    assert table["lost_us"].to_numpy() == pytest.approx(table["total_us"] * (1 - busiest / 0.8), rel=0.01)


@pytest.mark.parametrize("export", ["text", "db"])
def test_frequency_numbers(faulty, export):
    root, truth = faulty
    fault = truth["computation.ai_core_frequency"]
    expected = fault["expected"]
    ctx0, ctx1 = contexts(root, ("kernels", "freq"), export)
    if export == "text":  # the generator's db export lacks the run's opening/closing samples
        assert ai_core_frequency(ctx1) == []  # rank 1 runs at nominal clock
    (finding,) = ai_core_frequency(ctx0)
    ops = rows_of(finding)
    assert set(ops["min_mhz"]) == {expected["throttled_mhz"]}
    assert set(ops["nominal_mhz"]) == {expected["nominal_mhz"]}
    # Throttled in 2 of 3 steps: the per-launch mean drop is 2/3 x 700/1800 (ground truth); time
    # weighting gives the longer throttled launches more weight, never more than a full 700/1800 (the
    # generated db lacks the nominal opening sample, so there only the throttled steps are judged).
    assert ops["decrease_ratio"].between(expected["decrease_ratio"] - 0.01, 700 / 1800 + 1e-4).all()
    # Ground truth counts every op name, AI_CPU ones included; this check judges AI Core kernels only.
    assert len(ops) == expected["ops_over_threshold"] - len(
        truth["computation.aicpu"]["expected"]["op_types"]
    )
    # Independent estimate: AI Core kernels of the throttled steps, duration x (1 - 1100/1800), per step.
    k = ctx0.tables["kernels"]
    core = k[k["accelerator_core"].isin(["AI_CORE", "AI_VECTOR_CORE", "MIX_AIC", "MIX_AIV"])]
    throttled = core[core["step"].isin(fault["steps"])]
    expected_gain = throttled["duration_us"].sum() * (1 - 1100 / 1800) / 3
    assert finding.estimated_gain_us == pytest.approx(expected_gain, rel=0.01)
    assert finding.priority == "high"


@pytest.mark.parametrize("export", ["text", "db"])
def test_dynamic_shape_numbers(faulty, export):
    root, truth = faulty
    expected = truth["computation.dynamic_shape"]["expected"]
    findings = [f for ctx in contexts(root, ("kernels", "runtime_api"), export) for f in dynamic_shape(ctx)]
    assert len(findings) == 2
    summary = pd.concat([rows_of(f) for f in findings])
    assert summary["dynamic_kernels"].sum() == expected["dynamic_kernels"]
    assert (summary["dynamic_kernels"] == summary["kernels_with_op_state"]).all()
    assert summary["compile_calls"].sum() == expected["compile_events"]
    assert summary["compile_calls_per_step"].tolist() == [expected["compile_events_per_step"]] * 2
    assert summary["compile_us"].sum() == pytest.approx(expected["compile_total_us"], abs=0.01)
    assert findings[0].estimated_gain_us == pytest.approx(summary["compile_us"].iloc[0] / 3, abs=0.01)
    assert any("jit_compile=False" in s for s in findings[0].suggestions)
    assert any("HOST_CACHE_CAPACITY" in s for s in findings[0].suggestions)


def test_clean_run_has_no_computation_findings(clean):
    report = run_analysis(clean, options=COMPUTATION)
    assert by_check(report) == {}
    reasons = {n.check: n.reason for n in report.not_evaluated}
    assert "GE graph dump" in reasons["computation.graph_fusion"]
    for check in FAULTS:
        assert check not in reasons  # evaluated and clean


def test_compilation_of_static_operators_is_not_dynamic_shape(dispatch):
    (ctx,) = contexts(dispatch, ("kernels", "runtime_api"))
    assert (ctx.tables["runtime_api"]["name"] == "AscendCL@aclopCompileAndExecute").sum() > 0
    assert dynamic_shape(ctx) == []


# --- hand-built tables ------------------------------------------------------------------------------

BASE = {"step": 1, "start_ns": 1_000_000_000, "duration_us": 100.0, "name": "k", "op_type": "Add"}


def test_empty_tables():
    empty_k = kernels([])
    empty_f = conform(pd.DataFrame(), "freq")
    empty_c = conform(pd.DataFrame(), "runtime_api")
    for fn in (aicpu, block_dim, operator_bound, ai_core_performance):
        assert fn(hand_ctx({"kernels": empty_k})) == []
    with pytest.raises(NotEvaluated, match="AI Core frequency samples"):
        ai_core_frequency(hand_ctx({"kernels": empty_k, "freq": empty_f}))
    with pytest.raises(NotEvaluated, match="OP State"):
        dynamic_shape(hand_ctx({"kernels": empty_k, "runtime_api": empty_c}))


def test_nan_and_zero_durations_do_not_crash():
    rows = [
        {**BASE, "accelerator_core": "AI_CPU", "duration_us": np.nan, "op_type": "NonZero"},
        {**BASE, "accelerator_core": "AI_CPU", "duration_us": 0.0, "op_type": "NonZero"},
        {**BASE, "accelerator_core": "AI_CORE", "duration_us": 0.0, "block_dim": 5, "aic_mac_ratio": 0.1,
         "aic_mte2_ratio": 0.1},
        {**BASE, "accelerator_core": "AI_CORE", "duration_us": np.nan, "block_dim": 0},
    ]  # fmt: skip
    k = kernels(rows)
    for fn in (aicpu, block_dim, operator_bound, ai_core_performance):
        assert fn(hand_ctx({"kernels": k})) == []
    freq = conform(pd.DataFrame({"ts_ns": [0, 10], "mhz": [np.nan, 0.0]}), "freq")
    with pytest.raises(NotEvaluated):
        ai_core_frequency(hand_ctx({"kernels": k, "freq": freq}))


def test_missing_columns_are_not_evaluated():
    k = kernels([{**BASE, "accelerator_core": "AI_CORE", "duration_us": 500.0}])  # no PMU, no OP State
    with pytest.raises(NotEvaluated, match="PMU"):
        operator_bound(hand_ctx({"kernels": k}))
    with pytest.raises(NotEvaluated, match="PMU"):
        ai_core_performance(hand_ctx({"kernels": k.assign(op_type="MatMulV2")}))
    cann = conform(
        pd.DataFrame({"name": ["AscendCL@aclopCompileAndExecute"], "dur_us": [500.0]}), "runtime_api"
    )
    with pytest.raises(NotEvaluated, match="OP State"):
        dynamic_shape(hand_ctx({"kernels": k, "runtime_api": cann}))


def test_aicpu_threshold_and_total_per_step():
    short = [
        {**BASE, "accelerator_core": "AI_CPU", "op_type": "Unique", "duration_us": 5.0, "step": s}
        for s in (1, 2)
    ]
    assert aicpu(hand_ctx({"kernels": kernels(short)})) == []  # 5 µs per step, under 20
    many = short * 3  # 15 µs per step ... still under
    assert aicpu(hand_ctx({"kernels": kernels(many)})) == []
    many = short * 5  # 25 µs per step: flagged although no kernel reaches 20 µs
    # One after the other, 10 µs apart: a 95 µs step of which the AI_CPU kernels take 25 µs.
    many = [{**k, "start_ns": k["start_ns"] + 10_000 * (i // 2)} for i, k in enumerate(many)]
    (finding,) = aicpu(hand_ctx({"kernels": kernels(many)}))
    assert finding.estimated_gain_us == pytest.approx(25.0)
    # Nothing saves more than the step: kernels all launched at once span 5 µs, and so does the gain.
    (finding,) = aicpu(hand_ctx({"kernels": kernels(short * 5)}))
    assert finding.estimated_gain_us == pytest.approx(5.0)
    assert "torch.unique" in " ".join(finding.suggestions)


def test_frequency_is_time_weighted_over_each_kernel():
    freq = conform(pd.DataFrame({"ts_ns": [0, 10_000], "mhz": [1800.0, 900.0]}), "freq")
    k = kernels(
        [
            {**BASE, "start_ns": 5_000, "duration_us": 10.0, "accelerator_core": "AI_CORE"},  # half, half
            {**BASE, "start_ns": 20_000, "duration_us": 0.0, "accelerator_core": "AI_CORE"},  # zero length
            {**BASE, "start_ns": -5_000, "duration_us": 2.0, "accelerator_core": "AI_CORE"},  # before 1st
        ]
    )
    mhz = kernel_mhz(k, freq)
    assert mhz[:2].tolist() == pytest.approx([1350.0, 900.0]) and np.isnan(mhz[2])


def test_frequency_nominal_from_device_info(tmp_path):
    device = tmp_path / "PROF_000001_20250101000000000_ABCDEFGH" / "device_0"
    device.mkdir(parents=True)
    (device / "info.json.0").write_text(json.dumps({"DeviceInfo": [{"ai_core_num": 20, "aiv_num": 40,
                                                                     "aic_frequency": "1850"}]}))  # fmt: skip
    (device / "info.json.0.done").write_text("")
    info = device_info(load_device_info(RankInfo(0, tmp_path, "ascend_text")))
    assert (info.ai_core_num, info.aiv_num, info.aic_mhz) == (20, 40, 1850.0)
    # Samples all at 1800: no drop against the highest sample, a 2.7 % drop against 1850 (under 5 %).
    freq = conform(pd.DataFrame({"ts_ns": [0], "mhz": [1700.0]}), "freq")
    k = kernels([{**BASE, "start_ns": 10, "duration_us": 1000.0, "accelerator_core": "AI_CORE"}])
    (finding,) = ai_core_frequency(hand_ctx({"kernels": k, "freq": freq}, tmp_path))
    assert "info.json" in finding.description
    assert finding.estimated_gain_us == pytest.approx(1000.0 * (1 - 1700 / 1850), rel=1e-6)
    assert ai_core_frequency(hand_ctx({"kernels": k, "freq": freq})) == []  # nominal = observed max


def test_block_dim_core_counts_without_device_info():
    rows = [{**BASE, "accelerator_core": "AI_CORE", "block_dim": 20, "duration_us": 300.0}] * 3
    rows += [{**BASE, "accelerator_core": "AI_CORE", "block_dim": 12, "duration_us": 100.0}]
    k = kernels(rows)
    # A 910B family name: 20 divides most AI_CORE time, so this is a 20-core chip: only 12 is flagged.
    (finding,) = block_dim(hand_ctx({"kernels": k}, device_type="Ascend910B"))
    table = rows_of(finding)
    assert table["block_dim"].tolist() == [12] and table["core_num"].tolist() == [20]
    assert "inferred" in finding.description
    (finding,) = block_dim(hand_ctx({"kernels": k}, device_type="Ascend910B1"))  # model table: 24 cores
    assert sorted(rows_of(finding)["block_dim"]) == [12, 20]
    assert utilisation(np.array([20.0, 50.0, 48.0]), np.array([24.0, 24.0, 48.0])).tolist() == pytest.approx(
        [20 / 24, 50 / 72, 1.0]
    )


def test_block_dim_mix_aic_filled_by_vector_blocks():
    rows = [
        {**BASE, "accelerator_core": "MIX_AIC", "block_dim": 20, "mix_block_dim": 48, "duration_us": 300.0},
        {**BASE, "accelerator_core": "MIX_AIC", "block_dim": 24, "mix_block_dim": 0, "duration_us": 300.0},
        {**BASE, "accelerator_core": "MIX_AIV", "block_dim": 7, "duration_us": 300.0},  # not judged
        {**BASE, "accelerator_core": "AI_VECTOR_CORE", "block_dim": 7, "duration_us": 10.0},  # too short
    ]
    assert block_dim(hand_ctx({"kernels": kernels(rows)}, device_type="Ascend910B1")) == []


def test_operator_bound_examines_every_row():
    bound = {**BASE, "accelerator_core": "AI_CORE", "aic_mac_ratio": 0.9, "aic_mte2_ratio": 0.3}
    unbound = {
        **BASE,
        "accelerator_core": "AI_CORE",
        "aic_mac_ratio": 0.5,
        "aic_mte2_ratio": 0.6,
        "op_type": "X",
    }
    short = {**unbound, "duration_us": 10.0}
    (finding,) = operator_bound(hand_ctx({"kernels": kernels([bound, short, unbound])}))  # first row bound
    table = rows_of(finding)
    assert table["op_type"].tolist() == ["X"] and table["count"].tolist() == [1]
    assert table["lost_us"].iloc[0] == pytest.approx(100.0 * (1 - 0.6 / 0.8))


def test_dynamic_binary_kernels_without_compilation_are_fine():
    k = kernels([{**BASE, "accelerator_core": "AI_CORE", "op_state": "dynamic"}])
    cann = conform(pd.DataFrame({"name": ["AscendCL@aclnnAdd"], "dur_us": [5.0]}), "runtime_api")
    assert dynamic_shape(hand_ctx({"kernels": k, "runtime_api": cann})) == []


def test_versions_and_dtype_rules():
    order = ["6.3.RC2", "7.0.RC1", "7.0.0", "8.0.RC1", "8.0.RC2", "8.0.0", "8.1.RC1"]
    assert sorted(order, key=cann_key) == order
    assert version_in("8.0.RC1", "7.0.0") and not version_in("7.0.RC1", "7.0.0")
    assert version_in(None, "7.0.0") and not version_in(None, None, "7.0.0")  # unknown = newest
    assert split_dtypes("DT_BF16;FLOAT;DOUBLE;INT64") == ["bf16", "float32", "float64", "int64"]
    assert unsupported_dtypes("Cast", ["float64"], ["float32"], "8.0.RC1") == ["float64"]
    assert unsupported_dtypes("Add", ["uint16"], ["uint16"], "8.0.0") == ["uint16"]
    assert unsupported_dtypes("Add", ["uint16"], ["uint16"], "7.0.RC1") == []
    assert op_advice("ArgMin", "6.3.RC2") == "argmin" and op_advice("ArgMin", "8.0.RC1") is None
    assert op_advice("IndexPutV2", "8.0.RC1") == "index_put"


def test_step_basis():
    k = kernels(
        [
            {**BASE, "step": 1, "start_ns": 0, "duration_us": 10.0},
            {**BASE, "step": 1, "start_ns": 90_000, "duration_us": 10.0},
            {**BASE, "step": 2, "start_ns": 200_000, "duration_us": 300.0},
        ]
    )
    basis = step_basis(k)
    assert (basis.n_steps, basis.step_us) == (2, pytest.approx(200.0))
    assert step_basis(kernels([])).step_us is None


# --- shapes and the reference fixtures -------------------------------------------------------------


def test_shape_rules():
    assert cube_alignment("8192,15365;8192,4096", "DT_BF16;DT_BF16", 256) == ["input0 (15365 × 2 B)"]
    assert cube_alignment("32,1000;1000,4096", "FLOAT;FLOAT", 256) == ["input0 (1000 × 4 B)"]
    assert cube_alignment("81920,4096;8192,512", "DT_BF16;DT_BF16", 256) == []
    assert fa_dims("fa", "4096,2,512;4096,2,512", "2,4,4096,8;2,4,4096,8") == (128, 4096)  # SBH, N=4
    assert fa_dims("fa_varlen", "4096,2,511;4096,2,512", "2,3,4096,8") == (511, None)  # TND
    assert fa_dims("fa", "2,8,1000,64", "2,8,1000,8") == (64, 1000)  # BNSD


def test_ai_core_performance_on_reference_fixture():
    k = read_kernel_details(corpus_path(NEW_PMU_CSV))
    (finding,) = ai_core_performance(hand_ctx({"kernels": k}))
    table = rows_of(finding).set_index("op_name")
    v5 = table.loc["aclnnMatmul_MatMulV3Common_MatMulV5"]
    assert "15365" in v5["issues"]
    assert table.loc["aclnnMatmul_MatMulCommon_MatMulV2", "bound"] == "mac+mte2"  # mac .82, mte2 .966
    varlen = table.loc["aclnnFlashAttentionScore_FlashAttentionScore_FlashAttentionScore_varlen"]
    assert "D = 511" in varlen["issues"]
    fwd = table.loc["aclnnFlashAttentionScore_FlashAttentionScore_FlashAttentionScore"]
    assert fwd["bound"] == "mte2" and fwd["issues"] == ""  # D = 128, S = 4096: aligned
    grad = table.loc["aclnnFlashAttentionScoreGrad_FlashAttentionScoreGrad_FlashAttentionScoreGrad"]
    assert grad["optimisation_space"] == pytest.approx(1 - 0.523 / 0.75, abs=0.01)  # fixpipe is closest
    adds = rows_of(finding)[rows_of(finding)["op_type"] == "Add"]
    assert set(adds["bound"]) == {
        "vec+mte2+mte3",
        "",
    }  # the big Adds are bound; the 1.5 µs ones are too short
    assert "Add" not in finding.description  # … so they do not make the finding


def test_operator_bound_on_reference_fixtures():
    old = read_kernel_details(corpus_path(OLD_PMU_CSV))
    with pytest.raises(NotEvaluated, match="mte"):
        operator_bound(hand_ctx({"kernels": old}))  # ArithmeticUtilization set: no memory-pipe ratios
    new = read_kernel_details(corpus_path(NEW_PMU_CSV))
    # Every kernel here is a MatMul, FlashAttention or vector one: ai_core_performance judges them
    # (one row per cause); FlashAttentionScoreGrad keeps every pipe near 0.5 and shows there.
    assert operator_bound(hand_ctx({"kernels": new})) == []
    (finding,) = ai_core_performance(hand_ctx({"kernels": new}))
    table = rows_of(finding)
    grad = table[table["op_type"] == "FlashAttentionScoreGrad"]
    assert len(grad) and (grad["optimisation_space"] > 0.1).all()


def test_aicpu_on_old_fixture_uses_cann_hint():
    k = read_kernel_details(corpus_path(OLD_PMU_CSV))
    cpu = k[k["accelerator_core"] == "AI_CPU"]
    hinted = dataclasses.replace(hand_ctx({"kernels": k}), options=AnalysisOptions(cann_version="8.0.RC1"))
    findings = aicpu(hinted)
    if cpu["duration_us"].max() >= 20 or cpu["duration_us"].sum() >= 20:
        (finding,) = findings
        assert rows_of(finding)["count"].sum() == len(cpu)
        assert "version hint 8.0.RC1" in finding.description
        # No hint given (the default): the advice says it assumes a recent CANN, no version made up.
        (unhinted,) = aicpu(hand_ctx({"kernels": k}))
        assert "no version hint was given" in unhinted.description and "8.0.RC1" not in unhinted.description
    else:
        assert findings == []


# --- graph fusion -----------------------------------------------------------------------------------

GRAPH = """graph {
  name: "g"
  op {
    name: "bmm1"
    type: "BatchMatMulV2"
    input: "q:0"
    attr { key: "x" value { s: "y" } }
    input_desc { name: "nested" }
  }
  op {
    name: "scale"
    type: "Mul"
    input: "bmm1:0"
    input: "ctrl:-1"
  }
  op {
    name: "softmax"
    type: "SoftmaxV2"
    input: "scale:0"
  }
  op {
    name: "bmm2"
    type: "BatchMatMulV2"
    input: "softmax:0"
    input: "v:0"
  }
}
"""


def test_graph_fusion(tmp_path):
    times = {"bmm1": 50.0, "scale": 10.0, "softmax": 30.0, "bmm2": 60.0}
    k = kernels([{**BASE, "name": n, "duration_us": d} for n, d in times.items()])
    with pytest.raises(NotEvaluated, match="DUMP_GE_GRAPH"):
        graph_fusion(hand_ctx({"kernels": k}, tmp_path))
    (tmp_path / "ge_proto_00001_Build.txt").write_text(GRAPH)
    (finding,) = graph_fusion(hand_ctx({"kernels": k}, tmp_path))
    table = rows_of(finding)
    assert table["op_names"].tolist() == ["bmm1 → scale → softmax → bmm2"]
    assert table["saved_us"].tolist() == [90.0]  # all but the 60 µs MatMul
    assert "npu_fusion_attention" in " ".join(finding.suggestions)
    # The last dump in path order is the one read; one without any op says so, naming it.
    (tmp_path / "zz_graphs" / "deeper").mkdir(parents=True)
    (tmp_path / "zz_graphs" / "deeper" / "ge_proto_00002_Build.txt").write_text("graph {\n}\n")
    ops = load_table("ge_graph_ops", RankInfo(0, tmp_path, "ascend_text"), use_cache=False)
    assert ops["file"].tolist() == ["ge_proto_00002_Build.txt"] and ops["name"].isna().all()
    assert ops.attrs["source"] == "zz_graphs/deeper/ge_proto_00002_Build.txt"
    with pytest.raises(NotEvaluated, match=r"ge_proto_00002_Build\.txt.*no op"):
        graph_fusion(hand_ctx({"kernels": k}, tmp_path))


# --- messages and the shared corpus ------------------------------------------------------------------


def test_messages_have_chinese_translations():
    for en in sorted((MESSAGES / "en").glob("computation_*.json")):
        zh = MESSAGES / "zh" / en.name
        assert set(json.loads(en.read_text())) == set(json.loads(zh.read_text())), en.name


def test_corpus_text():
    report = run_analysis(corpus_path(TEXT_CORPUS), options=COMPUTATION)
    found = by_check(report)
    # 187 compute kernels marked dynamic and 19 aclopCompileAndExecute in the one profiled step.
    dyn = found["computation.dynamic_shape"]
    summary = rows_of(dyn)
    assert summary["dynamic_kernels"].tolist() == [187] and summary["compile_calls"].tolist() == [19]
    (ctx, _) = contexts(TEXT_CORPUS, ("kernels", "freq"))
    assert ai_core_frequency(ctx) == []  # the counter stays at 1800 MHz
    assert "computation.aicpu" not in found  # no AI_CPU kernel in this run
    bd = found["computation.block_dim"]
    assert "24 cube" in bd.description and "inferred" in bd.description
    # MatMulV2/Conv2D run 16 blocks on 24 cube cores: a third of their core time idle.
    table = rows_of(bd)
    assert table[table["block_dim"] == 16]["core_utilisation"].tolist() == pytest.approx(
        [2 / 3] * 6, abs=1e-3
    )


def test_corpus_db():
    report = run_analysis(corpus_path(DB_CORPUS), options=COMPUTATION)
    reasons = {n.check: n.reason for n in report.not_evaluated}
    assert "OP State" in reasons["computation.dynamic_shape"]  # the db export has no opState
    found = by_check(report)
    assert "Ascend910B" in found["computation.block_dim"].description
    assert "computation.ai_core_frequency" not in found
