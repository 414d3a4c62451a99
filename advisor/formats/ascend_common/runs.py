"""What an Ascend rank folder records of its run, for the one-run rule (`formats/runs.py`).

Its start is the wall clock in profiler_info (RankMetadata.start_ns), else the 17-digit UTC timestamp
of a canonical folder name (`{worker}_{pid}_{timestamp}_ascend_pt`), whose `{worker}_{pid}` is the
same in every profiling window of one process. Its configuration is profiler_info's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path

from .metadata import RankMetadata

# Fields of RankMetadata that are the profiler's configuration: one job records the same everywhere.
CONFIG_FIELDS = (
    "profiler_level",
    "export_type",
    "activities",
    "aic_metrics",
    "with_stack",
    "record_shapes",
    "profile_memory",
)
_CANONICAL = re.compile(r"^(?P<process>.+)_(?P<time>\d{17})_ascend_(?:pt|ms)$")


@dataclass(frozen=True)
class RankFolder:
    """A rank folder as discovery found it, with what tells its run apart."""

    path: Path
    rank: int | None
    files: tuple[str, ...]
    meta: RankMetadata

    @cached_property
    def process(self) -> str | None:
        """`{worker}_{pid}` of a canonical folder name: the same in every window of one process."""
        match = _CANONICAL.match(self.path.name)
        return match.group("process") if match else None

    @cached_property
    def start_ns(self) -> int | None:
        if self.meta.start_ns is not None:
            return self.meta.start_ns
        match = _CANONICAL.match(self.path.name)
        if match is None:
            return None
        digits = match.group("time")
        try:
            moment = datetime.strptime(digits[:14], "%Y%m%d%H%M%S").replace(tzinfo=timezone.utc)
        except ValueError:
            return None
        return int(moment.timestamp()) * 1_000_000_000 + int(digits[14:]) * 1_000_000

    @cached_property
    def config(self) -> dict[str, object]:
        """The configuration fields the rank recorded."""
        values = {name: getattr(self.meta, name) for name in CONFIG_FIELDS}
        return {name: value for name, value in values.items() if value not in (None, ())}
