"""Table loaders: each format's reader modules register theirs with
`@register_table(name, format, sources=...)`; the same table name is filled by every format that can
give it, to one schema (`schema.py`). Loaded tables go through the on-disk cache (`cache.py`), keyed by
the source files they read.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..model import RankInfo
from . import cache

TableLoader = Callable[[RankInfo], pd.DataFrame]


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
    name: str, format_name: str, *, sources: tuple[str, ...] | None = None
) -> Callable[[TableLoader], TableLoader]:
    """Register `fn(rank) -> DataFrame` as the loader of table `name` for the format `format_name`."""

    def decorate(fn: TableLoader) -> TableLoader:
        known = _LOADERS.get((name, format_name))
        if known is not None and known.fn is not fn:
            raise ValueError(f"table {name!r} ({format_name}) is registered twice")
        _LOADERS[(name, format_name)] = Loader(fn, sources)
        return fn

    return decorate


def registered_loaders(format_name: str) -> dict[str, Loader]:
    """table name -> loader, of the loaders registered so far for `format_name`."""
    return {name: loader for (name, owner), loader in _LOADERS.items() if owner == format_name}


def source_files(rank: RankInfo, sources: tuple[str, ...] | None) -> list[Path]:
    """The rank's files that a loader with these source patterns may read."""
    return [
        rank.path / rel
        for rel in rank.files
        if sources is None or any(source_matches(rel, p) for p in sources)
    ]


def load_cached(name: str, rank: RankInfo, loader: Loader, *, use_cache: bool = True) -> pd.DataFrame:
    """Table `name` of `rank` from `loader`, through the cache when its source files are known."""
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
