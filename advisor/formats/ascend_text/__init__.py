"""Ascend PyTorch (and MindSpore) Profiler rank folders exported as text: CSV and JSON files in
ASCEND_PROFILER_OUTPUT/ (trace_view.json, kernel_details.csv, step_trace_time.csv, …)."""

from __future__ import annotations

from ..ascend_common import SHARED_READERS
from ..ascend_common.discover import rank_folder_format

READERS = ("step_trace", "trace_view", "kernels", "statistics", "memory", "communication", "environment")
FORMAT = rank_folder_format(
    "ascend_text", "text", (*(f"{__name__}.{module}" for module in READERS), *SHARED_READERS)
)
