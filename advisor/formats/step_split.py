"""The per-step device time split (table `step_trace`) from Overlap-Analysis slices (table
`overlap`) and step windows (table `steps`), whichever format drew the slices: the Ascend profiler
writes them into trace_view.json, the Kineto reader derives them from the kernel streams.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

COMPUTING = "Computing"
COMMUNICATION = "Communication"
NOT_OVERLAPPED = "Communication(Not Overlapped)"
FREE = "Free"
OVERLAP_NAMES = (COMPUTING, COMMUNICATION, NOT_OVERLAPPED, FREE)
COLUMNS = (
    "step",
    "computing_us",
    "communication_not_overlapped_us",
    "overlapped_us",
    "communication_us",
    "free_us",
    "preparing_us",
    "bubble_us",
    "stage_us",
)


def step_trace_from_overlap(steps: pd.DataFrame, overlap: pd.DataFrame, source: str) -> pd.DataFrame:
    """Per step the sums of the overlap slices, by kind; `attrs["unassigned_us"]` is the slice time
    outside every step window."""
    if len(steps):
        step_ids: list[int | None] = steps["step"].tolist()
        starts = steps["start_ns"].to_numpy(np.int64)
        last_end = starts[-1] + round(steps["dur_us"].iloc[-1] * 1000)
    else:  # no step markers: the whole profile is one unnamed step
        step_ids, starts, last_end = [None], np.array([np.iinfo(np.int64).min]), np.iinfo(np.int64).max
    ts = overlap["start_ns"].to_numpy(np.int64)
    dur = overlap["dur_us"].to_numpy(np.float64)
    # A slice belongs to the step window it starts in; the device runs behind the host, so a window
    # reaches up to the next step's start, and the last one up to its own end.
    window = np.searchsorted(starts, ts, side="right") - 1
    assigned = (window >= 0) & ((window < len(starts) - 1) | (ts <= last_end))
    sums = {}
    for name in OVERLAP_NAMES:
        mask = assigned & (overlap["kind"] == name).to_numpy(np.bool_, na_value=False)
        sums[name] = np.bincount(window[mask], dur[mask], minlength=len(starts))
    not_overlapped, communication = sums[NOT_OVERLAPPED], sums[COMMUNICATION]
    data: dict[str, list] = {
        "step": step_ids,
        "computing_us": sums[COMPUTING].tolist(),
        "communication_not_overlapped_us": not_overlapped.tolist(),
        "communication_us": communication.tolist(),
        "overlapped_us": np.maximum(communication - not_overlapped, 0.0).tolist(),
        "free_us": sums[FREE].tolist(),
        **{column: [math.nan] * len(starts) for column in ("preparing_us", "bubble_us", "stage_us")},
    }
    frame = step_trace_frame(data, source)
    frame.attrs["unassigned_us"] = float(dur[~assigned].sum())
    return frame


def step_trace_frame(data: dict[str, list], source: str) -> pd.DataFrame:
    """The step_trace table from its columns (`COLUMNS`); `attrs["source"]` names where they came from."""
    frame = pd.DataFrame({c: data[c] for c in COLUMNS})
    frame["step"] = pd.array(data["step"], dtype="Int64")
    for column in COLUMNS[1:]:
        frame[column] = frame[column].astype("float64")
    frame.attrs["source"] = source
    return frame
