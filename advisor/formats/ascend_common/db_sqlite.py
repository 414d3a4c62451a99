"""Read-only access to the SQLite files of a db export (`ascend_pytorch_profiler_{N}.db`, `analysis.db`).

Inputs are never changed: no write access, no permission change, no file created. A database whose
changes all sit in the main file is opened `immutable=1` (SQLite then creates no -shm/-wal file,
which `mode=ro` alone may do for a WAL database); one with a non-empty -wal or -journal beside it
is copied, sidecar included, into a temporary folder and read there. Query results are memoised per
file identity (path, size, mtime_ns, sidecar sizes), so the loaders of one rank read each db once.

Rows are typed here, 65536 at a time, as pd.read_sql_query types a whole result (which holds every
row as Python objects first: ~70 bytes a value, the peak memory of reading a big db); interned
strings are taken from one Arrow array of STRING_IDS instead of a lookup per row and cell in SQL.
"""

from __future__ import annotations

import functools
import json
import shutil
import sqlite3
import stat
import tempfile
import weakref
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa

from ...errors import InputError
from ...model import RankInfo
from .csvread import clean_text
from .folder import DB_FILE, OUTPUT_DIR

T = TypeVar("T")

try:  # how pandas' own SQL reader makes its object columns: private, in pandas 2 and 3
    from pandas._libs.lib import to_object_array_tuples
except ImportError:  # a pandas without it: numpy's way, 2.4x slower

    def to_object_array_tuples(rows: list[tuple[Any, ...]]) -> np.ndarray:
        table = np.empty((len(rows), len(rows[0])), dtype=object)
        table[:] = rows
        return table


_SIDECARS = ("-wal", "-journal")  # pending changes that an immutable open would not see


def _sidecar_sizes(path: Path) -> tuple[int, ...]:
    sizes = []
    for suffix in _SIDECARS:
        try:
            sizes.append(Path(f"{path}{suffix}").stat().st_size)
        except OSError:
            sizes.append(0)
    return tuple(sizes)


@functools.lru_cache(maxsize=8)
def _file_cache(path: str, size: int, mtime_ns: int, sidecars: tuple[int, ...]) -> dict[str, Any]:
    """A fresh memo per file identity: a rewritten file gets a new one, old ones age out of the LRU."""
    return {}


class _PrivateCopy:
    """A db and its sidecars copied to a temporary folder, removed when this object is collected
    (it lives in the file's memo, so as long as the memo)."""

    def __init__(self, source: Path) -> None:
        folder = tempfile.mkdtemp(prefix="advisor-db-")
        weakref.finalize(self, shutil.rmtree, folder, ignore_errors=True)
        self.path = Path(folder) / source.name
        for suffix in ("", *_SIDECARS):
            if Path(f"{source}{suffix}").exists():
                shutil.copyfile(f"{source}{suffix}", f"{self.path}{suffix}")


class SqliteFile:
    """One SQLite file, opened read-only for each query; layout and query results memoised."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            info = path.stat()
        except FileNotFoundError:
            raise InputError(f"{path}: no such file") from None
        except OSError as exc:
            raise InputError(f"{path}: cannot read ({exc.strerror})") from None
        if not stat.S_ISREG(info.st_mode):
            raise InputError(f"{path}: not a file")
        self._memo = _file_cache(str(path), info.st_size, info.st_mtime_ns, _sidecar_sizes(path))

    def _connect(self) -> sqlite3.Connection:
        if not any(_sidecar_sizes(self.path)):
            return sqlite3.connect(f"{self.path.absolute().as_uri()}?mode=ro&immutable=1", uri=True)
        if "copy" not in self._memo:
            self._memo["copy"] = _PrivateCopy(self.path)
        return sqlite3.connect(self._memo["copy"].path)  # ours: SQLite may replay the journal there

    def read(self, sql: str, params: tuple[Any, ...] = ()) -> pd.DataFrame:
        """The rows of `sql` with nullable dtypes (Int64 keeps ns exact next to NULLs), as
        pd.read_sql_query(dtype_backend="numpy_nullable") types them, read again on every call: for
        what the caller derives a table from and memoises itself (`memoised`)."""
        try:
            conn = self._connect()
            try:
                cursor = conn.execute(sql, params)
                names = [column[0] for column in cursor.description]
                columns = _typed_columns(cursor, len(names))
                if columns is None or len(set(names)) < len(names):  # what the columns below do not type
                    return pd.read_sql_query(sql, conn, params=params, dtype_backend="numpy_nullable")
                return pd.DataFrame(dict(zip(names, columns, strict=True)), copy=False)
            finally:
                conn.close()
        except (sqlite3.Error, OSError, pd.errors.DatabaseError) as exc:
            raise InputError(f"{self.path}: cannot read the SQLite database ({_reason(exc)})") from None

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> pd.DataFrame:
        """`read`, memoised: a copy of the frame, which shares its memoised columns until either
        changes them (copy on write)."""
        return self.memoised(("query", sql, params), lambda: self.read(sql, params)).copy(deep=False)

    def memoised(self, key: Hashable, build: Callable[[], T]) -> T:
        """`build()` once per file identity: what the loaders of a rank derive from the file and share."""
        if key not in self._memo:
            self._memo[key] = build()
        return self._memo[key]

    def strings(self, ids: pd.Series, *, clean: bool = False) -> pd.Series:
        """The STRING_IDS values of interned string ids, <NA> for NULL or an id the table lacks (as SQL's
        lookup by id). With `clean`, as the text export's cells (`csvread.clean_text`). Looked up here,
        not per row in SQL: a column repeats few distinct strings, and Arrow takes them by position."""
        return pd.Series(pd.arrays.ArrowStringArray(self.string_array(ids, clean=clean)), index=ids.index)

    def string_array(self, ids: pd.Series, *, clean: bool = False) -> pa.Array:
        """`strings` as an Arrow array."""
        known, values = self.memoised(("strings", clean), lambda: self._string_table(clean))
        position, found = sorted_lookup(known, ids)
        return take_found(values, position, found)

    def interned(self, ids: pd.Series) -> np.ndarray:
        """Whether STRING_IDS has each id (False for NULL)."""
        known, _ = self.memoised(("strings", False), lambda: self._string_table(False))
        return sorted_lookup(known, ids)[1]

    def _string_table(self, clean: bool) -> tuple[np.ndarray, pa.Array]:
        """STRING_IDS as its ids sorted and their values (as text), the first row of an id kept."""
        self.require("STRING_IDS", "id", "value", why="interned strings are resolved through it")
        rows = self.read("SELECT id, CAST(value AS TEXT) AS value FROM STRING_IDS WHERE id IS NOT NULL")
        known, first = np.unique(rows["id"].to_numpy(dtype=np.int64), return_index=True)
        values = pa.array(rows["value"].array, type=pa.large_string()).take(pa.array(first))
        return known, clean_text(values) if clean else values

    def layout(self) -> dict[str, tuple[str, ...]]:
        """Table name -> column names, as the file declares them."""
        if "layout" not in self._memo:
            rows = self.query(
                "SELECT m.name AS tbl, p.name AS col FROM sqlite_master AS m "
                "JOIN pragma_table_info(m.name) AS p WHERE m.type = 'table' ORDER BY m.name, p.cid"
            )
            layout: dict[str, list[str]] = {}
            for table, column in zip(rows["tbl"], rows["col"], strict=True):
                layout.setdefault(str(table), []).append(str(column))
            self._memo["layout"] = {t: tuple(c) for t, c in layout.items()}
        return self._memo["layout"]

    def columns(self, table: str) -> tuple[str, ...] | None:
        """The columns of `table`, or None when the file has no such table."""
        return self.layout().get(table)

    def has(self, table: str, column: str | None = None) -> bool:
        columns = self.columns(table)
        return columns is not None and (column is None or column in columns)

    def require(self, table: str, *columns: str, why: str) -> None:
        """InputError naming the file when `table` or one of `columns` is missing; `why` says who needs it."""
        found = self.columns(table)
        if found is None:
            raise InputError(f"{self.path}: no {table} table ({why})")
        missing = [c for c in columns if c not in found]
        if missing:
            raise InputError(f"{self.path}: {table} has no column {', '.join(missing)} ({why})")

    def optional(self, table: str, column: str, expression: str | None = None) -> str:
        """`expression` (default: the column) when `table` has `column`, else NULL, aliased to `column`."""
        if self.has(table, column):
            return f"{expression or column} AS {column}"
        return f"NULL AS {column}"


# Rows fetched and typed at a time: the Python objects of a whole table (~70 bytes a value) would
# be the peak memory of reading a big db.
_CHUNK_ROWS = 1 << 16
# What pandas infers of a column's values -> how we type it; any other column goes through pandas.
_KINDS = {
    "integer": "integer",
    "floating": "real",
    "mixed-integer-float": "real",
    "string": "text",
    "empty": "null",
}
Part = tuple[str, Any, "np.ndarray | None"]  # kind, values (a row count for "null"), NULL mask if any


def _typed_columns(cursor: sqlite3.Cursor, width: int) -> list[Any] | None:
    """The cursor's rows as one typed array per column: Int64 where a column holds integers, Float64
    where it holds reals (with or without integers), strings where it holds text, all-<NA> strings
    where it holds only NULL, as pd.read_sql_query(dtype_backend="numpy_nullable") types them. None
    for what pandas types otherwise (other mixes, blobs) or no rows."""
    parts: list[list[Part]] = [[] for _ in range(width)]
    while rows := cursor.fetchmany(_CHUNK_ROWS):
        # pandas' reader makes its object columns so too: 2.4x faster than np.array(rows, dtype=object).
        for column, values in zip(parts, to_object_array_tuples(rows).T, strict=True):
            part = _typed_part(values)
            if part is None:
                return None
            column.append(part)
    columns = [_joined(column) for column in parts] if parts and parts[0] else [None]
    return None if any(column is None for column in columns) else columns


def _typed_part(values: np.ndarray) -> Part | None:
    """One column of a chunk of rows."""
    kind = _KINDS.get(pd.api.types.infer_dtype(values, skipna=True))
    if kind == "null":
        return kind, len(values), None
    if kind == "text":
        return kind, pa.array(values, type=pa.large_string(), from_pandas=True), None
    if kind == "integer":
        try:
            return kind, values.astype(np.int64), None
        except TypeError:  # NULLs among them (looked for only then: a column rarely has any)
            missing = pd.isna(values)
            return kind, np.where(missing, 0, values).astype(np.int64), missing
    if kind == "real":
        reals = values.astype(np.float64)  # NULL -> NaN, which SQLite never stores
        return kind, reals, np.isnan(reals)
    return None


def _joined(parts: list[Part]) -> Any:
    """A column's parts as one array (Int64, Float64 or strings), None for a mix pandas types otherwise."""
    kinds = {kind for kind, _, _ in parts} - {"null"}
    if kinds and kinds <= {"integer", "real"}:
        dtype = np.int64 if kinds == {"integer"} else np.float64
        values = [np.zeros(v, dtype) if kind == "null" else v for kind, v, _ in parts]
        missing = [
            np.ones(v, bool) if kind == "null" else np.zeros(len(v), bool) if m is None else m
            for kind, v, m in parts
        ]
        array = pd.arrays.IntegerArray if dtype is np.int64 else pd.arrays.FloatingArray
        return array(np.concatenate(values, dtype=dtype), np.concatenate(missing))
    if kinds <= {"text"}:
        chunks = [pa.nulls(v, pa.large_string()) if kind == "null" else v for kind, v, _ in parts]
        return pd.arrays.ArrowStringArray(pa.chunked_array(chunks, pa.large_string()))
    return None


def sorted_lookup(keys: np.ndarray, ids: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """The position of each id in the sorted distinct int64 `keys` (any valid one where it is absent),
    and whether it is there (False for NULL)."""
    missing = ids.isna().to_numpy(dtype=bool)
    if not len(keys) or missing.all():  # an all-NULL column comes as strings (as read_sql_query types it)
        return np.zeros(len(ids), dtype=np.int64), np.zeros(len(ids), dtype=bool)
    wanted = ids.to_numpy(dtype=np.int64, na_value=0)
    position = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
    return position, (keys[position] == wanted) & ~missing


def take_found(values: pa.Array, position: np.ndarray, found: np.ndarray) -> pa.Array:
    """Large strings `values` at `position`, null where not `found` (as `sorted_lookup` gives them)."""
    # Only the found rows are taken (a take with null indices costs ~8x one without, Arrow 26; taking
    # any value for the others would copy it into each), then spread out: zero-length nulls between.
    taken = values.take(pa.array(position[found]))
    valid = found.copy()
    valid[found] = taken.is_valid().to_numpy(zero_copy_only=False)
    if valid.all():
        return taken
    _, taken_offsets, data = taken.buffers()
    bounds = np.frombuffer(taken_offsets, dtype=np.int64)[taken.offset :][: len(taken) + 1]
    lengths = np.zeros(len(found), dtype=np.int64)
    lengths[found] = np.diff(bounds)
    # From where the taken values start in `data` (an array's first offset need not be 0).
    offsets = bounds[0] + np.concatenate([np.zeros(1, dtype=np.int64), np.cumsum(lengths)])
    buffers = [pa.py_buffer(np.packbits(valid, bitorder="little")), pa.py_buffer(offsets), data]
    return pa.Array.from_buffers(pa.large_string(), len(found), buffers)


def _reason(exc: BaseException) -> str:
    cause = exc.__cause__ or exc  # pandas wraps the sqlite3 error, whose message is the useful part
    text = str(cause).splitlines()[0] if str(cause) else type(cause).__name__
    return text[:200]


def _scalar(value: Any, *, integer: bool) -> int | str | None:
    if pd.isna(value):
        return None
    if integer:
        try:
            return int(value)
        except (TypeError, ValueError):
            return None
    return str(value)


def string_of(column: str) -> str:
    """SQL resolving an interned string id through STRING_IDS (portable: a scalar subquery)."""
    return f"(SELECT value FROM STRING_IDS WHERE id = {column})"


_META_KEYS = (
    "schema_version",
    "cann_version",
    "torch_npu_version",
    "device_type",
    "device_id",
    "rank_id",
    "host_name",
    "host_uid",
    "session_start_ns",
    "session_end_ns",
    "env_variables",
    "meta_data",
    "steps",
)


def read_db_metadata(db_path: Path) -> dict[str, Any]:
    """What a profiler db says about its run; every key present, None where the db records nothing.

    Keys: schema_version, cann_version, torch_npu_version (META_DATA rows whose name mentions them),
    device_type and device_id (NPU_INFO), rank_id (RANK_DEVICE_MAP), host_name and host_uid
    (HOST_INFO), session_start_ns and session_end_ns (SESSION_TIME_INFO), env_variables (META_DATA
    ENV_VARIABLES as a dict), meta_data (every META_DATA name -> value) and steps (the sorted step
    numbers of STEP_TIME, for discovery).
    """
    db = SqliteFile(Path(db_path))
    out: dict[str, Any] = dict.fromkeys(_META_KEYS)
    if db.has("META_DATA", "name") and db.has("META_DATA", "value"):
        meta = db.query("SELECT name, value FROM META_DATA")
        pairs = {
            str(n): (None if pd.isna(v) else str(v)) for n, v in zip(meta["name"], meta["value"], strict=True)
        }
        out["meta_data"] = pairs
        for name, value in pairs.items():
            key = name.lower()
            if key == "schema_version":
                out["schema_version"] = value
            elif "version" in key and "cann" in key:
                out["cann_version"] = out["cann_version"] or value
            elif "version" in key and "torch" in key:
                out["torch_npu_version"] = out["torch_npu_version"] or value
            elif key == "env_variables" and value:
                try:
                    env = json.loads(value)
                except ValueError:
                    env = None
                out["env_variables"] = env if isinstance(env, dict) else None
    first_rows = (
        ("NPU_INFO", ("name", "device_type"), ("id", "device_id")),
        ("RANK_DEVICE_MAP", ("rankId", "rank_id")),
        ("HOST_INFO", ("hostName", "host_name"), ("hostUid", "host_uid")),
        ("SESSION_TIME_INFO", ("startTimeNs", "session_start_ns"), ("endTimeNs", "session_end_ns")),
    )
    if db.has("STEP_TIME", "id"):
        ids = db.query("SELECT DISTINCT id FROM STEP_TIME WHERE id IS NOT NULL")["id"]
        out["steps"] = sorted(int(i) for i in ids)
    for table, *pairs in first_rows:
        present = [(column, key) for column, key in pairs if db.has(table, column)]
        if not present:
            continue
        frame = db.query(f"SELECT {', '.join(c for c, _ in present)} FROM {table} LIMIT 1")
        if len(frame):
            for column, key in present:
                out[key] = _scalar(frame[column].iloc[0], integer=key.endswith(("_id", "_ns")))
    return out


def profiler_db(rank: RankInfo) -> SqliteFile:
    """The rank's ascend_pytorch_profiler[_N].db."""
    names = sorted(
        f.split("/", 1)[1]
        for f in rank.files
        if f.startswith(f"{OUTPUT_DIR}/") and DB_FILE.match(f.split("/", 1)[1])
    )
    folder = rank.path / OUTPUT_DIR
    if not names:
        raise InputError(f"{folder}: no ascend_pytorch_profiler*.db")
    preferred = f"ascend_pytorch_profiler_{rank.rank}.db"
    if preferred not in names and len(names) > 1:
        raise InputError(f"{folder}: several profiler dbs ({', '.join(names)}) and none named {preferred}")
    return SqliteFile(folder / (preferred if preferred in names else names[0]))
