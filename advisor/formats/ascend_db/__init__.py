"""Ascend PyTorch (and MindSpore) Profiler rank folders exported as SQLite: ascend_pytorch_profiler*.db
and analysis.db in ASCEND_PROFILER_OUTPUT/."""

from __future__ import annotations

from ..ascend_common import SHARED_READERS
from ..ascend_common.discover import rank_folder_format

READERS = ("db", "db_analysis", "environment")
FORMAT = rank_folder_format(
    "ascend_db", "db", (*(f"{__name__}.{module}" for module in READERS), *SHARED_READERS)
)
