"""Whole-profile summaries of one rank: op_statistic.csv, api_statistic.csv, operator_details.csv.

None of them can be split by step: they aggregate everything the profiler collected.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ...model import RankInfo
from ..ascend_common.csvread import Column, rank_file, read_table
from ..tables import register_table

OP_STATISTIC_CSV = "op_statistic.csv"
API_STATISTIC_CSV = "api_statistic.csv"
OPERATOR_DETAILS_CSV = "operator_details.csv"

_OP_STATISTIC = (
    Column("op_type", "text", ("OP Type",), required=True),
    Column("core_type", "text", ("Core Type",)),
    Column("count", "int", ("Count",)),
    Column("total_us", "us", ("Total Time(us)",), required=True),
    Column("min_us", "us", ("Min Time(us)",)),
    Column("avg_us", "us", ("Avg Time(us)",)),
    Column("max_us", "us", ("Max Time(us)",)),
    Column("ratio_pct", "float", ("Ratio(%)",)),
)
_API_STATISTIC = (
    Column("level", "text", ("Level",)),
    Column("api_name", "text", ("API Name",), required=True),
    Column("total_us", "us", ("Time(us)", "Total Time(us)"), required=True),
    Column("count", "int", ("Count",)),
    Column("avg_us", "us", ("Avg(us)", "Avg Time(us)")),
    Column("min_us", "us", ("Min(us)", "Min Time(us)")),
    Column("max_us", "us", ("Max(us)", "Max Time(us)")),
    Column("variance", "float", ("Variance",)),
)
_OPERATOR_DETAILS = (
    Column("name", "text", ("Name",), required=True),
    Column("input_shapes", "text", ("Input Shapes",)),
    Column("call_stack", "text", ("Call Stack",)),
    Column("host_self_us", "us", ("Host Self Duration(us)",)),
    Column("host_total_us", "us", ("Host Total Duration(us)",)),
    Column("device_self_us", "us", ("Device Self Duration(us)",)),
    Column("device_total_us", "us", ("Device Total Duration(us)",)),
)


def read_op_statistic(path: Path) -> pd.DataFrame:
    return read_table(path, _OP_STATISTIC, "op_statistic")


def read_api_statistic(path: Path) -> pd.DataFrame:
    return read_table(path, _API_STATISTIC, "api_statistic")


def read_operator_details(path: Path) -> pd.DataFrame:
    """Per framework operator; Call Stack cells span lines (frames separated by ';' and a newline)."""
    return read_table(path, _OPERATOR_DETAILS, "operator_details")


@register_table("op_statistic", "ascend_text", sources=("op_statistic.csv",))
def load_op_statistic(rank: RankInfo) -> pd.DataFrame:
    path = rank_file(rank, OP_STATISTIC_CSV, "the profiler's activities include ProfilerActivity.NPU")
    return read_op_statistic(path)


@register_table("api_statistic", "ascend_text", sources=("api_statistic.csv",))
def load_api_statistic(rank: RankInfo) -> pd.DataFrame:
    path = rank_file(rank, API_STATISTIC_CSV, "profiler_level is Level1 or Level2")
    return read_api_statistic(path)


@register_table("operator_details", "ascend_text", sources=("operator_details.csv",))
def load_operator_details(rank: RankInfo) -> pd.DataFrame:
    path = rank_file(rank, OPERATOR_DETAILS_CSV, "the profiler's activities include ProfilerActivity.CPU")
    return read_operator_details(path)
