"""Table `environment`: the environment variables a rank recorded (ENV_VARIABLES of
profiler_metadata.json; for a db export without them, the ENV_VARIABLES of its db's META_DATA).

One row per variable, in recorded order; an empty value is kept (it means the CANN default). A rank
that recorded none gives no rows; a metadata file that is not valid JSON is an InputError naming it.
"""

from __future__ import annotations

import pandas as pd

from .db import PROFILER_SOURCES
from .discover import RankInfo
from .metadata import PROFILER_METADATA_JSON, load_metadata
from .schema import conform
from .tables import EXPORTS, register_table

ENVIRONMENT_SOURCES = (PROFILER_METADATA_JSON, *PROFILER_SOURCES)


def load_environment(rank: RankInfo) -> pd.DataFrame:
    env = load_metadata(rank).env
    out = conform(pd.DataFrame({"name": list(env), "value": list(env.values())}), "environment")
    fallback = " or the profiler db's META_DATA" if rank.export == "db" else ""
    out.attrs["source"] = PROFILER_METADATA_JSON + fallback
    return out


for _export in EXPORTS:
    register_table("environment", _export, sources=ENVIRONMENT_SOURCES)(load_environment)
