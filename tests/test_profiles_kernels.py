"""kernel_details.csv -> the "kernels" table: every known header variant and CSV dialect."""

from __future__ import annotations

import csv
import math
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from advisor.errors import InputError
from advisor.formats import discover
from advisor.formats.ascend_common.csvread import header_key
from advisor.formats.ascend_text.kernels import load_kernels, read_kernel_details
from advisor.formats.schema import SCHEMAS
from tests.engine_fixtures import CORPUS, TEXT_CORPUS, corpus_path, rank_dir

FIXTURES = CORPUS / "ascend-reference-fixtures"
OLD_PMU = FIXTURES / "ut" / "advisor" / "advisor_backend" / "compute_advice" / "kernel_details.csv"
NEW_PMU = FIXTURES / "ut" / "advisor" / "compute_advice" / "data" / "kernel_details.csv"
TEST_CSV = FIXTURES / "resource" / "test.csv"

NEW_HEADER = (
    "Step Id,Model ID,Task ID,Stream ID,Name,Type,OP State,Accelerator Core,Start Time(us),Duration(us),"
    "Wait Time(us),Block Dim,Mix Block Dim,HF32 Eligible,Input Shapes,Input Data Types,Input Formats,"
    "Output Shapes,Output Data Types,Output Formats,Context ID,aicore_time(us),aic_total_cycles,"
    "aic_mac_time(us),aic_mac_ratio,aic_scalar_time(us),aic_scalar_ratio,aic_mte1_time(us),aic_mte1_ratio,"
    "aic_mte2_time(us),aic_mte2_ratio,aic_fixpipe_time(us),aic_fixpipe_ratio,aic_icache_miss_rate,"
    "aiv_time(us),aiv_total_cycles,aiv_vec_time(us),aiv_vec_ratio,aiv_scalar_time(us),aiv_scalar_ratio,"
    "aiv_mte2_time(us),aiv_mte2_ratio,aiv_mte3_time(us),aiv_mte3_ratio,aiv_icache_miss_rate,"
    "cube_utilization(%)"
)
NEW_ROWS = (
    '50,4294967295,11051,2,trans_TransData_0,TransData,dynamic,AI_VECTOR_CORE,"1736408883704643.212\t",'
    '53.741,0,32,0,NO,"""32,3,224,224""",FLOAT,NCHW,"""32,1,224,224,8""",FLOAT,NC1HWC0,N/A,0.0,0,0.0,0.1,'
    "0.0,0.2,0.0,0.3,0.0,0.4,0.0,0.5,0.0,50.522,2910056,9.406,0.186,4.32,0.086,27.875,0.552,33.687,0.667,"
    "0.023,0",
    "50,4294967295,N/A,N/A,hcom_allReduce__586_0_1,hcom_allReduce_,static,HCCL,1736408883732241.5\t,"
    "79089.52,2.5,0,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,"
    "N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A",
)
OLD_HEADER = (
    "Step Id,Model ID,Task ID,Stream ID,Name,Type,Accelerator Core,Start Time(us),Duration(us),Wait Time(us),"
    "Block Dim,Mix Block Dim,Input Shapes,Input Data Types,Input Formats,Output Shapes,Output Data Types,"
    "Output Formats,Context ID,aicore_time(us),aic_total_cycles,aic_mac_fp16_ratio,aic_mac_int8_ratio,"
    "aic_cube_fops,aic_vector_fops,aiv_time(us),aiv_total_cycles,aiv_vec_fp32_ratio,aiv_vec_fp16_ratio,"
    "aiv_vec_int32_ratio,aiv_vec_misc_ratio,aiv_cube_fops,aiv_vector_fops"
)
OLD_ROWS = (
    '1,4294967295,1259,16,MatMul1,MatMulV2,AI_CORE,1699529622790614.8,607.98,0,48,0,"""16,16;16,16""",'
    'FLOAT16,FORMAT_ND,"""16,16""",FLOAT16,FORMAT_ND,N/A,600,52130051,0.25,0.125,1,2,0,0,0,0,0,0,0,0',
    '1,4294967295,1260,16,Add1,Add,AI_VECTOR_CORE,1699529622791614.8,10,1,8,0,"""4""",FLOAT,FORMAT_ND,'
    '"""4""",FLOAT,FORMAT_ND,N/A,0,0,0,0,0,0,9.5,100,0.5,0.25,N/A,0.125,0,7',
)


def write(folder: Path, text: str, *, crlf: bool = False, bom: bool = False, name: str = "k.csv") -> Path:
    data = text.replace("\n", "\r\n") if crlf else text
    path = folder / name
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data.encode("utf-8"))
    return path


def csv_text(header: str, *rows: str) -> str:
    return "\n".join((header, *rows)) + "\n"


def test_new_pmu_set_with_tabs_quotes_crlf_bom(tmp_path: Path) -> None:
    frame = read_kernel_details(write(tmp_path, csv_text(NEW_HEADER, *NEW_ROWS), crlf=True, bom=True))
    assert list(frame.columns) == list(SCHEMAS["kernels"].columns)
    assert frame.dtypes.astype(str).to_dict() == dict(SCHEMAS["kernels"].columns)
    first, hccl = frame.iloc[0], frame.iloc[1]
    assert first["step"] == 50 and first["name"] == "trans_TransData_0" and first["op_type"] == "TransData"
    assert first["op_state"] == "dynamic" and first["accelerator_core"] == "AI_VECTOR_CORE"
    assert first["start_ns"] == 1736408883704643212  # exact, from '"1736408883704643.212\t"'
    assert first["duration_us"] == 53.741 and first["wait_us"] == 0.0
    ids = ["stream_id", "task_id", "block_dim", "mix_block_dim"]
    assert first[ids].tolist() == [2, 11051, 32, 0]
    assert first["input_shapes"] == "32,3,224,224" and first["output_shapes"] == "32,1,224,224,8"
    formats = ["input_dtypes", "input_formats", "output_formats"]
    assert first[formats].tolist() == ["FLOAT", "NCHW", "NC1HWC0"]
    assert first["aiv_time_us"] == 50.522 and first["aicore_time_us"] == 0.0
    expected = {"aic_mac_ratio": 0.1, "aic_scalar_ratio": 0.2, "aic_mte1_ratio": 0.3, "aic_mte2_ratio": 0.4,
                "aic_fixpipe_ratio": 0.5, "aiv_vec_ratio": 0.186, "aiv_scalar_ratio": 0.086,
                "aiv_mte2_ratio": 0.552, "aiv_mte3_ratio": 0.667}  # fmt: skip
    assert {k: first[k] for k in expected} == expected
    assert hccl["start_ns"] == 1736408883732241500 and hccl["op_state"] == "static"
    assert pd.isna(hccl["task_id"]) and pd.isna(hccl["stream_id"]) and pd.isna(hccl["input_shapes"])
    assert math.isnan(hccl["aic_mac_ratio"]) and hccl["block_dim"] == 0 and pd.isna(hccl["mix_block_dim"])


def test_old_pmu_set_sums_split_ratios_and_has_no_op_state(tmp_path: Path) -> None:
    frame = read_kernel_details(write(tmp_path, csv_text(OLD_HEADER, *OLD_ROWS)))
    matmul, add = frame.iloc[0], frame.iloc[1]
    assert matmul["start_ns"] == 1699529622790614800  # no trailing TAB: same unit as with one
    assert matmul["aic_mac_ratio"] == 0.375  # mac_fp16 0.25 + mac_int8 0.125
    assert add["aiv_vec_ratio"] == 0.875  # vec_fp32 0.5 + vec_fp16 0.25 + int32 N/A + misc 0.125
    assert frame["op_state"].isna().all()  # absent column: unknown, not "dynamic"
    assert frame["aic_scalar_ratio"].isna().all() and frame["aiv_mte2_ratio"].isna().all()
    assert matmul["aicore_time_us"] == 600.0 and add["aiv_time_us"] == 9.5


def test_device_id_block_num_and_op_summary_names(tmp_path: Path) -> None:
    header = (
        "Device_id,Model ID,Task ID,Stream ID,Op Name,OP Type,Task Type,Task Start Time(us),"
        "Task Duration(us),Task Wait Time(us),Block Num,Mix Block Num,Input Shapes"
    )
    row = '0,1,7,3,Conv2D1,Conv2D,AI_CORE,"1736408883704903.918\t",313.886,96.222,16,2,"""1,2;3"""'
    frame = read_kernel_details(write(tmp_path, csv_text(header, row)))
    kernel = frame.iloc[0]
    assert pd.isna(kernel["step"]) and pd.isna(kernel["op_state"])
    assert (kernel["name"], kernel["op_type"], kernel["accelerator_core"]) == ("Conv2D1", "Conv2D", "AI_CORE")
    assert kernel["start_ns"] == 1736408883704903918 and kernel["wait_us"] == 96.222
    assert (kernel["block_dim"], kernel["mix_block_dim"], kernel["input_shapes"]) == (16, 2, "1,2;3")


def test_unsplit_pmu_names_fill_the_core_they_belong_to(tmp_path: Path) -> None:
    header = "Name,Start Time(us),Duration(us),mac_ratio,vec_ratio,scalar_ratio,mte2_ratio,mte3_ratio"
    frame = read_kernel_details(write(tmp_path, csv_text(header, "k,1.0,2.0,0.1,0.2,0.3,0.4,0.5")))
    kernel = frame.iloc[0]
    assert (kernel["aic_mac_ratio"], kernel["aiv_vec_ratio"]) == (0.1, 0.2)
    assert (kernel["aic_scalar_ratio"], kernel["aiv_scalar_ratio"]) == (0.3, 0.3)
    assert (kernel["aic_mte2_ratio"], kernel["aiv_mte2_ratio"], kernel["aiv_mte3_ratio"]) == (0.4, 0.4, 0.5)
    assert math.isnan(kernel["aic_mte1_ratio"]) and math.isnan(kernel["aic_fixpipe_ratio"])


def test_header_units_decide_the_scale(tmp_path: Path) -> None:
    header = "Name,Start Time(ns),Duration(ns),Wait Time(ms)"
    frame = read_kernel_details(write(tmp_path, csv_text(header, "k,1736408883704643212,1500,0.25")))
    assert frame.loc[0, "start_ns"] == 1736408883704643212
    assert frame.loc[0, "duration_us"] == 1.5 and frame.loc[0, "wait_us"] == 250.0


@pytest.mark.parametrize(
    ("header", "key"),
    [
        ("Start Time(us)", ("start_time", "us")),
        ("aicore_time(us)", ("aicore_time", "us")),
        ("cube_utilization(%)", ("cube_utilization", "%")),
        ("Communication(Not Overlapped)", ("communication_not_overlapped", "")),
        ("Size(KB)", ("size", "kb")),
        ("\ufeff Step Id ", ("step_id", "")),
        ("Device_id", ("device_id", "")),
        ("Bandwidth(GB/s)", ("bandwidth", "gb/s")),
        ("Time (μs)", ("time", "us")),
    ],
)
def test_header_key(header: str, key: tuple[str, str]) -> None:
    assert header_key(header) == key


def test_unit_that_does_not_fit_the_column(tmp_path: Path) -> None:
    path = write(tmp_path, csv_text("Name,Start Time(us),Duration(%)", "k,1,2"))
    with pytest.raises(InputError, match=r"column 'Duration\(%\)': unit '%' is not a us unit"):
        read_kernel_details(path)


@pytest.mark.parametrize(
    ("cell", "ns"),
    [
        ("1702866902796675", 1702866902796675000),
        ("1736408883704643.2", 1736408883704643200),
        ('"1736408883704643.212\t"', 1736408883704643212),
        ("1736408883704643.2129", 1736408883704643212),  # below 1 ns: cut off
        ("1.736408883704643e15", 1736408883704643000),  # exponent: exact slow path
        ("N/A", None),
        ("", None),
    ],
)
def test_start_time_is_exact_integer_ns(tmp_path: Path, cell: str, ns: int | None) -> None:
    frame = read_kernel_details(write(tmp_path, csv_text("Name,Start Time(us),Duration(us)", f"k,{cell},1")))
    value = frame.loc[0, "start_ns"]
    assert pd.isna(value) if ns is None else value == ns


def test_header_only_and_empty_file_give_empty_tables(tmp_path: Path) -> None:
    for text in (csv_text(NEW_HEADER), ""):
        frame = read_kernel_details(write(tmp_path, text))
        assert len(frame) == 0 and list(frame.columns) == list(SCHEMAS["kernels"].columns)


def test_missing_required_column_names_file_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, csv_text("Name,Type,Start Time(us)", "k,Add,1.0"))
    with pytest.raises(InputError, match=r"k\.csv: no 'Duration\(us\)' column \(found: Name, Type"):
        read_kernel_details(path)


def test_unreadable_cell_names_row_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, csv_text("Name,Start Time(us),Duration(us)", "a,1.0,2.0", "b,2.0,fast"))
    with pytest.raises(InputError, match=r"k\.csv: row 3, column 'Duration\(us\)': not a number: 'fast'"):
        read_kernel_details(path)
    path = write(tmp_path, csv_text("Name,Start Time(us),Duration(us),Block Dim", "a,1.0,2.0,1.5"))
    with pytest.raises(InputError, match=r"row 2, column 'Block Dim': not an integer: '1.5'"):
        read_kernel_details(path)


def test_row_with_extra_cells_is_malformed(tmp_path: Path) -> None:
    path = write(tmp_path, csv_text("Name,Start Time(us),Duration(us)", "a,1.0,2.0", "b,2.0,3.0,oops"))
    with pytest.raises(InputError, match=r"k\.csv: line 3: 4 cells, the header has 3"):
        read_kernel_details(path)


def test_tolerant_dialect_short_rows_and_trailing_commas(tmp_path: Path) -> None:
    text = csv_text("Name,Start Time(us),Duration(us),Block Dim", "a,1.0,2.0,4,,", "", "b,2.0,3.0")
    frame = read_kernel_details(write(tmp_path, text))
    assert frame["name"].tolist() == ["a", "b"] and frame["duration_us"].tolist() == [2.0, 3.0]
    assert frame.loc[0, "block_dim"] == 4 and pd.isna(frame.loc[1, "block_dim"])


def test_not_utf8_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "k.csv"
    path.write_bytes(b"Name,Start Time(us),Duration(us)\n\xff\xfe,1,2\n")
    with pytest.raises(InputError, match=r"k\.csv: not UTF-8 text"):
        read_kernel_details(path)


def test_missing_file_says_how_to_collect(tmp_path: Path) -> None:
    rank = discover(rank_dir(tmp_path, "r0_ascend_pt")).ranks[0]
    with pytest.raises(InputError, match=r"r0_ascend_pt: no kernel_details\.csv .*ProfilerActivity\.NPU"):
        load_kernels(rank)


# --- Real files ------------------------------------------------------------------------------------


def _raw_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def _exact_ns(text: str) -> int:
    return int(Decimal(text.strip().strip('"').strip()) * 1000)


@pytest.mark.parametrize("path", [OLD_PMU, NEW_PMU, TEST_CSV], ids=["old_pmu", "new_pmu", "test_csv"])
def test_reference_fixtures_match_the_raw_cells(path: Path) -> None:
    rows = _raw_rows(corpus_path(path))
    frame = read_kernel_details(path)
    assert len(frame) == len(rows)
    assert frame["duration_us"].sum() == pytest.approx(sum(float(r["Duration(us)"]) for r in rows))
    assert frame["start_ns"].tolist() == [_exact_ns(r["Start Time(us)"]) for r in rows]
    assert frame["name"].tolist() == [r["Name"].strip() for r in rows]


def test_old_pmu_fixture() -> None:
    rows = _raw_rows(corpus_path(OLD_PMU))
    frame = read_kernel_details(OLD_PMU)
    assert len(frame) == 591 and frame["op_state"].isna().all() and set(frame["step"]) == {1}
    assert (frame["accelerator_core"] == "HCCL").sum() == 19
    assert frame["duration_us"].sum() == pytest.approx(396_807, abs=1)

    def mac(row: dict[str, str]) -> float:
        parts = [row["aic_mac_fp16_ratio"], row["aic_mac_int8_ratio"]]
        return math.nan if all(p == "N/A" for p in parts) else sum(float(p) for p in parts if p != "N/A")

    assert frame["aic_mac_ratio"].tolist() == pytest.approx([mac(r) for r in rows], nan_ok=True)


def test_new_pmu_fixture() -> None:
    frame = read_kernel_details(corpus_path(NEW_PMU))
    assert len(frame) == 29 and set(frame["op_state"]) == {"dynamic"}
    assert frame.loc[0, "start_ns"] == 1736413971558972912
    assert frame.loc[0, "input_shapes"] == "81920,4096;8192,512" and frame.loc[0, "aic_mac_ratio"] == 0.824


@pytest.mark.parametrize("rank", [0, 1])
def test_corpus_ranks_through_the_loader(rank: int) -> None:
    profile = discover(corpus_path(TEXT_CORPUS))
    info = next(r for r in profile.ranks if r.rank == rank)
    frame = load_kernels(info)
    rows = _raw_rows(info.path / "ASCEND_PROFILER_OUTPUT" / "kernel_details.csv")
    assert len(frame) == len(rows) and frame.attrs["source"] == "kernel_details.csv"
    assert frame["duration_us"].sum() == pytest.approx(sum(float(r["Duration(us)"]) for r in rows))
    assert frame["start_ns"].tolist() == [_exact_ns(r["Start Time(us)"]) for r in rows]
    assert set(frame["step"]) == {50} and set(frame["op_state"].dropna()) == {"dynamic"}
    assert frame["op_state"].isna().tolist() == [r["OP State"] == "N/A" for r in rows]
    assert frame["aiv_vec_ratio"].sum() == pytest.approx(
        sum(float(r["aiv_vec_ratio"]) for r in rows if r["aiv_vec_ratio"] != "N/A")
    )
