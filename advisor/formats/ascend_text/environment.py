"""Table `environment` of a text export: ENV_VARIABLES of profiler_metadata.json."""

from __future__ import annotations

import pandas as pd

from ...model import RankInfo
from ..ascend_common.environment import environment_table
from ..ascend_common.metadata import PROFILER_METADATA_JSON
from ..tables import register_table


@register_table("environment", "ascend_text", sources=(PROFILER_METADATA_JSON,))
def load_environment(rank: RankInfo) -> pd.DataFrame:
    return environment_table(rank, PROFILER_METADATA_JSON)
