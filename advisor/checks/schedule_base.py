"""Helpers shared by the schedule checks (no checks here): step windows, device-idle overlap,
outermost host ops, call-stack frames.

Host events (host_ops, runtime_api, gc) carry no step number; a step is the window of its
`ProfilerStep#N` event (table `steps`). With `--step`, the engine keeps only that step's row, so
filtering by the windows also honours the user's choice.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .common import mean_step_us
from .derived import per_rank_table
from .knowledge import knowledge
from .registry import RankContext

# Device-runtime calls during which the host launches nothing: blocking waits for the device (syncs
# and synchronous copies; the *Async copies return at once) and, on Ascend, online operator
# compilation. CANN (AscendCL@), CUDA runtime and driver, and their HIP twins (a ROCm trace), with the
# per-thread-stream (_ptds/_ptsz) and versioned (_v2) entry points. Device-memory calls are in
# knowledge/memory.json.
ASCEND_BLOCKING = r"AscendCL@(?:aclrtSynchronize(?:Stream|Device|Event)\w*|aclrtMemcpy)"
GPU_BLOCKING = (
    r"(?:cuda|hip)(?:StreamSynchronize|DeviceSynchronize|EventSynchronize|Memcpy(?:2D|3D|Peer)?"
    r"|Memcpy(?:To|From)Symbol)(?:_ptds|_ptsz|_spt)?"
    r"|(?:cu|hip)(?:StreamSynchronize|CtxSynchronize|EventSynchronize|Memcpy(?:HtoD|DtoH|DtoD)?)(?:_v2)?"
)
BLOCKING = rf"^(?:{ASCEND_BLOCKING}|{GPU_BLOCKING})$"
COMPILE_EXECUTE = "AscendCL@aclopCompileAndExecute"
COMPILE = "AscendCL@opCompile"

# Frames from these path parts are library code, not the line a user would change.
LIBRARY_FRAMES = ("site-packages", "dist-packages", "/torch/", "/torch_npu/", "/lib/python", "<string>")


# eq=False: a rank's Steps (one object, `step_windows` is memoised) keys the derivations made from it
# by identity, as its tables do.
@dataclass(frozen=True, eq=False)
class Steps:
    """The profiled step windows of a rank (ns), sorted; one window over everything when the
    trace has no ProfilerStep events."""

    starts: np.ndarray
    ends: np.ndarray
    numbers: list[int]

    @property
    def count(self) -> int:
        return max(1, len(self.starts))

    @property
    def known(self) -> bool:
        return len(self.numbers) > 0

    @property
    def single(self) -> int | None:
        """The step number when one step window was profiled (a finding about that step), else None."""
        return self.numbers[0] if len(self.numbers) == 1 else None

    def contains(self, ns: pd.Series | np.ndarray) -> np.ndarray:
        """True where a timestamp lies inside a step window (NA never does)."""
        values = _ns(ns)
        if not self.known:
            return values != _NA_NS
        at = np.searchsorted(self.starts, values, side="right") - 1
        ok = at >= 0
        inside = np.zeros(len(values), dtype=bool)
        inside[ok] = values[ok] < self.ends[at[ok]]
        return inside & (values != _NA_NS)

    def step_of(self, ns: pd.Series | np.ndarray) -> np.ndarray:
        """The step number of each timestamp (-1 outside every window)."""
        values = _ns(ns)
        if not self.known:
            return np.full(len(values), -1, dtype=np.int64)
        at = np.searchsorted(self.starts, values, side="right") - 1
        out = np.full(len(values), -1, dtype=np.int64)
        ok = (at >= 0) & (values != _NA_NS)
        ok[ok] = values[ok] < self.ends[at[ok]]
        out[ok] = np.asarray(self.numbers, dtype=np.int64)[at[ok]]
        return out

    def clip(self, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Intervals cut to the step window their start lies in (left as they are without steps)."""
        if not self.known:
            return starts, ends
        at = np.clip(np.searchsorted(self.starts, starts, side="right") - 1, 0, len(self.starts) - 1)
        return starts, np.minimum(ends, self.ends[at])


_NA_NS = np.iinfo(np.int64).min


def _ns(values: pd.Series | np.ndarray) -> np.ndarray:
    if isinstance(values, pd.Series):
        if pd.api.types.is_integer_dtype(values.dtype):  # the tables' Int64: no conversion to make
            return values.to_numpy(dtype=np.int64, na_value=_NA_NS)
        return values.astype("Int64").to_numpy(dtype=np.int64, na_value=_NA_NS)
    return np.asarray(values, dtype=np.int64)


@per_rank_table
def distinct_names(table: pd.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray]:
    """A string column of a rank table as codes (-1: NA) into its distinct values: names repeat a
    lot, so a test on them runs once per distinct name (`names_where`)."""
    codes, names = pd.factorize(table[column])
    return codes, np.asarray(names, dtype=object)


def names_where(table: pd.DataFrame, test: Callable[[str], object], column: str = "name") -> np.ndarray:
    """Per row of a rank table: whether `test` holds for its `column` value (NA never does)."""
    codes, names = distinct_names(table, column)
    hits = np.fromiter((bool(test(name)) for name in names), dtype=bool, count=len(names))
    return np.r_[hits, False][codes]


def names_matching(table: pd.DataFrame, pattern: str, column: str = "name") -> np.ndarray:
    """Per row of a rank table: whether `pattern` matches anywhere in its `column` value (str.contains)."""
    return names_where(table, re.compile(pattern).search, column)


@per_rank_table
def step_windows(steps: pd.DataFrame | None) -> Steps:
    if steps is None or steps.empty:
        return Steps(np.zeros(0, np.int64), np.zeros(0, np.int64), [])
    rows = steps.dropna(subset=["step", "start_ns", "dur_us"]).sort_values("start_ns")
    starts = rows["start_ns"].to_numpy(dtype=np.int64)
    ends = starts + np.round(rows["dur_us"].to_numpy(dtype=np.float64) * 1000).astype(np.int64)
    return Steps(starts, ends, [int(s) for s in rows["step"]])


def mean_step_time(ctx: RankContext) -> float | None:
    """Mean step time (µs) from step_trace, else from the ProfilerStep durations."""
    return _mean_step_us(ctx.tables.get("step_trace"), ctx.tables.get("steps"))


@per_rank_table
def _mean_step_us(step_trace: pd.DataFrame | None, steps: pd.DataFrame | None) -> float | None:
    step_us = mean_step_us(step_trace)
    if step_us:
        return step_us
    if steps is not None and not steps.empty:
        value = float(steps["dur_us"].mean())
        return value if value > 0 else None
    return None


def intervals(
    frame: pd.DataFrame, start: str = "start_ns", dur: str = "dur_us"
) -> tuple[np.ndarray, np.ndarray]:
    """(start, end) in ns of rows with a start; a missing or negative duration counts as zero."""
    starts = _ns(frame[start])
    durations = frame[dur].to_numpy(dtype=np.float64, na_value=0.0)
    ends = starts + np.round(np.clip(np.nan_to_num(durations), 0.0, None) * 1000).astype(np.int64)
    keep = starts != _NA_NS
    return starts[keep], ends[keep]


@per_rank_table
def free_slices(overlap: pd.DataFrame | None, steps: Steps) -> tuple[np.ndarray, np.ndarray]:
    """Device-idle slices inside the steps, sorted and disjoint: each step window minus the device's
    busy time (Overlap Analysis 'Computing' and 'Communication' slices). Unlike the 'Free' slices
    alone, this includes the step's start before its first device task (step_trace's Preparing):
    the profiler draws no 'Free' there, yet a host stall there (data loading, GC) starves the device
    all the same. Without step windows (or without busy slices), the 'Free' slices."""
    if overlap is None or overlap.empty:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    kind = overlap["kind"].astype("string")
    free = (kind == "Free").fillna(False).to_numpy(dtype=bool)
    if not steps.known or free.all():  # no step windows, or no busy slices to cut them with
        starts, ends = intervals(overlap[free])
        order = np.argsort(starts, kind="stable")
        return starts[order], ends[order]
    busy_s, busy_e = merge(*intervals(overlap[~free]))
    # The complement of the busy slices within each step window, from sorted boundaries.
    out_s, out_e = [], []
    for w_start, w_end in zip(steps.starts, steps.ends, strict=True):
        lo, hi = np.searchsorted(busy_e, w_start, side="right"), np.searchsorted(busy_s, w_end, side="left")
        edges_s = np.r_[w_start, np.minimum(busy_e[lo:hi], w_end)]
        edges_e = np.r_[np.maximum(busy_s[lo:hi], w_start), w_end]
        keep = edges_e > edges_s
        out_s.append(edges_s[keep])
        out_e.append(edges_e[keep])
    return np.concatenate(out_s).astype(np.int64), np.concatenate(out_e).astype(np.int64)


def merge(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The union of intervals as sorted disjoint intervals."""
    if len(starts) == 0:
        return starts, ends
    order = np.argsort(starts, kind="stable")
    s, e = starts[order], ends[order]
    reach = np.maximum.accumulate(e)
    new = np.r_[True, s[1:] > reach[:-1]]
    group = np.cumsum(new) - 1
    merged_ends = np.full(group[-1] + 1, np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(merged_ends, group, e)
    return s[new], merged_ends


def _covered_until(x: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Length of (disjoint, sorted) intervals covered before each point of x."""
    lengths = ends - starts
    before = np.r_[0, np.cumsum(lengths)]
    k = np.searchsorted(starts, x, side="right")
    partial = np.zeros(len(x), dtype=np.int64)
    ok = k > 0
    idx = k[ok] - 1
    partial[ok] = np.clip(x[ok] - starts[idx], 0, lengths[idx])
    return before[np.maximum(k - 1, 0)] * ok + partial


def overlap_ns(
    a_starts: np.ndarray, a_ends: np.ndarray, b_starts: np.ndarray, b_ends: np.ndarray
) -> np.ndarray:
    """Per interval of a: how long it overlaps the union of b (ns)."""
    if len(a_starts) == 0 or len(b_starts) == 0:
        return np.zeros(len(a_starts), dtype=np.int64)
    bs, be = merge(b_starts, b_ends)
    return _covered_until(a_ends, bs, be) - _covered_until(a_starts, bs, be)


def union_overlap_ns(
    a_starts: np.ndarray, a_ends: np.ndarray, b_starts: np.ndarray, b_ends: np.ndarray
) -> int:
    """How long the union of a overlaps the union of b (ns): nothing counted twice."""
    a_s, a_e = merge(a_starts, a_ends)
    return int(overlap_ns(a_s, a_e, b_starts, b_ends).sum())


def slice_at(points: np.ndarray, starts: np.ndarray, ends: np.ndarray, tolerance_ns: int = 0) -> np.ndarray:
    """Index of the (sorted, disjoint) slice containing each point, within tolerance; -1 if none."""
    if len(starts) == 0:
        return np.full(len(points), -1, dtype=np.int64)
    at = np.searchsorted(starts, points + tolerance_ns, side="right") - 1
    ok = at >= 0
    ok[ok] = ends[at[ok]] + tolerance_ns >= points[ok]
    return np.where(ok, at, -1)


def top_level(ops: pd.DataFrame) -> pd.DataFrame:
    """The ops not enclosed by another op of `ops` on the same thread: columns pos (row position in
    `ops`), tid, start, end (ns), sorted by start. `ops` must nest per thread, as framework ops do."""
    starts, ends = intervals(ops)
    pos = np.flatnonzero(_ns(ops["start_ns"]) != _NA_NS)
    tids = ops["tid"].to_numpy(dtype=np.int64, na_value=-1)[pos]
    # Per thread in time order, the longer of two ops starting together first (it encloses the other).
    order = np.lexsort((-ends, starts, tids))
    # An op is outermost when it starts after everything earlier on its thread has ended (compared
    # as int64 ns: float64 rounds today's epoch timestamps to 256 ns).
    reach, earlier = reach_before(tids[order], ends[order])
    outer = order[~earlier | (starts[order] >= reach)]
    outer = outer[np.argsort(starts[outer], kind="stable")]
    return pd.DataFrame({"pos": pos[outer], "tid": tids[outer], "start": starts[outer], "end": ends[outer]})


def reach_before(groups: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For rows sorted by group: the latest end among the earlier rows of the row's group, and
    whether the row has earlier rows in its group (where not, its reach is meaningless)."""
    reach = np.empty_like(ends)
    earlier = np.ones(len(ends), dtype=bool)
    if not len(ends):
        return reach, earlier
    bounds = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1], True])
    for lo, hi in itertools.pairwise(bounds):
        reach[lo + 1 : hi] = np.maximum.accumulate(ends[lo:hi])[:-1]
        earlier[lo] = False
    return reach, earlier


def outermost(ops: pd.DataFrame, inner: pd.DataFrame, tolerance_ns: int = 1000) -> np.ndarray:
    """For each row of `inner` (start_ns, dur_us, tid), the row position in `ops` of the outermost
    op on the same thread that encloses it; -1 when none does."""
    if ops.empty or inner.empty:
        return np.full(len(inner), -1, dtype=np.int64)
    return outermost_of(top_level(ops), inner, tolerance_ns)


@per_rank_table
def framework_ops(host_ops: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A rank's framework ops (aten::…, renumbered from 0) and their `top_level`."""
    aten = host_ops[names_where(host_ops, is_aten)].reset_index(drop=True)
    return aten, top_level(aten)


def is_aten(name: str) -> bool:
    """A framework op's name (aten::…)."""
    return name.startswith("aten::")


def outermost_of(top: pd.DataFrame, inner: pd.DataFrame, tolerance_ns: int = 1000) -> np.ndarray:
    """`outermost` from the enclosing ops' `top_level`."""
    out = np.full(len(inner), -1, dtype=np.int64)
    if top.empty or inner.empty:
        return out
    i_s, i_e = intervals(inner)
    rows = np.flatnonzero(_ns(inner["start_ns"]) != _NA_NS)
    i_tids = inner["tid"].to_numpy(dtype=np.int64, na_value=-1)[rows]
    t_tids, t_starts = top["tid"].to_numpy(), top["start"].to_numpy()
    t_ends, t_pos = top["end"].to_numpy(), top["pos"].to_numpy()
    # Per inner row, the last outermost op of its thread that started at or before it (top is sorted
    # by start; -1: none).
    enclosing = np.full(len(rows), -1, dtype=np.int64)
    for tid in np.unique(i_tids):
        mine, theirs = i_tids == tid, np.flatnonzero(t_tids == tid)
        if not len(theirs):
            continue
        at = np.searchsorted(t_starts[theirs], i_s[mine], side="right") - 1
        enclosing[mine] = np.where(at >= 0, theirs[np.maximum(at, 0)], -1)
    found = enclosing >= 0
    hit = np.flatnonzero(found)[t_ends[enclosing[found]] + tolerance_ns >= i_e[found]]
    out[rows[hit]] = t_pos[enclosing[hit]]
    return out


def user_frame(stack: Any) -> str:
    """The first frame of a call stack (innermost first, ';\\n'-separated) outside library code."""
    if stack is None or (not isinstance(stack, str)) or not stack.strip():
        return ""
    frames = [f.strip() for f in stack.replace("\r", "").split(";") if f.strip()]
    for frame in frames:
        if not any(part in frame for part in LIBRARY_FRAMES):
            return frame
    return frames[0] if frames else ""


def user_frames(stacks: pd.Series) -> pd.Series:
    """`user_frame` per distinct stack (stacks repeat a lot: map over the distinct ones only)."""
    if stacks.empty:
        return pd.Series([], dtype="string", index=stacks.index)
    values = stacks.astype(object).where(stacks.notna(), None)
    lookup = {s: user_frame(s) for s in values.dropna().unique()}
    return pd.Series(
        [lookup.get(s, "") if s is not None else "" for s in values], index=stacks.index, dtype=object
    )


@per_rank_table
def host_stalls(cann: pd.DataFrame | None, gc: pd.DataFrame | None) -> tuple[np.ndarray, np.ndarray]:
    """When the host stood still, merged (ns): in a blocking call, an online compilation, a
    device-memory call, or a recorded garbage collection."""
    parts = []
    if cann is not None and not cann.empty:
        blocking = re.compile(BLOCKING).search
        memory_apis = frozenset(knowledge("memory")["apis"])

        def stalls(name: str) -> bool:
            return bool(
                blocking(name)
                or name in (COMPILE_EXECUTE, COMPILE)
                or (name.startswith("AscendCL@") and name.rsplit("@", 1)[-1] in memory_apis)
            )

        parts.append(intervals(cann[names_where(cann, stalls)]))
    if gc is not None and not gc.empty:
        parts.append(intervals(gc))
    if not parts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return merge(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))


def us(ns: float | int) -> float:
    """ns -> µs rounded to the ns."""
    return round(float(ns) / 1000.0, 3)


def launched(kernels: pd.DataFrame, runtime_api: pd.DataFrame | None) -> pd.DataFrame:
    """GPU kernels with the runtime call that launched them (joined on the correlation id): name,
    start, end (ns), dur_us, stream_id, and the call's launch_start, launch_end (ns) and tid
    (<NA> where no call has the kernel's correlation id). Sorted by kernel start."""
    k_starts = _ns(kernels["start_ns"])
    durations = kernels["duration_us"].to_numpy(dtype=np.float64, na_value=0.0)
    frame = pd.DataFrame(
        {
            "name": kernels["name"].astype(object).to_numpy(),
            "start": k_starts,
            "end": k_starts + np.round(np.clip(np.nan_to_num(durations), 0.0, None) * 1000).astype(np.int64),
            "dur_us": durations,
            "stream_id": kernels["stream_id"].to_numpy(dtype=np.int64, na_value=-1),
            "correlation": kernels["correlation"].astype("Int64"),
        }
    )[k_starts != _NA_NS]
    calls = runtime_api if runtime_api is not None else pd.DataFrame(columns=["correlation"])
    calls = calls.dropna(subset=["correlation", "start_ns"]).drop_duplicates("correlation")
    c_starts, c_ends = intervals(calls)
    launches = pd.DataFrame(
        {
            "correlation": calls["correlation"].astype("Int64").to_numpy(),
            "launch_start": c_starts,
            "launch_end": c_ends,
            "tid": calls["tid"].astype("Int64").to_numpy(),
        }
    ).astype({"correlation": "Int64", "launch_start": "Int64", "launch_end": "Int64", "tid": "Int64"})
    joined = frame.merge(launches, on="correlation", how="left")
    return joined.sort_values("start", kind="stable").reset_index(drop=True)


def busy_before(starts: np.ndarray, activity: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """For each point, when the device last stopped being busy before it: the latest end of the
    activity (start, end ns) that started earlier (int64 min where none did). Where that end lies
    after the point, the device was busy at the point."""
    a_starts, a_ends = activity
    order = np.argsort(a_starts, kind="stable")
    reach = np.maximum.accumulate(a_ends[order]) if len(order) else np.zeros(0, np.int64)
    at = np.searchsorted(a_starts[order], starts, side="left") - 1
    return np.where(at >= 0, reach[np.maximum(at, 0)] if len(reach) else _NA_NS, _NA_NS)
