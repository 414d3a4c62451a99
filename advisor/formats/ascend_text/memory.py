"""Device memory of one rank: memory_record.csv, operator_memory.csv, npu_module_mem.csv.

All three are written only when the profile was collected with profile_memory=True. Their "MB" and
"KB" are binary multiples (2^20, 2^10 bytes), as the allocator counts.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ...model import RankInfo
from ..ascend_common.csvread import Column, rank_file, read_table
from ..tables import register_table

MEMORY_RECORD_CSV = "memory_record.csv"
OPERATOR_MEMORY_CSV = "operator_memory.csv"
NPU_MODULE_MEM_CSV = "npu_module_mem.csv"
WRITTEN_WHEN = "the profile is collected with profile_memory=True"

_DEVICE = Column("device", "text", ("Device Type", "Device"))
_MEMORY_RECORD = (
    Column("component", "text", ("Component",)),
    Column("ts_ns", "ts", ("Timestamp(us)",), required=True),
    Column("allocated_bytes", "mem_bytes", ("Total Allocated(MB)",)),
    Column("reserved_bytes", "mem_bytes", ("Total Reserved(MB)",), required=True),
    Column("active_bytes", "mem_bytes", ("Total Active(MB)",)),
    _DEVICE,
)
_OPERATOR_MEMORY = (
    Column("name", "text", ("Name",), required=True),
    Column("size_bytes", "mem_bytes", ("Size(KB)",), required=True),
    Column("alloc_ns", "ts", ("Allocation Time(us)",), required=True),
    Column("release_ns", "ts", ("Release Time(us)",)),
    Column("duration_us", "us", ("Duration(us)",)),
    _DEVICE,
)
_NPU_MODULE_MEM = (
    Column("component", "text", ("Component",), required=True),
    Column("ts_ns", "ts", ("Timestamp(us)",), required=True),
    Column("reserved_bytes", "mem_bytes", ("Total Reserved(MB)",), required=True),
    _DEVICE,
)


def read_memory_record(path: Path) -> pd.DataFrame:
    return read_table(path, _MEMORY_RECORD, "memory_record")


def read_operator_memory(path: Path) -> pd.DataFrame:
    """Per allocation; an empty Release Time means the tensor outlived the profile (<NA>)."""
    return read_table(path, _OPERATOR_MEMORY, "operator_memory")


def read_npu_module_mem(path: Path) -> pd.DataFrame:
    return read_table(path, _NPU_MODULE_MEM, "npu_module_mem")


@register_table("memory_record", "ascend_text", sources=("memory_record.csv",))
def load_memory_record(rank: RankInfo) -> pd.DataFrame:
    return read_memory_record(rank_file(rank, MEMORY_RECORD_CSV, WRITTEN_WHEN))


@register_table("operator_memory", "ascend_text", sources=("operator_memory.csv",))
def load_operator_memory(rank: RankInfo) -> pd.DataFrame:
    return read_operator_memory(rank_file(rank, OPERATOR_MEMORY_CSV, WRITTEN_WHEN))


@register_table("npu_module_mem", "ascend_text", sources=("npu_module_mem.csv",))
def load_npu_module_mem(rank: RankInfo) -> pd.DataFrame:
    return read_npu_module_mem(rank_file(rank, NPU_MODULE_MEM_CSV, WRITTEN_WHEN))
