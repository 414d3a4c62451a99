"""Loaders for the db export: `ascend_pytorch_profiler_{N}.db` into the normalised tables.

Units of the profiler db: every startNs/endNs/timestamp ns (absolute, as the text export); TASK_PMU_INFO
`*_time` ns (the text kernel_details `(us)` columns are the same values / 1000); sizes bytes. Names
and types are interned in STRING_IDS: the ids are read and looked up in one array of its values
(`SqliteFile.strings`); joins over unindexed columns run in pandas.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ...errors import InputError
from ...model import RankInfo
from ..ascend_common.db_sqlite import SqliteFile, profiler_db, sorted_lookup, string_of, take_found
from ..ascend_common.folder import OUTPUT_DIR, output_file
from ..sanity import carry_losses, drop_damaged_rows
from ..schema import INT, PMU_RATIOS, SCHEMAS, conform
from ..tables import register_table

ANALYSIS_DB = "analysis.db"
# File name patterns each loader reads (the table cache keys on them); sidecars hold pending writes.
PROFILER_SOURCES = tuple(f"ascend_pytorch_profiler*.db{s}" for s in ("", "-wal", "-journal"))
ANALYSIS_SOURCES = tuple(f"{ANALYSIS_DB}{s}" for s in ("", "-wal", "-journal"))
OVERLAP_KINDS = {0: "Computing", 1: "Communication", 2: "Communication(Not Overlapped)", 3: "Free"}
# ENUM_API_TYPE name -> the level prefix of the text trace's CANN event names.
API_PREFIXES = {"acl": "AscendCL", "runtime": "Runtime", "node": "Node", "model": "Model", "hccl": "Hccl"}
# PYTORCH_API types -> the text trace's categories (queue events split by name below).
HOST_CATEGORIES = {"op": "cpu_op", "trace": "python_function"}
_KERNEL_TASK_TYPES = {"AI_CORE", "AI_VECTOR_CORE", "AI_CPU", "MIX_AIC", "MIX_AIV", "FFTS_PLUS"}
# Columns as the db writes them, for the warnings about damaged values.
_DURATION = "duration (endNs - startNs)"
_LABELS = {"dur_us": _DURATION, "duration_us": _DURATION, "start_ns": "startNs"}


def analysis_db(rank: RankInfo) -> SqliteFile:
    """The rank's analysis.db (communication and step-trace analysis)."""
    path = output_file(rank, ANALYSIS_DB)
    if path is None:
        raise InputError(f"{rank.path / OUTPUT_DIR}: no {ANALYSIS_DB}")
    return SqliteFile(path)


# ---------------------------------------------------------------------------------------------------
# Shared reads (memoised by SqliteFile.query, so every loader of a rank reuses them)


def _read(
    db: SqliteFile,
    table: str,
    columns: dict[str, tuple[str, bool]],
    *,
    clean: bool = False,
    leading: str = "",
) -> pd.DataFrame:
    """`table`'s `columns` (`out_name: (column, interned)`; an absent column reads as NULL), interned
    strings resolved (`clean`: cleaned as text cells), after the `leading` select items; memoised."""
    parts = [
        f'NULL AS "{out}"' if not db.has(table, column) else f'{column} AS "{out}"'
        for out, (column, _) in columns.items()
    ]
    sql = f"SELECT {leading}{', '.join(parts)} FROM {table}"
    interned = [out for out, (column, strings) in columns.items() if strings and db.has(table, column)]

    def build() -> pd.DataFrame:
        frame = db.read(sql)
        for out in interned:
            frame[out] = db.strings(frame[out], clean=clean)
        return frame

    return db.memoised(("read", sql, clean), build).copy(deep=False)


def _require_strings(db: SqliteFile, why: str) -> None:
    db.require("STRING_IDS", "id", "value", why=why)


def _tasks(db: SqliteFile, why: str) -> pd.DataFrame:
    db.require("TASK", "globalTaskId", "startNs", "endNs", why=why)
    _require_strings(db, why)
    columns = {
        "gid": ("globalTaskId", False),
        "start_ns": ("startNs", False),
        "end_ns": ("endNs", False),
        "stream_id": ("streamId", False),
        "task_id": ("taskId", False),
        "connection_id": ("connectionId", False),
        "raw_type": ("taskType", True),
    }
    return _read(db, "TASK", columns)


def _compute_info(db: SqliteFile, why: str, keep: list[str] | None = None) -> pd.DataFrame:
    """COMPUTE_TASK_INFO, its text cleaned as the text reader cleans kernel_details cells (blanks and
    wrapping quotes, as in '"32,3,224,224"', stripped; 'N/A' and other missing markers <NA>);
    `keep`: only these columns."""
    db.require("COMPUTE_TASK_INFO", "globalTaskId", "name", why=why)
    _require_strings(db, why)
    columns = {
        "gid": ("globalTaskId", False),
        "name": ("name", True),
        "op_type": ("opType", True),
        "accelerator_core": ("taskType", True),
        "op_state": ("opState", True),
        "block_dim": ("blockDim", False),
        "mix_block_dim": ("mixBlockDim", False),
        "input_shapes": ("inputShapes", True),
        "input_dtypes": ("inputDataTypes", True),
        "input_formats": ("inputFormats", True),
        "output_shapes": ("outputShapes", True),
        "output_dtypes": ("outputDataTypes", True),
        "output_formats": ("outputFormats", True),
    }
    frame = _read(db, "COMPUTE_TASK_INFO", columns, clean=True)
    return frame if keep is None else frame[keep]


def comm_op_frame(db: SqliteFile, why: str, *, optional: bool) -> pd.DataFrame:
    """COMMUNICATION_OP; with `optional`, a db without it (no collective ran) gives no rows."""
    if optional and not db.has("COMMUNICATION_OP"):
        return pd.DataFrame(columns=["name", "op_type", "group", "start_ns", "end_ns", "connection_id"])
    db.require("COMMUNICATION_OP", "opName", "startNs", "endNs", why=why)
    _require_strings(db, why)
    columns = {
        "name": ("opName", True),
        "op_type": ("opType", True),
        "group": ("groupName", True),
        "start_ns": ("startNs", False),
        "end_ns": ("endNs", False),
        "connection_id": ("connectionId", False),
    }
    return _read(db, "COMMUNICATION_OP", columns)


def _comm_task_ids(db: SqliteFile) -> pd.Series:
    if not db.has("COMMUNICATION_TASK_INFO", "globalTaskId"):
        return pd.Series([], dtype="Int64")
    return db.query("SELECT DISTINCT globalTaskId AS gid FROM COMMUNICATION_TASK_INFO")["gid"]


def _launch_times(db: SqliteFile) -> pd.Series:
    """Host start of the CANN API call that launched each connection id (empty without CANN_API)."""
    if not (db.has("CANN_API", "connectionId") and db.has("CANN_API", "startNs")):
        return pd.Series([], dtype="Int64")
    frame = db.query("SELECT connectionId AS cid, MIN(startNs) AS ts FROM CANN_API GROUP BY connectionId")
    return frame.set_index("cid")["ts"]


def _enum(db: SqliteFile, table: str) -> dict[int, str]:
    if not (db.has(table, "id") and db.has(table, "name")):
        return {}
    frame = db.query(f"SELECT id, name FROM {table}")
    return {int(i): str(n) for i, n in zip(frame["id"], frame["name"], strict=True) if not pd.isna(i)}


def _decode(values: pd.Series, names: dict[int, str]) -> pd.Series:
    """Enum ids to names; an id the enum table lacks keeps its number."""
    ids = _int64(values)
    return ids.map(names).astype("string").fillna(ids.astype("string"))


def _windows(db: SqliteFile) -> list[tuple[int, int, int]]:
    """(step, start_ns, end_ns) from STEP_TIME, sorted by start; [] when the db has none."""
    if not all(db.has("STEP_TIME", c) for c in ("id", "startNs", "endNs")):
        return []
    frame = db.query("SELECT id, startNs, endNs FROM STEP_TIME ORDER BY startNs").dropna()
    return [
        (int(s), int(a), int(b))
        for s, a, b in zip(frame["id"], frame["startNs"], frame["endNs"], strict=True)
    ]


def _window_index(ts: pd.Series, windows: list[tuple[int, int, int]]) -> np.ndarray:
    """Index of the window each time falls in, -1 for none. As for the text trace, a window reaches up
    to the next step's start (the device runs behind the host) and the last one up to its own end."""
    values = _int64(ts)
    if not windows:
        return np.full(len(values), -1)
    starts = np.array([w[1] for w in windows], dtype=np.int64)
    filled = values.to_numpy(dtype=np.int64, na_value=np.iinfo(np.int64).min)
    index = np.searchsorted(starts, filled, side="right") - 1
    index[(index == len(windows) - 1) & (filled > windows[-1][2])] = -1
    return index


def _steps_of(ts: pd.Series, windows: list[tuple[int, int, int]]) -> pd.Series:
    index = _window_index(ts, windows)
    steps = [pd.NA if i < 0 else windows[i][0] for i in index]
    return pd.Series(steps, index=ts.index, dtype="Int64")


def _int64(values: pd.Series) -> pd.Series:
    """Integers exactly as Int64 (ns at epoch scale need all 64 bits); a REAL in a NUMERIC column rounded."""
    return (values.round() if pd.api.types.is_float_dtype(values) else values).astype("Int64")


def _us(end: pd.Series, start: pd.Series) -> pd.Series:
    return (_int64(end) - _int64(start)).astype("float64") / 1000.0


def _device(ids: pd.Series) -> pd.Series:
    return "NPU:" + _int64(ids).astype("string")  # as the text export's Device / Device Type


def _tid(global_tid: pd.Series) -> pd.Series:
    """globalTid packs the process id in the high 32 bits and the thread id in the low ones."""
    return _int64(global_tid) % (1 << 32)


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    parts = [f for f in frames if len(f)]
    return pd.concat(parts, ignore_index=True) if parts else frames[0].iloc[0:0]


def finish(frame: pd.DataFrame, table: str, source: str, path: Path) -> pd.DataFrame:
    """The schema's columns, the source read, and no damaged rows (sanity.py: `path` is the db they
    came from); what `frame` lost already is kept."""
    attrs = dict(frame.attrs)
    as_int = [c for c, dtype in SCHEMAS[table].columns.items() if dtype == INT and c in frame]
    frame = frame.assign(**{c: _int64(frame[c]) for c in as_int if frame[c].dtype != INT})
    out = conform(frame, table)
    out.attrs = {**attrs, "source": source}
    return drop_damaged_rows(out, table, path, _LABELS)


# ---------------------------------------------------------------------------------------------------
# Device side


def _pmu(db: SqliteFile) -> pd.DataFrame | None:
    """TASK_PMU_INFO pivoted to one column per metric, indexed by globalTaskId (None without the table)."""
    if not all(db.has("TASK_PMU_INFO", c) for c in ("globalTaskId", "name", "value")):
        return None
    metrics = (*PMU_RATIOS, "aic_total_time", "aiv_total_time")
    # The metrics' ids first: the table holds a row per task and metric (two dozen per task), and SQLite
    # comparing ids as it scans costs a fraction of resolving every row's name.
    ids = db.query(
        f"SELECT id, value FROM STRING_IDS WHERE value IN ({', '.join('?' * len(metrics))})", metrics
    )
    name_of = {int(i): str(v) for i, v in zip(ids["id"], ids["value"], strict=True) if not pd.isna(i)}
    frame = db.read(
        "SELECT globalTaskId AS gid, name AS metric, value FROM TASK_PMU_INFO "
        f"WHERE name IN ({', '.join('?' * len(name_of))}) AND globalTaskId IS NOT NULL",
        tuple(name_of),
    )
    # Pivoted in numpy: a column per metric found, in name order; the first row of a task and metric.
    metric_ids = np.array(sorted(name_of), dtype=np.int64)
    metric = np.searchsorted(metric_ids, frame["metric"].to_numpy(dtype=np.int64))
    found = np.bincount(metric, minlength=len(metric_ids)) > 0
    columns = sorted({name_of[int(i)] for i in metric_ids[found]})
    column = np.array(
        [columns.index(name_of[int(i)]) if f else -1 for i, f in zip(metric_ids, found, strict=True)],
        dtype=np.int64,
    )
    tasks, row = np.unique(frame["gid"].to_numpy(dtype=np.int64), return_inverse=True)
    cell = row * len(columns) + column[metric]
    first = np.full(len(tasks) * len(columns), len(cell))
    np.minimum.at(first, cell, np.arange(len(cell)))  # the first row of each cell; len(cell) where none
    taken = first < len(cell)
    values = np.full(len(first), np.nan)
    values[taken] = frame["value"].to_numpy(dtype=np.float64, na_value=np.nan)[first[taken]]
    return pd.DataFrame(values.reshape(len(tasks), len(columns)), index=tasks, columns=columns)


@register_table("kernels", "ascend_db", sources=PROFILER_SOURCES)
def load_kernels(rank: RankInfo) -> pd.DataFrame:
    """COMPUTE_TASK_INFO ⋈ TASK with PMU metrics, plus COMMUNICATION_OP rows (accelerator core HCCL)
    and COMMUNICATION_SCHEDULE_TASK_INFO tasks, as kernel_details.csv lists them. Built once per db:
    op_statistic aggregates it."""
    db = profiler_db(rank)
    return db.memoised("kernels", lambda: _kernels(db)).copy(deep=False)


def _kernels(db: SqliteFile) -> pd.DataFrame:
    why = "needed for the kernel table"
    tasks = _tasks(db, why)
    kernels = _compute_info(db, why).merge(tasks, on="gid", how="inner")
    pmu = _pmu(db)
    if pmu is not None:
        kernels = kernels.join(pmu, on="gid")
        for metric, column in (("aic_total_time", "aicore_time_us"), ("aiv_total_time", "aiv_time_us")):
            if metric in kernels:
                kernels[column] = kernels[metric] / 1000.0  # ns -> µs
    comm = comm_op_frame(db, why, optional=True).assign(accelerator_core="HCCL")
    parts = [kernels, comm]
    if db.has("COMMUNICATION_SCHEDULE_TASK_INFO"):
        db.require("COMMUNICATION_SCHEDULE_TASK_INFO", "globalTaskId", "name", why=why)
        columns = {
            "gid": ("globalTaskId", False),
            "name": ("name", True),
            "op_type": ("opType", True),
            "accelerator_core": ("taskType", True),
        }
        table = "COMMUNICATION_SCHEDULE_TASK_INFO"
        schedule = _read(db, table, columns)
        parts.append(schedule.merge(tasks, on="gid", how="inner"))
    frame = _concat(parts).sort_values("start_ns", kind="stable", ignore_index=True)
    frame["duration_us"] = _us(frame["end_ns"], frame["start_ns"])
    # As kernel_details.csv: the gap since the previous kernel (in start order) ended, never negative.
    gap = (frame["start_ns"] - frame["end_ns"].shift()).astype("float64") / 1000.0
    frame["wait_us"] = gap.clip(lower=0.0).fillna(0.0)
    # A kernel belongs to the step its launch (host CANN call) falls in; without one, its device start.
    launched = frame["connection_id"].map(_launch_times(db)).astype("Int64")
    frame["step"] = _steps_of(launched.fillna(frame["start_ns"].astype("Int64")), _windows(db))
    return finish(frame, "kernels", "COMPUTE_TASK_INFO+TASK+TASK_PMU_INFO+COMMUNICATION_OP", db.path)


def _device_task_frame(db: SqliteFile, why: str) -> pd.DataFrame:
    """TASK rows as the text trace's Ascend Hardware process shows them, with connection ids; built
    once per db (the device task table and the flows start from it)."""
    return db.memoised("device tasks", lambda: _build_device_task_frame(db, why)).copy(deep=False)


def _build_device_task_frame(db: SqliteFile, why: str) -> pd.DataFrame:
    tasks = _tasks(db, why)
    has_info = db.has("COMPUTE_TASK_INFO")
    if has_info:
        info = _compute_info(db, why, keep=["gid", "name", "accelerator_core"])
        tasks = tasks.merge(info, on="gid", how="left")
    else:
        tasks = tasks.assign(name=pd.NA, accelerator_core=pd.NA)
    tasks["comm_task"] = tasks["gid"].isin(_comm_task_ids(db))
    raw = tasks["raw_type"].astype("string")
    if has_info:
        # Kernel-type tasks without COMPUTE_TASK_INFO are absent from the text trace too: an HCCL op's
        # launch container (its time is the op's, in `hccl`) or kernels the profiler could not name.
        kernel_like = (raw.isin(_KERNEL_TASK_TYPES) | raw.str.startswith("KERNEL_")).fillna(False)
        unnamed = tasks["name"].isna() & ~tasks["comm_task"] & kernel_like
        tasks, raw = tasks[~unnamed.to_numpy(dtype=bool)], raw[~unnamed.to_numpy(dtype=bool)]
    tasks = tasks.assign(
        name=tasks["name"].astype("string").fillna(raw),
        task_type=tasks["accelerator_core"].astype("string").fillna(raw),
    )
    return tasks.reset_index(drop=True)


@register_table("device_tasks", "ascend_db", sources=PROFILER_SOURCES)
def load_device_tasks(rank: RankInfo) -> pd.DataFrame:
    db = profiler_db(rank)
    frame = _device_task_frame(db, "needed for the device task table")
    frame["dur_us"] = _us(frame["end_ns"], frame["start_ns"])
    frame = frame.sort_values("start_ns", kind="stable", ignore_index=True)
    return finish(frame, "device_tasks", "TASK", db.path)


@register_table("hccl", "ascend_db", sources=PROFILER_SOURCES)
def load_hccl(rank: RankInfo) -> pd.DataFrame:
    """COMMUNICATION_OP rows as ops, COMMUNICATION_TASK_INFO ⋈ TASK as their tasks on plane threads."""
    db = profiler_db(rank)
    why = "needed for the HCCL table"
    ops = comm_op_frame(db, why, optional=False).assign(is_op=True)
    db.require("COMMUNICATION_TASK_INFO", "globalTaskId", "taskType", why=why)
    columns = {
        "gid": ("globalTaskId", False),
        "task_type": ("taskType", True),
        "group": ("groupName", True),
        "plane_id": ("planeId", False),
        "transport_id": ("transportType", False),
        "link_id": ("linkType", False),
        "size_bytes": ("size", False),
        "src_rank": ("srcRank", False),
        "dst_rank": ("dstRank", False),
    }
    table = "COMMUNICATION_TASK_INFO"
    tasks = _read(db, table, columns)
    tasks = tasks.merge(_tasks(db, why)[["gid", "start_ns", "end_ns"]], on="gid", how="inner")
    tasks["name"] = tasks["task_type"]  # the text trace names a plane task by its type
    tasks["is_op"] = False
    tasks["plane"] = "Plane " + _int64(tasks["plane_id"]).astype("string")  # the trace's thread name
    tasks["transport"] = _decode(tasks["transport_id"], _enum(db, "ENUM_HCCL_TRANSPORT_TYPE"))
    tasks["link_type"] = _decode(tasks["link_id"], _enum(db, "ENUM_HCCL_LINK_TYPE"))
    tasks["size_bytes"] = tasks["size_bytes"].astype("float64")
    frame = _concat([ops, tasks]).sort_values(
        ["start_ns", "is_op"], ascending=[True, False], ignore_index=True
    )
    frame["dur_us"] = _us(frame["end_ns"], frame["start_ns"])
    return finish(frame, "hccl", "COMMUNICATION_OP+COMMUNICATION_TASK_INFO", db.path)


# ---------------------------------------------------------------------------------------------------
# Overlap and step time


def _merge_intervals(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Union of [start, end) intervals as a sorted (n, 2) array; touching intervals join."""
    if not len(starts):
        return np.empty((0, 2), dtype=np.int64)
    order = np.argsort(starts, kind="stable")
    s, e = starts[order], ends[order]
    reach = np.maximum.accumulate(e)
    first = np.r_[True, s[1:] > reach[:-1]]
    heads = np.flatnonzero(first)
    return np.column_stack([s[heads], np.maximum.reduceat(e, heads)])


def _subtract(a: np.ndarray, b: np.ndarray) -> list[tuple[int, int]]:
    """Parts of the disjoint sorted intervals `a` not covered by the disjoint sorted intervals `b`."""
    out, j = [], 0
    for start, end in a.tolist():
        while j < len(b) and b[j][1] <= start:
            j += 1
        cursor, k = start, j
        while k < len(b) and b[k][0] < end:
            if b[k][0] > cursor:
                out.append((cursor, int(b[k][0])))
            cursor = max(cursor, int(b[k][1]))
            k += 1
        if cursor < end:
            out.append((cursor, end))
    return out


def _derived_overlap(db: SqliteFile, why: str) -> pd.DataFrame:
    """The Overlap Analysis slices the profiler computes (identical to OVERLAP_ANALYSIS where a db has
    both): Computing = union of compute tasks, Communication = union of HCCL ops, Not Overlapped =
    communication outside computing, Free = gaps between busy intervals."""
    kernels = (
        _compute_info(db, why, keep=["gid"])
        .merge(_tasks(db, why), on="gid", how="inner")
        .dropna(subset=["start_ns", "end_ns"])
    )
    comm = comm_op_frame(db, why, optional=True).dropna(subset=["start_ns", "end_ns"])

    def ns(values: pd.Series) -> np.ndarray:
        return _int64(values).to_numpy(dtype=np.int64)

    computing = _merge_intervals(ns(kernels["start_ns"]), ns(kernels["end_ns"]))
    communication = _merge_intervals(ns(comm["start_ns"]), ns(comm["end_ns"]))
    busy = _merge_intervals(
        np.r_[computing[:, 0], communication[:, 0]], np.r_[computing[:, 1], communication[:, 1]]
    )
    slices = {
        "Computing": computing.tolist(),
        "Communication": communication.tolist(),
        "Communication(Not Overlapped)": _subtract(communication, computing),
        "Free": list(zip(busy[:-1, 1].tolist(), busy[1:, 0].tolist(), strict=True)),
    }
    rows = [(kind, start, end) for kind, pairs in slices.items() for start, end in pairs]
    return pd.DataFrame(rows, columns=["kind", "start_ns", "end_ns"])


def _overlap_frame(db: SqliteFile, why: str) -> tuple[pd.DataFrame, str]:
    """OVERLAP_ANALYSIS (MindStudio Insight adds it to a db it opens) or the same slices computed."""
    if db.has("OVERLAP_ANALYSIS"):
        db.require("OVERLAP_ANALYSIS", "startNs", "endNs", "type", why=why)
        frame = db.query("SELECT type, startNs AS start_ns, endNs AS end_ns FROM OVERLAP_ANALYSIS")
        frame["kind"] = frame["type"].map(OVERLAP_KINDS)
        frame, source = frame.dropna(subset=["kind"]), "OVERLAP_ANALYSIS"
    else:
        frame, source = _derived_overlap(db, why), "COMPUTE_TASK_INFO+TASK+COMMUNICATION_OP (derived)"
    frame = frame.assign(start_ns=_int64(frame["start_ns"]), end_ns=_int64(frame["end_ns"]))
    frame = frame.assign(dur_us=_us(frame["end_ns"], frame["start_ns"]))
    frame = frame.sort_values(["start_ns", "kind"], kind="stable", ignore_index=True)
    # Checked here, not only by `finish`: the step trace sums these slices.
    return drop_damaged_rows(frame, "overlap", db.path, _LABELS), source


@register_table("overlap", "ascend_db", sources=PROFILER_SOURCES)
def load_overlap(rank: RankInfo) -> pd.DataFrame:
    db = profiler_db(rank)
    frame, source = _overlap_frame(db, "needed for the overlap table")
    return finish(frame, "overlap", source, db.path)


STEP_TRACE_COLUMNS = {
    "computing": "computing_us",
    "communication_not_overlapped": "communication_not_overlapped_us",
    "overlapped": "overlapped_us",
    "communication": "communication_us",
    "free": "free_us",
    "preparing": "preparing_us",
    "bubble": "bubble_us",
    "stage": "stage_us",
}


@register_table("step_trace", "ascend_db", sources=PROFILER_SOURCES + ANALYSIS_SOURCES)
def load_step_trace(rank: RankInfo) -> pd.DataFrame:
    """analysis.db StepTraceTime (µs, as step_trace_time.csv); without it, the overlap slices summed
    per STEP_TIME window (which reproduces StepTraceTime, bubble aside)."""
    path = output_file(rank, ANALYSIS_DB)
    analysis = SqliteFile(path) if path is not None else None
    if analysis is None or not analysis.has("StepTraceTime"):
        return _step_trace_from_overlap(profiler_db(rank))
    why = "needed for the step trace"
    analysis.require("StepTraceTime", "step", "computing", "communication_not_overlapped", "free", why=why)
    selected = ", ".join(analysis.optional("StepTraceTime", c) for c in STEP_TRACE_COLUMNS)
    frame = analysis.query(f"SELECT step, {selected} FROM StepTraceTime")
    frame = frame.rename(columns=STEP_TRACE_COLUMNS)
    frame["step"] = step_numbers(frame["step"])
    return finish(frame, "step_trace", f"{ANALYSIS_DB} StepTraceTime", analysis.path)


def step_numbers(values: pd.Series) -> pd.Series:
    """'50', 'step50' or 50 -> 50; '' or NULL -> <NA> (an export without step markers)."""
    digits = values.astype("string").str.extract(r"(\d+)", expand=False)
    return pd.to_numeric(digits, errors="coerce").astype("Int64")


def _step_trace_from_overlap(db: SqliteFile) -> pd.DataFrame:
    why = f"needed for the step trace, as the rank has no {ANALYSIS_DB} StepTraceTime"
    overlap, _ = _overlap_frame(db, why)
    windows = _windows(db)
    index = _window_index(overlap["start_ns"], windows) if windows else np.zeros(len(overlap), dtype=int)
    rows = []
    for i, (step, begin, _) in enumerate(windows or [(None, None, None)]):
        part = overlap[index == i]
        total = (part["end_ns"] - part["start_ns"]).astype("float64").groupby(part["kind"]).sum() / 1000.0
        computing, communication = total.get("Computing", 0.0), total.get("Communication", 0.0)
        not_overlapped, free = total.get("Communication(Not Overlapped)", 0.0), total.get("Free", 0.0)
        first = part["start_ns"].min() if len(part) else None
        rows.append(
            {
                "step": step,
                "computing_us": computing,
                "communication_not_overlapped_us": not_overlapped,
                "overlapped_us": max(communication - not_overlapped, 0.0),
                "communication_us": communication,
                "free_us": free,
                # Device idle from the step's (host) start to its first device activity.
                "preparing_us": (first - begin) / 1000.0
                if begin is not None and first is not None
                else np.nan,
                "stage_us": computing + not_overlapped + free,
            }
        )
    frame = pd.DataFrame(rows)
    frame["step"] = frame["step"].astype("Int64")
    carry_losses(overlap, frame)
    source = "OVERLAP slices per STEP_TIME window (no analysis.db StepTraceTime)"
    return finish(frame, "step_trace", source, db.path)


@register_table("steps", "ascend_db", sources=PROFILER_SOURCES)
def load_steps(rank: RankInfo) -> pd.DataFrame:
    db = profiler_db(rank)
    db.require("STEP_TIME", "id", "startNs", "endNs", why="needed for the step table")
    frame = db.query(
        "SELECT id AS step, startNs AS start_ns, endNs AS end_ns FROM STEP_TIME ORDER BY startNs"
    )
    frame["dur_us"] = _us(frame["end_ns"], frame["start_ns"])
    return finish(frame, "steps", "STEP_TIME", db.path)


# ---------------------------------------------------------------------------------------------------
# Host side


def _host_frame(db: SqliteFile, why: str) -> pd.DataFrame:
    db.require("PYTORCH_API", "startNs", "endNs", "name", why=why)
    _require_strings(db, why)
    # startNs/endNs are declared TEXT: cast in SQL so 19-digit values stay exact integers.
    columns = {
        "name": ("name", True),
        "type_id": ("type", False),
        "global_tid": ("globalTid", False),
        "connection_id": ("connectionId", False),
        "callchain_id": ("callchainId", False),
    }
    leading = "CAST(startNs AS INTEGER) AS start_ns, CAST(endNs AS INTEGER) AS end_ns, "
    return _read(db, "PYTORCH_API", columns, leading=leading)


def _call_stacks(db: SqliteFile, chain_ids: pd.Series) -> pd.Series:
    """The call stack of each callchainId: its frames joined with ';\\n', outermost last (as the text
    "Call stack"); <NA> for none."""
    if not all(db.has("PYTORCH_CALLCHAINS", c) for c in ("id", "stack", "stackDepth")):
        return pd.Series(pd.NA, index=chain_ids.index, dtype="string")
    frame = db.read("SELECT id, stackDepth AS depth, stack FROM PYTORCH_CALLCHAINS WHERE id IS NOT NULL")
    # The rows whose stack STRING_IDS names (an inner join), by chain and depth; joined in Arrow.
    frame = frame[db.interned(frame["stack"])].sort_values(["id", "depth"], kind="stable")
    chains = frame["id"].to_numpy(dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, chains[1:] != chains[:-1]]) if len(chains) else chains
    frames = pa.ListArray.from_arrays(
        pa.array(np.r_[starts, len(chains)], pa.int32()), db.string_array(frame["stack"])
    )
    stacks = pc.binary_join(frames, pa.scalar(";\n", pa.large_string()))
    position, found = sorted_lookup(chains[starts], chain_ids)
    return pd.Series(pd.arrays.ArrowStringArray(take_found(stacks, position, found)), index=chain_ids.index)


@register_table("host_ops", "ascend_db", sources=PROFILER_SOURCES)
def load_host_ops(rank: RankInfo) -> pd.DataFrame:
    """PYTORCH_API with categories of the text trace and call stacks from PYTORCH_CALLCHAINS."""
    db = profiler_db(rank)
    frame = _host_frame(db, "needed for the host op table")
    kinds = _decode(frame["type_id"], _enum(db, "ENUM_API_TYPE"))
    queue = kinds.eq("queue").fillna(False)
    dequeue = frame["name"].astype("string").str.startswith("Dequeue").fillna(False)
    frame["cat"] = (
        kinds.replace(HOST_CATEGORIES).mask(queue & dequeue, "dequeue").mask(queue & ~dequeue, "enqueue")
    )
    frame["dur_us"] = _us(frame["end_ns"], frame["start_ns"])
    frame["tid"] = _tid(frame["global_tid"])
    frame["call_stack"] = _call_stacks(db, frame["callchain_id"])
    frame = frame.sort_values("start_ns", kind="stable", ignore_index=True)
    return finish(frame, "host_ops", "PYTORCH_API+PYTORCH_CALLCHAINS", db.path)


def _cann_frame(db: SqliteFile, why: str) -> pd.DataFrame:
    db.require("CANN_API", "startNs", "endNs", "name", "type", why=why)
    _require_strings(db, why)
    columns = {
        "start_ns": ("startNs", False),
        "end_ns": ("endNs", False),
        "api": ("name", True),
        "type_id": ("type", False),
        "global_tid": ("globalTid", False),
        "connection_id": ("connectionId", False),
    }
    return _read(db, "CANN_API", columns)


@register_table("runtime_api", "ascend_db", sources=PROFILER_SOURCES)
def load_runtime_api(rank: RankInfo) -> pd.DataFrame:
    """CANN_API named like the text trace: the ENUM_API_TYPE level as prefix (AscendCL@, Node@, …)."""
    db = profiler_db(rank)
    frame = _cann_frame(db, "needed for the CANN API table")
    levels = _decode(frame["type_id"], _enum(db, "ENUM_API_TYPE"))
    frame["name"] = (levels.replace(API_PREFIXES) + "@" + frame["api"].astype("string")).fillna(frame["api"])
    frame["dur_us"] = _us(frame["end_ns"], frame["start_ns"])
    frame["tid"] = _tid(frame["global_tid"])
    frame = frame.sort_values("start_ns", kind="stable", ignore_index=True)
    return finish(frame, "runtime_api", "CANN_API", db.path)


@register_table("api_statistic", "ascend_db", sources=PROFILER_SOURCES)
def load_api_statistic(rank: RankInfo) -> pd.DataFrame:
    """Per level and CANN API, as api_statistic.csv computes it (population variance, µs²)."""
    db = profiler_db(rank)
    frame = _cann_frame(db, "needed for the API statistics")
    frame["level"] = _decode(frame["type_id"], _enum(db, "ENUM_API_TYPE"))
    frame = frame.assign(start_ns=_int64(frame["start_ns"]), dur_us=_us(frame["end_ns"], frame["start_ns"]))
    # Damaged calls are left out of the sums, as they are left out of the runtime_api table.
    calls = drop_damaged_rows(frame, "runtime_api", db.path, _LABELS)
    groups = calls.dropna(subset=["level", "api"]).groupby(["level", "api"], sort=True)["dur_us"]
    stats = groups.agg(total_us="sum", count="size", avg_us="mean", min_us="min", max_us="max")
    stats["variance"] = groups.var(ddof=0)
    stats = stats.reset_index().rename(columns={"api": "api_name"})
    stats = stats.sort_values("total_us", ascending=False, kind="stable", ignore_index=True)
    carry_losses(calls, stats)
    return finish(stats, "api_statistic", "CANN_API (aggregated)", db.path)


@register_table("op_statistic", "ascend_db", sources=PROFILER_SOURCES)
def load_op_statistic(rank: RankInfo) -> pd.DataFrame:
    """Per operator type and core type over the compute kernels, as op_statistic.csv (no HCCL rows)."""
    all_kernels = load_kernels(rank)
    kernels = all_kernels[all_kernels["accelerator_core"] != "HCCL"]
    groups = kernels.groupby(["op_type", "accelerator_core"], sort=True)["duration_us"]
    stats = groups.agg(count="size", total_us="sum", min_us="min", avg_us="mean", max_us="max").reset_index()
    total = stats["total_us"].sum()
    stats["ratio_pct"] = stats["total_us"] / total * 100.0 if total else np.nan
    stats = stats.rename(columns={"accelerator_core": "core_type"})
    stats = stats.sort_values("total_us", ascending=False, kind="stable", ignore_index=True)
    carry_losses(all_kernels, stats)
    return finish(stats, "op_statistic", "COMPUTE_TASK_INFO+TASK (aggregated)", profiler_db(rank).path)


@register_table("flows", "ascend_db", sources=PROFILER_SOURCES)
def load_flows(rank: RankInfo) -> pd.DataFrame:
    """Host-to-device links: PYTORCH_API → CONNECTION_IDS → device task ('async_npu', the trace's
    torch_to_npu) and CANN_API → device task ('HostToDevice'). An HCCL op is linked once, at its start."""
    db = profiler_db(rank)
    why = "needed for the host-to-device flows"
    tasks = _device_task_frame(db, why)
    targets = _concat(
        [
            tasks.loc[~tasks["comm_task"], ["connection_id", "start_ns"]],
            comm_op_frame(db, why, optional=True)[["connection_id", "start_ns"]],
        ]
    ).rename(columns={"start_ns": "device_ns"})
    links = []
    if db.has("PYTORCH_API", "connectionId"):
        db.require("CONNECTION_IDS", "id", "connectionId", why=why)
        host = _host_frame(db, why).dropna(subset=["connection_id"])[["connection_id", "start_ns"]]
        ids = db.query("SELECT id, connectionId FROM CONNECTION_IDS")
        host = host.merge(ids, left_on="connection_id", right_on="id")[["connectionId", "start_ns"]]
        host = host.rename(columns={"connectionId": "connection_id"})
        links.append(host.merge(targets, on="connection_id").assign(cat="async_npu"))
    if db.has("CANN_API", "connectionId"):
        cann = _cann_frame(db, why).dropna(subset=["connection_id"])[["connection_id", "start_ns"]]
        links.append(cann.merge(targets, on="connection_id").assign(cat="HostToDevice"))
    if not links:
        raise InputError(f"{db.path}: no PYTORCH_API or CANN_API connection ids ({why})")
    frame = _concat(links).rename(columns={"start_ns": "host_ns"})
    frame = frame.sort_values(["cat", "host_ns", "device_ns"], kind="stable", ignore_index=True)
    return finish(frame, "flows", "CONNECTION_IDS+PYTORCH_API+CANN_API+TASK", db.path)


@register_table("gc", "ascend_db", sources=PROFILER_SOURCES)
def load_gc(rank: RankInfo) -> pd.DataFrame:
    db = profiler_db(rank)
    db.require("GC_RECORD", "startNs", "endNs", why="needed for the GC table; written with GC detection on")
    frame = db.query("SELECT startNs AS start_ns, endNs AS end_ns FROM GC_RECORD ORDER BY startNs")
    frame["dur_us"] = _us(frame["end_ns"], frame["start_ns"])
    return finish(frame, "gc", "GC_RECORD", db.path)


@register_table("freq", "ascend_db", sources=PROFILER_SOURCES)
def load_freq(rank: RankInfo) -> pd.DataFrame:
    db = profiler_db(rank)
    db.require("AICORE_FREQ", "timestampNs", "freq", why="needed for the AI Core frequency table")
    frame = db.query("SELECT timestampNs AS ts_ns, freq AS mhz FROM AICORE_FREQ ORDER BY timestampNs")
    return finish(frame, "freq", "AICORE_FREQ", db.path)


# ---------------------------------------------------------------------------------------------------
# Memory (sizes bytes, timestamps ns)


@register_table("memory_record", "ascend_db", sources=PROFILER_SOURCES)
def load_memory_record(rank: RankInfo) -> pd.DataFrame:
    """MEMORY_RECORD plus the 'APP' rows of memory_record.csv, which come from NPU_MEM (type 'app')."""
    db = profiler_db(rank)
    why = "needed for the memory record table"
    db.require("MEMORY_RECORD", "component", "timestamp", "totalReserved", why=why)
    _require_strings(db, why)
    columns = {
        "component": ("component", True),
        "ts_ns": ("timestamp", False),
        "allocated_bytes": ("totalAllocated", False),
        "reserved_bytes": ("totalReserved", False),
        "active_bytes": ("totalActive", False),
        "device_id": ("deviceId", False),
    }
    parts = [_read(db, "MEMORY_RECORD", columns)]
    if all(db.has("NPU_MEM", c) for c in ("type", "hbm", "ddr", "timestampNs")):
        npu = db.query(
            "SELECT 'APP' AS component, n.timestampNs AS ts_ns, "
            "COALESCE(n.hbm, 0) + COALESCE(n.ddr, 0) AS reserved_bytes, "
            f"{db.optional('NPU_MEM', 'deviceId', 'n.deviceId')} FROM NPU_MEM AS n "
            f"WHERE LOWER({string_of('n.type')}) = 'app'"
        )
        parts.append(npu.rename(columns={"deviceId": "device_id"}))
    frame = _concat(parts)
    frame["device"] = _device(frame["device_id"])
    frame = frame.sort_values("ts_ns", kind="stable", ignore_index=True)
    return finish(frame, "memory_record", "MEMORY_RECORD+NPU_MEM", db.path)


@register_table("operator_memory", "ascend_db", sources=PROFILER_SOURCES)
def load_operator_memory(rank: RankInfo) -> pd.DataFrame:
    """OP_MEMORY. Its GE allocations (copied from NPU_OP_MEM) have no stream and no active total;
    the text export names those `cann::<op>`, and so do we."""
    db = profiler_db(rank)
    why = "needed for the operator memory table"
    db.require("OP_MEMORY", "name", "size", "allocationTime", why=why)
    _require_strings(db, why)
    columns = {
        "name": ("name", True),
        "size_bytes": ("size", False),
        "alloc_ns": ("allocationTime", False),
        "release_ns": ("releaseTime", False),
        "duration_ns": ("duration", False),
        "device_id": ("deviceId", False),
        "stream": ("streamPtr", False),
        "active": ("allocationTotalActive", False),
    }
    frame = _read(db, "OP_MEMORY", columns)
    if db.has("OP_MEMORY", "streamPtr") and db.has("OP_MEMORY", "allocationTotalActive"):
        ge = (frame["stream"].isna() & frame["active"].isna()).to_numpy(dtype=bool)
        frame["name"] = frame["name"].astype("string").mask(ge, "cann::" + frame["name"].astype("string"))
    frame["duration_us"] = frame["duration_ns"].astype("float64") / 1000.0
    frame["device"] = _device(frame["device_id"])
    return finish(frame, "operator_memory", "OP_MEMORY", db.path)


@register_table("npu_module_mem", "ascend_db", sources=PROFILER_SOURCES)
def load_npu_module_mem(rank: RankInfo) -> pd.DataFrame:
    db = profiler_db(rank)
    why = "needed for the NPU module memory table"
    db.require("NPU_MODULE_MEM", "moduleId", "timestampNs", "totalReserved", why=why)
    frame = db.query(
        "SELECT moduleId AS module_id, timestampNs AS ts_ns, totalReserved AS reserved_bytes, "
        f"{db.optional('NPU_MODULE_MEM', 'deviceId')} FROM NPU_MODULE_MEM"
    )
    frame["component"] = _decode(frame["module_id"], _enum(db, "ENUM_MODULE"))
    frame["device"] = _device(frame["deviceId"])
    return finish(frame, "npu_module_mem", "NPU_MODULE_MEM", db.path)
