"""Megatron-LM / MindSpeed-LLM / ModelLink stdout: `iteration 10/ 1000 | consumed samples: … |
elapsed time per iteration (ms): … | learning rate: … | global batch size: … | lm loss: … | loss scale:
… | grad norm: … | number of skipped iterations: … | number of nan iterations: … |` (fields vary by
version), among any other lines. The logged arguments (`seq_length ........ 4096`, `--seq-length 4096`,
`using world size: 8`) give the sequence length, device count and global batch size.

Several ranks may print (a launcher prefixing `[rank7]:`, `[default7]:` or `7: `): the lines of the
first rank seen printing an iteration are read, every other printer's left out (said in the notes);
an iteration printed twice by that rank (a restart from a checkpoint) keeps its last line."""

from __future__ import annotations

import math
import re
from pathlib import Path

from .model import TrainingLog, frame
from .text import lines, number, refuse

FORMAT = "megatron"
ITERATION = re.compile(r"\biteration\s+(\d+)\s*/\s*(\d+)\s*\|")
RECORD = re.compile(rb"\biteration\s+\d+\s*/\s*\d+\s*\|")
# `[rank7]:`, `[default7]:` (torchrun --tee), `[host:7]:` (srun --label with a host), `7: ` (srun -l).
PRINTER = re.compile(r"^\s*(?:\[(?:[\w.-]+:)?(?:rank|default)?(\d+)\]:?|(\d+):(?!\d))")
# Arguments as Megatron prints them (`name ......... value`) or as a command line holds them.
ARGUMENT = re.compile(r"^\s*(seq_length|world_size|global_batch_size)\s+\.{2,}\s+(\d+)\s*$")
FLAG = re.compile(r"--(seq-length|global-batch-size)[\s=]+(\d+)")
WORLD_SIZE = re.compile(r"using world size:\s*(\d+)")

# Field name (lower case, as logged) -> canonical column; a loss field is found by its name.
FIELDS = {
    "elapsed time per iteration (ms)": "step_time_ms",
    "learning rate": "lr",
    "global batch size": "global_batch_size",
    "loss scale": "loss_scale",
    "grad norm": "grad_norm",
    "number of skipped iterations": "skipped_iterations",
    "number of nan iterations": "nan_iterations",
}
LOSS_FIELDS = ("lm loss", "loss")


def sniff(text: str) -> bool:
    # The substring test first: the regular expression tries every position of the 8 MB head, 0.2 s
    # on a PyTorch trace file that `analyze PATH` and the panel's path check sniff for a log.
    return "iteration" in text and ITERATION.search(text) is not None


def record_step(line: str) -> int | None:
    match = ITERATION.search(line)
    return int(match.group(1)) if match else None


def printer(line: str) -> str:
    match = PRINTER.match(line)
    return (match.group(1) or match.group(2)) if match else ""


def fields(text: str) -> dict[str, float | None]:
    """The `name: value` fields of an iteration line's text after `iteration N/ M |`."""
    found: dict[str, float | None] = {}
    for part in text.split("|"):
        name, colon, value = part.partition(":")
        if colon:
            found[name.strip().lower()] = number(value)
    return found


def parse(path: Path) -> TrainingLog:
    by_step: dict[int, dict[str, float]] = {}
    chosen: str | None = None
    others: set[str] = set()
    stated: dict[str, int] = {}
    total_steps: int | None = None
    for line in lines(path):
        match = ITERATION.search(line)
        if match is None:
            _read_argument(line, stated)
            continue
        who = printer(line)
        if chosen is None:
            chosen = who
        if who != chosen:
            others.add(who)
            continue
        step, total_steps = int(match.group(1)), int(match.group(2))
        values = fields(line[match.end() :])
        loss_name = next((n for n in LOSS_FIELDS if n in values), None)
        loss = values.get(loss_name) if loss_name else None
        time_ms = values.get("elapsed time per iteration (ms)")
        row: dict[str, float] = {"step": step, "loss_logged": loss is not None}
        row["loss"] = loss if loss is not None else math.nan
        for name, column in FIELDS.items():
            if values.get(name) is not None and column != "step_time_ms":
                row[column] = values[name]  # type: ignore[assignment]
        if time_ms is not None:
            row["step_time_s"] = time_ms / 1000
        by_step[step] = row
    if not by_step:
        raise refuse(path, "no Megatron iteration line ('iteration N/ M | …')")
    records = frame(list(by_step.values()))
    if records["global_batch_size"].isna().all() and "global_batch_size" in stated:
        records["global_batch_size"] = float(stated["global_batch_size"])
    log = TrainingLog(
        path=str(path),
        format=FORMAT,
        records=records,
        eval=frame([], ("step", "eval_loss")),
        devices=stated.get("world_size"),
        seq_length=stated.get("seq_length"),
        total_steps=total_steps,
    )
    if others:
        printers = sorted({*others, chosen or ""}, key=lambda r: (len(r), r))
        log.notes.append(
            (
                "training.note.printers",
                {"printers": ", ".join(p or "?" for p in printers), "chosen": chosen or "?"},
            )
        )
    return log


def _read_argument(line: str, stated: dict[str, int]) -> None:
    """Note a logged argument: the first statement of each counts (a later one is another job's)."""
    prefix = PRINTER.match(line)
    line = line[prefix.end() :] if prefix else line
    match = ARGUMENT.match(line)
    if match:
        stated.setdefault(match.group(1), int(match.group(2)))
        return
    for flag, value in FLAG.findall(line):
        stated.setdefault(flag.replace("-", "_"), int(value))
    world = WORLD_SIZE.search(line)
    if world:
        stated.setdefault("world_size", int(world.group(1)))
