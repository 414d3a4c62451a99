"""The normalised tables: one schema per table, filled alike from text and db exports.

Units: durations in µs (float64); absolute timestamps in ns (Int64): a float64 µs value at epoch
scale (~1.7e15) resolves only 0.25 µs, while the profiler records ns and links host to device
events by exact timestamps. Sizes in bytes (communication MB = 10^6 bytes, memory MB = 2^20 bytes
and KB = 2^10 bytes, as the profiler writes them). Absent values are <NA>/NaN, never 0, except in
the columns a schema lists as `required` (sanity.py drops the rows without them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd
from pandas.api.types import pandas_dtype

STR, INT, FLOAT, BOOL = "string", "Int64", "float64", "boolean"


@dataclass(frozen=True)
class TableSchema:
    name: str
    columns: Mapping[str, str]  # column -> pandas dtype
    doc: str
    # Columns every row has a value in: a row without one is damaged (sanity.py drops it). Any other
    # column may be absent (<NA>/NaN) without the row being wrong.
    required: frozenset[str] = frozenset()


def _schema(table: str, doc: str, /, required: tuple[str, ...] = (), **columns: str) -> TableSchema:
    unknown = set(required) - set(columns)
    if unknown:
        raise ValueError(f"{table}: required columns {sorted(unknown)} are not in the schema")
    return TableSchema(table, dict(columns), doc, frozenset(required))


# step_trace.attrs["source"] when the steps come from the trace's Overlap Analysis (no step_trace_time.csv).
SOURCE_TRACE = "trace_view.json (Overlap Analysis)"
# ge_graph_ops.inputs: the producer op names, one per line (op names hold no line break).
GRAPH_INPUT_SEPARATOR = "\n"

# An event of the trace or the db (X events, tasks, API calls) has a start and a duration.
EVENT = ("start_ns", "dur_us")


PMU_RATIOS = (
    "aic_mac_ratio", "aic_scalar_ratio", "aic_mte1_ratio", "aic_mte2_ratio", "aic_fixpipe_ratio",
    "aiv_vec_ratio", "aiv_scalar_ratio", "aiv_mte2_ratio", "aiv_mte3_ratio",
)  # fmt: skip

SCHEMAS: dict[str, TableSchema] = {
    s.name: s
    for s in (
        _schema(
            "step_trace",
            "Per step: the device time split (step_trace_time.csv / StepTraceTime / Overlap Analysis).",
            step=INT,
            computing_us=FLOAT,
            communication_not_overlapped_us=FLOAT,
            overlapped_us=FLOAT,
            communication_us=FLOAT,
            free_us=FLOAT,
            preparing_us=FLOAT,
            bubble_us=FLOAT,
            stage_us=FLOAT,
        ),
        _schema(
            "kernels",
            "One row per device kernel (kernel_details.csv / TASK+COMPUTE_TASK_INFO+TASK_PMU_INFO).",
            required=("duration_us",),
            step=INT,
            name=STR,
            op_type=STR,
            accelerator_core=STR,
            op_state=STR,
            start_ns=INT,
            duration_us=FLOAT,
            wait_us=FLOAT,
            stream_id=INT,
            task_id=INT,
            block_dim=INT,
            mix_block_dim=INT,
            input_shapes=STR,
            input_dtypes=STR,
            input_formats=STR,
            output_shapes=STR,
            output_dtypes=STR,
            output_formats=STR,
            aicore_time_us=FLOAT,
            aiv_time_us=FLOAT,
            **dict.fromkeys(PMU_RATIOS, FLOAT),
            correlation=INT,  # the launching runtime call's (Kineto); NA on Ascend
        ),
        _schema(
            "op_statistic",
            "Per operator type and core type, over the whole profile (op_statistic.csv).",
            op_type=STR,
            core_type=STR,
            count=INT,
            total_us=FLOAT,
            min_us=FLOAT,
            avg_us=FLOAT,
            max_us=FLOAT,
            ratio_pct=FLOAT,
        ),
        _schema(
            "api_statistic",
            "Per host API (api_statistic.csv).",
            level=STR,
            api_name=STR,
            total_us=FLOAT,
            count=INT,
            avg_us=FLOAT,
            min_us=FLOAT,
            max_us=FLOAT,
            variance=FLOAT,
        ),
        _schema(
            "operator_details",
            "Per framework operator (operator_details.csv).",
            name=STR,
            input_shapes=STR,
            call_stack=STR,
            host_self_us=FLOAT,
            host_total_us=FLOAT,
            device_self_us=FLOAT,
            device_total_us=FLOAT,
        ),
        _schema(
            "memory_record",
            "Allocator samples over time (memory_record.csv / MEMORY_RECORD).",
            component=STR,
            ts_ns=INT,
            allocated_bytes=FLOAT,
            reserved_bytes=FLOAT,
            active_bytes=FLOAT,
            device=STR,
        ),
        _schema(
            "operator_memory",
            "Per tensor allocation of framework operators (operator_memory.csv / OP_MEMORY).",
            name=STR,
            size_bytes=FLOAT,
            alloc_ns=INT,
            release_ns=INT,
            duration_us=FLOAT,
            device=STR,
        ),
        _schema(
            "npu_module_mem",
            "Reserved memory per CANN module over time (npu_module_mem.csv / NPU_MODULE_MEM).",
            component=STR,
            ts_ns=INT,
            reserved_bytes=FLOAT,
            device=STR,
        ),
        _schema(
            "comm_ops",
            "Per communication op (communication.json / CommAnalyzerTime); no 'Total Op Info' rows.",
            step=INT,
            kind=STR,
            op_name=STR,
            group=STR,
            start_ns=INT,
            elapse_us=FLOAT,
            transit_us=FLOAT,
            wait_us=FLOAT,
            sync_us=FLOAT,
            idle_us=FLOAT,
            wait_ratio=FLOAT,
            sync_ratio=FLOAT,
            size_bytes=FLOAT,  # the message size, when recorded (Kineto: In msg nelems x dtype size)
        ),
        _schema(
            "comm_bandwidth",
            "Per communication op and transport (communication.json / CommAnalyzerBandwidth).",
            step=INT,
            kind=STR,
            op_name=STR,
            group=STR,
            transport=STR,
            size_bytes=FLOAT,
            transit_us=FLOAT,
            bandwidth_gbps=FLOAT,
            large_packet_ratio=FLOAT,
        ),
        _schema(
            "comm_packets",
            "Packet-size distribution per op and transport ('Size Distribution').",
            step=INT,
            kind=STR,
            op_name=STR,
            group=STR,
            transport=STR,
            packet_bytes=FLOAT,
            count=INT,
            total_us=FLOAT,
        ),
        _schema(
            "comm_matrix",
            "Per link (communication_matrix.json / CommAnalyzerMatrix); ranks local to the group.",
            step=INT,
            kind=STR,
            op_name=STR,
            group=STR,
            src_rank=INT,
            dst_rank=INT,
            transport=STR,
            size_bytes=FLOAT,
            transit_us=FLOAT,
            bandwidth_gbps=FLOAT,
            hccl_op_name=STR,
        ),
        _schema(
            "steps",
            "Profiled steps (ProfilerStep#N / STEP_TIME).",
            required=EVENT,
            step=INT,
            start_ns=INT,
            dur_us=FLOAT,
        ),
        _schema(
            "host_ops",
            "Framework events of the Python process: cpu_op, python_function, enqueue, dequeue, "
            "DataLoader, Optimizer (trace_view.json / PYTORCH_API).",
            required=EVENT,
            name=STR,
            cat=STR,
            start_ns=INT,
            dur_us=FLOAT,
            tid=INT,
            call_stack=STR,
        ),
        _schema(
            "runtime_api",
            "Host calls of the device runtime: CANN API calls named with their level prefix "
            "(AscendCL@aclrtSynchronizeStream), CUDA/HIP runtime and driver calls (cudaLaunchKernel).",
            required=EVENT,
            name=STR,
            start_ns=INT,
            dur_us=FLOAT,
            tid=INT,
            correlation=INT,  # links the call to the GPU work it launched (Kineto); NA on Ascend
        ),
        _schema(
            "memcpy",
            "GPU copies and memsets (Kineto gpu_memcpy / gpu_memset): kind HtoD, DtoH, DtoD, PtoP or "
            "Memset, and the memory on each side as the name gives it (Pageable, Pinned, Device, …).",
            required=EVENT,
            name=STR,
            kind=STR,
            src_memory=STR,
            dst_memory=STR,
            size_bytes=FLOAT,
            start_ns=INT,
            dur_us=FLOAT,
            stream_id=INT,
            correlation=INT,
        ),
        _schema(
            "device_tasks",
            "Tasks of the device: the 'Ascend Hardware' process (TASK); GPU kernels, copies and memsets.",
            required=EVENT,
            name=STR,
            task_type=STR,
            start_ns=INT,
            dur_us=FLOAT,
            stream_id=INT,
            task_id=INT,
        ),
        _schema(
            "hccl",
            "HCCL ops (is_op) and their tasks on plane threads (trace HCCL process / COMMUNICATION_*).",
            required=EVENT,
            name=STR,
            is_op=BOOL,
            group=STR,
            plane=STR,
            start_ns=INT,
            dur_us=FLOAT,
            task_type=STR,
            transport=STR,
            link_type=STR,
            size_bytes=FLOAT,
            src_rank=INT,
            dst_rank=INT,
        ),
        _schema(
            "overlap",
            "Overlap Analysis slices: kind is Computing, Communication, "
            "Communication(Not Overlapped) or Free.",
            required=EVENT,
            kind=STR,
            start_ns=INT,
            dur_us=FLOAT,
        ),
        _schema(
            "freq",
            "AI Core frequency samples in MHz (AI Core Freq counter / AICORE_FREQ).",
            required=("ts_ns",),
            ts_ns=INT,
            mhz=FLOAT,
        ),
        _schema(
            "flows",
            "Host-to-device links (torch_to_npu / CONNECTION_IDS): host event start and device task start.",
            required=("host_ns", "device_ns"),
            cat=STR,
            host_ns=INT,
            device_ns=INT,
        ),
        _schema(
            "gc",
            "Python garbage collections (GC_RECORD / Python GC).",
            required=EVENT,
            start_ns=INT,
            dur_us=FLOAT,
        ),
        _schema(
            "device_info",
            "Per DeviceInfo entry of PROF_*/device_*/info.json.N: core counts, AI Core clock, HBM size.",
            source=STR,
            entry=INT,
            ai_core_num=INT,
            aiv_num=INT,
            aic_mhz=FLOAT,
            hbm_capacity_mb=FLOAT,
        ),
        _schema(
            "environment",
            "Per environment variable the rank recorded (ENV_VARIABLES): its name and value as recorded.",
            required=("name",),
            name=STR,
            value=STR,
        ),
        _schema(
            "ge_graph_ops",
            "Per op of the rank's GE graph dump: name, type, producer op names (one per line).",
            file=STR,
            name=STR,
            type=STR,
            inputs=STR,
        ),
    )
}


def conform(frame: pd.DataFrame, table: str) -> pd.DataFrame:
    """Exactly the schema's columns, in order, with its dtypes; absent columns become <NA>/NaN."""
    rows = pd.RangeIndex(len(frame))  # a filtered frame's old index is dropped
    data = {}
    for column, dtype in SCHEMAS[table].columns.items():
        if column in frame.columns:
            values = frame[column]
            # Most columns come with their dtype: converting them anyway was a third of a table's build.
            data[column] = values.array if values.dtype == _DTYPES[dtype] else values.astype(dtype).array
        else:
            missing = float("nan") if dtype == FLOAT else pd.NA
            data[column] = pd.array([missing] * len(frame), dtype=dtype)
    return pd.DataFrame(data, index=rows, copy=False)


# The schema dtypes resolved, to compare with a column's: "string" alone also equals "str" (NaN for missing).
_DTYPES = {dtype: pandas_dtype(dtype) for dtype in (STR, INT, FLOAT, BOOL)}
