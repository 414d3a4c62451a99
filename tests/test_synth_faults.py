"""Every injected fault is visible in the raw files, crosses its check's threshold (reference-advisor.md
§2, Appendix A) and matches the numbers of ground_truth.json. Faults are grouped into three profiles
that do not mask each other, to keep the suite fast.
"""

from __future__ import annotations

from collections import defaultdict

import pytest

from advisor.synth.faults import BAD_ENV

from .test_synth import (
    AFFINITY_ATEN,
    block_dim_flagged,
    env_issues,
    expected,
    frequency_decrease,
    no_bound,
    ns,
    packet_ratio,
    per_step,
    ranks_of,
    share_of_step,
    slow_rank_gaps,
    sync_co_occurrence,
    synth,
    truth_of,
    unaligned_tasks,
)

HOST_FAULTS = (
    "schedule.gc",
    "computation.aicpu",
    "schedule.synchronize_stream",
    "schedule.host_sync",
    "schedule.operator_dispatch",
    "dataloader.slow",
    "memory.operators",
    "computation.ai_core_frequency",
    "computation.block_dim",
    "computation.operator_bound",
    "environment.variables",
    "schedule.affinity_api",
    "overall.idle",
)
COMM_FAULTS = (
    "cluster.slow_rank",
    "cluster.slow_link",
    "communication.small_packet",
    "communication.byte_alignment",
    "communication.exposed",
)


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    return synth(tmp_path_factory.mktemp("faults"), "host", ranks=2, steps=(1, 2, 3, 4), inject=HOST_FAULTS)


@pytest.fixture(scope="module")
def comm(tmp_path_factory):
    return synth(tmp_path_factory.mktemp("faults"), "comm", ranks=4, steps=(1, 2, 3), inject=COMM_FAULTS)


@pytest.fixture(scope="module")
def retrans(tmp_path_factory):
    return synth(
        tmp_path_factory.mktemp("faults"),
        "retrans",
        ranks=2,
        steps=(1, 2, 3),
        inject=("communication.retransmission", "computation.dynamic_shape"),
    )


def _hit(root, check):
    entry = expected(root, check)
    return [r for r in ranks_of(root) if r.rank in entry["ranks"]], entry


def test_ground_truth_lists_what_was_asked(host, comm, retrans):
    for root, faults in ((host, HOST_FAULTS), (comm, COMM_FAULTS)):
        assert [e["check"] for e in truth_of(root)["injected"]] == list(faults)
    entry = expected(host, "computation.ai_core_frequency")
    assert entry["ranks"] == [0] and entry["steps"] == [3, 4]
    assert expected(host, "schedule.gc")["steps"] == [1, 3]
    assert expected(comm, "cluster.slow_rank")["ranks"] == [3]


def test_gc(host):
    ranks, entry = _hit(host, "schedule.gc")
    events = [
        e for r in ranks for e in r.slices("Python GC") if e["cat"] == "GC" and ns(e["dur"]) >= 1_000_000
    ]
    want = entry["expected"]
    assert len(events) == want["events"] > 0
    assert sum(ns(e["dur"]) for e in events) / 1000 == pytest.approx(want["total_us"])
    steps = {
        step
        for r in ranks
        for step, (a, b) in r.steps.items()
        for e in r.slices("Python GC")
        if a <= ns(e["ts"]) <= b
    }
    assert steps == set(entry["steps"])


def test_aicpu(host):
    ranks, entry = _hit(host, "computation.aicpu")
    rows = [row for r in ranks for row in r.csv("kernel_details.csv") if row["Accelerator Core"] == "AI_CPU"]
    want = entry["expected"]
    assert len(rows) == want["kernels"] and sorted({row["Type"] for row in rows}) == want["op_types"]
    assert sum(ns(row["Duration(us)"]) for row in rows) / 1000 == pytest.approx(want["total_us"])
    assert min(float(row["Duration(us)"]) for row in rows) >= 20
    assert any("DOUBLE" in row["Input Data Types"] for row in rows)
    r = ranks[0]
    device = {ns(e["ts"]): e for e in r.slices("Ascend Hardware") if e["args"]["Task Type"] == "AI_CPU"}
    assert len(device) == len(
        [row for row in r.csv("kernel_details.csv") if row["Accelerator Core"] == "AI_CPU"]
    )


def test_synchronize_stream(host):
    ranks, entry = _hit(host, "schedule.synchronize_stream")
    for r in ranks:
        assert sync_co_occurrence(r) > 0.5
    assert entry["expected"]["co_occurrence_ratio"] > 0.5
    syncs = sum(1 for r in ranks for e in r.slices("CANN") if e["name"] == "AscendCL@aclrtSynchronizeStream")
    assert (
        syncs
        == entry["expected"]["sync_events"] + expected(host, "schedule.host_sync")["expected"]["sync_events"]
    )


def test_host_sync(host):
    ranks, entry = _hit(host, "schedule.host_sync")
    want = entry["expected"]
    idle = 0
    items = 0
    for r in ranks:
        kernels = sorted(
            (ns(k["Start Time(us)"]), ns(k["Duration(us)"]))
            for k in r.csv("kernel_details.csv")
            if k["Accelerator Core"] != "HCCL"
        )
        syncs = [
            (ns(e["ts"]), ns(e["ts"]) + ns(e["dur"]))
            for e in r.slices("CANN")
            if e["name"] == "AscendCL@aclrtSynchronizeStream" and e["tid"] == r.slices("Python")[0]["tid"]
        ]
        for e in r.slices("Python"):
            if e["name"] != "aten::item":
                continue
            items += 1
            start, end = ns(e["ts"]), ns(e["ts"]) + ns(e["dur"])
            assert any(start <= a and b <= end for a, b in syncs)
            before = max(k for k in kernels if k[0] < end)  # the kernel the host waited for
            after = min(k for k in kernels if k[0] > end)
            assert after[0] - (before[0] + before[1]) >= 1_000_000  # the device then idles >= 1 ms
            idle += after[0] - (before[0] + before[1])
    assert items == want["item_calls"] > 0
    assert idle / 1000 >= want["idle_after_us"] * 0.99


def test_operator_dispatch(host):
    ranks, entry = _hit(host, "schedule.operator_dispatch")
    for r in ranks:
        counts = per_step(r, "CANN", "AscendCL@aclopCompileAndExecute")
        assert min(n for n, _ in counts.values()) >= 20
    total = sum(n for r in ranks for n, _ in per_step(r, "CANN", "AscendCL@aclopCompileAndExecute").values())
    assert total == entry["expected"]["compile_events"]


def test_dataloader(host):
    ranks, entry = _hit(host, "dataloader.slow")
    slow = [
        e
        for r in ranks
        for e in r.slices("Python")
        if "dataloader" in e["name"].lower() and ns(e["dur"]) >= 10_000_000
    ]
    assert len(slow) == entry["expected"]["events"] == 8
    assert all("_SingleProcessDataLoaderIter" in e["name"] for e in slow)
    assert max(ns(e["dur"]) for e in slow) / 1000 == pytest.approx(entry["expected"]["max_us"])


def test_memory_operators(host):
    ranks, entry = _hit(host, "memory.operators")
    for api, want in entry["expected"]["apis"].items():
        totals = [total for r in ranks for _, total in per_step(r, "CANN", f"AscendCL@{api}").values()]
        assert min(totals) >= 10_000_000
        assert sum(totals) / 1000 == pytest.approx(want["total_us"])
    reserved = max(float(row["Total Reserved(MB)"]) for row in ranks[0].csv("memory_record.csv"))
    assert reserved == entry["expected"]["peak_reserved_mb"]
    assert reserved / entry["expected"]["capacity_mb"] > 0.9


def test_ai_core_frequency(host):
    ranks, entry = _hit(host, "computation.ai_core_frequency")
    [r] = ranks
    drops = frequency_decrease(r)
    assert min(drops.values()) >= 0.05
    assert sum(drops.values()) / len(drops) == pytest.approx(entry["expected"]["decrease_ratio"], abs=1e-3)
    other = next(x for x in ranks_of(host) if x.rank != r.rank)
    assert max(frequency_decrease(other).values()) == 0.0


def test_block_dim(host):
    ranks, entry = _hit(host, "computation.block_dim")
    info = ranks[0].device_info
    flagged = [
        row
        for r in ranks
        for row in r.csv("kernel_details.csv")
        if block_dim_flagged(row, info["ai_core_num"], info["aiv_num"])
    ]
    assert len(flagged) == entry["expected"]["kernels"] > 0
    assert sorted({row["Type"] for row in flagged}) == entry["expected"]["op_types"]


def test_operator_bound(host):
    ranks, entry = _hit(host, "computation.operator_bound")
    for r in ranks:
        rows = r.csv("kernel_details.csv")
        assert no_bound(rows[0])  # the reference only looks further when the first row is unbound
    flagged = [row for r in ranks for row in r.csv("kernel_details.csv") if no_bound(row)]
    assert len(flagged) == entry["expected"]["kernels"]
    assert {row["Type"] for row in flagged} == set(entry["expected"]["op_types"])
    assert max(float(row["Duration(us)"]) for row in flagged) == pytest.approx(entry["expected"]["max_us"])
    assert all(row["OP State"] == "static" for row in flagged)  # not hidden behind dynamic shapes


def test_environment_and_affinity(host):
    for r in ranks_of(host):
        env = r.metadata["ENV_VARIABLES"]
        assert {k: env[k] for k in BAD_ENV} == BAD_ENV
        assert set(env_issues(env)) >= {"ASCEND_GLOBAL_LOG_LEVEL", "ASCEND_LAUNCH_BLOCKING", "HCCL_ALGO"}
        names = {e["name"] for e in r.slices("Python")}
        assert "aten::gelu" in names and "Optimizer.step#AdamW.step" in names
        assert names & AFFINITY_ATEN == {"aten::gelu"}


def test_idle(host):
    ranks, entry = _hit(host, "overall.idle")
    for r in ranks:
        share = share_of_step(r, "Free")
        assert share > 0.2
        assert share == pytest.approx(entry["expected"]["share_of_step_by_rank"][str(r.rank)], abs=1e-3)


def test_slow_rank(comm):
    gaps = slow_rank_gaps(ranks_of(comm))
    entry = expected(comm, "cluster.slow_rank")
    assert gaps["computing"] > 0.05
    assert gaps["computing"] == pytest.approx(entry["expected"]["gap_ratios"]["computing"], abs=1e-3)
    computing = {
        r.rank: sum(float(x["Computing"]) for x in r.csv("step_trace_time.csv")) for r in ranks_of(comm)
    }
    assert max(computing, key=computing.get) == entry["ranks"][0]


def test_slow_link(comm):
    entry = expected(comm, "cluster.slow_link")
    want = entry["expected"]
    src = next(r for r in ranks_of(comm) if r.rank == want["src"])
    links = defaultdict(lambda: [0.0, 0.0])
    for step in src.json("communication_matrix.json").values():
        for key, group in step["collective"].items():
            if key.startswith("allreduce-total@"):
                for link, info in group.items():
                    links[link][0] += info["Transit Size(MB)"]
                    links[link][1] += info["Transit Time(ms)"]
    slow = links[f"{want['src']}-{want['dst']}"]
    assert slow[0] / slow[1] == pytest.approx(want["bandwidth_gbps"], rel=1e-3)
    assert want["bandwidth_gbps"] < 0.5 * want["normal_gbps"]
    bandwidths = list(want["sdma_bandwidth_gbps_by_rank"].values())
    assert (max(bandwidths) - min(bandwidths)) / (sum(bandwidths) / len(bandwidths)) > 0.05


def test_small_packet(comm):
    ranks, entry = _hit(comm, "communication.small_packet")
    ratios = [packet_ratio(r) for r in ranks]
    assert min(ratios) > 0.2
    assert entry["expected"]["ratio"] > 0.2


def test_byte_alignment(comm):
    ranks, entry = _hit(comm, "communication.byte_alignment")
    tasks = [e for r in ranks for e in unaligned_tasks(r)]
    assert tasks
    assert sum(ns(e["dur"]) for e in tasks) / 1000 == pytest.approx(
        entry["expected"]["abnormal_us"], rel=1e-4
    )


def test_exposed(comm):
    ranks, entry = _hit(comm, "communication.exposed")
    for r in ranks:
        share = share_of_step(r, "Communication(Not Overlapped)")
        assert share > 0.1
        assert share == pytest.approx(entry["expected"]["share_of_step_by_rank"][str(r.rank)], abs=1e-3)


def test_retransmission(retrans):
    entry = expected(retrans, "communication.retransmission")
    step = f"step{entry['steps'][0]}"
    ops = [r.json("communication.json")[step]["collective"] for r in ranks_of(retrans)]
    key = next(k for k in ops[0] if k.startswith(entry["expected"]["op"] + "@"))
    elapse = [o[key]["Communication Time Info"]["Elapse Time(ms)"] for o in ops]
    rdma = [o[key]["Communication Bandwidth Info"]["RDMA"]["Transit Time(ms)"] for o in ops]
    assert min(elapse) >= 4000 and max(rdma) > 4000
    assert min(elapse) == pytest.approx(entry["expected"]["min_elapse_ms"], abs=1e-3)
    names = {r.folder.name.split("_")[0] for r in ranks_of(retrans)}
    assert len(names) == 2  # RDMA needs the ranks on two nodes


def test_dynamic_shape(retrans):
    ranks, entry = _hit(retrans, "computation.dynamic_shape")
    for r in ranks:
        states = {row["OP State"] for row in r.csv("kernel_details.csv") if row["Accelerator Core"] != "HCCL"}
        assert states == {"dynamic"}
        counts = per_step(r, "CANN", "AscendCL@aclopCompileAndExecute")
        assert 0 < max(n for n, _ in counts.values()) < 20  # recompiles, below the dispatch threshold
    assert entry["expected"]["static_kernels"] == 0 and entry["expected"]["dynamic_kernels"] > 0
