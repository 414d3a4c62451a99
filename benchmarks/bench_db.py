"""Speed and peak memory of the db export reader: every table of one rank's ascend_pytorch_profiler_{N}.db
and analysis.db, loaded as the engine loads them (`engine.load_rank_tables`, the tables in sorted order).

    python benchmarks/bench_db.py [PROFILE ...] [--big-mb 200 [--big-mb 1000]] [--repeat 3]
                                  [--anchor /work/main] [--check] [--floor] [--out DIR]

Without PROFILE: the corpus db profile (skipped when ../shared/corpus is absent) and one generated LLM
rank (`performance-advisor synth --export db`) per `--big-mb`, of about that many MB of db (kept in
`--out` and reused, else written to a temporary folder). Each measurement runs in a fresh child
process that puts the measured checkout first on sys.path, with the table cache switched off
(PERFORMANCE_ADVISOR_CACHE=off), so that every run parses the db. With `--anchor`, that checkout's
reader is timed in the same run, the runs interleaved; the best of `--repeat` is kept, with the largest
peak RSS. Per table: the ms its load took, in the engine's order (the first table to read a shared
query, e.g. TASK, pays for it); then the total seconds, MB/s of db files and peak RSS.
`--check` also asserts that both checkouts give the same tables (pd.testing.assert_frame_equal, attrs
included) on every rank measured. `--floor` runs the SQL this checkout's reader issued for the first
rank again in plain sqlite3, fetching the rows as Python tuples and dropping them: what reading the db
costs before any typing or table building, against the load of that rank in the same process.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS_DB = ROOT.parent / "shared" / "corpus" / "ascend-db-level1-2rank"
DB_MB_PER_TRACE_MB = 0.37  # a synth LLM rank's db is about this share of its trace_view.json's size

_CHILD = textwrap.dedent(
    """
    import json, os, pickle, resource, sys, time
    from pathlib import Path
    checkout, profile, dump = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    sys.path.insert(0, checkout)
    import advisor
    assert Path(advisor.__file__).is_relative_to(checkout), advisor.__file__
    from advisor.engine import load_rank_tables
    from advisor.formats import discover, format_named
    ranks = discover(profile).ranks
    names = sorted(format_named(ranks[0].format).tables())
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = {"ranks": [], "base_kb": base, "load": os.getloadavg()[0]}
    for rank in ranks:
        ms, errors, tables = {}, {}, {}
        start = time.perf_counter()
        for name in names:
            begun = time.perf_counter()
            found, failed = load_rank_tables(rank, [name])
            ms[name] = (time.perf_counter() - begun) * 1000
            tables.update(found)
            errors.update(failed)
        seconds = time.perf_counter() - start
        db_bytes = sum(p.stat().st_size for p in rank.path.rglob("*.db"))
        out["ranks"].append({"rank": rank.rank, "seconds": seconds, "ms": ms, "errors": errors,
                             "db_bytes": db_bytes})
        if dump != "-":
            with open(f"{dump}.{rank.rank}", "wb") as fh:
                pickle.dump({n: (t, dict(t.attrs)) for n, t in tables.items()}, fh)
        del tables
    out["peak_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps(out))
    """
)


# The floor: the SQL this checkout's reader issued for a rank, run again with plain sqlite3 (rows
# fetched as Python tuples and dropped), against the load of the same rank in the same process.
_FLOOR_CHILD = textwrap.dedent(
    """
    import json, sqlite3, sys, time
    from pathlib import Path
    checkout, profile = sys.argv[1], Path(sys.argv[2])
    sys.path.insert(0, checkout)
    from advisor.engine import load_rank_tables
    from advisor.formats import discover, format_named
    from advisor.formats.ascend_common.db_sqlite import SqliteFile
    issued = []
    read = SqliteFile.read
    def recording(self, sql, params=()):
        issued.append((str(self.path), sql, tuple(params)))
        return read(self, sql, params)
    SqliteFile.read = recording
    rank = discover(profile).ranks[0]
    start = time.perf_counter()
    load_rank_tables(rank, sorted(format_named(rank.format).tables()))
    load_s = time.perf_counter() - start
    start, rows = time.perf_counter(), 0
    for path, sql, params in issued:
        conn = sqlite3.connect(f"{Path(path).absolute().as_uri()}?mode=ro&immutable=1", uri=True)
        cursor = conn.execute(sql, params)
        while chunk := cursor.fetchmany(65536):
            rows += len(chunk)
        conn.close()
    print(json.dumps({"load_s": load_s, "sqlite_s": time.perf_counter() - start, "queries": len(issued),
                      "rows": rows}))
    """
)


def floor(profile: Path) -> None:
    """Print what plain sqlite3 takes to run the queries of this checkout's reader on the first rank."""
    env = {**os.environ, "PERFORMANCE_ADVISOR_CACHE": "off"}
    command = [sys.executable, "-c", _FLOOR_CHILD, str(ROOT), str(profile)]
    out = json.loads(subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout)
    print(
        f"floor, first rank: {out['queries']} queries, {out['rows']} rows in {out['sqlite_s']:.3f} s of "
        f"plain sqlite3 fetching = {out['sqlite_s'] / out['load_s']:.0%} of this reader's "
        f"{out['load_s']:.3f} s"
    )


def measure(checkout: Path, profile: Path, dump: str = "-") -> dict:
    """One child run of `checkout`'s reader on every rank of `profile` (tables pickled to `dump`.N)."""
    env = {**os.environ, "PERFORMANCE_ADVISOR_CACHE": "off"}
    command = [sys.executable, "-c", _CHILD, str(checkout), str(profile), dump]
    out = subprocess.run(command, cwd=checkout, env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.splitlines()[-1])


def interleaved(checkouts: dict[str, Path], profile: Path, repeat: int) -> dict[str, dict]:
    """Per label, the best run (least total seconds over the ranks) of `repeat` rounds, each round
    running every checkout once; peak RSS the largest, loads every round's."""
    runs: dict[str, list[dict]] = {label: [] for label in checkouts}
    for _ in range(repeat):
        for label, checkout in checkouts.items():
            runs[label].append(measure(checkout, profile))
    best = {}
    for label, found in runs.items():
        top = min(found, key=lambda r: sum(rank["seconds"] for rank in r["ranks"]))
        best[label] = {
            **top,
            "peak_kb": max(r["peak_kb"] for r in found),
            "loads": [round(r["load"], 2) for r in found],
        }
    return best


def check_same_tables(checkouts: dict[str, Path], profile: Path, scratch: Path) -> None:
    """assert_frame_equal (and equal attrs) on every table of every rank, between the checkouts."""
    import pandas as pd

    labels = list(checkouts)
    results = {}
    for label, checkout in checkouts.items():
        dump = scratch / f"tables-{label}"
        results[label] = (dump, measure(checkout, profile, str(dump)))
    first_dump, first = results[labels[0]]
    for label in labels[1:]:
        dump, other = results[label]
        for rank_first, rank_other in zip(first["ranks"], other["ranks"], strict=True):
            rank = rank_first["rank"]
            assert rank_first["errors"] == rank_other["errors"], (
                rank,
                rank_first["errors"],
                rank_other["errors"],
            )
            with open(f"{first_dump}.{rank}", "rb") as fh:
                tables_first = pickle.load(fh)
            with open(f"{dump}.{rank}", "rb") as fh:
                tables_other = pickle.load(fh)
            assert tables_first.keys() == tables_other.keys(), (
                rank,
                tables_first.keys(),
                tables_other.keys(),
            )
            for name, (frame, attrs) in tables_first.items():
                other_frame, other_attrs = tables_other[name]
                pd.testing.assert_frame_equal(frame, other_frame, obj=f"rank {rank} {name}")
                assert attrs == other_attrs, (rank, name, attrs, other_attrs)
            Path(f"{dump}.{rank}").unlink()
        print(f"{profile}: every table of {len(first['ranks'])} rank(s) equal, {labels[0]} vs {label}")
    for rank in first["ranks"]:
        Path(f"{first_dump}.{rank['rank']}").unlink()


def synth_db_rank(folder: Path, db_mb: float) -> Path:
    """A generated one-rank LLM db profile of about `db_mb` MB of db (kept in `folder`, reused)."""
    if not (folder.exists() and any(folder.rglob("ascend_pytorch_profiler_*.db"))):
        sys.path.insert(0, str(ROOT))
        from advisor.synth import SynthSpec, write_synth_profile

        spec = SynthSpec(ranks=1, size_mb=db_mb / DB_MB_PER_TRACE_MB, workload="llm", export="db")
        write_synth_profile(folder, spec)
    return folder


def report(profile: Path, found: dict[str, dict]) -> None:
    labels = list(found)
    for position, rank in enumerate(found[labels[0]]["ranks"]):
        db_mb = rank["db_bytes"] / 1e6
        print(f"\n{profile} rank {rank['rank']}: {db_mb:.1f} MB of db")
        print(f"{'table':<16}" + "".join(f"{label + ' ms':>14}" for label in labels))
        for name in rank["ms"]:
            cells = "".join(f"{found[label]['ranks'][position]['ms'][name]:>14.1f}" for label in labels)
            failed = rank["errors"].get(name)
            print(f"{name:<16}{cells}" + (f"  (error: {failed[:60]})" if failed else ""))
        for label in labels:
            seconds = found[label]["ranks"][position]["seconds"]
            print(f"{label:<8} total {seconds:>7.3f} s  {db_mb / seconds:>7.1f} MB/s")
    print(f"{'':<8}" + "".join(f"{label:>14}" for label in labels))
    print("peak MB " + "".join(f"{found[label]['peak_kb'] / 1024:>14.0f}" for label in labels))
    print("base MB " + "".join(f"{found[label]['base_kb'] / 1024:>14.0f}" for label in labels))
    print(f"loads    {[found[label]['loads'] for label in labels]}")
    if len(labels) == 2:
        before, after = (sum(r["seconds"] for r in found[label]["ranks"]) for label in labels)
        print(f"{labels[0]} / {labels[1]}: {before / after:.2f}x")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("profiles", nargs="*", type=Path, help="db profiles (default: corpus + generated)")
    parser.add_argument(
        "--big-mb",
        type=float,
        action="append",
        help="a generated rank of about this many MB of db (repeatable)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per checkout; the best time is kept")
    parser.add_argument("--anchor", type=Path, help="another checkout, timed as 'before' in the same run")
    parser.add_argument("--check", action="store_true", help="assert the checkouts give equal tables")
    parser.add_argument("--out", type=Path, help="folder for generated ranks (kept and reused)")
    parser.add_argument(
        "--floor", action="store_true", help="also time the reader's queries alone in plain sqlite3"
    )
    args = parser.parse_args(argv)
    checkouts = {"before": args.anchor.resolve(), "after": ROOT} if args.anchor else {"this": ROOT}
    print(f"checkouts: {checkouts}; load average now: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.out or Path(scratch)
        profiles = list(args.profiles)
        if not profiles:
            if CORPUS_DB.exists():
                profiles.append(CORPUS_DB)
            profiles += [synth_db_rank(folder / f"synth-db-{mb:g}mb", mb) for mb in args.big_mb or [200.0]]
        for profile in profiles:
            report(profile, interleaved(checkouts, profile, args.repeat))
            if args.floor:
                floor(profile)
            if args.check and len(checkouts) > 1:
                check_same_tables(checkouts, profile, Path(scratch))


if __name__ == "__main__":
    main()
