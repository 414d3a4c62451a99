"""XLSX workbook (sheets, types, filters, widths) and the JSON report against its JSON Schema."""

from __future__ import annotations

import json
import math

import jsonschema
import pytest
from openpyxl import load_workbook

from advisor.engine import run_analysis
from advisor.report.jsonout import report_json_text, report_schema
from advisor.report.model import Evidence, Finding, InputInfo, NotEvaluated, Report
from advisor.report.sample import sample_report
from advisor.report.xlsx import MAX_COLUMN_WIDTH, write_xlsx

from .engine_fixtures import demo

VALIDATOR = jsonschema.Draft202012Validator(report_schema())


@pytest.fixture(scope="module")
def sample64() -> Report:
    return sample_report(64)


@pytest.fixture(scope="module")
def book64(sample64, tmp_path_factory):
    path = write_xlsx(sample64, tmp_path_factory.mktemp("xlsx") / "r.xlsx")
    return load_workbook(path)


def test_summary_sheet_one_row_per_finding(sample64, book64):
    summary = book64["Summary"]
    findings = sample64.sorted_findings()
    assert summary.max_row == 1 + len(findings) == 14
    assert [c.value for c in summary[2]][:8] == [
        "cluster",
        "cluster.slow_rank",
        "high",
        "Rank 5 is slow in computing",
        "Rank 5 computes 25 % longer than the median rank.",
        "1. Compare its kernels with a normal rank's: performance-advisor analyze --compare.",
        "5",
        15000,
    ]
    gains = [summary.cell(r, 8).value for r in range(2, summary.max_row + 1)]
    # Largest gain first; no estimate (the summary, a check without one) last, empty.
    assert gains[:-2] == sorted(gains[:-2], reverse=True) and gains[-2:] == [None, None]
    assert all(summary.cell(r, 8).data_type == "n" for r in range(2, summary.max_row - 1))
    row = {summary.cell(r, 2).value: r for r in range(2, summary.max_row + 1)}
    assert summary.cell(row["cluster.slow_rank"], 9).value == pytest.approx(0.2, abs=0.02)
    assert summary.cell(row["cluster.slow_rank"], 9).number_format == "0.0%"
    assert summary.cell(row["communication.small_packet"], 10).value == "upper_bound"
    assert summary.cell(row["comparison.kernel"], 11).value == "cluster.slow_rank"
    ranks = {summary.cell(r, 2).value: summary.cell(r, 7).value for r in range(2, summary.max_row + 1)}
    assert ranks["dataloader.slow"] == "0–63" and ranks["overall.summary"] is None  # cluster-wide: no ranks
    assert summary.freeze_panes == "A2" and summary.auto_filter.ref == "A1:L14"
    assert summary["C2"].fill.fgColor.rgb.endswith("F2C4CC")  # high: red tint
    assert summary.column_dimensions["E"].width == 70


def test_one_typed_sheet_per_evidence_table(sample64, book64):
    expected = sum(len(f.evidence) for f in sample64.findings)
    assert len(book64.sheetnames) == 1 + expected + 1 + 1  # summary, evidence, not evaluated, input
    names = book64.sheetnames
    assert len({n.lower() for n in names}) == len(names) and all(len(n) <= 31 for n in names)
    assert "6 Kernels_ target vs baseline" in names  # ':' is not allowed in a sheet name
    links = book64[next(n for n in names if n.endswith(" Links"))]
    assert links.max_row == 1 + 64 * 63  # every row, unlike the HTML
    header = [c.value for c in links[1]]
    assert header[:3] == ["transport", "src", "dst"]
    row = [c for c in links[2]]
    assert row[0].data_type == "s" and row[1].data_type == "n" and row[8].data_type == "n"
    assert row[13].value is True  # the slow link sorts first
    assert links.freeze_panes == "A2" and links.auto_filter.ref == f"A1:N{1 + 64 * 63}"
    widths = [links.column_dimensions[c].width for c in "ABCDEFGHIJKLMN"]
    assert all(8 <= w <= MAX_COLUMN_WIDTH for w in widths)
    assert links.column_dimensions["I"].width == len("bandwidth_gbps") + 2
    kernels = book64["6 Kernels_ target vs baseline"]
    assert kernels["H5"].value is None  # NaN -> empty cell, not the text "nan"
    assert book64["Not evaluated"]["A2"].value == "computation.graph_fusion"


def test_xlsx_in_chinese_and_with_odd_values(tmp_path):
    report = Report(
        input=InputInfo("/p", None, "ascend_pt", "db", [0], [1], None, None),
        tool_version="t",
        language="zh",
        findings=[
            Finding(
                "memory.x",
                "memory",
                "low",
                "t",
                "d",
                estimated_gain_us=math.inf,
                evidence=[Evidence("e", ["a", "b"], [[math.nan, "\x07bell"], [None, "=1+1"]])],
            ),
        ],
    )
    book = load_workbook(write_xlsx(report, tmp_path / "zh.xlsx"))
    summary = book["Summary"]
    assert summary["L1"].value == "证据工作表" and summary["H2"].value is None
    sheet = book["1 e"]
    assert sheet["A2"].value is None and sheet["B2"].value == "bell" and sheet["B3"].value == "=1+1"
    assert sheet["B3"].data_type == "s"


def test_warnings_have_a_sheet_of_their_own(tmp_path):
    report = sample_report(4, evil="<&>")
    book = load_workbook(write_xlsx(report, tmp_path / "w.xlsx"))
    assert book.sheetnames[-3:] == ["Not evaluated", "Warnings", "Input"]
    assert [[c.value for c in row] for row in book["Warnings"].iter_rows()] == [
        ["warning"],
        ["rank folder skipped<&>"],
    ]
    assert "Warnings" not in load_workbook(write_xlsx(sample_report(4), tmp_path / "none.xlsx")).sheetnames


def _validate(report: Report) -> dict:
    data = json.loads(report_json_text(report))
    VALIDATOR.validate(data)
    return data


def test_json_of_every_kind_validates(sample64):
    data = _validate(sample64)
    assert len(data["findings"]) == 13 and data["input"]["ranks"] == list(range(64))
    _validate(sample_report(4, evil="</script>"))
    kernels = next(f for f in data["findings"] if f["check"] == "comparison.kernel")
    assert kernels["evidence"][0]["rows"][3][7] is None  # NaN -> null: strict JSON
    empty = Report(input=InputInfo("/p", None, "ascend_pt", "text", [], [], None, None), tool_version="t")
    _validate(empty)


def test_json_of_a_demo_analysis_validates(tmp_path):
    root, _ = demo(tmp_path)
    data = _validate(run_analysis(root))
    assert data["summary"]["per_rank"] and data["findings"]
    assert data["warnings"] == []


def test_json_carries_the_warnings(sample64):
    assert _validate(sample64)["warnings"] == []
    data = _validate(sample_report(4, evil="</script>"))
    assert data["warnings"] == ["rank folder skipped</script>"]


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("findings", 0, "priority"), "urgent"),
        (("findings", 0, "check"), "no-dimension"),
        (("findings", 0, "ranks"), [1, 1]),
        (("findings", 0, "estimated_gain_us"), -1.0),
        (("input", "ranks"), ["0"]),
        (("schema_version",), 2),
        (("timings_s", "render"), None),
        (("warnings",), ["ok", ""]),
        (("warnings",), None),
    ],
)
def test_schema_rejects_broken_reports(sample64, path, value):
    data = json.loads(report_json_text(sample64))
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(jsonschema.ValidationError):
        VALIDATOR.validate(data)


def test_schema_requires_exactly_the_model_keys(sample64):
    data = json.loads(report_json_text(sample64))
    schema = report_schema()
    assert set(schema["required"]) == set(data)
    assert set(schema["$defs"]["finding"]["required"]) == set(data["findings"][0])
    assert set(schema["properties"]["input"]["required"]) == set(data["input"])
    extra = dict(data, surprise=1)
    with pytest.raises(jsonschema.ValidationError):
        VALIDATOR.validate(extra)
    not_evaluated = NotEvaluated("a.b", "why").to_json()
    assert schema["properties"]["not_evaluated"]["items"] == {"$ref": "#/$defs/check_note"}
    assert set(schema["$defs"]["check_note"]["required"]) == set(not_evaluated)
    # Added within schema_version 1: present only when some check does not apply to the device.
    assert "not_applicable" in schema["properties"] and "not_applicable" not in schema["required"]
    assert schema["properties"]["not_applicable"]["items"] == {"$ref": "#/$defs/check_note"}
