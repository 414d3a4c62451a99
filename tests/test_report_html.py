"""HTML report: sections, ranking, charts, evidence tables, code snippets, size budget, languages."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import replace

import plotly.graph_objects as go
import pytest

from advisor.ranges import number_ranges
from advisor.report import html as html_module
from advisor.report.charts import mean_step_us
from advisor.report.html import (
    HTML_CELL_BUDGET,
    MAX_HTML_ROWS,
    MIN_HTML_ROWS,
    column_header,
    one_line,
    render_html,
    rich_text,
    rows_cap,
)
from advisor.report.messages import Messages, catalogue_keys
from advisor.report.model import Evidence, Finding, InputInfo, Report
from advisor.report.sample import SLOW_RANK, sample_report

EVIL = "</script><script>alert(1)</script>"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def sample4() -> Report:
    return sample_report(4)


@pytest.fixture(scope="module")
def html4(sample4) -> str:
    return render_html(sample4)


def figure(html: str, name: str) -> dict:
    match = re.search(rf'<script type="application/json" id="pa-figure-{name}">(.*?)</script>', html, re.S)
    assert match, f"no figure {name}"
    return json.loads(match.group(1))


def section(html: str, name: str) -> str:
    start = html.index(f'<section id="{name}">')
    return html[start : html.index("</section>", start)]


def test_fix_first_ranked_by_gain_with_priority_and_action(sample4, html4):
    fix = section(html4, "pa-fix-first")
    titles = re.findall(r'<td><a href="#pa-finding-\d+" class="pa-jump">([^<]+)</a>', fix)
    # One row per cause: no overall summary, nothing counted in another finding.
    expected = [f.title for f in sample4.sorted_findings() if f.ranked]
    assert titles == expected and len(titles) == 11
    assert "Step time is dominated by computing" not in titles
    assert titles[0] == f"Rank {SLOW_RANK % 4} is slow in computing"  # 15 ms, the largest gain
    assert titles[-1] == "Stream synchronisation in the loop"  # no estimate: last
    # The comparison counted in the slow rank is listed under its row, not ranked again.
    first_row = fix.split("</tr>")[1]
    assert "Also explains:" in first_row and "Kernels are 30 % slower than the baseline" in first_row
    rows = re.findall(r'<tr class="pa-row-(\w+)">', fix)
    assert rows[:3] == ["high", "high", "high"] and rows.count("low") == 4
    # The one-line action is the first suggestion's first clause, code marked up.
    assert '<td class="pa-action" title="Call gc.freeze() once after' in fix
    assert "Call <code>gc.freeze()</code> once after the model, optimizer and data loader are built" in fix
    share = 15_000 / mean_step_us(sample4)  # 15 ms of a ~75 ms mean step
    assert 0.15 < share < 0.25
    assert re.search(rf'<td class="n">15\.000</td>\s*<td class="n">{share:.1%}</td>', fix)
    assert "high: 3" in fix and "medium: 4" in fix and "low: 4" in fix


def test_sections_hold_their_dimensions(html4):
    overall = section(html4, "pa-overall")
    assert 'data-check="overall.summary"' in overall and 'data-check="cluster.slow_rank"' in overall
    assert 'data-check="cluster.slow_link"' in overall and 'id="pa-cluster"' in overall
    comparison = section(html4, "pa-comparison")
    assert 'data-check="comparison.kernel"' in comparison and "computation." not in comparison
    problems = section(html4, "pa-problems")
    for dimension, check in [
        ("computation", "computation.aicpu"),
        ("communication", "communication.exposed"),
        ("schedule", "schedule.gc"),
        ("memory", "memory.operators"),
        ("dataloader", "dataloader.slow"),
    ]:
        start = problems.index(f'id="pa-dim-{dimension}"')
        end = problems.find('<details class="pa-dimension"', start + 1)
        assert f'data-check="{check}"' in problems[start : end if end > 0 else None]
    assert "cluster.slow_rank" not in problems and "comparison.kernel" not in problems
    not_evaluated = section(html4, "pa-not-evaluated")
    assert (
        "<code>computation.graph_fusion</code>" in not_evaluated and "ge_proto_*_Build.txt" in not_evaluated
    )


def test_finding_block_says_what_why_what_to_do_and_where(html4):
    start = html4.index('data-check="computation.aicpu"')
    block = html4[start : html4.index('data-check="computation.dynamic_shape"')]
    for heading in ("What was seen", "Why it matters", "Suggestions", "Where it was seen"):
        assert f"<h4>{heading}</h4>" in block
    assert "Fixing this could save about 8.000 ms per step (10.6% of the step): time the profile" in block
    assert "Ranks: 0–3" in block and "step 12" in block
    # Backticks and code-like text become <code> with a copy button after each.
    assert '<code>index.to(torch.int32)</code><button type="button" class="pa-copy"' in block
    assert "<code>tensor.index_put_</code>" in block
    assert "<code>torch_npu.profiler.profile(with_stack=True)</code>" in block


def test_evidence_tables_are_sortable_filterable_and_capped():
    report = sample_report(4, kernel_rows=500)
    html = render_html(report)
    start = html.index('data-check="comparison.kernel"')
    block = html[start : html.index("</details>\n</details>", start)]
    assert 'class="pa-filter"' in block and 'class="pa-sortable"' in block
    headers = re.findall(r'<th([^>]*) data-col="(\w+)"[^>]*>([^<]+)</th>', block)
    kinds = {name: ('data-type="num"' in attrs) for attrs, name, _ in headers}
    assert kinds["name"] is False and kinds["target_us"] is True and kinds["ratio"] is True  # NaN ignored
    assert block.count("<tr><td>aclnnKernel_") == MAX_HTML_ROWS
    assert f"Showing {MAX_HTML_ROWS} of 500 rows" in block
    assert "(500 rows)" in block


def test_charts_overall_steps_heatmap_and_links(html4):
    ranks = figure(html4, "overall")
    assert [t["name"] for t in ranks["data"]] == ["Computing", "Communication (not overlapped)", "Free"]
    assert ranks["data"][0]["x"] == ["rank 0", "rank 1", "rank 2", "rank 3"]
    slow = SLOW_RANK % 4
    assert ranks["data"][0]["y"][slow] == pytest.approx(75.0, rel=0.03)  # 60 ms × 1.25
    steps = figure(html4, "steps")
    assert steps["data"][0]["x"] == ["step 12", "step 13", "step 14"]
    assert steps["data"][-1]["type"] == "scatter"  # the slowest rank's step time
    heat = figure(html4, "heatmap")["data"][0]
    assert heat["x"] == ["Computing", "Communication (not overlapped)", "Free", "Step"]
    # rank 1 computes 15 ms more than the median rank of a ~71 ms step: about +21 %.
    assert heat["z"][slow][0] == pytest.approx(21.0, abs=3.0)
    assert all(abs(row[0]) < 3.0 for i, row in enumerate(heat["z"]) if i != slow)
    links = [figure(html4, f"links-{i}") for i in (1,)]
    matrix = links[0]["data"][0]
    assert matrix["type"] == "heatmap" and matrix["x"] == ["0", "1", "2", "3"]
    assert matrix["z"][1][0] == pytest.approx(5.4, rel=0.06)  # the slowed link 1 -> 0
    assert matrix["z"][0][0] is None and matrix["z"][0][1] == pytest.approx(18.0, rel=0.06)
    for name in ("overall", "steps", "heatmap", "links-1"):
        go.Figure(figure(html4, name))  # plotly accepts every figure as is
    assert html4.count("<script>") == 2  # plotly.js once, then the page script


def test_no_heatmap_for_two_ranks_and_no_plotly_without_charts():
    html = render_html(sample_report(2))
    assert 'id="pa-figure-overall"' in html and 'id="pa-figure-heatmap"' not in html
    report = sample_report(2)
    report = replace(
        report, summary={"per_rank": []}, findings=[f for f in report.findings if f.dimension != "cluster"]
    )
    html = render_html(report)
    assert "pa-figure-" not in html
    assert html.count("<script>") == 1 and len(html) < 200_000  # the page script only, no plotly.js
    assert "No step time breakdown is available." in html


def test_cluster_verdict_and_comparison_section_when_empty():
    report = sample_report(4)
    report = replace(
        report, findings=[f for f in report.findings if f.dimension not in ("cluster", "comparison")]
    )
    html = render_html(report)
    assert "No slow rank or slow link was found." in html
    assert "No significant difference was found" in html  # a baseline was given, nothing differs
    report = replace(report, input=replace(report.input, compare_path=None))
    assert 'id="pa-comparison"' not in render_html(report)


def test_every_profile_string_is_escaped():
    html = render_html(sample_report(4, evil=EVIL))
    assert "<script>alert(1)" not in html
    assert html.count("&lt;/script&gt;&lt;script&gt;alert(1)") > 10
    assert re.search(r"<script[^>]*>[^<]*alert", html) is None


def test_rich_text_escapes_code_too():
    text = rich_text(f"run `x <b>{EVIL}` then gc.freeze() & TASK_QUEUE_ENABLE=2 --foo-bar", copy_label='a"b')
    assert "<b>" not in text and "<script>" not in text
    assert "<code>x &lt;b&gt;&lt;/script&gt;" in text and "<code>gc.freeze()</code>" in text
    assert "<code>TASK_QUEUE_ENABLE=2</code>" in text and "<code>--foo-bar</code>" in text
    assert "&amp;" in text and 'title="a&#34;b"' in text
    plain = rich_text("Look at rank(s) 1 and 2, e.g. in the table.")
    assert "<code>" not in plain


def test_one_line_and_number_ranges():
    assert one_line("Call gc.freeze() once: then it is fine.") == "Call gc.freeze() once"
    assert one_line("Use larger buckets, e.g. DDP(bucket_cap_mb=100). More text.") == (
        "Use larger buckets, e.g. DDP(bucket_cap_mb=100)"
    )
    long = one_line("x" * 500)
    assert len(long) == 160 and long.endswith("…")
    assert number_ranges([7, 0, 1, 2, 3, 5, 5]) == "0–3, 5, 7"
    assert number_ranges(list(range(64))) == "0–63" and number_ranges([]) == ""
    assert number_ranges([12, 14, 15, 16, 17, 18, 19, 20]) == "12, 14–20"


def test_rows_cap_keeps_the_page_within_budget():
    small = [Evidence("a", ["x"] * 5, [[1] * 5] * 300)]
    assert rows_cap(small) == MAX_HTML_ROWS
    big = [Evidence(f"t{i}", ["x"] * 14, [[1] * 14] * 4000) for i in range(60)]
    cap = rows_cap(big)
    assert MIN_HTML_ROWS <= cap < MAX_HTML_ROWS
    assert sum(min(len(e.rows), cap) * 14 for e in big) <= HTML_CELL_BUDGET or cap == MIN_HTML_ROWS


def test_plotly_bundle_is_the_cartesian_one_when_built(tmp_path, monkeypatch):
    # The JS build copies plotly.js's cartesian bundle next to the renderer; without it (a source
    # tree never built) the plotly package's full bundle serves. Either cannot close its <script>.
    bundle = tmp_path / "plotly-cartesian.min.js"
    bundle.write_text('var Plotly={version:"cartesian"};var s="</script>";', encoding="utf-8")
    monkeypatch.setattr(html_module, "PLOTLY_CARTESIAN", bundle)
    html_module._plotly_js.cache_clear()
    try:
        html = render_html(sample_report(2))
        assert 'var Plotly={version:"cartesian"};var s="<\\/script>";' in html
        monkeypatch.setattr(html_module, "PLOTLY_CARTESIAN", tmp_path / "absent.js")
        html_module._plotly_js.cache_clear()
        full = html_module._plotly_js()
        assert 'version:"cartesian"' not in full and len(full) > 3_000_000
    finally:
        html_module._plotly_js.cache_clear()


def test_64_rank_report_stays_under_6_mb():
    report = sample_report(64)
    # Many large tables, as a busy cluster report would have: 30 more findings of 2000 rows each.
    extra = [
        Finding(
            check=f"computation.extra_{i}",
            dimension="computation",
            priority="low",
            title=f"extra {i}",
            description="d",
            estimated_gain_us=1.0,
            evidence=[
                Evidence(
                    "Per rank and op",
                    [f"c{j}" for j in range(12)],
                    [[r * 0.5 + j for j in range(12)] for r in range(2000)],
                )
            ],
        )
        for i in range(30)
    ]
    report.findings.extend(extra)
    html = render_html(report)
    size = len(html.encode("utf-8"))
    assert size < 6_000_000, size
    links = figure(html, "links-1")  # HCCS within nodes: 64 ranks in the matrix
    assert len(links["data"][0]["z"]) == 64
    assert figure(html, "heatmap")["data"][0]["y"][-1] == "rank 63"


def test_chinese_report_uses_the_catalogue():
    html = render_html(sample_report(4, language="zh"))
    assert 'lang="zh"' in html and "优先解决" in html and "首要操作" in html and "全部展开" in html
    assert figure(html, "overall")["data"][0]["name"] == "计算"
    ui = json.loads(re.search(r'id="pa-ui-text">(.*?)</script>', html).group(1))
    assert ui["rows_shown"] == "显示 {shown} / {total} 行"  # placeholders left for the page script


def test_empty_report_renders():
    report = Report(
        input=InputInfo("/p", None, "ascend_pt", "db", [], [], None, None),
        tool_version="t",
        dimensions=("memory",),
    )
    html = render_html(report)
    assert "No findings." in html and 'id="pa-dim-memory"' in html
    assert "No checks are implemented for this dimension yet." in html


@pytest.mark.skipif(CHROMIUM is None, reason="needs chromium")
def test_chromium_draws_the_charts_without_errors(tmp_path, html4):
    probe = (
        "<script>window.paErrors=[];window.addEventListener('error',function(e){paErrors.push(String(e.message))});"
        "window.addEventListener('load',function(){setTimeout(function(){var d=document.createElement('div');"
        "d.id='pa-probe';d.textContent=JSON.stringify({errors:paErrors,svg:document.querySelectorAll("
        "'#pa-chart-overall .main-svg').length,ms:Math.round(performance.now())});"
        "document.body.appendChild(d)},0)})"
        "</script>"
    )
    page = tmp_path / "report.html"
    page.write_text(html4.replace("<head>", "<head>" + probe, 1), encoding="utf-8")
    result = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    match = re.search(r'<div id="pa-probe">(.*?)</div>', result.stdout)
    assert match, result.stderr[-2000:]
    state = json.loads(match.group(1).replace("&quot;", '"'))
    assert state["errors"] == [] and state["svg"] >= 1


def _header_row(html: str, label: str) -> str:
    match = re.search(rf"<tr><th>{label}</th><td>(.*?)</td></tr>", html, re.S)
    assert match, label
    return match.group(1)


def test_versions_say_where_each_comes_from():
    report = sample_report(2)  # the data records CANN 8.0.RC1 and torch_npu 2.1.0
    row = _header_row(render_html(report), "Versions")
    assert row == "CANN 8.0.RC1 (recorded in the data)<br>torch_npu 2.1.0 (recorded in the data)"
    # A hint stands in only where the data records nothing, and says it is one; no hint: unknown.
    report = replace(
        report,
        input=replace(report.input, cann_version=None, torch_version=None, versions={}),
        version_hints={"cann_version": "7.0.0", "torch_version": ""},
    )
    row = _header_row(render_html(report), "Versions")
    assert row == (
        "CANN 7.0.0 (your hint: the data records no version)<br>"
        "torch_npu: unknown (not recorded in the data, no hint given)"
    )
    row = _header_row(render_html(replace(report, language="zh")), "版本")
    assert row == "CANN 7.0.0（用户指定：数据中未记录版本）<br>torch_npu：未知（数据中未记录，也未指定）"


def _evidence_report(evidence: list[Evidence], language: str = "en", **input_fields) -> Report:
    finding = Finding(
        check="schedule.x",
        dimension="schedule",
        priority="low",
        title="t",
        description="calls per step 1.0 -> 2.0, avg 3.0 -> 4.0 µs",
        evidence=evidence,
    )
    info = InputInfo("/p", None, "ascend_pt", "text", [0], [1], None, None)
    return Report(
        input=replace(info, **input_fields),
        tool_version="t",
        findings=[finding],
        language=language,
        dimensions=("schedule",),
    )


def _headers(html: str) -> list[tuple[str, str]]:
    """(raw column name, header text) of every evidence table's headers."""
    return re.findall(r'<th[^>]* data-col="(\w+)" title="\1"[^>]*>([^<]*)</th>', html)


def test_evidence_headers_show_units_and_translations():
    m, zh = Messages("en"), Messages("zh")
    assert column_header(m, "duration_us") == "duration\u00a0(µs)"
    assert column_header(m, "bandwidth_gbps") == "bandwidth\u00a0(GB/s)"
    assert column_header(m, "exposed_share") == "exposed\u00a0(%)"
    assert column_header(m, "share_of_communication") == "communication\u00a0(%)"
    assert column_header(m, "fastest_total_us_per_step") == "fastest: total\u00a0(µs/step)"
    assert column_header(m, "robust_z") == "robust z" and column_header(m, "weird_thing") == "weird thing"
    assert column_header(zh, "duration_us") == "耗时（µs）"
    assert column_header(zh, "baseline_calls_per_step") == "基线：每 step 调用次数"
    columns = ["op_name", "duration_us", "exposed_share", "bandwidth_gbps"]
    html = render_html(_evidence_report([Evidence("ops", columns, [["a", 1500.0, 0.125, 3.5]])]))
    # The raw name stays as the header's title and data-col, for copying and filtering by it.
    assert _headers(html) == [
        ("op_name", "op name"),
        ("duration_us", "duration\u00a0(µs)"),
        ("exposed_share", "exposed\u00a0(%)"),
        ("bandwidth_gbps", "bandwidth\u00a0(GB/s)"),
    ]
    assert "<tr><td>a<td class=n>1,500.000<td class=n>12.5<td class=n>3.500" in html  # a share in %


def test_empty_columns_are_hidden_and_named():
    rows = [[0, None, 1.5, float("nan")], [1, None, 2.5, None]]
    html = render_html(
        _evidence_report([Evidence("per rank", ["rank", "stage", "step_us", "robust_z"], rows)])
    )
    assert [raw for raw, _ in _headers(html)] == ["rank", "step_us"]
    assert "<tr><td class=n>0<td class=n>1.500\n" in html
    assert "Columns with no value in any row are not shown: stage, robust z." in html


def test_row_counts_are_singular_or_plural():
    one = Evidence("one", ["a"], [["x"]])
    two = Evidence("two", ["a"], [["x"], ["y"]])
    html = render_html(_evidence_report([one, two]))
    assert 'one <span class="pa-muted">(1 row)</span>' in html
    assert 'two <span class="pa-muted">(2 rows)</span>' in html
    assert "(1 ranks)" not in html and "(1 rank)" in html
    zh = render_html(_evidence_report([one, two], language="zh"))
    assert "(1 行)" in zh and "(2 行)" in zh and "(1 个 rank)" in zh


def test_arrows_never_wrap():
    rows = [["1 -> 0", 2.0], ["2→3", 1.0]]
    html = render_html(_evidence_report([Evidence("links", ["link", "bandwidth_gbps"], rows)]))
    assert "<tr><td class=a>1 -&gt; 0<td class=n>2.000" in html and "<tr><td class=a>2→3" in html
    assert '<span class="pa-nw">1.0 -&gt; 2.0,</span>' in html  # in a description too
    assert "td.a, .pa-nw { white-space: nowrap; }" in html


def test_step_lists_are_ranges():
    html = render_html(_evidence_report([], steps=list(range(1, 70))))
    assert _header_row(html, "Steps") == "1–69"
    html = render_html(_evidence_report([], steps=[12, 14, 15, 16, 17, 18, 19, 20]))
    assert _header_row(html, "Steps") == "12, 14–20"


def test_profile_line_is_translated():
    report = _evidence_report([], ranks=[0, 1], steps=[12, 13, 14])
    assert _header_row(render_html(report), "Profile") == "2 ranks, text export, steps 12–14"
    zh = render_html(replace(report, language="zh"))
    assert _header_row(zh, "性能数据") == "2 个 rank，文本格式导出，step 12–14"
    one = replace(report, input=replace(report.input, ranks=[0], steps=[50], export="db"))
    assert _header_row(render_html(one), "Profile") == "1 rank, db export, step 50"
    none = replace(report, input=replace(report.input, steps=[], export="mixed"))
    assert _header_row(render_html(none), "Profile") == "2 ranks, text and db exports, no step markers"


def test_chinese_says_step_for_a_training_step():
    # One term, as the profiler's own data and docs write it ("step"), not "迭代" or "步" besides it;
    # 迭代器 (iterator), 同步/异步 (sync), 进一步/逐步 (further, gradually) are other words.
    other = re.compile(r"迭代(?!器)|(?<![同异逐])(?<!进一)步(?!骤)")
    zh = Messages("zh")
    for key in catalogue_keys("zh"):
        value = zh._raw(key)
        for text in value if isinstance(value, list) else [value]:
            assert not other.search(text), (key, text)
