"""A loopback Dask cluster (`dask scheduler` and `dask worker` processes on 127.0.0.1) for the tests
and benchmarks/bench_dask.py: started and stopped as a deployment would run them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import advisor

START_TIMEOUT_S = 60
# The package the workers import: this checkout's, as the tests do (not an installed copy elsewhere).
PACKAGE_ROOT = Path(advisor.__file__).resolve().parents[1]


class LoopbackCluster:
    """`dask scheduler` and `workers` `dask worker` processes (one thread each) on 127.0.0.1; `env`:
    more environment for them (e.g. their own table cache)."""

    def __init__(self, folder: Path, workers: int = 2, env: dict[str, str] | None = None) -> None:
        self.folder = folder
        self.workers = workers
        self.env = {**os.environ, **(env or {}), "PYTHONPATH": str(PACKAGE_ROOT)}
        self.processes: list[subprocess.Popen[bytes]] = []
        self.address = ""

    def _start(self, module: str, *args: str, log: str) -> subprocess.Popen[bytes]:
        with open(self.folder / log, "wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", f"distributed.cli.{module}", *args],
                cwd=self.folder,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.processes.append(process)
        return process

    def start(self) -> str:
        """Start the scheduler and the workers; the scheduler's address once every worker is in."""
        import distributed

        self.folder.mkdir(parents=True, exist_ok=True)
        scheduler_file = self.folder / "scheduler.json"
        self._start(
            "dask_scheduler",
            "--host=127.0.0.1",
            "--port=0",  # a free port, read back from the scheduler file
            "--no-dashboard",
            f"--scheduler-file={scheduler_file}",
            log="scheduler.log",
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not scheduler_file.exists() or not scheduler_file.read_text().strip():
            assert time.monotonic() < deadline, (self.folder / "scheduler.log").read_text()
            time.sleep(0.1)
        self.address = json.loads(scheduler_file.read_text())["address"]
        for n in range(self.workers):
            self._start(
                "dask_worker",
                self.address,
                "--host=127.0.0.1",
                "--nthreads=1",
                "--no-nanny",  # one process per worker: what `stop` ends is all there is
                "--no-dashboard",
                f"--local-directory={self.folder / f'worker{n}'}",
                log=f"worker{n}.log",
            )
        with distributed.Client(self.address, timeout=START_TIMEOUT_S, set_as_default=False) as client:
            client.wait_for_workers(self.workers, timeout=START_TIMEOUT_S)
        return self.address

    def stop(self) -> None:
        for process in reversed(self.processes):  # workers first, then the scheduler
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
