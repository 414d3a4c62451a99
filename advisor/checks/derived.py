"""Tables derived from a rank's tables, computed once per rank instead of once per check.

Several checks of a rank start from the same derivation of the same table (the HCCL tasks joined to
their ops, the host's stall intervals, the kernels' step spans, the complete step_trace rows); on a
small profile that repeated pandas work is a large part of the run. `per_rank_table` memoises such
a derivation on the identity of the table objects it reads: the engine hands every check of a rank
the same frames, and the entry goes when those frames do (no state outlives the rank's analysis).
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import pandas as pd

Derivation = TypeVar("Derivation", bound=Callable[..., Any])


def _key_part(value: object) -> object:
    if isinstance(value, (pd.DataFrame, pd.Series)):
        return ("table", id(value))
    if isinstance(value, list):
        return tuple(value)
    return value


def _private(result: Any) -> Any:
    """What one caller gets: its own frame, Series or array objects (copy-on-write frames, copied
    arrays), so that a check that adds a column or edits an array changes nothing another sees."""
    if isinstance(result, (pd.DataFrame, pd.Series)):
        return result.copy(deep=False)
    if isinstance(result, np.ndarray):
        return result.copy()
    if isinstance(result, tuple):
        return tuple(map(_private, result))
    return result


def per_rank_table(derive: Derivation) -> Derivation:
    """Memoise `derive` on the identity of its table arguments (and the value of the others, which
    must be hashable; a list counts as the tuple of its items). The tables must not be changed in
    place between calls, which holds for the rank tables every check reads."""
    memo: dict[tuple[object, ...], tuple[list[weakref.ref[Any]], Any]] = {}

    @functools.wraps(derive)
    def cached(*args: Any) -> Any:
        key = tuple(map(_key_part, args))
        tables = [arg for arg in args if isinstance(arg, (pd.DataFrame, pd.Series))]
        entry = memo.get(key)
        # An id is only unique among live objects: the weak references say it is still the same one.
        if entry is not None and all(ref() is table for ref, table in zip(entry[0], tables, strict=True)):
            return _private(entry[1])
        result = derive(*args)
        refs = [weakref.ref(table) for table in tables]
        memo[key] = (refs, result)
        for table in tables:
            weakref.finalize(table, memo.pop, key, None)
        return _private(result)

    return cached  # type: ignore[return-value]
