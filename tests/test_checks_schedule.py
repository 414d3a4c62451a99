"""Schedule checks: host syncs, stream syncs, GC, online compilation, SyncBatchNorm, affinity APIs,
fusible sequences. On generated profiles (fault injected vs clean, text and db), hand-built tables
(edge cases) and the shared corpus."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from advisor.checks import schedule_affinity, schedule_base, schedule_fusible, schedule_gc, schedule_sync
from advisor.checks.common import priority_for
from advisor.checks.registry import NotEvaluated, RankContext
from advisor.checks.schedule_dispatch import operator_dispatch
from advisor.checks.schedule_syncbn import sync_batchnorm
from advisor.engine import run_analysis
from advisor.formats import discover
from advisor.formats.schema import conform
from advisor.options import AnalysisOptions
from advisor.report.messages import Messages
from advisor.synth import SynthSpec, write_synth_profile

from .engine_fixtures import DB_CORPUS, FIXTURE_TRACE, TEXT_CORPUS, corpus_path, rank_dir

SCHEDULE = AnalysisOptions(analysis_dimensions=("schedule",))
FAULTS = (
    "schedule.gc",
    "schedule.synchronize_stream",
    "schedule.host_sync",
    "schedule.operator_dispatch",
    "schedule.affinity_api",
)
CHECKS = (*FAULTS, "schedule.sync_batchnorm", "schedule.fusible_operators")
MESSAGES = Path(__file__).resolve().parents[1] / "advisor" / "report" / "messages"
T0 = 1_736_408_884_000_000_000


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One 2-rank, 3-step profile per schedule fault, a clean one and a db export of all faults;
    analysed once each: {name: (root, report, ground truth)}."""
    base = tmp_path_factory.mktemp("schedule")
    specs = {f: SynthSpec(ranks=2, inject=(f,), seed=3) for f in FAULTS}
    specs["clean"] = SynthSpec(ranks=2, seed=3)
    specs["db"] = SynthSpec(ranks=2, inject=FAULTS, seed=3, export="db")
    specs["text_all"] = SynthSpec(ranks=2, inject=FAULTS, seed=3)
    out = {}
    for name, spec in specs.items():
        root = write_synth_profile(base / name.replace(".", "_"), spec)
        truth = json.loads((root / "ground_truth.json").read_text())
        out[name] = (root, run_analysis(root, options=SCHEDULE), truth)
    return out


def _finding(report, check):
    found = [f for f in report.findings if f.check == check]
    assert len(found) == 1, [f.check for f in report.findings]
    return found[0]


def _expected(truth, check):
    return next(i for i in truth["injected"] if i["check"] == check)


def _evidence(finding, index=0):
    ev = finding.evidence[index]
    return [dict(zip(ev.columns, row, strict=True)) for row in ev.rows]


# --- generated profiles -------------------------------------------------------------------------


def test_host_sync_found_with_counts_and_idle(runs):
    _, report, truth = runs["schedule.host_sync"]
    f = _finding(report, "schedule.host_sync")
    exp = _expected(truth, "schedule.host_sync")
    assert f.ranks == exp["ranks"] == [0, 1]
    n = len(exp["ranks"]) * len(exp["steps"])
    sites = _evidence(f)
    assert sites[0]["op"] == "aten::item"
    assert sum(s["count"] for s in sites) * len(exp["ranks"]) == exp["expected"]["item_calls"]
    # Idle after the syncs: the reported rank's per-step idle is close to the built-in gaps.
    assert f.estimated_gain_us == pytest.approx(exp["expected"]["idle_after_us"] / n, rel=0.1)
    assert f.priority == "high"
    assert any("item()" in s for s in f.suggestions)


def test_synchronize_stream_launch_blocking(runs):
    _, report, truth = runs["schedule.synchronize_stream"]
    f = _finding(report, "schedule.synchronize_stream")
    exp = _expected(truth, "schedule.synchronize_stream")["expected"]
    assert f.ranks == [0, 1]
    co = _evidence(f, 1)[0]
    assert co["co_occurrence_ratio"] == pytest.approx(exp["co_occurrence_ratio"])
    assert co["syncs_after_launch"] * 2 == exp["sync_events"]
    assert co["launches"] * 2 == exp["launch_events"]
    assert "ASCEND_LAUNCH_BLOCKING" in f.title
    # The priority follows the measured idle after the syncs, whatever the launch mode.
    assert f.gain_basis == "measured" and f.priority == priority_for(f.share_of_step)
    assert any("ASCEND_LAUNCH_BLOCKING" in s for s in f.suggestions)
    # The syncs of aten::item belong to host_sync, not here: no host-sync fault, no host_sync finding.
    assert not [x for x in report.findings if x.check == "schedule.host_sync"]


def test_gc_recorded(runs):
    _, report, truth = runs["schedule.gc"]
    f = _finding(report, "schedule.gc")
    exp = _expected(truth, "schedule.gc")
    assert f.ranks == [0, 1]
    per_rank = exp["expected"]["by_rank"]
    per_step = _evidence(f, 1)
    reported = {r["step"] for r in per_step}
    assert reported <= set(exp["steps"])
    events = sum(r["collections"] for r in per_step)
    total = sum(r["total_us"] for r in per_step)
    assert (events, pytest.approx(total, abs=0.01)) in [
        (v["events"], v["total_us"]) for v in per_rank.values()
    ]
    # The device starves during the pauses: nearly all of the GC time is device idle.
    assert f.estimated_gain_us == pytest.approx(total / 3, rel=0.05)
    assert max(r["duration_us"] for r in _evidence(f, 0)) <= exp["expected"]["max_us"]
    assert any("gc.freeze()" in s for s in f.suggestions)


def test_operator_dispatch(runs):
    _, report, truth = runs["schedule.operator_dispatch"]
    f = _finding(report, "schedule.operator_dispatch")
    exp = _expected(truth, "schedule.operator_dispatch")["expected"]
    assert f.ranks == [0, 1]
    summary = _evidence(f)[0]
    assert summary["count_per_step"] == exp["compile_events_per_step"] == 24
    assert summary["per_step_us"] == pytest.approx(exp["compile_total_us"] / 6, rel=0.1)
    assert 0 < f.estimated_gain_us <= summary["per_step_us"]
    assert any("jit_compile=False" in s for s in f.suggestions)


def test_affinity_api(runs):
    _, report, truth = runs["schedule.affinity_api"]
    f = _finding(report, "schedule.affinity_api")
    patterns = _expected(truth, "schedule.affinity_api")["expected"]["patterns"]
    rows = _evidence(f)
    apis = {r["affinity_api"] for r in rows}
    assert set(patterns.values()) <= apis
    assert {r["replaced_ops"] for r in rows} >= {"gelu", "Optimizer.step#AdamW.step"}
    assert f.priority in ("low", "medium")


def test_affinity_api_disabled_by_option(runs):
    root = runs["schedule.affinity_api"][0]
    options = dataclasses.replace(SCHEDULE, disable_affinity_api=True)
    report = run_analysis(root, options=options)
    assert not [f for f in report.findings if f.check == "schedule.affinity_api"]
    reasons = [n.reason for n in report.not_evaluated if n.check == "schedule.affinity_api"]
    assert reasons and all("disabled by option" in r for r in reasons)


def test_clean_profile_has_no_schedule_findings(runs):
    _, report, _ = runs["clean"]
    assert not [f.check for f in report.findings if f.check in CHECKS]
    assert not [n for n in report.not_evaluated if n.check in CHECKS]


def test_db_export_finds_the_same_problems(runs):
    _, db_report, truth = runs["db"]
    _, text_report, _ = runs["text_all"]
    for check in FAULTS:
        db, text = _finding(db_report, check), _finding(text_report, check)
        assert db.ranks == text.ranks == [0, 1], check
    # Counts agree between the exports (gains need the overlap table, see test_overlap_kinds_db).
    assert _evidence(_finding(db_report, "schedule.operator_dispatch"))[0]["count"] == 24 * 3
    db_sites = _evidence(_finding(db_report, "schedule.host_sync"))
    text_sites = _evidence(_finding(text_report, "schedule.host_sync"))
    assert sum(s["count"] for s in db_sites) == sum(s["count"] for s in text_sites) == 18
    co = _evidence(_finding(db_report, "schedule.synchronize_stream"), 1)[0]
    assert co["co_occurrence_ratio"] == 1.0
    gc_rows = _evidence(_finding(db_report, "schedule.gc"), 1)
    by_rank = _expected(truth, "schedule.gc")["expected"]["by_rank"]
    assert sum(r["collections"] for r in gc_rows) in {v["events"] for v in by_rank.values()}


def test_step_option_limits_host_events(runs):
    root = runs["schedule.operator_dispatch"][0]
    report = run_analysis(root, options=SCHEDULE, step=13)
    f = _finding(report, "schedule.operator_dispatch")
    assert _evidence(f)[0]["count"] == 24
    assert [r["step"] for r in _evidence(f, 1)] == [13]


# --- hand-built tables --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rank(runs):
    root = runs["clean"][0]
    profile = discover(root)
    return profile, profile.ranks[0]


def _ctx(rank, options=None, **tables):
    profile, info = rank
    base = {
        "steps": conform(pd.DataFrame({"step": [1], "start_ns": [T0], "dur_us": [200_000.0]}), "steps"),
        "step_trace": conform(
            pd.DataFrame(
                {
                    "step": [1],
                    "computing_us": [100_000.0],
                    "communication_not_overlapped_us": [0.0],
                    "free_us": [100_000.0],
                }
            ),
            "step_trace",
        ),
        "host_ops": conform(pd.DataFrame(), "host_ops"),
        "runtime_api": conform(pd.DataFrame(), "runtime_api"),
        "overlap": conform(pd.DataFrame(), "overlap"),
        "kernels": conform(pd.DataFrame(), "kernels"),
        "gc": conform(pd.DataFrame(), "gc"),
    }
    base.update({k: conform(pd.DataFrame(v), k) for k, v in tables.items()})
    return RankContext(profile, info, base, options or AnalysisOptions(), Messages("en"))


def _us(ms: float) -> int:
    return T0 + int(ms * 1_000_000)


def test_empty_tables_give_nothing_or_not_evaluated(rank):
    ctx = _ctx(rank)
    with pytest.raises(NotEvaluated, match="CANN API"):
        schedule_sync.host_sync(ctx)
    with pytest.raises(NotEvaluated):
        schedule_sync.synchronize_stream(ctx)
    with pytest.raises(NotEvaluated, match="kernels"):
        schedule_fusible.fusible_operators(ctx)
    assert schedule_gc.gc_pauses(ctx) == []
    assert operator_dispatch(ctx) == []
    assert sync_batchnorm(ctx) == []
    assert schedule_affinity.affinity_api(ctx) == []


def test_host_sync_hand_built_nan_and_zero_durations(rank):
    host = {
        "name": ["aten::item", "aten::_local_scalar_dense", "aten::item", "aten::nonzero", "aten::item"],
        "cat": ["cpu_op"] * 5,
        "start_ns": [_us(10), _us(10.01), _us(50), _us(80), _us(300)],  # the last one outside the step
        "dur_us": [500.0, 480.0, np.nan, 0.0, 500.0],
        "tid": [7, 7, 7, 7, 7],
        "call_stack": ["train.py(12): step;\n/x/site-packages/torch/a.py(1): f", None, None, None, None],
    }
    cann = {
        "name": ["AscendCL@aclrtSynchronizeStreamWithTimeout", "AscendCL@aclrtMemcpy",
                 "AscendCL@aclrtSynchronizeStream", "AscendCL@aclrtSynchronizeStream"],
        "start_ns": [_us(10.02), _us(10.3), _us(80), _us(300.01)],
        "dur_us": [200.0, 100.0, np.nan, 100.0],
        "tid": [7, 7, 7, 7],
    }  # fmt: skip
    # The Overlap Analysis covers the step: the device computes but for two idle slices.
    overlap = {
        "kind": ["Computing", "Free", "Computing", "Free", "Computing"],
        "start_ns": [_us(0), _us(10.2), _us(14.2), _us(80), _us(82)],
        "dur_us": [10_200.0, 4_000.0, 65_800.0, 2_000.0, 118_000.0],
    }
    ctx = _ctx(rank, host_ops=host, runtime_api=cann, overlap=overlap)
    schedule_sync.MIN_PER_STEP, saved = 1.0, schedule_sync.MIN_PER_STEP
    try:
        (f,) = schedule_sync.host_sync(ctx)
    finally:
        schedule_sync.MIN_PER_STEP = saved
    sites = {(r["op"], r["call_site"]): r for r in _evidence(f)}
    # item (sync + copy in one op) and nonzero (zero-length op: sync at its start) inside the step.
    assert sites[("aten::item", "train.py(12): step")]["count"] == 1
    assert sites[("aten::item", "train.py(12): step")]["blocked_us"] == pytest.approx(300.0)
    assert sites[("aten::item", "train.py(12): step")]["idle_after_us"] == pytest.approx(4000.0)
    assert sites[("aten::nonzero", "(no call stack)")]["count"] == 1
    assert f.estimated_gain_us == pytest.approx(6000.0)  # both idle slices, once each
    assert f.ranks == [rank[1].rank]


def test_synchronize_stream_explicit_sync_outside_ops(rank):
    cann = {
        "name": ["AscendCL@aclrtSynchronizeDevice", "AscendCL@aclnnAdd"],
        "start_ns": [_us(20), _us(30)],
        "dur_us": [5_000.0, 10.0],
        "tid": [7, 7],
    }
    overlap = {"kind": ["Free"], "start_ns": [_us(24)], "dur_us": [8_000.0]}
    (f,) = schedule_sync.synchronize_stream(_ctx(rank, runtime_api=cann, overlap=overlap))
    assert f.estimated_gain_us == pytest.approx(8000.0)
    assert _evidence(f, 1)[0]["launches"] == 0
    assert "Explicit" in f.title
    # Without idle after it, one explicit sync is no finding.
    assert schedule_sync.synchronize_stream(_ctx(rank, runtime_api=cann)) == []


def test_conjectured_gc(rank):
    overlap = {
        "kind": ["Computing", "Free", "Computing"],
        "start_ns": [_us(0), _us(20), _us(140)],
        "dur_us": [20_000.0, 120_000.0, 60_000.0],
    }
    cann = {"name": ["AscendCL@aclnnAdd"], "start_ns": [_us(21)], "dur_us": [5.0], "tid": [1]}
    (f,) = schedule_gc.gc_pauses(_ctx(rank, overlap=overlap, runtime_api=cann))
    assert f.estimated_gain_us == pytest.approx(120_000.0)
    # The pause is measured (the device idled while the host did nothing); only its cause is a guess,
    # which the title and the advice to record GC say.
    assert f.priority == "high" and f.gain_basis == "measured"
    assert "probably Python garbage collection" in f.title
    assert any("gc_detect_threshold" in s for s in f.suggestions)
    # A framework op at 60 ms: the host ran then, so the pause is what follows it (80 ms); the
    # 40 ms of idle before it are too short to call a pause.
    host = {"name": ["aten::add"], "cat": ["cpu_op"], "start_ns": [_us(60)], "dur_us": [10.0], "tid": [1]}
    (f,) = schedule_gc.gc_pauses(_ctx(rank, overlap=overlap, runtime_api=cann, host_ops=host))
    assert f.estimated_gain_us == pytest.approx(79_990.0)
    assert [r["host_quiet_us"] for r in _evidence(f)] == [139_990.0]  # to the step's end at 200 ms
    # Ops every 20 ms: the host never stood still that long.
    busy = {
        "name": ["aten::add"] * 9,
        "cat": ["cpu_op"] * 9,
        "start_ns": [_us(20 * i) for i in range(1, 10)],
        "dur_us": [10.0] * 9,
        "tid": [1] * 9,
    }
    assert schedule_gc.gc_pauses(_ctx(rank, overlap=overlap, runtime_api=cann, host_ops=busy)) == []
    # A blocking CANN call covering the idle belongs to the sync checks.
    sync = {
        "name": ["AscendCL@aclrtSynchronizeDevice"],
        "start_ns": [_us(20)],
        "dur_us": [120_000.0],
        "tid": [1],
    }
    assert schedule_gc.gc_pauses(_ctx(rank, overlap=overlap, runtime_api=sync)) == []
    # A DataLoader wait covering the gap belongs to the data loader.
    loader = {
        "name": ["enumerate(DataLoader)#_MultiProcessingDataLoaderIter.__next__"],
        "cat": ["python_function"],
        "start_ns": [_us(19)],
        "dur_us": [125_000.0],
        "tid": [1],
    }
    assert schedule_gc.gc_pauses(_ctx(rank, overlap=overlap, runtime_api=cann, host_ops=loader)) == []


def test_recorded_gc_ignores_short_and_out_of_step_collections(rank):
    gc = {"start_ns": [_us(5), _us(50), _us(400)], "dur_us": [500.0, 3_000.0, 9_000.0]}
    overlap = {"kind": ["Free"], "start_ns": [_us(49)], "dur_us": [2_000.0]}
    (f,) = schedule_gc.gc_pauses(_ctx(rank, gc=gc, overlap=overlap))
    assert [r["duration_us"] for r in _evidence(f)] == [3000.0]
    assert f.estimated_gain_us == pytest.approx(1000.0)  # only the idle part of the pause
    assert "outside the profiled steps" in f.description


def test_sync_batchnorm_threshold(rank):
    def host(n):
        return {
            "name": ["SyncBatchNorm"] * n,
            "cat": ["cpu_op"] * n,
            "start_ns": [_us(1 + i) for i in range(n)],
            "dur_us": [300.0] * n,
            "tid": [1] * n,
        }

    (f,) = sync_batchnorm(_ctx(rank, host_ops=host(25)))
    assert _evidence(f)[0]["count"] == 25
    assert f.ranks == [rank[1].rank]
    assert sync_batchnorm(_ctx(rank, host_ops=host(5))) == []


def test_operator_dispatch_nan_durations(rank):
    cann = {
        "name": ["AscendCL@aclopCompileAndExecute"] * 25,
        "start_ns": [_us(1 + i) for i in range(25)],
        "dur_us": [np.nan] + [100.0] * 24,
        "tid": [1] * 25,
    }
    (f,) = operator_dispatch(_ctx(rank, runtime_api=cann))
    assert _evidence(f)[0]["count"] == 25
    assert _evidence(f)[0]["total_us"] == pytest.approx(2400.0)
    assert f.estimated_gain_us == 0.0  # no idle slices recorded


def test_fusible_operators_hand_built(rank):
    names, cores, starts, durs = [], [], [], []
    t = 0.0
    for _ in range(12):  # Mul-Add-Sigmoid with 300 µs launch gaps, 12 times, each after an AI_CPU op
        for name in ("Mul", "Add", "Sigmoid", "Cast"):
            names.append(name)
            cores.append("AI_CPU" if name == "Cast" else "AI_VECTOR_CORE")
            starts.append(_us(t))
            durs.append(20.0)
            t += 0.32
    kernels = {
        "step": [1] * len(names),
        "name": names,
        "accelerator_core": cores,
        "start_ns": starts,
        "duration_us": durs,
        "input_shapes": ["8,8"] * len(names),
        "output_shapes": ["8,8"] * len(names),
    }
    (f,) = schedule_fusible.fusible_operators(_ctx(rank, kernels=kernels))
    rows = _evidence(f)
    assert [r["sequence"] for r in rows] == ["Mul -> Add -> Sigmoid"]  # AI_CPU ops are barriers
    assert rows[0]["occurrences"] == 12 and rows[0]["host_bound"] is True
    assert f.estimated_gain_us == pytest.approx(12 * 2 * 300.0)  # 2 inner launch gaps per occurrence


def test_helpers():
    s, e = schedule_base.merge(np.array([5, 0, 2, 20]), np.array([8, 3, 6, 25]))
    assert s.tolist() == [0, 20] and e.tolist() == [8, 25]
    got = schedule_base.overlap_ns(
        np.array([0, 10]), np.array([10, 30]), np.array([5, 12]), np.array([15, 13])
    )
    assert got.tolist() == [5, 5]
    assert schedule_affinity.version_key("8.0.RC1") < schedule_affinity.version_key("8.0.0")
    assert schedule_affinity.version_key("7.0.0") < schedule_affinity.version_key("8.0.RC1")
    assert schedule_affinity.version_key("garbage") is None
    rx = schedule_affinity.pattern_regex("(permute|transpose)-(contiguous){0,1}-(reshape|view)")
    assert rx.search("-transpose--view-") and rx.search("-permute--contiguous--reshape-")
    assert not rx.search("-permute--add--view-")
    assert (
        schedule_base.user_frame("/x/site-packages/torch/a.py(1): f;\nmodel.py(3): fwd") == "model.py(3): fwd"
    )


def test_messages_have_the_same_keys_in_both_languages():
    for en in sorted((MESSAGES / "en").glob("schedule_*.json")):
        zh = MESSAGES / "zh" / en.name
        assert set(json.loads(en.read_text())) == set(json.loads(zh.read_text())), en.name


# --- corpus -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus_reports():
    return {
        name: run_analysis(corpus_path(path), options=SCHEDULE)
        for name, path in (("text", TEXT_CORPUS), ("db", DB_CORPUS))
    }


@pytest.mark.parametrize("export", ["text", "db"])
def test_corpus_host_sync(corpus_reports, export):
    f = _finding(corpus_reports[export], "schedule.host_sync")
    assert f.ranks == [0, 1]
    sites = {(r["op"], r["call_site"].rsplit("/", 1)[-1]): r for r in _evidence(f)}
    # 27 aten::item per step, but only 5 reach the device (4 from printing the loss meter at
    # main.py:485, 1 at main.py:359); plus the two blocking input copies (.to at main.py:350/351).
    assert sites[("aten::item", "main.py(485): __str__")]["count"] == 4
    assert sites[("aten::item", "main.py(359): train")]["count"] == 1
    assert sites[("aten::to", "main.py(350): train")]["count"] == 1
    assert sum(r["count"] for r in _evidence(f)) == 7
    # The device is the bottleneck (communication): the host waits long, the device idles little.
    assert f.priority == "low" and 500 < f.estimated_gain_us < 2000


@pytest.mark.parametrize("export", ["text", "db"])
def test_corpus_other_schedule_checks(corpus_reports, export):
    report = corpus_reports[export]
    dispatch = _finding(report, "schedule.operator_dispatch")
    assert _evidence(dispatch)[0]["count"] == 19  # 19 aclopCompileAndExecute in step 50
    affinity = _finding(report, "schedule.affinity_api")
    assert [r["affinity_api"] for r in _evidence(affinity)] == ["torch_npu.optim.NpuFusedSGD"]
    # No GC records, no long host-silent idle gap; no explicit syncs inside the step.
    checks = {f.check for f in report.findings}
    assert not checks & {"schedule.gc", "schedule.synchronize_stream", "schedule.sync_batchnorm"}


def test_reference_fixture_trace(tmp_path):
    trace = corpus_path(FIXTURE_TRACE)
    folder = rank_dir(tmp_path, "fixture_ascend_pt", trace="[]")
    shutil.copyfile(trace, folder / "ASCEND_PROFILER_OUTPUT" / "trace_view.json")
    report = run_analysis(folder, options=SCHEDULE)
    f = _finding(report, "schedule.host_sync")
    # 45 aten::item calls in ProfilerStep#1; only those with a blocking call inside count.
    count = sum(r["count"] for r in _evidence(f))
    assert 0 < count <= 45
    affinity = _finding(report, "schedule.affinity_api")
    assert "torch_npu.optim.NpuFusedAdam" in {r["affinity_api"] for r in _evidence(affinity)}


def test_nesting_is_exact_at_epoch_timestamps():
    """Profiles stamp ops in ns since the epoch (~1.7e18), where float64 steps 256 ns: an op starting
    100 ns before the previous one ends is inside it, and one ending 100 ns past the tolerance is not."""
    t0 = 1_733_000_000_123_456_789
    ops = pd.DataFrame(
        {
            "start_ns": pd.array([t0, t0 + 900], dtype="Int64"),
            "dur_us": [1.0, 1.0],  # the second starts 100 ns before the first ends
            "tid": [1, 1],
        }
    )
    top = schedule_base.top_level(ops)
    assert top["pos"].tolist() == [0]
    inner = pd.DataFrame(
        {
            "start_ns": pd.array([t0 + 10, t0 + 10, t0], dtype="Int64"),
            "dur_us": [1.89, 2.09, 1.0],  # 100 ns inside the 1 µs tolerance, 100 ns past it; no op
            "tid": [1, 1, 2],
        }
    )
    assert schedule_base.outermost_of(top, inner, tolerance_ns=1000).tolist() == [0, -1, -1]
