"""The cluster checks (cluster.slow_rank, cluster.slow_link, computation.pp_stage_imbalance) and
communication.exposed / overall.idle: on generated runs with the fault injected (numbers against
ground_truth.json), on clean controls, on hand-built tables for odd data, and on the real corpus."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from advisor.checks.cluster_slow_link import slow_link
from advisor.checks.cluster_slow_rank import loo_median, robust_z, slow_rank
from advisor.checks.common import priority_for
from advisor.checks.communication_exposed import collective_kind, communication_exposed
from advisor.checks.overall_idle import overall_idle
from advisor.checks.pp_stage_imbalance import pp_stage_imbalance
from advisor.checks.registry import ClusterContext, NotEvaluated, RankContext
from advisor.engine import run_analysis
from advisor.formats.schema import conform
from advisor.model import ProfileSet, RankInfo
from advisor.options import AnalysisOptions
from advisor.report.messages import Messages
from advisor.synth import SynthSpec, write_synth_profile
from tests.engine_fixtures import CORPUS, DB_CORPUS, TEXT_CORPUS, corpus_path

MY_CHECKS = (
    "cluster.slow_rank",
    "cluster.slow_link",
    "computation.pp_stage_imbalance",
    "communication.exposed",
    "overall.idle",
)
MODULES = (
    "cluster_slow_rank",
    "cluster_slow_link",
    "pp_stage_imbalance",
    "communication_exposed",
    "overall_idle",
)
CLUSTER_FIXTURE = CORPUS / "ascend-reference-fixtures" / "resource" / "advisor"


# --- generated runs ---------------------------------------------------------------------------


class Run:
    def __init__(self, path: Path, dimensions: tuple[str, ...] = ("communication",)) -> None:
        self.path = path
        self.truth = json.loads((path / "ground_truth.json").read_text())
        # overall and cluster checks always run; "communication" adds communication.exposed.
        self.report = run_analysis(path, options=AnalysisOptions(analysis_dimensions=dimensions))

    def findings(self, check_id: str) -> list:
        return [f for f in self.report.findings if f.check == check_id]

    def finding(self, check_id: str):
        found = self.findings(check_id)
        assert len(found) == 1, [f.title for f in self.report.findings]
        return found[0]

    def not_evaluated(self, check_id: str) -> list[str]:
        return [n.reason for n in self.report.not_evaluated if n.check == check_id]

    def expected(self, check_id: str) -> dict:
        return next(i for i in self.truth["injected"] if i["check"] == check_id)["expected"]


def _run(factory, name: str, dimensions: tuple[str, ...] = ("communication",), **spec) -> Run:
    path = factory.mktemp(name)
    write_synth_profile(path / "run", SynthSpec(**spec))
    return Run(path / "run", dimensions)


@pytest.fixture(scope="module")
def slow4(tmp_path_factory) -> Run:
    return _run(tmp_path_factory, "slow4", ranks=4, inject=("cluster.slow_rank",), seed=1)


@pytest.fixture(scope="module")
def slow4_db(tmp_path_factory) -> Run:
    return _run(tmp_path_factory, "slow4db", (), ranks=4, inject=("cluster.slow_rank",), seed=1, export="db")


@pytest.fixture(scope="module")
def link4(tmp_path_factory) -> Run:
    return _run(tmp_path_factory, "link4", (), ranks=4, inject=("cluster.slow_link",), seed=2)


@pytest.fixture(scope="module")
def link4_db(tmp_path_factory) -> Run:
    return _run(tmp_path_factory, "link4db", (), ranks=4, inject=("cluster.slow_link",), seed=2, export="db")


@pytest.fixture(scope="module")
def exposed2(tmp_path_factory) -> Run:
    return _run(tmp_path_factory, "exposed2", ranks=2, inject=("communication.exposed",), seed=3)


@pytest.fixture(scope="module")
def exposed2_db(tmp_path_factory) -> Run:
    return _run(
        tmp_path_factory, "exposed2db", ranks=2, inject=("communication.exposed",), seed=3, export="db"
    )


@pytest.fixture(scope="module")
def idle2(tmp_path_factory) -> Run:
    return _run(tmp_path_factory, "idle2", (), ranks=2, inject=("overall.idle",), seed=4)


@pytest.fixture(scope="module")
def clean4(tmp_path_factory) -> Run:
    return _run(tmp_path_factory, "clean4", ranks=4, seed=5)


@pytest.fixture(scope="module")
def pp4(tmp_path_factory) -> Run:
    # Stage 1 (ranks 2, 3) computes 35 % more than stage 0 (ranks 0, 1).
    return _run(
        tmp_path_factory,
        "pp4",
        (),
        ranks=4,
        pipeline_parallel=2,
        inject=("cluster.slow_rank",),
        inject_ranks=(2, 3),
        seed=6,
    )


def _rows(finding, name_part: str) -> list[dict]:
    evidence = next(e for e in finding.evidence if name_part in e.name)
    return [dict(zip(evidence.columns, row, strict=True)) for row in evidence.rows]


def _slow_rank_expectations(run: Run) -> tuple[int, float]:
    expected = run.expected("cluster.slow_rank")
    computing = {int(r): v for r, v in expected["computing_us_by_rank"].items()}
    slow = max(computing, key=computing.get)
    others = [v for r, v in computing.items() if r != slow]
    return slow, computing[slow] - statistics.median(others)


@pytest.mark.parametrize("run_name", ["slow4", "slow4_db"])
def test_slow_rank_found_with_its_cause_and_the_waiting_ranks(run_name, request):
    run: Run = request.getfixturevalue(run_name)
    finding = run.finding("cluster.slow_rank")
    slow, excess = _slow_rank_expectations(run)
    assert finding.ranks == [slow] == [3]
    assert finding.priority == "high"
    assert "computing" in finding.title and f"Rank {slow}" in finding.title
    rows = _rows(finding, "Busy time")
    roles = {(r["rank"], r["step"]): r["role"] for r in rows}
    assert {role for (rank, _), role in roles.items() if rank == slow} == {"slow"}
    assert {role for (rank, _), role in roles.items() if rank != slow} == {"waiting"}
    # Busy excess: the computing excess less the slow rank's slightly shorter free time.
    slow_rows = [r for r in rows if r["rank"] == slow]
    mean_excess = statistics.fmean(r["excess_us"] for r in slow_rows)
    assert mean_excess == pytest.approx(excess, rel=0.05)
    assert finding.estimated_gain_us == pytest.approx(excess, rel=0.06)
    assert all(r["robust_z"] > 3.5 for r in slow_rows)
    assert "Ranks 0, 1, 2 are not slow" in finding.description


def test_slow_rank_text_and_db_agree(slow4, slow4_db):
    text, db = slow4.finding("cluster.slow_rank"), slow4_db.finding("cluster.slow_rank")
    assert text.ranks == db.ranks
    assert text.estimated_gain_us == pytest.approx(db.estimated_gain_us, rel=0.01)


def test_pipeline_stages_compare_ranks_within_their_stage(pp4):
    # Ranks 2 and 3 compute 35 % more, but they are stage 1: the stage is heavy, no rank is slow.
    assert pp4.findings("cluster.slow_rank") == []
    finding = pp4.finding("computation.pp_stage_imbalance")
    assert finding.ranks == [2, 3]
    computing = {int(r): v for r, v in pp4.expected("cluster.slow_rank")["computing_us_by_rank"].items()}
    stage0, stage1 = max(computing[0], computing[1]), max(computing[2], computing[3])
    assert finding.estimated_gain_us == pytest.approx(stage1 - (stage0 + stage1) / 2, rel=0.05)
    assert finding.priority == "high"
    rows = _rows(finding, "pipeline stage")
    assert {r["stage"] for r in rows} == {0, 1}
    assert {r["slowest_rank"] for r in rows if r["stage"] == 1} <= {2, 3}


@pytest.mark.parametrize("run_name", ["link4", "link4_db"])
def test_slow_link_named_as_src_dst_with_its_bandwidth(run_name, request):
    run: Run = request.getfixturevalue(run_name)
    expected = run.expected("cluster.slow_link")
    finding = run.finding("cluster.slow_link")
    link = f"{expected['src']}→{expected['dst']}"
    assert link in finding.title and expected["transport"] in finding.title
    links = _rows(finding, "per link")
    slow = [r for r in links if r["slow"]]
    assert [(r["src"], r["dst"]) for r in slow] == [(expected["src"], expected["dst"])]
    assert slow[0]["bandwidth_gbps"] == pytest.approx(expected["bandwidth_gbps"], rel=0.01)
    assert slow[0]["peer_median_gbps"] == pytest.approx(expected["normal_gbps"], rel=0.01)
    ranks = {r["rank"]: r for r in _rows(finding, "per rank")}
    for rank, gbps in expected["sdma_bandwidth_gbps_by_rank"].items():
        assert ranks[int(rank)]["bandwidth_gbps"] == pytest.approx(gbps, rel=0.01)
    assert [r for r, rec in ranks.items() if rec["slow"]] == [expected["src"]]
    # Lost transfer: size / slow bandwidth - size / normal bandwidth, times the exposed share.
    lost = slow[0]["size_bytes"] / 1000 * (1 / expected["bandwidth_gbps"] - 1 / expected["normal_gbps"])
    assert slow[0]["lost_us"] == pytest.approx(lost, rel=0.02)
    assert 0 < finding.estimated_gain_us < lost
    assert sorted(finding.ranks) == sorted({expected["src"], expected["dst"]})


@pytest.mark.parametrize("run_name", ["exposed2", "exposed2_db"])
def test_exposed_communication_share_and_cause(run_name, request):
    run: Run = request.getfixturevalue(run_name)
    expected = run.expected("communication.exposed")
    finding = run.finding("communication.exposed")
    assert finding.ranks == [0, 1]
    assert finding.priority == "high"
    assert "mostly transfer" in finding.title
    worst = max(expected["not_overlapped_us_by_rank"].values())
    # Transfer dominates and the 60 ms of computing could hide all of it: the gain is all the exposure.
    assert finding.estimated_gain_us == pytest.approx(worst, rel=0.01)
    steps = _rows(finding, "per step")
    share = statistics.fmean(r["exposed_share"] for r in steps)
    assert share == pytest.approx(max(expected["share_of_step_by_rank"].values()), abs=0.01)
    kinds = _rows(finding, "per collective")
    assert [k["collective"] for k in kinds] == ["allReduce"]
    assert kinds[0]["wait_ratio"] < 0.1
    assert any("bucket_cap_mb" in s for s in finding.suggestions)


def test_exposed_points_at_waiting_when_a_peer_is_slow(slow4):
    finding = slow4.finding("communication.exposed")
    assert finding.ranks == [0, 1, 2]  # the slow rank itself does not wait
    assert "mostly waiting for peers" in finding.title
    assert any("cluster.slow_rank" in s for s in finding.suggestions)


def test_idle_share_and_gain(idle2):
    expected = idle2.expected("overall.idle")
    finding = idle2.finding("overall.idle")
    assert finding.ranks == [0, 1]
    assert finding.priority == "high"
    rows = _rows(finding, "Free time")
    worst = max(expected["free_us_by_rank"], key=expected["free_us_by_rank"].get)
    free = expected["free_us_by_rank"][worst]
    assert statistics.fmean(r["free_us"] for r in rows) == pytest.approx(free, rel=0.01)
    step = statistics.fmean(r["step_us"] for r in rows)
    assert finding.estimated_gain_us == pytest.approx(free - 0.02 * step, rel=0.01)
    assert any("TASK_QUEUE_ENABLE=2" in s for s in finding.suggestions)


def test_clean_run_is_quiet(clean4):
    for check_id in ("cluster.slow_rank", "cluster.slow_link", "communication.exposed", "overall.idle"):
        assert clean4.findings(check_id) == [], check_id
        assert clean4.not_evaluated(check_id) == [], check_id
    assert clean4.findings("computation.pp_stage_imbalance") == []
    assert "no pipeline-parallel stages" in clean4.not_evaluated("computation.pp_stage_imbalance")[0]


def test_chinese_messages_have_the_same_keys():
    root = Path(__file__).resolve().parents[1] / "advisor" / "report" / "messages"
    for module in MODULES:
        en = json.loads((root / "en" / f"{module}.json").read_text(encoding="utf-8"))
        zh = json.loads((root / "zh" / f"{module}.json").read_text(encoding="utf-8"))
        assert set(en) == set(zh), module
        for key, value in en.items():
            assert type(value) is type(zh[key]), key
            if isinstance(value, list):
                assert len(value) == len(zh[key]), key


def test_chinese_report_renders(slow4):
    report = run_analysis(
        slow4.path, options=AnalysisOptions(analysis_dimensions=("communication",)), language="zh"
    )
    mine = [f for f in report.findings if f.check in MY_CHECKS]
    assert {f.check for f in mine} == {"cluster.slow_rank", "communication.exposed"}
    assert all("Rank" in f.title or "通信" in f.title for f in mine)


# --- hand-built tables --------------------------------------------------------------------------

M = Messages("en")


def _step_trace(rows: list[tuple]) -> pd.DataFrame:
    """rows: (step, computing, not_overlapped, free[, overlapped])"""
    frame = pd.DataFrame(
        [
            {
                "step": r[0],
                "computing_us": r[1],
                "communication_not_overlapped_us": r[2],
                "free_us": r[3],
                "overlapped_us": r[4] if len(r) > 4 else 0.0,
                "communication_us": r[2] + (r[4] if len(r) > 4 else 0.0),
            }
            for r in rows
        ]
    )
    return conform(frame, "step_trace")


def _profile(ranks: list[int], stages: list[tuple[int, ...]] | None = None) -> ProfileSet:
    infos = [RankInfo(r, Path(f"/nowhere/rank{r}"), "ascend_text") for r in ranks]
    return ProfileSet(Path("/nowhere"), "ascend_text", infos, [1], stages=stages or [])


def _cluster(tables: dict[int, dict[str, pd.DataFrame]], stages=None) -> ClusterContext:
    return ClusterContext(_profile(sorted(tables), stages), tables, AnalysisOptions(), M)


def _rank_ctx(tables: dict[str, pd.DataFrame], rank: int = 0) -> RankContext:
    profile = _profile([rank])
    return RankContext(profile, profile.ranks[0], tables, AnalysisOptions(), M)


def test_loo_median_is_the_median_of_the_others():
    gen = np.random.default_rng(0)
    for n in (2, 3, 4, 7, 10):
        values = gen.normal(size=n)
        values[0] = values[1]  # ties
        expected = [np.median(np.delete(values, i)) for i in range(n)]
        assert np.allclose(loo_median(values), expected)
    assert np.isnan(loo_median(np.array([5.0]))).all()


def test_robust_z_flags_only_the_outlier():
    values = np.array([60.0, 60.2, 59.9, 81.0])
    z = robust_z(values, loo_median(values))
    assert z[3] > 3.5 and (np.abs(z[:3]) < 3.5).all()
    same = np.array([5.0, 5.0, 5.0, 6.0])
    assert np.isinf(robust_z(same, loo_median(same))[3])


def test_slow_rank_needs_two_ranks_and_data():
    with pytest.raises(NotEvaluated, match="at least 2 ranks"):
        slow_rank(_cluster({0: {"step_trace": _step_trace([(1, 10.0, 1.0, 1.0)])}}))
    empty = conform(pd.DataFrame(), "step_trace")
    with pytest.raises(NotEvaluated, match="step_trace"):
        slow_rank(_cluster({0: {"step_trace": empty}, 1: {"step_trace": empty}}))
    nan_rows = _step_trace([(1, float("nan"), 1.0, 1.0)])
    with pytest.raises(NotEvaluated):
        slow_rank(_cluster({0: {"step_trace": nan_rows}, 1: {"step_trace": nan_rows}}))


def test_slow_rank_two_ranks_material_gap_only():
    fast = _step_trace([(1, 60_000.0, 21_000.0, 1_000.0), (2, 60_000.0, 21_000.0, 1_000.0)])
    slow = _step_trace([(1, 80_000.0, 1_000.0, 1_000.0), (2, 80_000.0, 1_000.0, 1_000.0)])
    [finding] = slow_rank(_cluster({0: {"step_trace": fast}, 1: {"step_trace": slow}}))
    assert finding.ranks == [1]
    assert finding.estimated_gain_us == pytest.approx(20_000.0)
    assert "slower of the two" in finding.description
    jitter = _step_trace([(1, 61_000.0, 20_000.0, 1_000.0), (2, 60_500.0, 20_500.0, 1_000.0)])
    assert slow_rank(_cluster({0: {"step_trace": fast}, 1: {"step_trace": jitter}})) == []


def test_slow_rank_few_ranks_never_names_every_rank():
    """2-3 ranks: jitter makes each rank "slow" on some step; only a rank slower on average and on
    most steps is named, with the gain it measures."""

    def steps(free: list[float]) -> pd.DataFrame:
        return _step_trace([(i + 1, 60_000.0, 1_000.0, f) for i, f in enumerate(free)])

    # Rank 0 is 10 ms late in step 1, rank 1 6 ms late in steps 2 and 3: rank 1 only.
    tables = {
        0: {"step_trace": steps([11_000.0, 1_000.0, 1_000.0])},
        1: {"step_trace": steps([1_000.0, 7_000.0, 7_000.0])},
    }
    [finding] = slow_rank(_cluster(tables))
    assert finding.ranks == [1] and finding.priority == priority_for(finding.share_of_step)
    # Taking turns: nobody is slower on most steps.
    turns = {
        0: {"step_trace": steps([9_000.0, 1_000.0] * 2)},
        1: {"step_trace": steps([1_000.0, 9_000.0] * 2)},
    }
    assert slow_rank(_cluster(turns)) == []
    # Three ranks, two of them late on different steps: at most one is named.
    three = {**tables, 2: {"step_trace": steps([1_000.0, 1_000.0, 1_000.0])}}
    found = slow_rank(_cluster(three))
    assert len(found) <= 1 and all(len(f.ranks) == 1 for f in found)


def test_slow_rank_free_time_is_named_as_host_dispatch():
    normal = [(1, 50_000.0, 12_000.0, 2_000.0)]
    late = [(1, 50_000.0, 2_000.0, 12_000.0)]
    tables = {r: {"step_trace": _step_trace(late if r == 2 else normal)} for r in range(4)}
    [finding] = slow_rank(_cluster(tables))
    assert finding.ranks == [2]
    assert "free time" in finding.title
    assert any("TASK_QUEUE_ENABLE=2" in s for s in finding.suggestions)


def test_slow_rank_compares_within_pipeline_stages():
    light = [(1, 60_000.0, 1_000.0, 1_000.0)]
    heavy = [(1, 80_000.0, 1_000.0, 1_000.0)]
    tables = {r: {"step_trace": _step_trace(heavy if r >= 2 else light)} for r in range(4)}
    assert slow_rank(_cluster(tables, stages=[(0, 1), (2, 3)])) == []
    [finding] = slow_rank(_cluster(tables))  # without stages, ranks 2 and 3 stand out
    assert finding.ranks == [2, 3]


def test_zero_durations_give_no_finding_and_no_crash():
    zero = _step_trace([(1, 0.0, 0.0, 0.0)])
    tables = {r: {"step_trace": zero} for r in range(3)}
    assert slow_rank(_cluster(tables)) == []
    with pytest.raises(NotEvaluated):
        overall_idle(_rank_ctx({"step_trace": zero}))
    with pytest.raises(NotEvaluated):
        communication_exposed(
            _rank_ctx({"step_trace": zero, "comm_ops": conform(pd.DataFrame(), "comm_ops")})
        )


def test_pp_stage_imbalance_needs_stages():
    tables = {r: {"step_trace": _step_trace([(1, 60_000.0, 1_000.0, 1_000.0)])} for r in range(2)}
    with pytest.raises(NotEvaluated, match="no pipeline-parallel stages"):
        pp_stage_imbalance(_cluster(tables))
    # Stages recorded but only one of them profiled: nothing to compare.
    with pytest.raises(NotEvaluated, match="two pipeline stages"):
        pp_stage_imbalance(_cluster(tables, stages=[(0, 1), (2, 3)]))


def test_pp_bubble_alone_is_reported():
    row = [(1, 60_000.0, 1_000.0, 1_000.0)]
    tables = {}
    for r in range(2):
        frame = _step_trace(row)
        frame["bubble_us"] = 15_000.0
        frame["free_us"] = 16_000.0
        tables[r] = {"step_trace": frame}
    [finding] = pp_stage_imbalance(_cluster(tables, stages=[(0,), (1,)]))
    assert "bubble" in finding.title
    assert finding.estimated_gain_us == pytest.approx(7_500.0)
    assert finding.ranks == []


def _bandwidth(rank: int, transit: list[float], size: float = 48e6, transport: str = "HCCS") -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "step": [1] * len(transit),
            "kind": "collective",
            "op_name": [f"hcom_allReduce__1_{i}_1" for i in range(len(transit))],
            "group": "g",
            "transport": transport,
            "size_bytes": size,
            "transit_us": transit,
        }
    )
    return conform(frame, "comm_bandwidth")


def test_slow_link_guards_zero_transit_and_empty_tables():
    step = _step_trace([(1, 60_000.0, 1_000.0, 1_000.0, 3_000.0)])
    matrix = conform(pd.DataFrame(), "comm_matrix")
    tables = {
        r: {"step_trace": step, "comm_bandwidth": _bandwidth(r, [2_666.0, 0.0]), "comm_matrix": matrix}
        for r in range(3)
    }
    assert slow_link(_cluster(tables)) == []  # zero transit rows skipped, all ranks alike
    empty = conform(pd.DataFrame(), "comm_bandwidth")
    nothing = {r: {"step_trace": step, "comm_bandwidth": empty, "comm_matrix": matrix} for r in range(2)}
    with pytest.raises(NotEvaluated, match="no transfer"):
        slow_link(_cluster(nothing))
    with pytest.raises(NotEvaluated, match="at least 2 ranks"):
        slow_link(_cluster({0: tables[0]}))


def test_slow_link_rank_view_without_matrix():
    step = _step_trace([(1, 60_000.0, 4_000.0, 1_000.0, 4_000.0)])
    matrix = conform(pd.DataFrame(), "comm_matrix")
    tables = {
        r: {
            "step_trace": step,
            "comm_bandwidth": _bandwidth(r, [8_000.0 if r == 1 else 2_666.0] * 3),
            "comm_matrix": matrix,
        }
        for r in range(4)
    }
    [finding] = slow_link(_cluster(tables))
    assert finding.ranks == [1]
    assert "Rank 1" in finding.title and "HCCS" in finding.title
    # 3 x (8000 - 2666) µs lost, half of the communication exposed.
    assert finding.estimated_gain_us == pytest.approx(3 * (8_000.0 - 2_666.0) * 0.5, rel=0.01)


def test_exposed_without_ops_keeps_the_upper_bound():
    step = _step_trace([(1, 20_000.0, 30_000.0, 1_000.0, 2_000.0)])
    ops = conform(pd.DataFrame(), "comm_ops")
    [finding] = communication_exposed(_rank_ctx({"step_trace": step, "comm_ops": ops}))
    assert finding.estimated_gain_us == pytest.approx(30_000.0)
    assert "breakdown unavailable" in finding.title
    low = _step_trace([(1, 60_000.0, 3_000.0, 1_000.0)])
    assert communication_exposed(_rank_ctx({"step_trace": low, "comm_ops": ops})) == []


def test_exposed_transfer_beyond_what_computing_can_hide():
    # 30 ms exposed, all of it transfer, but only 20 - 2 = 18 ms of computing could hide it.
    step = _step_trace([(1, 20_000.0, 30_000.0, 1_000.0, 2_000.0)])
    ops = conform(
        pd.DataFrame(
            {
                "step": [1],
                "op_name": ["hcom_allGather__5_0_1"],
                "group": ["g"],
                "elapse_us": [32_000.0],
                "transit_us": [32_000.0],
                "wait_us": [0.0],
                "idle_us": [float("nan")],  # derived: elapse - transit - wait
            }
        ),
        "comm_ops",
    )
    [finding] = communication_exposed(_rank_ctx({"step_trace": step, "comm_ops": ops}))
    assert finding.estimated_gain_us == pytest.approx(18_000.0)
    assert _rows(finding, "per collective")[0]["collective"] == "allGather"


def test_collective_kind():
    names = pd.Series(
        ["hcom_allReduce__586_0_1", "hcom_send__1_2", "hcom_reduceScatter__x", "broadcast", None]
    )
    assert list(collective_kind(names)) == ["allReduce", "send", "reduceScatter", "broadcast", "?"]


def test_idle_below_threshold_and_nan_rows():
    busy = _step_trace([(1, 60_000.0, 1_000.0, 2_000.0), (2, float("nan"), 1.0, 50_000.0)])
    assert overall_idle(_rank_ctx({"step_trace": busy})) == []  # the NaN row is left out
    with pytest.raises(NotEvaluated):
        overall_idle(_rank_ctx({"step_trace": conform(pd.DataFrame(), "step_trace")}))


# --- real data ----------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["text", "db"])
def corpus(request) -> Run:
    path = corpus_path(TEXT_CORPUS if request.param == "text" else DB_CORPUS)
    run = Run.__new__(Run)
    run.path, run.truth = path, {}
    run.report = run_analysis(path, options=AnalysisOptions(analysis_dimensions=("communication",)))
    return run


def test_corpus_two_ranks_are_balanced_and_links_alike(corpus):
    # Busy time (computing + free) differs by < 1 ms between the ranks (< 1 % of the 130 ms step);
    # HCCS bandwidth is 15.5-15.8 GB/s on both: no slow rank, no slow link.
    assert corpus.findings("cluster.slow_rank") == []
    assert corpus.not_evaluated("cluster.slow_rank") == []
    assert corpus.findings("cluster.slow_link") == []
    assert corpus.not_evaluated("cluster.slow_link") == []
    assert "no pipeline-parallel stages" in corpus.not_evaluated("computation.pp_stage_imbalance")[0]


def test_corpus_exposed_communication_dominates(corpus):
    # step_trace: ~100 ms of 130-137 ms not overlapped; the ops' time is mostly idle (73 ms of the
    # first all-reduce is neither transfer nor Notify wait).
    finding = corpus.finding("communication.exposed")
    assert finding.ranks == [0, 1]
    assert finding.priority == "high"
    steps = _rows(finding, "per step")
    assert len(steps) == 1 and steps[0]["step"] == 50
    assert 0.70 <= steps[0]["exposed_share"] <= 0.76
    assert "mostly idle inside the ops" in finding.title
    kinds = _rows(finding, "per collective")
    assert kinds[0]["collective"] == "allReduce" and kinds[0]["ops_per_step"] == 4


def test_corpus_device_idle_a_fifth_of_the_step(corpus):
    finding = corpus.finding("overall.idle")
    assert finding.ranks == [0, 1]
    row = _rows(finding, "Free time")[0]
    assert 0.18 <= row["free_share"] <= 0.21
    assert finding.estimated_gain_us == pytest.approx(row["free_us"] - 0.02 * row["step_us"], rel=1e-3)


def test_reference_cluster_output_uneven_host_time():
    # cluster_step_trace_time.csv of 8 ranks: computing within 80-82 ms everywhere, free from 893 ms
    # (rank 5) to 1489 ms (rank 1); ranks with the least free time wait the longest.
    path = corpus_path(CLUSTER_FIXTURE)
    report = run_analysis(path, options=AnalysisOptions(analysis_dimensions=("communication",)))
    [finding] = [f for f in report.findings if f.check == "cluster.slow_rank"]
    assert finding.ranks == [1, 3, 6]
    assert "free time" in finding.title
    roles = {r["rank"]: r["role"] for r in _rows(finding, "Busy time")}
    assert {r for r, role in roles.items() if role == "waiting"} == {0, 2, 4, 5, 7}
    # The busiest rank (1: 1569 ms) against the busiest of the others (4: 1212 ms).
    assert finding.estimated_gain_us == pytest.approx(1_569_045.805 - 1_212_455.45, rel=1e-4)
