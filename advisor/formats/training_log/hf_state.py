"""HuggingFace Trainer `trainer_state.json`: one JSON document whose `log_history` lists the logged
steps (`step`, `loss`, `learning_rate`, `grad_norm`, `epoch`, optional `num_input_tokens_seen`), the
evaluations (`eval_loss`) and, last, the run's totals (`train_runtime`, `train_samples_per_second`).
It records no time per step: throughput is the run's average where the totals are there."""

from __future__ import annotations

import json
import math
from pathlib import Path

from ...errors import InputError
from .model import TrainingLog, frame
from .text import guard_json_size, number, refuse

FORMAT = "hf_trainer_state"
TOTALS = ("train_runtime", "train_samples_per_second", "train_steps_per_second", "train_loss", "total_flos")


def sniff(text: str) -> bool:
    return text.lstrip().startswith("{") and '"log_history"' in text


def parse(path: Path) -> TrainingLog:
    guard_json_size(path)
    try:
        with path.open("rb") as fh:
            state = json.load(fh)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise refuse(path, f"not valid JSON ({exc})") from None
    history = state.get("log_history") if isinstance(state, dict) else None
    if not isinstance(history, list):
        raise refuse(path, "no log_history list")
    rows: list[dict[str, float]] = []
    evals: list[dict[str, float]] = []
    totals: dict[str, float] = {}
    for entry in history:
        if not isinstance(entry, dict) or number(entry.get("step")) is None:
            continue
        step = int(number(entry["step"]) or 0)
        if number(entry.get("eval_loss")) is not None:
            evals.append({"step": step, "eval_loss": number(entry["eval_loss"]) or 0.0})
        if any(key in entry for key in TOTALS):
            totals.update({key: v for key in TOTALS if (v := number(entry.get(key))) is not None})
            continue
        loss = number(entry.get("loss"))
        if loss is None:
            continue
        rows.append(
            {
                "step": step,
                "loss": loss,
                "loss_logged": True,
                "lr": number(entry.get("learning_rate")),
                "grad_norm": number(entry.get("grad_norm")),
                "epoch": number(entry.get("epoch")),
                "tokens_total": number(entry.get("num_input_tokens_seen")),
            }
        )
    if not rows and not evals:
        raise refuse(path, "its log_history holds no logged step")
    records = frame(rows).drop_duplicates("step", keep="last").reset_index(drop=True)
    global_step = number(state.get("global_step"))
    if global_step:  # the steps train_runtime covers, where the history was cut short
        totals["global_step"] = global_step
    max_steps = number(state.get("max_steps"))
    return TrainingLog(
        path=str(path),
        format=FORMAT,
        records=records,
        eval=frame(evals, ("step", "eval_loss")),
        total_steps=int(max_steps) if max_steps and math.isfinite(max_steps) else None,
        run_totals=totals,
    )
