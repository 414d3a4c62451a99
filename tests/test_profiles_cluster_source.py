"""A folder holding only msprof-analyze's cluster_analysis_output/ is analysed from its summaries."""

from __future__ import annotations

import csv

import pytest

from advisor.engine import run_analysis
from advisor.formats import discover, load_table, report_input_fields

from .engine_fixtures import CORPUS, corpus_path

HEADER = ["Step", "Type", "Index", "Computing", "Communication(Not Overlapped)", "Overlapped",
          "Communication", "Free", "Stage", "Bubble"]  # fmt: skip


def write_cluster_output(root, free_by_rank):
    folder = root / "cluster_analysis_output"
    folder.mkdir(parents=True)
    with (folder / "cluster_step_trace_time.csv").open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(HEADER)
        for rank, free in free_by_rank.items():
            out.writerow([5, "rank", rank, 1000.0, 200.0, 50.0, 250.0, free, 1200.0 + free, 0])
        stage = "(" + ", ".join(str(r) for r in free_by_rank) + ")"
        out.writerow([5, "stage", stage, 1000.0, 200.0, 50.0, 250.0, max(free_by_rank.values()), 0, 0])
    return folder


def test_each_rank_gets_its_own_row(tmp_path):
    write_cluster_output(tmp_path / "job", {0: 10.0, 1: 500.0, 2: 30.0})
    profile = discover(tmp_path / "job")
    fields = report_input_fields(profile)
    assert (profile.format, fields["kind"], fields["export"]) == (
        "ascend_cluster",
        "cluster_output",
        "cluster",
    )
    assert profile.steps == [5]
    assert [r.rank for r in profile.ranks] == [0, 1, 2]
    # One file holds every rank: the table cache must still keep them apart.
    for _ in range(2):
        assert [load_table("step_trace", r).free_us.iloc[0] for r in profile.ranks] == [10.0, 500.0, 30.0]
    report = run_analysis(tmp_path / "job")
    assert [row["free_us"] for row in report.summary["per_rank"]] == [10.0, 500.0, 30.0]


def test_reference_fixture_cluster_output():
    root = corpus_path(CORPUS / "ascend-reference-fixtures" / "resource" / "advisor")
    with (root / "cluster_analysis_output" / "cluster_step_trace_time.csv").open(newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["Type"] == "rank"]
    expected = {int(r["Index"]): float(r["Free"]) for r in rows}
    report = run_analysis(root)
    assert report.input.ranks == sorted(expected)
    got = {row["rank"]: row["free_us"] for row in report.summary["per_rank"]}
    assert got == pytest.approx(expected)
