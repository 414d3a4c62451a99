"""The Kineto format: detection, discovery and every table, on the generator's traces (ground truth
in ground_truth.json), the recorded CPU traces of tests/data/kineto (ground truth in its README) and
the shared corpus; bad input gets one clear line."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from advisor.cli import main
from advisor.engine import run_analysis
from advisor.errors import InputError, MixedRunsError
from advisor.formats import discover, format_named, load_table
from advisor.formats.kineto.events import read_trace
from advisor.formats.kineto.tables import build_tables
from advisor.model import RankInfo
from advisor.synth.kineto import KinetoSpec, write_kineto_traces

from .engine_fixtures import CORPUS, PROJECT_ROOT, corpus_path, demo

RECORDED = PROJECT_ROOT / "tests" / "data" / "kineto"
GPU_CORPUS = CORPUS / "kineto-small-gpu"
CHAKRA = GPU_CORPUS / "execution_trace__benchmark_simple_add_et.json.gz"
US = 0.01  # µs: the files hold µs with three decimals
KINETO = format_named("kineto")


@pytest.fixture(autouse=True)
def _no_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERFORMANCE_ADVISOR_CACHE", "off")


def generate(tmp_path: Path, name: str = "run", **spec: Any) -> tuple[Path, dict[str, Any]]:
    root = write_kineto_traces(tmp_path / name, KinetoSpec(**spec))
    return root, json.loads((root / "ground_truth.json").read_text())


def events_of(path: Path) -> list[dict[str, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as fh:
        return json.load(fh)["traceEvents"]


def table(name: str, rank: RankInfo) -> pd.DataFrame:
    return load_table(name, rank, use_cache=False)


# Detection ---------------------------------------------------------------------------------------


def test_detection_recognises_traces_and_says_why_it_refuses_others(tmp_path):
    root, _ = generate(tmp_path)
    assert KINETO.detect(root).confidence == 1.0
    assert KINETO.detect(root / "rank0.json.gz").confidence == 1.0
    ascend, _ = demo(tmp_path, ranks=1)
    assert KINETO.detect(ascend).confidence == 0.0
    timeline = tmp_path / "memory_timeline.json"
    timeline.write_text("[[1, 2], [3, 4]]")
    refused = KINETO.detect(timeline)
    assert refused.confidence == 0.0 and "memory timeline" in refused.reason


def test_chakra_execution_trace_is_refused_with_its_name():
    with pytest.raises(InputError, match=r"execution_trace__benchmark_simple_add_et\.json\.gz.*Chakra"):
        discover(corpus_path(CHAKRA))


def test_a_folder_mixing_ascend_and_kineto_data_is_refused(tmp_path):
    root, _ = generate(tmp_path, "mixed")
    demo(root, name="node0", ranks=1)
    with pytest.raises(InputError, match=r"different profilers.*analyse them separately"):
        discover(root)


# Discovery ---------------------------------------------------------------------------------------


def test_one_file_is_one_rank_with_what_its_header_records(tmp_path):
    root, truth = generate(tmp_path, ranks=2)
    profile = discover(root / "rank1.json.gz")
    [rank] = profile.ranks
    assert (rank.rank, rank.files, rank.path) == (1, ("rank1.json.gz",), root)
    assert profile.root == root / "rank1.json.gz" and profile.format == "kineto"
    assert rank.steps == tuple(truth["steps"]) == (2, 3, 4)
    assert (rank.device, rank.device_type) == ("gpu", "NVIDIA A100-SXM4-80GB")
    assert profile.versions == {
        "cuda_runtime": "12.6",
        "cuda_driver": "12.8",
        "cupti": "24",
        "nccl": "2.21.5",
    }
    assert "torch" not in profile.versions  # Kineto records none: never invented
    assert profile.groups == {"0": (0, 1)} and profile.device == "gpu"


def test_tensorboard_layout_takes_ranks_from_distributed_info(tmp_path):
    root, truth = generate(tmp_path, ranks=3, device="cpu", layout="tensorboard")
    profile = discover(root)
    by_rank = {r.rank: r.files[0] for r in profile.ranks}
    assert by_rank == {int(rank): name for name, rank in truth["files"].items()}
    assert all(".pt.trace.json.gz" in name for name in by_rank.values())
    assert profile.device == "cpu" and {r.device_type for r in profile.ranks} == {None}
    assert [w for w in profile.warnings if "rank" in w] == []


def test_old_traces_without_distributed_info_take_the_rank_from_the_name(tmp_path):
    root, _ = generate(tmp_path, ranks=2, schema="old", gzip=False)
    (root / "rank1.json").rename(root / "job_rank_7.json")
    profile = discover(root)
    assert {r.rank: r.files[0] for r in profile.ranks} == {0: "rank0.json", 7: "job_rank_7.json"}
    assert profile.versions == {} and profile.groups == {}  # the 2021 schema records neither


def test_unnamed_ranks_are_numbered_in_file_order_with_a_warning(tmp_path):
    root, _ = generate(tmp_path, ranks=2, schema="old", gzip=False)
    (root / "rank0.json").rename(root / "a.json")
    (root / "rank1.json").rename(root / "b.json")
    profile = discover(root)
    assert {r.rank: r.files[0] for r in profile.ranks} == {0: "a.json", 1: "b.json"}
    assert sum("no rank recorded" in w for w in profile.warnings) == 2


def _trace(path: Path, ts_us: int, **header: Any) -> None:
    """A minimal trace: `header` keys, then one op at `ts_us` (absolute µs since the epoch)."""
    op = {"ph": "X", "cat": "cpu_op", "name": "aten::add", "pid": 1, "tid": 1, "ts": ts_us, "dur": 5}
    path.write_text(json.dumps({"schemaVersion": 1, **header, "traceEvents": [op]}))


JOB_US = 1_765_000_000_000_000  # 2025-12-06


def test_traces_of_one_job_without_ranks_are_numbered_in_file_order(tmp_path):
    _trace(tmp_path / "a.json", JOB_US)
    _trace(tmp_path / "b.json", JOB_US + 20 * 60 * 1_000_000)  # 20 min later: the same job
    profile = discover(tmp_path)
    assert {r.rank: r.files[0] for r in profile.ranks} == {0: "a.json", 1: "b.json"}


@pytest.mark.parametrize(
    ("second", "why"),
    [
        # Rank 0 twice, not windows of one process: two single-process benchmarks.
        (dict(ts_us=JOB_US, distributedInfo={"rank": 0}), "the same rank ids"),
        (dict(ts_us=JOB_US + 2 * 3600 * 1_000_000), "started over an hour apart"),
        (dict(ts_us=JOB_US, distributedInfo={"rank": 1, "world_size": 4}), "different world_size"),
        (
            dict(ts_us=JOB_US, distributedInfo={"rank": 1, "world_size": 2}, with_stack=0),
            "different with_stack",
        ),
    ],
)
def test_traces_of_different_runs_are_refused_naming_them(tmp_path, second, why):
    _trace(tmp_path / "first.json", JOB_US, distributedInfo={"rank": 0, "world_size": 2}, with_stack=1)
    _trace(tmp_path / "second.json", **second)
    with pytest.raises(MixedRunsError) as refused:
        discover(tmp_path)
    message = str(refused.value)
    assert f"{tmp_path}: holds the traces of 2 different profiling runs" in message
    assert why in message and "first.json" in message and "second.json" in message


def test_the_corpus_folder_of_unrelated_gpu_benchmarks_is_refused():
    """kineto-small-gpu holds traces of separate micro-benchmarks (four record rank 0, three no rank,
    recorded months apart): read as one job's ranks, they compared unrelated programs."""
    with pytest.raises(MixedRunsError, match="different profiling runs"):
        discover(corpus_path(GPU_CORPUS))


def test_several_windows_of_a_rank_read_the_latest_with_a_warning(tmp_path):
    source = corpus_path(CORPUS / "torch-cpu" / "python_gc" / "cpuworker0.1795324142540088736.pt.trace.json")
    folder = tmp_path / "run" / "worker0"  # a sub-folder per worker, as tensorboard layouts have
    folder.mkdir(parents=True)
    shutil.copy(source, folder / "cpuworker0.1795324142540088736.pt.trace.json")
    shutil.copy(source, folder / "cpuworker0.1795324150000000000.pt.trace.json")
    profile = discover(tmp_path / "run")
    [rank] = profile.ranks
    assert rank.files == ("cpuworker0.1795324150000000000.pt.trace.json",) and rank.path == folder
    assert any("rank 0 (cpuworker0): 2 profiling windows of one process" in w for w in profile.warnings)


def test_non_trace_json_beside_the_traces_is_skipped_with_a_warning(tmp_path):
    root, _ = generate(tmp_path, ranks=2)
    profile = discover(root)
    assert [r.rank for r in profile.ranks] == [0, 1]
    assert any("ground_truth.json" in w for w in profile.warnings)


# Tables on generated traces, against the ground truth ---------------------------------------------


@pytest.mark.parametrize("schema", ["new", "old"])
def test_step_split_matches_the_measured_ground_truth(tmp_path, schema):
    root, truth = generate(tmp_path, ranks=3, schema=schema, inject=("cluster.slow_rank",))
    tolerance = 1.0 if schema == "old" else US  # 2021 traces round every time to whole µs
    for rank in discover(root).ranks:
        split = table("step_trace", rank).set_index("step")
        steps = table("steps", rank).set_index("step")
        expected = truth["ranks"][str(rank.rank)]["steps"]
        for step in truth["steps"]:
            want = expected[str(step)]
            row = split.loc[step]
            assert row["communication_not_overlapped_us"] == pytest.approx(
                want["exposed_comm_us"], abs=tolerance
            )
            busy = row["computing_us"] + row["communication_not_overlapped_us"]
            assert busy / steps.loc[step, "dur_us"] == pytest.approx(want["gpu_busy_share"], abs=1e-3)
            assert steps.loc[step, "dur_us"] == pytest.approx(want["step_us"], abs=tolerance)


def test_kernels_copies_and_links_are_every_gpu_event_of_the_file(tmp_path):
    root, _ = generate(tmp_path, ranks=1, inject=("memory.pageable_memcpy",))
    [rank] = discover(root).ranks
    events = events_of(root / rank.files[0])
    by_cat = {cat: [e for e in events if e.get("cat") == cat and e["ph"] == "X"] for cat in
              ("kernel", "gpu_memcpy", "gpu_memset", "cuda_runtime")}  # fmt: skip
    kernels, copies = table("kernels", rank), table("memcpy", rank)
    assert len(kernels) == len(by_cat["kernel"])
    assert sorted(kernels["correlation"]) == sorted(e["args"]["correlation"] for e in by_cat["kernel"])
    assert set(kernels["stream_id"]) == {e["args"]["stream"] for e in by_cat["kernel"]}
    assert kernels["step"].notna().all()  # each launched inside a ProfilerStep
    assert len(copies) == len(by_cat["gpu_memcpy"]) + len(by_cat["gpu_memset"])
    pageable = copies[copies["src_memory"] == "Pageable"]
    assert len(pageable) and set(pageable["kind"]) == {"HtoD"} and set(pageable["dst_memory"]) == {"Device"}
    assert set(copies.loc[copies["kind"] == "Memset", "dst_memory"]) == {"Device"}
    assert copies["size_bytes"].sum() == sum(
        e["args"]["bytes"] for e in by_cat["gpu_memcpy"] + by_cat["gpu_memset"]
    )
    runtime = table("runtime_api", rank)
    assert len(runtime) == len(by_cat["cuda_runtime"]) and runtime["correlation"].notna().all()
    flows = table("flows", rank)
    gpu_work = len(by_cat["kernel"]) + len(by_cat["gpu_memcpy"]) + len(by_cat["gpu_memset"])
    assert len(flows) == gpu_work and (flows["device_ns"] > flows["host_ns"]).all()
    assert len(table("device_tasks", rank)) == gpu_work


def test_collectives_with_their_sizes_groups_and_steps(tmp_path):
    spec = {"ranks": 2, "buckets": 4, "gradient_mb": 100.0}
    root, truth = generate(tmp_path, **spec)
    for rank in discover(root).ranks:
        ops = table("comm_ops", rank)
        assert len(ops) == spec["buckets"] * len(truth["steps"])
        assert set(ops["op_name"]) == {"allreduce"} and set(ops["kind"]) == {"collective"}
        assert set(ops["group"]) == {"0"}
        assert list(ops.groupby("step").size().index) == truth["steps"]
        assert ops["size_bytes"].sum() / len(truth["steps"]) == pytest.approx(100e6 * 1.048576, rel=0.01)


def test_cpu_traces_split_the_main_thread_and_gloo_ranges(tmp_path):
    root, truth = generate(tmp_path, ranks=2, device="cpu", inject=("communication.exposed",))
    [fault] = truth["injected"]
    for rank in discover(root).ranks:
        assert rank.device == "cpu" and table("kernels", rank).empty
        ops = table("comm_ops", rank)
        assert len(ops) and set(ops["op_name"]) == {"allreduce"}
        split = table("step_trace", rank).set_index("step")
        lost = fault["expected"]["lost_us"][str(rank.rank)]
        for step, lost_us in lost.items():  # the main thread's wait for the gloo work after backward
            assert split.loc[int(step), "communication_not_overlapped_us"] == pytest.approx(lost_us, rel=0.02)


def test_gc_events_and_old_categories(tmp_path):
    root, _ = generate(tmp_path, ranks=1, inject=("schedule.gc",))
    [rank] = discover(root).ranks
    gc_events = [e for e in events_of(root / rank.files[0]) if e.get("name") == "Python GC"]
    gc = table("gc", rank)
    assert len(gc) == len(gc_events) and gc["dur_us"].sum() == pytest.approx(
        sum(e["dur"] for e in gc_events), abs=US * len(gc_events)
    )
    assert not table("host_ops", rank)["name"].eq("Python GC").any()  # GC is its own table
    old, _ = generate(tmp_path, "old", ranks=1, schema="old")
    new, _ = generate(tmp_path, "new", ranks=1)
    [old_rank], [new_rank] = discover(old).ranks, discover(new).ranks
    for name in ("steps", "kernels", "runtime_api", "memcpy", "comm_ops"):
        assert len(table(name, old_rank)) == len(table(name, new_rank)), name
    old_host, new_host = table("host_ops", old_rank), table("host_ops", new_rank)
    new_host = new_host[new_host["cat"] != "python_function"]  # the 2021 schema records no Python frames
    assert old_host.groupby("cat").size().to_dict() == new_host.groupby("cat").size().to_dict()


# Tables on recorded traces (tests/data/kineto/README.md) and the corpus ------------------------------


def test_recorded_ddp_straggler_rank0_waits_in_gloo_for_rank1():
    profile = discover(RECORDED / "ddp_straggler")
    assert [r.rank for r in profile.ranks] == [0, 1] and profile.steps == [2, 3]
    assert profile.groups == {"0": (0, 1)} and profile.device == "cpu"
    wait = {r.rank: table("comm_ops", r)["elapse_us"].mean() for r in profile.ranks}
    assert wait[0] - wait[1] > 40_000
    free = {r.rank: table("step_trace", r)["free_us"].mean() for r in profile.ranks}
    assert free[1] > 40_000 > free[0]  # rank 1's 50 ms sleep has no event: the main thread runs no op


def test_recorded_gc_dataloader_and_memory():
    [gc_rank] = discover(RECORDED / "gc_pressure").ranks
    gc, steps = table("gc", gc_rank), table("steps", gc_rank)
    assert len(gc) == 514 and gc["dur_us"].max() == pytest.approx(259_374, abs=100)
    split = table("step_trace", gc_rank)
    sums = split[["computing_us", "communication_not_overlapped_us", "free_us"]].sum(axis=1)
    assert np.allclose(sums, steps["dur_us"], rtol=0.01)  # each step's split covers the step
    [loader_rank] = discover(RECORDED / "slow_dataloader").ranks
    host = table("host_ops", loader_rank)
    fetches = host[host["name"].str.startswith("enumerate(DataLoader)#_SingleProcess")]
    assert fetches["dur_us"].round(-2).tolist() == [37_200, 34_100]
    memory = table("memory_record", loader_rank)
    assert len(memory) == 125 and set(memory["device"]) == {"CPU"} and set(memory["component"]) == {"torch"}


def test_gpu_corpus_trace_reads_every_table():
    path = corpus_path(
        GPU_CORPUS / "critical_path__alexnet__benchmark_result_2869224_1695835535_trace.json.gz"
    )
    [rank] = discover(path).ranks
    assert rank.device_type == "NVIDIA A100-PG509-200" and rank.steps == ()
    kernels = table("kernels", rank)
    assert len(kernels) == 79 and kernels["stream_id"].notna().all()
    copies = table("memcpy", rank)
    assert len(copies) == 19 and (copies.loc[copies["kind"] == "HtoD", "src_memory"] == "Pageable").all()
    assert len(table("flows", rank)) == 98  # kernels + copies + memsets, each linked to its launch
    [split] = table("step_trace", rank).to_dict("records")  # no step markers: one unnamed step
    assert split["computing_us"] > 0 and split["communication_us"] == 0


# End to end --------------------------------------------------------------------------------------


def test_healthy_gpu_control_has_no_high_finding_and_slow_rank_is_found(tmp_path):
    healthy, _ = generate(tmp_path, "healthy", ranks=2)
    assert [f.check for f in run_analysis(healthy).findings if f.priority == "high"] == []
    slow, truth = generate(tmp_path, "slow", ranks=4, inject=("cluster.slow_rank",))
    [finding] = [f for f in run_analysis(slow).findings if f.check == "cluster.slow_rank"]
    assert finding.ranks == truth["injected"][0]["ranks"] == [3]


def test_healthy_cpu_control_has_no_finding_and_exposed_gloo_time_is_found(tmp_path):
    # With 8 gradient buckets the last gloo all-reduce (the one the main thread waits for after the
    # backward) is small: a healthy CPU run. With 4 its 25 MB leave ~13 % of the step exposed.
    healthy, _ = generate(tmp_path, "healthy", ranks=2, device="cpu", buckets=8)
    assert [f.check for f in run_analysis(healthy).findings if f.priority != "low"] == []
    coarse, _ = generate(tmp_path, "coarse", ranks=2, device="cpu", buckets=4)
    [exposed] = [f for f in run_analysis(coarse).findings if f.check == "communication.exposed"]
    assert exposed.ranks == [0, 1] and 0.10 < exposed.share_of_step < 0.20


def test_cli_analyses_a_trace_file_and_exits_2_on_a_chakra_trace(tmp_path, capsys):
    root, _ = generate(tmp_path, ranks=1, device="cpu", inject=("dataloader.slow",))
    out = tmp_path / "reports"
    assert (
        main(["analyze", str(root / "rank0.json.gz"), "--output", str(out), "--quiet", "--format", "json"])
        == 0
    )
    [report] = out.glob("*.json")
    data = json.loads(report.read_text())
    assert data["input"]["kind"] == "torch_profiler" and data["input"]["steps"] == [2, 3, 4]
    assert "dataloader.slow" in {f["check"] for f in data["findings"]}
    capsys.readouterr()
    assert main(["analyze", str(corpus_path(CHAKRA)), "--output", str(out), "--quiet"]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "Chakra execution trace" in line


def test_synth_cli_writes_a_kineto_demo(tmp_path, capsys):
    dest = tmp_path / "demo"
    assert main(["synth", str(dest), "--profiler", "kineto", "--device", "cpu", "--inject", "gc"]) == 0
    truth = json.loads((dest / "ground_truth.json").read_text())
    assert truth["format"] == "kineto" and [i["check"] for i in truth["injected"]] == ["schedule.gc"]
    assert main(["synth", str(tmp_path / "x"), "--profiler", "kineto", "--inject", "aicpu"]) == 2
    assert "unknown fault 'aicpu'" in capsys.readouterr().err


# Bad input ---------------------------------------------------------------------------------------


def test_truncated_gzip_keeps_the_complete_events_and_warns(tmp_path):
    root, _ = generate(tmp_path, ranks=1, gzip=False)
    text = (root / "rank0.json").read_bytes()
    cut = tmp_path / "cut" / "rank0.json.gz"
    cut.parent.mkdir()
    cut.write_bytes(gzip.compress(text)[: len(gzip.compress(text)) * 2 // 3])
    [rank] = discover(cut).ranks
    kernels, whole = table("kernels", rank), build_tables(read_trace(root / "rank0.json"))["kernels"]
    assert 0 < len(kernels) < len(whole)
    assert any("truncated" in w for w in kernels.attrs["warnings"])


def test_empty_trace_and_non_json_are_one_line_errors(tmp_path):
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"schemaVersion": 1, "deviceProperties": [], "traceEvents": []}))
    [rank] = discover(empty).ranks
    with pytest.raises(InputError, match=r"empty\.json: no complete events"):
        table("steps", rank)
    garbage = tmp_path / "garbage.json"
    garbage.write_text("not json at all")
    with pytest.raises(InputError, match=r"garbage\.json: not profiling data"):
        discover(garbage)


def test_hostile_file_name_is_read_and_named_safely(tmp_path, capsys):
    root, _ = generate(tmp_path, ranks=1, device="cpu")
    hostile = root / "-rank0 $(rm -rf ~)\n'\"<b>.json.gz"
    (root / "rank0.json.gz").rename(hostile)
    [rank] = discover(hostile).ranks
    assert rank.rank == 0 and rank.files == (hostile.name,)
    out = tmp_path / "reports"
    assert main(["analyze", str(hostile), "--output", str(out), "--quiet", "--format", "json"]) == 0
    [report] = out.glob("*.json")
    assert "\n" not in report.name and "$" not in report.name and "<" not in report.name
