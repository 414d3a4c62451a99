"""Where a small analysis spends its time once everything is imported: table loads, each check, the
cluster and comparison checks, and the report writers.

The warm worker's children start with the code imported (`advisor/server/zygote.py`), so what is left
of a panel task is this work; the cold CLI pays it after its imports. Each run analyses a fresh copy
of the profile (the table cache of a previous run never answers it, as for a user's new profile),
in this process, after one untimed run that takes the first-use costs (lazy imports, compiled
patterns). The table gives the median of `--repeat` runs per phase and per check (all ranks together;
checks that run in worker processes are only in `analyse_ranks`: `--processes 1` times each here).

    python benchmarks/bench_checks.py [PROFILE ...] [--repeat 5] [--format html,xlsx,json] [--top 25]
                                      [--processes 1]

Without PROFILE: the demo profile (`performance-advisor demo`) and the corpus text and db profiles.
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"
CORPUS_PROFILES = ("ascend-text-level1-2rank", "ascend-db-level1-2rank")


def timed(owner: Any, name: str, label: str, spent: collections.Counter[str]) -> None:
    """Wrap `owner.name` so that its wall time adds to `spent[label]` (label may name an argument)."""
    original: Callable[..., Any] = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            key = label.format(spec=args[0]) if "{spec" in label else label
            spent[key] += time.perf_counter() - started

    setattr(owner, name, wrapper)


def run_once(profile: Path, formats: str, processes: int | None, work: Path) -> None:
    from advisor import cli

    copy = work / "input"
    shutil.copytree(profile, copy)
    argv = ["analyze", str(copy), "--output", str(work / "out"), "--quiet", "--format", formats]
    if processes:
        argv += ["--processes", str(processes)]
    code = cli.main(argv)
    if code:
        raise RuntimeError(f"analyze {profile} exited with {code}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("profiles", nargs="*", type=Path, help="default: the demo and the corpus profiles")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--format", default="html,xlsx,json", help="report formats (default: the panel's)")
    parser.add_argument("--top", type=int, default=25, help="checks listed, slowest first")
    parser.add_argument(
        "--processes", type=int, help="the CLI's --processes (1: every check timed here; default: the CLI's)"
    )
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from advisor import engine
    from advisor.demo import write_demo_profile
    from advisor.formats import cache

    with tempfile.TemporaryDirectory(prefix="pa-bench-checks-") as tmp:
        os.environ["PERFORMANCE_ADVISOR_CACHE"] = str(Path(tmp) / "cache")
        profiles = list(args.profiles)
        if not profiles:
            write_demo_profile(Path(tmp) / "demo")
            corpus = [CORPUS / name for name in CORPUS_PROFILES if (CORPUS / name).is_dir()]
            profiles = [Path(tmp) / "demo", *corpus]
        spent: collections.Counter[str] = collections.Counter()
        phases = ("analyse_ranks", "load_rank_tables", "run_checks", "run_comparison_checks", "write_reports")
        for name in phases:
            timed(engine, name, name, spent)
        timed(engine, "_run_one", "check {spec.id}", spent)
        timed(cache, "load", "cache.load", spent)
        timed(cache, "store", "cache.store", spent)
        for profile in profiles:
            runs: list[dict[str, float]] = []
            for attempt in range(args.repeat + 1):
                spent.clear()
                with tempfile.TemporaryDirectory(dir=tmp) as work:
                    started = time.perf_counter()
                    run_once(profile, args.format, args.processes, Path(work))
                    spent["total"] = time.perf_counter() - started
                if attempt:  # the first run takes the first-use costs
                    runs.append(dict(spent))
            medians = {key: statistics.median(run.get(key, 0.0) for run in runs) for key in runs[0]}
            checks = sorted((key for key in medians if key.startswith("check ")), key=lambda k: -medians[k])
            print(f"\n{profile.name}: median of {args.repeat} runs, load average {os.getloadavg()[0]:.2f}")
            for key in (key for key in medians if not key.startswith("check ")):
                print(f"  {medians[key] * 1e3:8.1f} ms  {key}")
            all_checks = sum(medians[key] for key in checks)
            print(f"  {all_checks * 1e3:8.1f} ms  all checks (rank, cluster, comparison)")
            for key in checks[: args.top]:
                print(f"  {medians[key] * 1e3:8.1f} ms    {key.removeprefix('check ')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
