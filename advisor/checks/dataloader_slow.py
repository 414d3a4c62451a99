"""dataloader.slow: fetching the next batch stalls the training step.

The reference (reference-advisor.md §2.17) flags any framework event whose name contains
"dataloader" at 10 ms or more and describes only the first one. Here the fetches are the
`enumerate(DataLoader)#…__next__` events (the python_function frames of torch/utils/data/dataloader.py
record the same wait again; they count, outermost only, when the trace has no fetch events), and
every slow fetch is listed per step. A fetch is slow from 10 ms, or from 5 % of its step when it
lasts at least 1 ms (a 10 ms bar never trips on short steps; knowledge/dataloader.json).
`_SingleProcessDataLoaderIter` means num_workers=0: the main process loads and decodes every batch
itself. Gain per step: the device-idle time (Overlap Analysis 'Free') during the slow fetches, each
instant counted once, averaged over the steps: a fetch while the device still runs queued work
costs nothing (a prefetching loader returns a ready batch in well under a millisecond). Without the
Overlap Analysis, the fetches' time capped by the step's free time.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..report.model import Evidence, Finding
from .common import Gain, finding, mean_step_us
from .knowledge import knowledge
from .memory_operators import step_of
from .registry import NotEvaluated, RankContext, check
from .schedule_base import free_slices, intervals, step_windows, union_overlap_ns

SINGLE_PROCESS = "singleprocess"
MULTI_PROCESS = "multiprocessing"


def outermost(events: pd.DataFrame) -> pd.DataFrame:
    """The events not nested inside an earlier event of the same thread, ordered by thread, start and
    longest first."""
    if events.empty:
        return events
    tid = events["tid"].fillna(-1).to_numpy(dtype="int64")
    start = events["start_ns"].to_numpy(dtype="int64")
    end = events["start_ns"].to_numpy(dtype="float64") + events["dur_us"].fillna(0.0).to_numpy() * 1e3
    order = np.lexsort((-end, start, tid))  # stable: equal events keep their order
    tid, end = tid[order], end[order]
    first = np.flatnonzero(np.r_[True, tid[1:] != tid[:-1]])  # each thread's first event
    # The latest end among the thread's earlier events (-inf before its first).
    reach = np.concatenate([np.maximum.accumulate(part) for part in np.split(end, first[1:])])
    previous = np.r_[-np.inf, reach[:-1]]
    previous[first] = -np.inf
    return events.iloc[order[end > previous]]


def _iterator(name: pd.Series) -> pd.Series:
    lower = name.str.lower().str.replace("_", "", regex=False)
    return pd.Series(
        np.select(
            [
                lower.str.contains(SINGLE_PROCESS).fillna(False),
                lower.str.contains(MULTI_PROCESS).fillna(False),
            ],
            ["single_process", "multi_process"],
            "unknown",
        ),
        index=name.index,
    )


@check(
    "dataloader.slow",
    "dataloader",
    needs=frozenset({"host_ops", "steps", "step_trace"}),
    optional=frozenset({"overlap"}),
)
def dataloader_slow(ctx: RankContext) -> list[Finding]:
    m = ctx.messages.for_device(ctx.profile.device)
    host = ctx.tables["host_ops"]
    if host.empty:
        raise NotEvaluated(m.t("dataloader.slow.no_host_ops"))
    name = host["name"].astype("string")
    rows = np.flatnonzero(
        name.str.contains("dataloader", case=False, regex=False).to_numpy(bool, na_value=False)
    )
    # torch records one `enumerate(DataLoader)#…` event per fetch; with_stack adds python frames of
    # the same wait, which may start earlier: use the fetch events when there are any.
    fetches = np.array([text.startswith("enumerate(DataLoader)") for text in name.iloc[rows]], dtype=bool)
    if fetches.any():
        rows = rows[fetches]
    loader = outermost(host.iloc[rows].dropna(subset=["start_ns", "dur_us"]))
    steps = ctx.tables["steps"]
    windowed = (steps["start_ns"].notna().to_numpy() & steps["dur_us"].notna().to_numpy()).any()
    if windowed:
        step = step_of(loader["start_ns"], steps)
        loader = loader.assign(step=step)[step.notna().to_numpy()]
        n_steps = int(steps["step"].nunique()) or 1
    else:
        loader = loader.assign(step=pd.Series(pd.NA, index=loader.index, dtype="Int64"))
        n_steps = 1
    rules = knowledge("dataloader")
    window_us: dict[object, float] = {}  # each step's window (its first row's)
    for step, dur in zip(
        steps["step"], steps["dur_us"].to_numpy(dtype="float64", na_value=np.nan), strict=True
    ):
        if not pd.isna(step):
            window_us.setdefault(step, dur)
    step_dur = np.array([window_us.get(step, np.nan) for step in loader["step"]], dtype="float64")
    dur = loader["dur_us"].to_numpy(dtype="float64", na_value=np.nan)
    relative = (dur >= rules["min_us"]) & (dur >= rules["slow_step_share"] * step_dur)
    slow = loader[(dur >= rules["slow_us"]) | relative].copy()
    if slow.empty:
        return []
    slow["iterator"] = _iterator(slow["name"].astype("string"))

    trace = ctx.tables["step_trace"].dropna(subset=["step", "free_us"])
    free = trace.groupby("step")["free_us"].sum()
    overlap = ctx.tables.get("overlap")
    if overlap is not None and not overlap.empty:
        starts, ends = intervals(slow)
        idle_ns = union_overlap_ns(starts, ends, *free_slices(overlap, step_windows(steps)))
        lost_us = idle_ns / 1000.0
    else:  # no idle slices: each step's stall capped by the device's free time in that step
        stall = slow.groupby("step", dropna=False)["dur_us"].sum()
        lost_us = sum(
            min(total, float(free[step])) if pd.notna(step) and step in free.index else total
            for step, total in stall.items()
        )
    gain = Gain(lost_us / n_steps, mean_step_us(ctx.tables["step_trace"]))

    kinds = sorted(set(slow["iterator"]))
    lines = [
        m.t(
            "dataloader.slow.summary",
            slow=len(slow),
            fetches=len(loader),
            n_steps=n_steps,
            threshold_ms=rules["slow_us"] / 1e3,
            step_share=rules["slow_step_share"],
            max_ms=float(slow["dur_us"].max()) / 1e3,
            mean_ms=float(slow["dur_us"].mean()) / 1e3,
        )
    ]
    lines += [m.t(f"dataloader.slow.iterator.{kind}") for kind in kinds]
    if not windowed:
        lines.append(m.t("dataloader.slow.no_steps"))
    key = "gain" if overlap is not None and not overlap.empty else "gain.capped"
    lines.append(m.t(f"dataloader.slow.{key}", gain_us=gain.per_step_us, share=gain.share, n_steps=n_steps))
    suggestions = (
        m.t_list("dataloader.slow.suggestions.single_process")
        if "single_process" in kinds
        else m.t_list("dataloader.slow.suggestions.workers")
    )
    suggestions += m.t_list("dataloader.slow.suggestions.io")

    rows = [
        [
            None if pd.isna(r.step) else int(r.step),
            r.name,
            r.iterator,
            round(float(r.dur_us), 3),
            None if pd.isna(r.step) or r.step not in free.index else round(float(free[r.step]), 3),
        ]
        for r in slow.sort_values("start_ns").itertuples(index=False)
    ]
    single = "single_process" in kinds
    return [
        finding(
            title=m.t(
                "dataloader.slow.title.single" if single else "dataloader.slow.title",
                slow=len(slow),
                max_ms=float(slow["dur_us"].max()) / 1e3,
                gain_ms=gain.ms,
                share=gain.share,
            ),
            lines=lines,
            suggestions=suggestions,
            ranks=[ctx.rank.rank],
            step=int(slow["step"].iloc[0]) if slow["step"].nunique() == 1 else None,
            gain=gain,
            evidence=[
                Evidence(
                    m.t("dataloader.slow.evidence.events"),
                    ["step", "name", "iterator", "duration_us", "step_free_us"],
                    rows,
                )
            ],
        )
    ]
