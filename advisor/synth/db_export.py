"""The db export of one rank: `ascend_pytorch_profiler_{N}.db` and `analysis.db`, with the table schemas
of the corpus recording, filled step by step from the same rendered events and rows as the text export.

Conventions follow the real files: strings interned in STRING_IDS, times in ns (PYTORCH_API start and
end as TEXT), globalTid = pid << 32 | tid, framework ops linked to device tasks through CONNECTION_IDS.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from . import level0
from .render import RankIds, StepOut, double_hash
from .spec import ts_ns
from .text_export import KERNEL_HEADER

PROFILER_TABLES = """
CREATE TABLE STRING_IDS (id INTEGER PRIMARY KEY,value TEXT);
CREATE TABLE META_DATA (name TEXT,value TEXT);
CREATE TABLE NPU_INFO (id INTEGER,name TEXT);
CREATE TABLE SESSION_TIME_INFO (startTimeNs INTEGER,endTimeNs INTEGER);
CREATE TABLE HOST_INFO (hostUid TEXT,hostName TEXT);
CREATE TABLE RANK_DEVICE_MAP (rankId INTEGER, deviceId INTEGER);
CREATE TABLE ENUM_API_TYPE (id INTEGER PRIMARY KEY,name TEXT);
CREATE TABLE ENUM_HCCL_LINK_TYPE (id INTEGER PRIMARY KEY,name TEXT);
CREATE TABLE ENUM_HCCL_TRANSPORT_TYPE (id INTEGER PRIMARY KEY,name TEXT);
CREATE TABLE ENUM_HCCL_DATA_TYPE (id INTEGER PRIMARY KEY,name TEXT);
CREATE TABLE ENUM_HCCL_RDMA_TYPE (id INTEGER PRIMARY KEY,name TEXT);
CREATE TABLE TASK (startNs INTEGER,endNs INTEGER,deviceId INTEGER,connectionId INTEGER,globalTaskId INTEGER,
    globalPid INTEGER,taskType INTEGER,contextId INTEGER,streamId INTEGER,taskId INTEGER,modelId INTEGER,
    depth integer);
CREATE TABLE COMPUTE_TASK_INFO (name INTEGER,globalTaskId INTEGER PRIMARY KEY,blockDim INTEGER,
    mixBlockDim INTEGER,taskType INTEGER,opType INTEGER,inputFormats INTEGER,inputDataTypes INTEGER,
    inputShapes INTEGER,outputFormats INTEGER,outputDataTypes INTEGER,outputShapes INTEGER,attrInfo INTEGER,
    waitNs INTEGER, opState INTEGER);
CREATE TABLE TASK_PMU_INFO (globalTaskId INTEGER,name INTEGER,value NUMERIC);
CREATE TABLE COMMUNICATION_OP (opName INTEGER,startNs INTEGER,endNs INTEGER,connectionId INTEGER,
    groupName INTEGER,opId INTEGER PRIMARY KEY,relay INTEGER,retry INTEGER,dataType INTEGER,algType INTEGER,
    count NUMERIC,opType INTEGER, waitNs INTEGER);
CREATE TABLE COMMUNICATION_TASK_INFO (name INTEGER,globalTaskId INTEGER,taskType INTEGER,planeId INTEGER,
    groupName INTEGER,notifyId INTEGER,rdmaType INTEGER,srcRank INTEGER,dstRank INTEGER,transportType INTEGER,
    size INTEGER,dataType INTEGER,linkType INTEGER,opId INTEGER);
CREATE TABLE CANN_API (startNs INTEGER,endNs INTEGER,type INTEGER,globalTid INTEGER,
    connectionId INTEGER PRIMARY KEY,name INTEGER, depth integer);
CREATE TABLE PYTORCH_API (startNs TEXT, endNs TEXT, globalTid INTEGER, connectionId INTEGER, name INTEGER,
    sequenceNumber INTEGER, fwdThreadId INTEGER, inputDtypes INTEGER, inputShapes INTEGER,
    callchainId INTEGER, type INTEGER, depth integer);
CREATE TABLE PYTORCH_CALLCHAINS (id INTEGER, stack INTEGER, stackDepth INTEGER);
CREATE TABLE CONNECTION_IDS (id INTEGER, connectionId INTEGER);
CREATE TABLE AICORE_FREQ (deviceId INTEGER,timestampNs NUMERIC,freq INTEGER);
CREATE TABLE STEP_TIME (id INTEGER, startNs INTEGER, endNs INTEGER);
CREATE TABLE GC_RECORD (startNs INTEGER, endNs INTEGER, globalTid INTEGER);
CREATE TABLE OVERLAP_ANALYSIS (id INTEGER PRIMARY KEY AUTOINCREMENT, deviceId integer, startNs integer,
    endNs integer, type integer);
"""
GC_TABLE = "CREATE TABLE GC_RECORD (startNs INTEGER, endNs INTEGER, globalTid INTEGER);\n"
ANALYSIS_TABLES = """
CREATE TABLE StepTraceTime (step TEXT, computing NUMERIC, communication_not_overlapped NUMERIC,
    overlapped NUMERIC, communication NUMERIC, free NUMERIC, stage NUMERIC, bubble NUMERIC,
    communication_not_overlapped_and_exclude_receive NUMERIC, preparing NUMERIC);
CREATE TABLE CommAnalyzerBandwidth (hccl_op_name TEXT, group_name TEXT, transport_type TEXT,
    transit_size NUMERIC, transit_time NUMERIC, bandwidth NUMERIC, large_packet_ratio NUMERIC,
    package_size NUMERIC, count NUMERIC, total_duration NUMERIC, step TEXT, type TEXT);
CREATE TABLE CommAnalyzerMatrix (hccl_op_name TEXT, group_name TEXT, src_rank TEXT, dst_rank TEXT,
    transport_type TEXT, transit_size NUMERIC, transit_time NUMERIC, bandwidth NUMERIC, step TEXT, type TEXT,
    op_name TEXT);
CREATE TABLE CommAnalyzerTime (hccl_op_name TEXT, group_name TEXT, start_timestamp NUMERIC,
    elapse_time NUMERIC, transit_time NUMERIC, wait_time NUMERIC, synchronization_time NUMERIC,
    idle_time NUMERIC, step TEXT, type TEXT);
"""
API_TYPES = {
    5000: "runtime",
    5500: "hccl",
    10000: "node",
    15000: "model",
    20000: "acl",
    50001: "op",
    50002: "queue",
    50003: "trace",
    50004: "mstx",
}
LINK_TYPES = {
    0: "ON_CHIP",
    1: "HCCS",
    2: "PCIE",
    3: "ROCE",
    4: "SIO",
    5: "HCCS_SW",
    6: "STANDARD_ROCE",
    7: "RESERVED",
    65534: "N/A",
    65535: "INVALID_TYPE",
}
TRANSPORT_TYPES = {0: "SDMA", 1: "RDMA", 2: "LOCAL", 65534: "N/A", 65535: "INVALID_TYPE"}
DATA_TYPES = {
    0: "INT8",
    1: "INT16",
    2: "INT32",
    3: "FP16",
    4: "FP32",
    5: "INT64",
    6: "UINT64",
    7: "UINT8",
    8: "UINT16",
    9: "UINT32",
    10: "FP64",
    11: "BFP16",
    12: "INT128",
    65534: "N/A",
    65535: "INVALID_TYPE",
}
RDMA_TYPES = {
    0: "RDMA_SEND_NOTIFY",
    1: "RDMA_SEND_PAYLOAD",
    2: "RDMA_PAYLOAD_PREPARE",
    3: "RDMA_PAYLOAD_CHECK",
    4: "RDMA_PAYLOAD_ACK",
    5: "RDMA_SEND_OP",
    65534: "N/A",
    65535: "INVALID_TYPE",
}
# Device task types as the db names them (the trace says AI_CORE for vector kernels too).
_HARDWARE_TYPE = {"AI_CORE": "KERNEL_AICORE", "AI_VECTOR_CORE": "KERNEL_AIVEC"}
_COMM_TASK_TYPE = {
    "Memcpy": "SDMA",
    "Reduce_Inline": "SDMA",
    "RDMASend": "RDMA_SEND",
    "Notify_Wait": "Notify Wait",
    "Notify_Record": "Write Value",
}
# OVERLAP_ANALYSIS.type as the profiler writes it (the corpus db: 0..3 in this order).
_OVERLAP_TYPE = {"Computing": 0, "Communication": 1, "Communication(Not Overlapped)": 2, "Free": 3}
_COL = {name: i for i, name in enumerate(KERNEL_HEADER)}
_SHAPE_COLUMNS = (
    "Input Formats",
    "Input Data Types",
    "Input Shapes",
    "Output Formats",
    "Output Data Types",
    "Output Shapes",
)
# kernel_details PMU column -> TASK_PMU_INFO metric name and scale (the db keeps times in ns).
_PMU = [
    (
        c,
        c.removesuffix("(us)").replace("aicore_time", "aic_total_time").replace("aiv_time", "aiv_total_time"),
        1000 if c.endswith("(us)") else 1,
    )
    for c in KERNEL_HEADER[_COL["aicore_time(us)"] : _COL["cube_utilization(%)"]]
]
_ENUM_ID = {v: k for k, v in TRANSPORT_TYPES.items()}
_DATA_ID = {v: k for k, v in DATA_TYPES.items()}
_LINK_ID = {v: k for k, v in LINK_TYPES.items()}


class DbWriter:
    """Both databases of one rank, filled one step at a time; `reduced` (Level0) without the tables
    of Level1 data (level0.py)."""

    def __init__(
        self,
        output: Path,
        ids: RankIds,
        rank: int,
        env: dict[str, str],
        group_ids: dict[int, str],
        gc_events: bool = True,
        reduced: bool = False,
    ) -> None:
        output.mkdir(parents=True, exist_ok=True)
        self.ids, self.rank, self.reduced = ids, rank, reduced
        self.db = sqlite3.connect(output / f"ascend_pytorch_profiler_{rank}.db")
        self.analysis = sqlite3.connect(output / "analysis.db")
        self.gc_events = gc_events
        # GC_RECORD exists only when GC detection was on (the corpus, recorded without, has none).
        self.db.executescript(PROFILER_TABLES if gc_events else PROFILER_TABLES.replace(GC_TABLE, ""))
        self.analysis.executescript(ANALYSIS_TABLES)
        for table, values in (
            ("ENUM_API_TYPE", API_TYPES),
            ("ENUM_HCCL_LINK_TYPE", LINK_TYPES),
            ("ENUM_HCCL_TRANSPORT_TYPE", TRANSPORT_TYPES),
            ("ENUM_HCCL_DATA_TYPE", DATA_TYPES),
            ("ENUM_HCCL_RDMA_TYPE", RDMA_TYPES),
        ):
            self.db.executemany(f"INSERT INTO {table} VALUES (?, ?)", values.items())
        self.db.executemany(
            "INSERT INTO META_DATA VALUES (?, ?)",
            [
                ("SCHEMA_VERSION_MICRO", "0"),
                ("SCHEMA_VERSION_MINOR", "0"),
                ("SCHEMA_VERSION_MAJOR", "1"),
                ("SCHEMA_VERSION", "1.0.0"),
                ("ENV_VARIABLES", json.dumps(env)),
            ],
        )
        self.db.execute("INSERT INTO NPU_INFO VALUES (?, ?)", (ids.device, "Ascend910B"))
        self.db.execute("INSERT INTO RANK_DEVICE_MAP VALUES (?, ?)", (rank, ids.device))
        self.strings: dict[str, int] = {}
        self.group_ids = group_ids
        self.task_id = self.op_id = self.callchain = self.link = 0
        self.first = self.last = 0

    def _s(self, value: str) -> int:
        sid = self.strings.get(value)
        if sid is None:
            sid = self.strings[value] = len(self.strings)
        return sid

    def _tid(self, tid: int) -> int:
        return self.ids.host_pid << 32 | tid

    def add(self, out: StepOut, step: int, start: int, end: int) -> None:
        ids, s = self.ids, self._s
        self.first = self.first or start
        self.last = end
        rows = {
            ts_ns(row[_COL["Start Time(us)"]]): row
            for row in out.kernel_rows
            if row[_COL["Task ID"]] != "N/A"
        }
        ops = {op["start"]: op for op in out.comm_ops}
        tasks, compute, pmu, cann, torch, chains, overlap, freq, gc, comm_tasks = ([] for _ in range(10))
        connection: dict[int, int] = {}  # device start -> connection id of its launch
        launched: list[tuple[list[Any], int]] = []  # (framework op row, device start) per torch_to_npu flow
        last_op: dict[int, list[Any]] = {}  # per thread, the op that launches what follows it
        op = None
        for e in out.events:
            pid, ph, name = e["pid"], e["ph"], e["name"]
            if ph == "C":
                freq.append((ids.device, ts_ns(e["ts"]), e["args"]["MHz"]))
            elif ph == "s" and name == "torch_to_npu":
                launched.append((last_op[e["tid"]], e["id"]))
            if ph != "X":
                continue
            begin = ts_ns(e["ts"])
            finish = begin + round(e["dur"] * 1000)
            args = e.get("args", {})
            if pid == ids.host_pid:
                chain = None
                if "Call stack" in args:
                    chain = self.callchain
                    self.callchain += 1
                    frames = args["Call stack"].split(";\r\n")
                    chains.extend((chain, s(frame), depth) for depth, frame in enumerate(frames))
                shapes = s(args["Input Dims"]) if "Input Dims" in args else None
                row = [
                    str(begin),
                    str(finish),
                    self._tid(e["tid"]),
                    None,
                    s(name),
                    args.get("Sequence number"),
                    args.get("Fwd thread id"),
                    None,
                    shapes,
                    chain,
                    50001,
                    0,
                ]
                torch.append(row)
                last_op[e["tid"]] = row
            elif pid == ids.gc:
                gc.append((begin, finish, self._tid(e["tid"])))
            elif pid == ids.cann:
                kind = {"acl": 20000, "node": 10000, "hccl": 5500}[args["level"]]
                cann.append(
                    (
                        begin,
                        finish,
                        kind,
                        self._tid(e["tid"]),
                        args["connection_id"],
                        s(name.split("@", 1)[1]),
                        0,
                    )
                )
            elif pid == ids.overlap and name in _OVERLAP_TYPE:
                overlap.append((ids.device, begin, finish, _OVERLAP_TYPE[name]))
            elif pid == ids.hardware:
                self.task_id += 1
                connection[begin] = args["connection_id"]
                row = rows[begin]
                core = row[_COL["Accelerator Core"]]
                tasks.append(
                    (
                        begin,
                        finish,
                        ids.device,
                        args["connection_id"],
                        self.task_id,
                        ids.host_pid,
                        s(_HARDWARE_TYPE.get(core, core)),
                        4294967295,
                        2,
                        args["Task Id"],
                        args["Model Id"],
                        0,
                    )
                )
                # Level0's op summary has no shapes, types, formats or OP State.
                text = [None if self.reduced else s(row[_COL[c]]) for c in _SHAPE_COLUMNS]
                compute.append(
                    (
                        s(name),
                        self.task_id,
                        row[_COL["Block Dim"]],
                        row[_COL["Mix Block Dim"]],
                        s(core),
                        s(row[_COL["Type"]]),
                        *text,
                        s("N/A"),
                        round(float(row[_COL["Wait Time(us)"]]) * 1000),
                        None if self.reduced else s(row[_COL["OP State"]]),
                    )
                )
                for column, metric, scale in () if self.reduced else _PMU:
                    value = row[_COL[column]]
                    if value != "N/A":
                        pmu.append((self.task_id, s(metric), float(value) * scale))
            elif pid == ids.hccl and e["tid"] == 0:
                op = ops[begin]
                connection[begin] = args["connection_id"]
                self.op_id += 1
                group = s(self.group_ids[op["group"]])
                self.db.execute(
                    "INSERT INTO COMMUNICATION_OP VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        s(name),
                        begin,
                        finish,
                        args["connection_id"],
                        group,
                        self.op_id,
                        0,
                        0,
                        4,
                        s(args["alg_type"]),
                        args["count"],
                        s(name.split("__")[0] + "_"),  # the op type: hcom_allReduce_, hcom_send_, ...
                        op["wait"],
                    ),
                )
            elif pid == ids.hccl and op is not None:
                self.task_id += 1
                tasks.append(
                    (
                        begin,
                        finish,
                        ids.device,
                        connection[op["start"]],
                        self.task_id,
                        ids.host_pid,
                        s(_COMM_TASK_TYPE[name]),
                        args["context id"],
                        args["stream id"],
                        args["task id"],
                        args["model id"],
                        0,
                    )
                )
                comm_tasks.append(
                    (
                        s(op["name"]),
                        self.task_id,
                        s(name),
                        e["tid"] - 1,
                        s(self.group_ids[op["group"]]),
                        int(args["notify_id"]),
                        65535,
                        args["src rank"],
                        args["dst rank"],
                        _ENUM_ID[args["transport type"]],
                        args["size(Byte)"],
                        _DATA_ID[args["data type"]],
                        _LINK_ID[args["link type"]],
                        self.op_id,
                    )
                )
        # A framework op gets one CONNECTION_IDS id, listed once per device task it launched.
        links = []
        for row, device_start in launched:
            if row[3] is None:
                row[3] = self.link
                self.link += 1
            links.append((row[3], connection[device_start]))
        db = self.db
        db.execute("INSERT INTO STEP_TIME VALUES (?, ?, ?)", (step, start, end))
        db.executemany("INSERT INTO TASK VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", tasks)
        db.executemany("INSERT INTO COMPUTE_TASK_INFO VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", compute)
        db.executemany("INSERT INTO TASK_PMU_INFO VALUES (?,?,?)", pmu)
        db.executemany("INSERT INTO COMMUNICATION_TASK_INFO VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", comm_tasks)
        db.executemany("INSERT INTO CANN_API VALUES (?,?,?,?,?,?,?)", cann)
        db.executemany("INSERT INTO PYTORCH_API VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", torch)
        db.executemany("INSERT INTO PYTORCH_CALLCHAINS VALUES (?,?,?)", chains)
        db.executemany("INSERT INTO CONNECTION_IDS VALUES (?,?)", links)
        db.executemany(
            "INSERT INTO OVERLAP_ANALYSIS (deviceId, startNs, endNs, type) VALUES (?,?,?,?)", overlap
        )
        db.executemany("INSERT INTO AICORE_FREQ VALUES (?,?,?)", freq)
        if self.gc_events:
            db.executemany("INSERT INTO GC_RECORD VALUES (?,?,?)", gc)
        self._analysis(out, step)

    def _analysis(self, out: StepOut, step: int) -> None:
        row = out.trace_row
        values = [
            row[k] / 1000
            for k in ("computing", "not_overlapped", "overlapped", "communication", "free", "step")
        ]
        bubble = row["bubble"] / 1000
        values[-1] -= bubble  # Stage and the not-overlapped time without the receive ops, as in the CSV
        self.analysis.execute(
            "INSERT INTO StepTraceTime VALUES (?,?,?,?,?,?,?,?,?,?)",
            (str(step), *values, bubble, row["not_overlapped"] / 1000 - bubble, row["preparing"] / 1000),
        )
        if self.reduced:
            return
        times, bandwidth, matrix = [], [], []
        sections = out.communication.get(f"step{step}", {})
        for section, key, op in (
            (k, n, o) for k in ("collective", "p2p") for n, o in sections.get(k, {}).items()
        ):
            if key == "Total Op Info":
                continue
            name, group = key.split("@")
            info = op["Communication Time Info"]
            times.append(
                (
                    name,
                    group,
                    info["Start Timestamp(us)"],
                    info["Elapse Time(ms)"],
                    info["Transit Time(ms)"],
                    info["Wait Time(ms)"],
                    info["Synchronization Time(ms)"],
                    info["Idle Time(ms)"],
                    f"step{step}",
                    section,
                )
            )
            for transport, b in op["Communication Bandwidth Info"].items():
                common = (
                    name,
                    group,
                    transport,
                    b["Transit Size(MB)"],
                    b["Transit Time(ms)"],
                    b["Bandwidth(GB/s)"],
                    b["Large Packet Ratio"],
                )
                packets = b["Size Distribution"].items() or [("0", [0, 0])]
                bandwidth.extend(
                    (*common, float(size), count, ms, f"step{step}", section) for size, (count, ms) in packets
                )
        matrices = out.matrix.get(f"step{step}", {})
        for section, key, links in (
            (k, n, o) for k in ("collective", "p2p") for n, o in matrices.get(k, {}).items()
        ):
            name, group = key.split("@")
            for link, info in links.items():
                src, dst = link.split("-")
                matrix.append(
                    (
                        name,
                        group,
                        src,
                        dst,
                        info["Transport Type"],
                        info["Transit Size(MB)"],
                        info["Transit Time(ms)"],
                        info["Bandwidth(GB/s)"],
                        f"step{step}",
                        section,
                        info.get("Op Name", ""),
                    )
                )
        self.analysis.executemany("INSERT INTO CommAnalyzerTime VALUES (?,?,?,?,?,?,?,?,?,?)", times)
        self.analysis.executemany(
            "INSERT INTO CommAnalyzerBandwidth VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", bandwidth
        )
        self.analysis.executemany("INSERT INTO CommAnalyzerMatrix VALUES (?,?,?,?,?,?,?,?,?,?,?)", matrix)

    def close(self, host: str) -> None:
        self.db.execute("INSERT INTO SESSION_TIME_INFO VALUES (?, ?)", (self.first, self.last))
        self.db.execute("INSERT INTO HOST_INFO VALUES (?, ?)", (str(double_hash(host)), host))
        self.db.executemany("INSERT INTO STRING_IDS VALUES (?, ?)", ((i, v) for v, i in self.strings.items()))
        if self.reduced:  # the profiler creates a table only for data it collected
            for con, tables in ((self.db, level0.PROFILER_TABLES), (self.analysis, level0.ANALYSIS_TABLES)):
                for table in tables:
                    con.execute(f"DROP TABLE {table}")
        for con in (self.db, self.analysis):
            con.commit()
            con.close()
