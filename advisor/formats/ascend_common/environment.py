"""Table `environment`: the environment variables a rank recorded (ENV_VARIABLES of
profiler_metadata.json; for a db export without them, the ENV_VARIABLES of its db's META_DATA, as
`metadata.load_metadata` reads them). Registered by ascend_text and ascend_db, each with its sources.

One row per variable, in recorded order; an empty value is kept (it means the CANN default). A rank
that recorded none gives no rows; a metadata file that is not valid JSON is an InputError naming it.
"""

from __future__ import annotations

import pandas as pd

from ...model import RankInfo
from ..schema import conform
from .metadata import load_metadata


def environment_table(rank: RankInfo, source: str) -> pd.DataFrame:
    """The rank's recorded environment as the `environment` table, its attrs["source"] `source`."""
    env = load_metadata(rank).env
    out = conform(pd.DataFrame({"name": list(env), "value": list(env.values())}), "environment")
    out.attrs["source"] = source
    return out
