"""Turning per-chunk Python lists of raw JSON values into compact typed arrays.

Each converter has a vectorised path for well-formed values and a per-value path for the rest, so a
few odd events never fail a chunk: an unusable value becomes missing (<NA>/NaN), and an unusable
timestamp drops its row (the caller gets a validity mask).
"""

from __future__ import annotations

import math
import mmap
import os
from decimal import Decimal, InvalidOperation
from typing import Any

import numpy as np
import pyarrow as pa

# Column kinds: which converter makes a column (and the form the C scanner returns it in).
STR, NS, FLOAT, INT, ID, STACK = "str", "ns", "float", "int", "id", "stack"
_INT64_MAX = 2**63 - 1
_COMMA, _DOT, _ZERO = ord(","), ord("."), ord("0")
# Digit weights of a timestamp written with 3 decimals, most significant first (at most 19 digits).
_POW10 = 10 ** np.arange(18, -1, -1, dtype=np.int64)
# malloc rather than pyarrow's default mimalloc: the builders' growing buffers are freed back to the
# system instead of staying reserved (on a 2 GB trace: ~140 MB less peak RSS).
_POOL = pa.system_memory_pool()


def ns_array(values: list[Any]) -> tuple[np.ndarray, np.ndarray | None]:
    """Exact int64 ns from µs timestamps, and a validity mask (None when every value is valid).

    Strings such as "1736408883704643.212" are read digit by digit (a float64 would round them to
    0.25 µs); numbers are taken as written (a float's shortest repr).
    """
    fixed = _ns_fixed_width(values)
    if fixed is not None:
        return fixed, None
    out, missing = per_value(values, ns_value)
    return out, ~missing if missing.any() else None


def _ns_fixed_width(values: list[Any]) -> np.ndarray | None:
    """The common case in one vectorised pass: all strings of one width with exactly 3 decimals."""
    n = len(values)
    if not n:
        return np.zeros(0, np.int64)
    try:
        joined = ",".join(values) + ","
    except TypeError:  # numbers or missing values among them
        return None
    width, rest = divmod(len(joined), n)
    if rest or not 6 <= width <= 21 or not joined.isascii():
        return None
    grid = np.frombuffer(joined.encode("ascii"), np.uint8).reshape(n, width)
    dot = width - 5
    # A separator in every row's last column proves that every value has exactly this width.
    if not ((grid[:, -1] == _COMMA).all() and (grid[:, dot] == _DOT).all()):
        return None
    digits = np.delete(grid[:, :-1], dot, axis=1) - np.uint8(_ZERO)  # wraps below '0' to > 9
    if (digits > 9).any() or (digits.shape[1] == 19 and (digits[:, 0] > 8).any()):
        return None
    return digits.astype(np.int64) @ _POW10[-digits.shape[1] :]


def ns_value(value: Any) -> int | None:
    """One timestamp in µs (string or number) as int ns, truncated below 1 ns; None when unusable."""
    if type(value) is str:
        text = value.strip()
    elif type(value) is int:
        text = str(value)
    elif type(value) is float and math.isfinite(value):
        text = repr(value)
    else:
        return None
    try:
        ns = int(Decimal(text).scaleb(3))
    except (InvalidOperation, ValueError, OverflowError):
        return None
    return ns if -_INT64_MAX <= ns <= _INT64_MAX else None


def float_array(values: list[Any]) -> np.ndarray:
    """float64; missing or non-numeric values become NaN."""
    try:
        out = np.array(values, dtype=np.float64)
        if out.ndim == 1:
            return out
    except (TypeError, ValueError, OverflowError):
        pass
    return np.array([_float(v) for v in values], dtype=np.float64)


def _float(value: Any) -> float:
    if type(value) in (int, float):
        return float(value)
    if type(value) is str:
        try:
            return float(value)
        except ValueError:
            pass
    return math.nan


def int_array(values: list[Any]) -> tuple[np.ndarray, np.ndarray | None]:
    """int64 values and a missing mask (None when nothing is missing); non-integers are missing."""
    try:
        out = np.array(values, dtype=np.int64)  # (floats are truncated: ids are never fractional)
        if out.ndim == 1:
            return out, None
    except (TypeError, ValueError, OverflowError):
        pass
    try:  # the usual reason: some values are missing (e.g. HCCL ops have no ranks)
        objects = np.empty(len(values), dtype=object)
        objects[:] = values
        missing = np.equal(objects, None)
        objects[missing] = 0
        return objects.astype(np.int64), missing if missing.any() else None
    except (TypeError, ValueError, OverflowError):
        pass
    out, missing = per_value(values, _int)
    return out, missing if missing.any() else None


def per_value(values: list[Any], convert: Any) -> tuple[np.ndarray, np.ndarray]:
    """The slow path: int64 values converted one by one, and where `convert` gave None."""
    out = np.zeros(len(values), np.int64)
    missing = np.zeros(len(values), np.bool_)
    for i, value in enumerate(values):
        number = convert(value)
        if number is None:
            missing[i] = True
        else:
            out[i] = number
    return out, missing


def _int(value: Any) -> int | None:
    integral_float = type(value) is float and value.is_integer()
    if integral_float or (type(value) is str and value.strip().lstrip("-").isdigit()):
        value = int(value)
    if type(value) is int and -_INT64_MAX <= value <= _INT64_MAX:
        return value
    return None


def string_array(values: list[Any]) -> pa.Array:
    """Arrow large_string (what pandas' "string" dtype holds); numbers become their text."""
    try:
        return pa.array(values, type=pa.large_string(), memory_pool=_POOL)
    except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeEncodeError):
        return pa.array([_text(v) for v in values], type=pa.large_string(), memory_pool=_POOL)


def stack_array(values: list[Any]) -> pa.Array:
    """Call stacks with frames ending ";\\n" (the trace writes ";\\r\\n", the db export ";\\n")."""
    seen: dict[str, str] = {}  # a few distinct stacks repeat across steps: replace each once
    return string_array(
        [
            (seen.get(v) or seen.setdefault(v, v.replace("\r\n", "\n"))) if type(v) is str else None
            for v in values
        ]
    )


def id_array(values: list[Any]) -> pa.Array:
    """Flow ids, written as numbers or strings, as strings (so that "936" matches 936)."""
    return string_array([v if type(v) is str else str(v) if type(v) is int else None for v in values])


def _text(value: Any) -> str | None:
    if type(value) is str:
        return value.encode("utf-8", "replace").decode("utf-8")  # lone surrogates from \ud800 escapes
    if type(value) in (int, float):
        return str(value)
    return None


class Scanned:
    """One piece as the C scanner returns it: its number of events, per table the raw buffers of its
    columns (None without rows), and (pid, tid, name) of its thread_name events (trace_view only)."""

    __slots__ = ("count", "tables", "threads")

    def __init__(
        self, count: int, tables: tuple[Any, ...], threads: list[tuple[Any, Any, str]] | None = None
    ) -> None:
        self.count, self.tables, self.threads = count, tables, threads or []

    def __len__(self) -> int:
        return self.count


def scanned_array(kind: str, value: Any) -> Any:
    """A scanned column in the form the converters above give (see `column_result` in _tracescan.c):
    NS int64, FLOAT float64, INT (int64 values, missing mask or None), text as Arrow large_string."""
    if kind == NS:
        return np.frombuffer(value, np.int64)
    if kind == FLOAT:
        return np.frombuffer(value, np.float64)
    if kind == INT:
        values, missing = value
        return np.frombuffer(values, np.int64), None if missing is None else np.frombuffer(missing, np.bool_)
    offsets, text, validity, nulls = value
    bitmap = None if validity is None else pa.py_buffer(validity)
    buffers = [bitmap, pa.py_buffer(offsets), pa.py_buffer(text)]
    return pa.Array.from_buffers(pa.large_string(), len(offsets) // 8 - 1, buffers, null_count=nulls)


# ---- columns handed from a worker process to its parent through a shared file ----------------
# A worker reading a span of a trace writes its chunks' columns into a file in shared memory as it
# goes, and sends only their layout: the parent maps the file and uses the bytes in place. Pickling
# them instead would copy each column four times (worker, pipe, parent's bytes, parent's arrays), at
# about a second of CPU and ~2x its size in peak memory per GB of tables.
_ALIGN = 64  # numpy and Arrow read aligned buffers fastest


class ColumnSpill:
    """Writes column values (the forms above: numpy arrays, (values, mask) tuples, Arrow arrays,
    None) into the file `path`, returning for each a layout that `ColumnMap.load` rebuilds it from."""

    def __init__(self, path: str) -> None:
        self.fh = open(path, "r+b")  # noqa: SIM115 - closed by `close`, after the span's last chunk
        self.size = 0

    def close(self) -> None:
        self.fh.close()

    def dump(self, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, tuple):
            return tuple(self.dump(item) for item in value)
        if isinstance(value, np.ndarray):
            return ("numpy", value.dtype.str, len(value), self._write(value))
        buffers = [None if b is None else self._write(b) for b in value.buffers()]
        return ("arrow", value.type, len(value), value.null_count, value.offset, buffers)

    def _write(self, data: Any) -> tuple[int, int]:
        with memoryview(data) as view, view.cast("B") as raw:
            at = -self.size % _ALIGN + self.size
            self.fh.seek(at)
            self.fh.write(raw)
            self.size = at + len(raw)
            return at, len(raw)


class ColumnMap:
    """The file a `ColumnSpill` wrote, mapped read-only: columns rebuilt from it share its pages."""

    def __init__(self, path: str) -> None:
        with open(path, "rb") as fh:
            empty = os.fstat(fh.fileno()).st_size == 0  # a span without rows: nothing to map
            self.view = memoryview(b"" if empty else mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ))

    def load(self, layout: Any) -> Any:
        if layout is None:
            return None
        if layout[0] == "numpy":
            _, dtype, length, (at, size) = layout
            return np.frombuffer(self.view[at : at + size], np.dtype(dtype), length)
        if layout[0] == "arrow":
            _, kind, length, nulls, offset, buffers = layout
            data = [None if b is None else pa.py_buffer(self.view[b[0] : b[0] + b[1]]) for b in buffers]
            return pa.Array.from_buffers(kind, length, data, null_count=nulls, offset=offset)
        return tuple(self.load(item) for item in layout)
