"""The streaming Kineto reader (advisor/formats/kineto/events.py) against a plain json.load of the same
files: real samples (../shared/corpus, tests/data/kineto) and generated traces of both schemas, plain
and gzip, read in small chunks too (pieces cut at every kind of boundary)."""

from __future__ import annotations

import gzip
import json
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from advisor.errors import InputError
from advisor.formats.kineto import events
from advisor.formats.kineto.events import KinetoTrace, read_header, read_trace
from advisor.synth.kineto import KinetoSpec, write_kineto_traces
from advisor.synth.kineto.write import BASE_TIME_NS, OLD_EPOCH_NS

from .engine_fixtures import CORPUS, PROJECT_ROOT, corpus_path
from .test_profiles_trace_scanner import counting

RECORDED = PROJECT_ROOT / "tests" / "data" / "kineto"
SAMPLES = sorted(
    [
        *(CORPUS / "kineto-small-gpu").glob("*.json.gz"),
        *(CORPUS / "torch-cpu").rglob("*.json"),
        *RECORDED.rglob("*.json.gz"),
    ]
)
TRACES = [path for path in SAMPLES if not path.name.endswith("_et.json.gz")]  # Chakra: refused
# args key(s) of each x column read from args (the first present wins).
X_ARGS = {
    "correlation": ("correlation",),
    "external_id": ("External id", "external id"),
    "stream": ("stream",),
    "device": ("device",),
    "bytes": ("bytes",),
    "collective": ("Collective name",),
    "in_nelems": ("In msg nelems",),
    "out_nelems": ("Out msg nelems",),
    "dtype": ("dtype",),
    "group_size": ("Group size",),
    "pg_name": ("Process Group Name",),
    "pg_desc": ("Process Group Description",),
    "pg_ranks": ("Process Group Ranks",),
    "sync_kind": ("cuda_sync_kind",),
    "call_stack": ("Call stack",),
}


def _load(path: Path) -> dict[str, Any]:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return json.loads(raw, parse_float=Decimal)  # exact timestamps


def _ns(ts: Any) -> Any:
    return pd.NA if ts is None else int(Decimal(ts) * 1000)


def _text(value: Any) -> Any:
    return pd.NA if value is None else str(value)


def _int(value: Any) -> Any:
    return value if type(value) is int else pd.NA


def _json(value: Any) -> Any:
    if value is None:
        return pd.NA
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def _expected(data: dict[str, Any]) -> dict[str, pd.DataFrame]:
    """The contract's columns, computed row by row from json.load's events."""
    x, instants, flows, threads = [], [], [], []
    for event in data["traceEvents"]:
        args = event.get("args") if isinstance(event.get("args"), dict) else {}
        ph, cat = event.get("ph"), event.get("cat")
        cat = cat.lower() if isinstance(cat, str) else cat
        pid, tid, ts = _text(event.get("pid")), _text(event.get("tid")), _ns(event.get("ts"))
        if ph == "X":
            row = {"cat": cat, "name": event.get("name"), "pid": pid, "tid": tid, "ts_ns": ts}
            row["dur_us"] = float(event["dur"]) if event.get("dur") is not None else float("nan")
            for column, keys in X_ARGS.items():
                row[column] = next((args[key] for key in keys if args.get(key) is not None), None)
            row["input_dims"] = _json(args.get("Input Dims"))
            row["input_type"] = _json(args.get("Input type"))
            x.append(row)
        elif ph in ("i", "I") and event.get("name") == "[memory]":
            instants.append(
                {
                    "ts_ns": ts,
                    "pid": pid,
                    "tid": tid,
                    "bytes": args.get("Bytes"),
                    "total_allocated": args.get("Total Allocated"),
                    "total_reserved": args.get("Total Reserved"),
                    "device_type": args.get("Device Type"),
                    "device_id": args.get("Device Id"),
                }
            )
        elif ph in ("s", "f"):
            flows.append(
                {"ph": ph, "cat": cat, "id": _int(event.get("id")), "pid": pid, "tid": tid, "ts_ns": ts}
            )
        elif ph == "M" and event.get("name") in ("process_name", "thread_name", "process_labels"):
            value = args.get("labels" if event["name"] == "process_labels" else "name")
            threads.append({"kind": event["name"], "pid": pid, "tid": tid, "value": value})
    return {"x": x, "instants": instants, "flows": flows, "threads": threads}


def _assert_matches(trace: KinetoTrace, data: dict[str, Any]) -> None:
    expected = _expected(data)
    assert trace.count == len(data["traceEvents"])
    assert trace.meta == {key: value for key, value in data.items() if key != "traceEvents"}
    for table, rows in expected.items():
        frame: pd.DataFrame = getattr(trace, table)
        assert len(frame) == len(rows), table
        for column in frame.columns:
            want = [row[column] for row in rows]
            got = frame[column].tolist()
            if frame[column].dtype == "float64":
                want = [float(v) if v is not None else float("nan") for v in want]
                assert pd.Series(got, dtype="float64").equals(pd.Series(want, dtype="float64")), (
                    table,
                    column,
                )
            else:
                want = [pd.NA if v is None else v for v in want]
                if frame[column].dtype == "Int64":
                    want = [_int(v) if v is not pd.NA else v for v in want]
                else:
                    want = [v if v is pd.NA else str(v) for v in want]
                assert got == want, (table, column)


def _json_floats(data: dict[str, Any]) -> dict[str, Any]:
    """meta as read by the reader: Decimal back to float."""
    return json.loads(json.dumps(data, default=float))


@pytest.mark.parametrize("path", TRACES, ids=lambda path: path.name[:40])
def test_samples_match_json_load(path: Path) -> None:
    data = _load(path)
    trace = read_trace(path)
    meta = {k: v for k, v in data.items() if k != "traceEvents"}
    assert trace.meta == _json_floats(meta)
    _assert_matches(trace, {**_json_floats(meta), "traceEvents": data["traceEvents"]})
    assert trace.truncated_at is None and trace.oversized == []
    # Small chunks: many pieces, the array's end and the keys after it in separate reads.
    small = read_trace(path, chunk_bytes=4096)
    for table in ("x", "instants", "flows", "threads"):
        pd.testing.assert_frame_equal(getattr(small, table), getattr(trace, table))
    assert small.meta == trace.meta and small.count == trace.count
    assert read_header(path) == {k: v for k, v in trace.meta.items() if k in _keys_before(path)}


def _keys_before(path: Path) -> set[str]:
    """Top-level keys written before traceEvents (a byte search on the pretty-printed head)."""
    raw = path.read_bytes()
    text = (gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).decode()
    head = text[: text.index('"traceEvents"')]
    return {key for key in _load(path) if f'"{key}"' in head}


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, bool], Path]:
    """rank0 of a generated 2-rank run per (schema, gzip), with memory events and a collective."""
    root = tmp_path_factory.mktemp("kineto")
    files = {}
    for schema in ("new", "old"):
        for gz in (False, True):
            spec = KinetoSpec(schema=schema, gzip=gz, profile_memory=True, steps=(2, 3))
            folder = write_kineto_traces(root / f"{schema}-{gz}", spec)
            files[(schema, gz)] = next(p for p in sorted(folder.iterdir()) if p.name.startswith("rank0"))
    return files


@pytest.mark.parametrize("schema", ["new", "old"])
def test_generated_traces_match_json_load_plain_and_gz(generated: dict, schema: str) -> None:
    plain, packed = read_trace(generated[(schema, False)]), read_trace(generated[(schema, True)])
    _assert_matches(plain, _json_floats_events(_load(generated[(schema, False)])))
    for table in ("x", "instants", "flows", "threads"):
        pd.testing.assert_frame_equal(getattr(packed, table), getattr(plain, table))
    assert (packed.count, packed.base_ns) == (plain.count, plain.base_ns)
    assert packed.meta["traceName"] == plain.meta["traceName"] == "rank0.json"  # a key after the array


def _json_floats_events(data: dict[str, Any]) -> dict[str, Any]:
    meta = _json_floats({k: v for k, v in data.items() if k != "traceEvents"})
    return {**meta, "traceEvents": data["traceEvents"]}


def test_new_schema_base_time_and_relative_ts(generated: dict) -> None:
    trace = read_trace(generated[("new", True)])
    assert trace.base_ns == BASE_TIME_NS == trace.meta["baseTimeNanoseconds"]
    assert 0 < trace.x["ts_ns"].min() < 10**16  # relative µs as ns
    kernels = trace.x[trace.x["cat"] == "kernel"]
    assert len(kernels) and kernels["correlation"].notna().all() and (kernels["stream"] == 7).any()
    nccl = trace.x[trace.x["collective"].notna()]
    assert len(nccl) and (nccl["collective"] == "allreduce").all() and nccl["in_nelems"].notna().all()
    assert len(trace.instants) and trace.instants["device_type"].isin([0, 1]).all()


def test_old_schema_absolute_ts_lower_cased_categories(generated: dict) -> None:
    trace = read_trace(generated[("old", True)])
    assert trace.base_ns == 0
    assert trace.x["ts_ns"].min() >= OLD_EPOCH_NS  # absolute epoch ns
    cats = set(trace.x["cat"].dropna())
    assert {"operator", "runtime", "kernel"} <= cats and not any(c != c.lower() for c in cats)
    kernels = trace.x[trace.x["cat"] == "kernel"]
    assert kernels["external_id"].notna().any()  # from the 2021 "external id"
    assert kernels["tid"].str.startswith("stream ").all()  # string tids kept as written
    assert set(trace.flows["cat"]) == {"async"}


def test_pid_and_tid_are_strings_whatever_their_type(tmp_path: Path) -> None:
    path = tmp_path / "mixed.json"
    events = [
        {"ph": "X", "cat": "Kernel", "name": "k", "pid": 0, "tid": "stream 7", "ts": 10, "dur": 1},
        {"ph": "X", "cat": "cpu_op", "name": "op", "pid": "Spans", "tid": -1, "ts": 5.5, "dur": 2.25},
    ]
    path.write_text(json.dumps({"schemaVersion": 1, "traceEvents": events}))
    trace = read_trace(path)
    assert trace.x["pid"].tolist() == ["0", "Spans"] and trace.x["tid"].tolist() == ["stream 7", "-1"]
    assert trace.x["cat"].tolist() == ["kernel", "cpu_op"]
    assert trace.x["ts_ns"].tolist() == [10_000, 5_500] and trace.base_ns is None  # relative, no base


def test_absolute_float_ts_keeps_every_ns_digit(tmp_path: Path) -> None:
    path = tmp_path / "ns.json"
    event = '{"ph": "X", "name": "a", "pid": 1, "tid": 1, "ts": 1712867402348256.123, "dur": 1}'
    path.write_text('{"traceEvents": [' + event + "]}")
    trace = read_trace(path)
    assert trace.x["ts_ns"].tolist() == [1_712_867_402_348_256_123] and trace.base_ns == 0


def _events_text(n: int) -> tuple[bytes, list[int]]:
    """A trace of n events; the end offset of each event."""
    head = b'{"schemaVersion": 1, "traceEvents": [\n'
    body, ends = bytearray(head), []
    for i in range(n):
        if i:
            body += b",\n"
        body += json.dumps(
            {"ph": "X", "cat": "cpu_op", "name": f"op{i}", "pid": 1, "tid": 1, "ts": i, "dur": 1}
        ).encode()
        ends.append(len(body))
    body += b'\n], "traceName": "t.json"}\n'
    return bytes(body), ends


def test_truncated_file_keeps_complete_events_and_reports_offset(tmp_path: Path) -> None:
    text, ends = _events_text(2000)
    cut = ends[1200] + 7  # inside event 1201
    path = tmp_path / "cut.json"
    path.write_bytes(text[:cut])
    trace = read_trace(path, chunk_bytes=4096)
    assert trace.truncated_at == cut
    assert trace.count == 1201 and trace.x["name"].tolist() == [f"op{i}" for i in range(1201)]
    # gzip cut short: the bytes that decompress still give their complete events
    packed = gzip.compress(text, mtime=0)
    gz = tmp_path / "cut.json.gz"
    gz.write_bytes(packed[: len(packed) // 2])
    partial = read_trace(gz, chunk_bytes=4096)
    assert partial.truncated_at is not None and 0 < partial.count < 2000
    assert partial.x["name"].tolist() == [f"op{i}" for i in range(partial.count)]


def test_file_cut_after_the_array_keeps_every_event(tmp_path: Path) -> None:
    text, _ = _events_text(50)
    path = tmp_path / "tail.json"
    path.write_bytes(text[: text.index(b'"t.json"') + 3])  # inside the traceName string
    trace = read_trace(path)
    assert trace.count == 50 and trace.truncated_at == path.stat().st_size
    assert "traceName" not in trace.meta


def test_oversized_event_is_skipped_and_listed(tmp_path: Path) -> None:
    events = [{"ph": "X", "name": "a", "pid": 1, "tid": 1, "ts": 1, "dur": 1}]
    events.append({"ph": "X", "name": "b" * 50_000, "pid": 1, "tid": 1, "ts": 2, "dur": 1})
    events.append({"ph": "X", "name": "c", "pid": 1, "tid": 1, "ts": 3, "dur": 1})
    path = tmp_path / "big.json"
    text = json.dumps({"traceEvents": events, "traceName": "x"})
    path.write_text(text)
    trace = read_trace(path, chunk_bytes=1024, max_event_bytes=10_000)
    assert trace.x["name"].tolist() == ["a", "c"]
    assert len(trace.oversized) == 1 and trace.oversized[0][0] == text.index('{"ph": "X", "name": "bbb')
    assert trace.meta == {"traceName": "x"}


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"schema": "1.0.1", "pid": 1, "nodes": [{"id": 1}]}', "Chakra execution trace"),
        ('{"a": 1, "b": [1, 2]}', "no 'traceEvents' key"),
        ("[[1, 2], [3, 4]]", "memory timeline"),
        ('{"traceEvents": {"a": 1}}', "'traceEvents' is not an array"),
        ('{"schemaVersion": 1, "traceEvents": [{"ph": "X"}, nope]}', "invalid JSON at byte 50"),  # at `nope`
    ],
)
def test_not_a_kineto_trace_is_refused_with_its_reason(tmp_path: Path, text: str, reason: str) -> None:
    path = tmp_path / "input.json"
    path.write_text(text)
    with pytest.raises(InputError, match=reason) as error:
        read_trace(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_chakra_trace_of_the_corpus_is_refused() -> None:
    chakra = corpus_path(CORPUS / "kineto-small-gpu" / "execution_trace__benchmark_simple_add_et.json.gz")
    with pytest.raises(InputError, match="Chakra execution trace"):
        read_header(chakra)


def test_corrupt_gzip_is_an_input_error(tmp_path: Path) -> None:
    packed = bytearray(gzip.compress(_events_text(500)[0], mtime=0))
    packed[len(packed) // 2 : len(packed) // 2 + 40] = b"\x00" * 40
    path = tmp_path / "bad.json.gz"
    path.write_bytes(bytes(packed))
    with pytest.raises(InputError, match=r"corrupt gzip data|invalid JSON"):
        read_trace(path)


# ---- the C scanner (scan_kineto in _tracescan.c) against the Python path ------------------------

needs_scanner = pytest.mark.skipif(
    events._scan_kineto is None and os.environ.get("PERFORMANCE_ADVISOR_REQUIRE_SCANNER") != "1",
    reason="the C trace scanner is not compiled (pip install -e . compiles it)",
)


@pytest.fixture
def pieces(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts the pieces the scanner read ("c") and the valid ones it left to the Python path."""
    counts = {"c": 0, "python": 0}
    monkeypatch.setattr(events, "_scan", counting(events._scan, counts))
    return counts


def assert_same_outcome(path: Path, chunk_bytes: int = events.CHUNK_BYTES) -> KinetoTrace | str:
    """Read `path` with and without the scanner, assert both give the same; the outcome."""
    outcomes = []
    for compiled in (True, False):
        try:
            outcomes.append(read_trace(path, chunk_bytes=chunk_bytes, compiled=compiled))
        except InputError as exc:
            outcomes.append(str(exc))
    c, python = outcomes
    assert type(c) is type(python), (c, python)
    if isinstance(c, str):
        assert c == python
        return c
    for table in events.COLUMNS:
        pd.testing.assert_frame_equal(getattr(c, table), getattr(python, table))
    assert (c.meta, c.base_ns, c.count, c.truncated_at, c.oversized) == (
        python.meta,
        python.base_ns,
        python.count,
        python.truncated_at,
        python.oversized,
    )
    return c


@needs_scanner
def test_scanner_lays_out_columns_as_the_python_reader() -> None:
    from advisor.formats.ascend_text import _tracescan

    python = tuple((table, tuple(kind for _, kind in columns)) for table, columns in events.COLUMNS.items())
    assert python == _tracescan.KINETO_LAYOUT


@needs_scanner
@pytest.mark.parametrize("chunk", [events.CHUNK_BYTES, 20_000])
def test_samples_are_read_by_the_scanner_with_the_same_columns(pieces: dict, chunk: int) -> None:
    for path in TRACES:
        assert isinstance(assert_same_outcome(path, chunk), KinetoTrace)
    assert pieces["python"] == 0 and pieces["c"] >= len(TRACES)


@needs_scanner
def test_generated_traces_are_read_by_the_scanner_with_the_same_columns(
    generated: dict, pieces: dict
) -> None:
    for path in generated.values():
        assert isinstance(assert_same_outcome(path, 50_000), KinetoTrace)
    assert pieces["python"] == 0 and pieces["c"] > 0


@needs_scanner
def test_every_form_kineto_writes_is_read_by_the_scanner(tmp_path: Path, pieces: dict) -> None:
    """Escapes and multi-byte text, int and string pids/tids (negative too), float and integer
    timestamps, nulls, args that are not objects, Input Dims with nested lists and strings."""
    mm_args = {
        "External id": 88,
        "Input Dims": [[256, 1024], [], [-1]],
        "Input type": ["float", ""],
        "Call stack": "a.py(1): f;b.py(2): g",
        "Collective name": "allreduce",
        "dtype": "Float",
        "In msg nelems": 1048576,
        "Process Group Ranks": "[0, 1]",
        "Group size": 2,
    }
    events_ = [
        {"ph": "X", "cat": "Kernel", "name": 'a "quoted"\nname é ✓ \U0001f600', "pid": 0, "tid": "stream 7",
         "ts": 1712867402348256, "dur": 0, "args": {"external id": 5, "stream": 7, "correlation": -1}},
        {"ph": "X", "cat": "cpu_op", "name": "aten::mm", "pid": "Spans", "tid": -1, "ts": 5120.25,
         "dur": 41.5, "args": mm_args},
        {"ph": "X", "cat": None, "name": "no cat", "pid": 1, "tid": 1, "ts": None, "args": []},
        {"ph": "X", "name": "no ts", "pid": 1, "tid": 1, "dur": -1, "args": None},
        {"ph": "i", "cat": "cpu_instant_event", "s": "t", "name": "[memory]", "pid": 7, "tid": 7,
         "ts": 5121.0, "args": {"Bytes": -1048576, "Total Allocated": 50331648, "Total Reserved": 67108864,
                  "Device Type": 1, "Device Id": 0}},
        {"ph": "i", "s": "g", "name": "Record Window End", "pid": "", "tid": "", "ts": 7000.5},
        {"ph": "s", "id": 9031, "pid": 7, "tid": 7, "ts": 5140.1, "cat": "AC2G", "name": "ac2g"},
        {"ph": "f", "id": 9031, "pid": 0, "tid": 7, "ts": 5152.9, "cat": "ac2g", "name": "ac2g", "bp": "e"},
        {"ph": "M", "name": "process_labels", "pid": 0, "tid": 0, "args": {"labels": "GPU 0"}},
        {"ph": "M", "name": "thread_name", "pid": 0, "tid": 7, "args": {"name": "stream 7 "}},
        {"ph": "M", "name": "process_sort_index", "pid": 0, "tid": 0, "args": {"sort_index": 1}},
        {"ph": "C", "name": "counter", "pid": 0, "ts": 1, "args": {"v": 1.5}},
    ]  # fmt: skip
    for ensure_ascii in (True, False):
        for indent in (None, 2):
            path = tmp_path / f"t{ensure_ascii}{indent}.json"
            text = json.dumps(
                {"schemaVersion": 1, "traceEvents": events_}, ensure_ascii=ensure_ascii, indent=indent
            )
            path.write_text(text, encoding="utf-8")
            trace = assert_same_outcome(path)
    assert pieces["python"] == 0 and pieces["c"] == 4
    assert trace.x["input_dims"].tolist()[1] == "[[256,1024],[],[-1]]"
    assert trace.x["tid"].tolist()[:2] == ["stream 7", "-1"] and trace.x["correlation"].tolist()[0] == -1
    assert trace.flows["cat"].tolist() == ["ac2g", "ac2g"]


@needs_scanner
def test_forms_the_scanner_leaves_to_the_python_path_read_the_same(tmp_path: Path, pieces: dict) -> None:
    """Values the scanner cannot be sure to read as the Python path does: it hands their piece over."""
    odd = [
        {"ph": "X", "cat": "Ä-Kernel", "name": "a", "pid": 1, "tid": 1, "ts": 1},  # non-ASCII category
        {"ph": "X", "name": "a", "pid": True, "tid": 1, "ts": 1},  # a bool pid
        {"ph": "X", "name": "a", "pid": 1, "tid": 1, "ts": "1e3"},  # an exponent
        {"ph": "X", "name": "a", "pid": 1, "tid": 1, "ts": 1, "args": {"stream": "0x7"}},  # AMD hex stream
        {"ph": "X", "name": "a", "pid": 1, "tid": 1, "ts": 1, "args": {"Input Dims": [1.5]}},  # float dims
        {"ph": "X", "name": "a", "pid": 1, "tid": 1, "ts": 1, "args": {"Input type": ["\\u00e9"]}},
        {"ph": "X", "name": "a", "pid": 1, "tid": 1, "ts": 1, "args": {"correlation": 1.0}},
        {"ph": "s", "id": "12", "pid": 1, "tid": 1, "ts": 1, "cat": "ac2g"},  # a string flow id
        "not an event",
    ]
    for n, event in enumerate(odd):
        path = tmp_path / f"odd{n}.json"
        path.write_text(
            json.dumps({"traceEvents": [{"ph": "X", "name": "ok", "pid": 1, "tid": 1, "ts": 2}, event]})
        )
        assert isinstance(assert_same_outcome(path), KinetoTrace)
    assert pieces["c"] == 0 and pieces["python"] == len(odd)


TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=6)
NUMBER = st.one_of(
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0, -0.0, 1e-07, 2**63 - 1, -(2**63), 1712867402348256.123]),
)
ANY = st.one_of(st.none(), st.booleans(), NUMBER, TEXT, st.just([]), st.just({}), st.just([1, "a"]))
TS = st.one_of(
    st.sampled_from(["1712867402348256.123", "5", "-0.0005", "1.", " 1.5", "1e3", ""]),
    st.decimals(allow_nan=False, allow_infinity=False, places=4).map(str),
    NUMBER,
    st.none(),
)
ARG_KEYS = ["correlation", "External id", "external id", "stream", "bytes", "Bytes", "dtype", "Input Dims",
            "Input type", "Device Type", "name", "labels", "Process Group Ranks", "other"]  # fmt: skip
EVENT = st.fixed_dictionaries(
    {},
    optional={
        "ph": st.sampled_from(["X", "i", "I", "s", "f", "M", "C", "XX", 5, None]),
        "cat": st.one_of(st.sampled_from(["Kernel", "cpu_op", "ac2g"]), ANY),
        "name": st.one_of(st.sampled_from(["[memory]", "thread_name", "process_labels"]), ANY),
        "pid": st.one_of(st.integers(-3, 3), ANY),
        "tid": st.one_of(st.sampled_from(["stream 7", 1]), ANY),
        "ts": TS,
        "dur": st.one_of(NUMBER, ANY),
        "id": st.one_of(st.integers(0, 5), ANY),
        "args": st.one_of(st.fixed_dictionaries({}, optional={key: ANY for key in ARG_KEYS}), ANY),
    },
)


@needs_scanner
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(EVENT, max_size=8))
def test_random_events_read_the_same_with_and_without_the_scanner(tmp_path: Path, batch: list) -> None:
    path = tmp_path / "random.json"
    path.write_text(json.dumps({"schemaVersion": 1, "traceEvents": batch}))
    assert_same_outcome(path)


@pytest.mark.parametrize("packed", [False, True])
def test_members_after_the_array_longer_than_a_chunk(tmp_path: Path, packed: bool) -> None:
    """Kineto's logs after traceEvents (INFO/WARNING lists) may outgrow a chunk, even the event size
    limit; strings in them may look like event boundaries ("}, {")."""
    text, _ = _events_text(300)
    logs = [f"warning {i}: {{'a': 1}}, {{'b': 2}}" for i in range(400)]  # ~14 KB
    text = text.replace(
        b'"traceName": "t.json"}', b'"WARNING": ' + json.dumps(logs).encode() + b', "traceName": "t.json"}'
    )
    path = tmp_path / ("t.json.gz" if packed else "t.json")
    path.write_bytes(gzip.compress(text) if packed else text)
    for chunk, limit in ((1024, 4096), (1024, 100_000), (events.CHUNK_BYTES, events.MAX_EVENT_BYTES)):
        trace = read_trace(path, chunk_bytes=chunk, max_event_bytes=limit)
        assert trace.count == 300 and trace.x["name"].tolist() == [f"op{i}" for i in range(300)]
        assert trace.truncated_at is None
        if limit < len(json.dumps(logs)):  # the members after the array are over the limit: skipped
            assert "WARNING" not in trace.meta and len(trace.oversized) == 1
        else:
            assert trace.meta == {"schemaVersion": 1, "WARNING": logs, "traceName": "t.json"}
