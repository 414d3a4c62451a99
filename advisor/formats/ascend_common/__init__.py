"""What the Ascend formats share: the rank-folder layout, rank discovery, metadata, CSV/JSON/SQLite
reading. Not a format itself: ascend_text and ascend_db discover through it."""

from __future__ import annotations

# Readers of what the device and the framework write beside any Ascend export (PROF_*/device_*/
# info.json.N, GE graph dumps): they register their tables for every Ascend format, each of which
# lists these modules among its reader modules.
SHARED_READERS = (f"{__name__}.device_info", f"{__name__}.graph_dump")
