"""comparison.kernel / comparison.api / comparison.regression: where the target loses time against a baseline.

The target is one rank of the analysed run; the baseline is the same rank of another run (--compare) or,
without one, the fastest rank of the same run (ctx.mode "ranks"). The two sides may have profiled
different numbers of steps, so every figure is per step: a table's steps are its distinct step numbers
(rows without a step count as one more step). Differences are target minus baseline (positive: the
target spends more); ratios are target / baseline (above 1: the target is slower), the reverse of the
reference's benchmark / target.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import pandas as pd

from ..report.messages import Messages
from ..report.model import Evidence, Finding
from .common import STEP_PARTS, Gain, finding, group_rows, mean_step_us, ms, share_of_step, step_times_us
from .registry import ACCELERATORS, ComparisonContext, NotEvaluated, check, running_check
from .schedule_base import names_where, reach_before

# A row counts as slower when it spends more than this share of the baseline's time more, and more than
# NOISE_US µs per step more: run-to-run jitter must not add up to a finding. Host API times vary more
# between runs than kernel times.
NOISE_SHARE = {"kernel": 0.05, "api": 0.1}
NOISE_US = 1.0
# A finding when the time lost in slower rows is at least this share of the target's step.
MATERIAL_SHARE = {"kernel": 0.005, "api": 0.01}
# Regression: the target's step must be at least this much longer than the baseline's.
REGRESSION_SHARE = 0.02
TOP_ROWS = 5
KERNEL_KEY = ("name", "op_type", "input_shapes")
STATS = ("calls_per_step", "total_us_per_step", "avg_us", "max_us", "min_us")


SeriesOrArray = TypeVar("SeriesOrArray", pd.Series, np.ndarray)


def n_steps(frame: pd.DataFrame | None) -> int:
    """The number of steps a per-step table covers: distinct steps, plus one for rows without a step."""
    if frame is None or frame.empty or "step" not in frame.columns:
        return 1
    steps = frame["step"]
    return max(1, int(steps.nunique(dropna=True)) + int(bool(steps.isna().any())))


def side_stats(frame: pd.DataFrame, keys: Sequence[str], duration: str, steps: int) -> pd.DataFrame:
    """Per key: calls and total time per step, avg/max/min per call (NaN durations are not time)."""
    columns = [key_values(frame[key]) for key in keys]
    groups, first = group_rows(*columns)
    durations = pd.Series(pd.to_numeric(frame[duration], errors="coerce").to_numpy(dtype=np.float64))
    # Sorted group numbers are the keys in order of first appearance; pandas' sums, as before.
    grouped = durations.groupby(groups, sort=True)
    calls = np.bincount(groups, minlength=len(first))
    total = grouped.sum().to_numpy()
    index = (
        pd.MultiIndex.from_arrays([column[first] for column in columns], names=list(keys))
        if len(keys) > 1
        else pd.Index(columns[0][first], name=keys[0])
    )
    return pd.DataFrame(
        {
            "calls_per_step": calls / steps,
            "total_us_per_step": total / steps,
            "avg_us": total / calls,
            "max_us": grouped.max().to_numpy(),
            "min_us": grouped.min().to_numpy(),
        },
        index=index,
    )


def key_values(column: pd.Series) -> np.ndarray:
    """A key column as str objects, "" for NA: grouping by pyarrow-backed strings costs several times
    more than by plain Python strings."""
    return column.astype("string").to_numpy(dtype=object, na_value="")


def compare_stats(target: pd.DataFrame, baseline: pd.DataFrame) -> pd.DataFrame:
    """Both sides side by side (keys missing on a side: no calls, no time, so 0 for every per-step
    figure), sorted by time lost."""
    both = target.add_prefix("target_").join(baseline.add_prefix("baseline_"), how="outer")
    values = {column: both[column].to_numpy(dtype=np.float64) for column in both.columns}
    for column in both.columns:
        if column.endswith("_per_step"):
            values[column] = _nan_as_zero(values[column])
    t_total, base = values["target_total_us_per_step"], values["baseline_total_us_per_step"]
    values["diff_total_us_per_step"] = t_total - base
    values["ratio_total"] = np.divide(t_total, base, out=np.full(len(base), np.nan), where=base > 0)
    values["diff_avg_us"] = values["target_avg_us"] - values["baseline_avg_us"]
    both = pd.DataFrame(values, index=both.index)
    return both.sort_values("diff_total_us_per_step", ascending=False, kind="stable")


def slower(diff: SeriesOrArray, baseline: SeriesOrArray, noise_share: float) -> SeriesOrArray:
    """Rows whose extra time is above run-to-run noise."""
    return (diff > NOISE_US) & (diff > noise_share * baseline)


@dataclass(frozen=True)
class Loss:
    lost_us: float  # per step, in rows slower beyond noise
    rows: int
    more_calls_us: float  # of which: more calls at the baseline's time per call
    slower_calls_us: float  # of which: each call slower
    net_us: float  # all rows, signed


def _nan_as_zero(values: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(values), 0.0, values)


def loss(table: pd.DataFrame, kind: str, diff_col: str, base_col: str) -> Loss:
    def column(name: str) -> np.ndarray:
        return table[name].to_numpy(dtype=np.float64)

    diff = column(diff_col)
    hit = slower(diff, column(base_col), NOISE_SHARE[kind])
    # Split the time lost: extra calls priced at the baseline's avg, the rest is calls that got slower.
    target_avg, base_avg = column("target_avg_us")[hit], column("baseline_avg_us")[hit]
    base_avg = _nan_as_zero(np.where(np.isnan(base_avg), target_avg, base_avg))
    more_calls = np.clip(
        (column("target_calls_per_step") - column("baseline_calls_per_step"))[hit] * base_avg, 0.0, None
    )
    more_calls = np.minimum(more_calls, diff[hit])
    # NaN-skipping sums, as pandas' were.
    lost, more_calls_us = float(np.nansum(diff[hit])), float(np.nansum(more_calls))
    return Loss(lost, int(hit.sum()), more_calls_us, lost - more_calls_us, float(np.nansum(diff)))


def _round(value: object) -> object:
    if isinstance(value, float):
        return round(value, 3) if math.isfinite(value) else None
    return value


def evidence_rows(table: pd.DataFrame, keys: Sequence[str], columns: Sequence[str]) -> list[list[object]]:
    flat = table.reset_index()
    return [[_round(v) for v in row] for row in flat[[*keys, *columns]].itertuples(index=False, name=None)]


def _label(key: tuple[str, ...] | str) -> str:
    parts = [key] if isinstance(key, str) else [p for p in key if p]
    return parts[0] + (f" ({', '.join(parts[1:])})" if len(parts) > 1 else "")


def _step_us(ctx: ComparisonContext, fallback: float) -> float:
    """The target's mean step time; its compared total when the step trace gives none."""
    step = mean_step_us(ctx.target_tables.get("step_trace"))
    return step if step else fallback


def _top_lines(m: Messages, kind: str, table: pd.DataFrame, diff_col: str, base_col: str) -> list[str]:
    prefix = f"comparison.{kind}"
    hit = table[slower(table[diff_col], table[base_col], NOISE_SHARE[kind])]
    hit = hit.sort_values(diff_col, ascending=False, kind="stable").head(TOP_ROWS)
    return [
        m.t(
            f"{prefix}.top_line",
            what=_label(key),
            diff_ms=ms(float(row[diff_col])),
            target_calls=float(row["target_calls_per_step"]),
            baseline_calls=float(row["baseline_calls_per_step"]),
            target_avg=float(row["target_avg_us"]) if pd.notna(row["target_avg_us"]) else 0.0,
            baseline_avg=float(row["baseline_avg_us"]) if pd.notna(row["baseline_avg_us"]) else 0.0,
        )
        for key, row in hit.iterrows()
    ]


def _finding(
    ctx: ComparisonContext,
    lost: Loss,
    gain: Gain,
    lines: list[str],
    evidence: Evidence,
) -> Finding:
    m, check_id = ctx.messages, running_check().id
    # Suggestions follow where the time went: more calls (model/config changed) or slower calls.
    kind = "more_calls" if lost.more_calls_us > lost.slower_calls_us else "slower_calls"
    return finding(
        title=m.t(
            f"{check_id}.title",
            target=ctx.label("target"),
            baseline=ctx.label("baseline"),
            lost_ms=ms(lost.lost_us),
            gain_ms=gain.ms,
            share=gain.share,
            rows=lost.rows,
        ),
        lines=lines,
        suggestions=m.t_list(f"{check_id}.suggestions.{ctx.mode}.{kind}"),
        ranks=[ctx.target_rank.rank],
        evidence=[evidence],
        gain=gain,
    )


def side_columns(mode: str, columns: Sequence[str]) -> list[str]:
    """Evidence column names as the sides are: without a baseline run (mode "ranks") they are the
    slowest and the fastest rank of this run, and no column may call one of them the baseline."""
    if mode == "baseline":
        return list(columns)
    names = {"target_": "slowest_", "baseline_": "fastest_"}
    return [
        next((new + c[len(old) :] for old, new in names.items() if c.startswith(old)), c) for c in columns
    ]


def _common_lines(ctx: ComparisonContext, kind: str, lost: Loss, t_steps: int, b_steps: int) -> list[str]:
    m = ctx.messages
    return [
        m.t(
            f"comparison.{kind}.summary",
            target=ctx.label("target"),
            baseline=ctx.label("baseline"),
            lost_ms=ms(lost.lost_us),
            rows=lost.rows,
            net_ms=ms(lost.net_us),
            target_steps=t_steps,
            baseline_steps=b_steps,
            noise_share=NOISE_SHARE[kind],
            noise_us=NOISE_US,
        ),
        m.t(
            "comparison.split",
            more_calls_ms=ms(lost.more_calls_us),
            slower_calls_ms=ms(lost.slower_calls_us),
            baseline=ctx.label("baseline"),
        ),
    ]


# No kernels on a CPU-only trace: its operators are compared by comparison.api.
@check(
    "comparison.kernel",
    "comparison",
    needs=frozenset({"kernels", "step_trace"}),
    scope="comparison",
    devices=ACCELERATORS,
)
def comparison_kernel(ctx: ComparisonContext) -> list[Finding]:
    m = ctx.messages
    target, baseline = ctx.target_tables["kernels"], ctx.baseline_tables["kernels"]
    if target.empty and baseline.empty:
        raise NotEvaluated(m.t("comparison.kernel.no_data"))
    t_steps, b_steps = n_steps(target), n_steps(baseline)
    table = compare_stats(
        side_stats(compute_kernels(target), KERNEL_KEY, "duration_us", t_steps),
        side_stats(compute_kernels(baseline), KERNEL_KEY, "duration_us", b_steps),
    )
    lost = loss(table, "kernel", "diff_total_us_per_step", "baseline_total_us_per_step")
    t_total = float(table["target_total_us_per_step"].sum())
    step_us = _step_us(ctx, t_total)
    if lost.lost_us <= 0 or share_of_step(lost.lost_us, step_us) < MATERIAL_SHARE["kernel"]:
        return []
    lines = _common_lines(ctx, "kernel", lost, t_steps, b_steps)
    lines += _top_lines(m, "kernel", table, "diff_total_us_per_step", "baseline_total_us_per_step")
    lines.append(m.t("comparison.kernel.gain", gain_ms=ms(lost.lost_us), baseline=ctx.label("baseline")))
    # The differences first: in a narrow pane they are what the reader needs on screen.
    columns = ["diff_total_us_per_step", "ratio_total", "diff_avg_us"]
    columns += [f"{side}_{s}" for side in ("target", "baseline") for s in STATS]
    evidence = Evidence(
        m.t("comparison.kernel.evidence", target=ctx.label("target"), baseline=ctx.label("baseline")),
        [*KERNEL_KEY, *side_columns(ctx.mode, columns)],
        evidence_rows(table, KERNEL_KEY, columns),
    )
    return [_finding(ctx, lost, Gain(lost.lost_us, step_us), lines, evidence)]


def compute_kernels(kernels: pd.DataFrame) -> pd.DataFrame:
    """The compared columns (KERNEL_KEY, duration_us) of the kernels that compute: communication
    kernels (HCCL) last as long as the slowest peer makes them wait, and are named per instance and
    run (hcom_allReduce__586_0_1); exposed communication is compared by comparison.regression and the
    communication checks."""
    hccl = names_where(kernels, {"HCCL"}.__contains__, "accelerator_core") | names_where(kernels, _is_hcom)
    return kernels[[*KERNEL_KEY, "duration_us"]][~hccl]


def _is_hcom(name: str) -> bool:
    return name.startswith("hcom_")


def step_windows(host_ops: pd.DataFrame, step_trace: pd.DataFrame | None) -> pd.DataFrame:
    """ProfilerStep#N spans (step, start_ns, end_ns), only the steps the step trace kept (--step)."""
    marks = host_ops[names_where(host_ops, _is_step_mark)]
    steps = pd.to_numeric(marks["name"].str.slice(len("ProfilerStep#")), errors="coerce")
    windows = pd.DataFrame(
        {
            "step": steps.to_numpy(),
            "start_ns": marks["start_ns"].astype("Float64").to_numpy(),
            "end_ns": (marks["start_ns"].astype("Float64") + marks["dur_us"] * 1000.0).to_numpy(),
        }
    ).dropna()
    if step_trace is not None and not step_trace.empty:
        kept = set(step_trace["step"].dropna().astype(int))
        if kept and kept & set(windows["step"].astype(int)):
            windows = windows[windows["step"].astype(int).isin(kept)]
    return windows.sort_values("start_ns").reset_index(drop=True)


def framework_ops(host_ops: pd.DataFrame, step_trace: pd.DataFrame | None) -> tuple[pd.DataFrame, int]:
    """The cpu_op events inside the profiled steps, with a `top_level` flag (not nested in another cpu_op
    of the same thread: their times add up without double counting), and the number of steps."""
    keep = (
        names_where(host_ops, {"cpu_op"}.__contains__, "cat")
        & host_ops["start_ns"].notna().to_numpy(dtype=bool)
        & host_ops["dur_us"].notna().to_numpy(dtype=bool)
        & ~names_where(host_ops, _is_step_mark)
    )
    name = host_ops["name"].to_numpy(dtype=object, na_value="")[keep]
    tid = host_ops["tid"].to_numpy(dtype=np.float64, na_value=-1.0)[keep]
    start = host_ops["start_ns"].to_numpy(dtype=np.float64, na_value=np.nan)[keep]
    dur = np.clip(host_ops["dur_us"].to_numpy(dtype=np.float64, na_value=np.nan)[keep], 0.0, None)
    windows = step_windows(host_ops, step_trace)
    rows = np.arange(len(name))
    columns: dict[str, np.ndarray] = {}
    steps = 1
    if not windows.empty:
        # Each op in the step window that starts last at or before it (windows are sorted by start).
        rows = np.argsort(start, kind="stable")
        at = np.searchsorted(windows["start_ns"].to_numpy(dtype=np.float64), start[rows], side="right") - 1
        placed = at >= 0
        placed[placed] = start[rows][placed] < windows["end_ns"].to_numpy(dtype=np.float64)[at[placed]]
        rows, columns["step"] = rows[placed], windows["step"].to_numpy()[at[placed]]
        steps = int(windows["step"].nunique())
    end = start + dur * 1000.0
    # Per thread in time order, the longer of two ops starting together first (it encloses the other).
    order = np.lexsort((-dur[rows], start[rows], tid[rows]))
    rows = rows[order]
    tid, start, dur, end = tid[rows], start[rows], dur[rows], end[rows]
    # An op is nested when an earlier op of its thread (start order) reaches past its end.
    before, earlier = reach_before(tid, end)
    nested = earlier & (start < before) & (end <= before)
    frame = pd.DataFrame(
        {
            "name": name[rows],
            "tid": tid,
            "start_ns": start,
            "dur_us": dur,
            **{column: values[order] for column, values in columns.items()},
            "end_ns": end,
            "top_level": ~nested,
        }
    )
    return frame, steps


def _is_step_mark(name: str) -> bool:
    return name.startswith("ProfilerStep#")


def api_stats(ops: pd.DataFrame, steps: int) -> pd.DataFrame:
    out = side_stats(ops, ("name",), "dur_us", steps)
    top = ops["dur_us"].where(ops["top_level"], 0.0).groupby(key_values(ops["name"])).sum()
    out["top_level_us_per_step"] = (top / steps).reindex(out.index).fillna(0.0)
    return out


@check("comparison.api", "comparison", needs=frozenset({"host_ops", "step_trace"}), scope="comparison")
def comparison_api(ctx: ComparisonContext) -> list[Finding]:
    m = ctx.messages
    target, t_steps = framework_ops(ctx.target_tables["host_ops"], ctx.target_tables.get("step_trace"))
    baseline, b_steps = framework_ops(ctx.baseline_tables["host_ops"], ctx.baseline_tables.get("step_trace"))
    if target.empty and baseline.empty:
        raise NotEvaluated(m.t("comparison.api.no_data"))
    table = compare_stats(api_stats(target, t_steps), api_stats(baseline, b_steps))
    table["diff_top_level_us_per_step"] = (
        table["target_top_level_us_per_step"] - table["baseline_top_level_us_per_step"]
    )
    # Time lost counts top-level calls only: a nested API's time is already inside its caller's.
    lost = loss(table, "api", "diff_top_level_us_per_step", "baseline_top_level_us_per_step")
    step_us = _step_us(ctx, float(table["target_top_level_us_per_step"].sum()))
    # Host time costs step time only while the device waits for the host: cap at the target's idle time.
    free = ctx.target_tables.get("step_trace")
    free_us = (
        pd.to_numeric(free["free_us"], errors="coerce").mean() if free is not None and len(free) else None
    )
    gain = min(lost.lost_us, float(free_us)) if free_us is not None and pd.notna(free_us) else lost.lost_us
    if lost.lost_us <= 0 or share_of_step(lost.lost_us, step_us) < MATERIAL_SHARE["api"]:
        return []
    lines = _common_lines(ctx, "api", lost, t_steps, b_steps)
    lines += _top_lines(m, "api", table, "diff_top_level_us_per_step", "baseline_top_level_us_per_step")
    lines.append(
        m.t("comparison.api.gain", gain_ms=ms(gain), lost_ms=ms(lost.lost_us), target=ctx.label("target"))
    )
    columns = ["diff_top_level_us_per_step", "diff_total_us_per_step", "ratio_total", "diff_avg_us"]
    columns += [f"{side}_{s}" for side in ("target", "baseline") for s in (*STATS, "top_level_us_per_step")]
    evidence = Evidence(
        m.t("comparison.api.evidence", target=ctx.label("target"), baseline=ctx.label("baseline")),
        ["api_name", *side_columns(ctx.mode, columns)],
        evidence_rows(table, ("name",), columns),
    )
    return [_finding(ctx, lost, Gain(gain, step_us), lines, evidence)]


COMPONENTS = ("computing", "communication_not_overlapped", "free")


def component_means(step_trace: pd.DataFrame | None) -> dict[str, float] | None:
    """Mean per step of the step and its three parts; None without a complete row."""
    if step_trace is None or step_trace.empty:
        return None
    times = step_times_us(step_trace)
    if times.empty:
        return None
    rows = step_trace.dropna(subset=list(STEP_PARTS))
    means = {c: float(pd.to_numeric(rows[f"{c}_us"]).mean()) for c in COMPONENTS}
    means["step"] = float(times.mean())
    means["steps"] = float(len(times))
    return means


@check("comparison.regression", "comparison", needs=frozenset({"step_trace"}), scope="comparison")
def comparison_regression(ctx: ComparisonContext) -> list[Finding]:
    if ctx.mode != "baseline":
        return []  # two ranks of one run: the slow-rank check's job
    m = ctx.messages
    target = component_means(ctx.target_tables.get("step_trace"))
    baseline = component_means(ctx.baseline_tables.get("step_trace"))
    if target is None or baseline is None:
        raise NotEvaluated(m.t("comparison.regression.no_data"))
    diff = target["step"] - baseline["step"]
    if baseline["step"] <= 0 or diff < REGRESSION_SHARE * baseline["step"]:
        return []
    diffs = {c: target[c] - baseline[c] for c in COMPONENTS}
    main = max(COMPONENTS, key=lambda c: (diffs[c], -COMPONENTS.index(c)))
    names = {c: m.t(f"comparison.regression.component.{c}") for c in (*COMPONENTS, "step")}
    labels = {"target": ctx.label("target"), "baseline": ctx.label("baseline")}
    lines = [
        m.t(
            "comparison.regression.summary",
            **labels,
            target_ms=ms(target["step"]),
            baseline_ms=ms(baseline["step"]),
            diff_ms=ms(diff),
            share=diff / baseline["step"],
            target_steps=int(target["steps"]),
            baseline_steps=int(baseline["steps"]),
        )
    ]
    for c in COMPONENTS:
        lines.append(
            m.t(
                "comparison.regression.component_line",
                component=names[c],
                target_ms=ms(target[c]),
                baseline_ms=ms(baseline[c]),
                diff_ms=ms(diffs[c]),
                share=diffs[c] / diff,
            )
        )
    for key, what in (("cann", "CANN"), ("torch_npu", "torch")):
        t_version, b_version = ctx.target.versions.get(key), ctx.baseline.versions.get(key)
        if t_version and b_version and t_version != b_version:
            lines.append(
                m.t("comparison.regression.versions", what=what, target=t_version, baseline=b_version)
            )
    gain = Gain(diff, target["step"])
    lines.append(m.t("comparison.regression.gain", gain_ms=gain.ms))
    rows = [
        [names[c], round(baseline[c], 3), round(target[c], 3), round(diffs[c], 3), round(diffs[c] / diff, 4)]
        for c in COMPONENTS
    ]
    rows.append([names["step"], round(baseline["step"], 3), round(target["step"], 3), round(diff, 3), 1.0])
    return [
        finding(
            title=m.t(
                "comparison.regression.title",
                **labels,
                gain_ms=gain.ms,
                share=gain.share,
                component=names[main],
            ),
            lines=lines,
            suggestions=m.t_list(f"comparison.regression.suggestions.{main}"),
            ranks=[ctx.target_rank.rank],
            gain=gain,
            evidence=[
                Evidence(
                    m.t("comparison.regression.evidence", **labels),
                    [
                        "component",
                        "baseline_us_per_step",
                        "target_us_per_step",
                        "diff_us_per_step",
                        "share_of_regression",
                    ],
                    rows,
                )
            ],
        )
    ]
