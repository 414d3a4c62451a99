"""The generator's faults and workloads together: the faults of the once never-injected checks in a
pipeline-parallel CNN, in the LLM and at Level0, each consistent in the raw files and found where its
check is settled (contention: raw data only, as in test_synth_new_faults), and the combinations
check_faults refuses (a fault the workload does not have, or one that would stay under its check's
threshold).
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from advisor.cli import main
from advisor.formats import discover
from advisor.synth import SynthSpec, check_faults
from advisor.synth.level0 import KERNEL_COLUMNS, LEVEL1_ONLY_FILES, PROFILER_TABLES

from .test_profiles_parity import assert_exports_agree
from .test_synth import (
    OUTPUT_FILES,
    assert_events_nest,
    assert_kernels_launched,
    assert_op_statistic_aggregates,
    assert_step_trace_matches_trace,
    expected,
    ranks_of,
    synth,
    truth_of,
)
from .test_synth_new_faults import NEW, findings_by_rank
from .test_synth_workloads import comm_ops, share

PIPELINE = dict(ranks=4, pipeline_parallel=2, microbatches=2, steps=(1, 2), export="both", seed=5)
PIPELINE_FAULTS = NEW[:4]  # the EMA needs one micro-batch and no pipeline
LAST_STAGE = [2, 3]
LEVEL0_FAULTS = (*NEW, "schedule.gc")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("compose")
    out = {f: synth(base, f, **PIPELINE, inject=(f,)) for f in PIPELINE_FAULTS}
    llm = dict(workload="llm", microbatches=2, steps=(1, 2), export="both")
    out["llm_contention"] = synth(
        base, "llm_contention", **llm, inject=("communication.bandwidth_contention",)
    )
    out["llm_gc"] = synth(base, "llm_gc", **llm, inject=("schedule.gc",), gc_events=False)
    out["level0"] = synth(
        base,
        "level0",
        steps=(1, 2),
        export="both",
        profiler_level="Level0",
        inject=LEVEL0_FAULTS,
        gc_events=False,
    )
    return out


# -- in a pipeline ----------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", PIPELINE_FAULTS)
def test_pipeline_with_a_fault_stays_consistent(runs, fault):
    root = runs[fault]
    truth = truth_of(root)
    assert [s["ranks"] for s in truth["pipeline"]["stages"]] == [[0, 1], LAST_STAGE]
    [entry] = truth["injected"]
    assert entry["check"] == fault
    for r in ranks_of(root):
        assert_events_nest(r)
        assert_kernels_launched(r)
        assert_step_trace_matches_trace(r)
        assert_op_statistic_aggregates(r)
        assert share(r, "Bubble") > 0  # still a pipeline
        assert {key.split("__")[0] for key in comm_ops(r, "p2p")} == {"hcom_send", "hcom_receive"}
    for rank in discover(root).ranks:
        for table in ("kernels", "comm_ops", "hccl", "step_trace"):
            assert_exports_agree(rank, dataclasses.replace(rank, format="ascend_db"), table)


@pytest.mark.parametrize("check", ["computation.ai_core_performance", "schedule.sync_batchnorm"])
def test_pipeline_fault_found_on_its_ranks(runs, check):
    root = runs[check]
    want = expected(root, check)["ranks"]
    assert want == (LAST_STAGE if check == "computation.ai_core_performance" else [0, 1, 2, 3])
    for export in ("text", "db"):
        findings = findings_by_rank(root, check, export, skip=True)
        assert sorted(rank for rank, found in findings.items() if found) == want


def test_graph_fusion_runs_on_the_last_stage(runs):
    root = runs["computation.graph_fusion"]
    entry = expected(root, "computation.graph_fusion")
    assert entry["ranks"] == LAST_STAGE
    for r in ranks_of(root):
        assert (r.folder / entry["expected"]["dump"]).exists() == (r.rank in LAST_STAGE)
        graph_runs = [e for e in r.slices("Python") if e["name"] == "TorchNpuGraphBase::Run"]
        assert len(graph_runs) == (2 if r.rank in LAST_STAGE else 0)  # one per step, first micro-batch
    findings = findings_by_rank(root, "computation.graph_fusion", "text", skip=True)
    assert findings[0] is None and findings[1] is None  # no dump: not evaluated
    assert findings[2] and findings[3]


def test_sync_batchnorm_in_every_micro_batch(runs):
    root = runs["schedule.sync_batchnorm"]
    want = expected(root, "schedule.sync_batchnorm")["expected"]
    layers = 8 // 2 * 2 * 2  # layers per stage x micro-batches x steps
    gathers = 0
    for r in ranks_of(root):
        names = Counter(e["name"] for e in r.slices("Python"))
        assert names["SyncBatchNorm"] == layers
        assert names["autograd::engine::evaluate_function: SyncBatchNormBackward"] == layers
        ops = comm_ops(r, "collective")
        mine = sum(1 for key in ops if key.startswith("hcom_allGather_"))
        assert mine == layers
        gathers += mine
        # The gradient buckets' all-reduces come once per step, after the last micro-batch.
        assert sum(1 for key in ops if key.startswith("hcom_allReduce_")) > layers
    assert gathers == want["allgathers"] == want["layer_calls"]


def _assert_contended(root: Path) -> None:
    want = expected(root, "communication.bandwidth_contention")["expected"]
    for task_type in ("Memcpy", "Reduce_Inline"):
        contended, alone = want[task_type]["contended"], want[task_type]["alone"]
        assert contended["transfers"] > 0 and alone["transfers"] > 0
        assert contended["bandwidth_gbps"] < 0.8 * alone["bandwidth_gbps"]


def test_contention_in_the_pipeline_and_the_llm(runs):
    _assert_contended(runs["communication.bandwidth_contention"])
    root = runs["llm_contention"]
    _assert_contended(root)
    ops = expected(root, "communication.bandwidth_contention")["expected"]["Memcpy"]["contended"]["ops"]
    assert ops and all(op.startswith("hcom_reduceScatter_") for op in ops)  # the distributed optimizer's


def test_llm_gc_pauses_without_events(runs):
    root = runs["llm_gc"]
    truth = truth_of(root)
    assert truth["workload"] == "llm" and not truth["healthy"]
    want = expected(root, "schedule.gc")["expected"]
    assert want["events"] == 0 and not want["gc_events_recorded"]
    assert all(want["pauses"][str(r.rank)] for r in ranks_of(root))
    for r in ranks_of(root):
        assert "Python GC" not in r.processes.values()
        assert (
            json.loads((r.folder / f"profiler_info_{r.rank}.json").read_text())["config"][
                "experimental_config"
            ]["_gc_detect_threshold"]
            is None
        )


# -- at Level0 ---------------------------------------------------------------------------------------


def test_level0_faults_write_only_level0_files(runs):
    root = runs["level0"]
    assert [e["check"] for e in truth_of(root)["injected"]] == list(LEVEL0_FAULTS)
    for r in ranks_of(root):
        files = {p.name for p in r.out.iterdir()}
        assert files == OUTPUT_FILES - set(LEVEL1_ONLY_FILES) | {
            f"ascend_pytorch_profiler_{r.rank}.db",
            "analysis.db",
        }
        assert list(r.csv("kernel_details.csv")[0]) == list(KERNEL_COLUMNS)
        assert not [e for e in r.events if e["name"].startswith(("AscendCL@", "Node@", "HostToDevice"))]
        assert all(e["tid"] == 0 for e in r.slices("HCCL"))
        assert "Python GC" not in r.processes.values()
        con = sqlite3.connect(r.out / f"ascend_pytorch_profiler_{r.rank}.db")
        tables = {t for (t,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert not tables & {*PROFILER_TABLES, "GC_RECORD"}
        assert (r.folder / expected(root, "computation.graph_fusion")["expected"]["dump"]).exists()
        assert_events_nest(r)
        assert_kernels_launched(r)
        assert_step_trace_matches_trace(r)


@pytest.mark.parametrize(
    ("check", "found"),
    [
        ("schedule.sync_batchnorm", True),  # the framework ops and the all-gathers remain
        ("computation.graph_fusion", True),  # the dump and the kernels' names
        ("schedule.fusible_operators", True),  # the kernels and their launch gaps
        ("computation.ai_core_performance", None),  # no PMU columns at Level0
    ],
)
def test_level0_faults_as_the_checks_see_them(runs, check, found):
    for result in findings_by_rank(runs["level0"], check, "text", skip=True).values():
        assert (result if result is None else bool(result)) is found


# -- refused ----------------------------------------------------------------------------------------

REFUSED = [
    *[(dict(workload="llm", inject=(f,)), "needs workload 'cnn'") for f in NEW[1:]],
    (dict(ranks=2, pipeline_parallel=2, inject=("schedule.sync_batchnorm",)), "data-parallel group"),
    (
        dict(ranks=2, pipeline_parallel=2, inject=("communication.bandwidth_contention",)),
        "data-parallel group",
    ),
    (
        dict(ranks=8, pipeline_parallel=4, inject=("communication.bandwidth_contention",)),
        "2 or more gradient",
    ),
    (dict(microbatches=8, inject=("communication.bandwidth_contention",)), "at most 4 micro-batches"),
    (dict(microbatches=2, inject=("schedule.fusible_operators",)), "one micro-batch"),
    (dict(ranks=4, pipeline_parallel=2, inject=("schedule.fusible_operators",)), "pipeline_parallel 1"),
]


@pytest.mark.parametrize(("spec", "match"), REFUSED)
def test_refused_combinations(spec, match):
    with pytest.raises(ValueError, match=match):
        check_faults(SynthSpec(**spec))


def test_still_allowed():
    check_faults(SynthSpec(workload="llm", inject=("communication.bandwidth_contention", "schedule.gc")))
    check_faults(SynthSpec(ranks=4, pipeline_parallel=2, microbatches=4, inject=PIPELINE_FAULTS))
    check_faults(SynthSpec(inject=NEW, profiler_level="Level0", gc_events=False))


def test_cli_refuses_with_the_reason(tmp_path, capsys):
    args = ["synth", str(tmp_path / "out"), "--workload", "llm", "--inject", "sync_batchnorm"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("performance-advisor: error:") and "needs workload 'cnn'" in err
    assert not (tmp_path / "out").exists()
