"""Every check id of the contract (docs/architecture.md §3.3), by dimension.

An id never changes meaning once released. Ids without an implementation yet are reported as
"not evaluated" so that a report never suggests that an unchecked dimension is clean.
"""

from __future__ import annotations

from collections.abc import Iterable

CATALOGUE: dict[str, tuple[str, ...]] = {
    "overall": ("overall.summary", "overall.idle", "environment.variables"),
    "cluster": ("cluster.slow_rank", "cluster.slow_link", "computation.pp_stage_imbalance"),
    "comparison": ("comparison.regression", "comparison.kernel", "comparison.api"),
    "computation": (
        "computation.ai_core_frequency",
        "computation.aicpu",
        "computation.dynamic_shape",
        "computation.operator_bound",
        "computation.block_dim",
        "computation.ai_core_performance",
        "computation.graph_fusion",
    ),
    "schedule": (
        "schedule.synchronize_stream",
        "schedule.host_sync",
        "schedule.gc",
        "schedule.operator_dispatch",
        "schedule.sync_batchnorm",
        "schedule.affinity_api",
        "schedule.fusible_operators",
    ),
    "communication": (
        "communication.exposed",
        "communication.small_packet",
        "communication.bandwidth_contention",
        "communication.retransmission",
        "communication.byte_alignment",
    ),
    "memory": ("memory.operators",),
    "dataloader": ("dataloader.slow",),
    "training": (
        "training.loss_spike",
        "training.nan_loss",
        "training.loss_divergence",
        "training.throughput_drop",
        "training.warmup_dominates",
        "training.unrepresentative_profile",
    ),
}


def applicable_dimensions(
    dimensions: Iterable[str], *, ranks: int, has_baseline: bool, comparison_disabled: bool
) -> list[str]:
    """The dimensions whose checks apply: the chosen ones, overall always, cluster with several
    ranks, comparison with a baseline or several ranks (slowest against fastest) unless disabled."""
    chosen = ["overall", *dimensions]
    if ranks > 1:
        chosen.append("cluster")
    if (has_baseline or ranks > 1) and not comparison_disabled:
        chosen.append("comparison")
    return [d for d in CATALOGUE if d in chosen]


def unimplemented(dimensions: Iterable[str], implemented: Iterable[str]) -> list[str]:
    """Catalogue ids of `dimensions` that have no registered implementation."""
    done = set(implemented)
    return [check_id for d in dimensions for check_id in CATALOGUE.get(d, ()) if check_id not in done]
