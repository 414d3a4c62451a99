"""Discovery: what a folder holds (rank / cluster / nested / inside a rank), and clear refusals."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone

import pytest

from advisor.errors import InputError, MixedRunsError
from advisor.formats import discover, report_export, report_input_fields
from advisor.formats.ascend_common.metadata import read_metadata
from advisor.model import ProfileSet, describe_steps
from advisor.report.messages import Messages, profile_line
from advisor.synth.generate import write_synth_profile
from advisor.synth.spec import SynthSpec

from .engine_fixtures import DB_CORPUS, TEXT_CORPUS, corpus_path, demo, name_time, rank_dir, shifted_copy


def describe(profile: ProfileSet, language: str = "en") -> str:
    """The line the panel shows under a path (api/inspect), in `language`."""
    return profile_line(
        Messages(language), ranks=len(profile.ranks), export=report_export(profile), steps=profile.steps
    )


def test_single_rank_folder(tmp_path):
    root, _ = demo(tmp_path, ranks=1)
    folder = next(root.iterdir())
    profile = discover(folder)
    assert report_input_fields(profile)["kind"] == "ascend_pt" and profile.format == "ascend_text"
    assert [r.rank for r in profile.ranks] == [0]
    assert profile.steps == [12, 13, 14]
    assert describe(profile) == "1 rank, text export, steps 12–14"
    assert describe(profile, "zh") == "1 个 rank，文本格式导出，step 12–14"
    assert "ASCEND_PROFILER_OUTPUT/step_trace_time.csv" in profile.ranks[0].files
    assert profile.versions == {}  # the demo records none
    fields = report_input_fields(profile)
    assert (fields["cann_version"], fields["torch_version"]) == (None, None)
    assert profile.warnings == []


def test_cluster_root(tmp_path):
    root, _ = demo(tmp_path, ranks=3, steps=(5,))
    profile = discover(root)
    assert [r.rank for r in profile.ranks] == [0, 1, 2]
    assert describe(profile) == "3 ranks, text export, step 5"
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


def test_profiling_windows_of_one_process_keep_the_latest_and_warn(tmp_path):
    # A repeating schedule: one folder per window, the same {worker}_{pid}, a later timestamp.
    old = rank_dir(tmp_path, "w_1_20250101000000000_ascend_pt", rank=0)
    new = rank_dir(tmp_path, "w_1_20250102000000000_ascend_pt", rank=0)
    rank_dir(tmp_path, "w_3_20250102000000000_ascend_pt", rank=1)
    profile = discover(tmp_path)
    assert [r.rank for r in profile.ranks] == [0, 1]
    assert profile.ranks[0].path == new.resolve()
    assert profile.warnings == [
        f"rank 0 (w_1): 2 profiling windows of one process; analysed the latest, {new.name}; "
        f"ignored {old.name}"
    ]


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
    assert profile.versions == {"cann": "8.0.RC2", "torch_npu": "2.1.0.post8"}
    fields = report_input_fields(profile)
    assert (fields["cann_version"], fields["torch_version"]) == ("8.0.RC2", "2.1.0.post8")


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


def test_a_file_no_format_reads_says_why(tmp_path):
    (tmp_path / "f.json").write_text("[]")  # only the Kineto format reads single files: not its
    with pytest.raises(
        InputError, match=r"f\.json: not profiling data: kineto: a JSON array at the top level"
    ):
        discover(tmp_path / "f.json")


def test_a_lone_ascend_timeline_says_which_folder_to_give(tmp_path):
    (tmp_path / "trace_view.json").write_text('[{"ph": "X", "name": "aten::add", "ts": "1", "dur": 1}]')
    with pytest.raises(InputError, match=r"trace_view\.json: not profiling data: kineto: an Ascend timeline"):
        discover(tmp_path / "trace_view.json")
    with pytest.raises(InputError, match=r"give the folder named ASCEND_PROFILER_OUTPUT that holds it"):
        discover(tmp_path)
    (tmp_path / "ASCEND_PROFILER_OUTPUT").mkdir()
    (tmp_path / "trace_view.json").rename(tmp_path / "ASCEND_PROFILER_OUTPUT" / "trace_view.json")
    assert len(discover(tmp_path / "ASCEND_PROFILER_OUTPUT").ranks) == 1


def test_not_profiling_data(tmp_path):
    for name in ("a.txt", "b.txt", "c.csv"):
        (tmp_path / name).write_text("x")
    with pytest.raises(InputError) as err:
        discover(tmp_path)
    message = str(err.value)
    assert "not profiling data" in message and "found 3 files;" in message
    # what each format looked for, in the registry's order
    assert message.index("ascend_text: ") < message.index("ascend_db: ") < message.index("ascend_cluster: ")
    assert "csv/json files" in message and "cluster_analysis_output/" in message
    assert "\n" not in message


def test_empty_dir(tmp_path):
    with pytest.raises(InputError, match="found an empty folder"):
        discover(tmp_path)


def test_mindspore_is_read_where_the_files_are_the_same(tmp_path):
    rank_dir(tmp_path / "ms", "w_1_20250101000000000_ascend_ms", rank=0)
    found = discover(tmp_path / "ms")
    assert report_input_fields(found)["kind"] == "ascend_ms" and found.ranks[0].framework == "mindspore"
    assert any("MindSpore profile" in w for w in found.warnings)
    assert describe(discover(tmp_path / "ms" / "w_1_20250101000000000_ascend_ms")).startswith("1 rank")
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
    assert (rank.versions, rank.level) == ({"cann": "8.0.RC3", "torch_npu": "2.1.0.post8"}, "Level2")


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
    assert profile.format == "ascend_db" and describe(profile) == "1 rank, db export, no step markers"


def test_mixed_exports(tmp_path):
    rank_dir(tmp_path, "a_ascend_pt", rank=0)
    folder = tmp_path / "b_ascend_pt"
    (folder / "ASCEND_PROFILER_OUTPUT").mkdir(parents=True)
    (folder / "ASCEND_PROFILER_OUTPUT" / "ascend_pytorch_profiler_1.db").write_bytes(b"")
    (folder / "profiler_info_1.json").write_text("{}")
    mixed = discover(tmp_path)
    assert mixed.format == "mixed" and report_input_fields(mixed)["export"] == "mixed"


def test_corpus_text_two_ranks():
    profile = discover(corpus_path(TEXT_CORPUS))
    assert describe(profile) == "2 ranks, text export, step 50"
    assert [r.rank for r in profile.ranks] == [0, 1]
    assert profile.versions == {}
    assert profile.warnings == []


def test_corpus_db_is_recognised():
    profile = discover(corpus_path(DB_CORPUS))
    assert profile.format == "ascend_db" and report_input_fields(profile)["export"] == "db"
    assert [r.rank for r in profile.ranks] == [0, 1]
    assert profile.warnings == []


@pytest.mark.parametrize("corpus", [TEXT_CORPUS, DB_CORPUS])
def test_corpus_ranks_record_when_they_started(corpus):
    # Two ranks of one real job: their wall-clock starts, from profiler_info, are within a second.
    starts = [read_metadata(folder).start_ns for folder in sorted(corpus_path(corpus).iterdir())]
    assert all(isinstance(s, int) for s in starts)
    assert abs(starts[0] - starts[1]) < 1e9
    assert datetime.fromtimestamp(starts[0] / 1e9, tz=timezone.utc).date().isoformat() == "2025-01-09"


# -- one run per analysis ------------------------------------------------------------------------


def _synth(dest, **spec):
    """A generated run (one step: fast) and its rank folders, rank 0 first."""
    root = write_synth_profile(dest, SynthSpec(steps=(12,), **spec))
    return root, sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: read_metadata(p).rank_id)


def _edit_info(folder, edit):
    """Change the copy's profiler_info_{N}.json (a test's own generated data, never an input)."""
    [info] = folder.glob("profiler_info_*.json")
    data = json.loads(info.read_text())
    edit(data)
    info.write_text(json.dumps(data))


def _refusal(path) -> str:
    with pytest.raises(MixedRunsError) as error:
        discover(path)
    message = str(error.value)
    assert "\n" not in message
    return message


def test_two_runs_side_by_side_are_refused_naming_their_folders(tmp_path):
    # `.` holding profiling_dir1/ and profiling_dir1_baseline/: two runs of ranks 0-1 a second apart.
    _synth(tmp_path / "profiling_dir1", ranks=2, seed=1)
    _synth(tmp_path / "profiling_dir1_baseline", ranks=2, seed=2)
    message = _refusal(tmp_path)
    assert message.startswith(
        f"{tmp_path}: holds the rank folders of 2 different profiling runs (the same rank ids)"
    )
    assert "profiling_dir1/ (ranks 0–1, started 2025-01-09 07:48:" in message
    assert "profiling_dir1_baseline/ (ranks 0–1, started 2025-01-09 07:48:" in message
    assert message.endswith(
        f"analyse one run at a time: give its folder as PATH (e.g. {tmp_path}/profiling_dir1) "
        "and another run's as --compare"
    )
    for run in ("profiling_dir1", "profiling_dir1_baseline"):
        found = discover(tmp_path / run)
        assert [r.rank for r in found.ranks] == [0, 1] and found.warnings == []


def test_a_rerun_into_the_same_folder_is_refused(tmp_path):
    _, first = _synth(tmp_path / "a", ranks=2, seed=1)
    _, second = _synth(tmp_path / "b", ranks=2, seed=2)
    mixed = tmp_path / "mixed"
    for folder in first:
        shutil.copytree(folder, mixed / folder.name)
    for folder in second:  # another process: another pid in the name
        worker, pid, rest = folder.name.split("_", 2)
        shutil.copytree(folder, mixed / f"{worker}_{int(pid) + 1}_{rest}")
    message = _refusal(mixed)
    assert "(the same rank ids)" in message
    assert f"{first[0].name}, {first[1].name} (ranks 0–1" in message
    assert "move each run's rank folders into a folder of its own" in message


def test_a_different_profiler_level_is_another_run(tmp_path):
    # One folder per node, ranks 0 and 1: one run, until the copy of rank 1 says Level2.
    _, folders = _synth(tmp_path / "gen", ranks=2)
    job = tmp_path / "job"
    for node, folder in enumerate(folders):
        shutil.copytree(folder, job / f"node{node}" / folder.name)
    assert [r.rank for r in discover(job).ranks] == [0, 1]
    [copy] = (job / "node1").iterdir()
    _edit_info(copy, lambda data: data["config"]["experimental_config"].update(_profiler_level="Level2"))
    message = _refusal(job)
    assert "(different profiler_level)" in message
    assert "node0/ (rank 0, profiler_level Level1, started" in message
    assert "node1/ (rank 1, profiler_level Level2, started" in message


def test_starts_over_an_hour_apart_are_another_run(tmp_path):
    _, (rank0, rank1) = _synth(tmp_path / "gen", ranks=2)
    runs = {}
    for name, seconds in (("job", 10 * 60), ("late", 2 * 3600)):  # a slow rank of the job; another run
        shutil.copytree(rank0, tmp_path / name / rank0.name)
        runs[name] = shifted_copy(rank1, tmp_path / name, seconds)
    assert [r.path for r in discover(tmp_path / "job").ranks] == [tmp_path / "job" / rank0.name, runs["job"]]
    message = _refusal(tmp_path / "late")
    assert "(started over an hour apart)" in message
    assert "(rank 0, started 2025-01-09 07:48:" in message and "(rank 1, started 2025-01-09 09:48:" in message


def test_rank_folders_without_rank_ids_in_separate_subfolders_are_separate_runs(tmp_path):
    # Runs without distribution record no rank id: one rank folder each.
    rank_dir(tmp_path / "run1", "a_ascend_pt", rank=None)
    rank_dir(tmp_path / "run2", "b_ascend_pt", rank=None)
    message = _refusal(tmp_path)
    assert "(no rank ids recorded): run1/ (no rank id recorded); run2/ (no rank id recorded)" in message


def test_a_link_to_a_rank_folder_is_the_same_folder(tmp_path):
    folder = rank_dir(tmp_path / "job", "w_1_20250101000000000_ascend_pt", rank=0)
    (tmp_path / "job" / "w_1_20250101000000000_ascend_pt_link").symlink_to(folder)
    profile = discover(tmp_path / "job")
    assert [r.rank for r in profile.ranks] == [0] and profile.warnings == []


@pytest.mark.parametrize(
    "spec",
    [
        {"ranks": 1},
        {"ranks": 8, "export": "both"},
        {"ranks": 16, "export": "db", "seed": 7},
    ],
)
def test_every_generated_run_is_one_run(tmp_path, spec):
    root, folders = _synth(tmp_path / "run", **spec)
    profile = discover(root)
    assert [r.rank for r in profile.ranks] == list(range(spec["ranks"]))
    assert not any("profiling windows" in w for w in profile.warnings)
    # The generator's start is the one in the folder name (less the 40 ms before the first step).
    started = read_metadata(folders[0]).start_ns
    assert abs(started / 1e9 - name_time(folders[0])[1].timestamp()) < 1


@pytest.mark.parametrize("ranks", [1, 2, 5])
def test_every_demo_is_one_run(tmp_path, ranks):
    root, _ = demo(tmp_path, ranks=ranks)
    assert [r.rank for r in discover(root).ranks] == list(range(ranks))
