"""Discover + load every table of a generated cluster: scaling with ranks and with processes.

    python benchmarks/bench_cluster.py --ranks 4,8,16 --size-mb 50 --processes 1,2 [--data DIR]

Profiles are generated once with `performance-advisor synth` into --data (kept for later runs).
Each measurement runs in a fresh process with an empty table cache ("cold"), then once more on the
cache it filled ("warm"), and prints seconds, MB/s of input and the speed-up from 1 to N processes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MEASURE = """
import json, sys, time
from advisor.engine import analyse_ranks, data_mb
from advisor.options import AnalysisOptions
from advisor.formats import discover, table_names
t = time.perf_counter()
profile = discover(sys.argv[1])
# Every table of every rank read in the workers; only row counts come back (no checks run).
outcomes = analyse_ranks(profile, (), (), AnalysisOptions(advisor_analyze_processes=int(sys.argv[2])),
                         load=table_names(), ranks_mb=data_mb(profile.ranks))
print(json.dumps({"seconds": time.perf_counter() - t, "rows": sum(o.rows_read for o in outcomes),
                  "errors": sum(len(o.errors) for o in outcomes)}))
"""


def generate(data: Path, ranks: int, size_mb: float) -> Path:
    target = data / f"synth_{ranks}r_{size_mb:g}mb"
    if not target.exists():
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "advisor", "synth", str(target), "--ranks", str(ranks),
             "--size-mb", str(size_mb)],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        print(f"generated {target.name} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return target


def measure(profile: Path, processes: int, cache: Path) -> dict:
    env = {**os.environ, "PERFORMANCE_ADVISOR_CACHE": str(cache)}
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, str(profile), str(processes)],
        check=True, capture_output=True, text=True, env=env,
    )  # fmt: skip
    return json.loads(out.stdout)


def input_mb(profile: Path) -> float:
    """Input size, following links (a cluster may be a folder of links to rank folders)."""
    return (
        sum(
            (Path(folder) / name).stat().st_size
            for folder, _, names in os.walk(profile, followlinks=True)
            for name in names
        )
        / 1e6
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ranks", default="2,4,8")
    parser.add_argument("--size-mb", type=float, default=20.0, help="trace_view.json size per rank")
    parser.add_argument("--processes", default="1,2")
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "pa-bench-cluster")
    args = parser.parse_args()
    args.data.mkdir(parents=True, exist_ok=True)
    process_counts = [int(p) for p in args.processes.split(",")]

    print(
        f"{'ranks':>5} {'input MB':>9} {'procs':>5} {'cold s':>8} {'MB/s':>7} {'speed-up':>8} {'warm s':>7}"
    )
    for ranks in (int(r) for r in args.ranks.split(",")):
        profile = generate(args.data, ranks, args.size_mb)
        size = input_mb(profile)
        baseline = None
        for processes in process_counts:
            with tempfile.TemporaryDirectory(prefix="pa-cache-") as cache:
                cold = measure(profile, processes, Path(cache))
                warm = measure(profile, processes, Path(cache))
            baseline = baseline or cold["seconds"]
            print(
                f"{ranks:5d} {size:9.0f} {processes:5d} {cold['seconds']:8.2f} {size / cold['seconds']:7.0f} "
                f"{baseline / cold['seconds']:7.2f}x {warm['seconds']:7.2f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
