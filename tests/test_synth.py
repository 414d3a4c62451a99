"""The synthetic profile generator: files, formats, cross-file consistency, size, determinism, CLI.

Everything is checked on the raw files with the json and csv modules only, independently of the
project's readers. `Rank` and the helpers below are shared with test_synth_faults.py.
"""

from __future__ import annotations

import csv
import itertools
import json
import sqlite3
from collections import Counter, defaultdict
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pytest

from advisor.cli import main
from advisor.demo import DemoSpec, plan_demo, write_demo_profile
from advisor.errors import InputError
from advisor.synth import SynthSpec, write_synth_profile

OUTPUT_FILES = {
    "trace_view.json",
    "kernel_details.csv",
    "op_statistic.csv",
    "operator_details.csv",
    "api_statistic.csv",
    "step_trace_time.csv",
    "communication.json",
    "communication_matrix.json",
    "memory_record.csv",
    "operator_memory.csv",
    "npu_module_mem.csv",
}


def ns(value: Any) -> int:
    """A µs value (string with up to three decimals, TAB-suffixed or not, or a number) in ns."""
    text = str(value).strip()
    whole, _, frac = text.partition(".")
    if len(frac) <= 3 and isinstance(value, str):
        return int(whole) * 1000 + int(frac.ljust(3, "0") or 0)
    return round(float(text) * 1000)


@dataclass
class Rank:
    """One generated rank folder, parsed lazily with json/csv."""

    folder: Path

    @property
    def out(self) -> Path:
        return self.folder / "ASCEND_PROFILER_OUTPUT"

    @cached_property
    def rank(self) -> int:
        return int(next(self.folder.glob("profiler_info_*.json")).stem.rsplit("_", 1)[1])

    @cached_property
    def events(self) -> list[dict[str, Any]]:
        return json.loads((self.out / "trace_view.json").read_text(encoding="utf-8"))

    @cached_property
    def processes(self) -> dict[int, str]:
        return {
            e["pid"]: e["args"]["name"] for e in self.events if e["ph"] == "M" and e["name"] == "process_name"
        }

    def slices(self, process: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["ph"] == "X" and self.processes.get(e["pid"]) == process]

    def csv(self, name: str) -> list[dict[str, str]]:
        with (self.out / name).open(encoding="utf-8", newline="") as file:
            return list(csv.DictReader(file))

    def json(self, name: str) -> Any:
        return json.loads((self.out / name).read_text(encoding="utf-8"))

    @cached_property
    def steps(self) -> dict[int, tuple[int, int]]:
        return {
            int(e["name"].split("#")[1]): (ns(e["ts"]), ns(e["ts"]) + ns(e["dur"]))
            for e in self.slices("Python")
            if e["name"].startswith("ProfilerStep#")
        }

    @cached_property
    def metadata(self) -> dict[str, Any]:
        return json.loads((self.folder / "profiler_metadata.json").read_text(encoding="utf-8"))

    @cached_property
    def device_info(self) -> dict[str, Any]:
        [path] = self.folder.glob("PROF_*/device_*/info.json.*")
        return json.loads(path.read_text(encoding="utf-8"))["DeviceInfo"][0]


def ranks_of(root: Path) -> list[Rank]:
    return sorted((Rank(f) for f in root.glob("*_ascend_pt")), key=lambda r: r.rank)


def truth_of(root: Path) -> dict[str, Any]:
    return json.loads((root / "ground_truth.json").read_text(encoding="utf-8"))


def expected(root: Path, check: str) -> dict[str, Any]:
    [entry] = [e for e in truth_of(root)["injected"] if e["check"] == check]
    return entry


def synth(tmp: Path, name: str, **spec: Any) -> Path:
    return write_synth_profile(tmp / name, SynthSpec(**spec))


# -- the reference advisor's measures, computed from raw files (reference-advisor.md §2) -------------


def slow_rank_gaps(ranks: list[Rank]) -> dict[str, float]:
    rows = [row for r in ranks for row in r.csv("step_trace_time.csv")]
    totals = [
        float(r["Computing"]) + float(r["Communication(Not Overlapped)"]) + float(r["Free"]) for r in rows
    ]
    mean = sum(totals) / len(totals)
    out = {}
    for name, column in (
        ("computing", "Computing"),
        ("communication", "Communication(Not Overlapped)"),
        ("free", "Free"),
    ):
        values = [float(r[column]) for r in rows]
        out[name] = (max(values) - min(values)) / mean
    return out


def share_of_step(rank: Rank, column: str) -> float:
    rows = rank.csv("step_trace_time.csv")
    return sum(float(r[column]) / float(r["Stage"]) for r in rows) / len(rows)


def sync_co_occurrence(rank: Rank) -> float:
    names = sorted(
        (ns(e["ts"]), e["name"])
        for e in rank.slices("CANN")
        if e["name"].startswith(("AscendCL@aclrtSynchronizeStream", "Node@launch"))
    )
    launches = sum(1 for _, n in names if n.startswith("Node@launch"))
    paired = sum(
        1
        for (_, a), (_, b) in itertools.pairwise(names)
        if a.startswith("Node@launch") and b.startswith("AscendCL@aclrtSynchronizeStream")
    )
    return paired / launches if launches else 0.0


def per_step(rank: Rank, process: str, name: str) -> dict[int, tuple[int, int]]:
    """(count, total ns) of events named `name` inside each ProfilerStep window."""
    out = {}
    for step, (start, end) in rank.steps.items():
        hits = [
            ns(e["dur"])
            for e in rank.slices(process)
            if e["name"] == name and start <= ns(e["ts"]) and ns(e["ts"]) + ns(e["dur"]) <= end
        ]
        out[step] = (len(hits), sum(hits))
    return out


def _ratio(row: dict[str, str], name: str) -> float:
    """The reference's prefix-tolerant PMU lookup (mac* never from aiv_, vec* never from aic_)."""
    for key in (name, f"aic_{name}", f"aiv_{name}"):
        if (key.startswith("aiv_mac") or key.startswith("aic_vec")) or key not in row:
            continue
        try:
            return float(row[key])
        except ValueError:
            return 0.0
    return 0.0


def no_bound(row: dict[str, str]) -> bool:
    ratios = [
        _ratio(row, n)
        for n in ("vec_ratio", "mac_ratio", "scalar_ratio", "mte1_ratio", "mte2_ratio", "mte3_ratio")
    ]
    return any(ratios) and max(ratios) <= 0.8


def block_dim_flagged(row: dict[str, str], cores: int, vector_cores: int) -> bool:
    core, block = row["Accelerator Core"], int(row["Block Dim"])
    if core == "AI_CORE":
        return block % cores != 0
    if core == "AI_VECTOR_CORE":
        return block % vector_cores != 0
    if core == "MIX_AIC":
        return block % vector_cores != 0 and int(row["Mix Block Dim"]) % vector_cores != 0
    return False


def frequency_decrease(rank: Rank) -> dict[str, float]:
    """Per kernel name: mean relative drop below the nominal AI Core frequency (sample active at the end)."""
    nominal = int(rank.device_info["aic_frequency"])
    samples = sorted((ns(e["ts"]), e["args"]["MHz"]) for e in rank.events if e["name"] == "AI Core Freq")
    drops: dict[str, list[float]] = defaultdict(list)
    for e in rank.slices("Ascend Hardware"):
        if e["args"]["Task Type"] not in ("AI_CORE", "MIX_AIC"):
            continue
        end = ns(e["ts"]) + ns(e["dur"])
        mhz = [m for t, m in samples if t <= end][-1]
        drops[e["name"]].append((nominal - mhz) / nominal)
    return {name: sum(v) / len(v) for name, v in drops.items()}


def packet_ratio(rank: Rank) -> float:
    ops = small = 0
    for step in rank.json("communication.json").values():
        for op in step["collective"].values():
            size = op["Communication Bandwidth Info"]["SDMA"]["Transit Size(MB)"]
            if size:
                ops += 1
                small += size < 16
    return small / ops if ops else 0.0


def unaligned_tasks(rank: Rank) -> list[dict[str, Any]]:
    return [
        e
        for e in rank.slices("HCCL")
        if e["name"].split("_")[0] in ("Memcpy", "Reduce")
        and e["args"]["transport type"] == "SDMA"
        and e["args"]["link type"] != "ON_CHIP"
        and e["args"]["size(Byte)"] > 512
        and e["args"]["size(Byte)"] % 512
    ]


def env_issues(env: dict[str, str]) -> list[str]:
    """The variables the reference flags (reference-advisor.md §2.4)."""
    rules = {
        "ASCEND_GLOBAL_LOG_LEVEL": lambda v: v != "" and int(v) != 3,
        "HCCL_RDMA_TC": lambda v: v != "",
        "HCCL_RDMA_SL": lambda v: v != "",
        "ACLNN_CACHE_LIMIT": lambda v: v == "" or int(v) < 10000,
        "HOST_CACHE_CAPACITY": lambda v: v == "" or int(v) == 0,
        "PYTORCH_NPU_ALLOC_CONF": lambda v: "expandable_segments:True" not in v,
        "ASCEND_LAUNCH_BLOCKING": lambda v: v != "" and int(v) == 1,
        "HCCL_ALGO": lambda v: v != "",
    }
    return [name for name, value in env.items() if name in rules and rules[name](value)]


AFFINITY_ATEN = {
    "aten::gelu",
    "aten::softmax",
    "aten::_softmax",
    "aten::permute",
    "aten::transpose",
    "aten::rsqrt",
    "aten::layer_norm",
    "aten::silu",
    "aten::reciprocal",
}
STOCK_OPTIMIZERS = ("AdamW", "SGD", "Adadelta", "Lamb", "AdamP", "BertAdam", "RMSprop", "RMSpropTF", "Adam")


# -- tests on a clean run -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    return synth(tmp_path_factory.mktemp("synth"), "clean", ranks=2, steps=(12, 13, 14), seed=5)


def test_layout_and_every_file_parses(clean):
    ranks = ranks_of(clean)
    assert [r.rank for r in ranks] == [0, 1]
    for r in ranks:
        host, pid, stamp = r.folder.name.removesuffix("_ascend_pt").rsplit("_", 2)
        assert host.startswith("synth-node") and pid.isdigit() and len(stamp) == 17 and stamp.isdigit()
        assert {p.name for p in r.out.iterdir()} == OUTPUT_FILES
        assert isinstance(r.events, list) and r.events
        for name in OUTPUT_FILES - {"trace_view.json", "communication.json", "communication_matrix.json"}:
            assert r.csv(name), name
        info = json.loads((r.folder / f"profiler_info_{r.rank}.json").read_text())
        assert info["rank_id"] == r.rank and info["config"]["experimental_config"]["_export_type"] == "text"
        assert set(r.metadata) == {"ENV_VARIABLES", "distributed_args", "parallel_group_info"}
        assert r.metadata["distributed_args"]["world_size"] == 2
        [group] = r.metadata["parallel_group_info"].values()
        assert group["global_ranks"] == [0, 1] and group["group_rank"] == r.rank
        assert r.device_info["ai_core_num"] == 24 and r.device_info["aic_frequency"] == "1800"
    truth = truth_of(clean)
    assert truth["seed"] == 5 and truth["injected"] == [] and truth["spec"]["steps"] == [12, 13, 14]


def test_profiler_formatting(clean):
    r = ranks_of(clean)[0]
    raw = (r.out / "kernel_details.csv").read_bytes()
    assert raw.count(b"\r\n") == raw.count(b"\n") and b'"""' in raw
    first = r.csv("kernel_details.csv")[0]
    assert first["Start Time(us)"].endswith("\t") and len(first["Start Time(us)"].strip().split(".")[1]) == 3
    assert (r.out / "step_trace_time.csv").read_bytes().endswith(b"\r\n")
    assert b"\r\n" not in (r.out / "op_statistic.csv").read_bytes()
    trace = (r.out / "trace_view.json").read_bytes()
    assert trace.startswith(b'[{"ph": "M", "name": "process_name"') and b'"ts": "' in trace
    for e in r.events:
        if "ts" in e:
            assert isinstance(e["ts"], str)
    assert set(r.processes.values()) >= {
        "Python",
        "CANN",
        "Ascend Hardware",
        "HCCL",
        "Overlap Analysis",
        "AI Core Freq",
    }
    samples = [e for e in r.events if e["name"] == "AI Core Freq"]
    assert "." not in samples[-1]["ts"]  # the profiler's closing sample has a whole-µs ts


def test_every_kernel_is_a_device_task_launched_by_a_host_op(clean):
    for r in ranks_of(clean):
        rows = r.csv("kernel_details.csv")
        assert {row["Accelerator Core"] for row in rows} >= {"AI_CORE", "AI_VECTOR_CORE", "MIX_AIV", "HCCL"}
        assert_kernels_launched(r)


def assert_kernels_launched(r: Rank) -> None:
    """Every kernel_details row is a device task (or HCCL op) at the same ns, linked by a
    torch_to_npu flow from a host op whose span covers the launch."""
    hardware = {ns(e["ts"]): e for e in r.slices("Ascend Hardware")}
    hccl_ops = {ns(e["ts"]): e for e in r.slices("HCCL") if e["tid"] == 0}
    flows = defaultdict(dict)
    for e in r.events:
        if e.get("name") == "torch_to_npu":
            flows[e["id"]][e["ph"]] = e
    host_ops = [
        (ns(e["ts"]), ns(e["ts"]) + ns(e["dur"]), e["tid"])
        for e in r.slices("Python")
        if e.get("cat") == "cpu_op"
    ]
    rows = r.csv("kernel_details.csv")
    for row in rows:
        start = ns(row["Start Time(us)"])
        device = hccl_ops[start] if row["Accelerator Core"] == "HCCL" else hardware[start]
        assert device["name"] == row["Name"]
        assert ns(device["dur"]) == ns(row["Duration(us)"])
        flow = flows[start]
        assert ns(flow["f"]["ts"]) == start and flow["f"]["pid"] == device["pid"]
        launch = flow["s"]
        assert ns(launch["ts"]) <= start
        assert any(a <= ns(launch["ts"]) <= b and tid == launch["tid"] for a, b, tid in host_ops)
    assert len(hardware) == sum(1 for row in rows if row["Accelerator Core"] != "HCCL")


def test_events_nest_on_every_thread(clean):
    for r in ranks_of(clean):
        assert_events_nest(r)


def assert_events_nest(r: Rank) -> None:
    threads = defaultdict(list)
    for e in r.events:
        if e["ph"] == "X":
            threads[(e["pid"], e["tid"])].append((ns(e["ts"]), ns(e["ts"]) + ns(e["dur"])))
    for key, spans in threads.items():
        open_ends: list[int] = []
        for start, end in sorted(spans, key=lambda s: (s[0], -s[1])):
            while open_ends and open_ends[-1] <= start:
                open_ends.pop()
            assert not open_ends or end <= open_ends[-1], key
            open_ends.append(end)


def test_step_trace_equals_overlap_analysis_sums(clean):
    for r in ranks_of(clean):
        assert_step_trace_matches_trace(r)


def assert_step_trace_matches_trace(r: Rank) -> None:
    """step_trace_time.csv as torch_npu's TraceStepTimeParser derives it from the trace: the Overlap
    Analysis slices of each step, Bubble the hcom_receive ops, Stage and the not-overlapped time
    without them, Preparing up to the first device task."""
    columns = ("Computing", "Communication(Not Overlapped)", "Communication", "Free")
    slices = r.slices("Overlap Analysis")
    receives = [e for e in r.slices("HCCL") if e["name"].startswith("hcom_receive")]
    kernels = r.csv("kernel_details.csv")
    for row in r.csv("step_trace_time.csv"):
        start, end = r.steps[int(row["Step"])]
        sums = Counter()
        for e in slices:
            if start <= ns(e["ts"]) and ns(e["ts"]) + ns(e["dur"]) <= end:
                sums[e["name"]] += ns(e["dur"])
        for column in columns:
            assert sums[column] == ns(row[column]), (r.rank, row["Step"], column)
        bubble = sum(ns(e["dur"]) for e in receives if start <= ns(e["ts"]) < end)
        not_overlapped = ns(row["Communication(Not Overlapped)"])
        assert ns(row["Bubble"]) == bubble
        assert ns(row["Stage"]) == ns(row["Computing"]) + not_overlapped + ns(row["Free"]) - bubble
        assert ns(row["Communication(Not Overlapped and Exclude Receive)"]) == not_overlapped - bubble
        assert ns(row["Overlapped"]) == ns(row["Communication"]) - not_overlapped
        first_kernel = min(ns(k["Start Time(us)"]) for k in kernels if k["Step Id"] == row["Step"])
        assert ns(row["Preparing"]) == first_kernel - start


def test_op_statistic_aggregates_kernel_details(clean):
    for r in ranks_of(clean):
        assert_op_statistic_aggregates(r)


def assert_op_statistic_aggregates(r: Rank) -> None:
    totals: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for row in r.csv("kernel_details.csv"):
        if row["Accelerator Core"] != "HCCL":
            entry = totals[(row["Type"], row["Accelerator Core"])]
            entry[0] += 1
            entry[1] += ns(row["Duration(us)"])
    stats = r.csv("op_statistic.csv")
    assert len(stats) == len(totals)
    assert [ns(s["Total Time(us)"]) for s in stats] == sorted(
        (ns(s["Total Time(us)"]) for s in stats), reverse=True
    )
    for s in stats:
        count, total = totals[(s["OP Type"], s["Core Type"])]
        assert int(s["Count"]) == count and ns(s["Total Time(us)"]) == total
    assert sum(float(s["Ratio(%)"]) for s in stats) == pytest.approx(100, abs=0.05)


def test_communication_agrees_across_ranks(tmp_path):
    root = synth(tmp_path, "slow", ranks=4, steps=(1, 2), inject=("cluster.slow_rank",))
    ranks = ranks_of(root)
    ops = [r.json("communication.json") for r in ranks]
    assert all(list(o) == ["step1", "step2"] for o in ops)
    names = {tuple(sorted(o["step1"]["collective"])) for o in ops}
    assert len(names) == 1 and "Total Op Info" in next(iter(names))
    slow = expected(root, "cluster.slow_rank")["ranks"][0]
    for key in next(iter(names)):
        if key == "Total Op Info":
            continue
        infos = {
            r.rank: o["step1"]["collective"][key]["Communication Time Info"]
            for r, o in zip(ranks, ops, strict=True)
        }
        ends = {rank: i["Start Timestamp(us)"] + i["Elapse Time(ms)"] * 1000 for rank, i in infos.items()}
        assert max(ends.values()) - min(ends.values()) < 1.0  # all ranks leave the all-reduce together
        waits = {rank: i["Synchronization Time(ms)"] for rank, i in infos.items()}
        assert min(waits, key=waits.get) == slow  # the slow rank arrives last and waits least
        assert all(waits[rank] > 1.0 for rank in waits if rank != slow)
    matrix = ranks[0].json("communication_matrix.json")["step1"]["collective"]
    assert any(k.startswith("allreduce-total@") for k in matrix)
    group_hash = next(k for k in next(iter(names)) if "@" in k).split("@")[1]
    assert all(k.split("@")[1] == group_hash for k in matrix)


def test_determinism(tmp_path):
    spec = {"ranks": 2, "steps": (3, 4), "seed": 11, "inject": ("schedule.gc", "computation.aicpu")}
    a, b = synth(tmp_path, "a", **spec), synth(tmp_path, "b", **spec)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for f in files:
        if f.name != "ground_truth.json":  # it records the generation time
            assert (a / f).read_bytes() == (b / f).read_bytes(), f
    truth_a, truth_b = truth_of(a), truth_of(b)
    assert truth_a.pop("generation")["trace_view_bytes"] == truth_b.pop("generation")["trace_view_bytes"]
    assert truth_a == truth_b
    other = synth(tmp_path, "c", **{**spec, "seed": 12})
    trace = next(other.glob("*/ASCEND_PROFILER_OUTPUT/trace_view.json")).read_bytes()
    assert trace != next(a.glob("*/ASCEND_PROFILER_OUTPUT/trace_view.json")).read_bytes()


@pytest.mark.parametrize("size_mb", [2, 5])
def test_size_targeting(tmp_path, size_mb):
    root = synth(tmp_path, "sized", ranks=1, size_mb=size_mb)
    size = (ranks_of(root)[0].out / "trace_view.json").stat().st_size
    assert size == pytest.approx(size_mb * 1e6, rel=0.10)
    truth = truth_of(root)
    assert len(truth["spec"]["steps"]) >= 10 and truth["generation"]["trace_view_bytes"]["0"] == size


def test_clean_run_stays_under_every_threshold(clean):
    ranks = ranks_of(clean)
    assert max(slow_rank_gaps(ranks).values()) < 0.03
    truth = truth_of(clean)
    assert truth["incidental"] == [] and max(truth["slow_rank_gaps"].values()) < 0.03
    sdma = []
    for r in ranks:
        rows = r.csv("kernel_details.csv")
        assert not [row for row in rows if row["Accelerator Core"] == "AI_CPU"]
        assert any(row["OP State"] == "static" for row in rows)
        assert not [row for row in rows if block_dim_flagged(row, 24, 48)]
        assert not [row for row in rows if no_bound(row) and float(row["Duration(us)"]) > 20]
        assert not [e for e in r.slices("Python GC") if ns(e["dur"]) >= 1_000_000]
        assert sync_co_occurrence(r) <= 0.05
        assert max(n for n, _ in per_step(r, "CANN", "AscendCL@aclopCompileAndExecute").values()) == 0
        assert not [
            e for e in r.slices("Python") if "dataloader" in e["name"].lower() and ns(e["dur"]) >= 10**7
        ]
        for api in ("AscendCL@aclMallocMemInner", "AscendCL@aclrtFreePhysical", "AscendCL@aclrtFree"):
            assert max(total for _, total in per_step(r, "CANN", api).values()) < 10**7 / 10
        assert not [e for e in r.slices("Python") if e["name"] in ("aten::item", "aten::_local_scalar_dense")]
        assert max(frequency_decrease(r).values()) == 0.0
        assert packet_ratio(r) == 0.0 and unaligned_tasks(r) == []
        assert share_of_step(r, "Communication(Not Overlapped)") < 0.03 and share_of_step(r, "Free") < 0.05
        assert env_issues(r.metadata["ENV_VARIABLES"]) == []
        names = {e["name"] for e in r.slices("Python")}
        assert not names & AFFINITY_ATEN
        assert not [
            n
            for n in names
            if n.startswith("Optimizer.step#") and n.split("#")[1].split(".")[0] in STOCK_OPTIMIZERS
        ]
        for step in r.json("communication.json").values():
            for key, op in step["collective"].items():
                info = op["Communication Bandwidth Info"]
                assert info["RDMA"]["Transit Time(ms)"] < 4000
                if key != "Total Op Info":
                    sdma.append(info["SDMA"]["Bandwidth(GB/s)"])
    assert min(sdma) > 14.4 * 1.1 and (max(sdma) - min(sdma)) / (sum(sdma) / len(sdma)) < 0.02


# -- the demo keeps its API and its exact numbers ----------------------------------------------------


def test_demo_api_unchanged(tmp_path):
    spec = DemoSpec(ranks=1, steps=(4,), seed=3)
    [item] = plan_demo(spec)
    assert item.step_ns == item.computing_ns + item.not_overlapped_ns + item.free_ns
    root = write_demo_profile(tmp_path / "d", spec=spec)
    [r] = ranks_of(root)
    [row] = r.csv("step_trace_time.csv")
    assert ns(row["Computing"]) == item.computing_ns and ns(row["Free"]) == item.free_ns
    assert ns(row["Preparing"]) == item.preparing_ns and ns(row["Overlapped"]) == item.overlapped_ns
    assert write_demo_profile(tmp_path / "e", ranks=3, steps=[1, 2], seed=2) == tmp_path / "e"
    assert len(ranks_of(tmp_path / "e")) == 3
    with pytest.raises(InputError, match="not empty"):
        write_demo_profile(tmp_path / "e")


# -- the command line ---------------------------------------------------------------------------------


def test_cli_synth(tmp_path, capsys):
    dest = tmp_path / "out"
    code = main(
        [
            "synth",
            str(dest),
            "--ranks",
            "2",
            "--steps",
            "3",
            "--inject",
            "gc,aicpu",
            "--inject-ranks",
            "1",
            "--seed",
            "4",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0 and out.strip() == str(dest) and err == ""
    truth = truth_of(dest)
    assert [(e["check"], e["ranks"]) for e in truth["injected"]] == [
        ("schedule.gc", [1]),
        ("computation.aicpu", [1]),
    ]
    assert truth["spec"]["steps"] == [1, 2, 3] and truth["seed"] == 4
    assert main(["synth", str(dest)]) == 2
    assert "already exists and is not empty" in capsys.readouterr().err
    for bad in (
        ["--inject", "nope"],
        ["--ranks", "1", "--inject", "slow_rank"],
        ["--export", "csv"],
        ["--size-mb", "x"],
        ["--steps", "5-3"],
        ["--inject-ranks", "7"],
    ):
        assert main(["synth", str(tmp_path / "bad"), *bad]) == 2, bad
        assert capsys.readouterr().err.startswith("performance-advisor: error:")


# -- the db export -----------------------------------------------------------------------------------

DB_CORPUS = Path(__file__).resolve().parents[1] / ".." / "shared" / "corpus" / "ascend-db-level1-2rank"


def _columns(con: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in con.execute(f'PRAGMA table_info("{table}")')]


def test_db_export_holds_the_same_content(tmp_path):
    root = synth(tmp_path, "both", ranks=2, steps=(1, 2), export="both", inject=("schedule.gc",))
    for r in ranks_of(root):
        db = sqlite3.connect(r.out / f"ascend_pytorch_profiler_{r.rank}.db")
        analysis = sqlite3.connect(r.out / "analysis.db")
        strings = dict(db.execute("SELECT id, value FROM STRING_IDS"))
        kernels = db.execute(
            "SELECT c.name, t.startNs, t.endNs, c.opState FROM COMPUTE_TASK_INFO c"
            " JOIN TASK t USING (globalTaskId) ORDER BY t.startNs"
        ).fetchall()
        rows = [row for row in r.csv("kernel_details.csv") if row["Accelerator Core"] != "HCCL"]
        assert [(strings[n], a, b - a, strings[s]) for n, a, b, s in kernels] == [
            (row["Name"], ns(row["Start Time(us)"]), ns(row["Duration(us)"]), row["OP State"]) for row in rows
        ]
        # Every device task is reachable from the framework op that launched it.
        linked = db.execute(
            "SELECT COUNT(DISTINCT t.globalTaskId) FROM PYTORCH_API p"
            " JOIN CONNECTION_IDS c ON c.id = p.connectionId JOIN TASK t ON t.connectionId = c.connectionId"
        ).fetchone()[0]
        assert linked == db.execute("SELECT COUNT(*) FROM TASK").fetchone()[0]
        assert dict(db.execute("SELECT id, endNs - startNs FROM STEP_TIME")) == {
            step: end - start for step, (start, end) in r.steps.items()
        }
        assert db.execute("SELECT COUNT(*) FROM GC_RECORD").fetchone()[0] == len(r.slices("Python GC"))
        assert db.execute("SELECT COUNT(*) FROM CANN_API").fetchone()[0] == len(r.slices("CANN"))
        step_rows = analysis.execute("SELECT step, computing, free, preparing FROM StepTraceTime").fetchall()
        assert step_rows == [
            (row["Step"], float(row["Computing"]), float(row["Free"]), float(row["Preparing"]))
            for row in r.csv("step_trace_time.csv")
        ]
        ops = {k for step in r.json("communication.json").values() for k in step["collective"] if "@" in k}
        names = analysis.execute("SELECT hccl_op_name || '@' || group_name FROM CommAnalyzerTime").fetchall()
        assert {n for (n,) in names} == ops
        if DB_CORPUS.exists():
            corpus = sqlite3.connect(
                f"file:{next(DB_CORPUS.glob('rank0*/*/ascend_pytorch_profiler_0.db'))}?mode=ro", uri=True
            )
            tables = {t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            for table in tables:
                theirs = _columns(corpus, table)
                if theirs:  # a table the recording has too: same columns (opState is the newer CANN's extra)
                    assert _columns(db, table) == theirs + (
                        ["opState"] if table == "COMPUTE_TASK_INFO" else []
                    )


def test_db_only_export(tmp_path):
    root = synth(tmp_path, "db", ranks=1, steps=(1,), export="db")
    [r] = ranks_of(root)
    assert {p.name for p in r.out.iterdir()} == {"ascend_pytorch_profiler_0.db", "analysis.db"}
    info = json.loads((r.folder / "profiler_info_0.json").read_text())
    assert info["config"]["experimental_config"]["_export_type"] == "db"
