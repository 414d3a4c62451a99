"""The text export of one rank: streamed as steps are rendered, so memory stays bounded.

Formatting follows the profiler: trace_view.json spaced like Python's json module; kernel_details,
step_trace_time, memory_record and operator_memory CSVs with CRLF and a TAB after timestamps; the
other CSVs with LF.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import IO, Any

import orjson

from .level0 import KERNEL_COLUMNS, LEVEL1_ONLY_FILES
from .render import RankRenderer, StepOut

KERNEL_HEADER = [
    "Step Id",
    "Model ID",
    "Task ID",
    "Stream ID",
    "Name",
    "Type",
    "OP State",
    "Accelerator Core",
    "Start Time(us)",
    "Duration(us)",
    "Wait Time(us)",
    "Block Dim",
    "Mix Block Dim",
    "HF32 Eligible",
    "Input Shapes",
    "Input Data Types",
    "Input Formats",
    "Output Shapes",
    "Output Data Types",
    "Output Formats",
    "Context ID",
    "aicore_time(us)",
    "aic_total_cycles",
    "aic_mac_time(us)",
    "aic_mac_ratio",
    "aic_scalar_time(us)",
    "aic_scalar_ratio",
    "aic_mte1_time(us)",
    "aic_mte1_ratio",
    "aic_mte2_time(us)",
    "aic_mte2_ratio",
    "aic_fixpipe_time(us)",
    "aic_fixpipe_ratio",
    "aic_icache_miss_rate",
    "aiv_time(us)",
    "aiv_total_cycles",
    "aiv_vec_time(us)",
    "aiv_vec_ratio",
    "aiv_scalar_time(us)",
    "aiv_scalar_ratio",
    "aiv_mte2_time(us)",
    "aiv_mte2_ratio",
    "aiv_mte3_time(us)",
    "aiv_mte3_ratio",
    "aiv_icache_miss_rate",
    "cube_utilization(%)",
]
STEP_TRACE_HEADER = (
    "Step,Computing,Communication(Not Overlapped),Overlapped,Communication,Free,Stage,Bubble,"
    "Communication(Not Overlapped and Exclude Receive),Preparing"
)
_DETAIL_HEADER = [
    "Name",
    "Input Shapes",
    "Call Stack",
    "Host Self Duration(us)",
    "Host Total Duration(us)",
    "Device Self Duration(us)",
    "Device Total Duration(us)",
    "Device Self Duration With AICore(us)",
    "Device Total Duration With AICore(us)",
]
_MEMORY_HEADER = [
    "Component",
    "Timestamp(us)",
    "Total Allocated(MB)",
    "Total Reserved(MB)",
    "Total Active(MB)",
    "Stream Ptr",
    "Device Type",
]
_OP_MEMORY_HEADER = [
    "Name",
    "Size(KB)",
    "Allocation Time(us)",
    "Release Time(us)",
    "Active Release Time(us)",
    "Duration(us)",
    "Active Duration(us)",
    "Allocation Total Allocated(MB)",
    "Allocation Total Reserved(MB)",
    "Allocation Total Active(MB)",
    "Release Total Allocated(MB)",
    "Release Total Reserved(MB)",
    "Release Total Active(MB)",
    "Stream Ptr",
    "Device Type",
]
_LEVEL0_KERNEL = [KERNEL_HEADER.index(column) for column in KERNEL_COLUMNS]
TEXT_FILES = (
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
)
MODULES = {
    "APP": 0.0,
    "SLOG": 0.0,
    "HCCL": 1288.4,
    "RUNTIME": 514.2,
    "GE": 96.0,
    "FE": 8.0,
    "TBE": 12.5,
    "AICPU": 40.0,
    "DRV": 156.7,
    "DEVMM": 2.0,
    "TS": 64.0,
    "PROFILING": 212.3,
}


def trace_chunk(events: list[dict[str, Any]]) -> bytes:
    """Events as the inside of a JSON array, spaced like json.dumps (names never contain quotes)."""
    data = orjson.dumps(events)[1:-1]
    return data.replace(b'":', b'": ').replace(b',"', b', "').replace(b"},{", b"}, {")


class TraceWriter:
    """A JSON array written piece by piece; `size` counts the bytes (also without a file)."""

    def __init__(self, file: IO[bytes] | None) -> None:
        self.file, self.size, self.empty = file, 0, True

    def write(self, events: list[dict[str, Any]]) -> None:
        if not events:
            return
        data = (b"[" if self.empty else b", ") + trace_chunk(events)
        self.empty = False
        self.size += len(data)
        if self.file:
            self.file.write(data)

    def close(self) -> None:
        tail = b"[]" if self.empty else b"]"
        self.size += len(tail)
        if self.file:
            self.file.write(tail)
            self.file.close()


class _JsonObject:
    """`{"step12": {...}, "step13": {...}}` written one step at a time."""

    def __init__(self, path: Path) -> None:
        self.file = path.open("w", encoding="utf-8")
        self.first = True

    def add(self, entries: dict[str, Any]) -> None:
        for key, value in entries.items():
            self.file.write(("{" if self.first else ", ") + json.dumps(key) + ": " + json.dumps(value))
            self.first = False

    def close(self) -> None:
        self.file.write("{}" if self.first else "}")
        self.file.close()


def _csv(path: Path, header: list[str], crlf: bool) -> tuple[IO[str], Any]:
    file = path.open("w", encoding="utf-8", newline="")
    writer = csv.writer(file, lineterminator="\r\n" if crlf else "\n")
    writer.writerow(header)
    return file, writer


class RankFiles:
    """ASCEND_PROFILER_OUTPUT/ of one rank, open for the length of its generation; `level0` leaves
    out what Level0 does not collect (level0.py)."""

    def __init__(self, output: Path, header_events: list[dict[str, Any]], level0: bool = False) -> None:
        output.mkdir(parents=True, exist_ok=True)
        self.output, self.level0 = output, level0
        self.trace = TraceWriter((output / "trace_view.json").open("wb"))
        self.trace.write(header_events)
        header = list(KERNEL_COLUMNS) if level0 else KERNEL_HEADER
        self.kernels = _csv(output / "kernel_details.csv", header, crlf=True)
        self.details = _csv(output / "operator_details.csv", _DETAIL_HEADER, crlf=False)
        self.memory = _csv(output / "memory_record.csv", _MEMORY_HEADER, crlf=True)
        self.op_memory = _csv(output / "operator_memory.csv", _OP_MEMORY_HEADER, crlf=True)
        self.modules = _csv(
            output / "npu_module_mem.csv",
            ["Component", "Timestamp(us)", "Total Reserved(MB)", "Device"],
            crlf=False,
        )
        self.step_trace = (output / "step_trace_time.csv").open("wb")
        self.step_trace.write(STEP_TRACE_HEADER.encode() + b"\r\n")
        self.communication = self.matrix = None
        if not level0:
            self.communication = _JsonObject(output / "communication.json")
            self.matrix = _JsonObject(output / "communication_matrix.json")

    def add(self, out: StepOut, step: int, at: str, device: int) -> None:
        self.trace.write(out.events)
        rows = out.kernel_rows
        self.kernels[1].writerows([[row[i] for i in _LEVEL0_KERNEL] for row in rows] if self.level0 else rows)
        self.details[1].writerows(out.detail_rows)
        self.memory[1].writerows(out.memory_rows)
        self.op_memory[1].writerows(out.op_memory_rows)
        self.modules[1].writerows([name, at, mb, f"NPU:{device}"] for name, mb in MODULES.items())
        self.step_trace.write(step_trace_line(step, out.trace_row).encode() + b"\r\n")
        if out.communication and self.communication and self.matrix:
            self.communication.add(out.communication)
            self.matrix.add(out.matrix)

    def paths(self) -> list[Path]:
        """The files written."""
        return [self.output / n for n in TEXT_FILES if not (self.level0 and n in LEVEL1_ONLY_FILES)]

    def close(self, tail_events: list[dict[str, Any]], renderer: RankRenderer) -> int:
        """Finish every file; returns the size of trace_view.json."""
        self.trace.write(tail_events)
        self.trace.close()
        for file, _ in (self.kernels, self.details, self.memory, self.op_memory, self.modules):
            file.close()
        self.step_trace.close()
        if self.communication and self.matrix:
            self.communication.close()
            self.matrix.close()
        if not self.level0:
            write_op_statistic(self.output / "op_statistic.csv", renderer.op_stats)
            write_api_statistic(self.output / "api_statistic.csv", renderer.api_stats)
        return self.trace.size


def step_trace_line(step: int, row: dict[str, int]) -> str:
    values = [
        row["computing"],
        row["not_overlapped"],
        row["overlapped"],
        row["communication"],
        row["free"],
        row["step"] - row["bubble"],  # Stage: the step without the receive ops (TraceStepTimeParser)
        row["bubble"],
        row["not_overlapped"] - row["bubble"],
        row["preparing"],
    ]
    return ",".join([str(step), *(f"{v / 1000:.3f}" for v in values)])


def write_op_statistic(path: Path, stats: dict[tuple[str, str], list[float]]) -> None:
    """op_statistic.csv: kernel_details aggregated by (OP Type, Core Type), longest total first."""
    grand = sum(s[1] for s in stats.values()) or 1
    with path.open("w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(
            [
                "OP Type",
                "Core Type",
                "Count",
                "Total Time(us)",
                "Min Time(us)",
                "Avg Time(us)",
                "Max Time(us)",
                "Ratio(%)",
            ]
        )
        for (op_type, core), (count, total, low, high) in sorted(
            stats.items(), key=lambda kv: (-kv[1][1], kv[0])
        ):
            writer.writerow(
                [
                    op_type,
                    core,
                    int(count),
                    total / 1000,
                    low / 1000,
                    round(total / count / 1000, 3),
                    high / 1000,
                    round(100 * total / grand, 3),
                ]
            )


def write_api_statistic(path: Path, stats: dict[tuple[str, str], list[float]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(
            ["Level", "API Name", "Time(us)", "Count", "Avg(us)", "Min(us)", "Max(us)", "Variance"]
        )
        for (level, name), (count, total, low, high, square) in sorted(stats.items()):
            mean = total / count
            variance = max(0.0, square / count - mean * mean) / 1e6
            writer.writerow(
                [
                    level,
                    name,
                    round(total / 1000, 3),
                    int(count),
                    round(mean / 1000, 3),
                    low / 1000,
                    high / 1000,
                    round(variance, 3),
                ]
            )


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=4), encoding="utf-8")
