"""The trace_view.json reader: every table, exact timestamps, chunk cuts, truncation, bad input."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from advisor.errors import InputError
from advisor.formats import discover, load_table
from advisor.formats.ascend_text import trace_view as trace_view_module
from advisor.formats.ascend_text.trace_view import TABLES, TraceTables, parse_trace, read_trace
from advisor.formats.schema import SCHEMAS

from .engine_fixtures import FIXTURE_TRACE, TEXT_CORPUS, corpus_path, rank_dir

PY, CANN, HW, HCCL, OVERLAP, FREQ, PMU, GC = 100, 200, 300, 400, 500, 600, 700, 800
T0 = 1736408883704643  # µs


def ts(us_offset: int, ns_digits: int = 0) -> str:
    """A trace timestamp string: µs after T0 with 3 decimals."""
    return f"{T0 + us_offset}.{ns_digits:03d}"


def ns(us_offset: int, ns_digits: int = 0) -> int:
    """The same timestamp as exact ns."""
    return (T0 + us_offset) * 1000 + ns_digits


def meta(pid: int, name: str, threads: dict[int, str] | None = None) -> list[dict]:
    events = [{"ph": "M", "name": "process_name", "pid": pid, "tid": 0, "args": {"name": name}}]
    events += [
        {"name": "thread_name", "pid": pid, "tid": tid, "args": {"name": thread}, "ph": "M"}
        for tid, thread in (threads or {}).items()
    ]
    return events


def sample_events() -> list[dict]:
    """One event or more for every table; the Python process is named after its events."""
    return [
        {
            "ph": "X",
            "name": "ProfilerStep#7",
            "pid": PY,
            "tid": 1,
            "ts": ts(0, 212),
            "dur": 900.5,
            "cat": "cpu_op",
        },
        {
            "ph": "X",
            "name": "ProfilerStep#7",
            "pid": PY,
            "tid": 2,
            "ts": ts(1),
            "dur": 5,
            "cat": "user_annotation",
        },
        {
            "ph": "X",
            "name": "ProfilerStep#8",
            "pid": PY,
            "tid": 1,
            "ts": ts(1000),
            "dur": 800,
            "cat": "cpu_op",
        },
        {
            "ph": "X",
            "name": "aten::mm",
            "pid": PY,
            "tid": 1,
            "ts": ts(10, 1),
            "dur": 35.5,
            "cat": "cpu_op",
            "args": {"Call stack": "a.py(1): f;\r\nb.py(2): g", "Input Dims": [[2, 3], [3, 4]]},
        },
        {"ph": "X", "name": "Enqueue", "pid": PY, "tid": 1, "ts": ts(11), "dur": 1.25, "cat": "enqueue"},
        # Nested arrays of objects in args (with "}, {" inside strings): cut candidates that are no cut.
        {
            "ph": "X",
            "name": "f.py(3): h",
            "pid": PY,
            "tid": 1,
            "ts": T0 + 12,  # a number, not a string
            "dur": 2,
            "cat": "python_function",
            "args": {"list": [{"a": 1}, {"b": "}, {"}, {"c": [{"d": {}}, {"e": "x"}]}]},
        },
        {"ph": "X", "name": "GC", "pid": GC, "tid": 3, "ts": ts(20, 5), "dur": 40.0, "cat": "GC"},
        {"ph": "X", "name": "GC", "pid": 999, "tid": 3, "ts": ts(25), "dur": 4.0, "cat": "gc"},  # unnamed pid
        {
            "ph": "s",
            "bp": "e",
            "name": "torch_to_npu",
            "id": 77,
            "pid": PY,
            "tid": 1,
            "ts": ts(10, 1),
            "cat": "async_npu",
        },
        {
            "ph": "X",
            "name": "AscendCL@aclnnMm",
            "pid": CANN,
            "tid": 1,
            "ts": ts(13),
            "dur": 7.5,
            "args": {"id": "x"},
        },
        {
            "name": "HostToDevice9",
            "ph": "s",
            "cat": "HostToDevice",
            "id": "9",
            "pid": CANN,
            "tid": 1,
            "ts": ts(13),
        },
        {
            "name": "MatMul",
            "pid": HW,
            "tid": 2,
            "ts": ts(50, 999),
            "dur": 12.00025,
            "args": {"Task Type": "AI_CORE", "Stream Id": 2, "Task Id": 17},
            "ph": "X",
        },
        {
            "name": "MEMCPY_ASYNC",
            "pid": HW,
            "tid": 5,
            "ts": ts(60),
            "dur": 1,
            "args": {"Task Type": "PCIE_DMA_SQE", "Physic Stream Id": 5, "Task Id": 18},
            "ph": "X",
        },
        {
            "ph": "f",
            "bp": "e",
            "name": "torch_to_npu",
            "id": 77,
            "pid": HW,
            "tid": 2,
            "ts": ts(50, 999),
            "cat": "async_npu",
        },
        {
            "name": "HostToDevice9",
            "ph": "f",
            "id": "9",
            "ts": ts(60),
            "cat": "HostToDevice",
            "pid": HW,
            "tid": 5,
        },
        {
            "ph": "f",
            "name": "orphan",
            "id": 5,
            "pid": HW,
            "tid": 2,
            "ts": ts(61),
            "cat": "async_npu",
        },  # no start
        {
            "ph": "s",
            "name": "fwdbwd",
            "id": 77,
            "pid": PY,
            "tid": 1,
            "ts": ts(62),
            "cat": "fwdbwd",
        },  # not a link
        {
            "name": "hcom_allReduce__586_0_1",
            "pid": HCCL,
            "tid": 0,
            "ts": ts(100),
            "dur": 50.5,
            "args": {"alg_type": "RING"},
            "ph": "X",
        },
        {
            "name": "Memcpy",
            "pid": HCCL,
            "tid": 1,
            "ts": ts(101, 384),
            "dur": 3.36,
            "args": {
                "task type": "Memcpy",
                "src rank": 0,
                "dst rank": 1,
                "transport type": "SDMA",
                "size(Byte)": 2064384,
                "link type": "HCCS",
            },
            "ph": "X",
        },
        {"name": "Computing", "pid": OVERLAP, "tid": 0, "ts": ts(50), "dur": 20.0, "ph": "X"},
        {"name": "Free", "pid": OVERLAP, "tid": 3, "ts": ts(70), "dur": 30.0, "ph": "X"},
        {"name": "Computing", "pid": OVERLAP, "tid": 0, "ts": ts(1100), "dur": 10.0, "ph": "X"},
        {"name": "Other slice", "pid": OVERLAP, "tid": 4, "ts": ts(1200), "dur": 1.0, "ph": "X"},
        {"name": "AI Core Freq", "ts": ts(0, 920), "pid": FREQ, "tid": 0, "args": {"MHz": 1800}, "ph": "C"},
        {
            "name": "AI Core Freq",
            "ts": str(T0 + 500),
            "pid": FREQ,
            "tid": 0,
            "args": {"MHz": 1650},
            "ph": "C",
        },
        {"name": "read_bandwidth", "ts": ts(5), "pid": PMU, "tid": 0, "args": {"value": 3}, "ph": "C"},
        {
            "ph": "X",
            "name": "aten::add",
            "pid": 999,
            "tid": 1,
            "ts": ts(5),
            "dur": 1.0,
            "cat": "cpu_op",
        },  # unnamed
        *meta(CANN, "CANN"),
        *meta(HW, "Ascend Hardware", {2: "Stream 2"}),
        *meta(HCCL, "HCCL", {0: "Group 0 Communication", 1: "Plane 0"}),
        *meta(OVERLAP, "Overlap Analysis", {0: "Computing", 3: "Free"}),
        *meta(FREQ, "AI Core Freq"),
        *meta(PMU, "Acc PMU"),
        *meta(GC, "Python GC"),
        *meta(PY, "Python", {1: "Thread 1"}),
    ]


def write(path: Path, events: list, indent: int | None = None) -> Path:
    path.write_text(json.dumps(events, indent=indent), encoding="utf-8")
    return path


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    return write(tmp_path / "trace_view.json", sample_events())


def assert_same_tables(left: TraceTables, right: TraceTables) -> None:
    assert set(left) == set(right) == set(TABLES)
    for name in TABLES:
        pd.testing.assert_frame_equal(left[name], right[name], obj=name)


def test_every_table_matches_its_schema(sample):
    tables = read_trace(sample)
    assert tables.warnings == []
    for name in TABLES:
        schema = SCHEMAS[name].columns
        assert list(tables[name].columns) == list(schema), name
        assert {c: str(t) for c, t in tables[name].dtypes.items()} == dict(schema), name
        assert tables[name].attrs["source"] == "trace_view.json"


def test_tables_have_exact_values(sample):
    t = read_trace(sample)
    assert t["steps"].to_dict("list") == {
        "step": [7, 8],
        "start_ns": [ns(0, 212), ns(1000)],
        "dur_us": [900.5, 800.0],
    }

    host = t["host_ops"]
    assert host["name"].tolist() == [
        "ProfilerStep#7",
        "ProfilerStep#7",
        "ProfilerStep#8",
        "aten::mm",
        "Enqueue",
        "f.py(3): h",
    ]
    mm = host.iloc[3]
    assert (mm["cat"], mm["start_ns"], mm["dur_us"], mm["tid"]) == ("cpu_op", ns(10, 1), 35.5, 1)
    assert mm["call_stack"] == "a.py(1): f;\nb.py(2): g"  # frames end ";\n", as in the db export
    assert host.iloc[5]["start_ns"] == ns(12) and pd.isna(host.iloc[4]["call_stack"])

    assert t["runtime_api"].to_dict("list") == {
        "name": ["AscendCL@aclnnMm"],
        "start_ns": [ns(13)],
        "dur_us": [7.5],
        "tid": [1],
        "correlation": [None],  # a Kineto link: the Ascend trace records none
    }
    device = t["device_tasks"]
    assert device["task_type"].tolist() == ["AI_CORE", "PCIE_DMA_SQE"]
    assert device["start_ns"].tolist() == [ns(50, 999), ns(60)]
    assert device["stream_id"].tolist() == [2, 5]  # "Physic Stream Id" when there is no "Stream Id"
    assert device["task_id"].tolist() == [17, 18]

    hccl = t["hccl"]
    op, task = hccl.iloc[0], hccl.iloc[1]
    assert (op["name"], op["is_op"], op["group"], op["start_ns"]) == (
        "hcom_allReduce__586_0_1",
        True,
        "0",
        ns(100),
    )
    assert pd.isna(op["plane"]) and pd.isna(op["size_bytes"]) and pd.isna(op["src_rank"])
    assert (task["is_op"], task["group"], task["plane"], task["task_type"]) == (
        False,
        "0",
        "Plane 0",
        "Memcpy",
    )
    assert (task["transport"], task["link_type"], task["size_bytes"]) == ("SDMA", "HCCS", 2064384.0)
    assert (task["src_rank"], task["dst_rank"], task["start_ns"]) == (0, 1, ns(101, 384))

    overlap = t["overlap"]
    assert overlap["kind"].tolist() == ["Computing", "Free", "Computing"]  # sorted; unknown names left out
    assert overlap["start_ns"].tolist() == [ns(50), ns(70), ns(1100)]
    assert t["freq"].to_dict("list") == {"ts_ns": [ns(0, 920), ns(500)], "mhz": [1800.0, 1650.0]}
    assert t["flows"].to_dict("list") == {
        "cat": ["async_npu", "HostToDevice"],
        "host_ns": [ns(10, 1), ns(13)],
        "device_ns": [ns(50, 999), ns(60)],
    }
    assert t["gc"].to_dict("list") == {"start_ns": [ns(20, 5), ns(25)], "dur_us": [40.0, 4.0]}
    assert t.processes[PY] == "Python" and t.processes[PMU] == "Acc PMU"


def test_chunk_cuts_and_pretty_printing_give_the_same_tables(tmp_path, sample):
    whole = read_trace(sample)
    for chunk in (1, 5, 64, 300, 1000):
        assert_same_tables(read_trace(sample, chunk_bytes=chunk), whole)
    for indent in (1, 4):
        pretty = write(tmp_path / f"pretty{indent}.json", sample_events(), indent=indent)
        assert_same_tables(read_trace(pretty, chunk_bytes=7), whole)
        assert_same_tables(read_trace(pretty), whole)


def test_timestamps_as_strings_and_numbers(tmp_path):
    values = [
        "1.5",
        "2",
        " 3.1234 ",
        "4.000",
        5,
        6.25,
        "-7.5",
        "1736408883704643.212",
        "1e3",
        1736408883704643,
    ]
    events = [
        *meta(1, "Ascend Hardware"),
        *({"ph": "X", "name": "k", "pid": 1, "ts": v, "dur": 1} for v in values),
    ]
    starts = read_trace(write(tmp_path / "t.json", events))["device_tasks"]["start_ns"].tolist()
    assert starts == [
        1500,
        2000,
        3123,
        4000,
        5000,
        6250,
        -7500,
        1736408883704643212,
        1_000_000,
        1736408883704643000,
    ]


def test_malformed_events_are_skipped_or_missing(tmp_path):
    good = {"ph": "X", "name": "k", "pid": 1, "tid": 2, "ts": "1.000", "dur": 1.0, "args": {"Task Id": 3}}
    events = [
        *meta(1, "Ascend Hardware"),
        good,
        5,
        "text",
        [1, 2],
        None,
        {"ph": "X", "name": "k", "pid": 1},  # no ts
        {"ph": "X", "pid": 1, "ts": "1.0"},  # no name
        {"ph": "X", "name": "k", "pid": [1], "ts": "1.0"},  # unhashable pid
        {"ph": "X", "name": "k", "pid": 1, "ts": "1.0", "args": ["not", "a", "dict"]},
        {"ph": "X", "name": "k", "pid": 1, "ts": "abc", "dur": 1},  # unreadable ts: row dropped
        {
            "ph": "X",
            "name": 7,
            "pid": 1,
            "ts": "2.5",
            "dur": "abc",
            "args": {"Task Id": "x", "Stream Id": 1.0},
        },
        good,
    ]
    tables = read_trace(write(tmp_path / "t.json", events))
    device = tables["device_tasks"]
    assert device["start_ns"].tolist() == [1000, 2500, 1000]
    assert device["name"].tolist() == ["k", "7", "k"]
    assert pd.isna(device["dur_us"].iloc[1]) and pd.isna(device["task_id"].iloc[1])
    assert device["stream_id"].iloc[1] == 1
    assert tables.warnings == [f"{tmp_path / 't.json'}: skipped 8 malformed events"]


def test_odd_but_valid_field_types_never_fail_a_chunk(tmp_path):
    # Events are decoded into typed Structs chunk by chunk: any JSON type in any field must decode, or
    # a whole chunk of good events would be lost.
    events = [
        *meta(1, "Ascend Hardware"),
        *meta("2", "Python"),  # a string pid
        *meta(3, "HBM"),
        *meta(4, "AI Core Freq"),
        {"ph": "X", "name": "k", "pid": 1, "tid": "7", "ts": 5, "args": {"Stream Id": "3", "Task Id": 4.0}},
        {"ph": "X", "name": 9, "pid": 1, "tid": 7, "ts": "6.000", "dur": "2", "args": None},
        {"ph": "X", "name": "k", "pid": 1, "tid": 8, "ts": 7.5, "dur": None, "args": []},
        {"ph": "X", "name": "op", "pid": "2", "tid": "t", "ts": "8", "cat": 5, "args": {"Call stack": 3}},
        {"ph": "X", "name": "op", "pid": "2", "tid": 1, "ts": "9", "args": {"Call stack": None, "x": [1]}},
        # Other processes' counters: any shape, never read.
        {"ph": "C", "name": ["a"], "pid": 3, "ts": {"x": 1}, "args": [1, {"y": None}], "extra": 1.5e300},
        {"ph": "C", "name": "HBM", "pid": 3, "ts": True, "id": 123456789012345678901234567890},
        {"ph": "C", "name": "AI Core Freq", "pid": 4, "ts": "10", "args": {"MHz": "1800"}},
        {"ph": "s", "name": "f", "pid": "2", "tid": 1, "ts": "8", "cat": "async_npu", "id": 1.5},
        {"ph": "f", "name": "f", "pid": 1, "tid": 7, "ts": 5, "cat": "async_npu", "id": "1.5", "bp": "e"},
        {"ph": 1, "pid": 3},
        {"pid": 3, "unknown": {"nested": [[[]]]}, "args": "text"},
    ]
    for chunk in (8 << 20, 64):
        tables = read_trace(write(tmp_path / "t.json", events), chunk_bytes=chunk)
        assert tables.warnings == []
        device = tables["device_tasks"]
        assert device["name"].tolist() == ["k", "9", "k"]
        assert device["start_ns"].tolist() == [5000, 6000, 7500]
        assert device["stream_id"].tolist() == [3, 7, 8]  # from args, else the tid
        assert device["task_id"].iloc[0] == 4 and pd.isna(device["task_id"].iloc[1])
        assert device["dur_us"].iloc[1] == 2 and device["dur_us"][2:].isna().all()
        host = tables["host_ops"]
        assert host["start_ns"].tolist() == [8000, 9000] and host["call_stack"].isna().all()
        assert tables["freq"]["mhz"].tolist() == [1800.0]
        assert len(tables["flows"]) == 0  # ids 1.5 (a number) and "1.5" are not the same flow


def _serialised(events: list[dict]) -> tuple[bytes, list[int]]:
    """The trace as torch_npu writes it (one line, ", " between events) and each event's end offset."""
    parts, ends, pos = [b"["], [], 1
    for i, event in enumerate(events):
        text = (b", " if i else b"") + json.dumps(event).encode()
        parts.append(text)
        pos += len(text)
        ends.append(pos)
    return b"".join([*parts, b"]"]), ends


def test_truncated_files_keep_every_complete_event(tmp_path):
    events = sample_events()
    data, ends = _serialised(events)
    nested = next(i for i, e in enumerate(events) if "list" in e.get("args", {}))
    # Cut points: right after an event, after its comma, inside its last string or number, and
    # inside the nested args (where "}, {" looks like a boundary).
    cuts = sorted(
        {ends[0] + 7, *(ends[i] + k for i in (0, nested, 20) for k in (-3, -1, 0, 1, 2)), ends[nested] - 40}
    )
    expected: dict[int, TraceTables] = {}
    for cut in cuts:
        path = tmp_path / "cut.json"
        path.write_bytes(data[:cut])
        complete = sum(1 for end in ends if end <= cut)
        if not complete:  # nothing readable: an error, not empty tables
            with pytest.raises(InputError, match=rf"truncated or invalid JSON at byte {cut}$"):
                read_trace(path, chunk_bytes=3)
            continue
        if complete not in expected:
            expected[complete] = read_trace(write(tmp_path / "complete.json", events[:complete]))
        for chunk in (3, 8 << 20):
            tables = read_trace(path, chunk_bytes=chunk)
            assert tables.warnings == [f"{path}: truncated at byte {cut}; read {complete} events"], (
                cut,
                chunk,
            )
            assert_same_tables(tables, expected[complete])


def test_unterminated_array_is_a_warning_only(tmp_path):
    events = sample_events()
    data, _ = _serialised(events)
    for tail in (b"", b",", b", ", b"\n"):
        path = tmp_path / "t.json"
        path.write_bytes(data[:-1] + tail)
        tables = read_trace(path)
        assert tables.warnings == [
            f"{path}: truncated at byte {len(data) - 1 + len(tail)}; read {len(events)} events"
        ]
        assert len(tables["host_ops"]) == 6


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file, expected a JSON array of trace events"),
        (b" \n\t", "empty file, expected a JSON array of trace events"),
        (b'{"traceEvents": []}', "not a JSON array of trace events (byte 0 is b'{', expected '[')"),
        (b"\x00\x01\x02garbage", "not a JSON array of trace events (byte 0 is b'\\x00', expected '[')"),
        (b"\xef\xbb\xbf  x", "not a JSON array of trace events (byte 5 is b'x', expected '[')"),
        (b"[", "truncated or invalid JSON at byte 1"),
        (b'[{"ph": "X", "name": "Computing", "ts": "1.0"', "truncated or invalid JSON at byte 45"),
        (b'[{"a": 1}, {"b": nope}, {"c": 2}]', "invalid JSON at byte 17"),
        (b'[{"a": 1}, {"b": "\xff\xfe"}, {"c": 2}]', "invalid JSON at byte"),
        (b'[{"a": 1}, {"ts": 1e400}, {"c": 2}]', "invalid JSON after byte 0 (Number out of range"),
        (b'[{"a": 1}, {"name": "\\ud800"}, {"c": 2}]', "invalid JSON at byte 21"),  # lone surrogate
    ],
)
def test_unusable_files_are_one_line_input_errors(tmp_path, content, message):
    path = tmp_path / "trace_view.json"
    path.write_bytes(content)
    with pytest.raises(InputError) as err:
        read_trace(path)
    text = str(err.value)
    assert text.startswith(f"{path}: ") and message in text and "\n" not in text


def test_mid_file_corruption_names_its_byte_with_small_chunks(tmp_path):
    data, ends = _serialised(sample_events())
    at = ends[10] + 4  # inside the 12th event
    path = tmp_path / "t.json"
    path.write_bytes(data[:at] + b"\x01" + data[at + 1 :])
    for chunk in (16, 8 << 20):
        with pytest.raises(InputError, match=rf"invalid JSON at byte {at}$"):
            read_trace(path, chunk_bytes=chunk)


def test_parse_trace_is_memoised_per_file_version(tmp_path, sample, monkeypatch):
    calls = []
    original = trace_view_module.read_trace
    monkeypatch.setattr(
        trace_view_module,
        "read_trace",
        lambda path, **options: calls.append(path) or original(path, **options),
    )
    first = parse_trace(sample)
    assert parse_trace(sample) is first and len(calls) == 1
    stat = sample.stat()
    os.utime(sample, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert parse_trace(sample) is not first and len(calls) == 2


def test_loaders_parse_the_file_once_for_all_tables(tmp_path, monkeypatch):
    folder = rank_dir(tmp_path, "x_ascend_pt", trace=sample_events())
    rank = discover(folder).ranks[0]
    calls = []
    original = trace_view_module.read_trace
    monkeypatch.setattr(
        trace_view_module,
        "read_trace",
        lambda path, **options: calls.append(path) or original(path, **options),
    )
    frames = {name: load_table(name, rank) for name in TABLES}
    assert len(calls) == 1
    assert len(frames["host_ops"]) == 6 and list(frames["steps"]["step"]) == [7, 8]
    frames["host_ops"]["name"] = "changed"  # callers get their own frame, not the memo's
    assert parse_trace(calls[0])["host_ops"]["name"].iloc[0] == "ProfilerStep#7"


def test_missing_trace_names_the_rank_folder(tmp_path):
    rank = discover(rank_dir(tmp_path, "x_ascend_pt")).ranks[0]  # step_trace_time.csv only
    with pytest.raises(
        InputError, match=r"x_ascend_pt: no trace_view\.json in ASCEND_PROFILER_OUTPUT \(collect"
    ):
        load_table("host_ops", rank)


def _independent_counts(path: Path) -> dict[str, int]:
    events = json.loads(path.read_text(encoding="utf-8"))
    names = {
        e["pid"]: e["args"]["name"] for e in events if e.get("ph") == "M" and e["name"] == "process_name"
    }
    by_process = Counter((names.get(e.get("pid")), e.get("ph")) for e in events)
    starts = {
        (e["cat"], str(e["id"]))
        for e in events
        if e.get("ph") == "s" and e.get("cat") in ("async_npu", "HostToDevice")
    }
    ends = [
        (e["cat"], str(e["id"]))
        for e in events
        if e.get("ph") == "f" and e.get("cat") in ("async_npu", "HostToDevice")
    ]
    overlap = sum(1 for e in events if names.get(e.get("pid")) == "Overlap Analysis" and e.get("ph") == "X")
    return {
        "host_ops": by_process[("Python", "X")],
        "runtime_api": by_process[("CANN", "X")],
        "device_tasks": by_process[("Ascend Hardware", "X")],
        "hccl": by_process[("HCCL", "X")],
        "overlap": overlap,
        "freq": by_process[("AI Core Freq", "C")],
        "flows": sum(1 for key in ends if key in starts),
        "gc": 0,
    }


@pytest.mark.parametrize("rank", [0, 1])
def test_corpus_counts_and_overlap_sums(rank):
    path = corpus_path(TEXT_CORPUS) / f"rank{rank}_ascend_pt" / "ASCEND_PROFILER_OUTPUT" / "trace_view.json"
    tables = read_trace(path, chunk_bytes=100_000)  # many cuts on real data
    assert tables.warnings == []
    assert {name: len(tables[name]) for name in TABLES if name != "steps"} == _independent_counts(path)
    assert tables["steps"]["step"].tolist() == [50]
    events = json.loads(path.read_text(encoding="utf-8"))
    overlap_pid = next(e["pid"] for e in events if e.get("args", {}).get("name") == "Overlap Analysis")
    sums: Counter[str] = Counter()
    for e in events:
        if e.get("pid") == overlap_pid and e.get("ph") == "X":
            sums[e["name"]] += float(e["dur"])
    got = tables["overlap"].groupby("kind")["dur_us"].sum()
    assert got.to_dict() == pytest.approx(dict(sums))
    hccl = tables["hccl"]
    assert hccl["is_op"].sum() == 4 and (hccl["group"] == "0").all()
    assert set(hccl.loc[~hccl["is_op"], "plane"]) <= {f"Plane {i}" for i in range(8)}
    assert set(tables["flows"]["cat"]) == {"async_npu", "HostToDevice"}


def test_reference_fixture_counts():
    path = corpus_path(FIXTURE_TRACE)
    tables = read_trace(path)
    assert {name: len(tables[name]) for name in TABLES if name != "steps"} == _independent_counts(path)
    assert tables["steps"]["step"].tolist() == [1]
    assert tables["steps"]["start_ns"].tolist() == [1704161511420289011]
    cann = tables["runtime_api"]["name"]
    assert (cann == "AscendCL@aclopCompileAndExecute").sum() == 11
    assert (tables["device_tasks"]["task_type"] == "AI_CPU").sum() == 2


def test_process_names_found_across_scan_blocks(tmp_path):
    # The pre-scan reads 16 KB blocks (at least) with a 4 KB window: put the metadata on every side of
    # those boundaries, after the event it names.
    task = {
        "name": "k",
        "pid": HW,
        "tid": 2,
        "ts": "1.000",
        "dur": 1,
        "args": {"Task Type": "AI_CORE"},
        "ph": "X",
    }
    for pad in (*range(12_200, 12_400, 9), *range(16_290, 16_480, 9)):
        filler = {"ph": "X", "name": "x" * pad, "pid": PY, "ts": "1.000"}
        path = write(tmp_path / "t.json", [filler, task, *meta(HW, "Ascend Hardware")])
        tables = read_trace(path, chunk_bytes=1)
        assert tables.processes == {HW: "Ascend Hardware"} and len(tables["device_tasks"]) == 1, pad
