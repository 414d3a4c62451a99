"""A report as a Jupyter notebook (nbformat 4) that loads the same task's data with the Python API.

The notebook holds no copy of the findings: its cells call `advisor.analyze` on the analysed data
(and the baseline), show the summary, one cell per high-priority finding (its evidence tables and
figure) and, with a baseline, the comparison. Headings come from the message catalogue in the
report's language.

Every string that comes from the profile (paths, check ids, finding titles) is data: in code cells
it is a Python literal written by `repr()`, never text pasted into code; in markdown cells it is
escaped, so a folder named `a"); import os; os.system("x` stays a string.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .. import outputs
from .messages import Messages

NOTEBOOK_SUFFIX = "ipynb"
MAX_NAME_TRIES = 10_000  # stem-N names tried before giving up on a crowded folder
# Characters that mean something to Markdown inside a line (emphasis, code, links, images, tables,
# headings, and `$` for JupyterLab's math): backslashed so that a title shows as the text it is.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]#!|~$])")


def markdown_text(text: str) -> str:
    """`text` (from the profile) as literal Markdown: HTML escaped, Markdown's special characters
    backslashed, on one line (a line break in a title would end a heading)."""
    flat = " ".join(str(text).split())
    return _MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(flat, quote=False))


def _source(text: str) -> list[str]:
    """A cell's source in nbformat's list-of-lines form."""
    lines = text.splitlines(keepends=True)
    return lines or [""]


def _markdown(text: str) -> dict[str, Any]:
    return {"cell_type": "markdown", "metadata": {}, "source": _source(text)}


def _code(text: str) -> dict[str, Any]:
    return {
        "cell_type": "code",
        "execution_count": None,
        "metadata": {},
        "outputs": [],
        "source": _source(text),
    }


def _analyze_call(
    report: Mapping[str, Any],
    data_path: str,
    compare_path: str | None,
    language: str,
    dimensions: Sequence[str] | None,
    training_log: str | None,
) -> str:
    baseline = repr(str(compare_path)) if compare_path is not None else "None"
    arguments = [repr(str(data_path)), f"compare={baseline}"]
    if dimensions:
        arguments.append(f"dimensions={tuple(str(d) for d in dimensions)!r}")
    if training_log is not None:
        arguments.append(f"training_log={str(training_log)!r}")
    # The job's facts the user gave for the log (the log itself states the others).
    training = report.get("training") or {}
    for fact in ("devices", "seq_length"):
        if training.get(f"{fact}_source") == "user" and isinstance(training.get(fact), int):
            arguments.append(f"{fact}={int(training[fact])}")
    arguments.append(f"language={language!r}")
    return f"report = advisor.analyze({', '.join(arguments)})"


def _high_findings(report: Mapping[str, Any]) -> list[tuple[dict[str, Any], int]]:
    """The report's high-priority findings in the report's order, each with its position among the
    findings of its check (what `report.findings_for(check)[n]` returns on the same data)."""
    seen: dict[str, int] = {}
    chosen = []
    for finding in report.get("findings") or []:
        check = str(finding.get("check", ""))
        occurrence = seen.get(check, 0)
        seen[check] = occurrence + 1
        if finding.get("priority") == "high" and not finding.get("counted_in"):
            chosen.append((finding, occurrence))
    return chosen


def build_notebook(
    report: Mapping[str, Any],
    *,
    data_path: str,
    compare_path: str | None,
    language: str,
    dimensions: Sequence[str] | None = None,
    training_log: str | None = None,
) -> dict[str, Any]:
    """An nbformat-4 notebook (a JSON-able dict) that re-analyses `data_path` (against
    `compare_path`, with `training_log` beside it) with the Python API and walks through `report`
    (the JSON report, docs/architecture.md §3.2): the summary, each high-priority finding, the
    comparison."""
    m = Messages(language)
    profile_line = (report.get("input") or {}).get("description") or str(data_path)
    analyze = _analyze_call(report, data_path, compare_path, language, dimensions, training_log)
    cells = [
        _markdown(f"# {m.t('notebook.title')}\n\n{markdown_text(profile_line)}"),
        _markdown(m.t("notebook.load")),
        _code(f"import advisor\n\n{analyze}\nreport"),
        _markdown(f"## {m.t('notebook.summary')}"),
        _code("report.metrics.step_breakdown()"),
        _code('report.figure("step_breakdown")'),
        _code("report.findings"),
    ]
    high = _high_findings(report)
    cells.append(_markdown(f"## {m.t('notebook.high')}"))
    if not high:
        cells.append(_markdown(m.t("notebook.no_high")))
    for finding, occurrence in high:
        title, check = str(finding.get("title", "")), str(finding.get("check", ""))
        heading = m.t("notebook.finding", title=markdown_text(title), check=markdown_text(check))
        cells.append(_markdown(f"### {heading}"))
        cells.append(_code(f"finding = report.findings_for({check!r})[{occurrence}]\nfinding"))
        cells.append(_code("finding.figure()"))
    if compare_path is not None:
        cells.append(_markdown(f"## {m.t('notebook.comparison')}"))
        cells.append(_code('report.findings_for("comparison")'))
    cells.append(_markdown(m.t("notebook.more")))
    # nbformat 4.5 requires an id on every cell; numbered, so that one report gives one notebook.
    return {
        "cells": [{"id": f"cell-{n}", **cell} for n, cell in enumerate(cells)],
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def notebook_text(notebook: Mapping[str, Any]) -> str:
    """The .ipynb file's text (nbformat's own layout: indent 1, keys sorted, UTF-8 unescaped)."""
    return json.dumps(notebook, ensure_ascii=False, indent=1, sort_keys=True) + "\n"


def write_notebook(notebook: Mapping[str, Any], path: Path) -> Path:
    """Write `notebook` to `path`, which must not exist (a report writer: the caller stages it)."""
    with path.open("x", encoding="utf-8") as fh:
        fh.write(notebook_text(notebook))
    return path


def write_notebook_beside(report_dir: Path, stem: str, notebook: Mapping[str, Any]) -> Path:
    """Write `notebook` into `report_dir` as `stem.ipynb`, or `stem-1.ipynb`, `stem-2.ipynb`, … when
    that name is taken: atomically (complete or absent) and never overwriting a file. Returns its
    path."""
    staged = outputs.stage(Path(report_dir) / f"{stem}.{NOTEBOOK_SUFFIX}")
    try:
        write_notebook(notebook, staged)
        names = (stem if n == 0 else f"{stem}-{n}" for n in range(MAX_NAME_TRIES))
        return outputs.publish({NOTEBOOK_SUFFIX: staged}, names)[NOTEBOOK_SUFFIX]
    finally:
        outputs.discard([staged])
