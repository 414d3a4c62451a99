"""The notebooks run headless (nbclient, a real ipykernel): docs/examples/advisor-in-a-notebook.ipynb
against the demo profile (its own assert cells check the DataFrames), and a report's --format ipynb."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from advisor import cli

from .engine_fixtures import PROJECT_ROOT, demo

EXAMPLE = PROJECT_ROOT / "docs" / "examples" / "advisor-in-a-notebook.ipynb"


def _execute(notebook: nbformat.NotebookNode, folder: Path) -> None:
    """Run every cell in a fresh kernel that imports this checkout's advisor, in `folder`;
    CellExecutionError (naming the cell) when a cell fails, an assert of its included."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])),
    }
    client = NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
    )
    client.execute(env=env)


def test_example_notebook_runs_and_its_assertions_hold(tmp_path):
    notebook = nbformat.read(EXAMPLE, as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")  # stored clean
    _execute(notebook, tmp_path)  # the demo profile is written there
    assert (tmp_path / "profiling_dir1").is_dir()
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert not [o for cell in code for o in cell.outputs if o.output_type == "error"]
    # The report's rich display: "what to fix first" in the cell that analyses, then the step chart.
    shown = next(cell for cell in code if "advisor.analyze(" in "".join(cell.source))
    html = [o for o in shown.outputs if o.output_type == "display_data" and "text/html" in o.data]
    assert "What to fix first" in html[0].data["text/html"]
    assert any("application/vnd.plotly.v1+json" in o.get("data", {}) for o in shown.outputs)
    # The last cell ran to its end and showed the kernels table's head.
    assert "text/html" in code[-1].outputs[-1].data


def test_a_reports_notebook_runs_and_shows_each_high_finding(tmp_path, capsys):
    """`--format ipynb`'s notebook (what "Open as notebook" writes) re-analyses the data and shows,
    for each high-priority cause of the report, that finding."""
    root, _ = demo(tmp_path)
    assert (
        cli.main(["analyze", str(root), "--output", str(tmp_path / "out"), "--format", "ipynb", "--quiet"])
        == 0
    )
    (path,) = [Path(line) for line in capsys.readouterr().out.splitlines()]
    notebook = nbformat.read(path, as_version=4)
    _execute(notebook, path.parent)
    shown = [
        output.data["text/html"]
        for cell in notebook.cells
        if cell.cell_type == "code" and "".join(cell.source).startswith("finding = ")
        for output in cell.outputs
        if "text/html" in output.get("data", {})
    ]
    assert len(shown) == 2 and "communication.exposed" in shown[0] and "overall.idle" in shown[1]
