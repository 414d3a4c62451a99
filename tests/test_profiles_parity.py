"""Text and db exports of one generated run give the same tables.

The corpus holds two different collections of one job (tests/test_profiles_db.py compares them
within tolerances); `performance-advisor synth --export both` writes both exports of the same run,
so here the tables must agree value for value. Columns listed in KNOWN_DIFFERENCES differ by the
exports' nature, not by a reader bug.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from advisor.formats import discover, load_table
from advisor.formats.schema import FLOAT, SCHEMAS
from advisor.synth import SynthSpec, write_synth_profile

SORT_KEYS = ("step", "kind", "op_name", "transport", "src_rank", "dst_rank", "packet_bytes", "api_name",
             "op_type", "name", "start_ns")  # fmt: skip
KNOWN_DIFFERENCES = {
    # The db reader derives wait time from the task timeline; the text export writes the
    # profiler's own value. HCCL rows carry no block dim in the db.
    "kernels": {"wait_us", "block_dim"},
    # The db's op start comes from COMMUNICATION_OP (µs-accurate); the text rounds ratios to 4 places.
    "comm_ops": {"start_ns", "wait_ratio", "sync_ratio"},
    "comm_bandwidth": {"bandwidth_gbps"},  # text: rounded to 4 places; db: recomputed
    "api_statistic": {"avg_us", "variance"},  # text: rounded to 3 places
    "op_statistic": {"avg_us", "ratio_pct"},  # text: rounded to 3 places
    "hccl": {"group"},  # text: "0" from the thread name; db: the full group name
}
TABLES = (
    "step_trace", "steps", "kernels", "comm_ops", "comm_bandwidth", "comm_packets", "comm_matrix",
    "runtime_api", "host_ops", "hccl", "api_statistic", "op_statistic",
)  # fmt: skip


@pytest.fixture(scope="module")
def both_exports(tmp_path_factory):
    root = write_synth_profile(tmp_path_factory.mktemp("parity") / "run", SynthSpec(ranks=2, export="both"))
    return [(rank, dataclasses.replace(rank, format="ascend_db")) for rank in discover(root).ranks]


def _sorted(frame: pd.DataFrame, table: str) -> pd.DataFrame:
    keys = [k for k in SORT_KEYS if k in SCHEMAS[table].columns]
    return frame.sort_values(keys, ignore_index=True)


@pytest.mark.parametrize("table", TABLES)
def test_text_and_db_agree(both_exports, table):
    for text_rank, db_rank in both_exports:
        assert_exports_agree(text_rank, db_rank, table)


def assert_exports_agree(text_rank, db_rank, table: str, ignore: frozenset[str] = frozenset()) -> None:
    """The table read from a rank's text export equals the one read from its db export (but for the
    KNOWN_DIFFERENCES and the columns to `ignore`)."""
    text = _sorted(load_table(table, text_rank, use_cache=False), table)
    db = _sorted(load_table(table, db_rank, use_cache=False), table)
    assert len(text) == len(db) > 0, table
    for column, dtype in SCHEMAS[table].columns.items():
        if column in KNOWN_DIFFERENCES.get(table, ()) or column in ignore:
            continue
        if dtype == FLOAT:
            np.testing.assert_allclose(
                text[column].to_numpy(float), db[column].to_numpy(float), rtol=1e-6, err_msg=column
            )
        else:
            pd.testing.assert_series_equal(text[column], db[column], check_names=False, obj=column)
