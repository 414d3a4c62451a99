"""One row per cause (checks/links.py, knowledge/causes.json): which findings are counted in which."""

from __future__ import annotations

from advisor.checks.links import link_causes, links
from advisor.checks.registry import all_checks
from advisor.report.messages import Messages
from advisor.report.model import Finding

M = Messages("en")


def _finding(check: str, ranks: list[int], gain: float | None) -> Finding:
    return Finding(
        check, check.split(".")[0], "high", f"{check} title", "seen", ranks=ranks, estimated_gain_us=gain
    )


def _counted(findings: list[Finding]) -> dict[str, list[str]]:
    return {f.check: f.counted_in for f in findings}


def test_links_name_real_checks_and_never_a_cycle():
    ids = {spec.id for spec in all_checks()}
    edges = {(link.symptom, cause) for link in links() for cause in link.causes}
    assert {c for edge in edges for c in edge} <= ids
    # No symptom explains its own cause, directly or through others.
    graph: dict[str, set[str]] = {}
    for symptom, cause in edges:
        graph.setdefault(symptom, set()).add(cause)

    def reaches(start: str, goal: str, seen: frozenset[str] = frozenset()) -> bool:
        return any(
            c == goal or (c not in seen and reaches(c, goal, seen | {c})) for c in graph.get(start, ())
        )

    assert not [check for check in graph if reaches(check, check)]


def test_a_symptom_is_counted_in_causes_that_cover_its_ranks_and_gain():
    idle = _finding("overall.idle", [0, 1], 10_000.0)
    gc = _finding("schedule.gc", [0, 1], 6_000.0)
    out = link_causes([idle, gc], M)
    assert _counted(out) == {"overall.idle": ["schedule.gc"], "schedule.gc": []}
    assert "Counted in schedule.gc" in out[0].description
    assert "This also explains overall.idle" in out[1].description
    assert not out[0].ranked and out[1].ranked
    # A cause on one rank does not explain the idle time of the other.
    assert _counted(link_causes([idle, _finding("schedule.gc", [1], 9_000.0)], M))["overall.idle"] == []
    # Causes explaining less than half of the symptom's gain leave it a row of its own.
    assert _counted(link_causes([idle, _finding("schedule.gc", [0, 1], 4_000.0)], M))["overall.idle"] == []
    # Several causes together may: host syncs and GC.
    both = [idle, _finding("schedule.gc", [0, 1], 3_000.0), _finding("schedule.host_sync", [0, 1], 3_000.0)]
    assert _counted(link_causes(both, M))["overall.idle"] == ["schedule.host_sync", "schedule.gc"]


def test_waiting_ranks_are_explained_by_a_slow_rank_elsewhere():
    exposed = _finding("communication.exposed", [0, 1, 2], 20_000.0)
    slow = _finding("cluster.slow_rank", [3], 19_000.0)
    assert _counted(link_causes([exposed, slow], M))["communication.exposed"] == ["cluster.slow_rank"]


def test_two_views_of_one_cause_are_always_linked():
    # Dynamic shapes (compile time, an upper bound) are the online compilation the dispatch check
    # measures: one cause, whatever the two figures.
    dynamic = _finding("computation.dynamic_shape", [0, 1], 14_000.0)
    dispatch = _finding("schedule.operator_dispatch", [0, 1], 3_000.0)
    assert _counted(link_causes([dynamic, dispatch], M))["computation.dynamic_shape"] == [
        "schedule.operator_dispatch"
    ]


def test_comparisons_with_a_baseline_run_stand_on_their_own():
    kernel = _finding("comparison.kernel", [1], 10_000.0)
    slow = _finding("cluster.slow_rank", [1], 12_000.0)
    assert _counted(link_causes([kernel, slow], M))["comparison.kernel"] == ["cluster.slow_rank"]
    assert _counted(link_causes([kernel, slow], M, baseline=True))["comparison.kernel"] == []
