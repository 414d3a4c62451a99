"""Registry of table loaders: the engine asks for tables by name, once per rank.

Each reader module registers its loaders with `@register_table(name, export, sources=...)`; the same
table name is filled from a text export and from a db export alike (schemas in `schema.py`).
Loaded tables go through the on-disk cache (`cache.py`), keyed by the source files they read.
"""

from __future__ import annotations

import fnmatch
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..errors import InputError
from . import cache
from .discover import RankInfo

TableLoader = Callable[[RankInfo], pd.DataFrame]
EXPORTS = ("text", "db", "cluster")  # cluster: an existing cluster_analysis_output/
# Modules that register loaders; imported on first use (also in worker processes, which start fresh).
READER_MODULES = (
    "advisor.profiles.step_trace",
    "advisor.profiles.trace_view",
    "advisor.profiles.kernels",
    "advisor.profiles.statistics",
    "advisor.profiles.memory",
    "advisor.profiles.communication",
    "advisor.profiles.db",
    "advisor.profiles.db_analysis",
    "advisor.profiles.cluster_output",
    "advisor.profiles.device_info",
    "advisor.profiles.environment",
    "advisor.profiles.graph_dump",
)


ANY_FOLDER = "**/"


@dataclass(frozen=True)
class Loader:
    fn: TableLoader
    # Patterns of the files the loader reads (`source_matches`); None: any file.
    sources: tuple[str, ...] | None


def is_located(pattern: str) -> bool:
    """Whether a source pattern says where its file lies (else it names a file of the export)."""
    return "/" in pattern


def source_matches(rel: str, pattern: str) -> bool:
    """Whether the file at `rel` ("/"-separated) matches a source pattern: a file name pattern
    (`kernel_details.csv`, `*.db`) matches the name; `**/name` the name in any folder; a path
    pattern (`PROF_*/device_*/info.json.[0-9]`) the last parts of the path, part by part."""
    parts = rel.split("/")
    if pattern.startswith(ANY_FOLDER) or not is_located(pattern):
        return fnmatch.fnmatchcase(parts[-1], pattern.removeprefix(ANY_FOLDER))
    wanted = pattern.split("/")
    tail = parts[-len(wanted) :]
    return len(tail) == len(wanted) and all(map(fnmatch.fnmatchcase, tail, wanted))


_LOADERS: dict[tuple[str, str], Loader] = {}


def register_table(
    name: str, export: str = "text", *, sources: tuple[str, ...] | None = None
) -> Callable[[TableLoader], TableLoader]:
    """Register `fn(rank) -> DataFrame` as the loader of table `name` for `export` data."""
    if export not in EXPORTS:
        raise ValueError(f"export must be one of {EXPORTS}; got {export!r}")

    def decorate(fn: TableLoader) -> TableLoader:
        known = _LOADERS.get((name, export))
        if known is not None and known.fn is not fn:
            raise ValueError(f"table {name!r} ({export}) is registered twice")
        _LOADERS[(name, export)] = Loader(fn, sources)
        return fn

    return decorate


def _load_readers() -> None:
    for module in READER_MODULES:
        importlib.import_module(module)


def table_names() -> list[str]:
    _load_readers()
    return sorted({name for name, _ in _LOADERS})


def table_sources() -> dict[str, tuple[str, ...]]:
    """table name -> the file-name patterns its loaders read, over every export (for downloads)."""
    _load_readers()
    found: dict[str, set[str]] = {}
    for (name, _export), loader in _LOADERS.items():
        found.setdefault(name, set()).update(loader.sources or ())
    return {name: tuple(sorted(patterns)) for name, patterns in found.items()}


def source_files(rank: RankInfo, sources: tuple[str, ...] | None) -> list[Path]:
    """The rank's files that a loader with these source patterns may read."""
    return [
        rank.path / rel
        for rel in rank.files
        if sources is None or any(source_matches(rel, p) for p in sources)
    ]


def load_table(name: str, rank: RankInfo, *, use_cache: bool = True) -> pd.DataFrame:
    """Load table `name` for `rank`. InputError (naming the file) when the data cannot give it."""
    _load_readers()
    if name not in table_names():
        raise ValueError(f"unknown table {name!r}; known: {', '.join(table_names())}")
    loader = _LOADERS.get((name, rank.export))
    if loader is None:
        raise InputError(f"{rank.path}: reading {name} from a {rank.export} export is not supported yet")
    files = source_files(rank, loader.sources)
    key = (
        cache.cache_key(name, rank.rank, rank.export, loader.fn.__module__, files)
        if use_cache and files
        else None
    )
    if key is not None:
        cached = cache.load(key)
        if cached is not None:
            return cached
    frame = loader.fn(rank)
    if key is not None:
        cache.store(key, frame, inputs=[rank.path])
    return frame
