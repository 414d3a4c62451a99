"""Derived tables shared by the checks of a rank: computed once per table object, each caller
getting its own copy, recomputed for another (or a recreated) table. And the one way checks number
the groups of a table's key columns."""

from __future__ import annotations

import gc

import numpy as np
import pandas as pd

from advisor.checks.common import complete_steps, group_rows
from advisor.checks.derived import per_rank_table


def test_derived_once_per_table_object_and_private_to_each_caller():
    calls: list[int] = []

    @per_rank_table
    def long_rows(frame: pd.DataFrame, min_us: float) -> tuple[pd.DataFrame, np.ndarray]:
        calls.append(len(frame))
        rows = frame[frame["dur_us"] >= min_us]
        return rows, rows["dur_us"].to_numpy(copy=True)

    table = pd.DataFrame({"dur_us": [1.0, 5.0, 9.0]})
    first_rows, first_values = long_rows(table, 5.0)
    first_rows["extra"] = 1  # a caller changing what it got
    first_values[0] = -1.0
    second_rows, second_values = long_rows(table, 5.0)
    assert calls == [3]  # the second call reused the first's result
    assert list(second_rows.columns) == ["dur_us"] and second_values.tolist() == [5.0, 9.0]

    long_rows(table, 9.0)  # another argument value: derived again
    same_values = pd.DataFrame({"dur_us": [1.0, 5.0, 9.0]})
    long_rows(same_values, 5.0)  # an equal but distinct table: derived again
    assert calls == [3, 3, 3]

    del table, same_values, first_rows, second_rows
    gc.collect()
    recreated = pd.DataFrame({"dur_us": [7.0]})  # may reuse a freed id: must not see the old result
    _, values = long_rows(recreated, 5.0)
    assert calls == [3, 3, 3, 1] and values.tolist() == [7.0]


def test_complete_steps_shared_result_equals_a_fresh_derivation():
    step_trace = pd.DataFrame(
        {
            "step": [1, 2, 3],
            "computing_us": [10.0, 20.0, None],
            "communication_not_overlapped_us": [1.0, 2.0, 3.0],
            "free_us": [0.5, 0.5, 0.5],
        }
    )
    complete_steps(step_trace)
    shared_rows, shared_times = complete_steps(step_trace)  # the memoised result
    fresh_rows, fresh_times = complete_steps.__wrapped__(step_trace)
    pd.testing.assert_frame_equal(shared_rows, fresh_rows)
    assert shared_times.tolist() == fresh_times.tolist() == [11.5, 22.5]


def test_group_rows_numbers_combinations_in_order_of_first_appearance():
    ops = np.array(["b", "a", "b", "a", "c"], dtype=object)
    sites = np.array(["x", "y", "x", "x", "y"], dtype=object)
    groups, first = group_rows(ops, sites)
    assert groups.tolist() == [0, 1, 0, 2, 3]
    assert first.tolist() == [0, 1, 3, 4]


def test_group_rows_keeps_a_missing_key_apart_from_every_other_combination():
    # Three distinct values in the second column: with a -1 code for the missing one, (1, NA)
    # would get the number of (0, third value).
    outer = np.array([0, 0, 0, 1], dtype=object)
    inner = np.array(["p", "q", "r", None], dtype=object)
    groups, first = group_rows(outer, inner)
    assert len(set(groups.tolist())) == 4
    assert first.tolist() == [0, 1, 2, 3]


def test_group_rows_puts_every_missing_value_of_a_column_in_one_group():
    values = np.array([1.0, np.nan, 2.0, np.nan])
    groups, first = group_rows(values)
    assert groups.tolist() == [0, 1, 2, 1]
    assert first.tolist() == [0, 1, 2]
