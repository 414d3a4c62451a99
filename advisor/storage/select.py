"""Which objects of a profile to download: the files the formats read for the requested tables.

A rank folder also holds raw collection data (PROF_*/ device and host files, logs) that is often
larger than the export itself and that no check reads; those objects are skipped.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable
from pathlib import Path

from ..formats import table_sources
from ..formats.ascend_common.folder import DB_FILE, OUTPUT_DIR, PROFILER_INFO, STEP_TRACE_CSV

METADATA_FILES = ("profiler_metadata.json",)
# Discovery reads these beside the tables: steps, export kind, and communication groups of a cluster.
DISCOVERY_OUTPUTS = (STEP_TRACE_CSV, "communication.json", "communication_matrix.json", "analysis.db*")
CLUSTER_OUTPUT = "cluster_analysis_output"
DEVICE_INFO = ("PROF_*", "device_*", "info.json.*")  # the computation checks read the device's info
_GRAPH_KNOWLEDGE = (
    Path(__file__).resolve().parent.parent / "checks" / "knowledge" / "graph_fusion_patterns.json"
)


def _graph_dump_patterns() -> tuple[str, ...]:
    try:
        return tuple(json.loads(_GRAPH_KNOWLEDGE.read_text(encoding="utf-8"))["dump_patterns"])
    except (OSError, ValueError, KeyError):
        return ("*Build.txt",)


def needed_patterns(tables: Iterable[str]) -> tuple[str, ...]:
    """File-name patterns under ASCEND_PROFILER_OUTPUT: what the formats read for `tables`, and what
    discovery reads."""
    patterns = {p for sources in table_sources(tables).values() for p in sources}
    patterns.update(DISCOVERY_OUTPUTS)
    return tuple(sorted(patterns))


def is_profile_file(rel: str, patterns: tuple[str, ...], graph_dumps: bool) -> bool:
    """Whether the object at `rel` (relative to the analysed prefix) is downloaded."""
    parts = rel.split("/")
    name = parts[-1]
    if PROFILER_INFO.match(name) or name in METADATA_FILES:
        return True
    parent = parts[-2] if len(parts) > 1 else ""
    if parent == OUTPUT_DIR:
        return DB_FILE.match(name) is not None or any(fnmatch.fnmatchcase(name, p) for p in patterns)
    if CLUSTER_OUTPUT in parts[:-1]:
        return name.endswith((".csv", ".json", ".db"))
    if (
        len(parts) >= 3
        and fnmatch.fnmatchcase(parts[-3], DEVICE_INFO[0])
        and fnmatch.fnmatchcase(parent, DEVICE_INFO[1])
        and fnmatch.fnmatchcase(name, DEVICE_INFO[2])
        and not name.endswith("done")
    ):
        return True
    return graph_dumps and any(fnmatch.fnmatchcase(name, p) for p in _graph_dump_patterns())


def looks_like_profile(rels: Iterable[str]) -> bool:
    """Some rank export (ASCEND_PROFILER_OUTPUT/…) or cluster summary among the objects."""
    return any(OUTPUT_DIR in rel.split("/")[:-1] or CLUSTER_OUTPUT in rel.split("/")[:-1] for rel in rels)
