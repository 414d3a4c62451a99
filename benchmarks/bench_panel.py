"""The panel's Submit -> Success on the demo profile: cold subprocess against the warm worker.

Two `TaskRunner`s, as the server builds them, in one event loop: one starts each analysis as a fresh
`python -m advisor analyze` subprocess (`AdvisorApp.warm_worker = False`), the other forks it from the
warm worker (started, and waited for, before the first task). Tasks are built from the panel's
request (`parse_submission`, default options: html, xlsx and json reports) and alternate between the
two runners, one at a time. Each task analyses a fresh copy of the demo profile (2 ranks), so that the
table cache of a previous task never answers it.

    python benchmarks/bench_panel.py [--repeat 7]

Submit -> Success is the server's time from `TaskRunner.submit` to the task's `success` (the result
event named report files that exist); first progress is when the first progress event arrived; CPU is
the analysis process's CPU seconds (user + system, its worker processes included), which a loaded
machine changes less than wall times. Issue 19, goal 2: under 1 s of server time.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL_S = 1.0  # issue 19, goal 2


def children_cpu_s(runner) -> float:
    """CPU seconds of the analyses that have ended: the warm worker reaps its children (its
    cutime + cstime), a cold subprocess is reaped by this process."""
    if runner.warm_worker is None:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime
    zygote = runner.warm_worker.zygote
    fields = Path(f"/proc/{zygote.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")  # proc(5) fields 16, 17


async def run_task(runner, resolver, path: str) -> tuple[float, float, float]:
    """(Submit -> Success, Submit -> first progress event, CPU) in seconds for one task."""
    from advisor.server.models import SUCCESS
    from advisor.server.submission import parse_submission

    task = parse_submission({"source": "local", "path": path}, resolver)
    cpu_before = children_cpu_s(runner) if runner.warm_worker is None or runner.warm_worker.zygote else 0.0
    started = time.perf_counter()
    runner.submit(task)
    first_progress = None
    while task.status != SUCCESS:
        if task.status in ("failed", "cancelled"):
            raise RuntimeError(f"task {task.id} {task.status}: {task.error}")
        if first_progress is None and task.progress and task.progress.get("stage") != "starting":
            first_progress = time.perf_counter() - started
        await asyncio.sleep(0.002)
    success = time.perf_counter() - started
    while task.id in runner._jobs:  # the process has exited and been reaped: its CPU time is counted
        await asyncio.sleep(0.01)
    return success, first_progress or float("nan"), children_cpu_s(runner) - cpu_before


async def bench(repeat: int, root: Path) -> None:
    from advisor.demo import write_demo_profile
    from advisor.server.paths import PathResolver
    from advisor.server.runner import TaskRunner
    from advisor.server.store import TaskStore
    from advisor.server.warm import WarmWorker

    log = logging.getLogger("bench_panel")
    resolver = PathResolver(root)
    runners = {}
    for mode in ("cold", "warm"):
        warm = WarmWorker(max_tasks=1000, max_rss_mb=4096, log=log) if mode == "warm" else None
        state = root / f"state_{mode}"
        runners[mode] = TaskRunner(
            TaskStore(state / "tasks.sqlite"), resolver, logs_dir=state / "logs", warm_worker=warm
        )
    copies = iter(range(10**6))

    def fresh_profile() -> str:
        name = f"demo_{next(copies)}"
        write_demo_profile(root / name)
        return name

    starting = time.perf_counter()
    assert await runners["warm"].warm_worker.ready(), "the warm worker did not start"
    worker_start_s = time.perf_counter() - starting
    times: dict[str, list[tuple[float, float, float]]] = {"cold": [], "warm": []}
    for _ in range(repeat):
        for mode in ("cold", "warm"):
            times[mode].append(await run_task(runners[mode], resolver, fresh_profile()))
    for runner in runners.values():
        await runner.shutdown()

    load = os.getloadavg()
    print(f"demo profile, {repeat} interleaved tasks per mode, load average {load[0]:.2f} {load[1]:.2f}")
    print(f"warm worker start (imports, once per worker, in the background): {worker_start_s:.3f} s")
    print(f"{'mode':<6} {'best s':>8} {'median s':>9} {'first progress s':>17} {'CPU s':>7}  (medians)")
    for mode, rows in times.items():
        success, progress, cpu = ([row[column] for row in rows] for column in range(3))
        best, median = min(success), statistics.median(success)
        print(
            f"{mode:<6} {best:8.3f} {median:9.3f} {statistics.median(progress):17.3f} "
            f"{statistics.median(cpu):7.3f}"
        )
    cold = [row[0] for row in times["cold"]]
    warm = [row[0] for row in times["warm"]]
    print(
        f"cold / warm: {min(cold) / min(warm):.2f}x best, "
        f"{statistics.median(cold) / statistics.median(warm):.2f}x median"
    )
    verdict = "met" if statistics.median(warm) < GOAL_S else "not met"
    print(f"goal (Submit -> Success < {GOAL_S:g} s, warm, median): {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7, help="tasks per mode (default 7)")
    args = parser.parse_args()
    # This checkout's advisor, in the cold subprocesses too (the warm worker starts from it anyway).
    sys.path.insert(0, str(ROOT))
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    with tempfile.TemporaryDirectory(prefix="bench-panel-") as folder:
        os.environ["PERFORMANCE_ADVISOR_CACHE"] = str(Path(folder) / "table_cache")
        asyncio.run(bench(args.repeat, Path(folder)))


if __name__ == "__main__":
    main()
