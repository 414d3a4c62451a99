"""The report's `training` object (docs/architecture.md §3.2) from a training run's figures: what the
log is, its throughput over the middle window, its loss, and the series the charts draw."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .checks.training_base import TrainingRun
from .formats.training_log import TrainingLogSummary
from .report.messages import Messages, training_log_line

# The series of a huge log are thinned to at most this many points (every n-th record): the charts
# and the JSON stay small; the throughput and the checks use every record.
MAX_SERIES_POINTS = 5000
SERIES = ("loss", "loss_smooth", "tokens_per_s_per_device", "samples_per_s", "step_time_s", "lr", "grad_norm")


def _number(value: Any) -> float | None:
    return float(value) if value is not None and math.isfinite(float(value)) else None


def _values(column: Any) -> list[float | None]:
    return [None if not math.isfinite(v) else round(float(v), 6) for v in column.to_numpy(dtype="float64")]


def training_summary(run: TrainingRun, messages: Messages) -> dict[str, Any]:
    """The `training` object of the JSON report for `run`; a series absent from the log is left out."""
    log, series = run.log, run.series
    steps = log.records["step"]
    first, last = (int(steps.iloc[0]), int(steps.iloc[-1])) if len(steps) else (None, None)
    summary = TrainingLogSummary(log.path, log.format, len(steps), first, last)
    finite = log.records["loss"][np.isfinite(log.records["loss"])]
    stride = max(1, math.ceil(len(series) / MAX_SERIES_POINTS))
    thinned = series.iloc[::stride]
    chart_series: dict[str, list[Any]] = {"step": [int(s) for s in thinned["step"]]}
    for name in SERIES:
        if series[name].notna().any():
            chart_series[name] = _values(thinned[name])
    throughput = run.throughput
    return {
        "path": log.path,
        "description": training_log_line(messages, summary),
        "format": log.format,
        "devices": run.devices,
        "devices_source": run.devices_source,
        "seq_length": run.seq_length,
        "seq_length_source": run.seq_length_source,
        "records": len(steps),
        "steps": [first, last],
        "total_steps": log.total_steps,
        "throughput": {
            "tokens_per_s_per_device": _number(throughput.tokens_per_s_per_device) if throughput else None,
            "window": list(throughput.window) if throughput else None,
            "samples_per_s": _number(throughput.samples_per_s) if throughput else None,
            "step_time_s": _number(throughput.step_time_s) if throughput else None,
            "missing": messages.t(f"training.missing.{run.missing}") if run.missing else None,
        },
        "loss": {
            "first": _number(finite.iloc[0]) if len(finite) else None,
            "last": _number(finite.iloc[-1]) if len(finite) else None,
            "min": _number(finite.min()) if len(finite) else None,
        },
        "eval": {"step": [int(s) for s in log.eval["step"]], "eval_loss": _values(log.eval["eval_loss"])},
        "series": chart_series,
        "series_stride": stride,
        "notes": [messages.t(key, **values) for key, values in log.notes],
    }
