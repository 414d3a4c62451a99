"""One trace_view.json read by several processes (`read_trace(processes=n)`): the same tables, warnings
and errors as one process, whatever the bytes at the cuts.

A cut is guessed by bytes (`}, {"`), so it may land inside a string or a nested value; the span before
it proves it or not, and an unproved cut means the file is read whole. The adversarial files put
every guessed cut in such a place.
"""

from __future__ import annotations

import json
import mmap
import os
import subprocess
import sys
from pathlib import Path

import pytest

from advisor.engine import run_analysis
from advisor.errors import InputError
from advisor.formats import trace_split
from advisor.formats.ascend_common import trace_json
from advisor.formats.ascend_common.trace_json import ArrayReader, Span, split_spans
from advisor.formats.ascend_text import trace_view
from advisor.formats.ascend_text.trace_view import Event, TraceTables, read_trace
from advisor.options import AnalysisOptions
from advisor.synth import SynthSpec, write_synth_profile

from .engine_fixtures import demo
from .test_profiles_trace import PY, assert_same_tables, meta, sample_events, ts, write


def outcome(path: Path, **options) -> TraceTables | str:
    """What `read_trace` gives: the tables, or its error."""
    try:
        return read_trace(path, **options)
    except InputError as exc:
        return str(exc)


def assert_split_reads_the_same(path: Path, parts=(2, 3, 5), **options) -> TraceTables | str:
    """Read `path` whole and in each number of `parts`: the same tables, warnings and metadata (or error)."""
    whole = outcome(path, **options)
    for n in parts:
        split = outcome(path, processes=n, **options)
        if isinstance(whole, str):
            assert split == whole, n
            continue
        assert not isinstance(split, str), (n, split)
        assert_same_tables(split, whole)
        assert split.warnings == whole.warnings, n
        assert list(split.processes.items()) == list(whole.processes.items()), n
        assert (split.truncated, split.skipped_share) == (whole.truncated, whole.skipped_share), n
    return whole


def spans_are_true_boundaries(data: bytes, spans: list[Span]) -> bool:
    """Whether each span holds whole elements: its bytes parse as an array of objects."""
    for span in spans:
        body = data[span.start : span.stop]
        text = body if span.start == 0 else b"[" + body
        text = text if span.stop is None else text + b"]"
        try:
            elements = json.loads(text)
        except json.JSONDecodeError:
            return False
        if not all(isinstance(e, dict) for e in elements):
            return False
    return True


def many_events(copies: int) -> list[dict]:
    """The sample events `copies` times, each copy a step later and with two malformed events (no name
    and ts; not an object); metadata last (as torch_npu may write it)."""
    events: list = []
    for k in range(copies):
        events += [{"ph": "X", "pid": PY, "tid": 1}, 42]
        for event in sample_events():
            if event.get("ph") == "M":
                continue
            event = dict(event)
            if "ts" in event and isinstance(event["ts"], str):
                event["ts"] = f"{float(event['ts']) + k * 10_000:.3f}"
            events.append(event)
    return events + [e for e in sample_events() if e.get("ph") == "M"]


@pytest.mark.parametrize("spec_seed", [3, 8])
def test_generated_ranks_read_split_give_the_same_tables(tmp_path, spec_seed):
    spec = SynthSpec(ranks=1, seed=spec_seed, size_mb=1.5, inject=("schedule.gc", "computation.aicpu"))
    path = next(write_synth_profile(tmp_path / "synth", spec).rglob("trace_view.json"))
    data = path.read_bytes()
    for n in (2, 3, 7):
        spans = split_spans(path, n)
        assert len(spans) == n and spans_are_true_boundaries(data, spans)
        # The spans are proved and used (not the whole-file read the unproved ones fall back to).
        read = trace_view._SpanRead(path, trace_view.CHUNK_BYTES, True, trace_view.MAX_EVENT_BYTES)
        assert trace_view._read_split(read, spans) is not None
    whole = assert_split_reads_the_same(path, parts=(2, 3, 7), chunk_bytes=100_000)
    assert len(whole["host_ops"]) > 500 and len(whole["flows"]) > 100 and len(whole["gc"]) > 0


def test_sample_events_split_at_every_event_give_the_same_tables(tmp_path):
    """Malformed events, odd types, thread names and process names after their events, in every span."""
    path = write(tmp_path / "trace_view.json", many_events(12))
    whole = assert_split_reads_the_same(path, parts=(2, 4, 9, 40))
    assert whole["steps"]["step"].tolist() == [7, 8]  # the same step numbers in every copy: kept once
    assert len(whole["host_ops"]) == 12 * 6 and whole.warnings == [f"{path}: skipped 24 malformed events"]
    python = assert_split_reads_the_same(path, parts=(3, 7), compiled=False)
    assert_same_tables(python, whole)


def _element_boundary_in(text: str) -> str:
    """A JSON string value whose bytes end with what a boundary guess looks for (`}, {"`)."""
    return text + "}, {"


def adversarial_events() -> list[dict]:
    """Events whose strings and nested values hold `}, {"` and `},{`, escaped quotes and brackets."""
    events = [*meta(PY, "Python")]
    filler = "x" * 3000
    for i in range(60):
        name = _element_boundary_in(f'op{i} \\"}},{{\\" ] [ {filler}')
        events.append(
            {"ph": "X", "name": name, "pid": PY, "tid": 1, "ts": ts(i * 10), "dur": 1.0, "cat": "cpu_op"}
        )
        nested = {"list": [{"a": j, "s": "}, {"} for j in range(100)]}  # "}, {" between nested objects
        events.append(
            {
                "ph": "X",
                "name": f"n{i}",
                "pid": PY,
                "tid": 1,
                "ts": ts(i * 10 + 5),
                "dur": 2.0,
                "args": nested,
            }
        )
    return events


def test_cuts_inside_strings_and_nested_values_are_never_used(tmp_path):
    path = write(tmp_path / "trace_view.json", adversarial_events())
    data = path.read_bytes()
    found = [split_spans(path, n) for n in range(2, 12)]
    # Most guessed cuts land inside a string or a nested array: not true boundaries.
    assert sum(not spans_are_true_boundaries(data, spans) for spans in found) >= 8
    read = trace_view._SpanRead(path, trace_view.CHUNK_BYTES, True, trace_view.MAX_EVENT_BYTES)
    read.kinds = trace_view._kinds([trace_view.scan_process_names(path)])
    for spans in found:
        if not spans_are_true_boundaries(data, spans):
            assert trace_view._read_split(read, spans) is None, spans  # unproved: the caller reads whole
    whole = assert_split_reads_the_same(path, parts=(2, 3, 6, 11))
    names = whole["host_ops"]["name"].tolist()
    assert len(names) == 120 and names[0] == adversarial_events()[1]["name"] and names[0].endswith("}, {")


def ends_cleanly(path: Path, span: Span) -> bool:
    """Whether the span's elements read as a whole array: no error, not truncated."""
    reader = ArrayReader(path, Event, span=span)
    try:
        for _ in reader:
            pass
    except InputError:
        return False
    return reader.truncated_at is None


def test_span_before_a_false_cut_does_not_end_cleanly(tmp_path):
    """What proves a cut: the span before it, read from a true start, ends its array only at a true one."""
    path = write(tmp_path / "trace_view.json", adversarial_events())
    data = path.read_bytes()
    in_string = data.index(b'}, {"', data.index(b"op1 ")) + 1  # the end of the second op's name
    in_nested = data.index(b"}, {", data.index(b'"list"')) + 1  # between two objects in args
    true_end = data.index(b', {"ph": "X", "name": "op1')  # after the first nested event
    assert not ends_cleanly(path, Span(0, in_string))
    assert not ends_cleanly(path, Span(0, in_nested))
    assert ends_cleanly(path, Span(0, true_end))
    second = Span(true_end + 2, in_string)  # a span from a true start, to a false cut
    assert data[second.start : second.start + 1] == b"{" and not ends_cleanly(path, second)
    reader = ArrayReader(path, Event, span=Span(true_end + 2, None))
    events = [e for batch in reader for e in batch]
    assert reader.truncated_at is None and [e.name for e in events[:2]] == [
        adversarial_events()[3]["name"],
        "n1",
    ]


def test_truncated_oversized_and_invalid_files_give_the_same_outcome(tmp_path):
    events = many_events(8)
    data = json.dumps(events).encode()
    truncated = tmp_path / "truncated.json"
    truncated.write_bytes(data[: len(data) * 3 // 4])
    result = assert_split_reads_the_same(truncated)
    assert result.truncated and "truncated at byte" in result.warnings[0]
    huge = [*events[:30], {**events[0], "args": {"Call stack": "f" * 5000}}, *events[30:]]
    oversized = write(tmp_path / "oversized.json", huge)
    result = assert_split_reads_the_same(oversized, max_event_bytes=4000, chunk_bytes=2000)
    assert any("over the" in warning for warning in result.warnings)
    invalid = tmp_path / "invalid.json"
    invalid.write_bytes(data[: len(data) // 2] + b"nope" + data[len(data) // 2 :])
    assert "invalid JSON at byte" in assert_split_reads_the_same(invalid)


def test_spare_processes_split_only_big_files(tmp_path, monkeypatch):
    path = write(tmp_path / "trace_view.json", many_events(4))
    size = path.stat().st_size
    assert trace_split.split_processes(path) == 1  # outside a run: one process
    with trace_split.spare_processes(4):
        monkeypatch.setattr(trace_split, "SPLIT_BYTES_PER_PROCESS", size + 1)
        assert trace_split.split_processes(path) == 1
        monkeypatch.setattr(trace_split, "SPLIT_BYTES_PER_PROCESS", size // 3)
        assert trace_split.split_processes(path) == 3
        monkeypatch.setattr(trace_split, "SPLIT_BYTES_PER_PROCESS", 1)
        assert trace_split.split_processes(path) == 4
        assert trace_split.split_processes(tmp_path / "missing.json") == 1
    assert trace_split.split_processes(path) == 1


def test_a_one_rank_analysis_splits_its_trace_across_the_run_processes(tmp_path, monkeypatch):
    root, _ = demo(tmp_path, ranks=1)
    reads = []
    original = trace_view.read_trace

    def spy(path, **options):
        reads.append(options.get("processes", 1))
        return original(path, **options)

    monkeypatch.setattr(trace_view, "read_trace", spy)
    one = run_analysis(root, options=AnalysisOptions(advisor_analyze_processes=1)).to_json()
    trace = next(root.rglob("trace_view.json"))
    stat = trace.stat()
    os.utime(trace, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # not the memo's version
    monkeypatch.setattr(trace_split, "SPLIT_BYTES_PER_PROCESS", 1000)  # the demo's trace is small
    two = run_analysis(root, options=AnalysisOptions(advisor_analyze_processes=2)).to_json()
    assert reads == [1, 2]
    one.pop("timings_s"), two.pop("timings_s")
    assert one == two and one["findings"]


@pytest.mark.parametrize("memmem", [True, False])
def test_find_all_finds_every_hit_within_its_bounds(tmp_path, monkeypatch, memmem):
    if not memmem:
        monkeypatch.setattr(trace_json, "_MEMMEM", None)
    elif trace_json._MEMMEM is None:
        pytest.skip("no memmem in this C library")
    data = b'"process_name""process_name"x"process_name' + b"y" * 5000 + b'"process_name"'
    path = tmp_path / "data"
    path.write_bytes(data)
    expected = [0, 14, 29, 5042]
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        needle = b'"process_name"'
        assert trace_json.find_all(buf, needle, 0, len(data)) == [0, 14, 5042]  # the third is cut short
        assert trace_json.find_all(buf, b'"process_name', 0, len(data)) == expected
        assert trace_json.find_all(buf, needle, 1, len(data) - 1) == [14]  # bounds hold whole hits only
        assert trace_json.find_all(buf, needle, 20, 20) == []


def test_files_left_by_a_killed_read_are_removed_by_the_next():
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    first = Path(trace_view._shared_file())
    orphan = first.parent / f"{trace_view._SPILL_PREFIX}{int(finished.stdout)}-abc"
    made = [first, orphan]
    try:
        orphan.write_bytes(b"columns")
        made.append(Path(trace_view._shared_file()))
        assert not orphan.exists()  # its process is gone
        assert first.exists() and made[2].exists()  # this process's: alive
        assert made[2].name.startswith(f"{trace_view._SPILL_PREFIX}{os.getpid()}-")
    finally:
        for path in made:
            path.unlink(missing_ok=True)
