"""Which objects of a profile to download: what the formats read for the requested tables.

Each format says which objects it reads whatever the tables and which of its export's files a
table's file-name pattern names (`Format.wants_object`); a pattern that says where its file lies
(`**/…`, `PROF_*/…`) is matched here, for every format alike. Everything else (raw collection data,
logs) stays in the store.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..formats import FORMATS, table_sources
from ..formats.tables import is_located, source_matches


def needed_patterns(tables: Iterable[str]) -> tuple[str, ...]:
    """The source patterns (`formats.tables.source_matches`) that the formats read for `tables`."""
    return tuple(sorted({p for sources in table_sources(tables).values() for p in sources}))


def is_profile_file(rel: str, patterns: tuple[str, ...]) -> bool:
    """Whether the object at `rel` (relative to the analysed prefix) is downloaded."""
    if any(fmt.wants_object(rel, patterns) for fmt in FORMATS):
        return True
    return any(source_matches(rel, p) for p in patterns if is_located(p))


def looks_like_profile(rels: Iterable[str]) -> bool:
    """Some format's data among the objects."""
    listed = list(rels)
    return any(fmt.recognises_listing(listed) for fmt in FORMATS)
