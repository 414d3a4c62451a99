"""environment.variables and the comparison checks (kernel, api, regression)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from advisor.checks import comparison as cmp
from advisor.checks import environment as env
from advisor.checks.common import recorded_env
from advisor.checks.registry import ClusterContext, ComparisonContext, NotEvaluated, running
from advisor.engine import run_analysis
from advisor.formats import discover, load_table
from advisor.formats.ascend_common.metadata import load_metadata
from advisor.formats.schema import conform
from advisor.model import ProfileSet, RankInfo
from advisor.options import AnalysisOptions
from advisor.report.messages import Messages
from advisor.synth import SynthSpec, write_synth_profile
from advisor.synth.faults import BAD_ENV

from .engine_fixtures import DB_CORPUS, TEXT_CORPUS, corpus_path

# Only the always-run dimensions (overall, cluster, comparison) plus a cheap one: faster runs.
FAST = AnalysisOptions(analysis_dimensions=("memory",))
M = Messages("en")


def _finding(report, check_id: str):
    found = [f for f in report.findings if f.check == check_id]
    return found[0] if found else None


def _rows(evidence) -> list[dict]:
    return [dict(zip(evidence.columns, row, strict=True)) for row in evidence.rows]


# ---------------------------------------------------------------- generated profiles


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("envcmp")
    specs = {
        "clean": SynthSpec(ranks=2, seed=1),
        "clean2": SynthSpec(ranks=2, seed=2),
        "env": SynthSpec(ranks=2, seed=3, inject=("environment.variables",)),
        "env_db": SynthSpec(ranks=2, seed=3, inject=("environment.variables",), export="db"),
        "aicpu": SynthSpec(ranks=2, seed=11, inject=("computation.aicpu",)),
        "dispatch": SynthSpec(ranks=2, seed=12, inject=("schedule.operator_dispatch",)),
        "slow": SynthSpec(ranks=2, seed=13, inject=("cluster.slow_rank",)),
    }
    paths = {name: write_synth_profile(root / name, spec) for name, spec in specs.items()}
    # The db export without profiler_metadata.json: ENV must come from the db's META_DATA.
    for meta in Path(paths["env_db"]).glob("*/profiler_metadata.json"):
        meta.unlink()
    return {name: Path(p) for name, p in paths.items()}


def _ground_truth(path: Path, check_id: str) -> dict:
    truth = json.loads((path / "ground_truth.json").read_text())
    return next(item for item in truth["injected"] if item["check"] == check_id)


def test_metadata_env_falls_back_to_the_db(synth):
    # Without profiler_metadata.json a db rank's ENV comes from META_DATA, for every reader of the
    # metadata (the environment check, and schedule.synchronize_stream's ASCEND_LAUNCH_BLOCKING).
    ranks = discover(synth["env_db"]).ranks
    assert not list(synth["env_db"].glob("*/profiler_metadata.json"))
    for rank in ranks:
        recorded = load_metadata(rank).env
        assert {k: recorded[k] for k in BAD_ENV} == BAD_ENV
    clean = load_metadata(discover(synth["clean"]).ranks[0]).env  # a text export: its own file
    assert clean["ASCEND_GLOBAL_LOG_LEVEL"] == "3" and clean.get("ASCEND_LAUNCH_BLOCKING") != "1"


@pytest.mark.parametrize("name", ["env", "env_db"])
def test_env_fault_found(synth, name):
    report = run_analysis(synth[name], options=FAST)
    finding = _finding(report, "environment.variables")
    assert finding is not None
    truth = _ground_truth(synth[name], "environment.variables")["expected"]["variables"]
    assert truth == BAD_ENV
    rows = {(r["variable"], r["value"]): r for r in _rows(finding.evidence[0])}
    # Every injected value is reported as recorded, on both ranks.
    for variable, value in truth.items():
        if variable in {r.name for r in env.load_rules()}:
            assert rows[(variable, value)]["ranks"] == "0, 1"
    status = {variable: rows[(variable, value)]["status"] for variable, value in truth.items()}
    assert status["ASCEND_LAUNCH_BLOCKING"] == "change"
    assert status["ASCEND_GLOBAL_LOG_LEVEL"] == "change"
    assert status["HCCL_ALGO"] == "change"
    # The synthetic model runs static shapes and few signatures: the caches are not advised.
    assert status["HOST_CACHE_CAPACITY"] == "not needed by this profile"  # OP State: static
    assert status["ACLNN_CACHE_LIMIT"] == "not needed by this profile"
    # High-floor settings, but what they cost is measured where it shows (synchronous launches, idle
    # time): the advice has no gain of its own and is at most medium.
    assert finding.priority == "medium"
    assert finding.estimated_gain_us is None and finding.gain_basis is None
    assert finding.ranks == [0, 1]
    assert "ASCEND_LAUNCH_BLOCKING" in finding.title
    assert any("ASCEND_LAUNCH_BLOCKING=0" in s for s in finding.suggestions)


def test_env_clean_control(synth):
    report = run_analysis(synth["clean"], options=FAST)
    assert _finding(report, "environment.variables") is None
    assert not [n for n in report.not_evaluated if n.check == "environment.variables"]


def test_env_messages_zh(synth):
    report = run_analysis(synth["env"], options=FAST, language="zh")
    finding = _finding(report, "environment.variables")
    assert finding is not None and "环境变量" in finding.title


# ---------------------------------------------------------------- environment units


@pytest.mark.parametrize(
    ("name", "value", "flagged"),
    [
        ("ASCEND_GLOBAL_LOG_LEVEL", "1", True),
        ("ASCEND_GLOBAL_LOG_LEVEL", "0", True),
        ("ASCEND_GLOBAL_LOG_LEVEL", "3", False),
        ("ASCEND_GLOBAL_LOG_LEVEL", "4", False),  # the reference flags "null" logging; no cost
        ("ASCEND_GLOBAL_LOG_LEVEL", "", False),
        ("ASCEND_GLOBAL_LOG_LEVEL", "debug", False),
        ("ASCEND_LAUNCH_BLOCKING", "1", True),
        ("ASCEND_LAUNCH_BLOCKING", " 0 ", False),
        ("HCCL_ALGO", "level0:NA;level1:ring", True),
        ("HCCL_ALGO", "", False),
        ("HCCL_RDMA_TC", "132", False),
        ("HCCL_RDMA_TC", "133", True),
        ("HCCL_RDMA_TC", "260", True),
        ("HCCL_RDMA_TC", "", False),
        ("HCCL_RDMA_SL", "9", True),
        ("HCCL_RDMA_SL", "x", True),
        ("HCCL_RDMA_SL", "3", False),
        ("HOST_CACHE_CAPACITY", "", True),
        ("HOST_CACHE_CAPACITY", "0", True),
        ("HOST_CACHE_CAPACITY", "20", False),
        ("PYTORCH_NPU_ALLOC_CONF", "", True),
        ("PYTORCH_NPU_ALLOC_CONF", "max_split_size_mb:128, expandable_segments:true", False),
        ("ASCEND_ENHANCE_ENABLE", "0", False),
    ],
)
def test_value_flagged(name, value, flagged):
    rule = next(r for r in env.load_rules() if r.name == name)
    assert env.value_flagged(rule, value) is flagged


def _no_facts(rule, rank, value):
    raise AssertionError("no data fact should be asked for")


def _trace(free_us: float, computing_us: float = 1000.0) -> pd.DataFrame:
    return conform(
        pd.DataFrame(
            {
                "step": [1, 2],
                "computing_us": [computing_us] * 2,
                "communication_not_overlapped_us": [0.0, 0.0],
                "free_us": [free_us, free_us],
            }
        ),
        "step_trace",
    )


def test_env_rank_differences():
    clean = {"ASCEND_LAUNCH_BLOCKING": "0", "ASCEND_GLOBAL_LOG_LEVEL": "3", "MY_VAR": "a"}
    envs = {0: clean, 1: {**clean, "ASCEND_LAUNCH_BLOCKING": "1"}, 2: {**clean, "MY_VAR": "b"}}
    [finding] = env_findings(M, envs, [3], env.load_rules(), _no_facts)
    # Launch blocking is advised at the rule's floor, capped: its cost is measured elsewhere.
    assert finding.priority == "medium" and finding.estimated_gain_us is None
    assert finding.ranks == [0, 1, 2]  # rank 1 flagged; ranks 0-2 disagree on ASCEND_LAUNCH_BLOCKING
    differ = _rows(finding.evidence[1])
    assert {(r["variable"], r["value"], r["ranks"]) for r in differ} == {
        ("ASCEND_LAUNCH_BLOCKING", "0", "0, 2"),
        ("ASCEND_LAUNCH_BLOCKING", "1", "1"),
    }  # MY_VAR differs too, but has no bearing on performance we know of
    assert "Rank(s) 3 recorded no environment" in finding.description


def test_env_only_unknown_variables_differ():
    envs = {
        0: {"MY_VAR": "a", "ASCEND_LAUNCH_BLOCKING": "0"},
        1: {"MY_VAR": "b", "ASCEND_LAUNCH_BLOCKING": "0"},
    }
    assert env_findings(M, envs, [], env.load_rules(), _no_facts) == []


def test_env_known_variable_differs_without_harm():
    envs = {0: {"ASCEND_GLOBAL_LOG_LEVEL": "3"}, 1: {"ASCEND_GLOBAL_LOG_LEVEL": "4"}}
    [finding] = env_findings(M, envs, [], env.load_rules(), _no_facts)
    assert finding.priority == "low" and finding.estimated_gain_us is None
    assert finding.ranks == [0, 1]


def test_env_log_level_warning_is_low_and_without_gain():
    envs = {0: {"ASCEND_GLOBAL_LOG_LEVEL": "2"}}
    [finding] = env_findings(M, envs, [], env.load_rules(), _no_facts)
    assert finding.priority == "low" and finding.estimated_gain_us is None


def test_env_fact_decides():
    envs = {0: {"HOST_CACHE_CAPACITY": "0"}, 1: {"HOST_CACHE_CAPACITY": "0"}}
    asked = []

    def facts(rule, rank, value):
        asked.append((rule.name, rank, value))
        return True, "dynamic!"

    [finding] = env_findings(M, envs, [], env.load_rules(), facts)
    assert asked == [("HOST_CACHE_CAPACITY", 0, "0")]  # once per value, on its first rank
    assert finding.priority == "low" and "dynamic!" in finding.description
    assert any("HOST_CACHE_CAPACITY=20" in s for s in finding.suggestions)
    assert env_findings(M, envs, [], env.load_rules(), lambda r, k, v: (None, "?")) == []
    assert env_findings(M, envs, [], env.load_rules(), lambda r, k, v: (False, "no")) == []


def env_findings(*args) -> list:
    """The check's findings for given environments, made as the running check makes them."""
    with running(env.CHECK_ID):
        return env.env_findings(*args)


def _facts_with(tables: dict[str, pd.DataFrame | None]) -> env.ProfileFacts:
    return env.ProfileFacts({0: {name: frame for name, frame in tables.items() if frame is not None}}, M)


def _kernels(**columns) -> pd.DataFrame:
    return conform(pd.DataFrame(columns), "kernels")


def test_env_facts_on_odd_tables():
    rules = {r.name: r for r in env.load_rules()}
    facts = _facts_with({"kernels": _kernels(op_state=[None, None]), "memory_record": None})
    assert facts(rules["HOST_CACHE_CAPACITY"], 0, "")[0] is None  # no OP State: unknown, not "static"
    assert facts(rules["ACLNN_CACHE_LIMIT"], 0, "")[0] is None  # no input shapes
    assert facts(rules["PYTORCH_NPU_ALLOC_CONF"], 0, "")[0] is None  # no memory table
    empty = _facts_with(
        {
            "kernels": _kernels(op_state=[]),
            "memory_record": conform(
                pd.DataFrame({"component": ["PTA"], "allocated_bytes": [0.0], "reserved_bytes": [0.0]}),
                "memory_record",
            ),
        }
    )
    assert empty(rules["HOST_CACHE_CAPACITY"], 0, "")[0] is None
    assert empty(rules["PYTORCH_NPU_ALLOC_CONF"], 0, "")[0] is None  # zero reservation: no share
    dynamic = _facts_with(
        {
            "kernels": _kernels(
                op_state=["dynamic", "static", None], op_type=["A", "B", "C"], input_shapes=["1", "2", "3"]
            )
        }
    )
    holds, text = dynamic(rules["HOST_CACHE_CAPACITY"], 0, "")
    assert holds is True and "1 of 2 kernels" in text
    holds, text = dynamic(rules["ACLNN_CACHE_LIMIT"], 0, "4")  # 3 signatures >= half of 4
    assert holds is True and "3 distinct" in text
    assert dynamic(rules["ACLNN_CACHE_LIMIT"], 0, "")[0] is False  # default 10000
    memory = conform(
        pd.DataFrame(
            {
                "component": ["PTA", "PTA", "APP"],
                "allocated_bytes": [50.0, 60.0, None],
                "reserved_bytes": [100.0, 100.0, 500.0],
            }
        ),
        "memory_record",
    )
    holds, text = _facts_with({"memory_record": memory})(rules["PYTORCH_NPU_ALLOC_CONF"], 0, "")
    assert holds is True and "40%" in text  # 1 - 60/100, from the framework allocator (PTA) only


def test_env_not_evaluated_without_metadata(tmp_path):
    folder = tmp_path / "r0_ascend_pt"
    folder.mkdir()
    rank = RankInfo(rank=0, path=folder, format="ascend_text")
    profile = ProfileSet(root=tmp_path, format="ascend_text", ranks=[rank], steps=[])

    def ctx() -> ClusterContext:
        tables = {"step_trace": _trace(1.0), "environment": load_table("environment", rank, use_cache=False)}
        return ClusterContext(profile, {0: tables}, AnalysisOptions(), M)

    with pytest.raises(NotEvaluated, match="ENV_VARIABLES"):
        env.environment_variables(ctx())
    (folder / "profiler_metadata.json").write_text(
        json.dumps({"ENV_VARIABLES": {"ASCEND_LAUNCH_BLOCKING": "1"}})
    )
    [finding] = env.environment_variables(ctx())
    assert finding.priority == "medium" and finding.ranks == [0]
    assert finding.estimated_gain_us is None


# ---------------------------------------------------------------- comparison units


def _rank(rank: int) -> RankInfo:
    return RankInfo(rank=rank, path=Path(f"/nonexistent/rank{rank}"), format="ascend_text")


def _ctx(mode: str, target: dict, baseline: dict, target_rank: int = 3, baseline_rank: int = 0):
    profile = ProfileSet(root=Path("/nonexistent"), format="ascend_text", ranks=[], steps=[])
    return ComparisonContext(
        mode=mode,
        target=profile,
        target_rank=_rank(target_rank),
        target_tables=target,
        baseline=profile,
        baseline_rank=_rank(baseline_rank),
        baseline_tables=baseline,
        options=AnalysisOptions(),
        messages=M,
    )


def _kernel_rows(steps: list[int | None], conv_us: float, extra: int = 0) -> pd.DataFrame:
    rows = []
    for step in steps:
        rows += [
            {
                "step": step,
                "name": "Conv2D1",
                "op_type": "Conv2D",
                "input_shapes": "8,3",
                "duration_us": conv_us,
            },
            {
                "step": step,
                "name": "Conv2D1",
                "op_type": "Conv2D",
                "input_shapes": "8,3",
                "duration_us": conv_us,
            },
            {"step": step, "name": "Add", "op_type": "Add", "input_shapes": "8", "duration_us": 100.0},
            {
                "step": step,
                "name": "hcom_allReduce__5_0_1",
                "op_type": "hcom_allReduce_",
                "accelerator_core": "HCCL",
                "duration_us": 5000.0 + (step or 0),
            },
        ]
        rows += [
            {"step": step, "name": "Cast", "op_type": "Cast", "input_shapes": "8", "duration_us": 50.0}
        ] * extra
    return conform(pd.DataFrame(rows), "kernels")


def test_n_steps():
    assert cmp.n_steps(_kernel_rows([1, 2, 3], 1.0)) == 3
    assert cmp.n_steps(_kernel_rows([1, None], 1.0)) == 2  # rows without a step are one more step
    assert cmp.n_steps(_kernel_rows([None], 1.0)) == 1
    assert cmp.n_steps(_kernel_rows([], 1.0)) == 1


def test_kernel_comparison_per_step():
    # The target profiled 2 steps, the baseline 3: per-step figures must compare equal work.
    target = _kernel_rows([5, 6], conv_us=300.0, extra=2)
    baseline = _kernel_rows([1, 2, 3], conv_us=200.0)
    ctx = _ctx(
        "ranks",
        {"kernels": target, "step_trace": _trace(0.0, 10_000.0)},
        {"kernels": baseline, "step_trace": _trace(0.0)},
    )
    [finding] = cmp.comparison_kernel(ctx)
    rows = {r["name"]: r for r in _rows(finding.evidence[0])}
    assert set(rows) == {"Conv2D1", "Add", "Cast"}  # communication kernels are not compute kernels
    conv, cast, add = rows["Conv2D1"], rows["Cast"], rows["Add"]
    # No baseline run: the sides are the slowest and the fastest rank, never "target" and "baseline".
    assert not any(c.startswith(("target_", "baseline_")) for c in finding.evidence[0].columns)
    assert finding.evidence[0].columns[3:6] == ["diff_total_us_per_step", "ratio_total", "diff_avg_us"]
    assert conv["slowest_calls_per_step"] == 2 and conv["fastest_calls_per_step"] == 2
    assert conv["diff_total_us_per_step"] == pytest.approx(200.0)  # 2 calls x +100 µs
    assert conv["ratio_total"] == pytest.approx(1.5)
    assert conv["diff_avg_us"] == pytest.approx(100.0)
    assert (
        cast["fastest_calls_per_step"] == 0 and cast["fastest_avg_us"] is None and cast["ratio_total"] is None
    )
    assert cast["diff_total_us_per_step"] == pytest.approx(100.0)
    assert add["diff_total_us_per_step"] == pytest.approx(0.0)
    assert [r[0] for r in finding.evidence[0].rows] == ["Conv2D1", "Cast", "Add"]  # most time lost first
    assert finding.estimated_gain_us == pytest.approx(300.0)
    assert finding.priority == "medium"  # 300 µs of a 10 ms step: 3 %
    assert finding.title.startswith("slowest rank 3 loses") and finding.title.endswith(
        "against fastest rank 0"
    )
    assert finding.evidence[0].name == "Kernels: slowest rank 3 vs fastest rank 0"
    assert finding.ranks == [3]
    assert "slowest rank 3 profiled 2 step(s), fastest rank 0 3." in finding.description
    # 100 µs of Cast are new calls, 200 µs of Conv2D are slower calls: slower calls lead.
    assert "0.100 ms per step comes from more calls (priced at fastest rank 0's" in finding.description
    assert "as on fastest rank 0." in finding.description
    assert "baseline" not in finding.description + finding.title + " ".join(finding.suggestions)
    assert finding.suggestions == M.t_list("comparison.kernel.suggestions.ranks.slower_calls")


def test_kernel_comparison_priority_and_noise():
    target = _kernel_rows([1], conv_us=204.0)  # +2 % per call: noise
    ctx = _ctx(
        "baseline",
        {"kernels": target, "step_trace": _trace(0.0, 1000.0)},
        {"kernels": _kernel_rows([1], 200.0), "step_trace": _trace(0.0)},
    )
    assert cmp.comparison_kernel(ctx) == []
    slow = _kernel_rows([1], conv_us=260.0)  # +120 µs per step of a 1100 µs step: high
    ctx = _ctx(
        "baseline",
        {"kernels": slow, "step_trace": _trace(100.0, 1000.0)},
        {"kernels": _kernel_rows([1], 200.0), "step_trace": _trace(0.0)},
    )
    [finding] = cmp.comparison_kernel(ctx)
    assert finding.priority == "high" and finding.estimated_gain_us == pytest.approx(120.0)
    assert finding.evidence[0].name == "Kernels: rank 3 vs baseline rank 0"


def test_kernel_comparison_odd_data():
    empty = _kernel_rows([], 1.0)
    with pytest.raises(NotEvaluated):
        cmp.comparison_kernel(_ctx("ranks", {"kernels": empty, "step_trace": empty}, {"kernels": empty}))
    nan = _kernel_rows([1], conv_us=float("nan"))
    zero = _kernel_rows([1], conv_us=0.0)
    # No step trace: the target's kernel time stands in for the step.
    assert cmp.comparison_kernel(_ctx("ranks", {"kernels": nan}, {"kernels": zero})) == []
    [finding] = cmp.comparison_kernel(
        _ctx("ranks", {"kernels": zero.assign(duration_us=50.0)}, {"kernels": zero})
    )
    assert finding.estimated_gain_us == pytest.approx(100.0)  # Conv2D 0 -> 50 µs, twice per step
    assert finding.priority == "high"


def _host(rows: list[tuple[str, str, int, float, int]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["name", "cat", "start_ns", "dur_us", "tid"])
    return conform(frame, "host_ops")


def test_framework_ops_nesting_and_steps():
    host = _host(
        [
            ("ProfilerStep#1", "cpu_op", 0, 100.0, 1),
            ("aten::linear", "cpu_op", 1_000, 50.0, 1),
            ("aten::addmm", "cpu_op", 2_000, 40.0, 1),  # inside aten::linear
            ("aten::add", "cpu_op", 60_000, 10.0, 1),
            ("aten::add", "cpu_op", 1_000, 5.0, 2),  # another thread: top level
            ("ProfilerStep#2", "cpu_op", 200_000, 100.0, 1),
            ("aten::add", "cpu_op", 210_000, 10.0, 1),
            ("aten::add", "cpu_op", 150_000, 999.0, 1),  # between steps: not per-step work
            ("python_fn", "python_function", 1_000, 90.0, 1),
            ("aten::bad", "cpu_op", None, 1.0, 1),
        ]
    )
    ops, steps = cmp.framework_ops(host, None)
    assert steps == 2
    assert sorted(ops["name"]) == ["aten::add", "aten::add", "aten::add", "aten::addmm", "aten::linear"]
    top = {(n, t): bool(f) for n, t, f in zip(ops["name"], ops["tid"], ops["top_level"], strict=True)}
    assert not top[("aten::addmm", 1)]  # inside aten::linear
    assert top[("aten::linear", 1)] and top[("aten::add", 2)]
    stats = cmp.api_stats(ops, steps)
    assert stats.loc["aten::add", "calls_per_step"] == pytest.approx(1.5)
    assert stats.loc["aten::addmm", "top_level_us_per_step"] == 0.0
    assert stats.loc["aten::linear", "top_level_us_per_step"] == pytest.approx(25.0)
    # --step 2: the step trace keeps step 2 only.
    ops2, steps2 = cmp.framework_ops(host, _trace(0.0).iloc[[1]])
    assert steps2 == 1 and list(ops2["name"]) == ["aten::add"]
    # No step markers: everything is one step.
    ops3, steps3 = cmp.framework_ops(host[~host["name"].str.startswith("ProfilerStep")], None)
    assert steps3 == 1 and len(ops3) == 6


def test_api_comparison():
    base = _host(
        [
            ("ProfilerStep#1", "cpu_op", 0, 10_000.0, 1),
            ("aten::item", "cpu_op", 1_000, 100.0, 1),
            ("aten::linear", "cpu_op", 500_000, 200.0, 1),
            ("aten::addmm", "cpu_op", 510_000, 150.0, 1),
        ]
    )
    target = _host(
        [
            ("ProfilerStep#7", "cpu_op", 0, 10_000.0, 1),
            ("aten::item", "cpu_op", 1_000, 400.0, 1),
            ("aten::linear", "cpu_op", 500_000, 200.0, 1),
            ("aten::addmm", "cpu_op", 510_000, 190.0, 1),
        ]
    )
    ctx = _ctx(
        "baseline",
        {"host_ops": target, "step_trace": _trace(250.0, 1000.0)},
        {"host_ops": base, "step_trace": _trace(0.0)},
    )
    [finding] = cmp.comparison_api(ctx)
    rows = {r["api_name"]: r for r in _rows(finding.evidence[0])}
    assert rows["aten::item"]["diff_top_level_us_per_step"] == pytest.approx(300.0)
    assert rows["aten::addmm"]["diff_total_us_per_step"] == pytest.approx(40.0)  # nested: not time lost
    assert rows["aten::addmm"]["diff_top_level_us_per_step"] == 0.0
    assert finding.estimated_gain_us == pytest.approx(250.0)  # capped at the target's idle time per step
    assert "aten::item" in finding.description and "aten::addmm" not in finding.description.split("\n")[2]
    assert finding.evidence[0].columns[0] == "api_name"
    empty = _host([])
    with pytest.raises(NotEvaluated):
        cmp.comparison_api(_ctx("ranks", {"host_ops": empty}, {"host_ops": empty}))


def test_regression_units():
    slow = _trace(300.0, 1500.0)
    base = _trace(100.0, 1000.0)
    assert cmp.comparison_regression(_ctx("ranks", {"step_trace": slow}, {"step_trace": base})) == []
    [finding] = cmp.comparison_regression(_ctx("baseline", {"step_trace": slow}, {"step_trace": base}))
    assert finding.estimated_gain_us == pytest.approx(700.0)
    assert "mostly in computing" in finding.title and finding.priority == "high"
    rows = {r["component"]: r for r in _rows(finding.evidence[0])}
    assert rows["computing"]["diff_us_per_step"] == pytest.approx(500.0)
    assert rows["computing"]["share_of_regression"] == pytest.approx(500 / 700, abs=1e-4)
    assert rows["step"]["target_us_per_step"] == pytest.approx(1800.0)
    assert finding.suggestions == M.t_list("comparison.regression.suggestions.computing")
    # The target is faster, or slower within noise: nothing to report.
    assert cmp.comparison_regression(_ctx("baseline", {"step_trace": base}, {"step_trace": slow})) == []
    assert (
        cmp.comparison_regression(_ctx("baseline", {"step_trace": _trace(110.0)}, {"step_trace": base})) == []
    )
    nan = conform(pd.DataFrame({"step": [1], "computing_us": [float("nan")]}), "step_trace")
    with pytest.raises(NotEvaluated):
        cmp.comparison_regression(_ctx("baseline", {"step_trace": nan}, {"step_trace": base}))
    zero = _trace(0.0, 0.0)
    assert cmp.comparison_regression(_ctx("baseline", {"step_trace": base}, {"step_trace": zero})) == []


# ---------------------------------------------------------------- end to end, generated


def test_compare_clean_runs(synth):
    report = run_analysis(synth["clean2"], compare_path=synth["clean"], options=FAST)
    assert [f.check for f in report.findings if f.dimension == "comparison"] == []
    assert not [n for n in report.not_evaluated if n.check.startswith("comparison.")]


def test_compare_aicpu_kernels(synth):
    report = run_analysis(synth["aicpu"], compare_path=synth["clean"], options=FAST)
    finding = _finding(report, "comparison.kernel")
    assert finding is not None
    truth = _ground_truth(synth["aicpu"], "computation.aicpu")
    per_rank_step = truth["expected"]["total_us"] / len(truth["ranks"]) / len(truth["steps"])
    assert finding.estimated_gain_us == pytest.approx(per_rank_step, rel=0.1)
    top = [r[1] for r in finding.evidence[0].rows[:3]]
    assert sorted(top) == sorted(truth["expected"]["op_types"])
    assert finding.ranks == [finding.ranks[0]] and "baseline rank" in finding.evidence[0].name
    assert _finding(report, "comparison.regression") is None  # under 1 % of the step: within noise


def test_compare_dispatch_api(synth):
    report = run_analysis(synth["dispatch"], compare_path=synth["clean"], options=FAST)
    finding = _finding(report, "comparison.api")
    assert finding is not None and finding.priority in ("medium", "high")
    assert finding.estimated_gain_us > 1000.0


def test_compare_slow_rank_regression(synth):
    report = run_analysis(synth["slow"], compare_path=synth["clean"], options=FAST)
    finding = _finding(report, "comparison.regression")
    assert finding is not None and finding.priority == "high"
    rows = {r["component"]: r for r in _rows(finding.evidence[0])}
    truth = _ground_truth(synth["slow"], "cluster.slow_rank")["expected"]["computing_us_by_rank"]
    rank = finding.ranks[0]
    assert rows["computing"]["target_us_per_step"] == pytest.approx(truth[str(rank)], rel=0.01)
    # The slow rank computes longer; the other ranks wait for it in the all-reduce.
    grown = max(("computing", "communication not overlapped"), key=lambda c: rows[c]["diff_us_per_step"])
    assert grown == (
        "computing"
        if rank in _ground_truth(synth["slow"], "cluster.slow_rank")["ranks"]
        else "communication not overlapped"
    )
    assert rows["step"]["diff_us_per_step"] > 0.2 * rows["step"]["baseline_us_per_step"]


def test_no_comparison_when_disabled(synth):
    options = AnalysisOptions(analysis_dimensions=("memory",), disable_profiling_comparison=True)
    report = run_analysis(synth["aicpu"], compare_path=synth["clean"], options=options)
    assert not [f for f in report.findings if f.dimension == "comparison"]


# ---------------------------------------------------------------- real data


def test_corpus_env_text():
    report = run_analysis(corpus_path(TEXT_CORPUS), options=FAST)
    finding = _finding(report, "environment.variables")
    # Every variable is recorded empty; the kernels ran with dynamic shapes (OP State), so only the
    # dynamic-shape cache is advised; 18 % unused reservation is under the fragmentation bar.
    assert finding is not None and finding.priority == "low"
    status = {r["variable"]: r["status"] for r in _rows(finding.evidence[0])}
    assert status["HOST_CACHE_CAPACITY"] == "change"
    assert status["PYTORCH_NPU_ALLOC_CONF"] == "not needed by this profile"
    assert status["ACLNN_CACHE_LIMIT"] == "not needed by this profile"
    assert status["ASCEND_LAUNCH_BLOCKING"] == "ok"
    assert "187 of 187 kernels ran with dynamic shapes" in finding.description
    assert finding.estimated_gain_us is None


def test_corpus_env_db():
    # The db export has no profiler_metadata.json: ENV comes from META_DATA. It has no OP State, but
    # operators compiled online in the profiled step show the shapes change: the same advice as the
    # text export of the workload gives.
    report = run_analysis(corpus_path(DB_CORPUS), options=FAST)
    finding = _finding(report, "environment.variables")
    assert finding is not None and "HOST_CACHE_CAPACITY" in finding.title
    assert "compiled online during the profiled steps" in finding.description
    assert not [n for n in report.not_evaluated if n.check == "environment.variables"]
    ranks = {r.rank: r for r in discover(DB_CORPUS).ranks}
    recorded = recorded_env(load_table("environment", ranks[0]))
    assert recorded["HOST_CACHE_CAPACITY"] == "" and len(recorded) == 8


def test_corpus_ranks_comparison():
    # Rank 0 (136.6 ms) is slower than rank 1 (131.9 ms) only in communication: compute kernels and
    # host APIs match within noise, and a rank-vs-rank regression is the slow-rank check's job.
    report = run_analysis(corpus_path(TEXT_CORPUS), options=FAST)
    assert [f for f in report.findings if f.dimension == "comparison"] == []
    assert not [n for n in report.not_evaluated if n.check.startswith("comparison.")]


def test_corpus_text_against_db():
    # The same workload recorded twice. The compared rank is the one with the most time of its own
    # (computing + free): rank 1, 2.6 ms per step slower than rank 1 of the db run, 69 % of it in
    # exposed communication (94.56 -> 96.36 ms); kernels match.
    report = run_analysis(corpus_path(TEXT_CORPUS), compare_path=corpus_path(DB_CORPUS), options=FAST)
    finding = _finding(report, "comparison.regression")
    assert finding is not None and finding.ranks == [1]
    assert finding.estimated_gain_us == pytest.approx(131912.616 - 129312.183, abs=1.0)
    assert "communication not overlapped" in finding.title
    assert _finding(report, "comparison.kernel") is None
    api = _finding(report, "comparison.api")
    assert api is not None and api.evidence[0].name == "Framework APIs: rank 1 vs baseline rank 1"
    assert "aten::to" in api.description.split("\n")[2]  # 15 calls, 484 -> 640 µs each
