"""The per-rank work on a real Dask cluster (a scheduler and two workers on 127.0.0.1, started and
stopped here): the same findings as the local run, progress per rank, and one clear line for a
scheduler that cannot be reached."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from advisor.engine import run_analysis
from advisor.options import Deployment
from advisor.synth import SynthSpec, write_synth_profile

from .dask_cluster import PACKAGE_ROOT, LoopbackCluster
from .server_helpers import submit, wait_for

distributed = pytest.importorskip("distributed", reason="the dask extra (distributed) is not installed")

ANALYZE = (sys.executable, "-m", "advisor", "analyze")


@pytest.fixture(scope="module")
def dask_scheduler(tmp_path_factory) -> Iterator[str]:
    cluster = LoopbackCluster(tmp_path_factory.mktemp("dask"), workers=2)
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
        deployment=Deployment(dask_scheduler),
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
    run_analysis(slow_rank_cluster, deployment=Deployment(dask_scheduler))
    assert _rank_tasks_done(dask_scheduler) - before == 4


def _rank_tasks_done(address: str) -> int:
    """How many rank tasks of analyses the workers have run so far (from their task logs)."""

    def count(dask_worker) -> int:  # transitions are logged as (key, start, finish, stimulus, time)
        return sum(entry[2] == "memory" and "-rank-" in str(entry[0]) for entry in dask_worker.state.log)

    with distributed.Client(address, set_as_default=False) as client:
        return sum(client.run(count).values())


def test_a_worker_lost_in_the_middle_gives_its_ranks_to_another(tmp_path):
    # Bigger ranks than the module's cluster, so that a worker is killed while it holds one.
    spec = SynthSpec(ranks=4, steps=(1, 2), size_mb=3, inject=("cluster.slow_rank",), inject_ranks=(2,))
    profile = write_synth_profile(tmp_path / "cluster", spec)
    local = run_analysis(profile)
    cluster = LoopbackCluster(tmp_path / "dask", workers=2)
    try:
        address = cluster.start()
        with distributed.Client(address, set_as_default=False) as client, ThreadPoolExecutor(1) as thread:
            running = thread.submit(run_analysis, profile, deployment=Deployment(address))
            pids = client.run(os.getpid)  # {worker address: its process}, all started by this test
            victim = _worker_holding_a_rank(client)
            os.kill(pids[victim], signal.SIGKILL)
            report = running.result(timeout=300)
            assert victim not in client.scheduler_info()["workers"]
    finally:
        cluster.stop()
    assert finding_rows(report.findings) == finding_rows(local.findings)
    assert "cluster.slow_rank" in {f.check for f in report.findings}


def test_ctrl_c_leaves_no_rank_on_the_cluster(dask_scheduler, tmp_path):
    spec = SynthSpec(ranks=8, steps=(1, 2), size_mb=3)
    profile = write_synth_profile(tmp_path / "cluster", spec)
    command = [
        *ANALYZE,
        str(profile),
        "--scheduler",
        dask_scheduler,
        "--quiet",
        "--output",
        str(tmp_path / "out"),
    ]
    with distributed.Client(dask_scheduler, set_as_default=False) as client:
        analysis = subprocess.Popen(command, cwd=PACKAGE_ROOT, stderr=subprocess.PIPE, text=True)
        try:
            _worker_holding_a_rank(client)
            analysis.send_signal(signal.SIGINT)
            _, err = analysis.communicate(timeout=60)
        finally:
            analysis.kill()
        assert analysis.returncode == 130 and err.strip() == "performance-advisor: interrupted"
        deadline = time.monotonic() + 10
        while client.run_on_scheduler(_rank_tasks_held):
            assert time.monotonic() < deadline, client.run_on_scheduler(_rank_tasks_held)
            time.sleep(0.1)
    assert not (tmp_path / "out").exists()


def _rank_tasks_held(dask_scheduler) -> list[str]:
    """The rank tasks the scheduler still holds (run on the scheduler)."""
    return [str(key) for key in dask_scheduler.tasks if "-rank-" in str(key)]


def _worker_holding_a_rank(client) -> str:
    """The address of a worker that holds a rank task, as soon as one does."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for worker, keys in client.processing().items():
            if any("-rank-" in str(key) for key in keys):
                return worker
        time.sleep(0.02)
    raise AssertionError("no worker took a rank within 60 s")


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
