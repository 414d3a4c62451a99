"""The generator's healthy controls: realistic PMU ratios, the LLM workload, pipeline parallelism,
Level0 exports and a two-node job. Each is generated in both exports, checked on the raw files (the
helpers of test_synth.py), read back by the readers (text and db agree) and analysed without errors.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import time
from pathlib import Path

import pandas as pd
import pytest

from advisor.engine import run_analysis
from advisor.errors import InputError
from advisor.formats import discover, load_table
from advisor.synth import SynthSpec, write_synth_profile
from advisor.synth.level0 import ANALYSIS_TABLES, KERNEL_COLUMNS, LEVEL1_ONLY_FILES, PROFILER_TABLES
from advisor.synth.pmu import CUBE_PIPES, RANGES, VECTOR_PIPES

from .test_profiles_parity import TABLES, assert_exports_agree
from .test_synth import (
    AFFINITY_ATEN,
    OUTPUT_FILES,
    STOCK_OPTIMIZERS,
    Rank,
    assert_events_nest,
    assert_kernels_launched,
    assert_op_statistic_aggregates,
    assert_step_trace_matches_trace,
    block_dim_flagged,
    ns,
    ranks_of,
    synth,
    truth_of,
)

LEVEL0_DB_ONLY = frozenset({"task_id", "stream_id", "mix_block_dim"})
LEVEL0_ABSENT = ("comm_ops", "comm_bandwidth", "comm_packets", "comm_matrix", "runtime_api", "api_statistic")
SPECS = {
    "llm": dict(workload="llm", steps=(1, 2), export="both"),
    "pp_cnn": dict(ranks=4, pipeline_parallel=2, microbatches=8, steps=(1, 2), export="both"),
    "pp_llm": dict(workload="llm", pipeline_parallel=2, microbatches=4, steps=(1, 2), export="both"),
    "level0": dict(
        workload="llm",
        pipeline_parallel=2,
        microbatches=4,
        steps=(1,),
        export="both",
        profiler_level="Level0",
    ),
    "realistic_cnn": dict(pmu="realistic", steps=(1, 2), export="both"),
    "two_node": dict(workload="llm", ranks=4, ranks_per_node=2, microbatches=1, steps=(1, 2), export="both"),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("workloads")
    return {name: synth(root, name, **spec) for name, spec in SPECS.items()}


def step_rows(r: Rank) -> list[dict[str, float]]:
    """step_trace_time.csv rows in µs, with the step (computing + not overlapped + free)."""
    rows = []
    for row in r.csv("step_trace_time.csv"):
        values = {k: float(v) for k, v in row.items()}
        values["step"] = values["Computing"] + values["Communication(Not Overlapped)"] + values["Free"]
        rows.append(values)
    return rows


def share(r: Rank, column: str) -> float:
    rows = step_rows(r)
    return sum(row[column] / row["step"] for row in rows) / len(rows)


def comm_ops(r: Rank, section: str) -> dict[str, dict]:
    return {
        key: op
        for step in r.json("communication.json").values()
        for key, op in step[section].items()
        if key != "Total Op Info"
    }


# -- the options ----------------------------------------------------------------------------------


def test_defaults_and_validation():
    spec = SynthSpec()
    assert (spec.workload, spec.pmu_mode, spec.microbatch_count, spec.profiler_level) == (
        "cnn",
        "ideal",
        1,
        "Level1",
    )
    llm = SynthSpec(workload="llm")
    assert (llm.pmu_mode, llm.microbatch_count) == ("realistic", 8)
    assert SynthSpec(workload="llm", pmu="ideal").pmu_mode == "ideal"
    for bad in (
        {"workload": "rnn"},
        {"pmu": "exact"},
        {"profiler_level": "Level2"},
        {"microbatches": 0},
        {"layers": 6, "ranks": 4, "pipeline_parallel": 4},
    ):
        with pytest.raises(ValueError):
            SynthSpec(**bad)
    with pytest.raises(ValueError, match="pipeline_parallel"):
        write_synth_profile(Path("/nonexistent/never"), SynthSpec(inject=("computation.pp_stage_imbalance",)))


@pytest.mark.parametrize("name", SPECS)
def test_files_are_consistent(runs, name):
    level0 = SPECS[name].get("profiler_level") == "Level0"
    for r in ranks_of(runs[name]):
        files = {p.name for p in r.out.iterdir()}
        text = OUTPUT_FILES - set(LEVEL1_ONLY_FILES) if level0 else OUTPUT_FILES
        assert files == text | {f"ascend_pytorch_profiler_{r.rank}.db", "analysis.db"}
        info = json.loads((r.folder / f"profiler_info_{r.rank}.json").read_text())["config"]
        assert info["experimental_config"]["_profiler_level"] == ("Level0" if level0 else "Level1")
        assert_events_nest(r)
        assert_kernels_launched(r)
        assert_step_trace_matches_trace(r)
        if not level0:
            assert_op_statistic_aggregates(r)


@pytest.mark.parametrize("name", SPECS)
def test_readers_agree_on_both_exports(runs, name):
    profile = discover(runs[name])
    assert len(profile.ranks) == SPECS[name].get("ranks", 2)
    for rank in profile.ranks:
        db_rank = dataclasses.replace(rank, format="ascend_db")
        for table in TABLES:
            text, db = _load(table, rank), _load(table, db_rank)
            if name == "level0" and table in LEVEL0_ABSENT:  # each export says why it has none
                assert all(isinstance(t, InputError) or t.empty for t in (text, db)), table
                continue
            if name == "level0" and table in ("op_statistic", "hccl"):
                # The db reader derives op statistics from its kernels but wants HCCL tasks for the
                # hccl table; the text reader does the opposite (no op_statistic.csv; HCCL ops).
                assert isinstance(text if table == "op_statistic" else db, InputError)
                continue
            # Level0's kernel_details.csv has no task, stream or mix block columns; the db's TASK has.
            ignore = LEVEL0_DB_ONLY if name == "level0" and table == "kernels" else frozenset()
            assert_exports_agree(rank, db_rank, table, ignore)


def _load(table: str, rank) -> pd.DataFrame | InputError:
    try:
        return load_table(table, rank, use_cache=False)
    except InputError as exc:
        return exc


def test_determinism(tmp_path):
    spec = {
        "workload": "llm",
        "pipeline_parallel": 2,
        "microbatches": 2,
        "layers": 2,
        "steps": (1,),
        "seed": 3,
    }
    a, b = synth(tmp_path, "a", **spec), synth(tmp_path, "b", **spec)
    for path in sorted(a.rglob("*_ascend_pt/ASCEND_PROFILER_OUTPUT/*")):
        assert path.read_bytes() == (b / path.relative_to(a)).read_bytes(), path


# -- realistic PMU ratios -----------------------------------------------------------------------


def _documented(row: dict[str, str]) -> dict[str, tuple[float, float]]:
    """The widest range pmu.RANGES allows each pipe of this kernel (its kind from the CSV alone)."""
    kind, core = row["Type"], row["Accelerator Core"]
    if kind.startswith("FlashAttention"):
        kinds = ["fa_cube", "fa_vector"]
    elif core == "AI_CORE":
        kinds = ["conv"] if kind.startswith("Conv2D") else ["matmul", "matmul_mte2"]
    else:
        kinds = ["vector", "vector_memory"]
    out: dict[str, tuple[float, float]] = {}
    for k in kinds:
        prefix = "aic" if k in ("conv", "matmul", "matmul_mte2", "fa_cube") else "aiv"
        for pipe, (low, high) in RANGES[k].items():
            name = f"{prefix}_{pipe}"
            lo, hi = out.get(name, (low, high))
            out[name] = (min(lo, low), max(hi, high))
    return out


@pytest.mark.parametrize("name", ["realistic_cnn", "llm"])
def test_realistic_pmu_ratios(runs, name):
    maxima = []
    for r in ranks_of(runs[name]):
        for row in r.csv("kernel_details.csv"):
            if row["Accelerator Core"] in ("HCCL", "AI_CPU"):
                continue
            for pipe, (low, high) in _documented(row).items():
                ratio = float(row[f"{pipe}_ratio"])
                assert low - 0.0005 <= ratio <= high + 0.0005, (row["Type"], pipe, ratio)
                busy = float(row["aicore_time(us)" if pipe.startswith("aic") else "aiv_time(us)"])
                # The time is the drawn ratio times the busy time; the ratio column is rounded.
                assert float(row[f"{pipe}_time(us)"]) == pytest.approx(
                    ratio * busy, abs=0.0005 * busy + 0.002
                )
            pipes = [f"aic_{p}" for p in CUBE_PIPES] + [f"aiv_{p}" for p in VECTOR_PIPES]
            maxima.append(max(float(row[f"{p}_ratio"]) for p in pipes))
    assert sum(m > 0.8 for m in maxima) / len(maxima) < 0.15
    truth = truth_of(runs[name])
    assert truth["pmu"] == "realistic" and truth["pmu_ranges"]["matmul"]["mac"] == [0.5, 0.8]


# -- the LLM ----------------------------------------------------------------------------------------


def test_llm_is_a_healthy_compute_bound_job(runs):
    root = runs["llm"]
    truth = truth_of(root)
    assert truth["healthy"] and truth["injected"] == [] and truth["workload"] == "llm"
    assert truth["microbatches"] == 8
    for r in ranks_of(root):
        assert share(r, "Computing") >= 0.85 and share(r, "Free") < 0.02
        rows = step_rows(r)
        assert sum(x["Overlapped"] for x in rows) > 0.6 * sum(x["Communication"] for x in rows)
        kernels = r.csv("kernel_details.csv")
        assert {"MatMulV2", "FlashAttentionScore", "FlashAttentionScoreGrad", "RmsNorm", "SwiGlu"} <= {
            k["Type"] for k in kernels
        }
        assert not [k for k in kernels if k["Accelerator Core"] != "HCCL" and block_dim_flagged(k, 24, 48)]
        for k in kernels:
            if k["Type"] == "MatMulV2":  # bf16 inner axes: multiples of 128 elements (256 bytes)
                assert all(int(t.split(",")[-1]) % 128 == 0 for t in k["Input Shapes"].strip('"').split(";"))
        names = {e["name"] for e in r.slices("Python")}
        assert {"npu::npu_fusion_attention", "npu::npu_rms_norm", "npu::npu_swiglu", "aten::linear"} <= names
        assert "Optimizer.step#NpuFusedAdamW.step" in names and not names & AFFINITY_ATEN
        assert not [
            n for n in names if n.startswith("Optimizer.step#") and n[15:].split(".")[0] in STOCK_OPTIMIZERS
        ]
        # Megatron's distributed optimizer: gradients reduce-scattered, parameters all-gathered.
        kinds = {key.split("__")[0] for key in comm_ops(r, "collective")}
        assert kinds == {"hcom_reduceScatter", "hcom_allGather"}


def test_llm_generates_in_about_a_second(tmp_path):
    began = time.perf_counter()
    synth(tmp_path, "timed", workload="llm")
    assert time.perf_counter() - began < 4.0  # ~1 s alone; generous for shared machines


# -- pipeline parallelism ---------------------------------------------------------------------------


def test_pipeline_layout_groups_and_stages(runs):
    root = runs["pp_cnn"]
    assert discover(root).stages == [(0, 1), (2, 3)]
    for r in ranks_of(root):
        groups = {g["group_name"]: g for g in r.metadata["parallel_group_info"].values()}
        assert groups["pp"]["global_ranks"] == [r.rank % 2, r.rank % 2 + 2]
        assert groups["pp"]["group_rank"] == r.rank // 2
        assert groups["dp"]["global_ranks"] == [r.rank // 2 * 2, r.rank // 2 * 2 + 1]
        assert r.metadata["distributed_args"]["pipeline_model_parallel_size"] == 2


@pytest.mark.parametrize("name", ["pp_cnn", "pp_llm"])
def test_pipeline_bubble(runs, name):
    root = runs[name]
    truth = truth_of(root)
    pipeline = truth["pipeline"]
    assert truth["healthy"] and pipeline["schedule"] == "1F1B"
    waits = elapses = 0.0
    for r in ranks_of(root):
        stage = next(s for s in pipeline["stages"] if r.rank in s["ranks"])
        assert share(r, "Bubble") > 0
        # The ground truth is what the files say.
        assert share(r, "Bubble") == pytest.approx(stage["bubble_share"], abs=0.01)
        p2p = comm_ops(r, "p2p")
        assert {key.split("__")[0] for key in p2p} == {"hcom_send", "hcom_receive"}
        for key, op in p2p.items():
            if key.startswith("hcom_receive__"):
                info = op["Communication Time Info"]
                waits += info["Wait Time(ms)"]
                elapses += info["Elapse Time(ms)"]
    assert waits > 0.5 * elapses  # a receive mostly waits for its peer: that is the bubble
    if name == "pp_cnn":  # balanced stages: the natural bubble of 1F1B, plus the transfers
        for stage in pipeline["stages"]:
            assert stage["bubble_share"] == pytest.approx(stage["expected_bubble_share"], abs=0.03)
            assert stage["idle_share"] == pytest.approx(pipeline["natural_idle_share"], abs=0.03)
        computing = [s["computing_us"] for s in pipeline["stages"]]
        assert max(computing) / min(computing) < 1.02
        # Every stage still all-reduces its gradients over its data-parallel group.
        for r in ranks_of(root):
            assert any(k.startswith("hcom_allReduce__") for k in comm_ops(r, "collective"))
    else:  # the last stage also carries the LM head and the loss: the first waits for it
        first, last = pipeline["stages"]
        assert last["computing_us"] > first["computing_us"]
        assert last["idle_share"] == pytest.approx(pipeline["natural_idle_share"], abs=0.05)


def test_stage_imbalance_fault(tmp_path):
    root = synth(
        tmp_path, "imbalance", pipeline_parallel=2, microbatches=4, steps=(1, 2),
        inject=("computation.pp_stage_imbalance",),
    )  # fmt: skip
    truth = truth_of(root)
    [entry] = truth["injected"]
    assert entry["check"] == "computation.pp_stage_imbalance" and entry["ranks"] == [0]
    by_stage = entry["expected"]["computing_us_by_stage"]
    assert by_stage["0"] / by_stage["1"] == pytest.approx(1.5, rel=0.03)
    ranks = ranks_of(root)
    computing = [sum(x["Computing"] for x in step_rows(r)) for r in ranks]
    assert computing[0] / computing[1] == pytest.approx(1.5, rel=0.03)
    assert share(ranks[1], "Bubble") > share(ranks[0], "Bubble")  # the fast stage waits for the slow one


def test_size_targeting_keeps_whole_stages(tmp_path):
    # A small target cuts layers; each stage must still hold a whole number of them.
    root = synth(tmp_path, "sized", ranks=4, pipeline_parallel=2, microbatches=2, size_mb=0.3)
    layers = truth_of(root)["spec"]["layers"]
    assert layers < 8 and layers % 2 == 0


# -- Level0 -----------------------------------------------------------------------------------------


def test_level0_holds_only_what_level0_collects(runs):
    for r in ranks_of(runs["level0"]):
        assert list(r.csv("kernel_details.csv")[0]) == list(KERNEL_COLUMNS)
        assert set(r.processes.values()) == {
            "Python",
            "Python GC",
            "Ascend Hardware",
            "AI Core Freq",
            "HCCL",
            "Overlap Analysis",
        }
        hccl = r.slices("HCCL")
        assert hccl and all(e["tid"] == 0 and e["name"].startswith("hcom_") for e in hccl)
        assert not [e for e in r.events if e["name"].startswith(("AscendCL@", "Node@", "HostToDevice"))]
        assert share(r, "Bubble") > 0  # the receive ops remain
        db = sqlite3.connect(r.out / f"ascend_pytorch_profiler_{r.rank}.db")
        tables = {t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert (
            not tables & set(PROFILER_TABLES) and {"TASK", "COMPUTE_TASK_INFO", "COMMUNICATION_OP"} <= tables
        )
        analysis = sqlite3.connect(r.out / "analysis.db")
        tables = {t for (t,) in analysis.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert tables == {"StepTraceTime"} and not tables & set(ANALYSIS_TABLES)
    assert truth_of(runs["level0"])["profiler_level"] == "Level0"


@pytest.mark.parametrize("export", ["text", "db"])
def test_level0_analysis_says_what_it_cannot_evaluate(runs, export):
    root = runs["level0"]
    report = run_analysis(root) if export == "text" else _analyse_db(root)
    skipped = {n.check for n in report.not_evaluated}
    assert {"computation.operator_bound", "computation.ai_core_performance"} <= skipped
    assert "Level1" in " ".join(n.reason for n in report.not_evaluated)


def _analyse_db(root: Path):
    """The db export alone: a copy of the profile without its CSV/JSON deliverables."""
    import shutil

    copy = root.parent / f"{root.name}_db"
    if not copy.exists():
        shutil.copytree(root, copy)
        for path in copy.glob("*_ascend_pt/ASCEND_PROFILER_OUTPUT/*"):
            if path.suffix != ".db":
                path.unlink()
    return run_analysis(copy)


# -- two nodes --------------------------------------------------------------------------------------


def test_two_node_job_moves_data_over_rdma(runs):
    root = runs["two_node"]
    ranks = ranks_of(root)
    assert {r.folder.name.split("_")[0] for r in ranks} == {"synth-node0", "synth-node1"}
    for r in ranks:
        rdma = [e for e in r.slices("HCCL") if e["name"] == "RDMASend"]
        assert rdma and {e["args"]["link type"] for e in rdma} == {"ROCE"}
        assert all(e["args"]["transport type"] == "RDMA" for e in rdma)
        speed = [e["args"]["size(Byte)"] / (ns(e["dur"])) for e in rdma]  # bytes per ns = GB/s
        assert min(speed) == pytest.approx(12.0, rel=0.01) and max(speed) == pytest.approx(12.0, rel=0.01)
        assert 0.05 < share(r, "Communication(Not Overlapped)") < 0.2
        ops = comm_ops(r, "collective").values()
        transit = sum(op["Communication Time Info"]["Transit Time(ms)"] for op in ops)
        wait = sum(op["Communication Time Info"]["Wait Time(ms)"] for op in ops)
        assert wait < 0.1 * transit  # data moving, nobody waiting


# -- the before-picture: every healthy control analyses without an error ----------------------------


@pytest.mark.parametrize("name", ["llm", "pp_cnn", "pp_llm", "realistic_cnn", "two_node"])
def test_healthy_controls_analyse(runs, name):
    report = run_analysis(runs[name])
    assert report.summary["per_rank"]


def test_cli_options(tmp_path, capsys):
    from advisor.cli import main

    dest = tmp_path / "cli"
    args = ["--workload", "llm", "--pp", "2", "--microbatches", "2", "--profiler-level", "level0"]
    assert main(["synth", str(dest), "--steps", "1", "--pmu", "ideal", *args]) == 0
    truth = truth_of(dest)
    assert (truth["workload"], truth["pmu"], truth["profiler_level"], truth["microbatches"]) == (
        "llm", "ideal", "Level0", 2,
    )  # fmt: skip
    assert [s["ranks"] for s in truth["pipeline"]["stages"]] == [[0], [1]]
    capsys.readouterr()
    for bad in (
        ["--workload", "rnn"],
        ["--pp", "3"],
        ["--profiler-level", "Level2"],
        ["--microbatches", "x"],
    ):
        assert main(["synth", str(tmp_path / "bad"), *bad]) == 2, bad
        assert capsys.readouterr().err.startswith("performance-advisor: error:")
