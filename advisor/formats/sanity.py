"""Damaged numbers in the input: one sanity step for the time columns of every reader's tables.

A profiler that crashed, a full disk or a hand-edited file can leave durations that are negative, not
numbers, infinite or longer than the whole profile, and timestamps that are negative or days away from
the others. The checks would turn them into confident nonsense ("loses 2317 ms per step in a 135 ms
step"), so each reader passes the normalised tables of a file through `drop_damaged` once: rows with
such a value are dropped, and one warning for the file says how many, where and why.

What is checked (schema.py): a table's durations are its float `*_us` columns, its timestamps its Int64
`*_ns` columns; a missing value is damage only in the columns the schema lists as required (a kernel
without a duration), never in optional ones (a tensor not released during the profile).
Limits: a timestamp more than a day from the median of the file's timestamps is absurd; a duration
may not exceed twice the span of the file's plausible timestamps plus a minute (the last event, or an
op in a file that holds one step, outlasts the span of the starts); a file without timestamps
(step_trace_time.csv, the statistics) allows up to a day.

Dropped rows are recorded in the frame's attrs (kept by the table cache): `warnings` gets the file's
warning and `lost_share` the share of the table's rows that could not be used, for the engine to judge
whether a comparison built on the table still holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from .schema import FLOAT, INT, SCHEMAS

DAY_NS = 86_400 * 10**9
DAY_US = DAY_NS / 1000.0
SLACK_US = 60e6
# attrs keys: the share of a table's rows that could not be used; True when an unknown share is
# missing (the file was cut short).
LOST_SHARE, INCOMPLETE = "lost_share", "incomplete"
LOSSES = (LOST_SHARE, INCOMPLETE)
_INT64_MAX = np.iinfo(np.int64).max


def time_columns(table: str) -> tuple[list[str], list[str]]:
    """(timestamp columns, duration columns) of a normalised table."""
    columns = SCHEMAS[table].columns.items()
    return (
        [c for c, dtype in columns if dtype == INT and c.endswith("_ns")],
        [c for c, dtype in columns if dtype == FLOAT and c.endswith("_us")],
    )


def lost_share(frame: pd.DataFrame) -> float:
    """The share of the table's rows the reader could not use (0 when nothing was lost)."""
    return float(frame.attrs.get(LOST_SHARE, 0.0))


def with_lost_share(frame: pd.DataFrame, share: float) -> pd.DataFrame:
    """`frame` (changed in place) with `share` more of its rows counted as lost."""
    if share > 0:
        frame.attrs[LOST_SHARE] = float(1.0 - (1.0 - lost_share(frame)) * (1.0 - share))
    return frame


def carry_losses(source: pd.DataFrame, target: pd.DataFrame) -> None:
    """`target`, derived from `source`, lacks what `source` lost: its warnings and losses (in place)."""
    warnings = [*target.attrs.get("warnings", ()), *source.attrs.get("warnings", ())]
    if warnings:
        target.attrs["warnings"] = list(dict.fromkeys(warnings))
    target.attrs.update({key: source.attrs[key] for key in LOSSES if key in source.attrs})


def _stamps(series: pd.Series) -> tuple[np.ndarray, np.ndarray | None]:
    """int64 values (0 where missing) and the missing mask, None when nothing is missing."""
    missing = series.isna().to_numpy()
    if missing.any():
        return series.to_numpy(np.int64, na_value=0), missing
    return series.to_numpy(np.int64), None


class _Rows:
    """The rows of one table found damaged so far, and how many for each (column, problem)."""

    def __init__(self, n: int) -> None:
        self.bad = np.zeros(n, np.bool_)
        self.counts: dict[tuple[str, str], int] = {}

    def flag(self, rows: np.ndarray, column: str, problem: str) -> None:
        """Mark `rows` (indices) damaged; each row counts once, under its first problem."""
        new = rows[~self.bad[rows]]
        if len(new):
            self.bad[new] = True
            key = (column, problem)
            self.counts[key] = self.counts.get(key, 0) + len(new)


Stamps = dict[str, tuple[np.ndarray, np.ndarray | None]]  # column -> (values, missing mask)


def _plausible(stamps: dict[str, Stamps]) -> tuple[int, int, int | None]:
    """(low, high, span): the bounds of plausible timestamps in the file (within a day of their median)
    and the span in ns of those found (None: the file has no timestamp)."""
    valid = [v if m is None else v[~m] for table in stamps.values() for v, m in table.values()]
    valid = [v for v in valid if len(v)]
    if not valid:
        return 0, _INT64_MAX, None
    low, high = min(int(v.min()) for v in valid), max(int(v.max()) for v in valid)
    if low >= 0 and high - low <= DAY_NS:  # the usual case: two passes per column, nothing absurd
        return 0, _INT64_MAX, high - low
    every = np.concatenate(valid)
    median = int(np.median(every))
    low, high = max(median - DAY_NS, 0), min(median + DAY_NS, _INT64_MAX)
    kept = every[(every >= low) & (every <= high)]
    return low, high, int(kept.max() - kept.min()) if len(kept) else 0


def _check_stamps(rows: _Rows, stamps: Stamps, required: frozenset[str], low: int, high: int) -> None:
    for column, (values, missing) in stamps.items():
        if missing is not None and column in required:
            rows.flag(np.flatnonzero(missing), column, "no {}")
        out = (values < low) | (values > high)
        if missing is not None:
            out &= ~missing
        if out.any():
            suspects = np.flatnonzero(out)
            negative = values[suspects] < 0
            rows.flag(suspects[negative], column, "a negative {}")
            rows.flag(suspects[~negative], column, "{} more than a day from the file's other timestamps")


def _check_durations(
    rows: _Rows,
    frame: pd.DataFrame,
    columns: list[str],
    required: frozenset[str],
    limit_us: float,
    too_long: str,
) -> None:
    for column in columns:
        if column not in frame:
            continue
        values = frame[column].to_numpy(np.float64)
        fine = (values >= 0) & (values <= limit_us)  # NaN fails both: sorted out below
        if fine.all():
            continue
        suspects = np.flatnonzero(~fine)
        picked = values[suspects]
        nan = np.isnan(picked)
        if column in required:
            rows.flag(suspects[nan], column, "no {}")
        suspects, picked = suspects[~nan], picked[~nan]
        rows.flag(suspects[np.isinf(picked)], column, "an infinite {}")
        rows.flag(suspects[picked < 0], column, "a negative {}")
        rows.flag(suspects, column, too_long)


def _warning(path: Path | str, found: dict[str, _Rows], labels: Mapping[str, str]) -> str:
    """One line for the file: how many rows of which table were dropped, for which value."""
    parts = [
        f"{count} {name} row{'s' if count != 1 else ''} with {problem.format(labels.get(column, column))}"
        for name, rows in found.items()
        for (column, problem), count in rows.counts.items()
    ]
    if len(parts) == 1:
        return f"{path}: {parts[0]} dropped"
    total = sum(sum(rows.counts.values()) for rows in found.values())
    return f"{path}: {total} rows dropped ({'; '.join(parts)})"


def drop_damaged(
    tables: Mapping[str, pd.DataFrame], path: Path | str, labels: Mapping[str, str] | None = None
) -> tuple[dict[str, pd.DataFrame], str | None]:
    """The tables of one file without their damaged rows, and the file's warning (None: nothing dropped).

    `tables` maps schema table names to normalised frames; `labels` names columns as the file does
    ("Duration(us)", "dur"). A frame that loses nothing is returned as it is, not copied.
    """
    columns = {name: time_columns(name) for name in tables}
    stamps = {
        name: {c: _stamps(frame[c]) for c in columns[name][0] if c in frame} for name, frame in tables.items()
    }
    low, high, span_ns = _plausible(stamps)
    if span_ns is None:
        limit_us, too_long = DAY_US, "{} above a day"
    else:
        limit_us = 2 * span_ns / 1000.0 + SLACK_US
        too_long = f"{{}} above {limit_us / 1e6:.4g} s (twice the file's time span plus a minute)"
    found: dict[str, _Rows] = {}
    for name, frame in tables.items():
        rows = _Rows(len(frame))
        required = SCHEMAS[name].required
        _check_stamps(rows, stamps[name], required, low, high)
        _check_durations(rows, frame, columns[name][1], required, limit_us, too_long)
        if rows.counts:
            found[name] = rows
    if not found:
        return dict(tables), None
    warning = _warning(path, found, labels or {})
    out = dict(tables)
    for name, rows in found.items():
        frame = tables[name]
        kept = frame.loc[~rows.bad].reset_index(drop=True)
        kept.attrs = {**frame.attrs, "warnings": [*frame.attrs.get("warnings", ()), warning]}
        out[name] = with_lost_share(kept, rows.bad.sum() / len(frame))
    return out, warning


def drop_damaged_rows(
    frame: pd.DataFrame, table: str, path: Path | str, labels: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """`drop_damaged` for a file that gives one table."""
    return drop_damaged({table: frame}, path, labels)[0][table]
