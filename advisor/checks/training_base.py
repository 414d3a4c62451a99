"""What the training-log checks share: the run's figures derived from its log (throughput in tokens/s
per device over the middle of the run and per record, samples/s, step time, the smoothed loss) and
the context a training check sees. Pure: the log is read by the engine (advisor/formats/training_log).

Throughput (the seed formulas of the ModelArts user manual, docs/design.md "Training logs"):
- LLaMA-Factory: (total_tokens[b] - total_tokens[a]) / (elapsed[b] - elapsed[a]) / devices between the
  records a and b that bound the middle window;
- Megatron/MindSpeed: global batch size x seq length / (devices x elapsed time per iteration), over the
  window: the window's tokens over its time (each record's figures hold for its logging interval);
- HF trainer_state.json records no time per step: the run's average, tokens seen / train_runtime.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..formats.training_log.model import TrainingLog
from ..options import AnalysisOptions
from ..report.messages import Messages
from .knowledge import knowledge
from .registry import NotEvaluated

LOG, USER = "log", "user"
# What a training check declares it needs: the log, handed over by the engine (no profile table).
TRAINING_LOG = frozenset({"training_log"})


@dataclass(frozen=True)
class Throughput:
    """Over the window [first, last] step: tokens/s per device, samples/s (None where the log cannot
    say), median step time (s)."""

    tokens_per_s_per_device: float | None
    window: tuple[int, int]
    samples_per_s: float | None
    step_time_s: float | None


@dataclass(frozen=True)
class TrainingRun:
    """A log with the facts it needs from outside (devices, seq length: from the log, else the user)
    and the figures derived from them. `series`: one row per logged step (step, loss, loss_smooth, lr,
    grad_norm, step_time_s, tokens_per_s_per_device, samples_per_s); `missing`: what kept a figure
    from being computed, as a message key of training_base.json ("" when nothing did)."""

    log: TrainingLog
    devices: int | None
    devices_source: str | None
    seq_length: int | None
    seq_length_source: str | None
    series: pd.DataFrame
    throughput: Throughput | None
    missing: str = ""
    # (message key, values), as TrainingLog.notes.
    warnings: list[tuple[str, dict[str, object]]] = field(default_factory=list)


@dataclass(frozen=True)
class TrainingContext:
    """What a training check sees: the run, the profile's mean step time (s) and its profiled step
    when a profile was analysed beside the log."""

    run: TrainingRun
    options: AnalysisOptions
    messages: Messages
    profile_step_s: float | None = None
    profile_step: int | None = None


def stated(from_log: int | None, from_user: int | None) -> tuple[int | None, str | None]:
    """A fact from the log when it states it, else from the user, and which."""
    if from_log:
        return from_log, LOG
    if from_user:
        return from_user, USER
    return None, None


def window_bounds(count: int) -> tuple[int, int]:
    """Indices (a, b), a < b, of the records bounding the middle window of `count` records (count >= 2)."""
    rules = knowledge("training")
    first = math.floor(rules["window_start"] * (count - 1))
    last = math.ceil(rules["window_end"] * (count - 1))
    return first, max(last, first + 1)


def smoothing_width(count: int) -> int:
    """The records the smoothing median spans: smooth_share of `count`, odd, within its bounds."""
    rules = knowledge("training")
    width = min(max(round(rules["smooth_share"] * count), rules["smooth_min"]), rules["smooth_max"])
    return width + 1 - width % 2


def smoothed(values: pd.Series) -> pd.Series:
    """A centred rolling median over smoothing_width records: robust to the spikes it is the baseline
    for."""
    return values.rolling(smoothing_width(len(values)), center=True, min_periods=1).median()


def robust_sigma(values: pd.Series) -> float:
    """1.4826 x the median absolute deviation: the standard deviation of normal noise, unmoved by outliers."""
    centre = float(values.median())
    return 1.4826 * float((values - centre).abs().median())


def training_run(
    log: TrainingLog, *, devices: int | None = None, seq_length: int | None = None
) -> TrainingRun:
    """The figures of `log`, with `devices`/`seq_length` given by the user used where the log states none."""
    n_devices, devices_source = stated(log.devices, devices)
    n_seq, seq_source = stated(log.seq_length, seq_length)
    warnings: list[tuple[str, dict[str, object]]] = []
    if log.devices and devices and log.devices != devices:
        warnings.append(("training.note.devices_ignored", {"log": log.devices, "given": devices}))
    records = log.records
    finite_loss = records["loss"].where(np.isfinite(records["loss"]))
    series = pd.DataFrame(
        {
            "step": records["step"],
            "loss": records["loss"],
            "loss_smooth": smoothed(finite_loss.dropna()).reindex(records.index),
            "lr": records["lr"],
            "grad_norm": records["grad_norm"],
            "step_time_s": records["step_time_s"],
        }
    )
    throughput, missing = None, ""
    if log.format == "llamafactory":
        throughput, missing = _llamafactory(records, series, n_devices)
    elif log.format == "megatron":
        throughput, missing = _megatron(records, series, n_devices, n_seq)
    else:
        throughput, missing = _trainer_state(log, series, n_devices)
    for column in ("tokens_per_s_per_device", "samples_per_s"):
        if column not in series:
            series[column] = np.nan
    return TrainingRun(
        log, n_devices, devices_source, n_seq, seq_source, series, throughput, missing, warnings
    )


def _median(values: pd.Series) -> float | None:
    finite = values[np.isfinite(values)]
    return float(finite.median()) if len(finite) else None


def _llamafactory(
    records: pd.DataFrame, series: pd.DataFrame, devices: int | None
) -> tuple[Throughput | None, str]:
    timed = records.dropna(subset=["elapsed_s", "tokens_total"])
    timed = timed[timed["elapsed_s"].diff().fillna(1) > 0]
    if len(timed) == 1 and devices is not None:  # only the run's last record: its average since the start
        only = timed.iloc[0]
        rate = only["tokens_total"] / only["elapsed_s"] / devices
        return Throughput(float(rate), (0, int(only["step"])), None, _median(series["step_time_s"])), ""
    if len(timed) < 2:
        return Throughput(None, _span(records), None, _median(series["step_time_s"])), "no_tokens"
    if devices is None:
        return Throughput(None, _span(timed), None, _median(series["step_time_s"])), "no_devices"
    a, b = window_bounds(len(timed))
    first, last = timed.iloc[a], timed.iloc[b]
    rate = (last["tokens_total"] - first["tokens_total"]) / (last["elapsed_s"] - first["elapsed_s"]) / devices
    per_record = timed["tokens_total"].diff() / timed["elapsed_s"].diff() / devices
    series["tokens_per_s_per_device"] = per_record.reindex(series.index)
    window = (int(first["step"]), int(last["step"]))
    return Throughput(float(rate), window, None, _median(series["step_time_s"])), ""


def _megatron(
    records: pd.DataFrame, series: pd.DataFrame, devices: int | None, seq_length: int | None
) -> tuple[Throughput | None, str]:
    timed = records[(records["step_time_s"] > 0) & records["global_batch_size"].notna()]
    step_time = _median(records["step_time_s"])
    if len(timed) < 2:
        return Throughput(None, _span(records), None, step_time), "no_step_time"
    series["samples_per_s"] = (timed["global_batch_size"] / timed["step_time_s"]).reindex(series.index)
    a, b = window_bounds(len(timed))
    middle = timed.iloc[a : b + 1]
    window = (int(middle["step"].iloc[0]), int(middle["step"].iloc[-1]))
    samples = float(middle["global_batch_size"].sum() / middle["step_time_s"].sum())
    if devices is None or seq_length is None:
        return Throughput(
            None, window, samples, step_time
        ), "no_devices" if devices is None else "no_seq_length"
    tokens = timed["global_batch_size"] * seq_length / (devices * timed["step_time_s"])
    series["tokens_per_s_per_device"] = tokens.reindex(series.index)
    rate = float((middle["global_batch_size"] * seq_length).sum() / (devices * middle["step_time_s"].sum()))
    return Throughput(rate, window, samples, step_time), ""


def _trainer_state(
    log: TrainingLog, series: pd.DataFrame, devices: int | None
) -> tuple[Throughput | None, str]:
    runtime = log.run_totals.get("train_runtime")
    span = _span(log.records)
    samples = log.run_totals.get("train_samples_per_second")
    steps = log.run_totals.get("global_step") or span[1] or None
    step_time = runtime / steps if runtime and steps else None
    tokens = log.records["tokens_total"].dropna()
    if not runtime:
        return Throughput(None, span, samples, None), "no_runtime"
    if tokens.empty:
        return Throughput(None, span, samples, step_time), "no_tokens"
    if devices is None:
        return Throughput(None, span, samples, step_time), "no_devices"
    return Throughput(float(tokens.iloc[-1]) / runtime / devices, span, samples, step_time), ""


def _span(records: pd.DataFrame) -> tuple[int, int]:
    steps = records["step"]
    return (int(steps.iloc[0]), int(steps.iloc[-1])) if len(steps) else (0, 0)


def step_intervals(series: pd.DataFrame) -> pd.Series:
    """The steps each record's step time covers (the steps since the previous record; the first
    record's from the step before it, or 1)."""
    steps = series["step"].astype("float64")
    covered = steps.diff()
    covered.iloc[0] = steps.iloc[0] if len(steps) and steps.iloc[0] > 0 else 1.0
    return covered.clip(lower=1.0)


def timed_records(series: pd.DataFrame) -> pd.DataFrame:
    """The records with a step time, with the steps each covers (`covered`)."""
    timed = series.assign(covered=step_intervals(series))
    return timed[np.isfinite(timed["step_time_s"]) & (timed["step_time_s"] > 0)]


def finite_losses(ctx: TrainingContext) -> pd.DataFrame:
    """The records with a finite logged loss and its smoothed value; NotEvaluated on too few to judge."""
    series = ctx.run.series
    finite = series[np.isfinite(series["loss"]) & series["loss_smooth"].notna()]
    if len(finite) < knowledge("training")["min_records"]:
        raise NotEvaluated(ctx.messages.t("training.loss.too_few", count=len(finite)))
    return finite


def rounded(value: float) -> float | None:
    """A figure for an evidence cell: 6 decimals, None when not finite."""
    return round(float(value), 6) if np.isfinite(value) else None
