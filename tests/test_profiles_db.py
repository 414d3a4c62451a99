"""The db export (ascend_pytorch_profiler_N.db + analysis.db) read into the normalised tables.

Small SQLite files built here pin units, decoding and schema variants; the corpus tests compare the
db export with the text export of the same workload. Those are two collections of the same job (the
timestamps differ by ~28 min), so structure and deterministic values (names, counts, sizes) must be
equal and times close; exact unit checks use values recorded twice inside one db.
"""

from __future__ import annotations

import collections
import contextlib
import csv
import functools
import hashlib
import json
import os
import re
import shutil
import sqlite3
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from advisor.errors import InputError
from advisor.formats import discover, format_named, load_table
from advisor.formats.ascend_common import db_sqlite
from advisor.formats.ascend_common.db_sqlite import SqliteFile, read_db_metadata, take_found
from advisor.formats.ascend_db import db as dbmod
from advisor.formats.schema import SCHEMAS
from advisor.model import RankInfo

from .engine_fixtures import DB_CORPUS, TEXT_CORPUS, corpus_path

DB_TABLES = sorted(format_named("ascend_db").tables())
T0 = 1_700_000_000_000_000_000  # ns
PID, TID = 4242, 4243


# ---------------------------------------------------------------------------------------------------
# A small profiler db and analysis.db


class Strings:
    """STRING_IDS interning as the profiler does it."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}

    def __call__(self, text: str) -> int:
        return self.ids.setdefault(text, 1000 + len(self.ids))


def _cti(s: Strings, name: str, gid: int, core: str, op_type: str, state: str, shape: str) -> tuple:
    """A COMPUTE_TASK_INFO row; shapes are stored with literal quotes, as the profiler writes them."""
    fmt, dtype = "ND", "FLOAT"
    return (s(name), gid, 8, 0, s(core), s(op_type), s(fmt), s(dtype), s(f'"{shape}"'), s(fmt), s(dtype),
            s(f'"{shape}"'), s("N/A"), s(state))  # fmt: skip


def _profiler_tables() -> dict[str, tuple[list[str], list[tuple]]]:
    s = Strings()
    gtid = (PID << 32) | TID
    group, op = s("10.0.0.1%eth0_1"), s("hcom_allReduce__1_0_1")

    def task(start: int, end: int, conn: int, gid: int, kind: str, stream: int) -> tuple:
        return (T0 + start, T0 + end, 0, conn, gid, PID, s(kind), 0, stream, 10 + gid, 0)

    def host(
        start: int, end: int, tid: int, conn: int | None, name: str, chain: int | None, kind: int
    ) -> tuple:
        return (str(T0 + start), str(T0 + end), tid, conn, s(name), None, None, None, None, chain, kind)

    tables = {
        "STEP_TIME": ("id startNs endNs", [(7, T0, T0 + 10_000_000)]),
        # gid 1, 2: kernels; 3, 4: HCCL plane tasks; 5: the HCCL op's launch container; 6: an event
        # wait; 7: a kernel the profiler could not name; 8: a kernel launched in the step, run after it.
        "TASK": (
            "startNs endNs deviceId connectionId globalTaskId globalPid taskType contextId streamId taskId "
            "modelId",
            [
                task(1_000_000, 1_100_000, 101, 1, "KERNEL_AICORE", 2),
                task(1_300_000, 1_350_000, 102, 2, "KERNEL_AIVEC", 2),
                task(1_200_000, 1_210_000, 103, 3, "SDMA", 4),
                task(1_220_000, 1_500_000, 103, 4, "Notify Wait", 4),
                task(1_199_000, 1_501_000, 103, 5, "AI_CORE", 4),
                task(1_600_000, 1_700_000, 104, 6, "EVENT_WAIT", 2),
                task(1_800_000, 1_801_000, 105, 7, "KERNEL_AICORE", 2),
                task(20_000_000, 20_010_000, 106, 8, "KERNEL_AIVEC", 2),
            ],
        ),
        "COMPUTE_TASK_INFO": (
            "name globalTaskId blockDim mixBlockDim taskType opType inputFormats inputDataTypes inputShapes "
            "outputFormats outputDataTypes outputShapes attrInfo opState",
            [
                _cti(s, "MatMul1", 1, "AI_CORE", "MatMulV2", "static", "16,16;16,16"),
                _cti(s, "Add1", 2, "AI_VECTOR_CORE", "Add", "dynamic", "4"),
                _cti(s, "Late1", 8, "AI_VECTOR_CORE", "Add", "dynamic", "4"),
            ],
        ),
        "TASK_PMU_INFO": (
            "globalTaskId name value",
            [
                (1, s("aic_total_time"), 90_000.0),
                (1, s("aic_mac_ratio"), 0.5),
                (1, s("aiv_total_time"), 0),
                (2, s("aiv_total_time"), 45_000.0),
                (2, s("aiv_vec_ratio"), 0.25),
                (2, s("aic_icache_miss_rate"), 0.1),  # a metric outside the schema is ignored
            ],
        ),
        "COMMUNICATION_OP": (
            "opName startNs endNs connectionId groupName opId relay retry dataType algType count opType",
            [(op, T0 + 1_200_000, T0 + 1_500_000, 103, group, 1, 0, 0, 4, 0, 1024, s("hcom_allReduce_"))],
        ),
        "COMMUNICATION_TASK_INFO": (
            "name globalTaskId taskType planeId groupName notifyId rdmaType srcRank dstRank transportType "
            "size dataType linkType opId",
            [
                (op, 3, s("Memcpy"), 0, group, 0, 65535, 0, 1, 0, 4096, 4, 1, 1),
                (op, 4, s("Notify_Wait"), 1, group, 0, 65535, 0, 1, 2, 0, 65535, 65535, 1),
            ],
        ),
        "ENUM_HCCL_TRANSPORT_TYPE": ("id name", [(0, "SDMA"), (1, "RDMA"), (2, "LOCAL")]),
        "ENUM_HCCL_LINK_TYPE": ("id name", [(0, "ON_CHIP"), (1, "HCCS"), (65535, "INVALID_TYPE")]),
        "ENUM_API_TYPE": (
            "id name",
            [
                (5000, "runtime"),
                (5500, "hccl"),
                (10000, "node"),
                (15000, "model"),
                (20000, "acl"),
                (50001, "op"),
                (50002, "queue"),
                (50003, "trace"),
            ],
        ),
        "CANN_API": (
            "startNs endNs type globalTid connectionId name",
            [
                (T0 + 500_000, T0 + 510_000, 10000, gtid, 101, s("launch")),
                (T0 + 520_000, T0 + 530_000, 10000, gtid, 102, s("launch")),
                (T0 + 540_000, T0 + 560_000, 5500, gtid, 103, s("Launch_Ffts")),
                (T0 + 570_000, T0 + 580_000, 20000, gtid, 104, s("aclrtStreamWaitEvent")),
                (T0 + 9_000_000, T0 + 9_010_000, 10000, gtid, 106, s("launch")),
                (T0 + 600_000, T0 + 640_000, 20000, gtid, 200, s("aclnnAdd")),
            ],
        ),
        "PYTORCH_API": (
            "startNs endNs globalTid connectionId name sequenceNumber fwdThreadId inputDtypes inputShapes "
            "callchainId type",
            [
                host(400_000, 700_000, gtid, 0, "aten::mm", 5, 50001),
                host(100_000, 9_900_000, gtid, None, "ProfilerStep#7", None, 50001),
                host(380_000, 390_000, gtid, 1, "Enqueue", None, 50002),
                host(450_000, 460_000, gtid + 1, 1, "Dequeue@aclnnAdd", None, 50002),
                host(300_000, 301_000, gtid, None, "train.py(9): step", None, 50003),
            ],
        ),
        "PYTORCH_CALLCHAINS": (
            "id stack stackDepth",
            [
                (5, s("model.py(2): forward"), 1),
                (5, s("train.py(9): step"), 2),
                (5, s("torch/_ops.py(1): call"), 0),
            ],
        ),
        "CONNECTION_IDS": ("id connectionId", [(0, 101), (0, 102), (1, 300)]),
        "MEMORY_RECORD": (
            "component timestamp totalAllocated totalReserved totalActive streamPtr deviceId",
            [(s("PTA"), T0 + 2_000, 1 << 20, 2 << 20, 1 << 20, 77, 0)],
        ),
        "NPU_MEM": (
            "type ddr hbm timestampNs deviceId",
            [(s("app"), 0, 3 << 20, T0 + 1_000, 0), (s("device"), 0, 5 << 20, T0 + 1_500, 0)],
        ),
        "OP_MEMORY": (
            "name size allocationTime releaseTime activeReleaseTime duration activeDuration streamPtr "
            "deviceId",
            [
                (s("aten::empty"), 2048, T0 + 3_001, None, None, None, None, 77, 0),
                (s("aten::mm"), 512, T0 + 3_002, T0 + 8_003, T0 + 8_003, 5_001, 5_001, 77, 0),
            ],
        ),
        "NPU_MODULE_MEM": ("moduleId timestampNs totalReserved deviceId", [(3, T0 + 4_000, 4096, 0)]),
        "ENUM_MODULE": ("id name", [(0, "SLOG"), (3, "HCCL")]),
        "AICORE_FREQ": ("deviceId timestampNs freq", [(0, float(T0 + 5_000), 1650), (0, T0, 1800)]),  # a REAL
        "GC_RECORD": ("startNs endNs globalTid", [(T0 + 6_000, T0 + 16_000, gtid)]),
        "META_DATA": (
            "name value",
            [
                ("SCHEMA_VERSION", "1.0.0"),
                ("ENV_VARIABLES", '{"HCCL_RDMA_TC": "4"}'),
                ("CANN_VERSION", "8.0.RC2"),
            ],
        ),
        "NPU_INFO": ("id name", [(0, "Ascend910B")]),
        "HOST_INFO": ("hostUid hostName", [("123", "node-a")]),
        "RANK_DEVICE_MAP": ("rankId deviceId", [(3, 0)]),
        "SESSION_TIME_INFO": ("startTimeNs endTimeNs", [(T0 - 1_000, T0 + 30_000_000)]),
    }
    tables["STRING_IDS"] = ("id value", [(i, v) for v, i in s.ids.items()])
    return {name: (columns.split(), rows) for name, (columns, rows) in tables.items()}


def _analysis_tables() -> dict[str, tuple[list[str], list[tuple]]]:
    op, group, step = "hcom_allReduce__1_0_1", "8812", ("step7", "collective")
    tables = {
        "StepTraceTime": (
            "step computing communication_not_overlapped overlapped communication free stage bubble "
            "communication_not_overlapped_and_exclude_receive preparing",
            [("7", 150.0, 150.0, 150.0, 300.0, 101.0, 551.0, 0, 150.0, 1000.0)],
        ),
        "CommAnalyzerTime": (
            "hccl_op_name group_name start_timestamp elapse_time transit_time wait_time synchronization_time "
            "idle_time step type",
            [(op, group, (T0 + 1_200_000) / 1000 + 13.4, 0.3, 0.1, 0.05, 0.02, 0.15, *step)],
        ),
        "CommAnalyzerBandwidth": (
            "hccl_op_name group_name transport_type transit_size transit_time bandwidth large_packet_ratio "
            "package_size count total_duration step type",
            [
                (op, group, "HCCS", 4.096, 0.25, 16.384, 0.0, 2.048, 1, 0.125, *step),
                (op, group, "HCCS", 4.096, 0.25, 16.384, 0.0, 1.024, 2, 0.1, *step),
                (op, group, "SDMA", 4.096, 0.25, 16.384, 0, 0, 0, 0, *step),
            ],
        ),
        "CommAnalyzerMatrix": (
            "hccl_op_name group_name src_rank dst_rank transport_type transit_size transit_time bandwidth "
            "step type op_name",
            [
                ("allreduce-top1", group, "0", "1", "HCCS", 2.048, 0.125, 16.384, *step, op),
                ("allreduce-total", group, "0", "1", "HCCS", 4.096, 0.25, 16.384, *step, ""),
            ],
        ),
    }
    return {name: (columns.split(), rows) for name, (columns, rows) in tables.items()}


def write_db(path: Path, tables: dict[str, tuple[list[str], list[tuple]]]) -> Path:
    conn = sqlite3.connect(path)
    with conn:
        for name, (columns, rows) in tables.items():
            conn.execute(f"CREATE TABLE {name} ({', '.join(columns)})")
            if rows:
                conn.executemany(f"INSERT INTO {name} VALUES ({', '.join('?' * len(columns))})", rows)
    conn.close()
    return path


def _variant(
    tables: dict[str, tuple[list[str], list[tuple]]],
    drop: tuple[str, ...] = (),
    drop_columns: dict[str, tuple[str, ...]] | None = None,
    empty: tuple[str, ...] = (),
) -> dict[str, tuple[list[str], list[tuple]]]:
    out = {}
    for name, (columns, rows) in tables.items():
        if name in drop:
            continue
        keep = [i for i, c in enumerate(columns) if c not in (drop_columns or {}).get(name, ())]
        out[name] = (
            [columns[i] for i in keep],
            [] if name in empty else [tuple(r[i] for i in keep) for r in rows],
        )
    return out


def make_rank(
    tmp_path: Path, *, analysis: bool | dict = True, extra: dict | None = None, **variant
) -> RankInfo:
    """A db-export rank folder (rank 0) with the small dbs: `variant` (as in `_variant`) and `extra`
    tables change the profiler db, a dict `analysis` is the variant of analysis.db."""
    folder = tmp_path / f"r{len(list(tmp_path.iterdir()))}_ascend_pt"
    output = folder / "ASCEND_PROFILER_OUTPUT"
    output.mkdir(parents=True)
    (folder / "profiler_info_0.json").write_text(json.dumps({"rank_id": 0}))
    write_db(output / "ascend_pytorch_profiler_0.db", _variant(_profiler_tables(), **variant) | (extra or {}))
    if analysis:
        write_db(
            output / "analysis.db",
            _variant(_analysis_tables(), **(analysis if isinstance(analysis, dict) else {})),
        )
    (rank,) = discover(folder).ranks
    assert rank.format == "ascend_db"
    return rank


# ---------------------------------------------------------------------------------------------------
# Small dbs: units and decoding


def test_every_table_conforms_to_its_schema(tmp_path):
    rank = make_rank(tmp_path)
    for table in DB_TABLES:
        frame = load_table(table, rank)
        schema = SCHEMAS[table].columns
        assert list(frame.columns) == list(schema), table
        assert {c: str(t) for c, t in frame.dtypes.items()} == {
            c: str(pd.Series(dtype=t).dtype) for c, t in schema.items()
        }
        assert frame.attrs["source"], table


def test_kernels_units_pmu_steps_and_hccl_rows(tmp_path):
    k = load_table("kernels", make_rank(tmp_path)).set_index("name")
    assert list(k.index) == ["MatMul1", "hcom_allReduce__1_0_1", "Add1", "Late1"]  # by start
    mm = k.loc["MatMul1"]
    assert (mm.start_ns, mm.duration_us, mm.wait_us) == (T0 + 1_000_000, 100.0, 0.0)
    assert (mm.op_type, mm.accelerator_core, mm.op_state, mm.stream_id, mm.task_id) == (
        "MatMulV2", "AI_CORE", "static", 2, 11
    )  # fmt: skip
    assert (mm.input_shapes, mm.output_shapes, mm.input_dtypes) == ("16,16;16,16", "16,16;16,16", "FLOAT")
    assert (mm.aicore_time_us, mm.aiv_time_us, mm.aic_mac_ratio) == (90.0, 0.0, 0.5)  # PMU ns -> µs
    assert pd.isna(mm.aiv_vec_ratio)
    add = k.loc["Add1"]
    assert (add.aiv_time_us, add.aiv_vec_ratio, add.block_dim) == (45.0, 0.25, 8)
    assert pd.isna(add.aicore_time_us)
    hccl = k.loc["hcom_allReduce__1_0_1"]
    assert (hccl.accelerator_core, hccl.op_type, hccl.duration_us) == ("HCCL", "hcom_allReduce_", 300.0)
    assert pd.isna(hccl.stream_id) and pd.isna(hccl.aic_mac_ratio)
    # wait = start - previous end in start order, never negative (the HCCL op ends after Add1 starts)
    assert (hccl.wait_us, add.wait_us) == (100.0, 0.0)
    # Steps follow the launching CANN call: Late1 runs after the step but was launched inside it.
    assert k.step.tolist() == [7, 7, 7, 7]


def test_kernel_step_falls_back_to_device_time_and_is_na_outside_windows(tmp_path):
    k = load_table("kernels", make_rank(tmp_path, drop=("CANN_API",))).set_index("name")
    assert k.step.loc["MatMul1"] == 7 and pd.isna(k.step.loc["Late1"])  # device start after the step
    no_steps = load_table("kernels", make_rank(tmp_path, drop=("STEP_TIME",)))
    assert no_steps.step.isna().all()


def test_device_tasks_hide_unnamed_kernel_tasks_like_the_text_trace(tmp_path):
    t = load_table("device_tasks", make_rank(tmp_path))
    assert t.name.tolist() == ["MatMul1", "SDMA", "Notify Wait", "Add1", "EVENT_WAIT", "Late1"]
    assert t.task_type.tolist() == [
        "AI_CORE",
        "SDMA",
        "Notify Wait",
        "AI_VECTOR_CORE",
        "EVENT_WAIT",
        "AI_VECTOR_CORE",
    ]
    assert t.dur_us.tolist() == [100.0, 10.0, 280.0, 50.0, 100.0, 10.0]
    # Without COMPUTE_TASK_INFO nothing can be told apart: every task stays, named by its type.
    bare = load_table("device_tasks", make_rank(tmp_path, drop=("COMPUTE_TASK_INFO",)))
    assert len(bare) == 8 and "KERNEL_AICORE" in set(bare.name)


def test_hccl_ops_and_plane_tasks_decode_enums(tmp_path):
    h = load_table("hccl", make_rank(tmp_path))
    assert h.is_op.tolist() == [True, False, False]
    op, memcpy, wait = (h.iloc[i] for i in range(3))
    assert (op["name"], op.group, op.dur_us) == ("hcom_allReduce__1_0_1", "10.0.0.1%eth0_1", 300.0)
    assert pd.isna(op.plane) and pd.isna(op.task_type)
    assert (memcpy["name"], memcpy.plane, memcpy.transport, memcpy.link_type) == (
        "Memcpy",
        "Plane 0",
        "SDMA",
        "HCCS",
    )
    assert (memcpy.size_bytes, memcpy.src_rank, memcpy.dst_rank, memcpy.dur_us) == (4096.0, 0, 1, 10.0)
    assert (wait.transport, wait.link_type, wait.plane) == ("LOCAL", "INVALID_TYPE", "Plane 1")


def test_host_ops_categories_tids_and_call_stacks(tmp_path):
    h = load_table("host_ops", make_rank(tmp_path)).set_index("name")
    assert h.cat.to_dict() == {
        "ProfilerStep#7": "cpu_op",
        "train.py(9): step": "python_function",
        "Enqueue": "enqueue",
        "aten::mm": "cpu_op",
        "Dequeue@aclnnAdd": "dequeue",
    }
    mm = h.loc["aten::mm"]
    assert (mm.start_ns, mm.dur_us, mm.tid) == (T0 + 400_000, 300.0, TID)  # TEXT startNs kept exact
    assert mm.call_stack == "torch/_ops.py(1): call;\nmodel.py(2): forward;\ntrain.py(9): step"
    assert h.loc["Dequeue@aclnnAdd"].tid == TID + 1 and pd.isna(h.loc["Enqueue"].call_stack)


def test_runtime_api_names_carry_the_level_prefix(tmp_path):
    c = load_table("runtime_api", make_rank(tmp_path))
    launch = "Node@launch"
    wait, add = "AscendCL@aclrtStreamWaitEvent", "AscendCL@aclnnAdd"
    assert c.name.tolist() == [launch, launch, "Hccl@Launch_Ffts", wait, add, launch]
    assert c.dur_us.tolist()[:3] == [10.0, 10.0, 20.0] and set(c.tid) == {TID}
    stats = load_table("api_statistic", make_rank(tmp_path)).set_index(["level", "api_name"])
    launch = stats.loc[("node", "launch")]
    assert (launch["count"], launch.total_us, launch.min_us, launch.max_us) == (3, 30.0, 10.0, 10.0)
    assert launch.variance == 0.0


def test_flows_link_host_calls_to_device_starts(tmp_path):
    f = load_table("flows", make_rank(tmp_path))
    pairs = {(c, h - T0, d - T0) for c, h, d in zip(f.cat, f.host_ns, f.device_ns, strict=True)}
    assert pairs == {
        ("async_npu", 400_000, 1_000_000),  # aten::mm -> MatMul1 and Add1 (two connection ids)
        ("async_npu", 400_000, 1_300_000),
        ("HostToDevice", 500_000, 1_000_000),
        ("HostToDevice", 520_000, 1_300_000),
        ("HostToDevice", 540_000, 1_200_000),  # the HCCL op, once, at its start
        ("HostToDevice", 570_000, 1_600_000),
        ("HostToDevice", 9_000_000, 20_000_000),
    }


def test_overlap_is_derived_when_the_db_lacks_it_and_feeds_the_step_trace(tmp_path):
    rank = make_rank(tmp_path, analysis=False)
    o = load_table("overlap", rank)
    got = [(k, s - T0, d) for k, s, d in zip(o.kind, o.start_ns, o.dur_us, strict=True)]
    assert got == [
        ("Computing", 1_000_000, 100.0),
        ("Free", 1_100_000, 100.0),
        ("Communication", 1_200_000, 300.0),
        ("Communication(Not Overlapped)", 1_200_000, 100.0),
        ("Computing", 1_300_000, 50.0),
        ("Communication(Not Overlapped)", 1_350_000, 150.0),
        ("Free", 1_500_000, 18_500.0),
        ("Computing", 20_000_000, 10.0),
    ]
    st = load_table("step_trace", rank)
    assert "no analysis.db" in st.attrs["source"]
    row = st.iloc[0]
    assert (row.step, row.computing_us, row.communication_us, row.communication_not_overlapped_us) == (
        7, 150.0, 300.0, 250.0
    )  # fmt: skip
    assert (row.overlapped_us, row.free_us, row.preparing_us, row.stage_us) == (
        50.0,
        18_600.0,
        1000.0,
        19_000.0,
    )
    assert pd.isna(row.bubble_us)


def test_overlap_analysis_table_is_used_when_present(tmp_path):
    rows = [(1, 0, T0 + 10, T0 + 20, 0), (2, 0, T0 + 20, T0 + 50, 3), (3, 0, T0, T0 + 5, 9)]  # 9: unknown
    columns = ["id", "deviceId", "startNs", "endNs", "type"]
    rank = make_rank(tmp_path, extra={"OVERLAP_ANALYSIS": (columns, rows)})
    o = load_table("overlap", rank)
    assert o.kind.tolist() == ["Computing", "Free"] and o.dur_us.tolist() == [0.01, 0.03]
    assert o.attrs["source"] == "OVERLAP_ANALYSIS"


def test_comm_schedule_tasks_are_kernels(tmp_path):
    strings = [*_profiler_tables()["STRING_IDS"][1], (9001, "hcomAicpuInit"), (9002, "AI_CPU")]
    extra = {
        "COMMUNICATION_SCHEDULE_TASK_INFO": (
            ["globalTaskId", "name", "opType", "taskType"],
            [(6, 9001, 9001, 9002)],
        ),
        "STRING_IDS": (["id", "value"], strings),
    }
    row = load_table("kernels", make_rank(tmp_path, extra=extra)).set_index("name").loc["hcomAicpuInit"]
    assert (row.accelerator_core, row.op_type) == ("AI_CPU", "hcomAicpuInit")
    assert (row.start_ns, row.duration_us) == (T0 + 1_600_000, 100.0)  # TASK gid 6


def test_comm_columns_may_be_missing(tmp_path):
    dropped = {"CommAnalyzerTime": ("type", "step", "group_name"), "CommAnalyzerBandwidth": ("count",)}
    rank = make_rank(tmp_path, analysis={"drop_columns": dropped})
    op = load_table("comm_ops", rank).iloc[0]
    assert op.kind == "collective" and pd.isna(op.step) and pd.isna(op.group)  # kind inferred from the name
    assert load_table("comm_bandwidth", rank).transport.tolist() == ["HCCS", "SDMA"]
    with pytest.raises(
        InputError, match=r"analysis\.db: CommAnalyzerBandwidth has no column count \(needed for"
    ):
        load_table("comm_packets", rank)


def test_step_trace_from_analysis_db(tmp_path):
    st = load_table("step_trace", make_rank(tmp_path))
    row = st.iloc[0]
    assert (row.step, row.computing_us, row.free_us, row.preparing_us, row.stage_us, row.bubble_us) == (
        7, 150.0, 101.0, 1000.0, 551.0, 0.0
    )  # fmt: skip
    assert st.attrs["source"] == "analysis.db StepTraceTime"


def test_comm_tables_convert_ms_mb_and_take_the_op_start_from_the_profiler_db(tmp_path):
    rank = make_rank(tmp_path)
    op = load_table("comm_ops", rank).iloc[0]
    assert (op.step, op.kind, op.op_name, op.group) == (7, "collective", "hcom_allReduce__1_0_1", "8812")
    assert op.start_ns == T0 + 1_200_000  # not analysis.db's start_timestamp, 13.4 µs off
    assert op.elapse_us == pytest.approx(300.0) and op.transit_us == pytest.approx(100.0)
    assert (op.wait_us, op.sync_us, op.idle_us) == pytest.approx((50.0, 20.0, 150.0))
    assert op.wait_ratio == pytest.approx(50 / 150) and op.sync_ratio == pytest.approx(20 / 120)
    bw = load_table("comm_bandwidth", rank)
    assert bw.transport.tolist() == ["HCCS", "SDMA"]  # one row per transport, not per packet size
    assert bw.size_bytes.tolist() == [4_096_000.0, 4_096_000.0] and bw.transit_us.tolist() == [250.0, 250.0]
    packets = load_table("comm_packets", rank)
    assert packets.packet_bytes.tolist() == [2_048_000.0, 1_024_000.0] and packets["count"].tolist() == [1, 2]
    assert packets.total_us.tolist() == pytest.approx([125.0, 100.0])
    matrix = load_table("comm_matrix", rank)
    assert matrix.op_name.tolist() == ["allreduce-top1", "allreduce-total"]
    assert matrix.hccl_op_name.tolist()[0] == "hcom_allReduce__1_0_1" and pd.isna(matrix.hccl_op_name.iloc[1])
    assert (matrix.src_rank.tolist(), matrix.dst_rank.tolist(), matrix.size_bytes.tolist()) == (
        [0, 0], [1, 1], [2_048_000.0, 4_096_000.0]
    )  # fmt: skip
    # Without COMMUNICATION_OP the start is analysis.db's own (µs, rounded to ns).
    bare = load_table("comm_ops", make_rank(tmp_path, drop=("COMMUNICATION_OP",)))
    assert abs(bare.start_ns.iloc[0] - (T0 + 1_213_400)) <= 250  # float µs resolves 0.25 µs here


def test_memory_tables(tmp_path):
    rank = make_rank(tmp_path)
    m = load_table("memory_record", rank)
    assert m.component.tolist() == ["APP", "PTA"]  # APP comes from NPU_MEM, by time
    assert m.reserved_bytes.tolist() == [3 << 20, 2 << 20] and m.device.tolist() == ["NPU:0", "NPU:0"]
    assert pd.isna(m.allocated_bytes.iloc[0]) and m.allocated_bytes.iloc[1] == 1 << 20
    om = load_table("operator_memory", rank)
    assert om.size_bytes.tolist() == [2048.0, 512.0] and om.alloc_ns.tolist() == [T0 + 3_001, T0 + 3_002]
    assert pd.isna(om.release_ns.iloc[0]) and om.release_ns.iloc[1] == T0 + 8_003  # exact next to NULL
    assert pd.isna(om.duration_us.iloc[0]) and om.duration_us.iloc[1] == 5.001
    mm = load_table("npu_module_mem", rank).iloc[0]
    assert (mm.component, mm.ts_ns, mm.reserved_bytes, mm.device) == ("HCCL", T0 + 4_000, 4096.0, "NPU:0")


def test_steps_freq_gc_and_op_statistic(tmp_path):
    rank = make_rank(tmp_path)
    steps = load_table("steps", rank)
    assert (steps.step.tolist(), steps.start_ns.tolist(), steps.dur_us.tolist()) == ([7], [T0], [10_000.0])
    freq = load_table("freq", rank)
    assert (freq.ts_ns.tolist(), freq.mhz.tolist()) == ([T0, int(float(T0 + 5_000))], [1800.0, 1650.0])
    gc = load_table("gc", rank)
    assert (gc.start_ns.tolist(), gc.dur_us.tolist()) == ([T0 + 6_000], [10.0])
    ops = load_table("op_statistic", rank).set_index(["op_type", "core_type"])
    assert ops.loc[
        ("Add", "AI_VECTOR_CORE"), "count"
    ] == 2 and "hcom_allReduce_" not in ops.index.get_level_values(0)
    assert ops.ratio_pct.sum() == pytest.approx(100.0)
    assert ops.loc[("MatMulV2", "AI_CORE"), "total_us"] == 100.0


def test_metadata(tmp_path):
    rank = make_rank(tmp_path)
    meta = read_db_metadata(rank.path / "ASCEND_PROFILER_OUTPUT" / "ascend_pytorch_profiler_0.db")
    assert meta["schema_version"] == "1.0.0" and meta["cann_version"] == "8.0.RC2"
    assert meta["torch_npu_version"] is None
    assert (meta["device_type"], meta["device_id"], meta["rank_id"]) == ("Ascend910B", 0, 3)
    assert (meta["host_name"], meta["host_uid"], meta["session_start_ns"]) == ("node-a", "123", T0 - 1_000)
    assert meta["env_variables"] == {"HCCL_RDMA_TC": "4"} and meta["steps"] == [7]
    bare = tmp_path / "bare.db"
    write_db(bare, {"TASK": (["startNs"], [])})
    assert set(read_db_metadata(bare).values()) == {None}


# ---------------------------------------------------------------------------------------------------
# Schema variants: missing tables and columns, empty tables

REQUIRED_TABLE = {
    "kernels": "COMPUTE_TASK_INFO",
    "device_tasks": "TASK",
    "hccl": "COMMUNICATION_TASK_INFO",
    "host_ops": "PYTORCH_API",
    "runtime_api": "CANN_API",
    "api_statistic": "CANN_API",
    "op_statistic": "TASK",
    "flows": "CONNECTION_IDS",
    "gc": "GC_RECORD",
    "freq": "AICORE_FREQ",
    "steps": "STEP_TIME",
    "memory_record": "MEMORY_RECORD",
    "operator_memory": "OP_MEMORY",
    "npu_module_mem": "NPU_MODULE_MEM",
    "overlap": "COMPUTE_TASK_INFO",  # to compute it, as the db has no OVERLAP_ANALYSIS
}


@pytest.mark.parametrize("table", sorted(REQUIRED_TABLE))
def test_a_missing_table_is_an_input_error_naming_the_db(tmp_path, table):
    missing = REQUIRED_TABLE[table]
    rank = make_rank(tmp_path, drop=(missing,))
    with pytest.raises(InputError, match=rf"ascend_pytorch_profiler_0\.db: no {missing} table \(needed for"):
        load_table(table, rank)


@pytest.mark.parametrize("table", ["comm_ops", "comm_bandwidth", "comm_packets", "comm_matrix"])
def test_comm_tables_need_analysis_db(tmp_path, table):
    with pytest.raises(InputError, match=r"ASCEND_PROFILER_OUTPUT: no analysis\.db"):
        load_table(table, make_rank(tmp_path, analysis=False))


def test_a_missing_required_column_is_an_input_error(tmp_path):
    rank = make_rank(tmp_path, drop_columns={"TASK": ("endNs",)})
    with pytest.raises(InputError, match=r"TASK has no column endNs \(needed for the kernel table\)"):
        load_table("kernels", rank)
    analysis = make_rank(tmp_path)
    conn = sqlite3.connect(analysis.path / "ASCEND_PROFILER_OUTPUT" / "analysis.db")
    conn.execute("ALTER TABLE CommAnalyzerTime DROP COLUMN elapse_time")
    conn.commit()
    conn.close()
    with pytest.raises(InputError, match=r"analysis\.db: CommAnalyzerTime has no column elapse_time"):
        load_table("comm_ops", analysis)


def test_optional_tables_and_columns_may_be_missing(tmp_path):
    optional = ("TASK_PMU_INFO", "COMMUNICATION_OP", "CANN_API", "STEP_TIME", "PYTORCH_CALLCHAINS", "NPU_MEM")
    rank = make_rank(
        tmp_path,
        drop=(*optional, "ENUM_MODULE", "ENUM_HCCL_LINK_TYPE"),
        drop_columns={"COMPUTE_TASK_INFO": ("opState", "mixBlockDim"), "TASK": ("streamId",)},
    )
    k = load_table("kernels", rank)
    assert k.name.tolist() == ["MatMul1", "Add1", "Late1"] and k.step.isna().all()
    assert k.op_state.isna().all() and k.mix_block_dim.isna().all() and k.stream_id.isna().all()
    assert k.aicore_time_us.isna().all() and k.aic_mac_ratio.isna().all()
    assert load_table("host_ops", rank).call_stack.isna().all()
    assert load_table("memory_record", rank).component.tolist() == ["PTA"]
    assert load_table("npu_module_mem", rank).component.tolist() == [
        "3"
    ]  # an undecodable id keeps its number
    o = load_table("overlap", rank)
    assert set(o.kind) == {"Computing", "Free"}
    st = load_table("step_trace", make_rank(tmp_path, analysis=False, drop=("STEP_TIME",)))
    assert st.step.isna().all() and st.computing_us.iloc[0] == 160.0 and pd.isna(st.preparing_us.iloc[0])


def test_empty_tables_give_empty_frames(tmp_path):
    everything = tuple(_profiler_tables())
    rank = make_rank(tmp_path, empty=everything)
    for table in DB_TABLES:
        if table.startswith("comm_") or table == "step_trace":
            continue  # from analysis.db, which is not empty here
        frame = load_table(table, rank)
        assert len(frame) == 0, table
        assert list(frame.columns) == list(SCHEMAS[table].columns)
    st = load_table("step_trace", make_rank(tmp_path, analysis=False, empty=everything))
    assert st.computing_us.tolist() == [0.0]


# ---------------------------------------------------------------------------------------------------
# Read-only access


def _snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    return {
        str(p.relative_to(folder)): (
            hashlib.sha256(p.read_bytes()).hexdigest(),
            stat.S_IMODE(p.stat().st_mode),
        )
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    } | {
        str(p.relative_to(folder)): ("dir", stat.S_IMODE(p.stat().st_mode))
        for p in folder.rglob("*")
        if p.is_dir()
    }


def _read_everything(folder: Path) -> None:
    for rank in discover(folder).ranks:
        for table in DB_TABLES:
            with contextlib.suppress(InputError):  # a table this data cannot give (gc): reading is the point
                load_table(table, rank, use_cache=False)
        read_db_metadata(dbmod.profiler_db(rank).path)


def test_reading_changes_no_file_and_no_mode(tmp_path):
    rank = make_rank(tmp_path)
    for path in rank.path.rglob("*"):
        path.chmod(0o555 if path.is_dir() else 0o444)
    rank.path.chmod(0o555)
    try:
        before = _snapshot(rank.path)
        _read_everything(rank.path)
        assert _snapshot(rank.path) == before  # same files (no -shm/-wal/-journal), bytes and modes
    finally:
        for path in [rank.path, *rank.path.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)


def test_corpus_reading_changes_no_file_and_no_mode():
    root = corpus_path(DB_CORPUS)
    before = _snapshot(root)
    _read_everything(root)
    assert _snapshot(root) == before


def test_a_missing_or_broken_db_is_an_input_error_and_nothing_is_created(tmp_path):
    ghost = tmp_path / "ghost.db"
    with pytest.raises(InputError, match=r"ghost\.db: no such file"):
        SqliteFile(ghost).query("SELECT 1")
    assert list(tmp_path.iterdir()) == []
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(
        InputError, match=r"junk\.db: cannot read the SQLite database \(file is not a database\)"
    ):
        SqliteFile(junk).layout()
    with pytest.raises(InputError, match=r"not a file"):
        SqliteFile(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.db"]


def test_pending_wal_changes_are_read_from_a_private_copy(tmp_path):
    live = tmp_path / "live"
    live.mkdir()
    writer = sqlite3.connect(live / "p.db")
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("CREATE TABLE T (x INTEGER)")
    writer.executemany("INSERT INTO T VALUES (?)", [(1,), (2,)])
    writer.commit()
    frozen = tmp_path / "frozen"
    frozen.mkdir()
    for name in ("p.db", "p.db-wal"):  # as a crashed or still-open writer leaves them
        shutil.copyfile(live / name, frozen / name)
    writer.close()
    assert (frozen / "p.db-wal").stat().st_size > 0
    before = _snapshot(frozen)
    assert SqliteFile(frozen / "p.db").query("SELECT SUM(x) AS s FROM T")["s"].tolist() == [3]
    assert _snapshot(frozen) == before  # no -shm created, the WAL not checkpointed into the input


def test_queries_are_memoised_per_file_version(tmp_path, monkeypatch):
    path = write_db(tmp_path / "m.db", {"T": (["x"], [(1,)])})
    opened = []
    real = sqlite3.connect
    monkeypatch.setattr(sqlite3, "connect", lambda *a, **k: opened.append(a) or real(*a, **k))
    assert SqliteFile(path).query("SELECT x FROM T").x.tolist() == [1]
    assert SqliteFile(path).query("SELECT x FROM T").x.tolist() == [1]
    assert len(opened) == 1
    with real(path) as conn:
        conn.execute("INSERT INTO T VALUES (2)")
    os.utime(path, ns=(1, 1))  # a new version even within the mtime granularity
    assert SqliteFile(path).query("SELECT x FROM T").x.tolist() == [1, 2]


@pytest.mark.parametrize("chunk_rows", [1, 2, 3, 65536])
def test_rows_are_typed_as_pandas_reader_types_them(tmp_path, monkeypatch, chunk_rows):
    """SqliteFile.read types its columns itself, a chunk of rows at a time: as read_sql_query would,
    wherever the chunks split a column's NULLs, integers, reals and text."""
    monkeypatch.setattr(db_sqlite, "_CHUNK_ROWS", chunk_rows)
    columns = ["i", "r", "mix", "t", "n", "late", "odd", "b"]
    rows = [
        (1, 0.5, 1, "a", None, None, 1, b"x"),
        (None, None, 2.5, None, None, None, "two", None),
        (2**62, 1.0, None, 'é "q"', None, 7, 3, b"y"),
    ]
    path = write_db(tmp_path / "t.db", {"T": (columns, rows)})
    queries = [f"SELECT {c} FROM T" for c in columns] + [
        "SELECT i, r, mix, t, n, late FROM T",
        "SELECT i, t FROM T WHERE 0",
        "SELECT i AS a, r AS a FROM T",
    ]
    with sqlite3.connect(path) as conn:
        for sql in queries:
            expected = pd.read_sql_query(sql, conn, dtype_backend="numpy_nullable")
            pd.testing.assert_frame_equal(SqliteFile(path).read(sql), expected, obj=sql)


def test_interned_strings_unknown_or_null_ids_are_na(tmp_path):
    path = write_db(tmp_path / "s.db", {"STRING_IDS": (["id", "value"], [(3, ' "x" '), (1, "N/A")])})
    ids = pd.Series([3, 1, None, 2], dtype="Int64")
    db = SqliteFile(path)
    assert db.strings(ids).tolist() == [' "x" ', "N/A", pd.NA, pd.NA]
    assert db.strings(ids, clean=True).tolist() == ["x", pd.NA, pd.NA, pd.NA]  # as the text cells
    assert db.interned(ids).tolist() == [True, True, False, False]
    no_ids = pd.Series([None, None], dtype="string")  # how an all-NULL column reads
    assert db.strings(no_ids).tolist() == [pd.NA, pd.NA] and not db.interned(no_ids).any()


def test_take_found_nulls_the_misses_and_null_values():
    values = pa.array(["a", None, "ccc", ""], pa.large_string())
    taken = take_found(values, np.array([2, 0, 1, 3, 0]), np.array([True, False, True, True, True]))
    taken.validate(full=True)
    assert taken.to_pylist() == ["ccc", None, None, "", "a"]


def test_pmu_keeps_the_first_row_of_a_task_and_metric(tmp_path):
    tables = _profiler_tables()
    columns, rows = tables["TASK_PMU_INFO"]
    mac = next(name for gid, name, value in rows if value == 0.5)  # MatMul1's aic_mac_ratio
    rank = make_rank(tmp_path, extra={"TASK_PMU_INFO": (columns, [*rows, (1, mac, 0.9)])})
    assert load_table("kernels", rank).set_index("name").loc["MatMul1"].aic_mac_ratio == 0.5


def test_tables_survive_the_table_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PERFORMANCE_ADVISOR_CACHE_MIN_MB", "0")  # cache the small generated db too
    rank = make_rank(tmp_path)
    for table in ("kernels", "hccl", "host_ops", "comm_ops", "step_trace"):
        fresh = load_table(table, rank)
        cached = load_table(table, rank)  # the second read comes from the Parquet cache
        pd.testing.assert_frame_equal(fresh, cached)


# ---------------------------------------------------------------------------------------------------
# Corpus: db vs text export of the same workload

RANKS = (0, 1)
_HASH_PART = re.compile(r"__\d+_")  # hcom_allReduce__586_0_1: the 586 differs between collections


def _norm(op: str) -> str:
    return _HASH_PART.sub("__N_", op.split("@", 1)[0])


@functools.lru_cache(maxsize=2)
def _db_rank(rank: int):
    return next(r for r in discover(corpus_path(DB_CORPUS)).ranks if r.rank == rank)


def _text_file(rank: int, name: str) -> Path:
    return corpus_path(TEXT_CORPUS) / f"rank{rank}_ascend_pt" / "ASCEND_PROFILER_OUTPUT" / name


def _csv(rank: int, name: str) -> list[dict[str, str]]:
    with _text_file(rank, name).open(encoding="utf-8-sig", newline="") as fh:
        return [{k: v.strip() for k, v in row.items()} for row in csv.DictReader(fh)]


@functools.lru_cache(maxsize=2)
def _trace(rank: int) -> tuple[dict, list[dict]]:
    events = json.loads(_text_file(rank, "trace_view.json").read_text())
    names = {
        e["pid"]: e["args"]["name"] for e in events if e.get("ph") == "M" and e.get("name") == "process_name"
    }
    return names, [e for e in events if e.get("ph") == "X"]


def _process(rank: int, process: str) -> list[dict]:
    names, events = _trace(rank)
    return [e for e in events if names.get(e["pid"]) == process]


def _raw(rank: int, sql: str) -> list[tuple]:
    path = dbmod.profiler_db(_db_rank(rank)).path
    conn = sqlite3.connect(f"{path.as_uri()}?mode=ro&immutable=1", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


@pytest.mark.parametrize("rank", RANKS)
def test_corpus_step_trace(rank):
    db = load_table("step_trace", _db_rank(rank))
    text_rank = next(r for r in discover(corpus_path(TEXT_CORPUS)).ranks if r.rank == rank)
    text = load_table("step_trace", text_rank)
    assert db.step.tolist() == text.step.tolist() == [50]
    for column in db.columns[1:]:  # two collections: the same split, a few % apart
        tolerance = 0.2 if column == "preparing_us" else 0.06  # host-side start-up varies more
        assert db[column].iloc[0] == pytest.approx(text[column].iloc[0], rel=tolerance, abs=1e-9), column
    # Exact: StepTraceTime (µs) equals the db's own overlap slices (ns), summed per step.
    derived = dbmod._step_trace_from_overlap(dbmod.profiler_db(_db_rank(rank)))
    for column in ("computing_us", "communication_us", "communication_not_overlapped_us", "free_us",
                   "overlapped_us", "preparing_us", "stage_us"):  # fmt: skip
        assert derived[column].iloc[0] == pytest.approx(db[column].iloc[0], abs=1e-6), column


@pytest.mark.parametrize("rank", RANKS)
def test_corpus_kernels(rank):
    db = load_table("kernels", _db_rank(rank))
    text = _csv(rank, "kernel_details.csv")
    assert len(db) == len(text) == 191
    assert collections.Counter(zip(map(_norm, db.name), db.op_type, db.accelerator_core, strict=True)) == (
        collections.Counter((_norm(r["Name"]), r["Type"], r["Accelerator Core"]) for r in text)
    )
    assert set(db.step) == {50}
    assert db.duration_us.sum() == pytest.approx(sum(float(r["Duration(us)"]) for r in text), rel=0.06)
    compute = db[db.accelerator_core != "HCCL"]
    for column, header in (("aicore_time_us", "aicore_time(us)"), ("aiv_time_us", "aiv_time(us)")):
        expected = sum(float(r[header]) for r in text if r[header] not in ("", "N/A"))
        assert compute[column].sum() == pytest.approx(expected, rel=0.03), column
    for column in ("aic_mac_ratio", "aiv_vec_ratio", "aiv_mte2_ratio"):
        expected = [float(r[column]) for r in text if r[column] not in ("", "N/A")]
        assert compute[column].mean() == pytest.approx(sum(expected) / len(expected), abs=0.01), column
    shapes = collections.Counter(zip(map(_norm, db.name), db.input_shapes.fillna(""), strict=True))
    assert shapes == collections.Counter(
        (_norm(r["Name"]), r["Input Shapes"].strip('"').replace("N/A", "")) for r in text
    )
    # Exact: the wait time MindStudio Insight stored in rank 0's db (waitNs) is ours.
    if rank == 0:
        stored = dict(
            _raw(0, "SELECT t.startNs, c.waitNs FROM COMPUTE_TASK_INFO c JOIN TASK t USING (globalTaskId)")
        )
        ours = dict(zip(compute.start_ns, compute.wait_us, strict=True))
        assert all(ours[s] == pytest.approx(w / 1000, abs=1e-9) for s, w in stored.items())


@pytest.mark.parametrize("rank", RANKS)
def test_corpus_device_tasks_and_hccl(rank):
    tasks = load_table("device_tasks", _db_rank(rank))
    hardware = _process(rank, "Ascend Hardware")
    assert collections.Counter(tasks.name) == collections.Counter(e["name"] for e in hardware)
    hccl = load_table("hccl", _db_rank(rank))
    text = _process(rank, "HCCL")
    assert len(hccl) == len(text) == 300 and hccl.is_op.sum() == 4
    plane = hccl[~hccl.is_op]
    got = collections.Counter(
        zip(
            plane.name,
            plane.transport,
            plane.link_type,
            plane.size_bytes,
            plane.src_rank,
            plane.dst_rank,
            strict=True,
        )
    )
    expected = collections.Counter(
        (e["name"], a["transport type"], a["link type"], float(a["size(Byte)"]), a["src rank"], a["dst rank"])
        for e in text
        if "task type" in (a := e.get("args", {}))
    )
    assert got == expected
    ops = _raw(rank, "SELECT startNs, endNs FROM COMMUNICATION_OP ORDER BY startNs")
    assert hccl[hccl.is_op].dur_us.tolist() == [(e - s) / 1000 for s, e in ops]


@pytest.mark.parametrize("rank", RANKS)
def test_corpus_comm_tables(rank):
    db_rank = _db_rank(rank)
    comm = json.loads(_text_file(rank, "communication.json").read_text())["step50"]["collective"]
    ops = load_table("comm_ops", db_rank)
    assert sorted(map(_norm, ops.op_name)) == sorted(_norm(k) for k in comm if k != "Total Op Info")
    assert set(ops.step) == {50} and set(ops.kind) == {"collective"}
    # Exact within the db: elapse (ms) x 1000 = COMMUNICATION_OP duration (ns) / 1000; start = op start.
    sql = "SELECT s.value, o.startNs, o.endNs FROM COMMUNICATION_OP o JOIN STRING_IDS s ON s.id = o.opName"
    spans = {name: (start, end) for name, start, end in _raw(rank, sql)}
    for name, start, elapse in zip(ops.op_name, ops.start_ns, ops.elapse_us, strict=True):
        begin, end = spans[name]
        assert start == begin and elapse == pytest.approx((end - begin) / 1000, abs=0.001)
    # Sizes are deterministic: MB x 10^6 = bytes, equal to the text export.
    bw = load_table("comm_bandwidth", db_rank)
    sizes = {
        (_norm(k), t): info["Transit Size(MB)"] * 1e6
        for k, v in comm.items()
        if k != "Total Op Info"
        for t, info in v["Communication Bandwidth Info"].items()
        if info["Transit Size(MB)"]
    }
    got = {(_norm(o), t): s for o, t, s in zip(bw.op_name, bw.transport, bw.size_bytes, strict=True)}
    assert got == pytest.approx(sizes, abs=0.5)
    packets = load_table("comm_packets", db_rank)
    expected_packets = collections.Counter(
        (_norm(k), t, round(float(size) * 1e6), n)
        for k, v in comm.items()
        if k != "Total Op Info"
        for t, info in v["Communication Bandwidth Info"].items()
        for size, (n, _) in info["Size Distribution"].items()
    )
    assert (
        collections.Counter(
            zip(
                map(_norm, packets.op_name),
                packets.transport,
                packets.packet_bytes.astype(int),
                packets["count"],
                strict=True,
            )
        )
        == expected_packets
    )
    # Which op a link's slowest/fastest entry names varies per collection; the totals do not.
    matrix = load_table("comm_matrix", db_rank)
    total = matrix[matrix.op_name == "allreduce-total"]
    text_matrix = json.loads(_text_file(rank, "communication_matrix.json").read_text())["step50"][
        "collective"
    ]
    (text_total,) = [links for key, links in text_matrix.items() if key.startswith("allreduce-total@")]
    expected_links = {
        (*map(int, link.split("-")), info["Transport Type"]): round(info["Transit Size(MB)"] * 1e6)
        for link, info in text_total.items()
    }
    links = zip(total.src_rank, total.dst_rank, total.transport, strict=True)
    got_links = dict(zip(links, total.size_bytes, strict=True))
    assert got_links == expected_links
    assert set(matrix.hccl_op_name.dropna()) == set(ops.op_name)


@pytest.mark.parametrize("rank", RANKS)
def test_corpus_memory(rank):
    db_rank = _db_rank(rank)
    memory = load_table("memory_record", db_rank)
    text = _csv(rank, "memory_record.csv")
    assert set(memory.component) == {r["Component"] for r in text}
    non_app = memory[memory.component != "APP"]
    assert len(non_app) == sum(r["Component"] != "APP" for r in text) == 990
    mb = 1 << 20
    for component in ("PTA", "PTA+GE", "GE"):
        expected = max(float(r["Total Reserved(MB)"]) for r in text if r["Component"] == component)
        assert memory[memory.component == component].reserved_bytes.max() / mb == expected
    app = max(float(r["Total Reserved(MB)"]) for r in text if r["Component"] == "APP")
    assert memory[memory.component == "APP"].reserved_bytes.max() / mb == pytest.approx(app, rel=0.01)
    assert set(memory.device) == {r["Device Type"] for r in text} == {f"NPU:{rank}"}
    op_memory = load_table("operator_memory", db_rank)
    text = _csv(rank, "operator_memory.csv")
    assert collections.Counter(op_memory.name) == collections.Counter(r["Name"] for r in text)
    assert op_memory.size_bytes.sum() == sum(float(r["Size(KB)"]) * 1024 for r in text)
    assert op_memory.release_ns.isna().sum() == sum(not r["Release Time(us)"] for r in text)
    modules = load_table("npu_module_mem", db_rank)
    text = _csv(rank, "npu_module_mem.csv")
    # The db's ENUM_MODULE names module 74 AMP where the text export's list says AML.
    assert collections.Counter(modules.component.replace("AMP", "AML")) == (
        collections.Counter(r["Component"] for r in text)
    )
    assert modules.reserved_bytes.max() / mb == max(float(r["Total Reserved(MB)"]) for r in text)


@pytest.mark.parametrize("rank", RANKS)
def test_corpus_steps_overlap_and_freq(rank):
    db_rank = _db_rank(rank)
    steps = load_table("steps", db_rank)
    (text_step,) = [e for e in _process(rank, "Python") if e["name"] == "ProfilerStep#50"]
    assert steps.step.tolist() == [50] and steps.dur_us.iloc[0] == pytest.approx(text_step["dur"], rel=0.05)
    overlap = load_table("overlap", db_rank)
    text = collections.defaultdict(list)
    for e in _process(rank, "Overlap Analysis"):
        text[e["name"]].append(e["dur"])
    assert overlap.kind.value_counts().to_dict() == {k: len(v) for k, v in text.items()}
    for kind, durations in text.items():
        assert overlap[overlap.kind == kind].dur_us.sum() == pytest.approx(sum(durations), rel=0.06), kind
    # rank 0's db holds MindStudio Insight's OVERLAP_ANALYSIS; rank 1's is computed, same as Insight does.
    assert ("derived" in overlap.attrs["source"]) == (rank == 1)
    if rank == 0:
        stored = _raw(0, "SELECT type, startNs, endNs FROM OVERLAP_ANALYSIS")
        computed = dbmod._derived_overlap(dbmod.profiler_db(db_rank), "test")
        assert set(zip(computed.kind, computed.start_ns, computed.end_ns, strict=True)) == {
            (dbmod.OVERLAP_KINDS[t], s, e) for t, s, e in stored
        }
    freq = load_table("freq", db_rank)
    assert set(freq.mhz) == {1800.0} and freq.ts_ns.is_monotonic_increasing


@pytest.mark.parametrize("rank", RANKS)
def test_corpus_host_side(rank):
    db_rank = _db_rank(rank)
    address = re.compile(r" at 0x[0-9a-f]+")
    host = load_table("host_ops", db_rank)
    python = _process(rank, "Python")
    assert collections.Counter(
        zip(host.name.str.replace(address, "", regex=True), host.cat, strict=True)
    ) == (collections.Counter((address.sub("", e["name"]), e["cat"]) for e in python))
    stacks = collections.Counter(
        e["args"]["Call stack"].replace("\r\n", "\n") for e in python if "Call stack" in e["args"]
    )
    assert collections.Counter(host.call_stack.dropna()) == stacks
    assert len(set(host.tid)) == len({e["tid"] for e in python}) == 3
    cann = load_table("runtime_api", db_rank)
    text_names = collections.Counter(e["name"] for e in _process(rank, "CANN"))
    assert set(cann.name) <= set(text_names)
    assert abs(len(cann) - sum(text_names.values())) <= 3  # aclrtQueryEventStatus polls vary per run
    stats = load_table("api_statistic", db_rank)
    text_stats = _csv(rank, "api_statistic.csv")
    assert {(r["Level"], r["API Name"]) for r in text_stats} <= set(
        zip(stats.level, stats.api_name, strict=True)
    )
    # Flows: every compute kernel is reached from a framework op, as by torch_to_npu in the trace.
    flows = load_table("flows", db_rank)
    kernels = load_table("kernels", db_rank)
    linked = set(flows[flows.cat == "async_npu"].device_ns)
    assert set(kernels.start_ns) <= linked
    assert set(flows.device_ns) <= set(load_table("device_tasks", db_rank).start_ns) | set(kernels.start_ns)


def test_corpus_op_statistic_and_metadata():
    db_rank = _db_rank(1)
    stats = load_table("op_statistic", db_rank)
    text = _csv(1, "op_statistic.csv")
    assert collections.Counter(zip(stats.op_type, stats.core_type, stats["count"], strict=True)) == (
        collections.Counter((r["OP Type"], r["Core Type"], int(r["Count"])) for r in text)
    )
    meta = read_db_metadata(dbmod.profiler_db(db_rank).path)
    assert (meta["device_type"], meta["rank_id"], meta["schema_version"]) == ("Ascend910B", 1, "1.0.0")
    assert meta["cann_version"] is None and "HCCL_RDMA_TC" in meta["env_variables"] and meta["steps"] == [50]
