"""The step_trace table: CSV dialects, the trace_view.json fallback, and errors that name the file."""

from __future__ import annotations

import json
import math
from collections import defaultdict

import pandas as pd
import pytest

from advisor.errors import InputError
from advisor.formats import discover, load_table
from advisor.formats.ascend_text.step_trace import SOURCE_CSV, SOURCE_TRACE, step_trace_from_trace_view

from .engine_fixtures import (
    FIXTURE_TRACE,
    STEP_TRACE_HEADER,
    TEXT_CORPUS,
    corpus_path,
    demo,
    expected_by_rank_step,
    rank_dir,
)


def _load(tmp_path, csv):
    folder = rank_dir(tmp_path, "x_ascend_pt", csv=csv)
    return load_table("step_trace", discover(folder).ranks[0])


def test_crlf_with_preparing(tmp_path):
    table = _load(
        tmp_path,
        f"{STEP_TRACE_HEADER}\r\n50,8873.756,101963.203,4028.675,105991.878,25744.05,136581.0,0,1,17902.5\r\n",
    )
    row = table.iloc[0]
    assert int(row.step) == 50
    assert row.computing_us == pytest.approx(8873.756)
    assert row.communication_not_overlapped_us == pytest.approx(101963.203)
    assert row.overlapped_us == pytest.approx(4028.675)
    assert row.free_us == pytest.approx(25744.05)
    assert row.preparing_us == pytest.approx(17902.5)
    assert row.stage_us == pytest.approx(136581.0)
    assert table.attrs["source"] == SOURCE_CSV


def test_bom_trailing_tabs_and_old_header_without_preparing(tmp_path):
    text = (
        "\ufeffStep,Computing,Communication(Not Overlapped),Overlapped,Communication,Free,Stage,Bubble\n"
        "1,100.5\t,20\t, 5 ,25,3.25\t,N/A,0\n"
        "2,200,40,10,50,6,N/A,0\n"
    )
    table = _load(tmp_path, text.encode("utf-8"))
    assert list(table.step) == [1, 2]
    assert list(table.computing_us) == [100.5, 200.0]
    assert table.free_us.iloc[0] == 3.25
    assert math.isnan(table.stage_us.iloc[0])
    assert table.preparing_us.isna().all()  # column absent -> NaN


def test_na_values_and_empty_step(tmp_path):
    text = "Step,Computing,Communication(Not Overlapped),Free\r\n,10,N/A,2\r\n"
    table = _load(tmp_path, text)
    assert table.step.isna().all()  # one unnamed step
    assert math.isnan(table.communication_not_overlapped_us.iloc[0])
    assert table.overlapped_us.isna().all()


def test_missing_column_is_a_clear_error(tmp_path):
    with pytest.raises(InputError) as err:
        _load(tmp_path, "Step,Computing,Overlapped\r\n1,2,3\r\n")
    assert "step_trace_time.csv: missing column(s) communication(not overlapped), free" in str(err.value)


def test_bad_number_names_file_row_and_column(tmp_path):
    with pytest.raises(InputError, match=r"step_trace_time.csv: row 2, column 'free': not a number: 'abc'"):
        _load(tmp_path, "Step,Computing,Communication(Not Overlapped),Free\n1,2,3,abc\n")


def test_header_only_is_an_error(tmp_path):
    with pytest.raises(InputError, match="no data rows"):
        _load(tmp_path, STEP_TRACE_HEADER + "\r\n")


def test_trace_fallback_equals_generator(tmp_path):
    root, spec = demo(tmp_path, ranks=2, steps=(3, 4, 5))
    for csv in root.glob("*/ASCEND_PROFILER_OUTPUT/step_trace_time.csv"):
        csv.unlink()
    expected = expected_by_rank_step(spec)
    profile = discover(root)
    assert profile.steps == [3, 4, 5]  # found by the byte scan of trace_view.json
    for rank in profile.ranks:
        table = load_table("step_trace", rank)
        assert table.attrs["source"] == SOURCE_TRACE
        assert table.attrs["unassigned_us"] == 0.0
        for row in table.itertuples():
            want = expected[(rank.rank, int(row.step))]
            for column in ("computing_us", "communication_not_overlapped_us", "overlapped_us", "free_us"):
                assert getattr(row, column) == pytest.approx(want[column], abs=1e-6), column


def test_trace_fallback_without_step_events_is_one_unnamed_step(tmp_path):
    trace = [
        {"ph": "M", "name": "process_name", "pid": 9, "tid": 0, "args": {"name": "Overlap Analysis"}},
        {"ph": "X", "name": "Computing", "pid": 9, "tid": 0, "ts": "1.000", "dur": 2.5},
        {"ph": "X", "name": "Free", "pid": 9, "tid": 3, "ts": "3.500", "dur": 1.5},
        {"ph": "X", "name": "Computing", "pid": 8, "tid": 0, "ts": "1.000", "dur": 99},  # another process
    ]
    folder = rank_dir(tmp_path, "x_ascend_pt", trace=trace)
    table = load_table("step_trace", discover(folder).ranks[0])
    assert len(table) == 1 and pd.isna(table.step.iloc[0])
    assert table.computing_us.iloc[0] == 2.5 and table.free_us.iloc[0] == 1.5
    assert table.communication_us.iloc[0] == 0.0


def test_truncated_trace_names_the_file(tmp_path):
    folder = rank_dir(tmp_path, "x_ascend_pt", trace='[{"ph": "X", "name": "Computing", "ts": "1.0"')
    with pytest.raises(InputError) as err:
        load_table("step_trace", discover(folder).ranks[0])
    message = str(err.value)
    assert message.startswith(str(folder.resolve() / "ASCEND_PROFILER_OUTPUT" / "trace_view.json"))
    assert "truncated or invalid JSON at byte" in message


def test_trace_without_overlap_process(tmp_path):
    folder = rank_dir(tmp_path, "x_ascend_pt", trace=[{"ph": "X", "name": "aten::mm", "ts": 1, "dur": 1}])
    with pytest.raises(InputError, match="no 'Overlap Analysis' process"):
        load_table("step_trace", discover(folder).ranks[0])


def test_corpus_csv():
    profile = discover(corpus_path(TEXT_CORPUS))
    table = load_table("step_trace", profile.ranks[0])
    assert list(table.step) == [50]
    assert table.computing_us.iloc[0] == pytest.approx(8873.756)
    assert table.preparing_us.iloc[0] == pytest.approx(17902.5)


def test_corpus_trace_fallback_matches_its_csv():
    rank = discover(corpus_path(TEXT_CORPUS)).ranks[1]
    from_csv = load_table("step_trace", rank)
    from_trace = step_trace_from_trace_view(rank.path / "ASCEND_PROFILER_OUTPUT" / "trace_view.json")
    for column in ("computing_us", "communication_not_overlapped_us", "overlapped_us", "free_us"):
        assert from_trace[column].iloc[0] == pytest.approx(from_csv[column].iloc[0], abs=1e-3)


def test_reference_fixture_fallback_sums():
    path = corpus_path(FIXTURE_TRACE)
    events = json.loads(path.read_text())
    overlap_pids = {
        e["pid"] for e in events if e.get("ph") == "M" and e.get("args", {}).get("name") == "Overlap Analysis"
    }
    sums: dict[str, float] = defaultdict(float)
    for e in events:
        if e.get("pid") in overlap_pids and e.get("ph") == "X":
            sums[e["name"]] += float(e["dur"])
    table = step_trace_from_trace_view(path)
    assert list(table.step) == [1]
    assert table.computing_us.iloc[0] == pytest.approx(sums["Computing"])
    assert table.free_us.iloc[0] == pytest.approx(sums["Free"])
    assert table.communication_us.iloc[0] == pytest.approx(sums.get("Communication", 0.0))


def test_unknown_table_name(tmp_path):
    folder = rank_dir(tmp_path, "x_ascend_pt")
    with pytest.raises(ValueError, match="unknown table"):
        load_table("no_such_table", discover(folder).ranks[0])
