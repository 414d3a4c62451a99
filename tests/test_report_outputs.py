"""Report outputs: the JSON contract, escaped self-contained HTML, a typed XLSX, safe file naming."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook

from advisor.cli import main as cli_main
from advisor.engine import profile_name, report_stem, run_analysis, write_reports
from advisor.errors import InputError
from advisor.report.html import render_html
from advisor.report.messages import Messages, catalogue_keys
from advisor.report.model import Evidence, Finding, InputInfo, NotEvaluated, Report
from advisor.report.xlsx import unique_sheet_name

from .engine_fixtures import demo, rank_dir

EVIL = "</script><script>alert(1)</script>"
CONTRACT_KEYS = {
    "schema_version", "tool", "input", "summary", "findings", "not_evaluated", "timings_s", "warnings",
}  # fmt: skip
INPUT_KEYS = {"path", "compare_path", "kind", "export", "ranks", "steps", "cann_version", "torch_version",
              "format", "device", "devices", "versions", "description"}  # fmt: skip
FINDING_KEYS = {
    "share_of_step",
    "gain_basis",
    "counted_in",
    "check",
    "dimension",
    "priority",
    "title",
    "description",
    "suggestions",
    "ranks",
    "step",
    "estimated_gain_us",
    "evidence",
}
PER_RANK_KEYS = {"rank", "step", "step_us", "computing_us", "communication_not_overlapped_us", "free_us"}


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory):
    root, _ = demo(tmp_path_factory.mktemp("profile"))
    return run_analysis(root)


def _evil_report() -> Report:
    finding = Finding(
        check="schedule.evil",
        dimension="schedule",
        priority="medium",
        title=f"title {EVIL}",
        description=f"op {EVIL} & more",
        suggestions=[f"do {EVIL}"],
        ranks=[0],
        step=3,
        estimated_gain_us=12.5,
        evidence=[
            Evidence(f"ops {EVIL}", ["name", "time_us"], [[EVIL, 1.5], ['=HYPERLINK("x")', 2]]),
            Evidence("links", ["transport", "src", "dst", "bandwidth_gbps"], [[EVIL, 0, 1, 3.5]]),
        ],
    )
    return Report(
        input=InputInfo(f"/data/{EVIL}", None, "ascend_pt", "text", [0], [3], None, None),
        tool_version="test",
        summary={
            "per_rank": [
                {
                    "rank": 0,
                    "step": EVIL,
                    "step_us": 1.0,
                    "computing_us": 1.0,
                    "communication_not_overlapped_us": 0.0,
                    "free_us": 0.0,
                }
            ]
        },
        findings=[finding],
        not_evaluated=[NotEvaluated("x.y", f"reason {EVIL}")],
        warnings=[f"rank folder {EVIL}"],
        dimensions=("schedule",),
        checked_dimensions=("overall", "schedule"),
        generated=datetime(2025, 1, 2, 3, 4, 5).astimezone(),
    )


def test_json_matches_the_contract(demo_report, tmp_path):
    paths = write_reports(demo_report, tmp_path, ["json"])
    data = json.loads(paths["json"].read_text(encoding="utf-8"))
    # Additive: not_applicable is there when some check does not apply (on NPU data, the GPU-only ones).
    assert set(data) == CONTRACT_KEYS | {"not_applicable"}
    assert data["schema_version"] == 1 and data["tool"]["name"] == "performance-advisor"
    assert set(data["input"]) == INPUT_KEYS
    assert data["input"]["kind"] == "ascend_pt" and data["input"]["compare_path"] is None
    assert set(data["timings_s"]) == {"load", "checks", "render"}
    assert all(isinstance(w, str) and w for w in data["warnings"])
    assert all(set(row) == PER_RANK_KEYS for row in data["summary"]["per_rank"])
    for finding in data["findings"]:
        assert set(finding) == FINDING_KEYS
        assert finding["priority"] in ("high", "medium", "low")
        for ev in finding["evidence"]:
            assert set(ev) == {"name", "columns", "rows"}
            assert all(len(row) == len(ev["columns"]) for row in ev["rows"])


def test_html_is_self_contained_with_a_chart(demo_report, tmp_path):
    html = write_reports(demo_report, tmp_path, ["html"])["html"].read_text(encoding="utf-8")
    assert html.count("<script>") == 2  # plotly.js once, then the small bootstrap
    assert 'class="pa-chart"' in html and "Plotly.newPlot" in html
    assert not re.search(r"<script[^>]+src=|<link[^>]+href=", html)  # nothing loaded from outside
    for colour in ("#B5495B", "#fcaf17", "#65c294"):
        assert colour in html
    assert "What to fix first" in html and "Not evaluated" in html


def test_html_escapes_profile_strings():
    html = render_html(_evil_report())
    assert "<script>alert(1)" not in html
    assert "&lt;/script&gt;&lt;script&gt;alert(1)" in html  # text content, escaped
    assert "\\u003cscript\\u003ealert(1)" in html  # inside the link matrix's chart JSON
    assert "op &lt;/script&gt;" in html and "&amp; more" in html


def test_xlsx_summary_and_typed_cells(demo_report, tmp_path):
    path = write_reports(demo_report, tmp_path, ["xlsx"])["xlsx"]
    book = load_workbook(path)
    assert book.sheetnames[0] == "Summary"
    summary = book["Summary"]
    assert [c.value for c in summary[1]] == [
        "dimension",
        "check",
        "priority",
        "title",
        "description",
        "suggestion",
        "ranks",
        "estimated gain (µs)",
        "share of step",
        "gain basis",
        "counted in",
        "evidence sheets",
    ]
    checks = [c.value for c in summary["B"][1:]]
    row = checks.index("communication.exposed") + 2
    assert summary.cell(row, 8).data_type == "n" and summary.cell(row, 8).value > 0
    row = checks.index("overall.summary") + 2  # the picture: no gain of its own
    assert summary.cell(row, 8).value is None
    assert summary.freeze_panes == "A2" and summary.auto_filter.ref
    # Evidence sheets are numbered after their finding's summary row, and listed in that row.
    n = row - 1
    assert summary.cell(row, 12).value == f"{n} Step time breakdown, {n} Cluster spread"
    breakdown = book[f"{n} Step time breakdown"]
    # Evidence sheets keep the raw column names (machine-readable), not the HTML's headers with units.
    finding = next(f for f in demo_report.findings if f.check == "overall.summary")
    assert [c.value for c in breakdown[1]] == finding.evidence[0].columns
    assert breakdown["A1"].value == "rank"
    assert breakdown["C2"].data_type == "n"  # step_us is a number, not text
    assert f"{n} Cluster spread" in book.sheetnames


def test_xlsx_escapes_formulas_and_keeps_every_sheet(tmp_path):
    report = _evil_report()
    long_name = "A very long evidence table name that is longer than 31"
    report.findings[0].evidence += [Evidence(long_name, ["a"], [[1]]), Evidence(long_name, ["a"], [[2]])]
    path = write_reports(report, tmp_path, ["xlsx"])["xlsx"]
    book = load_workbook(path)
    assert (
        len(book.sheetnames) == 1 + 4 + 1 + 1 + 1
    )  # summary, 4 evidence tables, not evaluated, warnings, input
    assert all(len(name) <= 31 for name in book.sheetnames)
    evidence = book[book.sheetnames[1]]
    assert evidence["A3"].value == '=HYPERLINK("x")' and evidence["A3"].data_type == "s"


def test_unique_sheet_names():
    taken: set[str] = set()
    names = [unique_sheet_name("x" * 40, taken) for _ in range(3)] + [unique_sheet_name("a[b]:c", taken)]
    assert names[0] == "x" * 31 and names[1].endswith(" (2)") and names[2].endswith(" (3)")
    assert all(len(n) <= 31 for n in names) and names[3] == "a_b__c"


def test_file_names_never_overwrite(demo_report, tmp_path):
    first = write_reports(demo_report, tmp_path)
    second = write_reports(demo_report, tmp_path)
    stamp = demo_report.generated.strftime("%Y%m%d-%H%M%S")
    assert first["html"].name == f"demo_{stamp}.html"  # named after the analysed folder
    assert second["html"].name == f"demo_{stamp}_1.html"
    assert {p.suffix for p in second.values()} == {".html", ".xlsx", ".json"}
    assert all(p.is_absolute() and p.exists() for p in [*first.values(), *second.values()])


def test_output_dir_checks(demo_report, tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="exists and is not a directory"):
        write_reports(demo_report, tmp_path / "file")
    with pytest.raises(InputError, match="inside profiling data"):
        write_reports(demo_report, tmp_path / "x_ascend_pt" / "reports")
    paths = write_reports(demo_report, tmp_path / "new" / "dir", ["json"])
    assert paths["json"].parent == (tmp_path / "new" / "dir").absolute()


def test_catalogues_have_the_same_keys():
    assert catalogue_keys("en") == catalogue_keys("zh")
    assert Messages("zh").t("report.title") != Messages("en").t("report.title")


def test_chinese_html(tmp_path):
    root, _ = demo(tmp_path)
    html = render_html(run_analysis(root, language="zh"))
    assert "优先解决" in html and 'lang="zh"' in html


def test_malicious_folder_names_are_escaped_end_to_end(tmp_path):
    root = tmp_path / "<img src=x onerror=alert(1)>"
    rank_dir(root, "<script>alert(2)_ascend_pt", rank=None)  # no rank id: named in a warning
    report = run_analysis(root)
    assert any("<script>alert(2)" in w for w in report.warnings)
    html = render_html(report)
    assert "<img src=x" not in html and "<script>alert(2)" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and "&lt;script&gt;alert(2)" in html


def test_file_names_name_the_profile_and_the_baseline(demo_report, tmp_path):
    stamp = demo_report.generated.strftime("%Y%m%d-%H%M%S")
    compared = replace(demo_report, input=replace(demo_report.input, compare_path="/runs/good run/"))
    paths = write_reports(compared, tmp_path, ["json"])
    assert paths["json"].name == f"demo_vs_good_run_{stamp}.json"
    # Object-store paths and a path inside a rank folder name their folder too.
    obs = replace(demo_report.input, path="obs://bucket/jobs/run7", compare_path=None)
    assert report_stem(replace(demo_report, input=obs)) == f"run7_{stamp}"
    inner = replace(obs, path="/d/host_1_ascend_pt/ASCEND_PROFILER_OUTPUT")
    assert report_stem(replace(demo_report, input=inner)) == f"host_1_ascend_pt_{stamp}"


@pytest.mark.parametrize(
    ("file", "name"),
    [
        ("rank0.pt.trace.json.gz", "rank0"),
        ("worker1.1700000000.pt.trace.json", "worker1.1700000000"),
        ("trainer_log.jsonl", "trainer_log"),
        ("train.log", "train"),
        ("trainer_state.json", "trainer_state"),
        ("stdout.txt", "stdout"),
    ],
)
def test_trace_files_and_training_logs_are_named_without_their_suffix(file, name):
    assert profile_name(f"/data/{file}") == name


@pytest.mark.parametrize(
    ("folder", "name"),
    [
        ("<img src=x onerror=alert(1)>", "img_src_x_onerror_alert_1"),
        ("-rf ..", "rf"),  # no leading dash or dot: no option, no hidden file
        ("a$(rm -rf)b;`x`|y", "a_rm_-rf_b_x_y"),
        ("..", "profile"),
        ("训练 数据", "训练_数据"),  # word characters of any script stay
        ("x" * 300, "x" * 80),
        ("训" * 100, "训" * 26),  # at most 80 bytes of UTF-8
    ],
)
def test_hostile_folder_names_make_safe_file_names(folder, name):
    assert profile_name(f"/data/{folder}") == name


def test_cli_writes_into_its_own_folder_by_default(tmp_path, monkeypatch, capsys):
    root, _ = demo(tmp_path / "in")
    monkeypatch.chdir(tmp_path)
    assert cli_main(["analyze", str(root), "--quiet", "--format", "json"]) == 0
    (path,) = [Path(line) for line in capsys.readouterr().out.splitlines()]
    assert path.parent == tmp_path / "performance_advisor_reports"
    assert path.name.startswith(f"{root.name}_") and path.suffix == ".json"
