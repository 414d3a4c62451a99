"""Reports as notebooks (advisor.report.notebook, `--format ipynb`): cells that re-analyse the same
data with the Python API, headings from the catalogue, profile strings kept as data."""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path

import pytest

from advisor import cli
from advisor.report.messages import Messages
from advisor.report.notebook import build_notebook, markdown_text, write_notebook_beside
from advisor.synth.training_log import TrainingLogSpec, write_training_log

from .engine_fixtures import demo

HOSTILE = 'a"); import os; os.system("x'
HOSTILE_TITLE = "<script>alert(1)</script> *bold* [link](javascript:x) $x$ `code`"


def _report(findings: list[dict], description: str = "2 ranks, text export, steps 12–14") -> dict:
    return {"input": {"description": description}, "findings": findings}


def _finding(check: str, priority: str = "high", title: str = "t", counted_in: tuple = ()) -> dict:
    return {"check": check, "priority": priority, "title": title, "counted_in": list(counted_in)}


def _code_cells(notebook: dict) -> list[str]:
    return ["".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code"]


def _markdown_cells(notebook: dict) -> list[str]:
    return ["".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "markdown"]


def _analyze_call(notebook: dict) -> ast.Call:
    """The `advisor.analyze(...)` call of the notebook's code (every code cell must parse)."""
    calls = [
        node
        for source in _code_cells(notebook)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "advisor.analyze"
    ]
    assert len(calls) == 1
    return calls[0]


def test_hostile_paths_stay_string_literals():
    notebook = build_notebook(
        _report([_finding(HOSTILE, title=HOSTILE)]),
        data_path=HOSTILE,
        compare_path=HOSTILE + "'",
        language="en",
    )
    call = _analyze_call(notebook)
    assert [ast.literal_eval(a) for a in call.args] == [HOSTILE]
    keywords = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
    assert keywords == {"compare": HOSTILE + "'", "language": "en"}
    # The finding's cell names the check as a literal too: nothing but the two expected statements.
    finding_cell = next(s for s in _code_cells(notebook) if "findings_for(" in s and "[0]" in s)
    tree = ast.parse(finding_cell)
    assert [type(n).__name__ for n in tree.body] == ["Assign", "Expr"]
    lookup = tree.body[0].value
    assert ast.literal_eval(lookup.value.args[0]) == HOSTILE  # findings_for(<check>)[0]
    # No os.system call anywhere in the code.
    assert not any(
        isinstance(node, ast.Attribute) and node.attr == "system"
        for source in _code_cells(notebook)
        for node in ast.walk(ast.parse(source))
    )


def test_markdown_from_the_profile_is_escaped():
    notebook = build_notebook(
        _report([_finding("schedule.gc", title=HOSTILE_TITLE)], description="<img src=x onerror=alert(1)>"),
        data_path="/data/p",
        compare_path=None,
        language="en",
    )
    text = "\n".join(_markdown_cells(notebook))
    assert "<script>" not in text and "<img" not in text
    assert "&lt;script&gt;" in text and "&lt;img src=x onerror=alert(1)&gt;" in text
    for raw in ("*bold*", "[link]", "$x$", "`code`"):
        assert raw not in text
    assert markdown_text("a*b_c") == "a\\*b\\_c"
    assert markdown_text("two\nlines") == "two lines"  # a break would end the heading


@pytest.mark.parametrize("language", ["en", "zh"])
def test_cells_one_per_high_cause_with_catalogue_headings(language):
    m = Messages(language)
    findings = [
        _finding("communication.exposed", title="comm"),
        _finding("schedule.gc", priority="medium"),
        _finding("overall.idle", title="idle 1"),
        _finding("overall.idle", title="idle 2"),
        _finding("schedule.host_sync", counted_in=("overall.idle",)),  # explained by another: no cell
    ]
    notebook = build_notebook(_report(findings), data_path="/d", compare_path="/b", language=language)
    markdown = _markdown_cells(notebook)
    assert markdown[0].startswith(f"# {m.t('notebook.title')}\n")
    headings = [s for s in markdown if s.startswith("### ")]
    assert headings == [
        f"### {m.t('notebook.finding', title=title, check=markdown_text(check))}"
        for title, check in (
            ("comm", "communication.exposed"),
            ("idle 1", "overall.idle"),
            ("idle 2", "overall.idle"),
        )
    ]
    lookups = [s.splitlines()[0] for s in _code_cells(notebook) if s.startswith("finding = ")]
    assert lookups == [
        "finding = report.findings_for('communication.exposed')[0]",
        "finding = report.findings_for('overall.idle')[0]",
        "finding = report.findings_for('overall.idle')[1]",
    ]
    assert f"## {m.t('notebook.comparison')}" in markdown
    without_baseline = build_notebook(_report(findings), data_path="/d", compare_path=None, language=language)
    assert f"## {m.t('notebook.comparison')}" not in _markdown_cells(without_baseline)
    none_high = build_notebook(_report([findings[1]]), data_path="/d", compare_path=None, language=language)
    assert m.t("notebook.no_high") in _markdown_cells(none_high)
    assert notebook["nbformat"] == 4 and notebook["metadata"]["kernelspec"]["name"] == "python3"


def test_the_notebook_is_valid_nbformat_4_5():
    """Every cell has an id (required from nbformat 4.5), unique, and the notebook validates."""
    nbformat = pytest.importorskip("nbformat")
    findings = [_finding("communication.exposed"), _finding("overall.idle")]
    notebook = build_notebook(_report(findings), data_path="/d", compare_path="/b", language="en")
    ids = [cell["id"] for cell in notebook["cells"]]
    assert len(set(ids)) == len(ids)
    nbformat.validate(nbformat.from_dict(notebook))


def test_write_beside_never_overwrites(tmp_path):
    notebook = build_notebook(_report([]), data_path="/d", compare_path=None, language="en")
    (tmp_path / "r.ipynb").write_text("mine")
    first = write_notebook_beside(tmp_path, "r", notebook)
    second = write_notebook_beside(tmp_path, "r", notebook)
    assert (first.name, second.name) == ("r-1.ipynb", "r-2.ipynb")
    assert (tmp_path / "r.ipynb").read_text() == "mine"
    assert json.loads(first.read_text(encoding="utf-8")) == notebook
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r-1.ipynb", "r-2.ipynb", "r.ipynb"]  # no .part


def test_write_beside_leaves_nothing_when_writing_fails(tmp_path):
    notebook = build_notebook(_report([]), data_path="/d", compare_path=None, language="en")
    notebook["metadata"]["bad"] = object()  # not JSON: the write fails half-way
    with pytest.raises(TypeError):
        write_notebook_beside(tmp_path, "r", notebook)
    assert list(tmp_path.iterdir()) == []


def test_cli_format_ipynb_writes_the_notebook_with_the_report(tmp_path, capsys, monkeypatch):
    root, _ = demo(tmp_path, name=HOSTILE)
    monkeypatch.chdir(tmp_path)
    code = cli.main(["analyze", HOSTILE, "--output", "out", "--format", "json,ipynb", "--quiet"])
    out = capsys.readouterr().out
    assert code == 0
    paths = [Path(line) for line in out.splitlines()]
    assert sorted(p.suffix for p in paths) == [".ipynb", ".json"]
    assert len({p.with_suffix("") for p in paths}) == 1  # one stem: written as one set
    by_suffix = {p.suffix: p for p in paths}
    report = json.loads(by_suffix[".json"].read_text(encoding="utf-8"))
    notebook = json.loads(by_suffix[".ipynb"].read_text(encoding="utf-8"))
    call = _analyze_call(notebook)
    # The data as an absolute path: the notebook's kernel runs in the reports folder.
    assert ast.literal_eval(call.args[0]) == os.path.abspath(root) == report["input"]["path"]
    high = [f["check"] for f in report["findings"] if f["priority"] == "high" and not f["counted_in"]]
    assert high  # the demo has high-priority problems built in
    lookups = [s.splitlines()[0] for s in _code_cells(notebook) if s.startswith("finding = ")]
    assert [ast.literal_eval(ast.parse(s).body[0].value.value.args[0]) for s in lookups] == high


def test_cli_format_ipynb_reads_the_training_log_beside_the_profile(tmp_path, capsys, monkeypatch):
    root, _ = demo(tmp_path, name="job")
    log = write_training_log(tmp_path / "log", TrainingLogSpec(steps=2000, devices=4, inject=("stalls",)))
    monkeypatch.chdir(tmp_path)
    flags = ["--training-log", os.path.relpath(log, tmp_path), "--devices", "4", "--seq-length", "2048"]
    assert cli.main(["analyze", "job", "--output", "out", "--format", "json,ipynb", "--quiet", *flags]) == 0
    paths = {Path(line).suffix: Path(line) for line in capsys.readouterr().out.splitlines()}
    report = json.loads(paths[".json"].read_text(encoding="utf-8"))
    assert any(f["check"] == "training.throughput_drop" for f in report["findings"])
    call = _analyze_call(json.loads(paths[".ipynb"].read_text(encoding="utf-8")))
    keywords = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
    assert ast.literal_eval(call.args[0]) == os.path.abspath(root)
    assert keywords["training_log"] == str(log)  # absolute: the kernel runs in the reports folder
    assert (keywords["devices"], keywords["seq_length"]) == (4, 2048)


def test_a_log_analysed_alone_is_the_notebooks_data_with_no_second_log(tmp_path, capsys):
    log = write_training_log(tmp_path / "log", TrainingLogSpec(steps=2000))
    out = tmp_path / "out"
    assert cli.main(["analyze", str(log), "--output", str(out), "--format", "ipynb", "--quiet"]) == 0
    (written,) = out.glob("*.ipynb")
    call = _analyze_call(json.loads(written.read_text(encoding="utf-8")))
    assert [ast.literal_eval(a) for a in call.args] == [str(log)]
    assert "training_log" not in {k.arg for k in call.keywords}
