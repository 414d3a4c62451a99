"""The per-rank work on a real Dask cluster (a scheduler and two workers on 127.0.0.1, started and
stopped here): the same findings as the local run, progress per rank, and one clear line for a
scheduler that cannot be reached."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import advisor
from advisor.engine import run_analysis
from advisor.errors import InputError
from advisor.synth import SynthSpec, write_synth_profile

from .server_helpers import submit, wait_for

distributed = pytest.importorskip("distributed", reason="the dask extra (distributed) is not installed")

WORKERS = 2
START_TIMEOUT_S = 60
# The package the workers import: this checkout's, as the tests do (not an installed copy elsewhere).
PACKAGE_ROOT = Path(advisor.__file__).resolve().parents[1]
ANALYZE = (sys.executable, "-m", "advisor", "analyze")


class LoopbackCluster:
    """`dask scheduler` and WORKERS `dask worker` processes on 127.0.0.1, as a deployment runs them."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.processes: list[subprocess.Popen[bytes]] = []
        self.address = ""

    def _start(self, module: str, *args: str, log: str) -> subprocess.Popen[bytes]:
        env = {**os.environ, "PYTHONPATH": str(PACKAGE_ROOT)}
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

    def start(self) -> str:
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
        for n in range(WORKERS):
            self._start(
                "dask_worker",
                self.address,
                "--host=127.0.0.1",
                "--nthreads=1",
                "--no-nanny",  # one process per worker: what the teardown stops is all there is
                "--no-dashboard",
                f"--local-directory={self.folder / f'worker{n}'}",
                log=f"worker{n}.log",
            )
        with distributed.Client(self.address, timeout=START_TIMEOUT_S, set_as_default=False) as client:
            client.wait_for_workers(WORKERS, timeout=START_TIMEOUT_S)
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


@pytest.fixture(scope="module")
def dask_scheduler(tmp_path_factory) -> Iterator[str]:
    cluster = LoopbackCluster(tmp_path_factory.mktemp("dask"))
    try:
        yield cluster.start()
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def slow_rank_cluster(tmp_path_factory) -> Path:
    """4 ranks, rank 1 slowed down and GC pauses on every rank (ground truth in ground_truth.json)."""
    spec = SynthSpec(ranks=4, steps=(1, 2), inject=("cluster.slow_rank", "schedule.gc"), inject_ranks=(1,))
    return write_synth_profile(tmp_path_factory.mktemp("synth") / "cluster", spec)


def finding_rows(findings) -> list[tuple]:
    return sorted((f.check, tuple(f.ranks), f.priority, f.estimated_gain_us, f.title) for f in findings)


def test_ranks_on_dask_find_what_the_local_run_finds(dask_scheduler, slow_rank_cluster):
    local = run_analysis(slow_rank_cluster)
    events: list[tuple[str, int, int]] = []
    on_dask = run_analysis(
        slow_rank_cluster,
        scheduler_address=dask_scheduler,
        progress=lambda stage, done, total: events.append((stage, done, total)),
    )
    assert finding_rows(on_dask.findings) == finding_rows(local.findings)
    assert on_dask.summary == local.summary
    assert sorted(n.check for n in on_dask.not_evaluated) == sorted(n.check for n in local.not_evaluated)
    # The injected faults are found, on the ranks the ground truth names.
    truth = json.loads((slow_rank_cluster / "ground_truth.json").read_text())
    found = {f.check: f for f in on_dask.findings}
    assert {e["check"] for e in truth["injected"]} == {"cluster.slow_rank", "schedule.gc"}
    for injected in truth["injected"]:
        assert set(injected["ranks"]) == {1} <= set(found[injected["check"]].ranks)
    # One progress event per rank read (0..3 of 4 ranks, then the checks), as in the local run.
    reading = [e for e in events if e[0].startswith("reading rank")]
    assert [(done, total) for _, done, total in reading] == [(0, 6), (1, 6), (2, 6), (3, 6)]
    assert [stage for stage, _, _ in reading] == [f"reading rank {n}/4" for n in range(1, 5)]
    assert ("running checks", 4, 6) in events


def test_the_ranks_ran_on_the_workers(dask_scheduler, slow_rank_cluster):
    before = _rank_tasks_done(dask_scheduler)
    run_analysis(slow_rank_cluster, scheduler_address=dask_scheduler)
    assert _rank_tasks_done(dask_scheduler) - before == 4


def _rank_tasks_done(address: str) -> int:
    """How many rank tasks of analyses the workers have run so far (from their task logs)."""

    def count(dask_worker) -> int:  # transitions are logged as (key, start, finish, stimulus, time)
        return sum(entry[2] == "memory" and "-rank-" in str(entry[0]) for entry in dask_worker.state.log)

    with distributed.Client(address, set_as_default=False) as client:
        return sum(client.run(count).values())


def test_cli_scheduler_flag(dask_scheduler, slow_rank_cluster, tmp_path):
    out = tmp_path / "reports"
    command = [*ANALYZE, str(slow_rank_cluster), "--format", "json"]
    result = subprocess.run(
        [*command, "--output", str(out), "--scheduler", dask_scheduler, "--progress", "json"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=PACKAGE_ROOT,
    )
    assert result.returncode == 0, result.stderr
    [report] = out.glob("*.json")
    findings = json.loads(report.read_text())["findings"]
    local = run_analysis(slow_rank_cluster)
    assert sorted(
        (f["check"], f["ranks"], f["priority"], f["estimated_gain_us"]) for f in findings
    ) == sorted((f.check, f.ranks, f.priority, f.estimated_gain_us) for f in local.findings)
    events = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert sum(e["stage"].startswith("reading rank") for e in events if e["event"] == "progress") == 4


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("tcp://127.0.0.1:1", "Timed out trying to connect to tcp://127.0.0.1:1 after 10 s"),
        ("nonsense://host:8786", "unknown address scheme 'nonsense'"),
        ("tcp://127.0.0.1", "missing port number"),
    ],
)
def test_an_unreachable_scheduler_is_one_line_and_exit_2(slow_rank_cluster, tmp_path, address, problem):
    started = time.monotonic()
    result = subprocess.run(
        [
            *ANALYZE,
            str(slow_rank_cluster),
            "--scheduler",
            address,
            "--quiet",
            "--output",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=PACKAGE_ROOT,
    )
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith(f"performance-advisor: error: cannot reach the Dask scheduler at {address!r}: ")
    assert problem in line
    assert time.monotonic() - started < 30  # the connect timeout, not distributed's default
    assert not (tmp_path / "out").exists()


def test_object_storage_input_is_refused_with_a_scheduler(tmp_path):
    from advisor import cli

    with pytest.raises(InputError, match="--scheduler takes local paths"):
        cli._analyze(
            cli._parser().parse_args(["analyze", "obs://bucket/run", "--scheduler", "tcp://127.0.0.1:8786"]),
            cli.Reporter(),
        )


@pytest.fixture
def advisor_config(dask_scheduler) -> dict:
    return {"dask_scheduler_address": dask_scheduler}


async def test_server_runs_its_analyses_on_the_scheduler(
    jp_fetch, demo_profile, advisor_state_dir, dask_scheduler
):
    before = _rank_tasks_done(dask_scheduler)
    _, task = await submit(jp_fetch, "./profiling_dir1")
    done = await wait_for(jp_fetch, task["id"], ("success", "failed"), timeout=120)
    assert done["status"] == "success", done["error"]
    log = (advisor_state_dir / "logs" / f"{task['id']}.log").read_text()
    assert f"--scheduler {dask_scheduler}" in log.splitlines()[0]
    assert _rank_tasks_done(dask_scheduler) - before == 2  # the demo's two ranks
