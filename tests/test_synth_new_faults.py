"""The faults of the checks that were never injected (bandwidth contention, AI Core performance, graph
fusion, SyncBatchNorm, fusible operators) and GC pauses without GC events: each visible in the raw
files of both exports with the numbers of ground_truth.json, each found by its own check where that
check is settled (contention and conjectured GC are being rewritten: raw data only), the clean run
clean for those checks, and every fault's collateral declared.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import re
import sqlite3
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from advisor.checks.catalogue import CATALOGUE
from advisor.checks.knowledge import knowledge
from advisor.checks.registry import CheckResult, NotEvaluated, RankContext, all_checks
from advisor.cli import main
from advisor.errors import InputError
from advisor.formats import discover, load_table
from advisor.options import AnalysisOptions
from advisor.report.messages import Messages
from advisor.synth.faults import COLLATERAL, FAULTS

from . import test_synth
from .test_synth import Rank, expected, ns, ranks_of, synth, truth_of

NEW = (
    "communication.bandwidth_contention",
    "computation.ai_core_performance",
    "computation.graph_fusion",
    "schedule.sync_batchnorm",
    "schedule.fusible_operators",
)
MIB = 1 << 20


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """One 2-rank, 3-step profile per new fault, GC pauses without events and a clean run, each
    written in both exports."""
    base = tmp_path_factory.mktemp("new_faults")
    out = {f: synth(base, f, ranks=2, seed=3, export="both", inject=(f,)) for f in NEW}
    out["gc"] = synth(base, "gc", ranks=2, seed=3, export="both", inject=("schedule.gc",), gc_events=False)
    out["clean"] = synth(base, "clean", ranks=2, seed=3, export="both")
    return out


def findings_by_rank(root: Path, check: str, export: str, skip: bool = False) -> dict[int, list[Any] | None]:
    """One rank-scope check on every rank of `root`, read from `export`, as the engine runs it: each
    rank's findings; with `skip`, None where it is not evaluated (else NotEvaluated propagates)."""
    spec = next(s for s in all_checks() if s.id == check)
    profile = discover(root)
    out: dict[int, list[Any] | None] = {}
    for rank in profile.ranks:
        rank = dataclasses.replace(rank, format=f"ascend_{export}")
        tables = {name: load_table(name, rank, use_cache=False) for name in spec.needs}
        for name in spec.optional:
            with contextlib.suppress(InputError):
                tables[name] = load_table(name, rank, use_cache=False)
        try:
            result = spec.fn(RankContext(profile, rank, tables, AnalysisOptions(), Messages("en")))
        except NotEvaluated:
            if not skip:
                raise
            out[rank.rank] = None
            continue
        out[rank.rank] = result.findings if isinstance(result, CheckResult) else result
    return out


def run_check(root: Path, check: str, export: str) -> list[Any]:
    """One rank-scope check's findings on every rank of `root`, read from `export`."""
    return [f for found in findings_by_rank(root, check, export).values() for f in found or ()]


def db(r: Rank) -> sqlite3.Connection:
    return sqlite3.connect(r.out / f"ascend_pytorch_profiler_{r.rank}.db")


def db_strings(con: sqlite3.Connection) -> dict[int, str]:
    return dict(con.execute("SELECT id, value FROM STRING_IDS"))


def db_kernels(r: Rank) -> list[tuple[str, str, int, int]]:
    """(name, input shapes, start ns, end ns) of the compute tasks of the db export, in start order."""
    con = db(r)
    strings = db_strings(con)
    rows = con.execute(
        "SELECT c.name, c.inputShapes, t.startNs, t.endNs FROM COMPUTE_TASK_INFO c"
        " JOIN TASK t USING (globalTaskId) ORDER BY t.startNs"
    )
    return [(strings[n], strings[s], a, b) for n, s, a, b in rows]


def text_kernels(r: Rank) -> list[tuple[str, str, int, int]]:
    out = []
    for row in r.csv("kernel_details.csv"):
        if row["Accelerator Core"] != "HCCL":
            start = ns(row["Start Time(us)"])
            out.append((row["Name"], row["Input Shapes"], start, start + ns(row["Duration(us)"])))
    return sorted(out, key=lambda k: k[2])


def kernels_of(r: Rank, export: str) -> list[tuple[str, str, int, int]]:
    return text_kernels(r) if export == "text" else db_kernels(r)


def covered(blocks: list[tuple[int, int]], start: int, end: int) -> int:
    return sum(max(0, min(b, end) - max(a, start)) for a, b in blocks)


def step_of(r: Rank, at: int) -> int:
    return next(step for step, (a, b) in r.steps.items() if a <= at < b)


EXPORTS = ("text", "db")


# -- communication.bandwidth_contention ---------------------------------------------------------------


CONTENDED_TYPES = ("Memcpy", "Reduce_Inline")
CONCURRENT_SHARE = knowledge("communication")["bandwidth_contention"]["concurrent_share"]


def sdma_copies(r: Rank, export: str, task_type: str) -> list[tuple[str, int, int, int]]:
    """(op name, start, end, bytes) of the SDMA tasks of `task_type` of at least 1 MiB over a link
    between chips (a reduction's Reduce_Inline after an RDMA receive runs ON_CHIP)."""
    if export == "text":
        ops = [
            (ns(e["ts"]), ns(e["ts"]) + ns(e["dur"]), e["name"]) for e in r.slices("HCCL") if e["tid"] == 0
        ]
        out = []
        for e in r.slices("HCCL"):
            args = e.get("args", {})
            if (
                e["name"] == task_type
                and args["transport type"] == "SDMA"
                and args["link type"] != "ON_CHIP"
                and args["size(Byte)"] >= MIB
            ):
                start = ns(e["ts"])
                name = next(n for a, b, n in ops if a <= start < b)
                out.append((name, start, start + ns(e["dur"]), args["size(Byte)"]))
        return out
    con = db(r)
    strings = db_strings(con)
    sdma = con.execute("SELECT id FROM ENUM_HCCL_TRANSPORT_TYPE WHERE name = 'SDMA'").fetchone()[0]
    links = dict(con.execute("SELECT id, name FROM ENUM_HCCL_LINK_TYPE"))
    rows = con.execute(
        "SELECT c.name, c.taskType, c.linkType, t.startNs, t.endNs, c.size FROM COMMUNICATION_TASK_INFO c"
        " JOIN TASK t USING (globalTaskId) WHERE c.transportType = ? AND c.size >= ?",
        (sdma, MIB),
    )
    return [
        (strings[op], a, b, size)
        for op, kind, link, a, b, size in rows
        if strings[kind] == task_type and links[link] != "ON_CHIP"
    ]


@pytest.mark.parametrize("export", EXPORTS)
@pytest.mark.parametrize("task_type", CONTENDED_TYPES)
def test_bandwidth_contention_in_raw_files(runs, export, task_type):
    root = runs["communication.bandwidth_contention"]
    entry = expected(root, "communication.bandwidth_contention")
    want = entry["expected"][task_type]
    # A Reduce_Inline reduces what its Memcpy brought in a quarter of the time: 4x the bandwidth.
    nominal = entry["expected"]["nominal_gbps"] * (4 if task_type == "Reduce_Inline" else 1)
    sides: dict[str, list[tuple[str, int, int, int]]] = {"contended": [], "alone": []}
    alone_steps = set()
    for r in ranks_of(root):
        blocks = [(a, b) for *_, a, b in kernels_of(r, export)]
        for name, start, end, size in sdma_copies(r, export, task_type):
            share = covered(blocks, start, end) / (end - start)
            # Beside compute all along, or alone. The reduction at a bucket's end can outlast the
            # backward kernels beside it; it stays concurrent by the check's rule (half of it).
            assert share >= (0.99 if task_type == "Memcpy" else CONCURRENT_SHARE) or share == 0.0
            sides["contended" if share else "alone"].append((name, start, end, size))
            if not share:
                alone_steps.add((r.rank, step_of(r, start)))
    assert alone_steps == {(r.rank, step) for r in ranks_of(root) for step in entry["steps"]}
    for side, copies in sides.items():
        got = want[side]
        assert len(copies) == got["transfers"] > 0
        assert sorted({c[0] for c in copies}) == got["ops"]
        gbps = sum(c[3] for c in copies) / sum(c[2] - c[1] for c in copies)
        assert gbps == pytest.approx(got["bandwidth_gbps"], rel=1e-4)
    # Beside compute at most half the nominal bandwidth; alone the nominal one, on the same link.
    assert want["contended"]["bandwidth_gbps"] <= 0.5 * nominal
    assert want["alone"]["bandwidth_gbps"] == pytest.approx(nominal, rel=0.01)
    assert {c[3] for c in sides["contended"]} == {c[3] for c in sides["alone"]}  # same size class


@pytest.mark.parametrize("export", EXPORTS)
def test_bandwidth_contention_reports_each_kind_the_fault_slows(runs, export):
    """Copies and the reductions after them, each against its own kind's transfers that ran alone;
    the title names the kind that loses the most time, with that kind's figures from the table."""
    check = "communication.bandwidth_contention"
    want = expected(runs[check], check)["expected"]
    found = [f for fs in findings_by_rank(runs[check], check, export).values() for f in fs]
    assert len(found) == 2  # one per rank
    for task_type in CONTENDED_TYPES:
        rows = [r for f in found for r in f.evidence[1].rows if r[:2] == [task_type, "HCCS"]]
        assert sum(row[7] for row in rows) == want[task_type]["contended"]["transfers"]
        for row in rows:
            assert row[8] == pytest.approx(want[task_type]["contended"]["bandwidth_gbps"], rel=0.01)
            assert row[3] == pytest.approx(want[task_type]["alone"]["bandwidth_gbps"], rel=0.01)
    for finding in found:
        memcpy = next(row for row in finding.evidence[1].rows if row[0] == "Memcpy")
        assert memcpy[9] == max(row[9] for row in finding.evidence[1].rows)
        figures = f"Memcpy over HCCS at a median {memcpy[8]:.2f} GB/s against {memcpy[3]:.2f} GB/s"
        assert figures in finding.title


def test_bandwidth_contention_keeps_steps_consistent(runs):
    root = runs["communication.bandwidth_contention"]
    test_synth.test_step_trace_equals_overlap_analysis_sums(root)
    test_synth.test_events_nest_on_every_thread(root)
    for r in ranks_of(root):
        for step in r.json("communication.json").values():
            for key, op in step["collective"].items():
                info = op["Communication Time Info"]
                if key != "Total Op Info":  # the slower copies are inside the op's wall time
                    assert info["Elapse Time(ms)"] >= info["Transit Time(ms)"] > 0


# -- computation.ai_core_performance -------------------------------------------------------------------


def _inner_bytes_unaligned(shapes: str) -> bool:
    first_two = shapes.strip('"').split(";")[:2]
    return any(int(s.split(",")[-1]) * 2 % 256 for s in first_two)


@pytest.mark.parametrize("export", EXPORTS)
def test_ai_core_performance_in_raw_files(runs, export):
    root = runs["computation.ai_core_performance"]
    entry = expected(root, "computation.ai_core_performance")
    want = entry["expected"]
    count = 0
    for r in ranks_of(root):
        kernels = kernels_of(r, export)
        total = sum(b - a for *_, a, b in kernels)
        slow = defaultdict(int)
        for name, shapes, a, b in kernels:
            if "MatMul" in name and _inner_bytes_unaligned(shapes) and name.startswith("aclnnMm_"):
                slow[shapes.strip('"')] += b - a
                count += 1
        shares = {shape: round(t / total, 4) for shape, t in slow.items()}
        assert shares == want["share_of_kernel_time_by_rank"][str(r.rank)]
        assert min(shares.values()) >= want["min_group_share"]
    assert count == want["kernels"]
    root_rows = [
        row for r in ranks_of(root) for row in r.csv("kernel_details.csv") if row["Type"] == "MatMulV2"
    ]
    for row in root_rows:
        if _inner_bytes_unaligned(row["Input Shapes"]):  # MTE2-bound: low mac, not unbound
            assert float(row["aic_mac_ratio"]) <= want["mac_ratio"] < 0.8 <= float(row["aic_mte2_ratio"])


# -- computation.graph_fusion --------------------------------------------------------------------------


def parse_dump(path: Path) -> dict[str, tuple[str, list[str]]]:
    """name -> (type, data inputs) of the ops of a GE protobuf-text dump (two-space indentation)."""
    ops, current = {}, None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line == "  op {":
            current = {"inputs": []}
        elif line == "  }" and current is not None:
            ops[current["name"]] = (current["type"], current["inputs"])
            current = None
        elif current is not None and (m := re.match(r'^    (name|type|input): "(.*)"$', line)):
            if m[1] == "input":
                current["inputs"].append(m[2].rsplit(":", 1)[0])
            else:
                current[m[1]] = m[2]
    return ops


@pytest.mark.parametrize("export", EXPORTS)
def test_graph_fusion_in_raw_files(runs, export):
    root = runs["computation.graph_fusion"]
    entry = expected(root, "computation.graph_fusion")
    want = entry["expected"]
    for r in ranks_of(root):
        dump = r.folder / want["dump"]
        assert re.fullmatch(r"ge_proto_\d{5}_graph_1_Build\.txt", dump.name)
        ops = parse_dump(dump)
        chain = want["chain"]
        assert [ops[name][0] for name in chain] == want["chain_types"]
        for producer, consumer in itertools.pairwise(chain):
            assert producer in ops[consumer][1]
        names = Counter()
        for name, _, a, b in kernels_of(r, export):
            if name in chain:
                names[name] += b - a
        assert set(names) == set(chain)  # every matched node ran as a kernel of that name
        times = [names[n] for n in chain]
        assert sum(times) / 1000 == pytest.approx(want["by_rank"][str(r.rank)]["chain_us"], abs=1e-3)
        graph_ops = {n for n, (t, _) in ops.items() if t not in ("Data", "Const", "Reshape", "NetOutput")}
        assert graph_ops <= {name for name, *_ in kernels_of(r, export)}
    runs_of_graph = [
        e for r in ranks_of(root) for e in r.slices("Python") if e["name"] == "TorchNpuGraphBase::Run"
    ]
    assert len(runs_of_graph) == 2 * len(entry["steps"])  # one graph run per step and rank


# -- schedule.sync_batchnorm ---------------------------------------------------------------------------


@pytest.mark.parametrize("export", EXPORTS)
def test_sync_batchnorm_in_raw_files(runs, export):
    root = runs["schedule.sync_batchnorm"]
    entry = expected(root, "schedule.sync_batchnorm")
    want = entry["expected"]
    calls = gathers = 0
    sizes = set()
    for r in ranks_of(root):
        if export == "text":
            names = Counter(e["name"] for e in r.slices("Python"))
            gather_ops = [
                e for e in r.slices("HCCL") if e["tid"] == 0 and e["name"].startswith("hcom_allGather_")
            ]
            sizes |= {
                e["args"]["size(Byte)"]
                for e in r.slices("HCCL")
                if e["name"] == "Memcpy"
                and any(ns(g["ts"]) <= ns(e["ts"]) < ns(g["ts"]) + ns(g["dur"]) for g in gather_ops)
            }
            n_gathers = len(gather_ops)
        else:
            con = db(r)
            strings = db_strings(con)
            names = Counter(strings[n] for (n,) in con.execute("SELECT name FROM PYTORCH_API"))
            n_gathers = sum(
                1
                for (t,) in con.execute("SELECT opType FROM COMMUNICATION_OP")
                if strings[t] == "hcom_allGather_"
            )
            sizes |= {
                size
                for name, size in con.execute("SELECT name, size FROM COMMUNICATION_TASK_INFO")
                if strings[name].startswith("hcom_allGather_") and size
            }
        assert names["SyncBatchNorm"] == names["aten::batch_norm_gather_stats_with_counts"]
        assert names["autograd::engine::evaluate_function: SyncBatchNormBackward"] == names["SyncBatchNorm"]
        assert names["aten::batch_norm"] == 0  # replaced in every layer
        calls += names["SyncBatchNorm"]
        gathers += n_gathers
    assert calls == want["layer_calls"] == gathers == want["allgathers"]
    assert sorted(sizes) == want["allgather_bytes"]


def test_sync_batchnorm_idles_the_device_during_the_host_wait(runs):
    root = runs["schedule.sync_batchnorm"]
    want = expected(root, "schedule.sync_batchnorm")["expected"]
    idle = 0
    for r in ranks_of(root):
        spans = [
            (ns(e["ts"]), ns(e["ts"]) + ns(e["dur"]))
            for e in r.slices("Python")
            if e["name"] == "SyncBatchNorm"
        ]
        free = [
            (ns(e["ts"]), ns(e["ts"]) + ns(e["dur"]))
            for e in r.slices("Overlap Analysis")
            if e["name"] == "Free"
        ]
        steps = sum(ns(row["Stage"]) for row in r.csv("step_trace_time.csv"))
        mine = sum(covered(free, a, b) for a, b in spans)
        assert mine / steps == pytest.approx(want["idle_share_by_rank"][str(r.rank)], abs=2e-3)
        assert mine / steps >= want["min_idle_share"]
        idle += mine
    syncs = [
        e for r in ranks_of(root) for e in r.slices("CANN") if e["name"] == "AscendCL@aclrtSynchronizeStream"
    ]
    assert len(syncs) == want["host_syncs"] == want["layer_calls"]
    test_synth.test_events_nest_on_every_thread(root)
    test_synth.test_every_kernel_is_a_device_task_launched_by_a_host_op(root)


# -- schedule.fusible_operators ------------------------------------------------------------------------

EMA = ("aclnnMuls_MulAiCore_Mul", "aclnnMuls_MulAiCore_Mul", "aclnnAdd_AddAiCore_Add",
       "aclnnInplaceCopy_TensorMoveAiCore_TensorMove")  # fmt: skip


@pytest.mark.parametrize("export", EXPORTS)
def test_fusible_operators_in_raw_files(runs, export):
    root = runs["schedule.fusible_operators"]
    entry = expected(root, "schedule.fusible_operators")
    want = entry["expected"]
    busy = wall = count = 0
    for r in ranks_of(root):
        by_step = defaultdict(list)
        for kernel in kernels_of(r, export):
            if kernel[0] in EMA:
                by_step[step_of(r, kernel[2])].append(kernel)
        assert sorted(by_step) == entry["steps"]
        for kernels in by_step.values():
            assert tuple(k[0] for k in kernels) == EMA * (len(kernels) // 4)
            busy += sum(k[3] - k[2] for k in kernels)
            wall += kernels[-1][3] - kernels[0][2]
            count += len(kernels)
            gaps = [b[2] - a[3] for a, b in itertools.pairwise(kernels)]
            assert max(gaps) < 100_000  # ordinary launch gaps: tens of µs, no stalls
            assert sorted(gaps)[len(gaps) // 2] >= 10_000  # host-paced for most of the loop
            keys = Counter(tuple(k[:2] for k in kernels[i : i + 4]) for i in range(0, len(kernels), 4))
            assert max(keys.values()) > 5  # one 4-kernel sequence repeats more than 5 times a step
    assert count == want["kernels"]
    assert busy / 1000 == pytest.approx(want["kernel_us"], abs=1e-3)
    assert wall / 1000 == pytest.approx(want["wall_us"], abs=1e-3)
    assert busy / wall == pytest.approx(want["busy_share"], abs=1e-4) and want["busy_share"] < 0.4


# -- GC pauses without GC events -----------------------------------------------------------------------


def test_gc_without_events_in_raw_files(runs):
    root = runs["gc"]
    entry = expected(root, "schedule.gc")
    want = entry["expected"]
    assert want["gc_events_recorded"] is False and want["events"] == 0
    for r in ranks_of(root):
        assert "Python GC" not in r.processes.values()
        info = json.loads((r.folder / f"profiler_info_{r.rank}.json").read_text())
        assert info["config"]["experimental_config"]["_gc_detect_threshold"] is None
        con = db(r)
        assert not con.execute("SELECT name FROM sqlite_master WHERE name = 'GC_RECORD'").fetchall()
        host = [
            (ns(e["ts"]), ns(e["ts"]) + ns(e["dur"]))
            for e in r.slices("Python") + r.slices("CANN")
            if not e["name"].startswith("ProfilerStep#")
        ]
        device = [
            (ns(e["ts"]), ns(e["ts"]) + ns(e["dur"])) for e in r.slices("Ascend Hardware") + r.slices("HCCL")
        ]
        free = [
            (ns(e["ts"]), ns(e["ts"]) + ns(e["dur"]))
            for e in r.slices("Overlap Analysis")
            if e["name"] == "Free"
        ]
        db_host = [(int(a), int(b)) for a, b in con.execute("SELECT startNs, endNs FROM PYTORCH_API")]
        db_host = [
            (a, b) for a, b in db_host if b - a < 10**9 and (b - a) < min(e - s for s, e in r.steps.values())
        ]
        db_host += list(con.execute("SELECT startNs, endNs FROM CANN_API"))
        db_device = list(con.execute("SELECT startNs, endNs FROM TASK"))
        pauses = want["pauses"][str(r.rank)]
        assert sorted({p["step"] for p in pauses}) == entry["steps"] == sorted(r.steps)[::2]
        for pause in pauses:
            start = round(pause["start_us"] * 1000)
            end = start + round(pause["duration_us"] * 1000)
            assert 150_000_000 <= end - start <= 400_000_000
            # The Python thread simply stops: no op, no CANN call, nothing queued on the device.
            for spans in (host, device, db_host, db_device):
                assert covered(spans, start, end) == 0
            assert covered(free, start, end) == end - start
        total = sum(p["duration_us"] for p in pauses)
        assert total == pytest.approx(want["by_rank"][str(r.rank)]["total_us"])


def test_cli_no_gc_events(tmp_path, capsys):
    dest = tmp_path / "out"
    assert main(["synth", str(dest), "--steps", "2", "--inject", "gc", "--no-gc-events"]) == 0
    assert capsys.readouterr().out.strip() == str(dest)
    truth = truth_of(dest)
    assert truth["spec"]["gc_events"] is False
    assert expected(dest, "schedule.gc")["expected"]["events"] == 0


# -- the checks ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("check", NEW[1:])
@pytest.mark.parametrize("export", EXPORTS)
def test_check_finds_its_fault_on_its_ranks(runs, check, export):
    root = runs[check]
    findings = run_check(root, check, export)
    assert findings and {f.check for f in findings} == {check}
    assert sorted(rank for f in findings for rank in f.ranks) == expected(root, check)["ranks"]


@pytest.mark.parametrize("check", [*NEW, "schedule.gc"])
@pytest.mark.parametrize("export", EXPORTS)
def test_clean_run_stays_clean(runs, check, export):
    if check == "computation.graph_fusion":  # an eager run has no graph dump to read
        with pytest.raises(NotEvaluated, match="GE graph dump"):
            run_check(runs["clean"], check, export)
        return
    assert run_check(runs["clean"], check, export) == []


# -- collateral -----------------------------------------------------------------------------------------


def test_every_fault_declares_its_collateral(runs):
    assert set(COLLATERAL) == set(FAULTS)
    catalogue = {check for ids in CATALOGUE.values() for check in ids}
    for check, others in COLLATERAL.items():
        assert check not in others and set(others) <= catalogue, check
    for root in runs.values():
        for entry in truth_of(root)["injected"]:
            assert entry["collateral"] == list(COLLATERAL[entry["check"]])


def test_new_faults_are_reproducible(tmp_path):
    spec = {"ranks": 2, "steps": (1, 2), "seed": 9, "inject": NEW}
    a, b = synth(tmp_path, "a", **spec), synth(tmp_path, "b", **spec)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file() and p.name != "ground_truth.json")
    assert files == sorted(
        p.relative_to(b) for p in b.rglob("*") if p.is_file() and p.name != "ground_truth.json"
    )
    for f in files:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f
    truth_a, truth_b = truth_of(a), truth_of(b)
    truth_a.pop("generation")
    truth_b.pop("generation")
    assert truth_a == truth_b
