"""Readers of the text export's CSV/JSON files (except kernel_details.csv and trace_view.json)."""

from __future__ import annotations

import csv
import json
import math
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from advisor.errors import InputError
from advisor.formats import discover, format_named
from advisor.formats.ascend_cluster.cluster_output import find_cluster_output, read_cluster_output
from advisor.formats.ascend_common.metadata import (
    DistributedArgs,
    ParallelGroup,
    load_metadata,
    read_metadata,
)
from advisor.formats.ascend_text import communication, memory, statistics
from advisor.formats.ascend_text.communication import read_communication, read_communication_matrix
from advisor.formats.ascend_text.memory import read_memory_record, read_npu_module_mem, read_operator_memory
from advisor.formats.ascend_text.statistics import (
    read_api_statistic,
    read_op_statistic,
    read_operator_details,
)
from advisor.formats.schema import SCHEMAS
from advisor.model import RankInfo
from tests.engine_fixtures import CORPUS, TEXT_CORPUS, corpus_path, rank_dir

CLUSTER_FIXTURE = CORPUS / "ascend-reference-fixtures" / "resource" / "advisor"
MB, KB = 2**20, 2**10


def write(folder: Path, name: str, text: str, *, crlf: bool = False) -> Path:
    path = folder / name
    path.write_bytes((text.replace("\n", "\r\n") if crlf else text).encode("utf-8"))
    return path


def write_json(folder: Path, name: str, data: object) -> Path:
    return write(folder, name, json.dumps(data))


def raw_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def number(cell: str) -> float:
    cell = cell.strip()
    return math.nan if cell in ("", "N/A") else float(cell)


def corpus_rank(rank: int) -> RankInfo:
    return next(r for r in discover(corpus_path(TEXT_CORPUS)).ranks if r.rank == rank)


def assert_schema(frame: pd.DataFrame, table: str) -> None:
    assert frame.dtypes.astype(str).to_dict() == dict(SCHEMAS[table].columns)


def test_every_loader_is_registered_for_text() -> None:
    tables = {"kernels", "op_statistic", "api_statistic", "operator_details", "memory_record",
              "operator_memory", "npu_module_mem", "comm_ops", "comm_bandwidth", "comm_packets",
              "comm_matrix"}  # fmt: skip
    assert tables <= set(format_named("ascend_text").tables())


# --- op_statistic / api_statistic / operator_details -----------------------------------------------


def test_op_statistic(tmp_path: Path) -> None:
    text = (
        "OP Type,Core Type,Count,Total Time(us),Min Time(us),Avg Time(us),Max Time(us),Ratio(%)\n"
        "MatMulV2,AI_CORE,8,921.498,16.54,115.187,346.567,10.385\n"
        "hcom_allReduce_,HCCL,4,N/A,,,,\n"
    )
    frame = read_op_statistic(write(tmp_path, "op_statistic.csv", text, crlf=True))
    assert_schema(frame, "op_statistic")
    assert frame.iloc[0].tolist() == ["MatMulV2", "AI_CORE", 8, 921.498, 16.54, 115.187, 346.567, 10.385]
    assert frame.loc[1, "count"] == 4 and frame.iloc[1, 3:].isna().all()


def test_api_statistic(tmp_path: Path) -> None:
    header = "Level,API Name,Time(us),Count,Avg(us),Min(us),Max(us),Variance"
    text = f"{header}\nacl,aclrtMalloc,30.5,3,10.1,7.6,14.5,9.2\n"
    frame = read_api_statistic(write(tmp_path, "api_statistic.csv", text))
    assert_schema(frame, "api_statistic")
    assert frame.iloc[0].tolist() == ["acl", "aclrtMalloc", 30.5, 3, 10.1, 7.6, 14.5, 9.2]


def test_operator_details_keeps_multi_line_call_stacks(tmp_path: Path) -> None:
    text = (
        "Name,Input Shapes,Call Stack,Host Self Duration(us),Host Total Duration(us),"
        "Device Self Duration(us),Device Total Duration(us),Device Self Duration With AICore(us)\n"
        'aten::add,"""2,3;2,3""","a.py(1): f;\nb.py(2): g",5.5,7.25,0,1.5,0\n'
        "aten::mul,,,1,2,N/A,N/A,0\n"
    )
    frame = read_operator_details(write(tmp_path, "operator_details.csv", text))
    assert_schema(frame, "operator_details")
    assert frame["name"].tolist() == ["aten::add", "aten::mul"]
    assert frame.loc[0, "call_stack"] == "a.py(1): f;\nb.py(2): g"
    assert frame.loc[0, "input_shapes"] == "2,3;2,3"
    assert frame.loc[0, ["host_self_us", "host_total_us", "device_self_us", "device_total_us"]].tolist() == [
        5.5, 7.25, 0.0, 1.5
    ]  # fmt: skip
    assert pd.isna(frame.loc[1, "call_stack"]) and math.isnan(frame.loc[1, "device_total_us"])


@pytest.mark.parametrize("rank", [0, 1])
def test_corpus_statistics(rank: int) -> None:
    info = corpus_rank(rank)
    out = info.path / "ASCEND_PROFILER_OUTPUT"
    ops, ops_raw = statistics.load_op_statistic(info), raw_rows(out / "op_statistic.csv")
    assert len(ops) == len(ops_raw) and ops["count"].sum() == sum(int(r["Count"]) for r in ops_raw)
    assert ops["total_us"].sum() == pytest.approx(sum(float(r["Total Time(us)"]) for r in ops_raw))
    apis, apis_raw = statistics.load_api_statistic(info), raw_rows(out / "api_statistic.csv")
    assert len(apis) == len(apis_raw) and apis["count"].sum() == sum(int(r["Count"]) for r in apis_raw)
    assert apis["total_us"].sum() == pytest.approx(sum(float(r["Time(us)"]) for r in apis_raw))
    details, details_raw = statistics.load_operator_details(info), raw_rows(out / "operator_details.csv")
    assert len(details) == len(details_raw)
    assert details["name"].tolist() == [r["Name"] for r in details_raw]
    assert details["call_stack"].fillna("").tolist() == [r["Call Stack"].strip() for r in details_raw]
    assert details["host_total_us"].sum() == pytest.approx(
        sum(number(r["Host Total Duration(us)"]) for r in details_raw)
    )


# --- memory ----------------------------------------------------------------------------------------


def test_memory_record_units(tmp_path: Path) -> None:
    text = (
        "Component,Timestamp(us),Total Allocated(MB),Total Reserved(MB),Total Active(MB),Stream Ptr,"
        "Device Type\n"
        "APP,1736408883573957.920\t,,2109.6015625,,,NPU:0\n"
        "PTA,1736408883593933.5\t,954.5,1452.0,954.25,897357296,NPU:0\n"
    )
    frame = read_memory_record(write(tmp_path, "memory_record.csv", text, crlf=True))
    assert_schema(frame, "memory_record")
    assert frame["ts_ns"].tolist() == [1736408883573957920, 1736408883593933500]
    assert frame.loc[0, "reserved_bytes"] == 2109.6015625 * MB and math.isnan(frame.loc[0, "allocated_bytes"])
    assert frame.loc[1, ["allocated_bytes", "active_bytes"]].tolist() == [954.5 * MB, 954.25 * MB]
    assert frame["device"].tolist() == ["NPU:0", "NPU:0"] and frame["component"].tolist() == ["APP", "PTA"]


def test_operator_memory_units(tmp_path: Path) -> None:
    text = (
        "Name,Size(KB),Allocation Time(us),Release Time(us),Active Release Time(us),Duration(us),"
        "Active Duration(us),Device Type\n"
        "aten::empty_strided,18816.5,1736408883694624.810\t,,,,,NPU:0\n"
        "aten::_convolution,0.5,1736408883702735.700\t,1736408883736793.940\t,,34058.240\t,,NPU:0\n"
    )
    frame = read_operator_memory(write(tmp_path, "operator_memory.csv", text))
    assert_schema(frame, "operator_memory")
    assert frame["size_bytes"].tolist() == [18816.5 * KB, 512.0]
    assert frame["alloc_ns"].tolist() == [1736408883694624810, 1736408883702735700]
    assert pd.isna(frame.loc[0, "release_ns"]) and frame.loc[1, "release_ns"] == 1736408883736793940
    assert math.isnan(frame.loc[0, "duration_us"]) and frame.loc[1, "duration_us"] == 34058.24


def test_npu_module_mem(tmp_path: Path) -> None:
    text = "Component,Timestamp(us),Total Reserved(MB),Device\nSLOG,1736408883657086.220\t,1.5,NPU:0\n"
    frame = read_npu_module_mem(write(tmp_path, "npu_module_mem.csv", text))
    assert_schema(frame, "npu_module_mem")
    assert frame.iloc[0].tolist() == ["SLOG", 1736408883657086220, 1.5 * MB, "NPU:0"]


@pytest.mark.parametrize("rank", [0, 1])
def test_corpus_memory(rank: int) -> None:
    info = corpus_rank(rank)
    out = info.path / "ASCEND_PROFILER_OUTPUT"
    record, raw = memory.load_memory_record(info), raw_rows(out / "memory_record.csv")
    assert len(record) == len(raw)
    reserved_mb = sum(float(r["Total Reserved(MB)"]) for r in raw)
    assert record["reserved_bytes"].sum() == pytest.approx(reserved_mb * MB)
    assert record["ts_ns"].tolist() == [int(Decimal(r["Timestamp(us)"].strip()) * 1000) for r in raw]
    ops, raw = memory.load_operator_memory(info), raw_rows(out / "operator_memory.csv")
    assert len(ops) == len(raw) and ops["size_bytes"].sum() == sum(float(r["Size(KB)"]) for r in raw) * KB
    assert ops["release_ns"].notna().sum() == sum(1 for r in raw if r["Release Time(us)"].strip())
    modules, raw = memory.load_npu_module_mem(info), raw_rows(out / "npu_module_mem.csv")
    assert len(modules) == len(raw) and set(modules["component"]) == {r["Component"] for r in raw}
    reserved_mb = sum(float(r["Total Reserved(MB)"]) for r in raw)
    assert modules["reserved_bytes"].sum() == pytest.approx(reserved_mb * MB)


# --- communication.json ----------------------------------------------------------------------------


def op_info(start: str, elapse: float, transit: float, **links: dict) -> dict:
    return {
        "Communication Time Info": {
            "Start Timestamp(us)": start, "Elapse Time(ms)": elapse, "Transit Time(ms)": transit,
            "Wait Time(ms)": 0.5, "Synchronization Time(ms)": 0.25, "Idle Time(ms)": 1.0,
            "Wait Time Ratio": 0.9594, "Synchronization Time Ratio": 0.5,
        },
        "Communication Bandwidth Info": links,
    }  # fmt: skip


def link(size_mb: float, time_ms: float, bandwidth: float | None, sizes: dict | None = None) -> dict:
    data = {"Transit Size(MB)": size_mb, "Transit Time(ms)": time_ms, "Large Packet Ratio": 0.0,
            "Size Distribution": sizes or {}}  # fmt: skip
    if bandwidth is not None:
        data["Bandwidth(GB/s)"] = bandwidth
    return data


def test_communication_tables(tmp_path: Path) -> None:
    hccs = link(28.647232, 1.8168363, 15.7676, {"2.064384": [12, 1.578891625], "1.937312": [2, 0.2379]})
    data = {
        "step50": {
            "collective": {
                "hcom_allReduce__586_0_1@17522688603477080586": op_info("1736408883732241.5", 79.5, 0.25,
                                                                        RDMA=link(0, 0, 0), HCCS=hccs),
                "Total Op Info": op_info("1", 1000.0, 1000.0, HCCS=hccs),
            },
            "p2p": {"hcom_send__1_0": op_info("1736408883811334.875", 2.0, 1.0, SIO=link(4.0, 2.0, None))},
        },
        "step": {"collective": {"hcom_broadcast__1@7": op_info("1736408883900000", 1.0, 0.0)}},
        "7": {"p2p": {}},
    }  # fmt: skip
    path = write_json(tmp_path, "communication.json", data)
    ops, bandwidth, packets = read_communication(path)
    for frame, table in ((ops, "comm_ops"), (bandwidth, "comm_bandwidth"), (packets, "comm_packets")):
        assert_schema(frame, table)
    assert ops["op_name"].tolist() == ["hcom_allReduce__586_0_1", "hcom_send__1_0", "hcom_broadcast__1"]
    assert ops["step"].tolist() == [50, 50, pd.NA]
    assert ops["kind"].tolist() == ["collective", "p2p", "collective"]
    assert ops["group"].tolist() == ["17522688603477080586", pd.NA, "7"]
    assert ops["start_ns"].tolist() == [1736408883732241500, 1736408883811334875, 1736408883900000000]
    first = ops.iloc[0]
    assert (first["elapse_us"], first["transit_us"], first["wait_us"]) == (79500.0, 250.0, 500.0)
    assert first[["sync_us", "idle_us", "wait_ratio", "sync_ratio"]].tolist() == [250, 1000, 0.9594, 0.5]
    assert bandwidth["transport"].tolist() == ["RDMA", "HCCS", "SIO"]
    assert bandwidth["size_bytes"].tolist() == [0.0, 28647232.0, 4000000.0]  # MB = 10^6 bytes
    assert bandwidth["transit_us"].tolist() == pytest.approx([0.0, 1816.8363, 2000.0])
    # zero transit time: no bandwidth; absent bandwidth: size / time (4 MB in 2 ms = 2 GB/s)
    assert math.isnan(bandwidth.loc[0, "bandwidth_gbps"]) and bandwidth.loc[1, "bandwidth_gbps"] == 15.7676
    assert bandwidth.loc[2, "bandwidth_gbps"] == pytest.approx(2.0)
    assert packets["packet_bytes"].tolist() == [2064384.0, 1937312.0] and packets["count"].tolist() == [12, 2]
    assert packets["total_us"].tolist() == pytest.approx([1578.891625, 237.9])
    assert set(packets["transport"]) == {"HCCS"} and set(packets["op_name"]) == {"hcom_allReduce__586_0_1"}


def test_communication_empty_and_errors(tmp_path: Path) -> None:
    for text in ("", "{}", '{"step1": {"collective": {}}}'):
        ops, bandwidth, packets = read_communication(write(tmp_path, "communication.json", text))
        assert len(ops) == len(bandwidth) == len(packets) == 0
        assert list(ops.columns) == list(SCHEMAS["comm_ops"].columns)
    bad = {"stepX": {}}
    with pytest.raises(InputError, match=r"communication\.json: 'stepX' is not a step key"):
        read_communication(write_json(tmp_path, "communication.json", bad))
    bad = {"step1": {"collective": {"op@1": {"Communication Time Info": {"Elapse Time(ms)": "slow"}}}}}
    message = r"step1/collective/op@1: column 'Elapse Time\(ms\)': not a number: 'slow'"
    with pytest.raises(InputError, match=message):
        read_communication(write_json(tmp_path, "communication.json", bad))
    with pytest.raises(InputError, match=r"communication\.json: invalid JSON at line 1"):
        read_communication(write(tmp_path, "communication.json", '{"step1": '))
    hccs = {"HCCS": {"Size Distribution": {"1": 3}}}
    bad = {"step1": {"collective": {"op@1": {"Communication Bandwidth Info": hccs}}}}
    with pytest.raises(InputError, match=r"op@1/HCCS/Size Distribution/1: expected \[count, total ms\]"):
        read_communication(write_json(tmp_path, "communication.json", bad))


@pytest.mark.parametrize("rank", [0, 1])
def test_corpus_communication(rank: int) -> None:
    info = corpus_rank(rank)
    raw = json.loads((info.path / "ASCEND_PROFILER_OUTPUT" / "communication.json").read_text())
    ops_raw = [(step, kind, key, op) for step, kinds in raw.items() for kind, ops in kinds.items()
               for key, op in ops.items() if key != "Total Op Info"]  # fmt: skip
    ops = communication.load_comm_ops(info)
    assert len(ops) == len(ops_raw) == 4 and set(ops["step"]) == {50} and set(ops["kind"]) == {"collective"}
    assert ops["elapse_us"].sum() == pytest.approx(
        sum(op["Communication Time Info"]["Elapse Time(ms)"] for *_, op in ops_raw) * 1000
    )
    assert ops["op_name"].tolist() == [key.split("@")[0] for _, _, key, _ in ops_raw]
    assert set(ops["group"]) == {"17522688603477080586"}
    bandwidth = communication.load_comm_bandwidth(info)
    links = [(name, lk) for *_, op in ops_raw for name, lk in op["Communication Bandwidth Info"].items()]
    assert len(bandwidth) == len(links)
    assert set(bandwidth["transport"]) == {"RDMA", "HCCS", "PCIE", "SDMA", "SIO"}
    size_mb = sum(lk["Transit Size(MB)"] for _, lk in links)
    assert bandwidth["size_bytes"].sum() == pytest.approx(size_mb * 1e6)
    packets = communication.load_comm_packets(info)
    sizes = [v for _, lk in links for v in lk["Size Distribution"].values()]
    assert len(packets) == len(sizes) and packets["count"].sum() == sum(v[0] for v in sizes)
    assert packets["total_us"].sum() == pytest.approx(sum(v[1] for v in sizes) * 1000)


def test_communication_matrix(tmp_path: Path) -> None:
    def matrix_link(transport: str, size: float, time: float, bandwidth: float, op: str) -> dict:
        return {"Transport Type": transport, "Transit Size(MB)": size, "Transit Time(ms)": time,
                "Bandwidth(GB/s)": bandwidth, "Op Name": op}  # fmt: skip

    data = {
        "step50": {
            "collective": {
                "allreduce-top1@175": {
                    "0-0": matrix_link("LOCAL", 4.128776, 0.008, 502.27, "hcom_allReduce__586_0_1"),
                    "0-7": matrix_link("HCCS", 1, 0, 0, "hcom_allReduce__586_2_1"),
                }
            },
            "p2p": {"send-top1": {"3-2": matrix_link("RDMA", 2.0, 1.0, 2.0, "hcom_send")}},
        }
    }
    frame = read_communication_matrix(write_json(tmp_path, "communication_matrix.json", data))
    assert_schema(frame, "comm_matrix")
    assert frame[["src_rank", "dst_rank"]].values.tolist() == [[0, 0], [0, 7], [3, 2]]
    assert frame["op_name"].tolist() == ["allreduce-top1", "allreduce-top1", "send-top1"]
    assert frame["group"].tolist() == ["175", "175", pd.NA]
    assert frame["kind"].tolist() == ["collective", "collective", "p2p"]
    assert frame["transport"].tolist() == ["LOCAL", "HCCS", "RDMA"]
    ops = ["hcom_allReduce__586_0_1", "hcom_allReduce__586_2_1", "hcom_send"]
    assert frame["hccl_op_name"].tolist() == ops
    assert frame["size_bytes"].tolist() == [4128776.0, 1e6, 2e6]
    assert frame["transit_us"].tolist() == [8.0, 0.0, 1000.0]
    assert frame.loc[0, "bandwidth_gbps"] == 502.27 and math.isnan(frame.loc[1, "bandwidth_gbps"])
    with pytest.raises(InputError, match=r"step1/p2p/op/0_1: not a 'src-dst' link key"):
        read_communication_matrix(write_json(tmp_path, "m.json", {"step1": {"p2p": {"op": {"0_1": {}}}}}))


@pytest.mark.parametrize("rank", [0, 1])
def test_corpus_communication_matrix(rank: int) -> None:
    info = corpus_rank(rank)
    raw = json.loads((info.path / "ASCEND_PROFILER_OUTPUT" / "communication_matrix.json").read_text())
    links = [(op, key, lk) for kinds in raw.values() for ops in kinds.values() for op, lks in ops.items()
             for key, lk in lks.items()]  # fmt: skip
    frame = communication.load_comm_matrix(info)
    assert len(frame) == len(links)
    assert frame["src_rank"].tolist() == [int(key.split("-")[0]) for _, key, _ in links]
    assert frame["dst_rank"].tolist() == [int(key.split("-")[1]) for _, key, _ in links]
    assert set(frame["src_rank"]) == {rank} and set(frame["dst_rank"]) == set(range(8))
    assert frame["op_name"].tolist() == [op.split("@")[0] for op, _, _ in links]
    assert frame["size_bytes"].sum() == pytest.approx(sum(lk["Transit Size(MB)"] for *_, lk in links) * 1e6)


# --- metadata --------------------------------------------------------------------------------------


@pytest.mark.parametrize("rank", [0, 1])
def test_corpus_metadata(rank: int) -> None:
    meta = load_metadata(corpus_rank(rank))
    assert meta.rank_id == rank and meta.export_type == "text" and meta.profiler_level == "Level1"
    assert meta.activities == ("CPU", "NPU") and meta.with_stack is True and meta.record_shapes is True
    assert meta.profile_memory is True and meta.aic_metrics == "ACL_AICORE_PIPE_UTILIZATION"
    assert set(meta.env) == {"ASCEND_GLOBAL_LOG_LEVEL", "HCCL_RDMA_TC", "HCCL_RDMA_SL", "ACLNN_CACHE_LIMIT",
                             "HOST_CACHE_CAPACITY", "ASCEND_ENHANCE_ENABLE", "PYTORCH_NPU_ALLOC_CONF",
                             "ASCEND_LAUNCH_BLOCKING"}  # fmt: skip
    assert meta.distributed == DistributedArgs() and meta.parallel_groups == {}


def test_metadata_distributed_groups_and_versions(tmp_path: Path) -> None:
    info = {"config": {"common_config": {"activities": ["ProfilerActivity.NPU"], "with_stack": False},
                       "experimental_config": {"_profiler_level": "ProfilerLevel.Level2",
                                               "_export_type": ["text", "db"]}},
            "torch_npu_version": "2.7.1", "cann_version": "8.0.0"}  # fmt: skip
    folder = rank_dir(tmp_path, "w_ascend_pt", rank=3, info=info)
    distributed = {
        "world_size": 16, "tensor_model_parallel_size": "8", "pipeline_model_parallel_size": 1,
        "data_parallel_size": 2, "context_parallel_size": 1, "expert_model_parallel_size": 1,
    }  # fmt: skip
    group = {"group_name": "dp", "group_rank": 1, "global_ranks": [1, 9]}
    meta_json = {
        "ENV_VARIABLES": {"HCCL_ALGO": "level0:NA", "ASCEND_LAUNCH_BLOCKING": None},
        "distributed_args": distributed,
        "parallel_group_info": {"17522688603477080586": group},
        "torch_version": "2.7.1+cpu",
    }
    write_json(folder, "profiler_metadata.json", meta_json)
    meta = read_metadata(folder)
    assert (meta.rank_id, meta.export_type, meta.profiler_level) == (3, "db", "Level2")
    assert meta.activities == ("NPU",)
    assert meta.with_stack is False and meta.record_shapes is None
    assert meta.env == {"HCCL_ALGO": "level0:NA", "ASCEND_LAUNCH_BLOCKING": ""}
    assert meta.distributed == DistributedArgs(16, 8, 1, 2, 1, 1)
    assert meta.parallel_groups == {"17522688603477080586": ParallelGroup("dp", 1, (1, 9))}
    assert (meta.cann_version, meta.torch_npu_version, meta.torch_version) == ("8.0.0", "2.7.1", "2.7.1+cpu")
    write(folder, "profiler_metadata.json", "{broken")
    with pytest.raises(InputError, match=r"profiler_metadata\.json: invalid JSON at line 1, column 2"):
        read_metadata(folder)


def test_metadata_of_a_plain_profiler_info(tmp_path: Path) -> None:
    folder = rank_dir(tmp_path, "solo_ascend_pt", rank=None)
    write_json(folder, "profiler_info.json", {"rank_id": 5, "config": {}})
    assert read_metadata(folder).rank_id == 5 and read_metadata(folder).export_type is None


# --- cluster_analysis_output -----------------------------------------------------------------------


def test_cluster_output_fixture() -> None:
    folder = find_cluster_output(corpus_path(CLUSTER_FIXTURE))
    assert folder is not None and folder.name == "cluster_analysis_output"
    cluster = read_cluster_output(folder)
    assert cluster.ranks == list(range(8)) and sorted(cluster.step_trace) == list(range(8))
    rank1 = cluster.step_trace[1]
    assert_schema(rank1, "step_trace")
    assert len(rank1) == 1 and pd.isna(rank1.loc[0, "step"])
    assert rank1.loc[0, "computing_us"] == 80435.74650000008 and rank1.loc[0, "free_us"] == 1488610.0587500026
    assert rank1.loc[0, "communication_not_overlapped_us"] == 133385.97745312497
    assert rank1.loc[0, "bubble_us"] == 0 and math.isnan(rank1.loc[0, "preparing_us"])
    raw = raw_rows(folder / "cluster_step_trace_time.csv")
    free = {int(r["Index"]): float(r["Free"]) for r in raw if r["Type"] == "rank"}
    assert {r: t.loc[0, "free_us"] for r, t in cluster.step_trace.items()} == free
    ((stage, stage_table),) = cluster.stage_step_trace.items()
    assert stage == tuple(range(8)) and stage_table.loc[0, "free_us"] == max(free.values())
    assert sorted(cluster.comm) == [0, 1]
    ops, bandwidth, packets = cluster.comm[0]
    assert ops["op_name"].tolist() == ["hcom_broadcast__501_0", "hcom_broadcast__501_1"]
    assert set(ops["group"]) == {"6297232067196334501"} and set(ops["kind"]) == {"collective"}
    assert ops["step"].isna().all() and ops.loc[0, "start_ns"] == 1695054582608213000
    assert ops.loc[0, "elapse_us"] == pytest.approx(121736.94384375)
    sdma = bandwidth[bandwidth["transport"] == "SDMA"]
    assert sdma["bandwidth_gbps"].tolist() == [2.4257, 0.0496]
    hccs = packets[(packets["transport"] == "HCCS") & (packets["op_name"] == "hcom_broadcast__501_0")]
    assert hccs["packet_bytes"].tolist() == [3072.0, 2944.0, 2752.0] and hccs["count"].tolist() == [18, 2, 1]
    assert cluster.comm[1][0].loc[0, "start_ns"] == 1695054582707330200


def test_cluster_output_absent_or_bad(tmp_path: Path) -> None:
    assert find_cluster_output(tmp_path) is None
    folder = tmp_path / "cluster_analysis_output"
    folder.mkdir()
    header = "Step,Type,Index,Computing,Communication(Not Overlapped),Free"
    write(folder, "cluster_step_trace_time.csv", f"{header}\n,rank,x,1,2,3\n")
    assert find_cluster_output(tmp_path) == folder
    with pytest.raises(InputError, match=r"time\.csv: row 2, column 'Index': not a rank id: 'x'"):
        read_cluster_output(folder)


# --- missing files ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("loader", "file", "how"),
    [
        (statistics.load_op_statistic, "op_statistic.csv", "ProfilerActivity.NPU"),
        (statistics.load_api_statistic, "api_statistic.csv", "Level1 or Level2"),
        (statistics.load_operator_details, "operator_details.csv", "ProfilerActivity.CPU"),
        (memory.load_memory_record, "memory_record.csv", "profile_memory=True"),
        (memory.load_operator_memory, "operator_memory.csv", "profile_memory=True"),
        (memory.load_npu_module_mem, "npu_module_mem.csv", "profile_memory=True"),
        (communication.load_comm_ops, "communication.json", "Level1 or Level2"),
        (communication.load_comm_matrix, "communication_matrix.json", "Level1 or Level2"),
    ],
)
def test_missing_file_names_rank_and_file(tmp_path: Path, loader, file: str, how: str) -> None:
    rank = discover(rank_dir(tmp_path, "r0_ascend_pt")).ranks[0]
    with pytest.raises(InputError) as error:
        loader(rank)
    message = str(error.value)
    assert "r0_ascend_pt" in message and f"no {file} in ASCEND_PROFILER_OUTPUT" in message and how in message
