"""The Python API (advisor.api): the same engine, findings, numbers and figures as the CLI's
reports, on generated profiles whose problems and step times are known."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pandas as pd
import psutil
import pytest

import advisor
from advisor import api, cli, engine, worker_pool
from advisor.errors import InputError, OptionError
from advisor.report.html import render_html
from advisor.report.model import Evidence, Finding, InputInfo, Report
from advisor.synth import SynthSpec, write_synth_profile
from advisor.synth.training_log import TrainingLogSpec, write_training_log

from .engine_fixtures import demo, expected_by_rank_step

INJECTED = ("schedule.gc", "dataloader.slow", "computation.aicpu")
HOSTILE = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    spec = SynthSpec(ranks=2, steps=(3, 4), inject=INJECTED)
    return write_synth_profile(tmp_path_factory.mktemp("synth") / "prof", spec)


@pytest.fixture(scope="module")
def synth_analysis(synth) -> api.Analysis:
    return advisor.analyze(synth, progress=False)


@pytest.fixture(scope="module")
def demo_profile(tmp_path_factory):
    return demo(tmp_path_factory.mktemp("demo"))


def _cli_json(path: Path, out: Path, *flags: str) -> dict:
    assert cli.main(["analyze", str(path), "--output", str(out), "--format", "json", "--quiet", *flags]) == 0
    (written,) = out.glob("*.json")
    return json.loads(written.read_text(encoding="utf-8"))


def test_findings_frame_is_the_cli_json_report(synth, synth_analysis, tmp_path, capsys):
    frame = synth_analysis.findings
    assert list(frame.columns) == list(api.FINDING_COLUMNS)
    assert {str(t) for t in frame.dtypes[["estimated_gain_us", "share_of_step"]]} == {"float64"}
    assert str(frame.dtypes["step"]) == "Int64"
    # The injected problems are found (ground truth), at high or medium priority.
    found = dict(zip(frame["check"], frame["priority"], strict=False))
    assert set(INJECTED) <= set(found)
    # The same rows, in the same order, as the CLI's JSON report of the same data.
    report = _cli_json(synth, tmp_path / "out")
    capsys.readouterr()
    assert len(frame) == len(report["findings"])
    for row, expected in zip(frame.to_dict("records"), report["findings"], strict=True):
        for column in ("check", "dimension", "priority", "title", "ranks", "counted_in"):
            assert row[column] == expected[column]
        for column in ("step", "estimated_gain_us", "share_of_step"):
            assert _or_none(row[column]) == pytest.approx(expected[column])
    # Each Finding's evidence is the JSON's evidence, as DataFrames.
    gc = synth_analysis.findings_for("schedule.gc")[0]
    (gc_json,) = [f for f in report["findings"] if f["check"] == "schedule.gc"]
    assert [list(f.columns) for f in gc.evidence.values()] == [e["columns"] for e in gc_json["evidence"]]
    assert [len(f) for f in gc.evidence.values()] == [len(e["rows"]) for e in gc_json["evidence"]]
    assert gc.suggestions == gc_json["suggestions"] and gc.description == gc_json["description"]
    # A dimension gives every finding of it, in the report's order.
    schedule = synth_analysis.findings_for("schedule")
    assert [f.check for f in schedule] == [
        f["check"] for f in report["findings"] if f["dimension"] == "schedule"
    ]


def _or_none(value):
    """A cell as the JSON has it: a missing value (NaN, <NA>) is null."""
    return None if pd.isna(value) else value


def test_step_breakdown_is_the_summary_and_the_demo_ground_truth(demo_profile, tmp_path, capsys):
    root, spec = demo_profile
    analysis = advisor.analyze(root, progress=False)
    frame = analysis.metrics.step_breakdown()
    report = _cli_json(root, tmp_path / "out")
    capsys.readouterr()
    assert frame.to_dict("records") == report["summary"]["per_rank"]  # overall.summary's table
    expected = expected_by_rank_step(spec)
    assert len(frame) == len(expected)
    for row in frame.to_dict("records"):
        truth = expected[(row["rank"], row["step"])]
        for column in ("step_us", "computing_us", "communication_not_overlapped_us", "free_us"):
            assert row[column] == pytest.approx(truth[column], abs=0.01)
    # step_trace: the very frames the cluster checks were handed, every rank.
    trace = analysis.metrics.step_trace()
    assert sorted(trace["rank"].unique()) == [0, 1]
    assert trace.set_index(["rank", "step"])["computing_us"].to_dict() == pytest.approx(
        {key: truth["computing_us"] for key, truth in expected.items()}, abs=0.01
    )
    bandwidth = analysis.metrics.communication_bandwidth()  # what the slow-link check read
    assert sorted(bandwidth["rank"].unique()) == [0, 1] and len(bandwidth) > 0


def test_figures_are_the_html_reports(demo_profile):
    analysis = advisor.analyze(demo_profile[0], progress=False)
    page = render_html(analysis.report)
    for name, html_id in (("step_breakdown", "overall"), ("steps", "steps")):
        match = re.search(
            rf'<script type="application/json" id="pa-figure-{html_id}">(.*?)</script>', page, re.S
        )
        assert match, html_id
        shown = json.loads(match.group(1))
        figure = json.loads(analysis.figure(name).to_json())
        assert figure["data"] == shown["data"]
        # plotly expands the "none" template into its (empty) definition; the rest is the same.
        assert {k: v for k, v in figure["layout"].items() if k != "template"} == {
            k: v for k, v in shown["layout"].items() if k != "template"
        }
    assert analysis.figure("rank_heatmap") is None  # two ranks: the report draws no heatmap either
    assert 'id="pa-figure-heatmap"' not in page
    with pytest.raises(ValueError, match="figure must be one of step_breakdown, steps, rank_heatmap"):
        analysis.figure("pie")


def test_save_writes_the_reports_atomically(synth_analysis, tmp_path, monkeypatch):
    first = synth_analysis.save(tmp_path / "out", formats=("html", "xlsx", "json"))
    assert sorted(first) == ["html", "json", "xlsx"]
    assert json.loads(first["json"].read_text(encoding="utf-8"))["findings"] == [
        f.to_json() for f in synth_analysis.report.sorted_findings()
    ]
    second = synth_analysis.save(tmp_path / "out", formats=("json",))
    assert second["json"] != first["json"] and second["json"].name.endswith("_1.json")  # never overwrites

    def broken(report, path):
        path.write_text("half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("advisor.report.jsonout.write_json", broken)
    before = sorted(p.name for p in (tmp_path / "out").iterdir())
    with pytest.raises(InputError, match="no space left on device"):
        synth_analysis.save(tmp_path / "out", formats=("html", "json"))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == before  # no html, no .part


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"path": "/no/such/profile"}, "/no/such/profile"),
        ({"dimensions": ["gpu"]}, "analysis_dimensions must be one of"),
        ({"processes": 0}, "advisor_analyze_processes must be between 1 and 8"),
        ({"language": "fr"}, "language must be one of en, zh"),
        ({"devices": 0}, "devices must be between 1 and"),
        ({"training_log": "/no/such/trainer_log.jsonl"}, "/no/such/trainer_log.jsonl"),
    ],
)
def test_bad_input_is_one_line(demo_profile, kwargs, message):
    arguments = {"path": demo_profile[0], **kwargs}
    with pytest.raises(InputError) as caught:
        advisor.analyze(**arguments, progress=False)
    assert message in str(caught.value)
    shown = caught.value._render_traceback_()  # what a notebook cell shows instead of a traceback
    assert len(shown) == 1 and message in shown[0] and "Traceback" not in shown[0]


def test_scheduler_passes_through_to_dask(demo_profile, monkeypatch):
    calls = []

    def on_dask(dask, analyse_rank, profile, args, stored):
        calls.append(dask.deployment.dask_scheduler_address)
        return (analyse_rank(profile, rank, *args) for rank in profile.ranks)

    monkeypatch.setattr("advisor.dask_engine.analyse_ranks_on_dask", on_dask)
    analysis = advisor.analyze(demo_profile[0], scheduler="tcp://127.0.0.1:8786", progress=False)
    assert calls == ["tcp://127.0.0.1:8786"]
    assert "communication.exposed" in set(analysis.findings["check"])


def test_rich_displays_escape_profile_strings(tmp_path):
    root, _ = demo(tmp_path, name=HOSTILE)
    analysis = advisor.analyze(root, progress=False)
    page = analysis._repr_html_()
    assert HOSTILE not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    evil = Finding(
        check="schedule.evil",
        dimension="schedule",
        priority="high",
        title=f"title {HOSTILE}",
        description=f"op {HOSTILE}",
        suggestions=[HOSTILE],
        estimated_gain_us=10.0,
        evidence=[Evidence(HOSTILE, [HOSTILE], [[HOSTILE]])],
    )
    info = InputInfo(HOSTILE, None, "ascend_pt", "text", [0], [1], None, None)
    shown = api.Analysis(Report(input=info, tool_version="t", findings=[evil], warnings=[HOSTILE]))
    for text in (shown._repr_html_(), shown.findings_for("schedule.evil")[0]._repr_html_()):
        assert "<img" not in text and "&lt;img src=x onerror=alert(1)&gt;" in text


def test_open_profile_tables_are_every_ranks_normalised_table(demo_profile):
    root, spec = demo_profile
    profile = advisor.open_profile(root)
    assert profile.ranks == [0, 1] and "kernels" in profile.tables
    trace = profile.tables["step_trace"]
    assert list(trace.columns[:2]) == ["rank", "step"]
    expected = expected_by_rank_step(spec)
    assert trace.set_index(["rank", "step"])["free_us"].to_dict() == pytest.approx(
        {key: truth["free_us"] for key, truth in expected.items()}, abs=0.01
    )
    assert profile.table("step_trace", 1).equals(
        trace[trace["rank"] == 1].drop(columns="rank").reset_index(drop=True)
    )
    with pytest.raises(KeyError, match="no table 'nope'"):
        profile.tables["nope"]
    with pytest.raises(InputError):
        advisor.open_profile(root / "missing")


def test_progress_lines_in_the_cell_without_ipywidgets(demo_profile, capsys):
    advisor.analyze(demo_profile[0])
    out = capsys.readouterr().out
    assert out.splitlines()[:3] == [
        "[0/4] reading rank 1/2",
        "[1/4] reading rank 2/2",
        "[2/4] running checks",
    ]


def _pool_workers(forked: bool) -> set[int]:
    """The live worker processes: our children when forked from this process; else the children of
    the fork server (it and the resource tracker are our children, and outlive an analysis)."""
    found = set()
    for process in psutil.Process().children(recursive=True):
        try:
            if (process.ppid() == os.getpid()) == forked and process.status() != psutil.STATUS_ZOMBIE:
                found.add(process.pid)
        except psutil.NoSuchProcess:
            continue
    return found


@pytest.mark.parametrize("forked", [True, False], ids=["forked workers", "fork server"])
def test_interrupt_stops_the_worker_pool(tmp_path, monkeypatch, forked):
    """A notebook's Interrupt is a KeyboardInterrupt in the kernel: raised here from the progress
    callback while worker processes analyse ranks; it reaches the caller and leaves no worker. The
    workers are forks of this process, or (a kernel runs threads) come from a fork server."""
    root = write_synth_profile(tmp_path / "prof", SynthSpec(ranks=4, steps=(3, 4)))
    monkeypatch.setattr(worker_pool, "can_fork", lambda: forked)
    monkeypatch.setattr(engine, "pool_pays_off", lambda ranks, ranks_mb, start_s: True)
    before = _pool_workers(forked)  # e.g. a fork server an earlier test started
    workers: set[int] = set()

    def interrupt(stage: str, done: int, total: int) -> None:
        if done >= 1:
            workers.update(_pool_workers(forked) - before)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        advisor.analyze(root, processes=2, progress=interrupt)
    assert workers  # the analysis did run in worker processes
    assert workers & _pool_workers(forked) == set()
    with pytest.raises(OptionError):
        advisor.analyze(root, processes=9, progress=False)


def test_a_training_log_alone_and_beside_the_profile_is_the_cli_json(demo_profile, tmp_path):
    log = write_training_log(tmp_path / "log", TrainingLogSpec(steps=2000, inject=("stalls",), devices=2))
    alone = advisor.analyze(log, progress=False)
    expected = _cli_json(log, tmp_path / "alone")
    assert alone.report.description() == expected["input"]["description"]
    assert alone.report.description().startswith("LLaMA-Factory log, 200 records")
    assert alone.training is not None
    assert alone.training["step"].tolist() == expected["training"]["series"]["step"]
    assert list(alone.findings["check"]) == [f["check"] for f in expected["findings"]]
    assert "training.throughput_drop" in set(alone.findings["check"])
    beside = advisor.analyze(demo_profile[0], training_log=log, progress=False)
    checks = set(beside.findings["check"])
    assert {"communication.exposed", "training.throughput_drop"} <= checks
    assert advisor.analyze(demo_profile[0], progress=False).training is None
