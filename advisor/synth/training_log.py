"""The training-log generator: a LLaMA-Factory `trainer_log.jsonl`, a Megatron/MindSpeed stdout log or
a HuggingFace `trainer_state.json` of a run with known anomalies, and `ground_truth.json` saying where
each is and what the throughput is.

The run: `steps` optimizer steps logged every `log_every`, each `step_time_s` long (2 % noise) and
`global_batch_size` x `seq_length` tokens; the loss decays towards a floor with 1 % noise; the learning
rate warms up over the first 5 % of the steps then decays (cosine). Anomalies (`inject`):
  loss_spike: the loss of 3 records (at 30 %, 55 %, 80 % of the run) 80 % above the curve;
  nan_loss: the loss at 60 % of the run is NaN (Megatron: a nan iteration is counted there too);
  loss_divergence: from 70 % of the run the loss rises linearly, 50 % above its value there by the end;
  throughput_drop: from 50 % of the run every step takes 1.5 times as long;
  stalls: every `stall_every` steps a checkpoint save adds `stall_s`;
  warmup: the first 10 % of the records are 3 times slower (short runs).
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .generate import prepare_dest
from .kineto.write import write_atomic

LOG_FORMATS = ("llamafactory", "megatron", "hf_trainer_state")
ANOMALIES = ("loss_spike", "nan_loss", "loss_divergence", "throughput_drop", "stalls", "warmup")
FILE_NAMES = {
    "llamafactory": "trainer_log.jsonl",
    "megatron": "train.log",
    "hf_trainer_state": "trainer_state.json",
}
# Where each anomaly is, as a share of the run (the ground truth gives the step).
SPIKE_AT = (0.3, 0.55, 0.8)
NAN_AT, DIVERGE_AT, DROP_AT, WARMUP_SHARE = 0.6, 0.7, 0.5, 0.1


@dataclass(frozen=True)
class TrainingLogSpec:
    """What to generate. `state_facts`: the log states its device count and sequence length (Megatron's
    arguments; the other formats never do). `printers`: ranks printing Megatron's iteration lines."""

    format: str = "llamafactory"
    steps: int = 2000
    log_every: int = 10
    seed: int = 0
    devices: int = 8
    seq_length: int = 4096
    global_batch_size: int = 64
    step_time_s: float = 4.0
    inject: tuple[str, ...] = ()
    stall_every: int = 200
    stall_s: float = 90.0
    state_facts: bool = True
    printers: int = 1
    junk_lines: bool = True

    def __post_init__(self) -> None:
        if self.format not in LOG_FORMATS:
            raise ValueError(f"format must be one of {', '.join(LOG_FORMATS)}; got {self.format!r}")
        unknown = sorted(set(self.inject) - set(ANOMALIES))
        if unknown:
            raise ValueError(f"unknown anomaly {', '.join(unknown)}; known: {', '.join(ANOMALIES)}")
        if self.steps < 20 * self.log_every or self.log_every < 1:
            raise ValueError("steps must be at least 20 logging intervals")


@dataclass
class Record:
    step: int
    loss: float
    lr: float
    grad_norm: float
    step_time_s: float  # mean over the steps since the previous record
    elapsed_s: float
    tokens: int


def simulate(spec: TrainingLogSpec) -> tuple[list[Record], dict[str, Any]]:
    """The records of the run and its ground truth."""
    rng = random.Random(spec.seed)
    inject = set(spec.inject)
    steps = list(range(spec.log_every, spec.steps + 1, spec.log_every))
    at = {share: steps[int(share * (len(steps) - 1))] for share in (*SPIKE_AT, NAN_AT, DIVERGE_AT, DROP_AT)}
    warmup_records = max(2, int(WARMUP_SHARE * len(steps))) if "warmup" in inject else 0
    tokens_per_step = spec.global_batch_size * spec.seq_length
    records: list[Record] = []
    elapsed, stall_steps = 0.0, []
    diverge_from = None
    for index, step in enumerate(steps):
        base = 1.6 + 2.4 * math.exp(-step / (0.15 * spec.steps))
        loss = base * (1 + rng.gauss(0, 0.01))
        if "loss_divergence" in inject and step >= at[DIVERGE_AT]:
            diverge_from = diverge_from or base
            loss += 0.5 * diverge_from * (step - at[DIVERGE_AT]) / (spec.steps - at[DIVERGE_AT])
        if "loss_spike" in inject and step in {at[s] for s in SPIKE_AT}:
            loss = base * 1.8
        if "nan_loss" in inject and step == at[NAN_AT]:
            loss = math.nan
        time = spec.step_time_s * (1 + rng.gauss(0, 0.02))
        if "throughput_drop" in inject and step > at[DROP_AT]:
            time *= 1.5
        if index < warmup_records:
            time *= 3
        covered = spec.log_every
        if "stalls" in inject:
            stalls = [s for s in range(step - covered + 1, step + 1) if s % spec.stall_every == 0]
            stall_steps += stalls
            time += spec.stall_s * len(stalls) / covered
        elapsed += time * covered
        warm = 0.05 * spec.steps
        lr = 2e-5 * (step / warm if step < warm else 0.5 * (1 + math.cos(math.pi * step / spec.steps)))
        records.append(
            Record(step, loss, lr, 1.0 + 0.1 * rng.random(), time, elapsed, tokens_per_step * step)
        )
    truth: dict[str, Any] = {
        "format": spec.format,
        "devices": spec.devices,
        "seq_length": spec.seq_length,
        "tokens_per_s_per_device": tokens_per_step / spec.step_time_s / spec.devices,
        "anomalies": {},
    }
    found = truth["anomalies"]
    if "loss_spike" in inject:
        found["training.loss_spike"] = {"steps": [at[s] for s in SPIKE_AT], "step": at[SPIKE_AT[0]]}
    if "nan_loss" in inject:
        found["training.nan_loss"] = {"step": at[NAN_AT]}
    if "loss_divergence" in inject:
        found["training.loss_divergence"] = {"step": at[DIVERGE_AT]}
    if "throughput_drop" in inject:
        found["training.throughput_drop"] = {"step": at[DROP_AT] + spec.log_every, "factor": 1.5}
    if "stalls" in inject:
        first = next(r.step for r in records if r.step >= stall_steps[0])
        found["training.throughput_drop.stalls"] = {"step": first, "period": spec.stall_every}
    if "warmup" in inject:
        found["training.warmup_dominates"] = {"step": steps[0], "records": warmup_records}
    return records, truth


def clock(seconds: float) -> str:
    """H:MM:SS as LLaMA-Factory writes elapsed_time (whole seconds)."""
    whole = int(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def render_llamafactory(spec: TrainingLogSpec, records: list[Record]) -> str:
    lines = []
    for record in records:
        entry: dict[str, Any] = {
            "current_steps": record.step,
            "total_steps": spec.steps,
            "loss": round(record.loss, 4) if math.isfinite(record.loss) else record.loss,
            "lr": record.lr,
            "epoch": round(record.step / spec.steps * 3, 2),
            "percentage": round(100 * record.step / spec.steps, 2),
            "elapsed_time": clock(record.elapsed_s),
            "remaining_time": clock(record.elapsed_s / record.step * (spec.steps - record.step)),
            "throughput": round(record.tokens / record.elapsed_s, 2),
            "total_tokens": record.tokens,
        }
        lines.append(json.dumps(entry))
        if record.step % (spec.steps // 4) == 0:
            lines.append(
                json.dumps(
                    {
                        "current_steps": record.step,
                        "total_steps": spec.steps,
                        "eval_loss": round(record.loss * 1.05, 4) if math.isfinite(record.loss) else 9.9,
                    }
                )
            )
    return "\n".join(lines) + "\n"


def render_megatron(spec: TrainingLogSpec, records: list[Record]) -> str:
    lines = ["using torch.float16 for parameters ..."]
    if spec.state_facts:
        lines += [
            f"using world size: {spec.devices}, data-parallel size: {spec.devices // 2}, "
            "tensor-model-parallel size: 2",
            "------------------------ arguments ------------------------",
            f"  global_batch_size ............................... {spec.global_batch_size}",
            f"  seq_length ...................................... {spec.seq_length}",
            f"  world_size ...................................... {spec.devices}",
            "-------------------- end of arguments ---------------------",
        ]
    prefixes = [""] if spec.printers == 1 else [f"[rank{r}]: " for r in range(spec.printers)]
    for record in records:
        nan = not math.isfinite(record.loss)
        loss = "nan" if nan else f"{record.loss:.6E}"
        text = (
            f" [2024-05-01 10:00:00] iteration {record.step:>8}/{spec.steps:>8} | consumed samples: "
            f"{record.step * spec.global_batch_size:>12} | elapsed time per iteration (ms): "
            f"{record.step_time_s * 1000:.1f} | learning rate: {record.lr:.6E} | global batch size: "
            f"{spec.global_batch_size:>5} | lm loss: {loss} | loss scale: 1.0 | grad norm: "
            f"{record.grad_norm:.3f} | number of skipped iterations: {int(nan):>3} | number of nan "
            f"iterations: {int(nan):>3} |"
        )
        lines += [prefix + text for prefix in prefixes]
        if spec.junk_lines:
            lines.append(
                f"[Rank 0] (after {record.step} iterations) memory (MB) | allocated: 1234.5 | "
                "max allocated: 2345.6"
            )
    return "\n".join(lines) + "\n"


def render_trainer_state(spec: TrainingLogSpec, records: list[Record]) -> str:
    history: list[dict[str, Any]] = []
    for record in records:
        history.append(
            {
                "epoch": round(record.step / spec.steps * 3, 4),
                "grad_norm": round(record.grad_norm, 4),
                "learning_rate": record.lr,
                "loss": round(record.loss, 4) if math.isfinite(record.loss) else record.loss,
                "num_input_tokens_seen": record.tokens,
                "step": record.step,
            }
        )
        if record.step % (spec.steps // 4) == 0:
            history.append(
                {"epoch": round(record.step / spec.steps * 3, 4), "eval_loss": 2.0, "step": record.step}
            )
    last = records[-1]
    history.append(
        {
            "epoch": 3.0,
            "step": last.step,
            "total_flos": 1.0e18,
            "train_loss": 2.0,
            "train_runtime": round(last.elapsed_s, 4),
            "train_samples_per_second": round(last.step * spec.global_batch_size / last.elapsed_s, 3),
            "train_steps_per_second": round(last.step / last.elapsed_s, 3),
        }
    )
    state = {
        "best_metric": None,
        "epoch": 3.0,
        "global_step": last.step,
        "log_history": history,
        "logging_steps": spec.log_every,
        "max_steps": spec.steps,
        "train_batch_size": 8,
    }
    return json.dumps(state, indent=2) + "\n"


RENDERERS = {
    "llamafactory": render_llamafactory,
    "megatron": render_megatron,
    "hf_trainer_state": render_trainer_state,
}


def write_training_log(dest: str | Path, spec: TrainingLogSpec) -> Path:
    """Write the log and `ground_truth.json` into `dest` (new or empty); returns the log's path."""
    root = prepare_dest(dest)
    records, truth = simulate(spec)
    path = root / FILE_NAMES[spec.format]
    write_atomic(path, RENDERERS[spec.format](spec, records).encode("utf-8"))
    truth["file"] = path.name
    write_atomic(root / "ground_truth.json", (json.dumps(truth, indent=2) + "\n").encode("utf-8"))
    return path
