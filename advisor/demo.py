"""The demo profile (a thin front to `advisor.synth`, kept for its callers), and the demo job's
training log, which `performance-advisor demo` writes beside the rank folders so that a user can try
a training log in the panel (`./profiling_dir1/trainer_log.jsonl`), alone or with the profile."""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from pathlib import Path

from .synth import DemoSpec, DemoStep, plan_demo, write_demo_profile
from .synth.text_export import STEP_TRACE_HEADER
from .synth.training_log import TrainingLogSpec, write_training_log

__all__ = [
    "DEMO_TRAINING_LOG",
    "DEMO_TRAINING_LOG_SPEC",
    "STEP_TRACE_HEADER",
    "DemoSpec",
    "DemoStep",
    "plan_demo",
    "write_demo_profile",
    "write_demo_training_log",
]

DEMO_TRAINING_LOG = "trainer_log.jsonl"
# The demo job as LLaMA-Factory logs it: clean (nothing injected, so no training finding of its own),
# one device per rank of the demo profile (2), and about the demo profile's step time (its ranks take
# 0.10-0.11 s a step), so that the profiled steps are representative of the run. One record every 200
# steps (22 s): LLaMA-Factory's elapsed time has whole seconds, and a record spanning a few of them
# (every 50 steps, 5.5 s) reads as a throughput drop of 20 %.
DEMO_TRAINING_LOG_SPEC = TrainingLogSpec(
    format="llamafactory",
    steps=6000,
    log_every=200,
    devices=2,
    seq_length=1024,
    global_batch_size=8,
    step_time_s=0.11,
    junk_lines=False,
)


def write_demo_training_log(dest: str | Path, *, devices: int | None = None) -> Path:
    """Write the demo job's `trainer_log.jsonl` to the file `dest` (its folder may hold a profile: only
    that file is added, atomically); `devices` (default 2) as many as the profile has ranks."""
    spec = DEMO_TRAINING_LOG_SPEC
    if devices is not None:
        spec = dataclasses.replace(spec, devices=devices)
    target = Path(dest)
    target.parent.mkdir(parents=True, exist_ok=True)
    # The generator writes a new folder (the log and its ground truth): one beside the target, so that
    # the log is renamed into place on the same file system.
    scratch = Path(tempfile.mkdtemp(prefix=".demo-log-", dir=target.parent))
    try:
        os.replace(write_training_log(scratch / "log", spec), target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target
