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
from ..model import RankInfo
from . import cache

TableLoader = Callable[[RankInfo], pd.DataFrame]
FORMATS = ("ascend_text", "ascend_db", "ascend_cluster")  # cluster: an existing cluster_analysis_output/
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
)


@dataclass(frozen=True)
class Loader:
    fn: TableLoader
    # File name patterns the loader reads (matched against the rank's file names); None: any file.
    sources: tuple[str, ...] | None


_LOADERS: dict[tuple[str, str], Loader] = {}


def register_table(
    name: str, export: str, *, sources: tuple[str, ...] | None = None
) -> Callable[[TableLoader], TableLoader]:
    """Register `fn(rank) -> DataFrame` as the loader of table `name` for `export` data."""
    if export not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}; got {export!r}")

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
        if sources is None or any(fnmatch.fnmatch(rel.rsplit("/", 1)[-1], p) for p in sources)
    ]


def load_table(name: str, rank: RankInfo, *, use_cache: bool = True) -> pd.DataFrame:
    """Load table `name` for `rank`. InputError (naming the file) when the data cannot give it."""
    _load_readers()
    if name not in table_names():
        raise ValueError(f"unknown table {name!r}; known: {', '.join(table_names())}")
    loader = _LOADERS.get((name, rank.format))
    if loader is None:
        raise InputError(f"{rank.path}: reading {name} from {rank.format} data is not supported yet")
    files = source_files(rank, loader.sources)
    key = (
        cache.cache_key(name, rank.rank, rank.format, loader.fn.__module__, files)
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
