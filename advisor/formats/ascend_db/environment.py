"""Table `environment` of a db export: ENV_VARIABLES of profiler_metadata.json, else (torch_npu need
not write that file) those the profiler db recorded in META_DATA."""

from __future__ import annotations

import pandas as pd

from ...model import RankInfo
from ..ascend_common.environment import environment_table
from ..ascend_common.metadata import PROFILER_METADATA_JSON
from ..tables import register_table
from .db import PROFILER_SOURCES


@register_table("environment", "ascend_db", sources=(PROFILER_METADATA_JSON, *PROFILER_SOURCES))
def load_environment(rank: RankInfo) -> pd.DataFrame:
    return environment_table(rank, f"{PROFILER_METADATA_JSON} or the profiler db's META_DATA")
