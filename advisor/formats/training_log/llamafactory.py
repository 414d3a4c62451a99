"""LLaMA-Factory `trainer_log.jsonl`: one JSON object per logging step, written by one rank
(`current_steps`, `total_steps`, `loss`, `lr`, `epoch`, `elapsed_time` "H:MM:SS", optional
`throughput` (tokens/s over all devices since the start) and `total_tokens`, `eval_loss`, `vram_*`).
Null fields are dropped; lines that are not such objects are skipped and counted."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

from .model import TrainingLog, frame
from .text import clock_seconds, lines, number, refuse

FORMAT = "llamafactory"
STEP_KEY = "current_steps"
RECORD = re.compile(rb'"current_steps"\s*:')


def record(line: str) -> dict[str, object] | None:
    """The JSON object of a log line, or None for a line that is not a LLaMA-Factory record."""
    text = line.strip()
    if not text.startswith("{"):
        return None
    try:
        # Python's json reads NaN and Infinity, which LLaMA-Factory writes for a diverged loss.
        value = json.loads(text)
    except ValueError:
        return None
    if not isinstance(value, dict) or number(value.get(STEP_KEY)) is None:
        return None
    return value


def record_step(line: str) -> int | None:
    value = record(line)
    return int(number(value[STEP_KEY]) or 0) if value is not None else None


def sniff(text: str) -> bool:
    """Whether the first record-looking line of `text` is a LLaMA-Factory record."""
    for line in text.split("\n", 50)[:50]:  # not splitlines(): that would split the whole head
        if line.strip():
            found = record(line)
            if found is not None:
                return True
    return False


def parse(path: Path) -> TrainingLog:
    rows: list[dict[str, float]] = []
    evals: list[dict[str, float]] = []
    skipped = 0
    total_steps: float | None = None
    for line in lines(path):
        value = record(line) if line.strip() else None
        if value is None:
            skipped += bool(line.strip())
            continue
        step = int(number(value[STEP_KEY]) or 0)
        total_steps = number(value.get("total_steps")) or total_steps
        eval_loss = number(value.get("eval_loss"))
        if eval_loss is not None:
            evals.append({"step": step, "eval_loss": eval_loss})
        loss = number(value.get("loss"))
        if loss is None and eval_loss is not None:
            continue  # an evaluation record: no training figures
        elapsed = clock_seconds(value.get("elapsed_time"))
        tokens = number(value.get("total_tokens"))
        throughput = number(value.get("throughput"))
        if tokens is None and throughput is not None and elapsed:
            tokens = throughput * elapsed  # throughput is tokens/s over all devices since the start
        rows.append(
            {
                "step": step,
                "loss": loss if loss is not None else math.nan,
                "loss_logged": loss is not None,
                "lr": number(value.get("lr", value.get("learning_rate"))),
                "grad_norm": number(value.get("grad_norm")),
                "epoch": number(value.get("epoch")),
                "elapsed_s": elapsed,
                "tokens_total": tokens,
            }
        )
    if not rows and not evals:
        raise refuse(path, f"no line holds a JSON object with {STEP_KEY}")
    # The last record of a finished run repeats the last step without a loss (the run's end): a step's
    # record with a loss wins over one without.
    records = frame(rows).sort_values(["step", "loss_logged"], kind="stable")
    records = records.drop_duplicates("step", keep="last").reset_index(drop=True)
    # Step time from the clock: the time between two records over the steps between them.
    steps_between = records["step"].diff()
    step_time = records["elapsed_s"].diff() / steps_between
    if len(records) and records["step"].iloc[0] > 0:  # the first record: the time since the start
        step_time.iloc[0] = records["elapsed_s"].iloc[0] / records["step"].iloc[0]
    records["step_time_s"] = step_time.where((steps_between > 0) | (steps_between.index == 0))
    elapsed = records["elapsed_s"].dropna()
    log = TrainingLog(
        path=str(path),
        format=FORMAT,
        records=records,
        eval=frame(evals, ("step", "eval_loss")),
        total_steps=int(total_steps) if total_steps else None,
        # "H:MM:SS" counts whole seconds; a clock with fractions is fine enough as it is.
        clock_resolution_s=1.0 if len(elapsed) and bool((elapsed == elapsed.round()).all()) else 0.0,
    )
    if skipped:
        log.notes.append(("training.note.skipped_lines", {"count": skipped}))
    return log
