"""overall.summary: where the step time goes, per rank and step, and how ranks differ.

Step time = computing + communication not overlapped + free. Overlapped communication runs under
computing and costs no extra time; `Preparing` (host step start to the first device task) is shown
but not added, as in the profiler's own `Stage` column.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

import pandas as pd

from ..formats.schema import SOURCE_TRACE
from ..report.messages import Messages
from ..report.model import Evidence
from .common import finding, ms, single_step
from .registry import CheckResult, ClusterContext, NotEvaluated, check

# The three parts that add up to the step, in the order used for tie-breaks and charts.
COMPONENTS = ("computing", "communication_not_overlapped", "free")


@dataclass(frozen=True)
class StepSplit:
    rank: int
    step: int | None
    computing_us: float
    communication_not_overlapped_us: float
    overlapped_us: float
    free_us: float
    preparing_us: float
    bubble_us: float
    source: str

    @property
    def step_us(self) -> float:
        return self.computing_us + self.communication_not_overlapped_us + self.free_us

    def part(self, component: str) -> float:
        return getattr(self, f"{component}_us")


@dataclass(frozen=True)
class RankSplit:
    """Mean per-step times of one rank and its bottleneck."""

    rank: int
    n_steps: int
    means: dict[str, float]  # component -> µs per step, plus "step"

    def share(self, component: str) -> float:
        return self.means[component] / self.means["step"] if self.means["step"] > 0 else 0.0

    @property
    def bottleneck(self) -> str:
        return max(COMPONENTS, key=lambda c: (self.share(c), -COMPONENTS.index(c)))

    @property
    def share_at_stake(self) -> float:
        """The bottleneck's share when it is not computation (computation is the useful work)."""
        return 0.0 if self.bottleneck == "computing" else self.share(self.bottleneck)


def _value(value: object) -> float:
    return math.nan if value is None or pd.isna(value) else float(value)


# The step_trace columns of a StepSplit, in its fields' order.
SPLIT_COLUMNS = ("step", "computing_us", "communication_not_overlapped_us", "overlapped_us", "free_us",
                 "preparing_us", "bubble_us")  # fmt: skip


def step_splits(tables: dict[int, pd.DataFrame]) -> tuple[list[StepSplit], int]:
    """Rows with all three step parts, and how many rows lacked one (N/A in the CSV)."""
    splits, skipped = [], 0
    for rank in sorted(tables):
        frame = tables[rank]
        source = str(frame.attrs.get("source", ""))
        for step, computing, communication, overlapped, free, preparing, bubble in zip(
            *(frame[column] for column in SPLIT_COLUMNS), strict=True
        ):
            split = StepSplit(
                rank=rank,
                step=None if pd.isna(step) else int(step),
                computing_us=_value(computing),
                communication_not_overlapped_us=_value(communication),
                overlapped_us=_value(overlapped),
                free_us=_value(free),
                preparing_us=_value(preparing),
                bubble_us=_value(bubble),
                source=source,
            )
            if any(math.isnan(split.part(c)) for c in COMPONENTS):
                skipped += 1
                continue
            splits.append(split)
    return splits, skipped


def rank_splits(splits: list[StepSplit]) -> list[RankSplit]:
    by_rank: dict[int, list[StepSplit]] = {}
    for split in splits:
        by_rank.setdefault(split.rank, []).append(split)
    out = []
    for rank, rows in sorted(by_rank.items()):
        means = {c: statistics.fmean(r.part(c) for r in rows) for c in COMPONENTS}
        means["step"] = statistics.fmean(r.step_us for r in rows)
        out.append(RankSplit(rank, len(rows), means))
    return out


def spread(ranks: list[RankSplit]) -> list[dict[str, object]]:
    """Per component (and the step): min/median/max of the per-rank means and which rank."""
    rows = []
    for component in (*COMPONENTS, "step"):
        values = sorted((r.means[component], r.rank) for r in ranks)
        low, high = values[0], values[-1]
        rows.append(
            {
                "component": component,
                "min_us": _us(low[0]),
                "min_rank": low[1],
                "median_us": _us(statistics.median(v for v, _ in values)),
                "max_us": _us(high[0]),
                "max_rank": high[1],
                "spread_us": _us(high[0] - low[0]),
            }
        )
    return rows


def _us(value: float) -> float:
    """Sums and means rounded to the ns: the inputs have three decimals, float noise has more."""
    return round(value, 3)


@check("overall.summary", "overall", needs=frozenset({"step_trace"}), scope="cluster")
def overall_summary(ctx: ClusterContext) -> CheckResult:
    m = ctx.messages.for_device(ctx.profile.device)
    tables = {rank: t["step_trace"] for rank, t in ctx.tables.items()}
    splits, skipped = step_splits(tables)
    if not splits:
        raise NotEvaluated(m.t("overall.summary.no_data"))
    ranks = rank_splits(splits)
    names = {c: m.t(f"overall.summary.component.{c}") for c in (*COMPONENTS, "step")}

    lines = [m.t("overall.summary.step_definition")]
    for r in ranks:
        lines.append(
            m.t(
                "overall.summary.rank_line",
                rank=r.rank,
                n_steps=r.n_steps,
                step_ms=ms(r.means["step"]),
                computing_ms=ms(r.means["computing"]),
                computing_share=r.share("computing"),
                comm_ms=ms(r.means["communication_not_overlapped"]),
                comm_share=r.share("communication_not_overlapped"),
                free_ms=ms(r.means["free"]),
                free_share=r.share("free"),
                bottleneck=m.t(
                    "overall.summary.bottleneck", component=names[r.bottleneck], share=r.share(r.bottleneck)
                ),
            )
        )

    # The picture, not a finding of its own: the checks that explain the bottleneck carry the gain
    # and the priority (docs/design.md "Priority"), so the summary never competes with them.
    worst = max(ranks, key=lambda r: (r.share_at_stake, -r.rank))
    if worst.share_at_stake == 0.0:
        bottleneck = "computing"
        title = m.t("overall.summary.title.computing", share=worst.share("computing"))
        lines.append(m.t("overall.summary.compute_bound"))
    else:
        bottleneck = worst.bottleneck
        title = m.t(f"overall.summary.title.{bottleneck}", share=worst.share_at_stake, rank=worst.rank)

    evidence = [_breakdown_evidence(m, splits)]
    if len(ranks) > 1:
        spread_rows = spread(ranks)
        median_step = next(row["median_us"] for row in spread_rows if row["component"] == "step")
        widest = max(spread_rows[: len(COMPONENTS)], key=lambda row: row["spread_us"])
        lines.append(
            m.t(
                "overall.summary.spread",
                component=names[str(widest["component"])],
                min_ms=ms(float(widest["min_us"])),
                min_rank=widest["min_rank"],
                max_ms=ms(float(widest["max_us"])),
                max_rank=widest["max_rank"],
                spread_ms=ms(float(widest["spread_us"])),
                spread_share=float(widest["spread_us"]) / median_step if median_step else 0.0,
            )
        )
        evidence.append(
            Evidence(
                m.t("overall.summary.evidence.spread"),
                ["component", "min_us", "min_rank", "median_us", "max_us", "max_rank", "spread_us"],
                [list(row.values()) for row in spread_rows],
            )
        )
    from_trace = sorted({s.rank for s in splits if s.source == SOURCE_TRACE})
    if from_trace:
        lines.append(m.t("overall.summary.source_trace", ranks=", ".join(map(str, from_trace))))
    outside = {r: float(t.attrs.get("unassigned_us", 0.0)) for r, t in tables.items()}
    for rank, unassigned in sorted(outside.items()):
        if unassigned > 0:
            lines.append(m.t("overall.summary.unassigned", rank=rank, ms=ms(unassigned)))
    if skipped:
        lines.append(m.t("overall.summary.skipped_rows", count=skipped))

    steps = {s.step for s in splits}
    summary = finding(
        priority="low",
        title=title,
        lines=lines,
        suggestions=m.t_list(f"overall.summary.suggestions.{bottleneck}"),
        ranks=[ranks[0].rank] if len(ranks) == 1 else [],
        step=single_step(steps),
        evidence=evidence,
    )
    per_rank = [
        {
            "rank": s.rank,
            "step": s.step,
            "step_us": _us(s.step_us),
            "computing_us": s.computing_us,
            "communication_not_overlapped_us": s.communication_not_overlapped_us,
            "free_us": s.free_us,
        }
        for s in splits
    ]
    return CheckResult([summary], {"per_rank": per_rank})


def _breakdown_evidence(m: Messages, splits: list[StepSplit]) -> Evidence:
    optional = [
        c for c in ("preparing_us", "bubble_us") if any(not math.isnan(getattr(s, c)) for s in splits)
    ]
    columns = [
        "rank",
        "step",
        "step_us",
        "computing_us",
        "communication_not_overlapped_us",
        "overlapped_us",
        "free_us",
        *optional,
        "computing_share",
        "communication_not_overlapped_share",
        "free_share",
        "bottleneck",
        "source",
    ]
    rows = []
    for s in splits:
        shares = {c: (s.part(c) / s.step_us if s.step_us > 0 else 0.0) for c in COMPONENTS}
        bottleneck = max(COMPONENTS, key=lambda c: (shares[c], -COMPONENTS.index(c)))
        rows.append(
            [
                s.rank,
                s.step,
                _us(s.step_us),
                s.computing_us,
                s.communication_not_overlapped_us,
                s.overlapped_us,
                s.free_us,
                *[getattr(s, c) for c in optional],
                round(shares["computing"], 4),
                round(shares["communication_not_overlapped"], 4),
                round(shares["free"], 4),
                bottleneck,
                s.source,
            ]
        )
    return Evidence(m.t("overall.summary.evidence.breakdown"), columns, rows)
