"""A loopback Dask cluster (`dask scheduler` and `dask worker` processes on 127.0.0.1) for the tests
and benchmarks/bench_dask.py: started and stopped as a deployment would run them."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distributed.diagnostics.plugin import SchedulerPlugin

import advisor

START_TIMEOUT_S = 60
# The package the workers import: this checkout's, as the tests do (not an installed copy elsewhere).
PACKAGE_ROOT = Path(advisor.__file__).resolve().parents[1]


@dataclass(frozen=True)
class TLSFiles:
    """A CA and one certificate and key it signed, which the scheduler, workers and client share."""

    ca: Path
    cert: Path
    key: Path

    def flags(self) -> list[str]:
        return [f"--tls-ca-file={self.ca}", f"--tls-cert={self.cert}", f"--tls-key={self.key}"]


def make_tls_files(folder: Path) -> TLSFiles:
    """A self-signed CA and a certificate for 127.0.0.1 signed by it (openssl)."""
    folder.mkdir(parents=True, exist_ok=True)
    ca, ca_key = folder / "ca.pem", folder / "ca.key"
    cert, key, request = folder / "node.pem", folder / "node.key", folder / "node.csr"
    openssl = ["openssl", "req", "-nodes", "-newkey", "rsa:2048", "-subj"]
    subprocess.run(
        [*openssl, "/CN=advisor test CA", "-x509", "-days", "2", "-keyout", ca_key, "-out", ca],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [*openssl, "/CN=127.0.0.1", "-keyout", key, "-out", request], check=True, capture_output=True
    )
    extensions = folder / "san.ext"
    extensions.write_text("subjectAltName=IP:127.0.0.1\n")
    subprocess.run(
        [
            *("openssl", "x509", "-req", "-in", request, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial"),
            *("-days", "2", "-out", cert, "-extfile", extensions),
        ],
        check=True,
        capture_output=True,
    )
    return TLSFiles(ca, cert, key)


class RecordTaskSpecs(SchedulerPlugin):
    """On the scheduler: every submitted task's spec as pickled bytes (what a worker receives), so a
    test can look for what must never be sent; and every client that connected."""

    name = "record-task-specs"

    def __init__(self) -> None:
        self.specs: dict[str, bytes] = {}
        self.clients: list[str] = []

    def add_client(self, scheduler: Any, client: str) -> None:
        self.clients.append(client)

    def update_graph(self, scheduler: Any, *, tasks: list[Any], **kwargs: Any) -> None:
        for key in tasks:
            state = scheduler.tasks.get(key)
            if state is not None and state.run_spec is not None:
                self.specs[str(key)] = pickle.dumps(state.run_spec)


def recorded_task_specs(dask_scheduler: Any) -> dict[str, bytes]:
    """`client.run_on_scheduler(recorded_task_specs)`: what RecordTaskSpecs recorded."""
    return dask_scheduler.plugins[RecordTaskSpecs.name].specs


def recorded_clients(dask_scheduler: Any) -> list[str]:
    """`client.run_on_scheduler(recorded_clients)`: the clients that connected, in order."""
    return dask_scheduler.plugins[RecordTaskSpecs.name].clients


class LoopbackCluster:
    """`dask scheduler` and `workers` `dask worker` processes (one thread each) on 127.0.0.1; `env`:
    more environment for all of them (e.g. their own table cache), `worker_env` for the workers
    alone (e.g. object-store credentials; "{worker}" in a value becomes the worker's number); `tls`:
    tls:// connections with these files."""

    def __init__(
        self,
        folder: Path,
        workers: int = 2,
        env: dict[str, str] | None = None,
        worker_env: dict[str, str] | None = None,
        tls: TLSFiles | None = None,
    ) -> None:
        self.folder = folder
        self.workers = workers
        self.env = {**os.environ, **(env or {}), "PYTHONPATH": str(PACKAGE_ROOT)}
        self.worker_env = {**self.env, **(worker_env or {})}
        self.tls = tls
        self.processes: list[subprocess.Popen[bytes]] = []
        self.address = ""

    def _start(self, module: str, *args: str, log: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
        with open(self.folder / log, "wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", f"distributed.cli.{module}", *args],
                cwd=self.folder,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.processes.append(process)
        return process

    def security(self) -> Any:
        """The client's distributed Security (None for tcp://)."""
        if self.tls is None:
            return None
        from distributed.security import Security

        return Security(
            tls_ca_file=str(self.tls.ca),
            tls_client_cert=str(self.tls.cert),
            tls_client_key=str(self.tls.key),
            require_encryption=True,
        )

    def start(self) -> str:
        """Start the scheduler and the workers; the scheduler's address once every worker is in."""
        self.folder.mkdir(parents=True, exist_ok=True)
        scheduler_file = self.folder / "scheduler.json"
        tls = self.tls.flags() if self.tls else []
        self._start(
            "dask_scheduler",
            f"--host={'tls://' if self.tls else ''}127.0.0.1",
            "--port=0",  # a free port, read back from the scheduler file
            "--no-dashboard",
            f"--scheduler-file={scheduler_file}",
            *tls,
            log="scheduler.log",
            env=self.env,
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
                *tls,
                log=f"worker{n}.log",
                env={name: value.replace("{worker}", str(n)) for name, value in self.worker_env.items()},
            )
        with self.client() as client:
            client.wait_for_workers(self.workers, timeout=START_TIMEOUT_S)
            client.register_plugin(RecordTaskSpecs())
        return self.address

    def client(self) -> Any:
        import distributed

        return distributed.Client(
            self.address, timeout=START_TIMEOUT_S, set_as_default=False, security=self.security()
        )

    def stop(self) -> None:
        for process in reversed(self.processes):  # workers first, then the scheduler
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
