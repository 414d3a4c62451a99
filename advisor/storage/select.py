"""Which objects of a profile to download: the files the formats read for the requested tables.

A rank folder also holds raw collection data (PROF_*/ device and host files, logs) that is often
larger than the export itself and that no check reads; those objects are skipped.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..formats import table_sources
from ..formats.ascend_common.folder import DB_FILE, OUTPUT_DIR, PROFILER_INFO, STEP_TRACE_CSV
from ..formats.tables import is_located, source_matches

METADATA_FILES = ("profiler_metadata.json",)
# Discovery reads these beside the tables: steps, export kind, and communication groups of a cluster.
DISCOVERY_OUTPUTS = (STEP_TRACE_CSV, "communication.json", "communication_matrix.json", "analysis.db*")
CLUSTER_OUTPUT = "cluster_analysis_output"


def needed_patterns(tables: Iterable[str]) -> tuple[str, ...]:
    """The source patterns (`formats.tables.source_matches`) that the formats read for `tables`,
    and those of what discovery reads."""
    patterns = {p for sources in table_sources(tables).values() for p in sources}
    patterns.update(DISCOVERY_OUTPUTS)
    return tuple(sorted(patterns))


def is_profile_file(rel: str, patterns: tuple[str, ...]) -> bool:
    """Whether the object at `rel` (relative to the analysed prefix) is downloaded: a file name
    pattern names a file of the export folder, a located one (`**/…`, `PROF_*/…`) a file anywhere."""
    parts = rel.split("/")
    name = parts[-1]
    if PROFILER_INFO.match(name) or name in METADATA_FILES:
        return True
    parent = parts[-2] if len(parts) > 1 else ""
    if parent == OUTPUT_DIR:
        if DB_FILE.match(name) is not None or any(
            source_matches(rel, p) for p in patterns if not is_located(p)
        ):
            return True
    elif CLUSTER_OUTPUT in parts[:-1]:
        return name.endswith((".csv", ".json", ".db"))
    return any(source_matches(rel, p) for p in patterns if is_located(p))


def looks_like_profile(rels: Iterable[str]) -> bool:
    """Some rank export (ASCEND_PROFILER_OUTPUT/…) or cluster summary among the objects."""
    return any(OUTPUT_DIR in rel.split("/")[:-1] or CLUSTER_OUTPUT in rel.split("/")[:-1] for rel in rels)
