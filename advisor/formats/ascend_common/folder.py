"""The folder layout of the Ascend profilers: rank folders, their output folder and the names of
the files in them, shared by the Ascend formats' discovery and readers."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ...model import RankInfo

RANK_SUFFIX = "_ascend_pt"
MINDSPORE_SUFFIX = "_ascend_ms"
OUTPUT_DIR = "ASCEND_PROFILER_OUTPUT"
STEP_TRACE_CSV = "step_trace_time.csv"
TRACE_VIEW_JSON = "trace_view.json"

DB_FILE = re.compile(r"^ascend_(?:pytorch|mindspore)_profiler(_\d+)?\.db$")
PROFILER_INFO = re.compile(r"^profiler_info(?:_(-?\d+))?\.json$")
# profiler_info, profiler_metadata and PROF_*/device_*/info.json.* hold a few KB; they are read whole.
MAX_METADATA_BYTES = 16 << 20


def output_file(rank: RankInfo, name: str) -> Path | None:
    """The path of ASCEND_PROFILER_OUTPUT/`name` when the rank has it."""
    rel = f"{OUTPUT_DIR}/{name}"
    return rank.path / OUTPUT_DIR / name if rel in rank.files else None


def read_small_json(path: Path) -> Any:
    """An optional metadata file's JSON (invalid UTF-8 replaced); None when it is unreadable, invalid
    or over MAX_METADATA_BYTES: a broken file just tells us nothing."""
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_METADATA_BYTES + 1)
        if len(data) > MAX_METADATA_BYTES:
            return None
        return json.loads(data.decode("utf-8-sig", errors="replace"))
    except (OSError, ValueError, RecursionError):
        return None
