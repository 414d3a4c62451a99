"""cluster.slow_rank: ranks whose busy time (computing + free) is out of line with their peers'.

In synchronous training every rank leaves a collective together, so the step is set by the slowest
rank and the others show its extra time as communication-not-overlapped wait. A rank is therefore
judged by its busy time, not its step time (which is the same everywhere): per step, against the
median of the other ranks of its pipeline stage (leave-one-out median, robust to the slow rank
itself), and only when the gap is material (a share of the median step), so that jitter stays
quiet. The modified z-score (MAD) tells a clear outlier from an uneven spread. Ranks that only wait
are named as waiting, not slow.

Also home of the helpers the other cluster checks share (thresholds, robust statistics, stages).
"""

from __future__ import annotations

import collections
import math

import numpy as np
import pandas as pd

from ..model import ProfileSet
from ..report.model import Evidence, Finding
from .common import STEP_PARTS, Gain, finding, ms, single_step
from .derived import per_rank_table
from .knowledge import knowledge
from .registry import ClusterContext, NotEvaluated, check

MAD_SCALE = 1.4826  # MAD of a normal distribution -> its standard deviation
NO_STAGE = -1
FEW_PEERS = 3  # a stage of at most this many ranks is judged on its ranks' means, not per step


def thresholds(section: str) -> dict[str, float]:
    """One section of knowledge/cluster.json (slow_rank, slow_link, exposed, idle, ...)."""
    return knowledge("cluster")[section]


def loo_median(values: np.ndarray) -> np.ndarray:
    """For each value, the median of the *other* values (NaN when there are none)."""
    values = np.asarray(values, dtype=float)
    n = len(values)
    if n < 2:
        return np.full(n, np.nan)
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    removed = np.arange(n)  # position (in sorted order) of the value left out

    def kth(k: int) -> np.ndarray:  # k-th smallest of the others
        j = np.full(n, k)
        return np.where(j < removed, ordered[np.minimum(j, n - 1)], ordered[np.minimum(j + 1, n - 1)])

    k = n - 1
    medians = kth((k - 1) // 2) if k % 2 else (kth(k // 2 - 1) + kth(k // 2)) / 2
    out = np.empty(n)
    out[order] = medians
    return out


def robust_z(values: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """(value - reference) / (1.4826 * MAD of all values); inf when MAD is 0 and the value differs."""
    values = np.asarray(values, dtype=float)
    mad = float(np.median(np.abs(values - np.median(values)))) if len(values) else math.nan
    diff = values - np.asarray(reference, dtype=float)
    if not mad > 0:
        return np.select([diff > 0, diff < 0], [np.inf, -np.inf], 0.0)
    return diff / (MAD_SCALE * mad)


def stage_of(profile: ProfileSet) -> dict[int, int]:
    """Global rank -> pipeline stage index (first stage 0); empty when no stages were recorded."""
    return {rank: i for i, members in enumerate(profile.stages) for rank in members}


def rank_steps(ctx: ClusterContext) -> pd.DataFrame:
    """One row per (rank, step) with the three step parts present: rank, stage, step, the parts,
    overlapped_us, communication_us, bubble_us, step_us. Absent step numbers become -1."""
    stages = stage_of(ctx.profile)
    traced = [(rank, tables["step_trace"]) for rank, tables in ctx.tables.items() if "step_trace" in tables]
    ranks = tuple(rank for rank, _ in traced)
    # Every cluster check of a run gets the same step_trace frames: derived once for them all.
    return _rank_steps(ranks, tuple(stages.get(rank, NO_STAGE) for rank in ranks), *(f for _, f in traced))


@per_rank_table
def _rank_steps(ranks: tuple[int, ...], stages: tuple[int, ...], *step_traces: pd.DataFrame) -> pd.DataFrame:
    frames = []
    for rank, stage, frame in zip(ranks, stages, step_traces, strict=True):
        if frame is None or frame.empty:
            continue
        frame = frame.dropna(subset=list(STEP_PARTS))
        if frame.empty:
            continue
        part = pd.DataFrame(
            {
                "rank": rank,
                "stage": stage,
                "step": frame["step"].fillna(-1).astype("int64").to_numpy(),
                **{c: frame[c].astype(float).to_numpy() for c in STEP_PARTS},
                "overlapped_us": frame["overlapped_us"].astype(float).to_numpy(),
                "communication_us": frame["communication_us"].astype(float).to_numpy(),
                "bubble_us": frame["bubble_us"].astype(float).to_numpy(),
            }
        )
        frames.append(part)
    if not frames:
        return pd.DataFrame(columns=["rank", "stage", "step", *STEP_PARTS, "step_us"])
    out = pd.concat(frames, ignore_index=True)
    # A step recorded twice for a rank (duplicated rows) counts once, summed like the reference.
    out = out.groupby(["rank", "stage", "step"], as_index=False).sum(min_count=1)
    out["step_us"] = out[list(STEP_PARTS)].sum(axis=1)
    return out


def few_peers_eligible(judged: pd.DataFrame, cfg: dict[str, float]) -> set[tuple[int, int]] | None:
    """The (stage, rank) pairs that may be called slow. A stage of 2–3 ranks has too few peers for
    robust statistics, and jitter makes each rank "slow" on some step: there only the rank with the
    most busy time on average may be, and only when it is slow on more than half of its steps. Larger
    stages keep the per-step judgement (None: every rank)."""
    if judged.empty:
        return None
    sizes = judged.groupby("stage")["rank"].nunique()
    small = set(sizes[sizes <= FEW_PEERS].index)
    if not small:
        return None
    stages, ranks = judged["stage"].to_numpy(), judged["rank"].to_numpy()
    large = ~np.isin(stages, list(small))
    eligible = {(int(st), int(r)) for st, r in zip(stages[large], ranks[large], strict=True)}
    busy = pd.DataFrame(
        {"rank": ranks, "busy": judged["busy_us"].to_numpy(), "slow": judged["role"] == "slow"}
    )
    for stage in small:
        per_rank = busy[stages == stage].groupby("rank")[["busy", "slow"]].mean()
        worst = int(per_rank["busy"].idxmax())
        if per_rank.loc[worst, "slow"] > 0.5:
            eligible.add((int(stage), worst))
    return eligible


def _rank_list(ranks: list[int]) -> str:
    return ", ".join(str(r) for r in sorted(ranks))


def classify(
    rows: pd.DataFrame, cfg: dict[str, float], eligible: set[tuple[int, int]] | None = None
) -> pd.DataFrame:
    """Per (stage, step) group: peer medians, excess, robust z and the role of each rank
    (slow / waiting / normal), plus the step gain of the group. Only the (stage, rank) pairs in
    `eligible` may be slow (all when None)."""
    stage, step, rank = (rows[c].to_numpy() for c in ("stage", "step", "rank"))
    computing, free = rows["computing_us"].to_numpy(), rows["free_us"].to_numpy()
    waited = rows["communication_not_overlapped_us"].to_numpy()
    step_us = rows["step_us"].to_numpy()
    busy = (rows["computing_us"] + rows["free_us"]).to_numpy()
    # The rows of each (stage, step) group together, groups in order and each in table order.
    order = np.lexsort((step, stage))
    starts = np.flatnonzero(np.r_[True, (np.diff(stage[order]) != 0) | (np.diff(step[order]) != 0)])
    kept, columns = [], collections.defaultdict(list)
    for at in np.split(order, starts[1:]):
        n = len(at)
        if n < 2:
            continue
        kept.append(at)
        peer_busy = loo_median(busy[at])
        excess = busy[at] - peer_busy
        z = robust_z(busy[at], peer_busy) if n >= 3 else np.full(n, np.nan)
        material = float(cfg["min_gap_share"]) * float(np.median(step_us[at]))
        slow = (excess >= material) & (excess > 0)
        if eligible is not None:
            slow &= np.array(
                [(int(st), int(r)) in eligible for st, r in zip(stage[at], rank[at], strict=True)]
            )
        role = np.where(slow, "slow", "normal")
        extra_wait, gain = np.zeros(n), 0.0
        if slow.any():
            waits = waited[at] - float(waited[at][slow].min())
            role = np.where(~slow & (waits >= material), "waiting", role)
            extra_wait = np.where(role == "waiting", waits, 0.0)
            # If the slow ranks matched the slowest of the others, the step would shrink by this much.
            gain = float(busy[at].max()) - float(busy[at][~slow].max()) if (~slow).any() else 0.0
        group = {
            "busy_us": busy[at],
            "peer_median_busy_us": peer_busy,
            "peer_median_computing_us": loo_median(computing[at]),
            "peer_median_free_us": loo_median(free[at]),
            "excess_us": excess,
            "robust_z": z,
            "material_us": np.full(n, material),
            "outlier": slow & (n >= cfg["min_ranks_for_z"]) & (z >= cfg["robust_z"]),
            "extra_wait_us": extra_wait,
            "group_gain_us": np.full(n, gain),
            "role": role,
        }
        for name, values in group.items():
            columns[name].append(values)
    if not kept:
        return pd.DataFrame()
    judged = rows.take(np.concatenate(kept)).reset_index(drop=True)
    return judged.assign(**{name: np.concatenate(parts) for name, parts in columns.items()})


@check("cluster.slow_rank", "cluster", needs=frozenset({"step_trace"}), scope="cluster")
def slow_rank(ctx: ClusterContext) -> list[Finding]:
    m = ctx.messages.for_device(ctx.profile.device)
    if len(ctx.tables) < 2:
        raise NotEvaluated(m.t("cluster.slow_rank.one_rank"))
    cfg = thresholds("slow_rank")
    rows = rank_steps(ctx)
    if rows.empty or rows["rank"].nunique() < 2:
        raise NotEvaluated(m.t("cluster.slow_rank.no_data"))
    judged = classify(rows, cfg, few_peers_eligible(classify(rows, cfg), cfg))
    if judged.empty:
        raise NotEvaluated(m.t("cluster.slow_rank.no_peers"))
    if not (judged["role"] == "slow").any():
        return []

    n_steps = judged["step"].nunique()
    median_step = float(judged.groupby("rank")["step_us"].mean().median())
    # Gain per step: the largest group gain of each step (stages run in parallel), averaged over steps.
    per_step_gain = judged.groupby("step")["group_gain_us"].max()
    gain = Gain(float(per_step_gain.sum()) / n_steps, median_step)

    slow = judged[judged["role"] == "slow"]
    names = {c: m.t(f"cluster.slow_rank.component.{c}") for c in ("computing", "free")}
    lines = [
        m.t(
            "cluster.slow_rank.method",
            gap=cfg["min_gap_share"],
            scope=m.t(
                "cluster.slow_rank.scope.stage" if ctx.profile.stages else "cluster.slow_rank.scope.all"
            ),
        )
    ]
    slow_ranks = sorted(int(r) for r in slow["rank"].unique())
    by_rank = slow.groupby("rank")
    means = ["excess_us", "computing_us", "peer_median_computing_us", "free_us", "peer_median_free_us"]
    per_rank = (
        by_rank[means]
        .mean()
        .set_axis(["excess_us", "computing_delta", "computing_peer", "free_delta", "free_peer"], axis=1)
    )
    per_rank = per_rank.assign(
        steps=by_rank["step"].nunique(), z=by_rank["robust_z"].median(), outlier=by_rank["outlier"].all()
    )
    per_rank["computing_delta"] -= per_rank["computing_peer"]
    per_rank["free_delta"] -= per_rank["free_peer"]
    causes = {}
    for rank, rec in per_rank.iterrows():
        cause = "computing" if rec["computing_delta"] >= rec["free_delta"] else "free"
        causes[int(rank)] = cause
        kind = (
            m.t("cluster.slow_rank.outlier", z=rec["z"])
            if rec["outlier"] and math.isfinite(rec["z"])
            else m.t("cluster.slow_rank.outlier_peers_alike")  # MAD 0: z is infinite
            if rec["outlier"]
            else m.t(
                "cluster.slow_rank.spread" if not math.isnan(rec["z"]) else "cluster.slow_rank.two_ranks"
            )
        )
        lines.append(
            m.t(
                "cluster.slow_rank.rank_line",
                rank=int(rank),
                excess_ms=ms(rec["excess_us"]),
                steps=int(rec["steps"]),
                n_steps=n_steps,
                computing_ms=ms(rec["computing_delta"]),
                free_ms=ms(rec["free_delta"]),
                cause=names[cause],
                kind=kind,
            )
        )
    waiting = judged[judged["role"] == "waiting"]
    if not waiting.empty:
        lines.append(
            m.t(
                "cluster.slow_rank.waiting",
                ranks=_rank_list([int(r) for r in waiting["rank"].unique()]),
                wait_ms=ms(float(waiting["extra_wait_us"].mean())),
            )
        )
    lines.append(m.t("cluster.slow_rank.gain", gain_ms=gain.ms, share=gain.share))

    worst = int(per_rank["excess_us"].idxmax())
    cause = causes[worst]
    if len(slow_ranks) == 1:
        title = m.t(
            "cluster.slow_rank.title.one",
            rank=worst,
            component=names[cause],
            gain_ms=gain.ms,
            share=gain.share,
        )
    else:
        title = m.t(
            "cluster.slow_rank.title.many",
            ranks=_rank_list(slow_ranks),
            component=names[cause],
            gain_ms=gain.ms,
            share=gain.share,
        )
    suggestions = m.t_list(f"cluster.slow_rank.suggestions.{cause}", rank=worst)
    if not waiting.empty:
        suggestions += m.t_list("cluster.slow_rank.suggestions.waiting")

    columns = [
        "stage", "step", "rank", "role", "computing_us", "free_us", "busy_us", "peer_median_busy_us",
        "excess_us", "robust_z", "communication_not_overlapped_us", "extra_wait_us", "step_us",
    ]  # fmt: skip
    table = judged.sort_values(["stage", "step", "rank"])
    table = table.assign(stage=table["stage"].where(table["stage"] != NO_STAGE, None))
    evidence_rows = [
        [evidence_cell(v) for v in rec] for rec in table[columns].itertuples(index=False, name=None)
    ]
    steps = sorted(int(s) for s in judged["step"].unique() if s >= 0)
    return [
        finding(
            title=title,
            lines=lines,
            suggestions=suggestions,
            ranks=slow_ranks,
            step=single_step(steps),
            evidence=[Evidence(m.t("cluster.slow_rank.evidence"), columns, evidence_rows)],
            gain=gain,
        )
    ]


def evidence_cell(value: object) -> object:
    """Evidence cells: plain Python values, floats rounded to the ns, NaN/inf (e.g. a robust z when
    the peers are identical) as empty cells."""
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return round(value, 3) if math.isfinite(value) else None
    if isinstance(value, (np.integer, np.bool_)):
        return value.item()
    return None if value is pd.NA else value
