"""The per-step time split of one rank ("step_trace" table).

Source 1: `step_trace_time.csv`. Source 2 (when the CSV is absent): the `Overlap Analysis` process
of `trace_view.json`, bucketed into `ProfilerStep#N` windows.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from ...errors import InputError
from ...model import RankInfo
from ..ascend_common.csvread import normalise_header, parse_number, read_csv
from ..ascend_common.folder import STEP_TRACE_CSV, TRACE_VIEW_JSON, output_file
from ..sanity import carry_losses, drop_damaged_rows
from ..schema import SOURCE_TRACE
from ..step_split import COLUMNS, step_trace_frame, step_trace_from_overlap
from ..tables import register_table
from .trace_view import OVERLAP_PROCESS, parse_trace

# Normalised CSV header -> table column. Columns are found by name: their order and presence vary
# between torch_npu versions (e.g. `Preparing` is recent), so the version number is never trusted.
_CSV_COLUMNS = {
    "computing": "computing_us",
    "communication(not overlapped)": "communication_not_overlapped_us",
    "overlapped": "overlapped_us",
    "communication": "communication_us",
    "free": "free_us",
    "preparing": "preparing_us",
    "bubble": "bubble_us",
    "stage": "stage_us",
}
_REQUIRED = ("computing", "communication(not overlapped)", "free")
SOURCE_CSV = STEP_TRACE_CSV


@register_table("step_trace", "ascend_text", sources=(STEP_TRACE_CSV, TRACE_VIEW_JSON))
def load_step_trace(rank: RankInfo) -> pd.DataFrame:
    """Per-step times in µs for one rank; `df.attrs["source"]` says which file they came from."""
    csv_path = output_file(rank, STEP_TRACE_CSV)
    if csv_path is not None:
        return read_step_trace_csv(csv_path)
    trace_path = output_file(rank, TRACE_VIEW_JSON)
    if trace_path is not None:
        return step_trace_from_trace_view(trace_path)
    raise InputError(f"{rank.path}: neither {STEP_TRACE_CSV} nor {TRACE_VIEW_JSON} in ASCEND_PROFILER_OUTPUT")


def _parse_step(value: str, path: Path, row: int) -> int | None:
    text = value.strip()
    if text.lower() in {"", "n/a", "na", "none", "-"}:
        return None  # an export without step markers: the whole profile is one unnamed step
    digits = text.removeprefix("step").removeprefix("Step")
    try:
        return int(float(digits))
    except ValueError:
        raise InputError(f"{path}: row {row}, column 'Step': not a step number: {text[:40]!r}") from None


def read_step_trace_csv(path: Path) -> pd.DataFrame:
    header, rows = read_csv(path)
    names = [normalise_header(h) for h in header]
    if "step" not in names:
        raise InputError(f"{path}: no 'Step' column (found: {', '.join(header)})")
    missing = [c for c in _REQUIRED if c not in names]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)} (found: {', '.join(header)})")
    if not rows:
        raise InputError(f"{path}: no data rows")
    index = {name: names.index(name) for name in ("step", *_CSV_COLUMNS) if name in names}
    data: dict[str, list] = {c: [] for c in COLUMNS}
    for line, row in enumerate(rows, start=2):
        cells = {name: row[i] if i < len(row) else "" for name, i in index.items()}
        data["step"].append(_parse_step(cells["step"], path, line))
        for csv_name, column in _CSV_COLUMNS.items():
            value = parse_number(cells[csv_name], path, line, csv_name) if csv_name in index else math.nan
            data[column].append(value)
    labels = {column: header[index[name]].strip() for name, column in _CSV_COLUMNS.items() if name in index}
    return drop_damaged_rows(step_trace_frame(data, SOURCE_CSV), "step_trace", path, labels)


def step_trace_from_trace_view(path: Path) -> pd.DataFrame:
    trace = parse_trace(path)
    if OVERLAP_PROCESS not in trace.processes.values():
        raise InputError(f"{path}: no '{OVERLAP_PROCESS}' process (and no {STEP_TRACE_CSV})")
    frame = step_trace_from_overlap(trace["steps"], trace["overlap"], SOURCE_TRACE)
    if trace.warnings:
        frame.attrs["warnings"] = list(trace.warnings)
    carry_losses(trace["overlap"], frame)
    return frame
