"""On-disk cache of parsed per-rank tables, so a second analysis (or a comparison) reads no raw file.

An entry is keyed by the table, the reader's code and the path, size and mtime of every source file
it read: a changed file or a changed reader misses. Entries live outside the input folders (which
are read-only) in `$PERFORMANCE_ADVISOR_CACHE` (default `~/.cache/performance-advisor/tables`; "off"
disables it), as Parquet, and the oldest are pruned past `$PERFORMANCE_ADVISOR_CACHE_MB` (2048).

Only tables read from at least `$PERFORMANCE_ADVISOR_CACHE_MIN_MB` (8) of source files are cached.
Measured per rank (2 shared cores, best of 3; parse: every table of those files, store/load: each as
Parquet), before this rule:
- trace_view.json (8 tables): 0.4 MiB parse 76 ms, store 16, load 24; 4 MiB 78 / 21 / 24; 20 MiB
  187 / 43 / 42 (~7 ms per MiB parsed against ~1 loaded).
- kernel_details.csv: 0.08 MiB parse 25 ms, store 6, load 6; 3.8 MiB 73 / 19 / 11.
- the corpus db (1.7 MiB, 18 tables): parse 210 ms, store 50, load 70.
- importing pyarrow.parquet, on a process's first load or store: ~40 ms; a miss tried to read the
  missing file (~2 ms per table, ~20 tables per rank).
A fresh profile (a user's new one, every panel task on it) always misses: for a small one the cache
was pure cost (~0.15 s of a 2-rank analysis). Under 8 MiB of sources, parsing again costs a second
analysis at most ~60 ms per source more than the Parquet load (the db ~140 ms, its reader being
slower per MiB); above it, parsing grows ~7x faster than loading, and a big profile is cached as
before (the cache's purpose: a second analysis or a comparison of it reads no raw file).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
from collections.abc import Iterable
from functools import cache
from pathlib import Path

import pandas as pd

DEFAULT_LIMIT_MB = 2048
DEFAULT_MIN_SOURCE_MB = 8
_DISABLED = {"", "0", "off", "false", "no"}


def cache_dir() -> Path | None:
    """The cache folder, or None when caching is switched off."""
    configured = os.environ.get("PERFORMANCE_ADVISOR_CACHE")
    if configured is not None:
        return None if configured.strip().lower() in _DISABLED else Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "performance-advisor" / "tables"


@cache
def code_fingerprint(module_name: str) -> str:
    """A hash of the reader's package sources: editing a reader, or a helper it uses, invalidates
    what was cached."""
    package = Path(sys.modules[module_name].__file__ or "").parent
    digest = hashlib.sha1()
    for source in sorted(package.glob("*.py")):
        digest.update(source.name.encode() + b"\0" + source.read_bytes())
    return digest.hexdigest()[:16]


def min_source_bytes() -> float:
    """Sources smaller than this, all together, are read again rather than cached."""
    try:
        return float(os.environ.get("PERFORMANCE_ADVISOR_CACHE_MIN_MB", DEFAULT_MIN_SOURCE_MB)) * 2**20
    except ValueError:
        return DEFAULT_MIN_SOURCE_MB * 2**20


def cache_key(table: str, rank: int, export: str, module_name: str, sources: Iterable[Path]) -> str | None:
    """The entry name for `rank`'s `table` read from `sources` (one file may hold several ranks), or
    None if the table is not cached: a source cannot be stat'ed, or they are too small to be worth it."""
    stats = []
    for path in sorted(sources):
        try:
            stats.append((path, path.stat()))
        except OSError:
            return None
    if sum(stat.st_size for _, stat in stats) < min_source_bytes():
        return None
    digest = hashlib.sha1(f"{table}\0{rank}\0{export}\0{code_fingerprint(module_name)}".encode())
    for path, stat in stats:
        digest.update(f"\0{path.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
    return f"{table}-{digest.hexdigest()}.parquet"


def load(key: str) -> pd.DataFrame | None:
    folder = cache_dir()
    if folder is None or not (folder / key).is_file():  # a miss reads no file (nor imports Parquet)
        return None
    try:
        frame = pd.read_parquet(folder / key)
    except Exception:  # partial or corrupt entry: read the source again
        return None
    with contextlib.suppress(OSError):
        os.utime(folder / key)  # recently used entries survive pruning
    return frame


def store(key: str, frame: pd.DataFrame, inputs: Iterable[Path]) -> None:
    """Write an entry atomically; a cache that cannot be written is skipped, never an error."""
    folder = cache_dir()
    if folder is None:
        return
    resolved = folder.resolve()
    if any(resolved == p.resolve() or p.resolve() in resolved.parents for p in inputs):
        return  # never write inside the profiling data
    partial = folder / f".{key}.{os.getpid()}.tmp"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(partial)
        size = partial.stat().st_size
        os.replace(partial, folder / key)
        _account(folder, size)
    except Exception:
        with contextlib.suppress(OSError):
            partial.unlink()


# Bytes this process may still write into a cache folder before it measures the folder again.
# Measuring stats every entry: doing it after each write made a cold analysis of many ranks
# quadratic (64 ranks x 21 tables: ~1.3k entries stat'ed 1.3k times).
_ALLOWANCE: dict[Path, float] = {}
# How full the folder is without a stat per entry, for a process's first write: the bytes kept at
# the last measurement, then one line per entry written since. Measuring on the first write of every
# process cost a cold CLI run 1.1 s on a cache of 130k entries. An entry written twice counts twice
# and a lost line (a measurement racing a write) counts none: the next measurement corrects both.
LEDGER = ".ledger"


def _account(folder: Path, written: int) -> None:
    limit = _limit()
    allowance = _ALLOWANCE.get(folder)
    if allowance is None:  # this process's first write: what the ledger says, plus this write
        recorded = _ledger_total(folder)
        allowance = -1.0 if recorded is None else min(limit - recorded, limit / 10) - written
    else:
        allowance -= written
    with contextlib.suppress(OSError), open(folder / LEDGER, "a", encoding="ascii") as ledger:
        ledger.write(f"{written}\n")
    if allowance < 0:  # no ledger, or the cache may be full: measure
        # A tenth of the limit at most, so several processes writing at once overshoot by little; a
        # full cache is pruned to 90 % of the limit, so that the next writes need no new measurement.
        kept = prune(folder, low_water=0.9)
        _write_ledger(folder, kept)
        allowance = min(limit - kept, limit / 10)
    _ALLOWANCE[folder] = allowance


def _ledger_total(folder: Path) -> int | None:
    try:
        return sum(int(line) for line in (folder / LEDGER).read_text(encoding="ascii").split())
    except (OSError, ValueError):  # none yet, or damaged: measure instead
        return None


def _write_ledger(folder: Path, kept: int) -> None:
    partial = folder / f"{LEDGER}.{os.getpid()}.tmp"
    with contextlib.suppress(OSError):
        partial.write_text(f"{kept}\n", encoding="ascii")
        os.replace(partial, folder / LEDGER)


def _limit() -> float:
    try:
        return float(os.environ.get("PERFORMANCE_ADVISOR_CACHE_MB", DEFAULT_LIMIT_MB)) * 2**20
    except ValueError:
        return DEFAULT_LIMIT_MB * 2**20


def prune(folder: Path, low_water: float = 1.0) -> int:
    """When the cache is over its size limit, delete the least recently used entries until it holds
    at most `low_water` times the limit; the bytes kept."""
    limit = _limit()
    entries = []
    for entry in folder.glob("*.parquet"):
        with contextlib.suppress(OSError):
            stat = entry.stat()
            entries.append((stat.st_mtime, stat.st_size, entry))
    total = sum(size for _, size, _ in entries)
    if total <= limit:
        return total
    for _, size, entry in sorted(entries):
        if total <= limit * low_water:
            break
        with contextlib.suppress(OSError):
            entry.unlink()
            total -= size
    return total
