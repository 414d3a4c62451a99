"""The engine's scopes: rank checks merged across ranks, worker processes, comparison pairs."""

from __future__ import annotations

import concurrent.futures
import dataclasses

import pandas as pd
import pytest

from advisor import engine, worker_pool
from advisor.checks import check
from advisor.checks.registry import all_checks, unregister
from advisor.engine import comparison_pair, merge_rank_findings, run_analysis
from advisor.formats import discover
from advisor.model import RankInfo
from advisor.options import AnalysisOptions
from advisor.report.messages import Messages
from advisor.report.model import Evidence, Finding
from tests.engine_fixtures import demo


def _finding(rank: int, gain: float | None, priority: str = "medium") -> Finding:
    return Finding(
        check="memory.probe",
        dimension="memory",
        priority=priority,
        title=f"seen on {rank}",
        description="what was seen",
        ranks=[rank],
        estimated_gain_us=gain,
        evidence=[Evidence("t", ["a"], [[rank]])],
    )


def test_one_rank_findings_stay_as_they_are():
    findings = merge_rank_findings(Messages(), {0: [], 1: [_finding(1, 5.0)]})
    assert len(findings) == 1
    assert findings[0].ranks == [1]
    assert len(findings[0].evidence) == 1


def test_costliest_rank_stands_for_all_and_names_every_rank():
    merged = merge_rank_findings(
        Messages(), {0: [_finding(0, 5.0)], 1: [], 2: [_finding(2, 40.0, "high")], 3: [_finding(3, None)]}
    )
    assert len(merged) == 1
    finding = merged[0]
    assert finding.title == "seen on 2"
    assert finding.ranks == [0, 2, 3]
    assert "3 ranks (0, 2, 3)" in finding.description and "rank 2" in finding.description
    per_rank = finding.evidence[-1]
    assert per_rank.columns == ["rank", "findings", "priority", "estimated_gain_us", "title"]
    assert [row[0] for row in per_rank.rows] == [0, 2, 3]
    assert per_rank.rows[1][2:4] == ["high", 40.0]


def test_rank_check_runs_once_per_rank_and_merges(tmp_path):
    seen: list[int] = []

    @check("memory.test_probe", "memory", needs=frozenset({"step_trace"}), scope="rank")
    def probe(ctx):
        seen.append(ctx.rank.rank)
        if ctx.rank.rank == 0:
            return []
        return [_finding(ctx.rank.rank, float(ctx.rank.rank))]

    try:
        root, _ = demo(tmp_path, ranks=3)
        # One process: `seen` is filled where the check runs.
        one_process = AnalysisOptions(analysis_dimensions=("memory",), advisor_analyze_processes=1)
        report = run_analysis(root, options=one_process)
    finally:
        unregister("memory.test_probe")
    assert sorted(seen) == [0, 1, 2]
    probes = [f for f in report.findings if f.check == "memory.probe"]
    assert len(probes) == 1 and probes[0].ranks == [1, 2] and probes[0].title == "seen on 2"


def _count_pools(monkeypatch) -> list[int]:
    """How many worker pools the engine starts (their max_workers), while still starting them."""
    started: list[int] = []

    class CountedPool(concurrent.futures.ProcessPoolExecutor):
        def __init__(self, max_workers: int, **kwargs) -> None:
            started.append(max_workers)
            super().__init__(max_workers, **kwargs)

    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", CountedPool)
    return started


def test_worker_processes_give_the_same_report(tmp_path, monkeypatch):
    root, _ = demo(tmp_path, ranks=3, computing_factor={1: 1.4})
    one = run_analysis(root, options=AnalysisOptions(advisor_analyze_processes=1)).to_json()
    pools = _count_pools(monkeypatch)
    two = run_analysis(root, options=AnalysisOptions(advisor_analyze_processes=2)).to_json()
    assert pools == [2]  # 3 ranks: 0.9 s of work, forked workers start in 0.03 s
    for key in ("findings", "not_evaluated", "summary"):
        assert one[key] == two[key]


def test_small_profile_runs_in_process_where_workers_cannot_be_forked(tmp_path, monkeypatch):
    """In a threaded process (a notebook kernel) a worker is a fresh interpreter that imports pandas
    again (~1 s): three small ranks are analysed faster in the process itself."""
    root, _ = demo(tmp_path, ranks=3)
    pools = _count_pools(monkeypatch)
    monkeypatch.setattr(engine, "worker_start_s", lambda: worker_pool.FORKSERVER_START_S)
    report = run_analysis(root, options=AnalysisOptions(advisor_analyze_processes=2))
    assert pools == [] and report.input.ranks == [0, 1, 2]


def test_pool_pays_off_for_many_ranks_or_much_data(tmp_path):
    def ranks(count: int, megabytes: int) -> list[RankInfo]:
        found = []
        for rank in range(count):
            folder = tmp_path / f"{count}x{megabytes}" / f"rank{rank}"
            folder.mkdir(parents=True)
            with open(folder / "trace_view.json", "wb") as data:
                data.truncate(megabytes * 1_000_000)  # sparse: a size without the disk
            found.append(RankInfo(rank, folder, "ascend_text", files=("trace_view.json", "gone.csv")))
        return found

    corpus_sized = ranks(2, 3)
    assert [engine.rank_data_bytes(r) for r in corpus_sized] == [3_000_000, 3_000_000]
    assert engine.data_mb(corpus_sized) == 6.0

    def pays(found, start_s):
        return engine.pool_pays_off(len(found), engine.data_mb(found), start_s)

    # Forked workers (0.03 s each to start): any two ranks pay.
    assert pays(corpus_sized, worker_pool.FORK_START_S)  # 0.72 s estimated
    assert pays(ranks(2, 0), worker_pool.FORK_START_S)
    # Workers that import everything again (1 s each): only seconds of work pay.
    assert not pays(corpus_sized, worker_pool.FORKSERVER_START_S)
    assert pays(ranks(2, 40), worker_pool.FORKSERVER_START_S)  # 0.6 s + 80 MB at 50 MB/s
    assert pays(ranks(7, 1), worker_pool.FORKSERVER_START_S)  # 7 x 0.3 s
    assert not pays(ranks(6, 0), worker_pool.FORKSERVER_START_S)


def _trace(step_us: float) -> pd.DataFrame:
    return pd.DataFrame(
        {"step": [1, 2], "computing_us": [step_us, step_us], "communication_not_overlapped_us": [0.0, 0.0],
         "free_us": [0.0, 0.0]}
    )  # fmt: skip


def test_a_run_sizes_each_rank_once(tmp_path, monkeypatch):
    """The size of the ranks' files decides both the pool and what the ranks send: stat'ed once."""
    root, _ = demo(tmp_path, ranks=3)
    sized: list[int] = []
    sizing = engine.rank_data_bytes

    def counted(rank):
        sized.append(rank.rank)
        return sizing(rank)

    monkeypatch.setattr(engine, "rank_data_bytes", counted)
    run_analysis(root, options=AnalysisOptions(advisor_analyze_processes=2))
    assert sorted(sized) == [0, 1, 2]


@pytest.mark.parametrize("processes", [1, 2])
def test_a_small_profile_is_read_once(tmp_path, monkeypatch, processes):
    """The ranks of a small profile send every table the cluster and comparison checks may read: the
    compared pair (rank 1, the slowest, and a fastest one) and the tables environment.variables reads
    on demand are not read a second time, and the report is the one a second read gives."""
    root, _ = demo(tmp_path, ranks=3, computing_factor={1: 1.4})
    options = AnalysisOptions(advisor_analyze_processes=processes)
    comparison_tables = {n for spec in all_checks() if spec.scope == "comparison" for n in spec.tables}
    reads: list[tuple[int, bool]] = []  # read in this process: (rank, with the comparison's tables)
    reading = engine.load_rank_tables

    def counted(rank, names):
        reads.append((rank.rank, comparison_tables <= set(names)))
        return reading(rank, names)

    monkeypatch.setattr(engine, "pool_pays_off", lambda ranks, ranks_mb, start_s: processes > 1)
    monkeypatch.setattr(engine, "load_rank_tables", counted)
    sent = run_analysis(root, options=options).to_json()
    # One process reads each rank once, with the comparison's tables; else the workers read them.
    assert sorted(reads) == ([(0, True), (1, True), (2, True)] if processes == 1 else [])

    monkeypatch.setattr(engine, "SEND_EVERY_TABLE_MAX_MB", 0.0)
    reads.clear()
    read_again = run_analysis(root, options=options).to_json()
    compared = [rank for rank, comparison in reads if comparison]
    pair = compared[3:] if processes == 1 else compared  # in one process, after the ranks' own reads
    assert len(pair) == 2 and 1 in pair
    for key in ("findings", "not_evaluated", "summary"):
        assert sent[key] == read_again[key]
    assert any(f["check"].startswith("comparison.") for f in sent["findings"])


def test_comparison_pair_slowest_against_fastest(tmp_path):
    root, _ = demo(tmp_path, ranks=3)
    profile = discover(root)
    mode, target, base = comparison_pair(profile, {0: _trace(10.0), 1: _trace(30.0), 2: _trace(5.0)}, None)
    assert (mode, target.rank, base.rank) == ("ranks", 1, 2)
    assert comparison_pair(profile, {0: _trace(10.0), 1: _trace(10.0)}, None) is None
    # Within jitter (the slowest 4 % of its step slower than the fastest): nothing to compare.
    assert comparison_pair(profile, {0: _trace(100.0), 1: _trace(104.0)}, None) is None
    assert comparison_pair(profile, {0: _trace(100.0), 1: _trace(106.0)}, None) is not None
    # A pipeline: the slowest rank is compared with the fastest of its own stage only.
    staged = dataclasses.replace(profile, stages=[[0, 2], [1]])
    assert comparison_pair(staged, {0: _trace(10.0), 1: _trace(30.0), 2: _trace(5.0)}, None) is None
    mode, target, base = comparison_pair(staged, {0: _trace(30.0), 1: _trace(10.0), 2: _trace(5.0)}, None)
    assert (target.rank, base.rank) == (0, 2)


def test_comparison_pair_with_a_baseline_matches_rank_ids(tmp_path):
    target_root, _ = demo(tmp_path, "target", ranks=2)
    base_root, _ = demo(tmp_path, "base", ranks=2)
    target, baseline = discover(target_root), discover(base_root)
    mode, t, b = comparison_pair(target, {0: _trace(10.0), 1: _trace(30.0)}, baseline)
    assert (mode, t.rank, b.rank) == ("baseline", 1, 1)
    # A single-rank baseline with another id: compared with that one rank.
    single_root, _ = demo(tmp_path, "single", ranks=1)
    mode, t, b = comparison_pair(target, {0: _trace(10.0), 1: _trace(30.0)}, discover(single_root))
    assert (t.rank, b.rank) == (1, 0)


def test_comparison_check_sees_both_sides(tmp_path):
    seen = {}

    @check("comparison.test_probe", "comparison", needs=frozenset({"step_trace"}), scope="comparison")
    def probe(ctx):
        seen.update(mode=ctx.mode, target=ctx.label("target"), baseline=ctx.label("baseline"))
        seen["rows"] = (len(ctx.target_tables["step_trace"]), len(ctx.baseline_tables["step_trace"]))
        return []

    try:
        target_root, _ = demo(tmp_path, "target", ranks=2, computing_factor={1: 1.5})
        base_root, _ = demo(tmp_path, "base", ranks=2)
        run_analysis(target_root, compare_path=base_root)
        with_baseline = dict(seen)
        seen.clear()
        run_analysis(target_root)
        without = dict(seen)
        seen.clear()
        run_analysis(target_root, options=AnalysisOptions(disable_profiling_comparison=True))
    finally:
        unregister("comparison.test_probe")
    assert with_baseline["mode"] == "baseline"
    assert with_baseline["target"] == "rank 1" and with_baseline["baseline"] == "baseline rank 1"
    assert (without["mode"], without["target"]) == ("ranks", "slowest rank 1")
    assert without["baseline"] == "fastest rank 0"
    assert not seen  # disabled by the option


def test_optional_tables_are_given_when_present_and_never_block(tmp_path):
    from tests.engine_fixtures import rank_dir

    seen: dict[int, set[str]] = {}

    @check("memory.test_optional", "memory", scope="rank", optional=frozenset({"kernels", "memory_record"}))
    def probe(ctx):
        seen[ctx.rank.rank] = set(ctx.tables)
        return []

    try:
        bare = rank_dir(tmp_path, "bare_ascend_pt")  # step_trace_time.csv only
        full, _ = demo(tmp_path, ranks=1)
        bare_report = run_analysis(bare, options=AnalysisOptions(analysis_dimensions=("memory",)))
        bare_seen = seen.pop(0)
        run_analysis(full, options=AnalysisOptions(analysis_dimensions=("memory",)))
    finally:
        unregister("memory.test_optional")
    assert bare_seen == {"step_trace"}
    assert "memory.test_optional" not in {n.check for n in bare_report.not_evaluated}
    assert seen[0] == {"step_trace", "kernels", "memory_record"}
