"""Whether a spec's faults can be built: the spec's own rules (faults.py) and the ones that need the
workload (a fault that must contend needs buckets reduced while backward runs). Kept apart from
faults.py, which the workload modules import for the faults' sizes."""

from __future__ import annotations

from .faults import MAX_CONTENTION_MICROBATCHES, check_fault_choices
from .model import build_model
from .pipeline import stage_work
from .spec import SynthSpec


def check_faults(spec: SynthSpec) -> None:
    """ValueError when `spec` asks for a fault it cannot have."""
    check_fault_choices(spec)
    if "communication.bandwidth_contention" in spec.inject:
        _check_contention(spec)


def _check_contention(spec: SynthSpec) -> None:
    """Only buckets reduced while backward still runs contend: each stage needs 2 or more."""
    cnn = build_model(spec.layers, spec.batch) if spec.workload == "cnn" else None
    small = "communication.small_packet" in spec.inject
    for stage in range(spec.pipeline_parallel):
        if len(stage_work(spec, stage, cnn, small).bucket_ends) < 2:
            raise ValueError(
                "communication.bandwidth_contention needs 2 or more gradient buckets per pipeline stage "
                "(gradient_mb / pipeline_parallel above bucket_mb)"
            )
    if spec.workload == "cnn" and spec.microbatch_count > MAX_CONTENTION_MICROBATCHES:
        raise ValueError(
            f"communication.bandwidth_contention needs at most {MAX_CONTENTION_MICROBATCHES} "
            "micro-batches per step with the CNN"
        )
