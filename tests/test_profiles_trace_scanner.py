"""The C trace scanner (advisor/formats/ascend_text/_tracescan.c) against the Python path it stands in for.

Whatever the input, `read_trace` must give the same tables, warnings and errors with and without the
scanner; and on the files real profilers and our generator write, the scanner must read every piece
(else it would be correct but useless).
"""

from __future__ import annotations

import contextlib
import json
import os
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from advisor.errors import InputError
from advisor.formats.ascend_text import trace_view
from advisor.synth import SynthSpec, write_synth_profile

from .engine_fixtures import CORPUS, corpus_path
from .test_profiles_trace import assert_same_tables, meta, sample_events, write

pytestmark = pytest.mark.skipif(
    trace_view._tracescan is None and os.environ.get("PERFORMANCE_ADVISOR_REQUIRE_SCANNER") != "1",
    reason="the C trace scanner is not compiled (pip install -e . compiles it)",
)


def test_scanner_is_compiled_and_lays_out_columns_as_the_python_reader():
    assert trace_view._tracescan is not None, "the C trace scanner did not compile"
    python_layout = tuple(
        (table, tuple(kind for _, kind in columns)) for table, columns in trace_view._RAW.items()
    )
    assert python_layout == trace_view._tracescan.LAYOUT


def counting(scan: Callable[..., Any], counts: dict[str, int]) -> Callable[..., Any]:
    """`scan` (a piece, then its other arguments), counting the pieces it read ("c") and the valid
    ones it left to the Python path ("python"); a cut inside a nested value (invalid JSON, tried and
    given up by both) is not counted."""

    def counted(piece: memoryview, *args: Any) -> Any:
        result = scan(piece, *args)
        if result is not None:
            counts["c"] += 1
        else:
            with contextlib.suppress(msgspec.DecodeError):
                msgspec.json.decode(piece)
                counts["python"] += 1
        return result

    return counted


@pytest.fixture
def pieces(monkeypatch) -> dict[str, int]:
    """Counts the pieces the trace_view scanner read and left to the Python path (`counting`)."""
    counts = {"c": 0, "python": 0}
    compiled = trace_view._tracescan
    scan = counting(compiled.scan, counts)
    monkeypatch.setattr(trace_view, "_tracescan", types.SimpleNamespace(scan=scan, LAYOUT=compiled.LAYOUT))
    return counts


def outcome(path: Path, chunk: int, compiled: bool) -> tuple[str, Any]:
    try:
        return "tables", trace_view.read_trace(path, chunk_bytes=chunk, compiled=compiled)
    except InputError as exc:
        return "error", str(exc)


def assert_same_outcome(path: Path, chunk: int = trace_view.CHUNK_BYTES) -> tuple[str, Any]:
    """Read `path` with and without the scanner, assert both give the same; the outcome."""
    (kind, c), (python_kind, python) = outcome(path, chunk, True), outcome(path, chunk, False)
    assert kind == python_kind, (c, python)
    if kind == "error":
        assert c == python
    else:
        assert_same_tables(c, python)
        assert c.warnings == python.warnings
        assert c.processes == python.processes
    return kind, c


def real_traces() -> list[Path]:
    return sorted(corpus_path(CORPUS).rglob("trace_view.json"))


@pytest.mark.parametrize("chunk", [8 << 20, 50_000])
def test_corpus_traces_are_read_by_the_scanner_with_the_same_tables(pieces, chunk):
    traces = real_traces()
    assert traces
    for path in traces:
        assert_same_outcome(path, chunk)
    assert pieces["python"] == 0 and pieces["c"] > 0


@pytest.mark.parametrize(
    "spec",
    [
        SynthSpec(ranks=2, seed=3, inject=("schedule.gc", "computation.aicpu", "dataloader.slow")),
        SynthSpec(
            ranks=2,
            seed=5,
            inject=("communication.small_packet", "computation.ai_core_frequency", "memory.operators"),
        ),
        SynthSpec(ranks=4, seed=7, inject=("cluster.slow_link", "schedule.host_sync")),
    ],
    ids=["gc-aicpu-dataloader", "comm-freq-memory", "slow-link"],
)
def test_generated_traces_are_read_by_the_scanner_with_the_same_tables(tmp_path, pieces, spec):
    root = write_synth_profile(tmp_path / "synth", spec)
    traces = sorted(root.rglob("trace_view.json"))
    assert len(traces) == spec.ranks
    for path in traces:
        assert_same_outcome(path, 200_000)
    assert pieces["python"] == 0 and pieces["c"] > 0


def test_every_form_real_files_use_is_read_by_the_scanner(tmp_path, pieces):
    """Escapes (CR LF in call stacks, \\u, surrogate pairs), raw UTF-8, numbers as timestamps, 19-digit
    flow ids, nulls, the physical stream id of newer torch_npu, thread names, GC without a process."""
    events = [
        *sample_events(),
        *meta(90, "Python GC"),
        {"ph": "X", "name": "gc", "pid": 90, "tid": 1, "ts": "-5.2", "dur": 3},
        {"ph": "X", "name": "GC collect", "pid": 91, "tid": 1, "ts": 17, "dur": 2.5, "cat": "Gc"},
        {"ph": "X", "name": "naïve ✓ \U0001f600", "pid": 91, "tid": 1, "ts": 1.5, "dur": None, "cat": "gc"},
    ]
    host = next(e["pid"] for e in events if e.get("args", {}).get("name") == "Python")
    events.append(
        {
            "ph": "X",
            "name": "aten::mm",
            "pid": host,
            "tid": 7,
            "ts": "12.0",
            "dur": 1e-05,
            "cat": "cpu_op",
            "args": {"Call stack": "a.py(1): f;\r\nb.py(2): g;\r\n", "Sequence number": -1},
        }
    )
    for ensure_ascii in (True, False):
        path = tmp_path / f"t{ensure_ascii}.json"
        path.write_text(json.dumps(events, ensure_ascii=ensure_ascii), encoding="utf-8")
        assert_same_outcome(path)
        assert_same_outcome(write(tmp_path / "pretty.json", events, indent=2), 97)
    assert pieces["python"] == 0
    gc = trace_view.read_trace(path)["gc"]
    assert gc["start_ns"].tolist()[-3:] == [-5200, 17000, 1500]


def test_escapes_and_multibyte_text_at_every_offset_of_a_string(tmp_path, pieces):
    """Strings are skipped 8 bytes at a time: an escape or a multi-byte character must be found at
    whatever offset it falls, in names (kept) and in args no table reads (skipped)."""
    host = 1
    events = meta(host, "Python")
    for special in ["\n", '"', "\\", "é", "\u2603", "\U0001f600", "\r\n"]:
        for length in range(0, 20):
            for at in range(length + 1):
                text = "x" * at + special + "y" * (length - at)
                args = {"Input Dims": text, "Call stack": text}
                event = {"ph": "X", "name": text, "pid": host, "tid": 1, "ts": "1.0", "dur": 1, "args": args}
                events.append(event)
    for ensure_ascii in (True, False):
        path = tmp_path / "trace_view.json"
        path.write_text(json.dumps(events, ensure_ascii=ensure_ascii), encoding="utf-8")
        assert_same_outcome(path)
    assert pieces["python"] == 0 and pieces["c"] == 2  # one piece per file
    names = trace_view.read_trace(path)["host_ops"]["name"].tolist()
    assert names == [e["name"] for e in events if e["ph"] == "X"]


# ---- properties: random events with odd values, and damaged bytes ----------------------------

PIDS = [1, 2, 3, 4, 5, 6, 7, 8]  # one per process kind below, then unnamed pids
KINDS = ["python3", "CANN", "Ascend Hardware", "HCCL", "Overlap Analysis", "AI Core Freq", "Python GC", "HBM"]
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=6)
NUMBER = st.one_of(
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0, -0.0, 1e-07, 123456789012345678901, 2**63 - 1, -(2**63)]),
)
TS = st.one_of(
    st.sampled_from(["1736408883704643.212", "5", "-0.0005", "1.", ".5", " 1.5", "1e3", "+2", "", "1_0"]),
    st.decimals(allow_nan=False, allow_infinity=False, places=4).map(str),
    NUMBER,
    st.none(),
)
ANY = st.one_of(st.none(), st.booleans(), NUMBER, TEXT, st.just([]), st.just({}), st.just([1]))
ARGS = st.fixed_dictionaries(
    {},
    optional={
        key: ANY
        for key in [
            "Call stack",
            "Task Type",
            "Stream Id",
            "Physic Stream Id",
            "Task Id",
            "task type",
            "transport type",
            "link type",
            "size(Byte)",
            "src rank",
            "dst rank",
            "MHz",
            "name",
            "other",
        ]
    },
)
EVENT = st.fixed_dictionaries(
    {},
    optional={
        "ph": st.sampled_from(["X", "s", "f", "C", "M", "B", "XX", 5, None]),
        "name": st.one_of(
            st.sampled_from(["thread_name", "AI Core Freq", "Computing", "Free", "ProfilerStep#3"]), ANY
        ),
        "pid": st.one_of(st.sampled_from([*PIDS, 9, "3", 1.0, True, None]), ANY),
        "tid": st.one_of(st.integers(0, 3), ANY),
        "ts": TS,
        "dur": st.one_of(NUMBER, st.none(), TEXT),
        "cat": st.one_of(st.sampled_from(["cpu_op", "GC", "gc", "async_npu", "HostToDevice"]), ANY),
        "id": st.one_of(st.integers(-(10**20), 10**20), TEXT, ANY),
        "args": st.one_of(ARGS, ANY),
    },
)
ELEMENT = st.one_of(EVENT, EVENT, EVENT, ANY)
# Every process kind named, with a thread name, so that random events reach every route.
TYPICAL = [
    event
    for pid, name in zip(PIDS, KINDS, strict=True)
    for event in meta(pid, name, {0: "Group 1 Communication"})
]


# Events of the types real files use, in every combination: almost every piece is the scanner's.
INT_OR_NULL = st.one_of(st.none(), st.integers(-(2**63) + 1, 2**63 - 1))
FLOAT_OR_NULL = st.one_of(
    st.none(), st.integers(-(10**30), 10**30), st.floats(allow_nan=False, allow_infinity=False)
)
PLAIN_TS = st.one_of(
    st.decimals(min_value=-(10**15), max_value=10**16, allow_nan=False, places=3).map(str),
    st.decimals(min_value=-(10**6), max_value=10**6, allow_nan=False, places=6).map(str),
    st.integers(-(10**15), 10**15),
    st.floats(-1e6, 1e6).map(lambda x: round(x, 4)),
)
PLAIN_ARGS = st.fixed_dictionaries(
    {},
    optional={
        "Call stack": st.one_of(TEXT, st.just("a.py(1): f;\r\nb.py(2): g;\r\n"), st.none()),
        "Task Type": st.one_of(TEXT, st.none()),
        "Stream Id": INT_OR_NULL,
        "Physic Stream Id": INT_OR_NULL,
        "Task Id": INT_OR_NULL,
        "task type": st.one_of(TEXT, st.none()),
        "transport type": st.one_of(TEXT, st.none()),
        "link type": st.one_of(TEXT, st.none()),
        "size(Byte)": FLOAT_OR_NULL,
        "src rank": INT_OR_NULL,
        "dst rank": INT_OR_NULL,
        "MHz": FLOAT_OR_NULL,
        "name": TEXT,
        "Input Dims": st.lists(st.lists(st.integers(0, 9), max_size=2), max_size=2),
    },
)
PLAIN_EVENT = st.fixed_dictionaries(
    {
        "ph": st.sampled_from(["X", "X", "X", "s", "f", "C", "M"]),
        "name": st.one_of(st.sampled_from(["thread_name", "AI Core Freq", "Computing", "Free"]), TEXT),
        "pid": st.sampled_from([*PIDS, 9, "3"]),
        "ts": PLAIN_TS,
        "args": PLAIN_ARGS,
    },
    optional={
        "tid": INT_OR_NULL,
        "dur": FLOAT_OR_NULL,
        "cat": st.sampled_from(["cpu_op", "GC", "gc", "async_npu", "HostToDevice", "python_function"]),
        "id": st.one_of(st.integers(-(10**19), 10**19), TEXT),
    },
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    elements=st.lists(PLAIN_EVENT, min_size=1, max_size=20),
    ensure_ascii=st.booleans(),
    chunk=st.sampled_from([64, 8 << 20]),
)
def test_well_formed_events_of_every_kind_give_the_same_tables(tmp_path, elements, ensure_ascii, chunk):
    path = tmp_path / "trace_view.json"
    path.write_text(json.dumps(TYPICAL + elements, ensure_ascii=ensure_ascii), encoding="utf-8")
    assert_same_outcome(path, chunk)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    elements=st.lists(ELEMENT, max_size=12),
    ensure_ascii=st.booleans(),
    indent=st.sampled_from([None, 1]),
    chunk=st.sampled_from([1, 64, 8 << 20]),
)
def test_random_events_give_the_same_tables_with_and_without_the_scanner(
    tmp_path, elements, ensure_ascii, indent, chunk
):
    path = tmp_path / "trace_view.json"
    text = json.dumps(TYPICAL + elements, ensure_ascii=ensure_ascii, indent=indent)
    path.write_text(text, encoding="utf-8")
    assert_same_outcome(path, chunk)
