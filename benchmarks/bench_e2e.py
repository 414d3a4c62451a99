"""End to end: `performance-advisor analyze` against the reference `msprof-analyze advisor all`.

Both tools run as subprocesses on copies of the same profile (the reference writes and changes
permissions under its input), best wall time of --repeat runs, peak RSS of the child process.

    python benchmarks/bench_e2e.py [PROFILE ...] [--repeat 3] [--format json] [--reference PATH]

Without PROFILE: the real small profiles of ../shared/corpus (text and db export, 2 ranks each),
against the goal of issue 19 (>= 10x the reference, cold CLI). `--format` is passed to ours (the
reference always writes its HTML and XLSX); by default ours writes what its CLI writes by default.

The reference lives in its own venv, so that its pins do not touch ours:
    python -m venv .venv-ref && .venv-ref/bin/pip install msprof-analyze
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"
CORPUS_PROFILES = ("ascend-text-level1-2rank", "ascend-db-level1-2rank")
GOAL_SPEED_UP = 10.0  # issue 19, goal 1: small profiles against msprof-analyze


def run_child(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one child process; raises when it fails."""
    wrapper = (
        "import resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE).returncode\n"
        "wall = time.perf_counter() - t\n"
        "rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024\n"
        "print(rc, wall, rss)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", wrapper, *command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    rc, wall, rss = out.stdout.split()
    if rc != "0":
        raise RuntimeError(f"{' '.join(command)} exited with {rc}")
    return float(wall), float(rss)


def best_of(
    repeat: int, make_command, profile: Path, env: dict[str, str] | None = None
) -> tuple[float, float]:
    walls, rss = [], 0.0
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(prefix="pa-bench-") as tmp:
            work = Path(tmp)
            copy = work / "input"
            shutil.copytree(profile, copy)
            wall, peak = run_child(make_command(copy, work / "out"), work, env)
            walls.append(wall)
            rss = max(rss, peak)
    return min(walls), rss


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("profiles", nargs="*", type=Path, help="default: the corpus text and db profiles")
    parser.add_argument("--format", help="report formats of ours, comma-separated (default: the CLI's)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--processes", type=int, help="ours: --processes N (default: the CLI's default)")
    parser.add_argument(
        "--reference",
        default=os.environ.get("MSPROF_ANALYZE")
        or shutil.which("msprof-analyze")
        or str(ROOT / ".venv-ref/bin/msprof-analyze"),
    )
    args = parser.parse_args()
    profiles = args.profiles or [CORPUS / name for name in CORPUS_PROFILES]
    missing = [str(p) for p in profiles if not p.is_dir() and not p.is_file()]
    if missing:
        parser.error(f"no such profile: {', '.join(missing)}")
    formats = ["--format", args.format] if args.format else []
    # An installed package has its bytecode compiled (pip does it); a checkout run with
    # PYTHONDONTWRITEBYTECODE set would compile every changed module on every timed run.
    compileall.compile_dir(ROOT / "advisor", quiet=1)
    # This checkout's package, not whichever one the venv has installed (e.g. another worktree's).
    ours_env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }

    def ours(data: Path, out: Path) -> list[str]:
        processes = ["--processes", str(args.processes)] if args.processes else []
        return [sys.executable, "-m", "advisor", "analyze", str(data), "--output", str(out), "--quiet",
                *processes, *formats]  # fmt: skip

    def reference(data: Path, out: Path) -> list[str]:
        return [args.reference, "advisor", "all", "-d", str(data), "-o", str(out), "-l", "en"]

    have_reference = Path(args.reference).exists()
    if not have_reference:
        print(f"reference not found at {args.reference}; timing performance-advisor only", file=sys.stderr)

    print(f"{'profile':40} {'ours s':>8} {'ours MiB':>9} {'ref s':>8} {'ref MiB':>8} {'speed-up':>9}")
    speed_ups = []
    for profile in profiles:
        wall, rss = best_of(args.repeat, ours, profile, ours_env)
        line = f"{profile.name[:40]:40} {wall:8.2f} {rss:9.0f}"
        if have_reference:
            ref_wall, ref_rss = best_of(args.repeat, reference, profile)
            speed_ups.append(ref_wall / wall)
            line += f" {ref_wall:8.2f} {ref_rss:8.0f} {speed_ups[-1]:8.1f}x"
        print(line, flush=True)
    if speed_ups:
        lowest = min(speed_ups)
        verdict = "met" if lowest >= GOAL_SPEED_UP else "not met"
        print(f"lowest speed-up {lowest:.1f}x against the goal of {GOAL_SPEED_UP:.0f}x: {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
