"""Registry of table loaders: the engine asks for tables by name, once per rank."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from ..errors import InputError
from .discover import DB_FILE, OUTPUT_DIR, RankInfo
from .step_trace import load_step_trace

TableLoader = Callable[[RankInfo], pd.DataFrame]
_LOADERS: dict[str, TableLoader] = {}


def register_table(name: str) -> Callable[[TableLoader], TableLoader]:
    """Register `fn(rank) -> DataFrame` as the loader of table `name`."""

    def decorate(fn: TableLoader) -> TableLoader:
        if name in _LOADERS:
            raise ValueError(f"table {name!r} is registered twice")
        _LOADERS[name] = fn
        return fn

    return decorate


def table_names() -> list[str]:
    return sorted(_LOADERS)


def load_table(name: str, rank: RankInfo) -> pd.DataFrame:
    """Load table `name` for `rank`. InputError (naming the file) when the data cannot give it."""
    try:
        loader = _LOADERS[name]
    except KeyError:
        raise ValueError(f"unknown table {name!r}; known: {', '.join(table_names())}") from None
    if rank.export == "db":
        db = next((f for f in rank.files if DB_FILE.match(f.rsplit("/", 1)[-1])), OUTPUT_DIR)
        raise InputError(f"{rank.path / db}: db export is not supported yet (export the profile as text)")
    return loader(rank)


register_table("step_trace")(load_step_trace)
