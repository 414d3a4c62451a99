"""Oversized events in trace_view.json: skipped with a warning naming the file and byte offset, in bounded
memory, every other event still read; the C scanner and the Python path alike."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from advisor.errors import InputError
from advisor.formats.ascend_common import discover as discover_module
from advisor.formats.ascend_common import trace_json
from advisor.formats.ascend_common.csvread import read_json
from advisor.formats.ascend_common.folder import MAX_METADATA_BYTES, read_small_json
from advisor.formats.ascend_common.metadata import read_metadata
from advisor.formats.ascend_common.trace_json import MAX_EVENT_BYTES
from advisor.formats.ascend_text.trace_view import read_trace
from advisor.synth import SynthSpec, write_synth_profile

from .test_profiles_trace import PY, assert_same_tables, meta, sample_events, ts, write

LIMIT = 4096  # the in-process tests' limit: the skip then spans many small chunks
HUGE_STRING_BYTES = 200 << 20  # the case of issue 16


def serialised(events: list[dict], huge: bytes | None = None, at: int = 0) -> tuple[bytes, int]:
    """The trace as torch_npu writes it (", " between events) with `huge` (the bytes of one element)
    inserted before event `at`, and the byte offset where it starts (-1 without it)."""
    parts = [json.dumps(event).encode() for event in events]
    if huge is None:
        return b"[" + b", ".join(parts) + b"]", -1
    head = b"[" + b"".join(part + b", " for part in parts[:at])
    return head + b", ".join([huge, *parts[at:]]) + b"]", len(head)


def huge_host_op(stack: bytes) -> bytes:
    """A host op whose call stack is `stack` (JSON string content, escapes included)."""
    head = {"ph": "X", "name": "aten::huge", "pid": PY, "tid": 1, "ts": ts(50), "dur": 1, "cat": "cpu_op"}
    return json.dumps(head).encode()[:-1] + b', "args": {"Call stack": "' + stack + b'"}}'


# Escapes cut by chunk ends, quotes and braces inside strings, nested objects and arrays, a string
# that ends in an escaped backslash: none of it may end the element early.
TRICKY = (
    b'{"ph": "X", "pid": 100, "args": {"a": [{"b": "\\"}, {\\\\"}, [1, {"c": []}]], '
    + b'"s": "'
    + b'x\\"}],\\\\\\n' * 700
    + b'\\\\", "t": {"u": [[], {}]}}}'
)


@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize("at", [0, 7, len(sample_events())])  # first, in the middle, last
def test_an_oversized_event_is_skipped_and_the_rest_read(tmp_path, compiled, at):
    events = sample_events()
    expected = read_trace(write(tmp_path / "without.json", events), compiled=compiled)
    data, start = serialised(events, huge_host_op(b"frame\\n" * 2000), at)
    path = tmp_path / "trace_view.json"
    path.write_bytes(data)
    for chunk in (64, 1000, 8 << 20):
        tables = read_trace(path, chunk_bytes=chunk, compiled=compiled, max_event_bytes=LIMIT)
        size = len(huge_host_op(b"frame\\n" * 2000))
        assert tables.warnings == [
            f"{path}: skipped 1 event over the {LIMIT} bytes limit, at byte {start} ({size} bytes)"
        ], chunk
        assert_same_tables(tables, expected)
        assert tables.skipped_share == pytest.approx(1 / (len(events) + 1))
    # Under the limit the same event is read (it is no special case of the reader).
    tables = read_trace(path, chunk_bytes=64, compiled=compiled, max_event_bytes=size)
    assert tables.warnings == []
    assert "aten::huge" in set(tables["host_ops"]["name"])


@pytest.mark.parametrize("compiled", [True, False])
def test_strings_escapes_and_nesting_never_end_a_skipped_event_early(tmp_path, compiled):
    events = sample_events()
    assert json.loads(TRICKY)  # valid JSON: the reader must find its real end
    expected = read_trace(write(tmp_path / "without.json", events), compiled=compiled)
    data, start = serialised(events, TRICKY, 5)
    path = tmp_path / "trace_view.json"
    path.write_bytes(data)
    for chunk in range(1000, 1013):  # every phase of the 12-byte repeat against the chunk ends
        tables = read_trace(path, chunk_bytes=chunk, compiled=compiled, max_event_bytes=LIMIT)
        assert tables.warnings == [
            f"{path}: skipped 1 event over the {LIMIT} bytes limit, at byte {start} ({len(TRICKY)} bytes)"
        ], chunk
        assert_same_tables(tables, expected)


def test_several_oversized_events_are_counted_in_one_warning(tmp_path):
    events = sample_events()
    huge = huge_host_op(b"y" * 5000)
    data = b"[" + b", ".join([huge] * 7 + [json.dumps(e).encode() for e in events]) + b"]"
    path = tmp_path / "trace_view.json"
    path.write_bytes(data)
    tables = read_trace(path, chunk_bytes=1000, max_event_bytes=LIMIT)
    starts = [1 + i * (len(huge) + 2) for i in range(5)]
    where = ", ".join(f"byte {s} ({len(huge)} bytes)" for s in starts)
    assert tables.warnings == [
        f"{path}: skipped 7 events over the {LIMIT} bytes limit, at {where} and 2 more"
    ]
    assert_same_tables(tables, read_trace(write(tmp_path / "without.json", events)))


def test_a_file_that_ends_inside_an_oversized_event_is_truncated(tmp_path):
    events = sample_events()
    data, start = serialised(events[:9], huge_host_op(b"z" * 9000), 9)
    path = tmp_path / "trace_view.json"
    path.write_bytes(data[: start + 6000])
    tables = read_trace(path, chunk_bytes=1000, max_event_bytes=LIMIT)
    assert tables.warnings == [f"{path}: truncated at byte {start + 6000}; read 9 events"]
    assert_same_tables(tables, read_trace(write(tmp_path / "nine.json", events[:9])))
    path.write_bytes(b"[" + data[start : start + 6000])  # the oversized event only
    with pytest.raises(InputError, match=r"truncated or invalid JSON at byte 6001$"):
        read_trace(path, chunk_bytes=1000, max_event_bytes=LIMIT)


def test_elements_that_are_not_objects_are_still_read_past_the_limit(tmp_path):
    events = sample_events()
    numbers = b", ".join(b"%d" % i for i in range(3000))  # no '},{' boundary in over 4 KB
    data = b"[" + json.dumps(events[0]).encode() + b", " + numbers + b", "
    data += b", ".join(json.dumps(e).encode() for e in events[1:]) + b"]"
    path = tmp_path / "trace_view.json"
    path.write_bytes(data)
    small = read_trace(path, chunk_bytes=1000, max_event_bytes=LIMIT)
    assert_same_tables(small, read_trace(path))
    assert small.warnings == read_trace(path).warnings == [f"{path}: skipped 3000 malformed events"]


@pytest.mark.parametrize(
    ("after", "error"),
    [(b"]" + b" " * 9000, None), (b"]" + b" " * 9000 + b"x", 9002), (b"}" + b" " * 9000, 1)],
)
def test_what_follows_the_array_past_the_limit(tmp_path, after, error):
    head = b", ".join(json.dumps(event).encode() for event in [sample_events()[0], *meta(PY, "Python")])
    path = tmp_path / "trace_view.json"
    path.write_bytes(b"[" + head + after)
    if error is None:
        tables = read_trace(path, chunk_bytes=1000, max_event_bytes=LIMIT)
        assert tables.warnings == [] and len(tables["steps"]) == 1
        return
    with pytest.raises(InputError, match=rf"{path}: invalid JSON at byte {len(head) + error}$"):
        read_trace(path, chunk_bytes=1000, max_event_bytes=LIMIT)


# --- The case of issue 16: one 200 MB string, the default limit, a real analysis ----------------------


def _peak_rss_kib(profile: Path, output: Path) -> tuple[int, subprocess.CompletedProcess]:
    """The analysis of `profile` in a subprocess (tables not cached): its peak RSS and its result.
    A wrapper process runs it, so that RUSAGE_CHILDREN counts that analysis alone."""
    analysis = [sys.executable, "-m", "advisor", "analyze", str(profile), "--output", str(output)]
    wrapper = (
        "import resource, subprocess, sys\n"
        "done = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "sys.stderr.write(done.stderr)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, done.returncode)\n"
        "print(done.stdout, end='')\n"
    )
    env = {**os.environ, "PERFORMANCE_ADVISOR_CACHE": "off"}
    args = [sys.executable, "-c", wrapper, *analysis, "--format", "json", "--quiet"]
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300, check=True)
    first, _, stdout = done.stdout.partition("\n")
    rss, returncode = map(int, first.split())
    return rss, subprocess.CompletedProcess(analysis, returncode, stdout, done.stderr)


def _comparable(report_path: str) -> dict:
    report = json.loads(Path(report_path).read_text(encoding="utf-8"))
    return {key: report[key] for key in ("summary", "findings", "not_evaluated")}


@pytest.mark.parametrize(
    ("position", "step_trace_csv"),
    [("middle", True), ("last", True), ("middle", False)],  # without the CSV, steps come from the trace
)
def test_a_200_mb_string_costs_bounded_memory_and_a_warning(tmp_path, position, step_trace_csv):
    assert HUGE_STRING_BYTES > 2 * MAX_EVENT_BYTES
    normal = write_synth_profile(tmp_path / "normal", SynthSpec(ranks=1))
    if not step_trace_csv:
        next(normal.rglob("step_trace_time.csv")).unlink()
    trace = next(normal.rglob("trace_view.json"))
    events = json.loads(trace.read_bytes())
    trace.write_bytes(serialised(events)[0])  # serialised as the copy with the huge string is
    host = next(e for e in events if e.get("ph") == "X" and e["name"].startswith("aten::"))
    at = len(events) // 2 if position == "middle" else len(events)
    head = {key: host[key] for key in ("ph", "pid", "tid", "ts", "dur", "cat")}
    huge = json.dumps({**head, "name": "aten::huge"}).encode()[:-1]
    huge += b', "args": {"Call stack": "' + b"f" * HUGE_STRING_BYTES + b'"}}'
    big = tmp_path / "big"
    for file in normal.rglob("*"):
        if file.is_file():
            copy = big / file.relative_to(normal)
            copy.parent.mkdir(parents=True, exist_ok=True)
            copy.write_bytes(file.read_bytes() if file != trace else b"")
    big_trace = big / trace.relative_to(normal)
    data, start = serialised(events, huge, at)
    big_trace.write_bytes(data)
    del data

    normal_rss, normal_run = _peak_rss_kib(normal, tmp_path / "out-normal")
    big_rss, big_run = _peak_rss_kib(big, tmp_path / "out-big")
    assert normal_run.returncode == big_run.returncode == 0, big_run.stderr
    size = f"{len(huge) / (1 << 20):.4g} MiB"
    warning = f"{big_trace}: skipped 1 event over the 16 MiB limit, at byte {start} ({size})"
    assert f"warning: {warning}" in big_run.stderr.splitlines(), big_run.stderr
    big_report = json.loads(Path(big_run.stdout.split()[0]).read_text(encoding="utf-8"))
    normal_report = json.loads(Path(normal_run.stdout.split()[0]).read_text(encoding="utf-8"))
    assert warning in big_report["warnings"]
    for key in ("summary", "findings", "not_evaluated"):
        assert big_report[key] == normal_report[key], key
    assert big_rss <= 2 * normal_rss, f"peak RSS {big_rss} KiB, {normal_rss} KiB without the string"


# --- JSON files read whole: a size cap instead of an unbounded read ------------------------------------


def _padded(value: object, size: int) -> bytes:
    """Valid JSON of `value` padded with whitespace to `size` bytes."""
    text = json.dumps(value).encode()
    return text + b" " * (size - len(text))


def test_metadata_over_its_cap_is_a_one_line_input_error(tmp_path):
    folder = tmp_path / "r_ascend_pt"
    folder.mkdir()
    (folder / "profiler_info_3.json").write_bytes(_padded({"rank_id": 3}, MAX_METADATA_BYTES + 1))
    with pytest.raises(InputError) as err:
        read_metadata(folder)
    assert str(err.value) == f"{folder / 'profiler_info_3.json'}: too large to read whole (over 16 MiB)"
    (folder / "profiler_info_3.json").write_bytes(_padded({"rank_id": 3}, MAX_METADATA_BYTES))
    assert read_metadata(folder).rank_id == 3


def test_optional_metadata_over_its_cap_tells_nothing(tmp_path):
    path = tmp_path / "info.json.0"
    info = {"DeviceInfo": [{"ai_core_num": 20, "aiv_num": 40, "aic_frequency": 1800}]}
    path.write_bytes(_padded(info, MAX_METADATA_BYTES))
    assert read_small_json(path) == info
    path.write_bytes(_padded(info, MAX_METADATA_BYTES + 1))
    assert read_small_json(path) is None
    path.write_bytes(json.dumps(info).encode().replace(b"DeviceInfo", b"DeviceInfo\xff"))
    assert read_small_json(path) == {"DeviceInfo\ufffd": info["DeviceInfo"]}  # replaced, as before


def test_communication_json_over_the_cap_is_a_one_line_input_error(tmp_path):
    path = tmp_path / "communication.json"
    path.write_bytes(_padded({}, 4097))
    with pytest.raises(InputError) as err:
        read_json(path, max_bytes=4096)
    assert str(err.value) == f"{path}: too large to read whole (over 4096 bytes)"
    assert read_json(path, max_bytes=4097) == {}


# --- Byte scans over the memory map ---------------------------------------------------------------------


def test_byte_scans_find_what_straddles_their_windows(tmp_path, monkeypatch):
    # Steps (discovery without step_trace_time.csv) and process names are found by searching the
    # memory map window by window; put them across every window end.
    monkeypatch.setattr(trace_json, "_SCAN_WINDOW", 16384)
    path = tmp_path / "trace_view.json"
    for pad in range(16384 - 40, 16384 + 8, 3):
        filler = {"ph": "X", "name": "x" * pad, "pid": 1, "ts": "1.000"}
        step = {"name": "ProfilerStep#7", "ph": "X", "pid": PY, "ts": "2.000"}
        later = [{"name": "y" * 40000}, step | {"name": "ProfilerStep#9"}]  # two windows on
        write(path, [filler, step, *meta(PY, "Python"), *later])
        assert discover_module._steps_from_trace(path) == [7, 9], pad
        assert trace_json.scan_process_names(path) == {PY: "Python"}, pad
