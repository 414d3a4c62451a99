"""Property tests: whatever bytes a reader is given, it returns a table or raises InputError."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from advisor.errors import InputError
from advisor.formats.ascend_cluster.cluster_output import read_cluster_communication, read_cluster_step_trace
from advisor.formats.ascend_common.metadata import RankMetadata, read_metadata
from advisor.formats.ascend_text.communication import read_communication, read_communication_matrix
from advisor.formats.ascend_text.kernels import read_kernel_details
from advisor.formats.ascend_text.memory import read_memory_record, read_npu_module_mem, read_operator_memory
from advisor.formats.ascend_text.statistics import (
    read_api_statistic,
    read_op_statistic,
    read_operator_details,
)
from tests.test_profiles_kernels import NEW_HEADER, NEW_ROWS, OLD_HEADER, OLD_ROWS

PROPERTY = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

CSV_READERS: dict[str, tuple[Callable[[Path], pd.DataFrame], str, list[str]]] = {
    "kernels_new": (read_kernel_details, NEW_HEADER, list(NEW_ROWS)),
    "kernels_old": (read_kernel_details, OLD_HEADER, list(OLD_ROWS)),
    "memory_record": (
        read_memory_record,
        "Component,Timestamp(us),Total Allocated(MB),Total Reserved(MB),Total Active(MB),Device Type",
        [
            "APP,1736408883573957.920\t,,2109.6015625,,NPU:0",
            "PTA,1736408883593933.5\t,954.5,1452.0,1,NPU:0",
        ],
    ),
    "operator_memory": (
        read_operator_memory,
        "Name,Size(KB),Allocation Time(us),Release Time(us),Duration(us),Device Type",
        ["aten::add,18816.5,1736408883694624.810\t,1736408883694634.810\t,10.000\t,NPU:0"],
    ),
    "npu_module_mem": (
        read_npu_module_mem,
        "Component,Timestamp(us),Total Reserved(MB),Device",
        ["SLOG,1736408883657086.220\t,0.0,NPU:0"],
    ),
    "op_statistic": (
        read_op_statistic,
        "OP Type,Core Type,Count,Total Time(us),Min Time(us),Avg Time(us),Max Time(us),Ratio(%)",
        ["MatMulV2,AI_CORE,8,921.498,16.54,115.187,346.567,10.385"],
    ),
    "api_statistic": (
        read_api_statistic,
        "Level,API Name,Time(us),Count,Avg(us),Min(us),Max(us),Variance",
        ["acl,aclrtMalloc,30.5,3,10.1,7.6,14.5,9.2"],
    ),
    "operator_details": (
        read_operator_details,
        "Name,Input Shapes,Call Stack,Host Self Duration(us),Host Total Duration(us),"
        "Device Total Duration(us)",
        ['aten::add,"""2,3""","a.py(1): f;\nb.py(2): g",5.5,7.25,0'],
    ),
    "cluster_step_trace": (
        read_cluster_step_trace,
        "Step,Type,Index,Computing,Communication(Not Overlapped),Overlapped,Communication,Free,Stage,Bubble",
        [",rank,0,80309.6,683731.2,5524.5,689255.8,990605.1,1754645.75,0.0", ',stage,"(0, 1)",1,2,3,4,5,6,0'],
    ),
}

NOISE = st.sampled_from(
    ['"', '""', "\t", ",", "\n", "\r\n", "\r", "N/A", "step", "-", "1e999", "\x00", "é", "🙂"]
)


@st.composite
def mangled_csv(draw: st.DrawFn, header: str, rows: list[str]) -> bytes:
    """A CSV with a random subset of columns, then random insertions, garbage rows and truncation."""
    names = header.split(",")
    parsed = [next(csv.reader(io.StringIO(row))) for row in rows]
    keep = draw(st.lists(st.sampled_from(range(len(names))), unique=True, min_size=0, max_size=len(names)))
    lines = [",".join(names[i] for i in sorted(keep))]
    for cells in parsed:
        lines.append(",".join(_quote(cells[i]) for i in sorted(keep)))
    lines += draw(st.lists(st.text(max_size=30), max_size=3))  # garbage rows
    text = draw(st.sampled_from(["\n", "\r\n"])).join(lines)
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.one_of(NOISE, st.text(max_size=5))) + text[at:]
    data = draw(st.sampled_from([b"", b"\xef\xbb\xbf"])) + text.encode("utf-8")
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    if draw(st.booleans()):
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(max_size=4)) + data[at:]
    return data


def _quote(cell: str) -> str:
    return '"' + cell.replace('"', '""') + '"' if any(c in cell for c in ',"\n') else cell


def _returns_table_or_input_error(read: Callable[[Path], object], path: Path) -> None:
    try:
        result = read(path)
    except InputError as error:
        assert "\n" not in str(error) and str(path.name) in str(error)
        return
    assert isinstance(result, (pd.DataFrame, tuple, dict, RankMetadata))


@pytest.mark.parametrize("reader", sorted(CSV_READERS))
def test_mangled_csv(reader: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    read, header, rows = CSV_READERS[reader]
    path = tmp_path_factory.mktemp(reader) / "file.csv"

    @PROPERTY
    @given(data=mangled_csv(header, rows))
    def check(data: bytes) -> None:
        path.write_bytes(data)
        _returns_table_or_input_error(read, path)

    check()


# --- JSON ------------------------------------------------------------------------------------------

KEYS = st.sampled_from([
    "step50", "step", "50", "stepX", "collective", "p2p", "Total Op Info", "hcom_allReduce__1@123", "op",
    "Communication Time Info", "Communication Bandwidth Info", "Start Timestamp(us)", "Elapse Time(ms)",
    "Transit Time(ms)", "Transit Size(MB)", "Bandwidth(GB/s)", "Size Distribution", "HCCS", "SDMA", "0.5",
    "0-1", "1-0", "Transport Type", "Op Name", "(0, 1)", "0", "1", "x", "config", "common_config",
    "experimental_config", "activities", "_export_type", "ENV_VARIABLES", "distributed_args", "world_size",
    "parallel_group_info", "global_ranks", "group_rank", "rank_id", "cann_version",
])  # fmt: skip
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=8),
    st.sampled_from(["1736408883732241.5", "N/A", "1e999", "step", "ProfilerActivity.CPU"]),
)  # fmt: skip
JSON = st.recursive(
    SCALARS,
    lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(KEYS, children, max_size=4)),
    max_leaves=30,
)


def _valid_communication() -> dict:
    link = {"Transit Size(MB)": 1.5, "Transit Time(ms)": 0.5, "Bandwidth(GB/s)": 3.0, "Large Packet Ratio": 0,
            "Size Distribution": {"0.5": [3, 0.25]}}  # fmt: skip
    info = {"Communication Time Info": {"Start Timestamp(us)": 1736408883732241.5, "Elapse Time(ms)": 1.0},
            "Communication Bandwidth Info": {"HCCS": link}}  # fmt: skip
    return {"step50": {"collective": {"hcom_allReduce__1@123": info, "Total Op Info": info}, "p2p": {}}}


JSON_READERS: dict[str, tuple[Callable[[Path], object], str]] = {
    "communication": (read_communication, "communication.json"),
    "matrix": (read_communication_matrix, "communication_matrix.json"),
    "cluster": (read_cluster_communication, "cluster_communication.json"),
    "profiler_info": (lambda path: read_metadata(path.parent), "profiler_info_0.json"),
    "profiler_metadata": (lambda path: read_metadata(path.parent), "profiler_metadata.json"),
}


@st.composite
def mangled_json(draw: st.DrawFn) -> bytes:
    if draw(st.booleans()):
        return json.dumps(draw(JSON)).encode()
    data = json.dumps(_valid_communication()).encode()
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.one_of(st.binary(max_size=3), NOISE.map(str.encode))) + data[at:]
    return data[: draw(st.integers(0, len(data)))] if draw(st.booleans()) else data


@pytest.mark.parametrize("reader", sorted(JSON_READERS))
def test_mangled_json(reader: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    read, name = JSON_READERS[reader]
    path = tmp_path_factory.mktemp(reader) / name
    counter = iter(range(10**9))

    @PROPERTY
    @given(data=mangled_json())
    def check(data: bytes) -> None:
        # A fresh name per example: the communication cache is keyed by path, mtime and size.
        target = path if reader.startswith("profiler") else path.with_name(f"{next(counter)}_{name}")
        target.write_bytes(data)
        _returns_table_or_input_error(read, target)

    check()


def test_valid_communication_document_reads(tmp_path: Path) -> None:
    path = tmp_path / "communication.json"
    path.write_text(json.dumps(_valid_communication()))
    ops, bandwidth, packets = read_communication(path)
    assert (len(ops), len(bandwidth), len(packets)) == (1, 1, 1)
    assert ops.loc[0, "start_ns"] == 1736408883732241500 and packets.loc[0, "packet_bytes"] == 500000.0
