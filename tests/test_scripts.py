"""The shell scripts: syntax, shellcheck, and setup.sh/start.sh quiet by default (installs logged,
the log's tail shown on a failure, JupyterLab's URL last), run against stand-in tools."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from .engine_fixtures import PROJECT_ROOT

SCRIPTS = sorted((PROJECT_ROOT / "scripts").glob("*.sh"))
NOISE = "noise line {}"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_parse(script):
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="needs shellcheck")
def test_scripts_are_shellcheck_clean():
    result = subprocess.run(["shellcheck", *map(str, SCRIPTS)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def _tool(path: Path, body: str) -> None:
    path.write_text("#!/usr/bin/env bash\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A copy of the scripts with a ./.venv of stand-ins: each tool prints 200 lines of noise (jlpm
    build fails when FAIL_BUILD is set); `jupyter lab` prints its arguments instead of starting."""
    (tmp_path / "scripts").mkdir()
    for name in ("setup.sh", "start.sh"):
        shutil.copy(PROJECT_ROOT / "scripts" / name, tmp_path / "scripts" / name)
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "activate").write_text(f'PATH="{bin_dir}:$PATH"; export PATH\n')
    noise = f'for i in $(seq 200); do echo "{NOISE.format("$i")}"; done\n'
    _tool(bin_dir / "python", noise)
    _tool(
        bin_dir / "jlpm",
        noise
        + 'if [ "$1" = build ] && [ -n "${FAIL_BUILD:-}" ]; then echo "error TS2304: boom" >&2; exit 1; fi\n',
    )
    _tool(bin_dir / "jupyter", 'if [ "$1" = lab ]; then echo "jupyter $*"; exit 0; fi\n' + noise)
    _tool(bin_dir / "performance-advisor", 'mkdir -p "$2"; echo "Wrote a demo profile to $2"\n')
    return tmp_path


def _run(checkout: Path, script: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in ("VERBOSE", "FAIL_BUILD")}
    return subprocess.run(
        ["bash", str(checkout / "scripts" / script), *args],
        capture_output=True,
        text=True,
        env={**environ, **env},
        timeout=60,
    )


def test_setup_is_quiet_and_logs_the_installs(checkout):
    result = _run(checkout, "setup.sh")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "  installing JupyterLab and the build tools (pip)" and len(lines) == 5
    assert "noise" not in result.stdout + result.stderr
    assert (checkout / "setup.log").read_text().count("noise line") == 200 * 7  # every tool's output


def test_setup_failure_shows_the_logs_tail(checkout):
    result = _run(checkout, "setup.sh", FAIL_BUILD="1")
    assert result.returncode == 1
    assert result.stdout.splitlines()[-1] == "  building the extension (jlpm build)"
    assert (
        f"setup.sh: failed: building the extension (jlpm build); the last lines of {checkout}/setup.log:"
        in (result.stderr)
    )
    assert result.stderr.rstrip().endswith("error TS2304: boom")  # what CI needs to see


def test_setup_verbose_shows_everything(checkout):
    result = _run(checkout, "setup.sh", "--verbose")
    assert result.returncode == 0 and result.stdout.count("noise line") == 200 * 7
    assert _run(checkout, "setup.sh", "--nope").returncode == 2


def test_start_ends_with_jupyter_lab_quietly(checkout):
    result = _run(checkout, "start.sh", "--ServerApp.port=8899")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "noise" not in result.stdout and (checkout / "profiling_dir1").is_dir()
    assert lines[-2] == "Starting JupyterLab: open the URL with its token below (Ctrl+C stops the server)."
    # Only warnings and the URL (logged as critical) from the server; user arguments passed on.
    assert lines[-1].startswith("jupyter lab --ServerApp.ip=127.0.0.1 --ServerApp.root_dir=")
    assert " --log-level=WARN --ServerApp.port=8899" in lines[-1]
    verbose = _run(checkout, "start.sh", "--verbose").stdout
    assert "noise line" in verbose and "--log-level" not in verbose.splitlines()[-1]
