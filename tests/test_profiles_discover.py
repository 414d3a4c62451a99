"""Discovery: what a folder holds (rank / cluster / nested / inside a rank), and clear refusals."""

from __future__ import annotations

import json

import pytest

from advisor.errors import InputError
from advisor.profiles import discover
from advisor.profiles.discover import describe_steps

from .engine_fixtures import DB_CORPUS, TEXT_CORPUS, corpus_path, demo, rank_dir


def test_single_rank_folder(tmp_path):
    root, _ = demo(tmp_path, ranks=1)
    folder = next(root.iterdir())
    profile = discover(folder)
    assert profile.kind == "ascend_pt"
    assert [r.rank for r in profile.ranks] == [0]
    assert profile.steps == [12, 13, 14]
    assert profile.describe() == "1 rank, text export, steps 12–14"
    assert "ASCEND_PROFILER_OUTPUT/step_trace_time.csv" in profile.ranks[0].files
    assert profile.cann_version is None and profile.torch_version is None  # the demo records none
    assert profile.warnings == []


def test_cluster_root(tmp_path):
    root, _ = demo(tmp_path, ranks=3, steps=(5,))
    profile = discover(root)
    assert [r.rank for r in profile.ranks] == [0, 1, 2]
    assert profile.describe() == "3 ranks, text export, step 5"
    assert profile.root == root.resolve()


def test_nested_per_node_cluster(tmp_path):
    for node, ranks in (("node0", (0, 1)), ("node1", (2, 3))):
        for r in ranks:
            rank_dir(tmp_path / "job" / node, f"host{node}_{100 + r}_20250101000000000_ascend_pt", rank=r)
    profile = discover(tmp_path / "job")
    assert [r.rank for r in profile.ranks] == [0, 1, 2, 3]
    assert profile.steps == [7]


@pytest.mark.parametrize("inside", ["ASCEND_PROFILER_OUTPUT", "ASCEND_PROFILER_OUTPUT/deeper"])
def test_path_inside_rank_folder_climbs_to_it(tmp_path, inside):
    folder = rank_dir(tmp_path, "w_1_20250101000000000_ascend_pt", rank=3)
    (folder / "ASCEND_PROFILER_OUTPUT" / "deeper").mkdir()
    profile = discover(folder / inside)
    assert [r.rank for r in profile.ranks] == [3]
    assert profile.ranks[0].path == folder.resolve()


def test_duplicate_rank_ids_keep_newest_and_warn(tmp_path):
    old = rank_dir(tmp_path, "w_1_20250101000000000_ascend_pt", rank=0)
    new = rank_dir(tmp_path, "w_2_20250102000000000_ascend_pt", rank=0)
    rank_dir(tmp_path, "w_3_20250101000000000_ascend_pt", rank=1)
    profile = discover(tmp_path)
    assert [r.rank for r in profile.ranks] == [0, 1]
    assert profile.ranks[0].path == new.resolve()
    assert len(profile.warnings) == 1
    assert "rank 0 appears twice" in profile.warnings[0]
    assert str(new.resolve()) in profile.warnings[0] and str(old.resolve()) in profile.warnings[0]


def test_rank_id_without_profiler_info_number(tmp_path):
    # profiler_info.json (no number) with rank_id; folder name "rank5"; nothing at all -> order.
    a = rank_dir(tmp_path, "a_ascend_pt", rank=None)
    (a / "profiler_info.json").write_text(json.dumps({"rank_id": 4}))
    rank_dir(tmp_path, "rank5_ascend_pt", rank=None)
    c = rank_dir(tmp_path, "host_123_20250101000000000_ascend_pt", rank=None)
    profile = discover(tmp_path)
    assert [r.rank for r in profile.ranks] == [0, 4, 5]
    assert profile.ranks[0].path == c.resolve()  # numbered by order, never dropped, never its pid
    assert any("numbered rank 0" in w for w in profile.warnings)


def test_versions_recorded_in_the_data(tmp_path):
    info = {"rank_id": 0, "torch_npu_version": "2.1.0.post8", "cann_version": "8.0.RC2"}
    rank_dir(tmp_path, "x_ascend_pt", rank=0, info=info)
    profile = discover(tmp_path / "x_ascend_pt")
    assert (profile.cann_version, profile.torch_version) == ("8.0.RC2", "2.1.0.post8")


def test_steps_from_trace_when_csv_absent(tmp_path):
    trace = [
        {"ph": "X", "name": "ProfilerStep#3", "pid": 1, "tid": 1, "ts": "10.000", "dur": 5, "cat": "cpu_op"},
        {"ph": "X", "name": "ProfilerStep#4", "pid": 1, "tid": 1, "ts": "15.000", "dur": 5, "cat": "cpu_op"},
    ]
    rank_dir(tmp_path, "x_ascend_pt", trace=trace)
    assert discover(tmp_path / "x_ascend_pt").steps == [3, 4]


def test_describe_steps():
    assert describe_steps([]) == "no step markers"
    assert describe_steps([50]) == "step 50"
    assert describe_steps([12, 13, 14]) == "steps 12–14"
    assert describe_steps([1, 3]) == "steps 1, 3"


def test_missing_path(tmp_path):
    with pytest.raises(InputError, match=r"no_such: no such file or directory"):
        discover(tmp_path / "no_such")


def test_not_a_directory(tmp_path):
    (tmp_path / "f.json").write_text("[]")
    with pytest.raises(InputError, match="not a directory"):
        discover(tmp_path / "f.json")


def test_not_profiling_data(tmp_path):
    for name in ("a.txt", "b.txt", "c.csv"):
        (tmp_path / name).write_text("x")
    with pytest.raises(InputError) as err:
        discover(tmp_path)
    message = str(err.value)
    assert "not profiling data" in message and "found 3 files, no rank folders" in message
    assert "\n" not in message


def test_empty_dir(tmp_path):
    with pytest.raises(InputError, match="found an empty folder"):
        discover(tmp_path)


def test_mindspore_is_read_where_the_files_are_the_same(tmp_path):
    rank_dir(tmp_path / "ms", "w_1_20250101000000000_ascend_ms", rank=0)
    found = discover(tmp_path / "ms")
    assert found.kind == "ascend_ms" and found.ranks[0].framework == "mindspore"
    assert any("MindSpore profile" in w for w in found.warnings)
    assert discover(tmp_path / "ms" / "w_1_20250101000000000_ascend_ms").describe().startswith("1 rank")
    rank_dir(tmp_path / "mixed", "a_ascend_pt", rank=0)
    rank_dir(tmp_path / "mixed", "b_ascend_ms", rank=1)
    with pytest.raises(InputError, match=r"both PyTorch .* and MindSpore .* rank folders"):
        discover(tmp_path / "mixed")


def _metadata(folder, **content):
    (folder / "profiler_metadata.json").write_text(json.dumps(content))


def test_versions_and_level_come_from_the_data(tmp_path):
    info = {
        "rank_id": 0,
        "torch_npu_version": "2.1.0.post8",
        "cann_version": "8.0.RC3",
        "config": {"experimental_config": {"_profiler_level": "ProfilerLevel.Level2"}},
    }
    folder = rank_dir(tmp_path, "a_ascend_pt", rank=0, info=info)
    [rank] = discover(folder).ranks
    assert (rank.cann_version, rank.torch_version, rank.level) == ("8.0.RC3", "2.1.0.post8", "Level2")


def test_broken_metadata_is_a_warning_not_a_failure(tmp_path):
    folder = rank_dir(tmp_path, "a_ascend_pt", rank=0)
    (folder / "profiler_metadata.json").write_text('{"ENV_VARIABLES": {')
    found = discover(folder)
    assert found.ranks[0].rank == 0
    assert any("profiler_metadata.json" in w for w in found.warnings)


def test_pipeline_stages_from_parallel_groups(tmp_path):
    # 4 ranks, pp=2, dp=2: pp groups (0, 2) and (1, 3); stage = place in the pp group.
    for rank in range(4):
        folder = rank_dir(tmp_path / "job", f"r{rank}_ascend_pt", rank=rank)
        pp = [rank % 2, rank % 2 + 2]
        dp = [0, 1] if rank < 2 else [2, 3]
        _metadata(
            folder,
            parallel_group_info={
                f"pp{rank % 2}": {"group_name": "pp", "group_rank": pp.index(rank), "global_ranks": pp},
                f"dp{rank // 2}": {"group_name": "dp", "group_rank": dp.index(rank), "global_ranks": dp},
            },
        )
    found = discover(tmp_path / "job")
    assert found.stages == [(0, 1), (2, 3)]
    assert set(found.groups.values()) >= {(0, 2), (1, 3), (0, 1), (2, 3)}


def test_pipeline_stages_from_distributed_args(tmp_path):
    for rank in range(4):
        folder = rank_dir(tmp_path / "job", f"r{rank}_ascend_pt", rank=rank)
        _metadata(folder, distributed_args={"world_size": 4, "pipeline_model_parallel_size": 2})
    assert discover(tmp_path / "job").stages == [(0, 1), (2, 3)]


def test_no_pipeline_means_no_stages(tmp_path):
    for rank in range(2):
        rank_dir(tmp_path / "job", f"r{rank}_ascend_pt", rank=rank)
    assert discover(tmp_path / "job").stages == []


def test_rank_folder_without_export(tmp_path):
    (tmp_path / "x_ascend_pt").mkdir()
    with pytest.raises(InputError, match="no ASCEND_PROFILER_OUTPUT folder"):
        discover(tmp_path / "x_ascend_pt")


def test_synthetic_db_export(tmp_path):
    folder = tmp_path / "x_ascend_pt"
    (folder / "ASCEND_PROFILER_OUTPUT").mkdir(parents=True)
    (folder / "ASCEND_PROFILER_OUTPUT" / "ascend_pytorch_profiler_0.db").write_bytes(b"SQLite format 3\0")
    (folder / "profiler_info_0.json").write_text("{}")
    profile = discover(folder)
    assert profile.export == "db" and profile.describe() == "1 rank, db export, no step markers"


def test_mixed_exports(tmp_path):
    rank_dir(tmp_path, "a_ascend_pt", rank=0)
    folder = tmp_path / "b_ascend_pt"
    (folder / "ASCEND_PROFILER_OUTPUT").mkdir(parents=True)
    (folder / "ASCEND_PROFILER_OUTPUT" / "ascend_pytorch_profiler_1.db").write_bytes(b"")
    (folder / "profiler_info_1.json").write_text("{}")
    assert discover(tmp_path).export == "mixed"


def test_corpus_text_two_ranks():
    profile = discover(corpus_path(TEXT_CORPUS))
    assert profile.describe() == "2 ranks, text export, step 50"
    assert [r.rank for r in profile.ranks] == [0, 1]
    assert profile.cann_version is None and profile.torch_version is None


def test_corpus_db_is_recognised():
    profile = discover(corpus_path(DB_CORPUS))
    assert profile.export == "db"
    assert [r.rank for r in profile.ranks] == [0, 1]
