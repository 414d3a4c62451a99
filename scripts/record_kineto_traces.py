"""Record small real PyTorch profiler (Kineto) CPU traces with known problems, for tests/data/kineto.

Needs a CPU build of torch in its own environment (never the project's venv):

    python3 -m venv /work/torch-venv && /work/torch-venv/bin/pip install torch==2.13.0
    /work/torch-venv/bin/python scripts/record_kineto_traces.py --out tests/data/kineto

Each case writes `<out>/<case>/rank<N>.<timestamp>.pt.trace.json.gz` through
`torch.profiler.tensorboard_trace_handler` (gzip), profiling steps with schedule(wait=1, warmup=1,
active=ACTIVE_STEPS) so that `ProfilerStep#N` annotations appear, with record_shapes on and
with_stack off (on in gc_pressure only: see there). What each case injects is in
tests/data/kineto/README.md (the ground truth); the numbers below are that truth, so change them
together.
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.profiler import ProfilerActivity, _ExperimentalConfig, profile, schedule, tensorboard_trace_handler
from torch.utils.data import DataLoader, Dataset

WAIT_STEPS, WARMUP_STEPS, ACTIVE_STEPS = 1, 1, 2
STEPS = WAIT_STEPS + WARMUP_STEPS + ACTIVE_STEPS
STRAGGLER_RANK = 1
STRAGGLER_SLEEP_S = 0.050  # before backward, every step, on STRAGGLER_RANK only
TINY_OPS_PER_STEP = 600  # host-bound: element-wise ops on 8-element tensors
SAMPLE_SLEEP_S = 0.004  # slow DataLoader: each __getitem__
BATCH = 8  # samples per batch: 8 x 4 ms = 32 ms of loading per step
CYCLIC_OBJECTS = 200_000  # GC pressure: self-referencing lists made per step before gc.collect()


def _profiler(
    out: Path, rank: int, *, profile_memory: bool = False, with_stack: bool = False, gc_events: bool = False
) -> profile:
    return profile(
        activities=[ProfilerActivity.CPU],
        schedule=schedule(wait=WAIT_STEPS, warmup=WARMUP_STEPS, active=ACTIVE_STEPS, repeat=1),
        on_trace_ready=tensorboard_trace_handler(str(out), worker_name=f"rank{rank}", use_gzip=True),
        record_shapes=True,
        with_stack=with_stack,
        profile_memory=profile_memory,
        experimental_config=_ExperimentalConfig(record_python_gc_info=True) if gc_events else None,
    )


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))


def _train_step(
    model: nn.Module, optimizer: torch.optim.Optimizer, before_backward: Callable[[], None]
) -> None:
    inputs, labels = torch.randn(32, 64), torch.randint(0, 10, (32,))
    loss = nn.functional.cross_entropy(model(inputs), labels)
    before_backward()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def _ddp_worker(rank: int, world_size: int, port: int, out: Path) -> None:
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    model = nn.parallel.DistributedDataParallel(_model())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)

    def straggle() -> None:
        if rank == STRAGGLER_RANK:
            time.sleep(STRAGGLER_SLEEP_S)

    with _profiler(out, rank) as prof:
        for _ in range(STEPS):
            _train_step(model, optimizer, straggle)
            prof.step()
    dist.destroy_process_group()


def record_ddp_straggler(out: Path) -> None:
    """2 processes, gloo over 127.0.0.1; rank 1 sleeps before backward, rank 0 waits in the all-reduce."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mp.spawn(_ddp_worker, args=(2, port, out), nprocs=2, join=True)


def record_host_bound(out: Path) -> None:
    """Many tiny element-wise ops per step: the time goes to dispatching them, not computing."""
    weights = [torch.zeros(8) for _ in range(8)]
    with _profiler(out, 0) as prof:
        for _ in range(STEPS):
            for i in range(TINY_OPS_PER_STEP):
                weights[i % len(weights)].add_(0.5).mul_(0.9)
            prof.step()


class _SlowDataset(Dataset):
    def __len__(self) -> int:
        return BATCH * STEPS

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        time.sleep(SAMPLE_SLEEP_S)
        return torch.randn(64), torch.tensor(index % 10)


def record_slow_dataloader(out: Path) -> None:
    """num_workers=0 and a __getitem__ that sleeps: every step starts with a long loading range."""
    model = _model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    loader = DataLoader(_SlowDataset(), batch_size=BATCH, num_workers=0)
    with _profiler(out, 0, profile_memory=True) as prof:
        for inputs, labels in loader:
            loss = nn.functional.cross_entropy(model(inputs), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            prof.step()


def _gc_pressure(out: Path, *, with_stack: bool) -> None:
    model = _model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    with _profiler(out, 0, with_stack=with_stack, gc_events=True) as prof:
        for _ in range(STEPS):
            # Lists that hold themselves: cycles only the collector frees, made without Python
            # calls so that with_stack adds no function event per object.
            for _ in range(CYCLIC_OBJECTS):
                cycle: list[object] = [None]
                cycle[0] = cycle
            gc.collect()
            _train_step(model, optimizer, lambda: None)
            prof.step()


def record_gc_pressure(out: Path) -> None:
    """Reference cycles made and collected in every step; Python GC events requested, with_stack on
    (torch 2.13 records `Python GC` events only through the Python tracer, i.e. with with_stack)."""
    _gc_pressure(out, with_stack=True)


def record_gc_pressure_nostack(out: Path) -> None:
    """The same with with_stack off: the GC events are requested but not recorded; the pause shows
    only as time inside the step that no op covers."""
    _gc_pressure(out, with_stack=False)


CASES: dict[str, Callable[[Path], None]] = {
    "ddp_straggler": record_ddp_straggler,
    "host_bound": record_host_bound,
    "slow_dataloader": record_slow_dataloader,
    "gc_pressure": record_gc_pressure,
    "gc_pressure_nostack": record_gc_pressure_nostack,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("tests/data/kineto"))
    parser.add_argument("--case", choices=sorted(CASES), action="append", help="default: every case")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # small, comparable traces on a shared machine
    for name in args.case or list(CASES):
        case_dir = args.out / name
        # The handler names files by time: an old recording would stay beside the new one.
        shutil.rmtree(case_dir, ignore_errors=True)
        case_dir.mkdir(parents=True)
        CASES[name](case_dir)
        for trace in sorted(case_dir.iterdir()):
            print(f"{trace} {trace.stat().st_size} bytes (torch {torch.__version__})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
