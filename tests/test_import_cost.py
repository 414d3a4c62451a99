"""A run imports only what it uses: a JSON-only analysis of a local profile loads no report writer
it does not write (openpyxl, jinja2, plotly), no object-store client (boto3) and no other format's
table readers. Each of these costs import time on every cold CLI run (~0.3 s for openpyxl and
jinja2 together), which on a small profile is most of the run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from advisor.synth import SynthSpec, write_synth_profile

from .engine_fixtures import PROJECT_ROOT

# Runs the CLI in a fresh interpreter, then prints which modules that run left loaded.
PROBE = """
import json, sys
from advisor.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""

UNUSED_BY_LOCAL_JSON = ("openpyxl", "jinja2", "plotly", "boto3", "botocore", "advisor.report.html",
                        "advisor.report.xlsx", "advisor.storage.client")  # fmt: skip
# The table readers of the formats that the profile is not (detection imports none of them).
OTHER_READERS = {
    "text": ("advisor.formats.ascend_db.db", "advisor.formats.kineto.tables"),
    "db": ("advisor.formats.ascend_text.trace_view", "advisor.formats.kineto.tables"),
}


def _analyze(tmp_path: Path, profile: Path, formats: str) -> tuple[set[str], list[Path]]:
    out = tmp_path / f"out-{formats.replace(',', '-')}"
    argv = ["analyze", str(profile), "--format", formats, "--output", str(out), "--quiet"]
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *argv],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    *paths, probe = result.stdout.strip().splitlines()
    loaded = json.loads(probe)
    assert loaded["code"] == 0
    return set(loaded["modules"]), [Path(line) for line in paths if line.strip()]


@pytest.mark.parametrize("export", ["text", "db"])
def test_json_only_run_imports_no_unused_writer_client_or_reader(tmp_path, export):
    profile = write_synth_profile(tmp_path / "prof", SynthSpec(ranks=2, steps=(3, 4), export=export))
    modules, paths = _analyze(tmp_path, profile, "json")
    assert [p.suffix for p in paths] == [".json"]
    report = json.loads(paths[0].read_text(encoding="utf-8"))
    assert report["input"]["ranks"] == [0, 1]
    unused = (*UNUSED_BY_LOCAL_JSON, *OTHER_READERS[export])
    assert [name for name in unused if name in modules] == []


def test_writing_xlsx_does_import_openpyxl(tmp_path):
    """The control: the probe sees an import when the run does need it."""
    profile = write_synth_profile(tmp_path / "prof", SynthSpec(ranks=2, steps=(3, 4)))
    modules, paths = _analyze(tmp_path, profile, "xlsx,json")
    assert sorted(p.suffix for p in paths) == [".json", ".xlsx"]
    assert "openpyxl" in modules


def test_import_advisor_alone_loads_no_pandas_and_the_api_on_first_use():
    """`import advisor` is the server extension's entry point: the Python API (pandas, the engine)
    loads when one of its names is first used, not before."""
    probe = (
        "import json, sys\n"
        "import advisor\n"
        "before = sorted(sys.modules)\n"
        "advisor.analyze\n"
        "print(json.dumps({'before': before, 'after': sorted(sys.modules)}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=120
    )
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)
    heavy = ("pandas", "numpy", "advisor.api", "advisor.engine")
    assert [name for name in heavy if name in loaded["before"]] == []
    assert [name for name in heavy if name in loaded["after"]] == list(heavy)
