"""Which objects of an Ascend rank folder a download keeps: what discovery reads, and the export's
files that the requested tables read. A rank folder also holds raw collection data (PROF_*/ device
and host files, logs), often larger than the export, that nothing reads."""

from __future__ import annotations

from collections.abc import Iterable

from ..tables import is_located, source_matches
from .folder import DB_FILE, OUTPUT_DIR, PROFILER_INFO, STEP_TRACE_CSV

METADATA_FILES = ("profiler_metadata.json",)
# Discovery reads these beside the tables: steps, export kind, and communication groups of a cluster.
DISCOVERY_OUTPUTS = (STEP_TRACE_CSV, "communication.json", "communication_matrix.json", "analysis.db*")


def wants_object(rel: str, patterns: tuple[str, ...]) -> bool:
    """Profiler info and metadata anywhere; in the export folder the db, what discovery reads and
    the files that a file-name pattern of the requested tables names."""
    parts = rel.split("/")
    name = parts[-1]
    if PROFILER_INFO.match(name) or name in METADATA_FILES:
        return True
    if len(parts) < 2 or parts[-2] != OUTPUT_DIR:
        return False
    names = (*DISCOVERY_OUTPUTS, *(p for p in patterns if not is_located(p)))
    return DB_FILE.match(name) is not None or any(source_matches(rel, p) for p in names)


def recognises_listing(rels: Iterable[str]) -> bool:
    """Some file of a rank's export folder among the objects."""
    return any(OUTPUT_DIR in rel.split("/")[:-1] for rel in rels)


def rank_folders(rels: Iterable[str]) -> list[str]:
    """The rank folders (relative to the listed prefix, "" for the prefix itself) of the listed
    objects: those that hold files of an export folder."""
    found = set()
    for rel in rels:
        parts = rel.split("/")
        if OUTPUT_DIR in parts[:-1]:
            found.add("/".join(parts[: parts.index(OUTPUT_DIR)]))
    return sorted(found)
