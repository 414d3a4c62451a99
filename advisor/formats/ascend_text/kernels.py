"""Device kernels of one rank ("kernels" table) from `kernel_details.csv`.

The header varies between torch_npu/CANN versions (`Step Id` or `Device_id` or neither, `Block Dim`
or `Block Num`, optional `OP State`/`HF32 Eligible`, old or new PMU columns, msprof op_summary
names such as `Task Start Time(us)`); every column is found by name. A missing `OP State` stays
<NA>: it does not mean "dynamic".
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ...model import RankInfo
from ..ascend_common.csvread import Column, finish_table, rank_file, read_columns
from ..schema import PMU_RATIOS
from ..tables import register_table

KERNEL_DETAILS_CSV = "kernel_details.csv"
WRITTEN_WHEN = "the profiler's activities include ProfilerActivity.NPU"

_COLUMNS = (
    Column("step", "step", ("Step Id",)),
    Column("name", "text", ("Name", "Op Name"), required=True),
    Column("op_type", "text", ("Type", "OP Type")),
    Column("accelerator_core", "text", ("Accelerator Core", "Task Type")),
    Column("op_state", "text", ("OP State",)),
    Column("start_ns", "ts", ("Start Time(us)", "Task Start Time(us)"), required=True),
    Column("duration_us", "us", ("Duration(us)", "Task Duration(us)"), required=True),
    Column("wait_us", "us", ("Wait Time(us)", "Task Wait Time(us)")),
    Column("stream_id", "int", ("Stream ID",)),
    Column("task_id", "int", ("Task ID",)),
    Column("block_dim", "int", ("Block Dim", "Block Num")),
    Column("mix_block_dim", "int", ("Mix Block Dim", "Mix Block Num")),
    Column("input_shapes", "text", ("Input Shapes",)),
    Column("input_dtypes", "text", ("Input Data Types",)),
    Column("input_formats", "text", ("Input Formats",)),
    Column("output_shapes", "text", ("Output Shapes",)),
    Column("output_dtypes", "text", ("Output Data Types",)),
    Column("output_formats", "text", ("Output Formats",)),
    Column("aicore_time_us", "us", ("aicore_time(us)", "aic_total_time(us)")),
    Column("aiv_time_us", "us", ("aiv_time(us)", "aiv_total_time(us)")),
)

# PMU ratios (share of the task's cycles a pipe was busy): `aic_X_ratio` is read from that column,
# else from the unprefixed `X_ratio` of chips whose PMU is not split by core type; the schema has no
# aiv mac or aic vec ratio, so `mac` only ever fills the cube core and `vec` the vector core.
_RATIO_COLUMNS = tuple(Column(ratio, "float", (ratio, ratio[4:])) for ratio in PMU_RATIOS)
# Older PMU sets (ArithmeticUtilization) split the cube and vector busy ratios by instruction type;
# their sum is the pipe's busy ratio: mac = mac_fp16 + mac_int8, vec = vec_fp32 + vec_fp16 + vec_int32
# + vec_misc. The `vec_fp16_*lane_ratio` columns of some chips subdivide vec_fp16 and are not added.
_SUMMED_RATIOS = {
    "aic_mac_ratio": ("mac_fp16_ratio", "mac_int8_ratio"),
    "aiv_vec_ratio": ("vec_fp32_ratio", "vec_fp16_ratio", "vec_int32_ratio", "vec_misc_ratio"),
}
_PART_COLUMNS = tuple(
    Column(f"{target[:3]}_{part}", "float", (f"{target[:3]}_{part}", part))
    for target, parts in _SUMMED_RATIOS.items()
    for part in parts
)


@register_table("kernels", "ascend_text", sources=("kernel_details.csv",))
def load_kernels(rank: RankInfo) -> pd.DataFrame:
    return read_kernel_details(rank_file(rank, KERNEL_DETAILS_CSV, WRITTEN_WHEN))


def read_kernel_details(path: Path) -> pd.DataFrame:
    """The kernels table of one kernel_details.csv (or msprof op_summary CSV)."""
    columns = (*_COLUMNS, *_RATIO_COLUMNS, *_PART_COLUMNS)
    frame = read_columns(path, columns)
    for target, parts in _SUMMED_RATIOS.items():
        present = [f"{target[:3]}_{part}" for part in parts if f"{target[:3]}_{part}" in frame]
        if target not in frame and present:
            frame[target] = frame[present].sum(axis=1, min_count=1)
    return finish_table(frame, path, columns, "kernels")
