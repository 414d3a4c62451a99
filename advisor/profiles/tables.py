"""Registry of table loaders: the engine asks for tables by name, once per rank.

Each reader module registers its loaders with `@register_table(name, export)`; the same table name
is filled from a text export and from a db export alike (schemas in `schema.py`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

import pandas as pd

from ..errors import InputError
from .discover import RankInfo

TableLoader = Callable[[RankInfo], pd.DataFrame]
EXPORTS = ("text", "db")
# Modules that register loaders; imported on first use (also in worker processes, which start fresh).
READER_MODULES = ("advisor.profiles.step_trace",)
_LOADERS: dict[tuple[str, str], TableLoader] = {}


def register_table(name: str, export: str = "text") -> Callable[[TableLoader], TableLoader]:
    """Register `fn(rank) -> DataFrame` as the loader of table `name` for `export` data."""
    if export not in EXPORTS:
        raise ValueError(f"export must be one of {EXPORTS}; got {export!r}")

    def decorate(fn: TableLoader) -> TableLoader:
        if _LOADERS.get((name, export), fn) is not fn:
            raise ValueError(f"table {name!r} ({export}) is registered twice")
        _LOADERS[(name, export)] = fn
        return fn

    return decorate


def _load_readers() -> None:
    for module in READER_MODULES:
        importlib.import_module(module)


def table_names() -> list[str]:
    _load_readers()
    return sorted({name for name, _ in _LOADERS})


def load_table(name: str, rank: RankInfo) -> pd.DataFrame:
    """Load table `name` for `rank`. InputError (naming the file) when the data cannot give it."""
    _load_readers()
    if name not in table_names():
        raise ValueError(f"unknown table {name!r}; known: {', '.join(table_names())}")
    loader = _LOADERS.get((name, rank.export))
    if loader is None:
        raise InputError(f"{rank.path}: reading {name} from a {rank.export} export is not supported yet")
    return loader(rank)
