"""The format registry: which format reads a path, and what each format declares."""

from __future__ import annotations

import dataclasses
from pathlib import Path, PurePosixPath

import pytest

from advisor.errors import InputError
from advisor.formats import (
    FORMATS,
    data_folder_at,
    data_name,
    discover,
    format_named,
    load_table,
    report_input_fields,
    table_sources,
)
from advisor.formats.tables import _LOADERS
from advisor.model import DeviceCount

from .engine_fixtures import demo, rank_dir
from .test_profiles_cluster_source import write_cluster_output


def test_every_loader_belongs_to_a_registered_format():
    names = [fmt.name for fmt in FORMATS]
    assert len(set(names)) == len(names) == 4
    for fmt in FORMATS:
        assert fmt.tables(), fmt.name  # importing its reader modules registers its loaders
    assert {owner for _, owner in _LOADERS} == set(names)  # a misspelt format name registers nothing


def test_detection_picks_the_export_the_rank_folders_hold(tmp_path):
    root, _ = demo(tmp_path, ranks=2)
    found = {fmt.name: fmt.detect(root) for fmt in FORMATS}
    assert found["ascend_text"].confidence == 1.0
    assert found["ascend_db"].confidence == 0.0 and "without a db export" in found["ascend_db"].reason
    assert found["ascend_cluster"].confidence == 0.0
    profile = discover(root)
    assert profile.format == "ascend_text" and {r.format for r in profile.ranks} == {"ascend_text"}


def test_rank_folders_win_over_cluster_summaries(tmp_path):
    root, _ = demo(tmp_path, ranks=2, steps=(5,))
    write_cluster_output(root, {0: 10.0, 1: 20.0})
    assert format_named("ascend_cluster").detect(root).confidence == 0.4
    assert discover(root).format == "ascend_text"
    summaries_only = tmp_path / "summaries"
    write_cluster_output(summaries_only, {0: 10.0, 1: 20.0})
    profile = discover(summaries_only)
    assert profile.format == "ascend_cluster"
    assert report_input_fields(profile) == {
        "kind": "cluster_output",
        "export": "cluster",
        "cann_version": None,
        "torch_version": None,
        "format": "ascend_cluster",
        "device": "npu",
        "devices": [DeviceCount("npu", None, 2)],  # cluster summaries record no device model
        "versions": {},
    }


def test_unexported_rank_folder_gets_the_ascend_message(tmp_path):
    folder = tmp_path / "x_ascend_pt"
    folder.mkdir()
    (folder / "profiler_info_0.json").write_text("{}")
    assert format_named("ascend_text").detect(folder).confidence == 0.5
    with pytest.raises(InputError, match="no ASCEND_PROFILER_OUTPUT folder"):
        discover(folder)


def test_a_rank_reads_its_tables_through_its_own_format(tmp_path):
    rank = rank_dir(tmp_path, "a_ascend_pt", rank=0)
    [info] = discover(rank).ranks
    assert info.format == "ascend_text"
    assert list(load_table("step_trace", info, use_cache=False)["step"]) == [7]
    as_db = dataclasses.replace(info, format="ascend_db")
    with pytest.raises(InputError, match="reading operator_details from ascend_db data is not supported yet"):
        load_table("operator_details", as_db)  # only the text export writes operator_details.csv
    with pytest.raises(ValueError, match="unknown table"):
        load_table("no_such_table", info)


def test_table_sources_are_what_the_formats_read_for_the_tables_asked():
    sources = table_sources(["kernels", "step_trace"])
    assert set(sources) == {"kernels", "step_trace"}
    assert "kernel_details.csv" in sources["kernels"]  # ascend_text
    assert any(p.startswith("ascend_pytorch_profiler") for p in sources["kernels"])  # ascend_db
    assert "cluster_step_trace_time.csv" in sources["step_trace"]  # ascend_cluster


def test_the_formats_say_which_folders_are_data_and_which_name_it():
    rank = Path("/data/job/node1_123_20250101_ascend_pt")
    # Reports never go inside a rank folder, whichever depth; a plain folder is no one's data.
    assert data_folder_at(rank / "ASCEND_PROFILER_OUTPUT" / "reports") == rank / "ASCEND_PROFILER_OUTPUT"
    assert data_folder_at(rank / "notes") == rank
    assert data_folder_at(Path("/data/job/reports")) is None
    # A path into a rank's export folder is named after the rank folder.
    assert data_name(PurePosixPath(str(rank / "ASCEND_PROFILER_OUTPUT"))) == PurePosixPath(str(rank))
    assert data_name(PurePosixPath("/data/job")) == PurePosixPath("/data/job")
