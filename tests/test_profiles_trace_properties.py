"""Property: whatever happens to the bytes of a trace, the reader returns tables or one InputError."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from advisor.formats.ascend_text import trace_view
from advisor.formats.ascend_text.trace_view import TABLES
from advisor.formats.schema import SCHEMAS

from .test_profiles_trace import sample_events
from .test_profiles_trace_scanner import assert_same_outcome, outcome

VALID = json.dumps(sample_events()).encode()
CHUNKS = st.sampled_from([1, 7, 64, 8 << 20])


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz") / "trace_view.json"


def check(path: Path, data: bytes, chunk: int) -> None:
    path.write_bytes(data)
    if trace_view._tracescan is not None:  # the C scanner must not change any outcome
        kind, result = assert_same_outcome(path, chunk)
    else:
        kind, result = outcome(path, chunk, compiled=True)
    if kind == "error":
        assert result.startswith(f"{path}: ") and "\n" not in result
        return
    tables = result
    assert list(tables) == list(TABLES)
    for name in TABLES:
        assert list(tables[name].columns) == list(SCHEMAS[name].columns)
    assert all(w.startswith(f"{path}: ") and "\n" not in w for w in tables.warnings)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(0, len(VALID)), chunk=CHUNKS)
def test_any_truncation(scratch, cut, chunk):
    check(scratch, VALID[:cut], chunk)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    edits=st.lists(
        st.tuples(st.integers(0, len(VALID) - 1), st.binary(min_size=0, max_size=3), st.integers(0, 3)),
        min_size=1,
        max_size=4,
    ),
    cut=st.integers(0, len(VALID)),
    chunk=CHUNKS,
)
def test_any_mutation(scratch, edits, cut, chunk):
    data = bytearray(VALID)
    for at, replacement, removed in edits:  # replace `removed` bytes at `at` with `replacement`
        data[at : at + removed] = replacement
    check(scratch, bytes(data[:cut]) if cut < len(data) else bytes(data), chunk)
