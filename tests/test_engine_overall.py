"""The engine and the overall.summary check on generated profiles with known, injected problems."""

from __future__ import annotations

import json

import pytest

from advisor import engine
from advisor.checks.catalogue import CATALOGUE
from advisor.checks.common import priority_for
from advisor.checks.registry import NotEvaluated, all_checks, check, unregister
from advisor.engine import run_analysis
from advisor.errors import InputError
from advisor.formats import discover, load_table
from advisor.options import AnalysisOptions

from .engine_fixtures import DB_CORPUS, TEXT_CORPUS, corpus_path, demo, expected_by_rank_step, rank_dir


def _overall(report):
    [finding] = [f for f in report.findings if f.check == "overall.summary"]
    return finding


def _evidence(finding, columns_start):
    for ev in finding.evidence:
        if ev.columns[: len(columns_start)] == columns_start:
            return [dict(zip(ev.columns, row, strict=True)) for row in ev.rows]
    raise AssertionError(f"no evidence with columns {columns_start}")


def test_per_rank_summary_equals_what_the_generator_wrote(tmp_path):
    root, spec = demo(tmp_path)
    report = run_analysis(root)
    expected = expected_by_rank_step(spec)
    rows = report.summary["per_rank"]
    assert len(rows) == len(expected) == 6
    for row in rows:
        want = expected[(row["rank"], row["step"])]
        for key in ("step_us", "computing_us", "communication_not_overlapped_us", "free_us"):
            assert row[key] == pytest.approx(want[key], abs=1e-6), key
    assert report.input.ranks == [0, 1] and report.input.steps == [12, 13, 14]
    assert "overall.summary" not in {n.check for n in report.not_evaluated}


def test_every_catalogue_check_is_implemented():
    implemented = {spec.id for spec in all_checks()}
    assert {c for ids in CATALOGUE.values() for c in ids} <= implemented


def test_checks_not_implemented_yet_are_listed_not_hidden(tmp_path, monkeypatch):
    monkeypatch.setitem(CATALOGUE, "memory", (*CATALOGUE["memory"], "memory.future_check"))
    single, _ = demo(tmp_path, "single", ranks=1)
    report = run_analysis(single, options=AnalysisOptions(analysis_dimensions=("memory",)))
    assert ("memory.future_check", "not implemented in this version yet") in [
        (n.check, n.reason) for n in report.not_evaluated
    ]
    other = run_analysis(single, options=AnalysisOptions(analysis_dimensions=("schedule",)))
    assert "memory.future_check" not in {n.check for n in other.not_evaluated}


def test_communication_bound_is_named_and_ranked_once(tmp_path):
    root, spec = demo(tmp_path, ranks=1, free_factor={})
    report = run_analysis(root)
    finding = _overall(report)
    # The summary is the picture: it names the bottleneck, the communication check carries the gain.
    assert finding.priority == "low" and finding.estimated_gain_us is None and not finding.ranked
    assert finding.title.startswith("Communication not overlapped with computation takes")
    assert "Bottleneck: communication not overlapped with computation:" in finding.description
    assert "Step time = computing + communication not overlapped + free" in finding.description
    assert finding.ranks == [0] and finding.step is None
    plan = expected_by_rank_step(spec)
    mean_comm = sum(v["communication_not_overlapped_us"] for v in plan.values()) / len(plan)
    (exposed,) = [f for f in report.findings if f.check == "communication.exposed"]
    assert exposed.priority == "high" and exposed.ranked
    assert exposed.estimated_gain_us <= mean_comm + 1e-3
    assert f"{exposed.share_of_step:.0%} of the step" in exposed.title


def test_compute_bound_is_low_and_says_so(tmp_path):
    root, _ = demo(
        tmp_path,
        ranks=2,
        computing_us=90_000,
        communication_us=8_000,
        overlap_ratio=0.5,
        free_us=2_000,
        free_factor={},
    )
    finding = _overall(run_analysis(root))
    assert finding.priority == "low"
    assert finding.title.startswith("Computation dominates the step")
    assert "Computation dominates on every rank" in finding.description
    assert finding.estimated_gain_us is None


def test_free_bound_names_idle_time(tmp_path):
    root, _ = demo(
        tmp_path, ranks=1, computing_us=30_000, communication_us=5_000, free_us=50_000, free_factor={}
    )
    report = run_analysis(root)
    finding = _overall(report)
    assert finding.title.startswith("The device is idle (free time) for")
    (idle,) = [f for f in report.findings if f.check == "overall.idle"]
    assert idle.priority == "high" and idle.ranked


def test_spread_picks_the_injected_rank(tmp_path):
    root, _ = demo(tmp_path, ranks=4, computing_factor={2: 1.5}, free_factor={3: 6.0})
    finding = _overall(run_analysis(root))
    spread = {row["component"]: row for row in _evidence(finding, ["component", "min_us"])}
    assert spread["computing"]["max_rank"] == 2
    assert spread["free"]["max_rank"] == 3
    breakdown = _evidence(finding, ["rank", "step"])
    assert {row["rank"] for row in breakdown} == {0, 1, 2, 3}
    assert "rank 3" in finding.description.split("varies most")[1]


def test_priority_thresholds():
    assert priority_for(0.05) == "high"
    assert priority_for(0.049) == "medium"
    assert priority_for(0.03) == "medium"
    assert priority_for(0.029) == "low"


def test_check_that_raises_lands_in_not_evaluated(tmp_path):
    @check("overall.test_boom", "overall", scope="rank")
    def boom(ctx):
        raise RuntimeError("kaput\non two lines")

    @check("overall.test_skip", "overall", scope="cluster")
    def skip(ctx):
        raise NotEvaluated("no data for this")

    try:
        root, _ = demo(tmp_path, ranks=2)
        report = run_analysis(root)
    finally:
        unregister("overall.test_boom")
        unregister("overall.test_skip")
    reasons = {(n.check, n.reason) for n in report.not_evaluated}
    assert (
        "overall.test_boom",
        "ranks 0, 1: internal error in the check: RuntimeError: kaput on two lines",
    ) in reasons  # one entry for the ranks that failed alike
    assert ("overall.test_skip", "no data for this") in reasons
    assert _overall(report)  # the other checks still ran


def test_dimension_selection(tmp_path):
    @check("memory.test_probe", "memory", scope="cluster")
    def probe(ctx):
        return []

    try:
        root, _ = demo(tmp_path, ranks=1)
        only_schedule = run_analysis(root, options=AnalysisOptions(analysis_dimensions=("schedule",)))
        with_memory = run_analysis(root, options=AnalysisOptions(analysis_dimensions=("memory",)))
    finally:
        unregister("memory.test_probe")
    assert "memory" not in only_schedule.checked_dimensions
    assert "memory" in with_memory.checked_dimensions
    assert _overall(only_schedule)  # overall always runs


def test_processes_2_gives_the_same_report(tmp_path, monkeypatch):
    root, _ = demo(tmp_path, ranks=3)
    # the pool, whatever starts it
    monkeypatch.setattr(engine, "pool_pays_off", lambda ranks, ranks_mb, start_s: True)
    one = run_analysis(root, options=AnalysisOptions(advisor_analyze_processes=1)).to_json()
    two = run_analysis(root, options=AnalysisOptions(advisor_analyze_processes=2)).to_json()
    one.pop("timings_s"), two.pop("timings_s")
    assert one == two


def test_progress_events(tmp_path):
    root, _ = demo(tmp_path, ranks=2)
    events = []
    run_analysis(root, progress=lambda stage, done, total: events.append((stage, done, total)))
    assert events[:2] == [("reading rank 1/2", 0, 4), ("reading rank 2/2", 1, 4)]
    assert events[-1] == ("running checks", 2, 4)


def test_compare_path(tmp_path):
    root, _ = demo(tmp_path, "target")
    base, _ = demo(tmp_path, "base")
    report = run_analysis(root, compare_path=base)
    assert report.input.compare_path == str(base.resolve())
    # The same demo twice: the comparison checks ran and found nothing to report.
    assert not [n for n in report.not_evaluated if n.check.startswith("comparison.")]
    assert not [f for f in report.findings if f.check.startswith("comparison.")]
    off = run_analysis(root, compare_path=base, options=AnalysisOptions(disable_profiling_comparison=True))
    assert not any(n.check.startswith("comparison.") for n in off.not_evaluated)
    with pytest.raises(InputError, match="no such file or directory"):
        run_analysis(root, compare_path=tmp_path / "missing")


def test_one_broken_rank_is_left_out_not_fatal(tmp_path):
    rank_dir(tmp_path / "job", "a_ascend_pt", rank=0)
    rank_dir(tmp_path / "job", "b_ascend_pt", rank=1, csv="Step,Computing\r\n1,2\r\n")
    report = run_analysis(tmp_path / "job")
    assert [row["rank"] for row in report.summary["per_rank"]] == [0]
    [entry] = [n for n in report.not_evaluated if n.check == "overall.summary"]
    assert (
        entry.reason.startswith("rank 1 left out:")
        and "step_trace_time.csv: missing column(s)" in entry.reason
    )


def test_nothing_readable_is_input_error(tmp_path):
    rank_dir(tmp_path, "x_ascend_pt", trace="[")
    with pytest.raises(InputError, match=r"trace_view\.json: truncated or invalid JSON at byte 1"):
        run_analysis(tmp_path / "x_ascend_pt")


def test_chinese_report(tmp_path):
    root, _ = demo(tmp_path)
    finding = _overall(run_analysis(root, language="zh"))
    assert "未被计算掩盖的通信" in finding.title
    assert finding.suggestions and all(s for s in finding.suggestions)


def test_corpus_overall_numbers_equal_step_trace_csv():
    profile = discover(corpus_path(TEXT_CORPUS))
    report = run_analysis(TEXT_CORPUS)
    assert report.input.steps == [50] and report.input.export == "text"
    for row, rank in zip(report.summary["per_rank"], profile.ranks, strict=True):
        csv = load_table("step_trace", rank).iloc[0]
        assert row["rank"] == rank.rank and row["step"] == 50
        assert row["computing_us"] == pytest.approx(csv.computing_us)
        assert row["communication_not_overlapped_us"] == pytest.approx(csv.communication_not_overlapped_us)
        assert row["free_us"] == pytest.approx(csv.free_us)
        # The profiler's own Stage column is this same sum.
        assert row["step_us"] == pytest.approx(csv.stage_us, abs=1.0)  # Stage is rounded
    finding = _overall(report)
    assert finding.title.startswith("Communication not overlapped") and finding.estimated_gain_us is None


def _db_rank(parent, name, rank):
    folder = parent / name
    (folder / "ASCEND_PROFILER_OUTPUT").mkdir(parents=True)
    (folder / "ASCEND_PROFILER_OUTPUT" / f"ascend_pytorch_profiler_{rank}.db").write_bytes(b"")
    (folder / f"profiler_info_{rank}.json").write_text("{}")


def test_db_corpus_gives_the_db_step_trace(tmp_path):
    profile = discover(corpus_path(DB_CORPUS))
    report = run_analysis(profile.root)
    assert report.input.export == "db" and report.input.steps == [50]
    for row, rank in zip(report.summary["per_rank"], profile.ranks, strict=True):
        table = load_table("step_trace", rank).iloc[0]
        assert row["computing_us"] == pytest.approx(table.computing_us)
        assert row["free_us"] == pytest.approx(table.free_us)


def test_unreadable_db_rank_is_left_out_of_a_mixed_cluster(tmp_path):
    rank_dir(tmp_path / "mixed", "a_ascend_pt", rank=0)
    _db_rank(tmp_path / "mixed", "b_ascend_pt", 1)
    report = run_analysis(tmp_path / "mixed")
    assert report.input.export == "mixed"
    [entry] = [n for n in report.not_evaluated if n.check == "overall.summary"]
    assert entry.reason.startswith("rank 1 left out:") and "ascend_pytorch_profiler_1.db" in entry.reason


def overlap_trace(step: int) -> list[dict]:
    """A minimal trace: one ProfilerStep#`step` at 100–150 µs with 30 µs computing and 10 µs free."""
    return [
        {"ph": "M", "name": "process_name", "pid": 9, "tid": 0, "args": {"name": "Overlap Analysis"}},
        {"ph": "M", "name": "process_name", "pid": 1, "tid": 0, "args": {"name": "Python"}},
        {
            "ph": "X",
            "name": f"ProfilerStep#{step}",
            "pid": 1,
            "tid": 1,
            "ts": "100.000",
            "dur": 50,
            "cat": "cpu_op",
        },
        {"ph": "X", "name": "Computing", "pid": 9, "tid": 0, "ts": "110.000", "dur": 30},
        {"ph": "X", "name": "Free", "pid": 9, "tid": 3, "ts": "140.000", "dur": 10},
    ]


def test_trace_fallback_reports_time_outside_steps(tmp_path):
    trace = [
        *overlap_trace(2),
        {"ph": "X", "name": "Computing", "pid": 9, "tid": 0, "ts": "20.000", "dur": 4000},  # before the step
    ]
    folder = rank_dir(tmp_path, "x_ascend_pt", trace=trace)
    report = run_analysis(folder)
    assert report.summary["per_rank"] == [
        {
            "rank": 0,
            "step": 2,
            "step_us": 40.0,
            "computing_us": 30.0,
            "communication_not_overlapped_us": 0.0,
            "free_us": 10.0,
        }
    ]
    finding = _overall(report)
    assert (
        "Rank 0: 4.000 ms of Overlap Analysis time lies outside every ProfilerStep window"
        in finding.description
    )
    assert "no step_trace_time.csv" in finding.description
    assert finding.title.startswith("Computation dominates")


def test_one_step_can_be_selected(tmp_path):
    root, spec = demo(tmp_path)
    report = run_analysis(root, step=13)
    assert report.input.steps == [13]
    assert {(row["rank"], row["step"]) for row in report.summary["per_rank"]} == {(0, 13), (1, 13)}
    expected = expected_by_rank_step(spec)
    for row in report.summary["per_rank"]:
        assert row["computing_us"] == pytest.approx(expected[(row["rank"], 13)]["computing_us"])
    with pytest.raises(InputError, match=r"step 99 was not profiled \(steps 12–14\)"):
        run_analysis(root, step=99)


def test_a_truncated_trace_is_read_and_reported(tmp_path):
    events = overlap_trace(4)
    text = json.dumps(events)
    cut = text[: -len("]")] + ', {"ph": "X", "name": "Comp'  # torch_npu died mid-write
    folder = rank_dir(tmp_path, "x_ascend_pt", trace=cut)
    report = run_analysis(folder)
    assert [(row["step"], row["computing_us"]) for row in report.summary["per_rank"]] == [(4, 30.0)]
    assert any("trace_view.json: truncated at byte" in w for w in report.warnings), report.warnings
