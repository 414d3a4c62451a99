"""A run imports only what it uses: a JSON-only analysis of a local profile loads no report writer
it does not write (openpyxl, jinja2, plotly), no object-store client (boto3), no other format's
table readers, nothing of the paths it does not take (Dask, the demo and synthetic profiles, the
notebook, the training-log analysis). Each of these costs import time on every cold CLI run (~0.3 s
for openpyxl and jinja2 together), which on a small profile is most of the run. The warm worker, in
turn, imports everything a task needs."""

from __future__ import annotations

import json
import os
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

UNUSED_BY_LOCAL_JSON = ("openpyxl", "jinja2", "markupsafe", "plotly", "boto3", "botocore",
                        "advisor.report.html", "advisor.report.xlsx", "advisor.report.charts",
                        "advisor.report.notebook", "advisor.storage.client", "advisor.storage.fetch",
                        "advisor.dask_engine", "distributed", "advisor.demo", "advisor.synth",
                        "advisor.training", "advisor.api", "shlex")  # fmt: skip
# The table readers of the formats that the profile is not (detection imports none of them).
NOT_IMPORTED_FOR = {
    "text": ("advisor.formats.ascend_db.db", "advisor.formats.kineto.tables"),
    "db": ("advisor.formats.ascend_text.trace_view", "advisor.formats.kineto.tables"),
}


def _analyze(tmp_path: Path, profile: Path, formats: str) -> tuple[set[str], list[Path]]:
    out = tmp_path / f"out-{formats.replace(',', '-')}"
    argv = ["analyze", str(profile), "--format", formats, "--output", str(out), "--quiet"]
    *paths, probe = _run_probe(PROBE, argv, os.environ)
    loaded = json.loads(probe)
    assert loaded["code"] == 0
    return set(loaded["modules"]), [Path(line) for line in paths if line.strip()]


def _run_probe(probe: str, argv: list[str], env: dict[str, str]) -> list[str]:
    """The lines `probe` prints, run with `argv` in a fresh interpreter."""
    command = [sys.executable, "-c", probe, *argv]
    result = subprocess.run(command, capture_output=True, text=True, cwd=PROJECT_ROOT, env=env, timeout=180)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()


@pytest.mark.parametrize("export", ["text", "db"])
def test_json_only_run_imports_no_unused_writer_client_or_reader(tmp_path, export):
    profile = write_synth_profile(tmp_path / "prof", SynthSpec(ranks=2, steps=(3, 4), export=export))
    modules, paths = _analyze(tmp_path, profile, "json")
    assert [p.suffix for p in paths] == [".json"]
    report = json.loads(paths[0].read_text(encoding="utf-8"))
    assert report["input"]["ranks"] == [0, 1]
    unused = (*UNUSED_BY_LOCAL_JSON, *NOT_IMPORTED_FOR[export])
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


# After the warm worker's imports, what a task may still import: stdlib codecs and pandas' arrow
# type shims (both ~1 ms). Anything of ours, pyarrow's or a writer's would be imported by every task.
FIRST_USE_BY_A_TASK = ("encodings.", "pandas.core.arrays.arrow.")
WARM_PROBE = """
import contextlib, io, json, sys
from advisor.server.zygote import preload
preload()
before = set(sys.modules)
from advisor.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    code = main(sys.argv[1:])
print(json.dumps({"code": code, "new": sorted(set(sys.modules) - before)}))
"""


def test_the_warm_worker_preloads_what_a_panel_task_imports(tmp_path):
    """The panel's task (html, xlsx and json, with the training log) in a process that imported what
    the warm worker imports: it imports nothing more of ours or of the libraries that matter."""
    from advisor.demo import DEMO_TRAINING_LOG, write_demo_profile, write_demo_training_log

    profile = write_demo_profile(tmp_path / "demo")
    write_demo_training_log(profile / DEMO_TRAINING_LOG, devices=2)
    argv = ["analyze", str(profile), "--training-log", str(profile / DEMO_TRAINING_LOG),
            "--output", str(tmp_path / "out"), "--quiet"]  # fmt: skip
    env = {**os.environ, "PERFORMANCE_ADVISOR_CACHE": str(tmp_path / "cache")}  # a cold table cache
    loaded = json.loads(_run_probe(WARM_PROBE, argv, env)[-1])
    assert loaded["code"] == 0
    assert [name for name in loaded["new"] if not name.startswith(FIRST_USE_BY_A_TASK)] == []
