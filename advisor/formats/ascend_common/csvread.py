"""Reading the profiler's CSV and JSON exports (BOM, CRLF, padded and quoted cells, "N/A").

Two ways to read a CSV: `read_csv` walks rows in Python (small files such as step_trace_time.csv);
`read_columns` reads only the wanted columns of a possibly huge file with pyarrow and converts them
vectorised. Columns are found by name (`header_key`), never by position or profiler version, and the
unit written in the header ("(us)", "(ms)", "(MB)", …) decides the scaling. JSON records go through
the same conversions (`frame_from_records`), so a cell means the same in either format.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from ...errors import InputError, byte_size
from ...model import RankInfo
from ..sanity import drop_damaged_rows
from ..schema import conform
from .folder import OUTPUT_DIR, output_file

_MISSING = {"", "n/a", "na", "nan", "none", "null", "-", "--"}


def read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    """Header and rows with every cell stripped; blank lines skipped. InputError names the file."""
    try:
        with path.open("r", encoding="utf-8-sig", newline="") as fh:
            rows = [[cell.strip() for cell in row] for row in csv.reader(fh)]
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except csv.Error as exc:
        raise InputError(f"{path}: malformed CSV ({exc})") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    rows = [row for row in rows if any(row)]
    if not rows:
        raise InputError(f"{path}: empty file (no header)")
    return rows[0], rows[1:]


def normalise_header(name: str) -> str:
    """'Communication(Not Overlapped) (us)' -> 'communication(not overlapped)'."""
    name = re.sub(r"\s+", " ", name.strip().lower())
    return re.sub(r"\s*\((us|μs|µs)\)$", "", name)


def parse_number(value: str, path: Path, row: int, column: str) -> float:
    """A float from a cell; missing markers give NaN, anything else unreadable is an InputError."""
    text = value.strip()
    if text.lower() in _MISSING:
        return math.nan
    try:
        return float(text)
    except ValueError:
        raise InputError(f"{path}: row {row}, column {column!r}: not a number: {text[:40]!r}") from None


def input_error(path: Path, detail: str) -> InputError:
    """An InputError of one line: `detail` quotes keys and cells of the file, which may hold newlines."""
    detail = " ".join(detail.split())
    return InputError(f"{path}: {detail[:300]}{'…' if len(detail) > 300 else ''}")


# --- Column specs --------------------------------------------------------------------------------

# Units a header may end with; any other parenthesised tail, e.g. "Communication(Not Overlapped)",
# belongs to the name.
_TIME_US = {"us": 1.0, "ns": 1e-3, "ms": 1e3, "s": 1e6}
_TS_DIGITS = {"ns": 0, "us": 3, "ms": 6, "s": 9}  # decimal digits from the unit down to ns
# Memory sizes are binary (the allocator reports MiB and calls them MB); communication sizes are
# decimal (HCCL: MB = 10^6 B, bandwidth GB/s = MB/ms).
_MEM_BYTES = {"b": 1.0, "kb": 2.0**10, "mb": 2.0**20, "gb": 2.0**30}
_COMM_BYTES = {"b": 1.0, "kb": 1e3, "mb": 1e6, "gb": 1e9}
_UNIT_TABLES = {"us": _TIME_US, "ts": _TS_DIGITS, "mem_bytes": _MEM_BYTES, "comm_bytes": _COMM_BYTES}
_KNOWN_UNITS = {*_TIME_US, *_MEM_BYTES, "%", "gb/s"}
_HEADER_UNIT = re.compile(r"^(.*?)\s*\(\s*([^()]*?)\s*\)\s*$")

KINDS = ("text", "float", "int", "step", "us", "ts", "mem_bytes", "comm_bytes")


def header_key(name: str) -> tuple[str, str]:
    """('start_time', 'us') for 'Start Time(us)'; spaces, case and underscores do not matter."""
    text = name.strip().lstrip("\ufeff").strip().strip('"').strip()
    unit = ""
    match = _HEADER_UNIT.match(text)
    if match:
        candidate = match.group(2).lower().replace("μ", "u").replace("µ", "u")
        candidate = {"byte": "b", "bytes": "b"}.get(candidate, candidate)
        if candidate in _KNOWN_UNITS:
            text, unit = match.group(1), candidate
    return re.sub(r"[^0-9a-z]+", "_", text.lower()).strip("_"), unit


@dataclass(frozen=True)
class Column:
    """A table column and the header names it may be written under (the first one found wins).

    `kind` is one of KINDS: us = a duration converted to µs, ts = an absolute time converted to
    integer ns, mem_bytes / comm_bytes = a size converted to bytes (binary / decimal multiples),
    step = 'step50', '50' or 'step' (no number: <NA>). The unit comes from the header found; when
    that header has none, from the first name here.
    """

    target: str
    kind: str
    names: tuple[str, ...]
    required: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown column kind {self.kind!r}")

    @property
    def label(self) -> str:
        return self.names[0]


class _BadValue(ValueError):
    """A cell that cannot be converted; `index` is its position in the converted array."""

    def __init__(self, index: int, value: object, expected: str) -> None:
        super().__init__(index, value, expected)
        self.index, self.value, self.expected = index, value, expected

    def describe(self, column: str) -> str:
        return f"column {column!r}: not {self.expected}: {str(self.value)[:40]!r}"


def _unit_factor(column: Column, unit: str) -> float | int:
    """The scale (or ns digits for ts) for `unit`, falling back to the unit of the column's first name."""
    table = _UNIT_TABLES.get(column.kind)
    if table is None:
        return 1.0
    unit = unit or header_key(column.label)[1] or ("us" if column.kind in ("us", "ts") else "b")
    if unit not in table:
        raise ValueError(f"unit {unit!r} is not a {column.kind} unit")
    return table[unit]


# --- Vectorised conversions (pyarrow string arrays in, typed arrays out) ----------------------------

_STRIP = ' \t\r\n"'  # trailing TABs shield numbers from spreadsheets; shapes come as """1,2"""
_MISSING_SET = pa.array(sorted(_MISSING))
_NULL_TEXT = pa.scalar(None, pa.string())
_DECIMAL = r"^(?P<sign>[+-]?)(?P<whole>\d+)(?:\.(?P<frac>\d*))?$"


def clean_text(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Cells stripped of blanks and wrapping quotes; missing markers ('N/A', '', …) become null."""
    # ASCII kernels are safe on UTF-8 (no multi-byte sequence contains an ASCII byte) and faster.
    values = pc.ascii_trim(values, characters=_STRIP)
    return pc.if_else(pc.is_in(pc.ascii_lower(values), value_set=_MISSING_SET), _NULL_TEXT, values)


def _first_bad(values: pa.ChunkedArray, parse: Callable[[str], object], expected: str) -> list:
    """Python conversion of every value: the slow path, taken only when the vectorised one failed."""
    out = []
    for index, value in enumerate(values.to_pylist()):
        try:
            out.append(None if value is None else parse(value))
        except (ValueError, ArithmeticError):
            raise _BadValue(index, value, expected) from None
    return out


def _to_float(values: pa.ChunkedArray) -> pa.ChunkedArray:
    try:
        return pc.cast(values, pa.float64())
    except pa.ArrowInvalid:
        return pa.chunked_array([pa.array(_first_bad(values, float, "a number"), pa.float64())])


def _to_int(values: pa.ChunkedArray) -> pa.ChunkedArray:
    try:
        return pc.cast(values, pa.int64())
    except pa.ArrowInvalid:
        pass

    def whole(text: str) -> int:
        try:
            number: float = int(text)
        except ValueError:
            number = float(text)  # '12.0'
        if not float(number).is_integer() or abs(number) >= 2**63:
            raise ValueError(text)
        return int(number)

    return pa.chunked_array([pa.array(_first_bad(values, whole, "an integer"), pa.int64())])


def _to_step(values: pa.ChunkedArray) -> pa.ChunkedArray:
    digits = pc.utf8_trim_whitespace(pc.replace_substring_regex(values, pattern="^(?i)step", replacement=""))
    return _to_int(pc.if_else(pc.equal(digits, ""), _NULL_TEXT, digits))


def _ns_exact(text: str, digits: int) -> int:
    """Integer ns of a decimal time string; digits below 1 ns are cut off."""
    try:
        value = Decimal(text).scaleb(digits)
    except InvalidOperation:
        raise ValueError(text) from None
    if not value.is_finite() or abs(value) >= 2**63:
        raise ValueError(text)
    return int(value)


def _to_ns(values: pa.ChunkedArray, digits: int) -> pa.ChunkedArray:
    """Exact integer ns from decimal text: '1736408883704643.212' µs -> 1736408883704643212.

    Split at the dot instead of going through float64, which at epoch scale (~1.7e15 µs) resolves
    only 0.25 µs. Digits below 1 ns are cut off.
    """
    parts = pc.extract_regex(values, pattern=_DECIMAL)
    whole = pc.struct_field(parts, "whole")
    frac = pc.struct_field(parts, "frac")
    unmatched = pc.and_(pc.is_valid(values), pc.is_null(whole))
    if not pc.any(unmatched).as_py():  # else exponents or garbage: the exact slow path decides
        try:
            ns = pc.multiply_checked(pc.cast(whole, pa.int64()), 10**digits)
            if digits:
                padded = pc.utf8_slice_codeunits(pc.utf8_rpad(frac, width=digits, padding="0"), 0, digits)
                ns = pc.add_checked(ns, pc.cast(padded, pa.int64()))
            return pc.if_else(pc.equal(pc.struct_field(parts, "sign"), "-"), pc.negate_checked(ns), ns)
        except pa.ArrowInvalid:
            pass  # int64 overflow: found and reported by the slow path
    exact = _first_bad(values, lambda text: _ns_exact(text, digits), "a time")
    return pa.chunked_array([pa.array(exact, pa.int64())])


def _convert(values: pa.ChunkedArray, column: Column, unit: str = "") -> pa.ChunkedArray:
    """Clean and convert raw string cells for `column` (_BadValue for a cell that does not fit)."""
    values = clean_text(values)
    kind = column.kind
    if kind == "text":
        return values
    if kind == "int":
        return _to_int(values)
    if kind == "step":
        return _to_step(values)
    if kind == "ts":
        return _to_ns(values, int(_unit_factor(column, unit)))
    numbers = _to_float(values)
    factor = _unit_factor(column, unit)
    if kind == "comm_bytes":  # HCCL counts whole bytes; its MB text carries float noise (28.647232000000002)
        return pc.round(pc.multiply(numbers, factor))
    return numbers if factor == 1 else pc.multiply(numbers, factor)


_PANDAS_TYPES = {pa.int64(): pd.Int64Dtype(), pa.string(): pd.StringDtype()}


def _series(values: pa.ChunkedArray) -> pd.Series:
    """float64 with NaN, Int64 and string with <NA> (never via float: ns timestamps exceed 2^53)."""
    return values.to_pandas(types_mapper=_PANDAS_TYPES.get)


# --- CSV ------------------------------------------------------------------------------------------

_HEADER_BYTES = 1 << 20
_BLOCK_BYTES = 8 << 20  # a row (multi-line call stacks included) must fit in one pyarrow block


def _header(path: Path) -> tuple[list[str], int]:
    """The first non-blank row and the number of physical lines up to and including it."""
    try:
        with path.open("rb") as fh:
            head = fh.read(_HEADER_BYTES)
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    if len(head) == _HEADER_BYTES:
        cut = max(head.rfind(b"\n"), head.rfind(b"\r"))
        if cut < 0:
            raise InputError(f"{path}: no line break in the first {_HEADER_BYTES >> 20} MiB (not a CSV)")
        head = head[: cut + 1]
    try:
        reader = csv.reader(io.StringIO(head.decode("utf-8-sig"), newline=""))
        for row in reader:
            if any(cell.strip() for cell in row):
                return row, reader.line_num
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except csv.Error as exc:
        raise InputError(f"{path}: malformed CSV header ({exc})") from None
    return [], 0


def _locate(path: Path, header: list[str], columns: Sequence[Column]) -> dict[str, tuple[int, str]]:
    """target -> (header position, unit) for the columns found; InputError for a missing required one."""
    keys = [header_key(cell) for cell in header]
    first: dict[str, int] = {}
    for position, (key, _) in enumerate(keys):
        first.setdefault(key, position)
    found = {}
    for column in columns:
        position = next((first[k] for k in (header_key(n)[0] for n in column.names) if k in first), None)
        if position is not None:
            found[column.target] = (position, keys[position][1])
        elif column.required:
            shown = ", ".join(cell.strip() for cell in header[:12]) + (", …" if len(header) > 12 else "")
            raise input_error(path, f"no {column.label!r} column (found: {shown or 'no header'})")
    return found


def _read_fast(path: Path, width: int, skip: int, positions: list[int]) -> list[pa.ChunkedArray]:
    names = [f"c{i}" for i in range(width)]
    wanted = [names[p] for p in positions]
    table = pa_csv.read_csv(
        path,
        read_options=pa_csv.ReadOptions(column_names=names, skip_rows=skip, block_size=_BLOCK_BYTES),
        parse_options=pa_csv.ParseOptions(newlines_in_values=True),
        convert_options=pa_csv.ConvertOptions(
            include_columns=wanted,
            column_types=dict.fromkeys(wanted, pa.string()),
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    return [table.column(name) for name in wanted]


def _read_tolerant(path: Path, width: int, skip: int, positions: list[int]) -> list[pa.ChunkedArray]:
    """The csv module's reading: pads short rows, accepts extra cells only when they are empty."""
    cells: list[list[str]] = [[] for _ in positions]
    try:
        with path.open("r", encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh)
            for row in reader:
                if reader.line_num <= skip or not any(cell.strip() for cell in row):
                    continue
                if len(row) > width and any(cell.strip() for cell in row[width:]):
                    raise InputError(
                        f"{path}: line {reader.line_num}: {len(row)} cells, the header has {width}"
                    )
                for out, position in zip(cells, positions, strict=True):
                    out.append(row[position] if position < len(row) else "")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except csv.Error as exc:
        raise InputError(f"{path}: malformed CSV ({exc})") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    return [pa.chunked_array([pa.array(values, pa.string())]) for values in cells]


def read_columns(path: Path, columns: Sequence[Column]) -> pd.DataFrame:
    """The `columns` found in the CSV at `path`, converted; absent optional columns are left out.

    An empty file, or a header without rows, gives an empty frame (unless a required column is
    missing). InputError names the file and the column, row or line at fault.
    """
    header, skip = _header(path)
    if not header:
        return pd.DataFrame({c.target: pd.Series([], dtype="string") for c in columns if c.required})
    found = _locate(path, header, columns)
    positions = sorted({position for position, _ in found.values()})  # one header may fill two columns
    try:
        raw = _read_fast(path, len(header), skip, positions)
    except (pa.ArrowException, UnicodeDecodeError):
        raw = _read_tolerant(path, len(header), skip, positions)  # odd rows: Python's slower reader
    data = {}
    for column in columns:
        if column.target not in found:
            continue
        position, unit = found[column.target]
        name = header[position].strip()
        try:
            data[column.target] = _series(_convert(raw[positions.index(position)], column, unit))
        except _BadValue as bad:  # the header counts as row 1, as a spreadsheet shows it
            raise input_error(path, f"row {bad.index + 2}, {bad.describe(name)}") from None
        except ValueError as exc:
            raise input_error(path, f"column {name!r}: {exc}") from None
    return pd.DataFrame(data)


def read_table(path: Path, columns: Sequence[Column], table: str) -> pd.DataFrame:
    """`read_columns` as `finish_table` returns it."""
    return finish_table(read_columns(path, columns), path, columns, table)


def finish_table(frame: pd.DataFrame, path: Path, columns: Sequence[Column], table: str) -> pd.DataFrame:
    """`frame` read from `path` conformed to the schema of `table`, without damaged rows (sanity.py);
    attrs["source"] is the file name."""
    out = conform(frame, table)
    out.attrs["source"] = path.name
    return drop_damaged_rows(out, table, path, labels(columns))


def labels(columns: Sequence[Column]) -> dict[str, str]:
    """Table column -> the header it is usually written under, to name it in warnings."""
    return {column.target: column.label for column in columns}


# --- JSON -----------------------------------------------------------------------------------------

# JSON read whole (communication*.json) costs ~10x its size in Python objects; the reference tool
# refuses JSON over 10 GB.
MAX_JSON_BYTES = 1 << 30


def read_json(path: Path, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """Parsed JSON with every float kept as its text (exact ns timestamps); None for an empty file.
    The file is read whole: one over `max_bytes` is an InputError, not read."""
    try:
        with path.open("rb") as fh:
            raw = fh.read(max_bytes + 1)
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    if len(raw) > max_bytes:
        raise InputError(f"{path}: too large to read whole (over {byte_size(max_bytes)})")
    try:
        text = raw.decode("utf-8-sig")
        del raw  # the text and the objects built from it are enough to hold at once
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    if not text.strip():
        return None
    try:
        return json.loads(text, parse_float=str)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: invalid JSON at line {exc.lineno}, column {exc.colno}") from None
    except (ValueError, RecursionError) as exc:
        raise InputError(f"{path}: unreadable JSON ({str(exc)[:80]})") from None


def expect_dict(value: Any, path: Path, where: str) -> dict:
    """`value` when it is a JSON object; else an InputError naming the place in the file."""
    if not isinstance(value, dict):
        raise input_error(path, f"{where}: expected an object, found {type(value).__name__}")
    return value


def _cell(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)  # numbers; anything else fails to convert


def frame_from_records(
    path: Path,
    records: Sequence[Mapping[str, Any]],
    columns: Sequence[Column],
    where: Sequence[str],
    fixed: Mapping[str, list[Any]] | None = None,
) -> pd.DataFrame:
    """One row per JSON record, its fields matched to `columns` like CSV headers (unit included).

    `where[i]` names record i in errors; `fixed` adds columns that are already Python values.
    """
    by_key = {header_key(name)[0]: column.target for column in columns for name in column.names}
    targets: dict[str, str | None] = {}  # field name -> target, resolved once per name
    fields: dict[str, dict[str, str]] = {}  # target -> {unit: field name as written}
    cells: dict[str, list[str | None]] = {}
    for row, record in enumerate(records):
        for field, value in record.items():
            if field not in targets:
                key, unit = header_key(str(field))
                targets[field] = by_key.get(key)
                if targets[field] is not None:
                    fields.setdefault(targets[field], {}).setdefault(unit, str(field))
            target = targets[field]
            if target is None:
                continue
            if target not in cells:
                cells[target] = [None] * len(records)
            cells[target][row] = _cell(value)
    data: dict[str, Any] = dict(fixed or {})
    for column in columns:
        if column.target not in cells:
            continue
        (unit, field), *others = fields[column.target].items()
        if others:
            raise input_error(path, f"{field!r} and {others[0][1]!r} give one value in different units")
        raw = pa.chunked_array([pa.array(cells[column.target], pa.string())])
        try:
            data[column.target] = _series(_convert(raw, column, unit))
        except _BadValue as bad:
            raise input_error(path, f"{where[bad.index]}: {bad.describe(field)}") from None
        except ValueError as exc:
            raise input_error(path, f"{field!r}: {exc}") from None
    return pd.DataFrame(data, index=pd.RangeIndex(len(records)))


# --- Rank files -----------------------------------------------------------------------------------


def rank_file(rank: RankInfo, name: str, written_when: str) -> Path:
    """ASCEND_PROFILER_OUTPUT/`name` of the rank; InputError saying how the profile must be collected."""
    path = output_file(rank, name)
    if path is None:
        raise InputError(f"{rank.path}: no {name} in {OUTPUT_DIR} (written when {written_when})")
    return path
