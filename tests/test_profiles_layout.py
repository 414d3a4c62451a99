"""Communication groups and pipeline stages from communication.json when the metadata lacks them."""

from __future__ import annotations

import json

from advisor.formats import discover
from advisor.formats.ascend_common.layout import stages_from_groups
from tests.engine_fixtures import DB_CORPUS, TEXT_CORPUS, corpus_path, rank_dir

# 8 ranks, Megatron order: tp=2 (adjacent ranks), pp=2 (stage = rank // 4), dp=2.
TP = [(0, 1), (2, 3), (4, 5), (6, 7)]
DP = [(0, 2), (1, 3), (4, 6), (5, 7)]
PP = [(0, 4), (1, 5), (2, 6), (3, 7)]


def _communication(rank: int) -> dict:
    ops = {}
    for kind, groups, op in (("collective", TP, "allReduce"), ("collective", DP, "reduceScatter")):
        for index, members in enumerate(groups):
            if rank in members:
                ops[f"hcom_{op}__{index}1_0_1@{kind[:4]}{op}{index}"] = {"Communication Time Info": {}}
    p2p = {}
    for index, members in enumerate(PP):
        if rank in members:
            verb = "send" if rank == members[0] else "receive"
            p2p[f"hcom_{verb}__{index}2_0_1@pp{index}"] = {"Communication Time Info": {}}
    return {"step3": {"collective": ops, "p2p": p2p, "Total Op Info": {}}}


def test_groups_and_stages_from_communication_json(tmp_path):
    for rank in range(8):
        folder = rank_dir(tmp_path / "cluster", f"rank{rank}_ascend_pt", rank=rank)
        output = folder / "ASCEND_PROFILER_OUTPUT"
        (output / "communication.json").write_text(json.dumps(_communication(rank)))
    profile = discover(tmp_path / "cluster")
    assert profile.groups["pp0"] == (0, 4)
    assert profile.groups["collallReduce2"] == (4, 5)
    assert profile.groups["collreduceScatter1"] == (1, 3)
    assert profile.stages == [(0, 1, 2, 3), (4, 5, 6, 7)]


def test_no_point_to_point_groups_means_no_stages():
    groups = {"tp0": (0, 1), "tp1": (2, 3), "dp0": (0, 2), "dp1": (1, 3)}
    assert stages_from_groups(groups, set()) == []


def test_a_group_spanning_two_stages_is_not_a_stage():
    # A world-wide group (e.g. for logging) holds two ranks of one pipeline: it must not merge stages.
    groups = {"pp0": (0, 2), "pp1": (1, 3), "tp0": (0, 1), "tp1": (2, 3), "world": (0, 1, 2, 3)}
    assert stages_from_groups(groups, {"pp0", "pp1"}) == [(0, 1), (2, 3)]


def test_corpus_group_from_both_exports():
    for path in (corpus_path(TEXT_CORPUS), corpus_path(DB_CORPUS)):
        profile = discover(path)
        # One all-reduce group of both ranks, no pipeline.
        assert list(profile.groups.values()) == [(0, 1)], path
        assert profile.stages == []
