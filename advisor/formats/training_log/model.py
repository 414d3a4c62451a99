"""What a training log holds, whatever wrote it: one row per logged step, in canonical columns."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

FORMAT_IDS = ("llamafactory", "megatron", "hf_trainer_state")

# The canonical columns of `TrainingLog.records` (absent from a format: all NaN), units in the name:
#   step: the optimizer step (LLaMA-Factory current_steps, Megatron iteration, HF step)
#   loss: the training loss as logged (NaN/inf kept: they are findings); loss_logged says it was there
#   lr, grad_norm, epoch, loss_scale: as logged
#   elapsed_s: time since the start of training (LLaMA-Factory elapsed_time)
#   step_time_s: seconds per step over the logging interval (Megatron's elapsed time per iteration)
#   tokens_total: tokens processed since the start (LLaMA-Factory total_tokens, or throughput x time)
#   global_batch_size: samples per step (Megatron)
#   skipped_iterations, nan_iterations: per logging interval (Megatron)
COLUMNS = (
    "step",
    "loss",
    "loss_logged",
    "lr",
    "grad_norm",
    "epoch",
    "loss_scale",
    "elapsed_s",
    "step_time_s",
    "tokens_total",
    "global_batch_size",
    "skipped_iterations",
    "nan_iterations",
)


@dataclass
class TrainingLog:
    """A parsed training log. `devices` and `seq_length` are what the log states (None: it does not);
    `notes` say how it was read where a choice was made (which rank's lines, junk lines skipped)."""

    path: str
    format: str  # one of FORMAT_IDS
    records: pd.DataFrame  # COLUMNS, one row per logged training step, sorted by step
    eval: pd.DataFrame  # step, eval_loss
    devices: int | None = None
    seq_length: int | None = None
    total_steps: int | None = None
    # The step of the clock the step times come from, in seconds (0: exact enough to ignore).
    # LLaMA-Factory's elapsed_time counts whole seconds, so a 5.5 s interval reads 5 or 6 s.
    clock_resolution_s: float = 0.0
    # The run's own summary where the format has one (HF: train_runtime, train_samples_per_second).
    run_totals: dict[str, float] = field(default_factory=dict)
    # (message key, values): how it was read where a choice was made, worded by the report's catalogue.
    notes: list[tuple[str, dict[str, object]]] = field(default_factory=list)


@dataclass(frozen=True)
class TrainingLogSummary:
    """What `describe_training_log` found: enough for the panel's one line. `approximate`: a huge log
    was counted by a fast scan of its lines, not parsed."""

    path: str
    format: str
    records: int
    first_step: int | None
    last_step: int | None
    approximate: bool = False


def frame(rows: list[dict[str, float]], columns: tuple[str, ...] = COLUMNS) -> pd.DataFrame:
    """Rows (dicts of the columns they have) as a frame of `columns`, sorted by step."""
    table = pd.DataFrame.from_records(rows, columns=list(columns)) if rows else pd.DataFrame(columns=columns)
    table = table.astype({name: "float64" for name in columns if name not in ("step", "loss_logged")})
    table["step"] = table["step"].astype("int64")
    if "loss_logged" in table:
        table["loss_logged"] = table["loss_logged"].fillna(False).astype(bool)
    return table.sort_values("step", kind="stable").reset_index(drop=True)
