"""schedule.host_sync and schedule.synchronize_stream: the host waiting for the device.

Both start from the blocking device-runtime calls (schedule_base.BLOCKING: CANN's
aclrtSynchronizeStream*/Device/Event and synchronous aclrtMemcpy; CUDA's and HIP's
Stream/Device/EventSynchronize and synchronous Memcpy, never the *Async copies). A blocking call made
inside a framework op (aten::item, aten::to, aten::nonzero, …) on the same thread is a host
synchronisation caused by that op (schedule.host_sync); the others are explicit synchronisations
(torch.npu.synchronize() / torch.cuda.synchronize(), stream.synchronize()) or, right after each
kernel launch, launch blocking (ASCEND_LAUNCH_BLOCKING / CUDA_LAUNCH_BLOCKING)
(schedule.synchronize_stream).

Cost: while the host waits it queues no work, so the device runs dry when the wait returns and
idles until the next launch arrives. The device-idle slice (the overlap table's 'Free': Ascend's
Overlap Analysis, or the same slices derived from a GPU's kernel streams) in which a wait ends is
what the sync cost; each slice is counted once.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..report.model import Evidence, Finding
from .common import Gain, finding, group_rows, recorded_env
from .registry import NotEvaluated, RankContext, check
from .schedule_base import (
    BLOCKING,
    Steps,
    framework_ops,
    free_slices,
    intervals,
    mean_step_time,
    names_matching,
    outermost_of,
    slice_at,
    step_windows,
    us,
    user_frames,
)

# The profiles whose runtime calls these patterns know: Ascend (CANN) and GPU (CUDA, HIP).
DEVICES = frozenset({"npu", "gpu"})
STREAM_SYNC = {
    "npu": r"^AscendCL@aclrtSynchronize(?:Stream|Device)",
    "gpu": r"^(?:cuda|hip)(?:Stream|Device)Synchronize|^cu(?:Stream|Ctx)Synchronize",
}
LAUNCH = {"npu": r"^Node@launch$", "gpu": r"^(?:cuda|hip|cu)(?:Ext)?LaunchKernel"}
# The debugging switch that makes every launch synchronous (HIP honours CUDA_LAUNCH_BLOCKING too).
LAUNCH_BLOCKING_ENV = {"npu": "ASCEND_LAUNCH_BLOCKING", "gpu": "CUDA_LAUNCH_BLOCKING"}
# The wait returns a few µs after the device drained; host and device clocks agree to about that.
END_TOLERANCE_NS = 50_000
CO_OCCURRENCE = 0.5  # syncs right after a launch / launches above this: launch blocking (reference)
# Launches per step below which a co-occurrence says nothing (one launch and the sync that times it).
MIN_LAUNCHES = 10
MIN_SHARE = 0.01  # device idle after the waits, as a share of the step, worth a finding
MIN_PER_STEP = 5.0  # host syncs per step worth a (low priority) finding even when the device is busy
TOP = 10
# Framework op -> advice family (the suggestions differ by what caused the wait).
FAMILIES = {
    "item": ("aten::item", "aten::_local_scalar_dense", "aten::is_nonzero", "aten::equal"),
    "copy": ("aten::to", "aten::_to_copy", "aten::copy_", "aten::cpu", "aten::contiguous"),
    "shape": ("aten::nonzero", "aten::masked_select", "aten::unique", "aten::_unique2", "aten::index",
              "aten::repeat_interleave", "aten::where", "aten::argwhere"),
}  # fmt: skip
_NEEDS = frozenset({"host_ops", "runtime_api", "overlap", "steps", "step_trace"})


def _blocking(ctx: RankContext) -> tuple[pd.DataFrame, Steps]:
    """The blocking device-runtime calls inside the profiled steps, and the step windows."""
    steps = step_windows(ctx.tables["steps"])
    cann = ctx.tables["runtime_api"]
    if cann.empty:
        raise NotEvaluated(ctx.messages.for_device(ctx.profile.device).t("schedule.sync.no_cann"))
    blocking = cann[names_matching(cann, BLOCKING) & steps.contains(cann["start_ns"])].reset_index(drop=True)
    return blocking, steps


def _enclosing(ctx: RankContext, blocking: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """Framework ops (aten::…) and, per blocking call, the outermost one enclosing it (-1: none)."""
    aten, top = framework_ops(ctx.tables["host_ops"])
    return aten, outermost_of(top, blocking)


def _idle_after(
    starts: np.ndarray,
    ends: np.ndarray,
    free: tuple[np.ndarray, np.ndarray],
    drained: np.ndarray | bool = True,
) -> np.ndarray:
    """Index of the device-idle slice in which each wait ended (-1: none). Where `drained`, only a
    slice that began after the wait did counts: the wait drained a busy device, and a wait made while
    the device already stood idle (e.g. before the step's first launch) returns at once and costs
    nothing. Syncs right after each launch (launch blocking) cost every gap they end in: the host
    never gets ahead of the device, whether the kernel had finished or not."""
    slices = slice_at(ends, free[0], free[1], END_TOLERANCE_NS)
    began = np.where(slices >= 0, free[0][np.maximum(slices, 0)], 0) if len(free[0]) else slices
    late = began + END_TOLERANCE_NS < starts
    return np.where((slices >= 0) & ~(late & drained), slices, -1)


def _unique_idle_ns(slices: np.ndarray, free: tuple[np.ndarray, np.ndarray]) -> int:
    hit = np.unique(slices[slices >= 0])
    return int((free[1][hit] - free[0][hit]).sum()) if len(hit) else 0


def _slice_us(slices: np.ndarray, free: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Per wait: the length (µs) of the idle slice it ended in (0 when none)."""
    if not len(free[0]):
        return np.zeros(len(slices))
    return np.where(slices >= 0, (free[1] - free[0])[np.maximum(slices, 0)], 0) / 1000.0


def _family(name: str) -> str:
    for family, names in FAMILIES.items():
        if name in names:
            return family
    return "other"


@check("schedule.host_sync", "schedule", needs=_NEEDS, devices=DEVICES)
def host_sync(ctx: RankContext) -> list[Finding]:
    device = ctx.profile.device
    m = ctx.messages.for_device(device)
    blocking, steps = _blocking(ctx)
    if blocking.empty:
        return []
    aten, owner = _enclosing(ctx, blocking)
    inside = owner >= 0
    if not inside.any():
        return []
    c_starts, c_ends = intervals(blocking)
    # One host sync per enclosing op (aten::item may both synchronise and copy): its calls' time,
    # from the first call's start to the last call's end.
    by_op = pd.DataFrame(
        {
            "op": owner[inside],
            "start": c_starts[inside],
            "end": c_ends[inside],
            "dur_us": blocking["dur_us"].to_numpy(dtype=np.float64)[inside],
        }
    ).groupby("op", sort=True)
    blocked_us, wait_start, wait_end = by_op["dur_us"].sum(), by_op["start"].min(), by_op["end"].max()
    ops = aten.iloc[blocked_us.index.to_numpy()]
    free = free_slices(ctx.tables["overlap"], steps)
    slices = _idle_after(wait_start.to_numpy(dtype=np.int64), wait_end.to_numpy(dtype=np.int64), free)
    table = pd.DataFrame(
        {
            "op": ops["name"].to_numpy(dtype=object),
            "call_site": user_frames(ops["call_stack"].reset_index(drop=True)).to_numpy(dtype=object),
            "start_ns": ops["start_ns"].to_numpy(dtype=np.int64),
            "step": steps.step_of(ops["start_ns"]),
            "blocked_us": blocked_us.to_numpy(dtype=np.float64),
            "idle_after_us": _slice_us(slices, free),
        }
    )
    count = len(table)
    n_steps = steps.count
    idle_ns = _unique_idle_ns(slices, free)
    gain = Gain(us(idle_ns / n_steps), mean_step_time(ctx))
    blocked = float(table["blocked_us"].sum()) / n_steps
    per_step = count / n_steps
    if gain.share < MIN_SHARE and per_step < MIN_PER_STEP:
        return []

    call_sites = table["call_site"].to_numpy(dtype=object)
    call_sites[call_sites == ""] = m.t("schedule.host_sync.no_stack")
    op_names = table["op"].to_numpy(dtype=object)
    idle_after, blocked_us = table["idle_after_us"].to_numpy(), table["blocked_us"].to_numpy()
    # Per (op, call site), in order of first appearance: count and pandas' sums (as before).
    groups, first_row = group_rows(op_names, call_sites)
    sums = (
        pd.DataFrame({"blocked_us": blocked_us, "idle_after_us": idle_after}).groupby(groups, sort=True).sum()
    )
    site_count, site_idle = np.bincount(groups), sums["idle_after_us"].to_numpy()
    by_site = np.lexsort((-site_count, -site_idle))  # most idle after, then most calls, first
    site_rows = [
        [op, site, count, round(count / n_steps, 2), round(blocked_sum, 3), round(idle_sum, 3)]
        for op, site, count, blocked_sum, idle_sum in zip(
            op_names[first_row[by_site]].tolist(),
            call_sites[first_row[by_site]].tolist(),
            site_count[by_site].tolist(),
            sums["blocked_us"].to_numpy()[by_site].tolist(),
            site_idle[by_site].tolist(),
            strict=True,
        )
    ]
    first = dict(zip(steps.numbers, steps.starts, strict=True))
    largest = np.argsort(-idle_after, kind="stable")[:TOP]
    largest_rows = [
        [
            step if step >= 0 else None,
            round((start_ns - first[step]) / 1e6, 3) if step in first else None,
            op,
            site,
            round(blocked, 3),
            round(idle, 3),
        ]
        for step, start_ns, op, site, blocked, idle in zip(
            table["step"].to_numpy()[largest].tolist(),
            table["start_ns"].to_numpy()[largest].tolist(),
            op_names[largest].tolist(),
            call_sites[largest].tolist(),
            blocked_us[largest].tolist(),
            idle_after[largest].tolist(),
            strict=True,
        )
    ]
    top_op, top_site, top_count = site_rows[0][:3]
    description = "\n".join(
        [
            m.t(
                "schedule.host_sync.description",
                count=count,
                steps=n_steps,
                per_step=per_step,
                sites=len(site_rows),
                blocked_ms=blocked / 1000.0,
                idle_ms=gain.ms,
                share=gain.share,
            ),
            m.t("schedule.host_sync.top", op=top_op, site=top_site, count=top_count),
            m.t("schedule.host_sync.gain"),
        ]
    )
    families = list(dict.fromkeys(_family(row[0]) for row in site_rows))
    suggestions = [s for f in families for s in m.t_list(f"schedule.host_sync.suggestions.{f}")]
    if not ops["call_stack"].notna().any():
        suggestions += m.t_list("schedule.host_sync.suggestions.stack")
    return [
        finding(
            title=m.t("schedule.host_sync.title", per_step=per_step, idle_ms=gain.ms, share=gain.share),
            lines=[description],
            suggestions=suggestions,
            ranks=[ctx.rank.rank],
            step=steps.single,
            gain=gain,
            evidence=[
                Evidence(
                    m.t("schedule.host_sync.evidence.sites"),
                    ["op", "call_site", "count", "count_per_step", "blocked_us", "idle_after_us"],
                    site_rows,
                ),
                Evidence(
                    m.t("schedule.host_sync.evidence.largest"),
                    ["step", "at_ms", "op", "call_site", "blocked_us", "idle_after_us"],
                    largest_rows,
                ),
            ],
        )
    ]


def _after_launch(cann: pd.DataFrame, steps: Steps, device: str) -> tuple[np.ndarray, int]:
    """Per runtime_api row: a stream sync that directly follows a kernel launch on the same thread;
    and the number of launches, inside the steps."""
    is_launch = names_matching(cann, LAUNCH[device])
    is_sync = names_matching(cann, STREAM_SYNC[device])
    keep = np.flatnonzero((is_launch | is_sync) & steps.contains(cann["start_ns"]))
    tids = cann["tid"].to_numpy(dtype=np.int64, na_value=-1)[keep]
    # The events per thread in time order; each one's predecessor on its thread.
    order = np.lexsort((cann["start_ns"].to_numpy(dtype=np.int64, na_value=0)[keep], tids))
    rows, tids, launch = keep[order], tids[order], is_launch[keep][order]
    after_launch = np.r_[False, launch[:-1] & (tids[1:] == tids[:-1])] if len(rows) else launch
    after = np.zeros(len(cann), dtype=bool)
    after[rows[~launch & after_launch]] = True
    return after, int(launch.sum())


# The recorded ASCEND_LAUNCH_BLOCKING only explains what the launches did; unrecorded is unset (a
# PyTorch profiler trace records no environment).
@check(
    "schedule.synchronize_stream",
    "schedule",
    needs=_NEEDS,
    optional=frozenset({"environment"}),
    devices=DEVICES,
)
def synchronize_stream(ctx: RankContext) -> list[Finding]:
    device = ctx.profile.device
    m = ctx.messages.for_device(device)
    _, steps = _blocking(ctx)
    cann = ctx.tables["runtime_api"]
    after_mask, launches = _after_launch(cann, steps, device)
    after_launch = int(after_mask.sum())
    ratio = after_launch / launches if launches else 0.0
    env = recorded_env(ctx.tables.get("environment"))
    env_name = LAUNCH_BLOCKING_ENV[device]
    blocking_env = str(env.get(env_name, "")).strip() == "1"
    # Judged on what the launches did: the variable alone is environment.variables' to report (a
    # value recorded but not in force, e.g. set after torch_npu started, leaves launches asynchronous).
    launch_blocking = ratio > CO_OCCURRENCE and launches >= MIN_LAUNCHES * steps.count

    # All stream/device syncs outside framework ops: after launches (launch blocking) or explicit;
    # without launch blocking, a sync after a launch is an explicit one (it times that kernel).
    in_steps = steps.contains(cann["start_ns"])
    is_sync = names_matching(cann, STREAM_SYNC[device])
    after_mask &= launch_blocking
    syncs = (
        cann[is_sync & in_steps].assign(after_launch=after_mask[is_sync & in_steps]).reset_index(drop=True)
    )
    if not syncs.empty:
        _, owner = _enclosing(ctx, syncs)
        syncs = syncs[owner < 0].reset_index(drop=True)
    explicit = syncs[~syncs["after_launch"].to_numpy(dtype=bool)]
    n_steps = steps.count
    free = free_slices(ctx.tables["overlap"], steps)
    slices = _idle_after(*intervals(syncs), free, ~syncs["after_launch"].to_numpy(dtype=bool))
    gain = Gain(us(_unique_idle_ns(slices, free) / n_steps), mean_step_time(ctx))
    if syncs.empty or (not launch_blocking and gain.share < MIN_SHARE):
        return []

    lines = []
    if launch_blocking:
        lines.append(
            m.t(
                "schedule.synchronize_stream.launch_blocking",
                syncs=after_launch,
                launches=launches,
                ratio=ratio,
            )
        )
        if blocking_env:
            lines.append(m.t("schedule.synchronize_stream.env"))
    per_step = len(explicit) / n_steps
    host_ms = float(syncs["dur_us"].sum()) / n_steps / 1000.0
    lines.append(
        m.t(
            "schedule.synchronize_stream.description",
            count=len(explicit),
            total=len(syncs),
            steps=n_steps,
            per_step=per_step,
            host_ms=host_ms,
            idle_ms=gain.ms,
            share=gain.share,
        )
    )
    lines.append(m.t("schedule.synchronize_stream.gain"))
    kinds = syncs.assign(idle_after_us=_slice_us(slices, free)).groupby(["name", "after_launch"], sort=True)
    by_name = pd.concat(
        [
            kinds.size().rename("count"),
            kinds["dur_us"].sum().rename("total_us"),
            kinds["dur_us"].max().rename("max_us"),
            kinds["idle_after_us"].sum(),
        ],
        axis=1,
    ).reset_index()
    rows = [
        [r.name, bool(r.after_launch), int(r.count), round(r.count / n_steps, 2), round(r.total_us, 3),
         round(r.max_us, 3), round(r.idle_after_us, 3)]
        for r in by_name.itertuples(index=False)
    ]  # fmt: skip
    evidence = [
        Evidence(
            m.t("schedule.synchronize_stream.evidence.calls"),
            ["api", "after_launch", "count", "count_per_step", "total_us", "max_us", "idle_after_us"],
            rows,
        ),
        Evidence(
            m.t("schedule.synchronize_stream.evidence.launch"),
            ["syncs_after_launch", "launches", "co_occurrence_ratio", "threshold", env_name.lower()],
            [[after_launch, launches, round(ratio, 4), CO_OCCURRENCE, env.get(env_name)]],
        ),
    ]
    suggestions = (
        m.t_list("schedule.synchronize_stream.suggestions.launch_blocking") if launch_blocking else []
    )
    if len(explicit) or not launch_blocking:
        suggestions += m.t_list("schedule.synchronize_stream.suggestions.explicit")
    title_key = "launch_blocking" if launch_blocking else "explicit"
    return [
        finding(
            title=m.t(
                f"schedule.synchronize_stream.title.{title_key}",
                per_step=per_step,
                ratio=ratio,
                gain_ms=gain.ms,
                share=gain.share,
            ),
            lines=lines,
            suggestions=suggestions,
            ranks=[ctx.rank.rank],
            step=steps.single,
            evidence=evidence,
            gain=gain,
        )
    ]
