"""Discovery and readers: profiler folders -> normalised tables (µs)."""

from __future__ import annotations

from ..model import ProfileSet, RankInfo
from .discover import discover
from .tables import load_table, register_table, table_names

__all__ = ["ProfileSet", "RankInfo", "discover", "load_table", "register_table", "table_names"]
