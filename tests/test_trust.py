"""Advice a user can trust (issue 14), on the full report of generated profiles with ground truth:

* specificity: every generator fault, injected alone, is found by its own check on its ranks, and
  every other finding is a check the fault documents as collateral (faults.COLLATERAL);
* healthy controls give no high finding;
* one rule for priority (docs/design.md "Priority"), one row per cause, and the numbers of a title
  are those of its row and evidence, never NaN or inf.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from advisor.checks.common import MEASURED, PARTLY_MEASURED, UPPER_BOUND, priority_for
from advisor.engine import run_analysis
from advisor.report.model import PRIORITIES, Finding, Report
from advisor.synth import SynthSpec, write_synth_profile
from advisor.synth.faults import COLLATERAL, FAULTS

from .engine_fixtures import DB_CORPUS, TEXT_CORPUS, corpus_path
from .test_synth import truth_of

STEPS = (1, 2, 3)
# Cluster faults need peers to be judged against; the rest run on a 2-rank job (small-cluster rules).
FOUR_RANKS = {"cluster.slow_rank", "cluster.slow_link"}
# Faults on a workload of their own.
SPEC_OF = {"computation.pp_stage_imbalance": {"ranks": 4, "pipeline_parallel": 2, "microbatches": 4}}
VARIANTS = {"schedule.gc:no_events": ("schedule.gc", {"gc_events": False})}


def _spec(fault: str, **extra: object) -> SynthSpec:
    base: dict = {"ranks": 4 if fault in FOUR_RANKS else 2, "steps": STEPS, "seed": 7, "inject": (fault,)}
    base.update(SPEC_OF.get(fault, {}))
    base.update(extra)
    return SynthSpec(**base)


def _cases() -> dict[str, tuple[str, SynthSpec]]:
    cases = {fault: (fault, _spec(fault)) for fault in FAULTS if _buildable(fault)}
    for name, (fault, extra) in VARIANTS.items():
        cases[name] = (fault, _spec(fault, **extra))
    return cases


def _buildable(fault: str) -> bool:
    try:
        _spec(fault)
    except (TypeError, ValueError):  # a workload option this generator does not have yet
        return False
    return True


CASES = _cases()


# Healthy jobs that stress every check (ground truth: nothing injected): compute-bound CNN and LLM
# with realistic pipe ratios, a pipeline with its natural bubble, two nodes over RDMA, a 2-rank job,
# Level0 exports. A Megatron LLM pipeline is left out: its last stage carries the LM head and
# computes ~15 % more, a real imbalance, not a healthy control.
HEALTHY = {
    "cnn_2_ranks": {"ranks": 2},
    "cnn_8_ranks": {"ranks": 8},
    "cnn_realistic_pmu": {"ranks": 2, "pmu": "realistic"},
    "llm": {"ranks": 2, "workload": "llm"},
    "cnn_pipeline": {"ranks": 4, "pipeline_parallel": 2, "microbatches": 8},
    "cnn_2_nodes": {"ranks": 4, "ranks_per_node": 2},
    "llm_2_nodes": {"ranks": 4, "ranks_per_node": 2, "workload": "llm", "microbatches": 1},
    "cnn_level0": {"ranks": 2, "profiler_level": "Level0"},
    "llm_level0_db": {"ranks": 2, "workload": "llm", "profiler_level": "Level0", "export": "db"},
    "cnn_db": {"ranks": 2, "export": "db"},
}


@pytest.fixture(scope="module")
def healthy(tmp_path_factory) -> dict[str, Report]:
    root = tmp_path_factory.mktemp("healthy")
    out = {}
    for name, spec in HEALTHY.items():
        path = write_synth_profile(root / name, SynthSpec(steps=STEPS, seed=11, **spec))
        assert truth_of(path)["injected"] == [] and truth_of(path)["healthy"] is True
        out[name] = run_analysis(path)
    return out


@pytest.mark.parametrize("name", sorted(HEALTHY))
def test_healthy_controls_get_no_high_finding(healthy, name):
    report = healthy[name]
    high = [(f.check, f.title) for f in report.findings if f.priority == "high"]
    assert not high, high
    for finding in report.findings:
        check_finding(finding)


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[str, tuple[Path, Report]]:
    root = tmp_path_factory.mktemp("trust")
    out = {}
    for name, (_, spec) in CASES.items():
        path = write_synth_profile(root / name.replace(":", "_"), spec)
        out[name] = (path, run_analysis(path))
    return out


def test_every_catalogue_check_can_be_injected():
    from advisor.checks.catalogue import CATALOGUE
    from advisor.synth.training_log import ANOMALY_CHECKS

    # The training checks' anomalies are injected by the training-log generator; the profile against
    # the log (unrepresentative_profile) is set up in tests/test_training_log.py.
    injectable = set(FAULTS) | set(ANOMALY_CHECKS.values())
    never = {"overall.summary", "comparison.regression", "comparison.kernel", "comparison.api"}
    never.add("training.unrepresentative_profile")
    assert {c for ids in CATALOGUE.values() for c in ids} - never <= injectable


@pytest.mark.parametrize("name", sorted(CASES))
def test_fault_fires_its_own_check_and_documented_collateral_only(reports, name):
    fault, _ = CASES[name]
    path, report = reports[name]
    [entry] = [e for e in truth_of(path)["injected"] if e["check"] == fault]
    allowed = {fault, "overall.summary", *COLLATERAL.get(fault, ())}
    assert set(entry.get("collateral", ())) == set(COLLATERAL.get(fault, ()))
    own = [f for f in report.findings if f.check == fault]
    assert own, f"{fault} not found; not evaluated: {[n for n in report.not_evaluated if n.check == fault]}"
    for finding in own:
        if finding.ranks:
            assert set(entry["ranks"]) <= set(finding.ranks), (finding.ranks, entry["ranks"])
        # Its own row, unless counted in a cause the fault documents (dynamic shapes: compilation).
        assert set(finding.counted_in) <= allowed
    strays = sorted({f.check for f in report.findings} - allowed)
    assert not strays, [(f.check, f.priority, f.title) for f in report.findings if f.check in strays]


def test_the_ranking_shows_each_cause_once(reports):
    for name, (_, report) in reports.items():
        ranked = [f for f in report.findings if f.ranked]
        assert all(f.check != "overall.summary" for f in ranked), name
        # Every counted-in finding names causes that were found and are ranked or counted in turn.
        found = {f.check for f in report.findings}
        for finding in report.findings:
            assert set(finding.counted_in) <= found, (name, finding.check, finding.counted_in)


@pytest.mark.parametrize("name", sorted(CASES))
def test_findings_follow_the_priority_rule_and_their_numbers(reports, name):
    for finding in reports[name][1].findings:
        check_finding(finding)


def test_level0_exposed_communication_from_the_step_split(tmp_path):
    """Level0 has no communication.json: the exposed share still comes from the step trace, and the
    report says the per-collective split needs Level1."""
    spec = SynthSpec(ranks=2, steps=STEPS, seed=7, inject=("communication.exposed",), profiler_level="Level0")
    report = run_analysis(write_synth_profile(tmp_path / "level0", spec))
    (finding,) = [f for f in report.findings if f.check == "communication.exposed"]
    assert finding.priority == "high" and finding.ranks == [0, 1]
    assert "per-collective" not in finding.title and "needs profiler_level=Level1" in finding.description
    assert "communication.exposed" not in {n.check for n in report.not_evaluated}


@pytest.mark.parametrize("corpus", ["text", "db"])
def test_corpus_ranked_list(corpus):
    """The real 2-rank profile (text and db exports of the same workload): one row per cause, and the
    same causes in the same order from both exports."""
    report = run_analysis(corpus_path(TEXT_CORPUS if corpus == "text" else DB_CORPUS))
    ranked = [f.check for f in report.sorted_findings() if f.ranked]
    assert len(ranked) == len(set(ranked))
    for finding in report.findings:
        check_finding(finding)
    other = run_analysis(corpus_path(DB_CORPUS if corpus == "text" else TEXT_CORPUS))
    assert ranked == [f.check for f in other.sorted_findings() if f.ranked]


# --- the invariants every finding of every report keeps ---------------------------------------------


def check_finding(finding: Finding) -> None:
    """Priority from gain and basis; share consistent; no NaN/inf text; title numbers from the row."""
    where = f"{finding.check}: {finding.title}"
    for text in (finding.title, finding.description, *finding.suggestions):
        assert not re.search(r"\b(?:nan|inf)\b", text, re.IGNORECASE), where
    gain, share = finding.estimated_gain_us, finding.share_of_step
    if finding.check == "overall.summary":
        assert gain is None and finding.priority == "low" and not finding.ranked, where
        return
    if gain is None:
        assert finding.priority != "high" and finding.gain_basis is None, where
        return
    assert math.isfinite(gain) and gain >= 0, where
    assert finding.gain_basis in (MEASURED, UPPER_BOUND, PARTLY_MEASURED), where
    if finding.gain_basis == UPPER_BOUND:
        assert finding.priority != "high", where
    if share is not None:
        assert 0.0 <= share <= 1.0, where
        # Never above what the share earns; a check may hold it lower and says why.
        assert PRIORITIES.index(finding.priority) >= PRIORITIES.index(priority_for(share)), where
    assert title_numbers_agree(finding), where


_NUMBER = re.compile(r"(?<![\w.])(\d[\d,]*(?:\.\d+)?)\s*(%|ms|µs)(?![\w])")


def title_numbers_agree(finding: Finding) -> bool:
    """Every percentage and every time (ms, µs) in the title is the finding's share of the step or
    gain, or a value of its evidence tables (percentages as ratios, times in µs), at the precision
    the title shows."""
    cells = [float(c) for e in finding.evidence for row in e.rows for c in row if _is_number(c)]
    gain_us = finding.estimated_gain_us or 0.0
    share = finding.share_of_step
    for text, unit in _NUMBER.findall(finding.title):
        value = float(text.replace(",", ""))
        digits = len(text.split(".")[1]) if "." in text else 0
        tolerance = 0.5 * 10**-digits + 1e-9
        if unit == "%":
            candidates = [100 * c for c in cells] + cells + ([100 * share] if share is not None else [])
        elif unit == "ms":
            candidates = [c / 1000 for c in cells] + [gain_us / 1000]
        else:
            candidates = [*cells, gain_us]
        if not any(abs(value - c) <= tolerance for c in candidates):
            return False
    return True


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
