"""Ranks on a loopback Dask cluster against the local process pool, and what 1000 ranks x 1 GB would take.

    python benchmarks/bench_dask.py                      # 64 generated ranks, 2 workers
    python benchmarks/bench_dask.py --ranks 256 --size-mb 0.5 --workers 2 --rounds 2

A cluster of `--ranks` ranks is generated with `performance-advisor synth` into --data (deleted at the
end unless --keep). Then the whole analysis (`run_analysis`: read, rank checks, cluster checks; no
report) runs in a fresh child process, each run with an empty table cache of its own (cold), local and
dask interleaved `--rounds` times (the machine may be shared: the ratio of each pair is the figure,
with the load average printed beside it):
  - local: the ranks in `--workers` local processes (the pool of `--processes`);
  - dask: the ranks as tasks of a `dask scheduler` with `--workers` `dask worker` processes
    (one thread each) on 127.0.0.1, started for the run and stopped after it.
Then a second, bigger cluster (--fit-ranks x --fit-size-mb) runs on dask only. It prints the time per
rank and MB/s of each run, the findings' agreement, the workers' peak RSS (getrusage of each worker
process), and the projection for 1000 ranks x 1 GB on N workers: a rank's time on a worker as a fixed
part plus a part per MB, fitted to the two rank sizes. A table on paper: it assumes that the per-MB
part holds at 1 GB a rank (benchmarks/bench_trace.py measures the reader at that size) and a shared
file system that feeds every worker at that rate.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_cluster import generate, input_mb  # noqa: E402
from tests.dask_cluster import LoopbackCluster  # noqa: E402

MEASURE = """
import json, sys, time
from advisor.engine import run_analysis
from advisor.options import AnalysisOptions, Deployment
started = time.perf_counter()
report = run_analysis(sys.argv[1], options=AnalysisOptions(advisor_analyze_processes=int(sys.argv[2])),
                      deployment=Deployment(sys.argv[3] or None))
findings = sorted([f.check, f.ranks, f.priority, f.estimated_gain_us] for f in report.findings)
print(json.dumps({"seconds": time.perf_counter() - started, "findings": findings}))
"""
PROJECTED_RANKS = 1000
PROJECTED_RANK_MB = 1000.0
PROJECTED_WORKERS = (8, 32, 128, 256, 1000)


def analyse(profile: Path, processes: int, scheduler: str, cache: Path) -> dict:
    env = {**os.environ, "PERFORMANCE_ADVISOR_CACHE": str(cache), "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, str(profile), str(processes), scheduler],
        check=True, capture_output=True, text=True, env=env,
    )  # fmt: skip
    return json.loads(out.stdout)


def peak_rss_mb() -> float:
    """This process's peak resident memory (run on each worker)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def on_dask(profile: Path, workers: int, folder: Path) -> tuple[dict, list[float], list[float]]:
    """The analysis on a fresh loopback cluster; the workers' peak RSS (MB) before and after it."""
    import distributed

    cluster = LoopbackCluster(
        folder, workers=workers, env={"PERFORMANCE_ADVISOR_CACHE": str(folder / "cache")}
    )
    try:
        address = cluster.start()
        with distributed.Client(address, set_as_default=False) as client:
            idle = list(client.run(peak_rss_mb).values())
            result = analyse(profile, 1, address, folder / "client-cache")
            busy = list(client.run(peak_rss_mb).values())
    finally:
        cluster.stop()
    return result, idle, busy


def worker_seconds_per_rank(result: dict, ranks: int, workers: int) -> float:
    """Seconds one worker spends on one rank: the run's time with every worker busy, per rank."""
    return result["seconds"] * workers / ranks


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ranks", type=int, default=64, help="generated ranks (256 for the issue's figure)")
    parser.add_argument("--size-mb", type=float, default=0.5, help="trace_view.json size per rank")
    parser.add_argument("--workers", type=int, default=2, help="dask workers, and local pool processes")
    parser.add_argument(
        "--fit-ranks", type=int, default=8, help="ranks of the second, bigger cluster (dask only) for the fit"
    )
    parser.add_argument("--fit-size-mb", type=float, default=8.0, help="its trace_view.json size per rank")
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "pa-bench-dask")
    parser.add_argument("--rounds", type=int, default=1, help="local/dask pairs, interleaved")
    parser.add_argument("--keep", action="store_true", help="keep the generated ranks in --data")
    args = parser.parse_args()
    args.data.mkdir(parents=True, exist_ok=True)
    try:
        return measure(args)
    finally:
        if not args.keep:
            shutil.rmtree(args.data, ignore_errors=True)


def measure(args: argparse.Namespace) -> int:
    profile = generate(args.data, args.ranks, args.size_mb)
    bigger = generate(args.data, args.fit_ranks, args.fit_size_mb)
    size, bigger_size = input_mb(profile), input_mb(bigger)
    print(f"{args.ranks} ranks, {size:.0f} MB ({size / args.ranks:.2f} MB a rank), {args.workers} workers")

    print(f"\n{'run':<40} {'s':>7} {'ms/rank':>8} {'MB/s':>7} {'dask/local':>10} {'load avg':>9}")
    agree = True
    with tempfile.TemporaryDirectory(prefix="pa-bench-dask-") as scratch:
        for n in range(args.rounds):
            local = analyse(profile, args.workers, "", Path(scratch) / f"local-cache-{n}")
            dask, idle, busy = on_dask(profile, args.workers, Path(scratch) / f"small-{n}")
            agree = agree and dask["findings"] == local["findings"]
            load = os.getloadavg()[0]
            for name, result in ((f"local pool ({args.workers} processes)", local), ("dask loopback", dask)):
                seconds = result["seconds"]
                ratio = f"{dask['seconds'] / local['seconds']:10.2f}" if result is dask else " " * 10
                print(
                    f"{name:<40} {seconds:7.2f} {seconds / args.ranks * 1000:8.1f} {size / seconds:7.1f} "
                    f"{ratio} {load:9.2f}"
                )
            # Each round's, as it ends: a long run cut short still leaves its figures.
            peaks = ", ".join(f"{start:.0f} -> {end:.0f}" for start, end in zip(idle, busy, strict=True))
            print(f"  worker peak RSS, MB (started -> after the analysis): {peaks}", flush=True)
        fit, _, fit_busy = on_dask(bigger, args.workers, Path(scratch) / "bigger")
    big_name = f"dask loopback, {args.fit_ranks} x {bigger_size / args.fit_ranks:.1f} MB"
    print(f"{big_name:<40} {fit['seconds']:7.2f} {fit['seconds'] / args.fit_ranks * 1000:8.1f} "
          f"{bigger_size / fit['seconds']:7.1f}")  # fmt: skip
    print(f"same findings, dask and local: {'yes' if agree else 'NO'}")
    print(f"worker peak RSS, MB, after the {bigger_size / args.fit_ranks:.1f} MB ranks: "
          + ", ".join(f"{mb:.0f}" for mb in fit_busy))  # fmt: skip

    # A rank's time on a worker: a fixed part (checks, scheduling) and a part per MB (reading), from
    # the two rank sizes; MB/s alone from small ranks would charge the fixed part to every MB.
    small_rank, big_rank = size / args.ranks, bigger_size / args.fit_ranks
    small_s = worker_seconds_per_rank(dask, args.ranks, args.workers)
    big_s = worker_seconds_per_rank(fit, args.fit_ranks, args.workers)
    per_mb = max((big_s - small_s) / (big_rank - small_rank), 1e-6)
    fixed = max(small_s - per_mb * small_rank, 0.0)
    rank_s = fixed + per_mb * PROJECTED_RANK_MB
    print(
        f"\nprojection: {PROJECTED_RANKS} ranks x {PROJECTED_RANK_MB / 1000:g} GB; a rank on one worker: "
        f"{fixed:.2f} s + {per_mb * 1000:.1f} ms/MB ({1 / per_mb:.0f} MB/s) = {rank_s:.0f} s"
    )
    print(f"{'workers':>7} {'ranks/worker':>12} {'minutes':>8}")
    for workers in PROJECTED_WORKERS:
        ranks_each = -(-PROJECTED_RANKS // workers)  # whole ranks: the busiest worker sets the time
        print(f"{workers:7d} {ranks_each:12d} {ranks_each * rank_s / 60:8.1f}")
    return 0 if agree else 1


if __name__ == "__main__":
    started = time.perf_counter()
    code = main()
    print(f"\n(benchmark wall time {time.perf_counter() - started:.0f} s)")
    raise SystemExit(code)
