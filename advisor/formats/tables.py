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


@dataclass(frozen=True)
class Loader:
    fn: TableLoader
    # File name patterns the loader reads (matched against the rank's file names); None: any file.
    sources: tuple[str, ...] | None


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
        if sources is None or any(fnmatch.fnmatch(rel.rsplit("/", 1)[-1], p) for p in sources)
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
