"""Faults of the user's environment: unreadable input, an output folder that cannot be written, a full
disk. Each gives exit code 2 and one line naming the path and the cause, and leaves no partial file.

Permission tests run a real CLI subprocess without the power to bypass file permissions: as a normal
user chmod is enough; as root the subprocess drops CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH (capsh),
so that chmod binds it too. A full disk is injected at the write boundary in-process (ENOSPC), and
produced for real in a subprocess by a file size limit (EFBIG)."""

from __future__ import annotations

import errno
import io
import os
import resource
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from advisor import cli, outputs
from advisor.formats.ascend_common.folder import OUTPUT_DIR
from advisor.server.runner import TaskRunner

from .engine_fixtures import PROJECT_ROOT, demo
from .server_helpers import submit, wait_for

REPORT_FILES = {".html", ".xlsx", ".json"}


def without_permission_bypass(command: list[str]) -> list[str]:
    """`command` run so that file permissions bind it: as root, without the capabilities that bypass them."""
    if os.geteuid() != 0:
        return command
    capsh = shutil.which("capsh")
    if capsh is None:
        pytest.skip("running as root without capsh: permissions cannot bind the subprocess")
    return [capsh, "--drop=cap_dac_override,cap_dac_read_search", "--", "-c", shlex.join(command)]


def run_cli(argv: list[str], *, bound_by_permissions: bool = False, fsize: int | None = None):
    """`python -m advisor …` in a subprocess (this checkout's package); `bound_by_permissions`: as a
    user whom file permissions stop, root included; `fsize`: with that file size limit in bytes."""
    command = [sys.executable, "-m", "advisor", *argv]
    if bound_by_permissions:
        command = without_permission_bypass(command)

    def limit_file_size() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # write() then fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=120,
        preexec_fn=limit_file_size if fsize is not None else None,
    )


def assert_one_line_exit_2(result: subprocess.CompletedProcess, expected: str) -> None:
    assert result.returncode == 2, result.stderr
    assert result.stderr == f"performance-advisor: error: {expected}\n"


def files_in(folder: Path) -> list[str]:
    """Everything in `folder`, hidden files included (a partial report must not hide there either)."""
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_an_unreadable_rank_folder_is_named_with_exit_2(tmp_path):
    root, _ = demo(tmp_path)
    unreadable = sorted(root.iterdir())[0] / OUTPUT_DIR
    unreadable.chmod(0)
    try:
        result = run_cli(["analyze", str(root), "--output", str(tmp_path / "out")], bound_by_permissions=True)
    finally:
        unreadable.chmod(0o755)
    assert_one_line_exit_2(result, f"cannot read {unreadable}: permission denied")
    assert files_in(tmp_path / "out") == []


def test_an_output_folder_that_cannot_be_written_is_named_with_exit_2(tmp_path):
    root, _ = demo(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o555)
    try:
        result = run_cli(["analyze", str(root), "--output", str(out), "--quiet"], bound_by_permissions=True)
    finally:
        out.chmod(0o755)
    assert result.stdout == ""
    assert result.returncode == 2
    assert result.stderr.startswith(f"performance-advisor: error: cannot write {out}/")
    assert result.stderr.endswith(".html: permission denied\n") and result.stderr.count("\n") == 1
    assert files_in(out) == []


async def test_the_task_fails_with_the_one_line_reason(jp_fetch, demo_profile, jp_root_dir, monkeypatch):
    """The server's task shows the CLI's one line, from the real CLI run by the real runner."""
    monkeypatch.setenv("PYTHONPATH", str(PROJECT_ROOT))  # this checkout's advisor in the analysis
    command = TaskRunner._command
    monkeypatch.setattr(
        TaskRunner, "_command", lambda self, task: without_permission_bypass(command(self, task))
    )
    out = jp_root_dir / "locked"
    out.mkdir()
    out.chmod(0o555)
    try:
        status, task = await submit(jp_fetch, "./profiling_dir1", options={"output_path": "locked"})
        assert status == 201, task
        failed = await wait_for(jp_fetch, task["id"], ("failed", "success"))
    finally:
        out.chmod(0o755)
    assert failed["status"] == "failed" and failed["reports"] == {"html": None, "xlsx": None, "json": None}
    assert failed["error"].startswith(f"cannot write {out}/"), failed["error"]
    assert failed["error"].endswith(".html: permission denied")
    assert files_in(out) == []


def test_a_file_size_limit_hit_while_writing_leaves_no_partial_report(tmp_path):
    root, _ = demo(tmp_path)
    out = tmp_path / "out"
    result = run_cli(["analyze", str(root), "--output", str(out), "--quiet"], fsize=100_000)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"performance-advisor: error: cannot write {out}/")
    assert result.stderr.endswith(": file too large (over the file size limit)\n")
    assert files_in(out) == []


class FullDisk:
    """Files opened for writing under `folder` share `free` bytes; past them write() fails with ENOSPC,
    as on a full disk (the open succeeds, the data does not fit)."""

    def __init__(self, folder: Path, free: int) -> None:
        self.folder, self.free = folder, free

    def wrap(self, stream: Any) -> Any:
        disk = self

        class Filling(io.IOBase):
            def write(self, data: Any) -> int:
                size = len(data)
                if size > disk.free:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                disk.free -= size
                return stream.write(data)

            def __getattr__(self, name: str) -> Any:
                return getattr(stream, name)

            def __enter__(self) -> Any:
                return self

            def __exit__(self, *exc: object) -> None:
                stream.close()

        return Filling()


@pytest.fixture
def full_disk(monkeypatch):
    """Call with (folder, free bytes): writes under `folder` fail with ENOSPC once `free` is used."""
    real_open = Path.open

    def install(folder: Path, free: int) -> FullDisk:
        disk = FullDisk(folder, free)

        def open_(path: Path, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
            stream = real_open(path, mode, *args, **kwargs)
            writing = any(flag in mode for flag in "wxa+")
            return disk.wrap(stream) if writing and folder in Path(path).absolute().parents else stream

        monkeypatch.setattr(Path, "open", open_)
        return disk

    return install


# openpyxl leaves its ZipFile to the garbage collector after a failed save, whose close() then retries
# the write that failed (on the temporary file, already removed): a warning, not a leftover.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("failing", ["html", "xlsx"])
def test_a_full_disk_fails_with_one_line_and_leaves_nothing(tmp_path, capsys, full_disk, failing):
    root, _ = demo(tmp_path)
    free = 10_000
    if failing == "xlsx":  # room for the HTML (written first) and a little of the workbook
        assert cli.main(["analyze", str(root), "--output", str(tmp_path / "sized"), "--format", "html"]) == 0
        free += next((tmp_path / "sized").iterdir()).stat().st_size
    out = tmp_path / "out"
    out.mkdir()
    capsys.readouterr()
    full_disk(out, free)
    code = cli.main(["analyze", str(root), "--output", str(out), "--quiet"])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert captured.err.startswith(f"performance-advisor: error: cannot write {out}/")
    assert captured.err.endswith(f".{failing}: no space left on device\n")
    assert files_in(out) == []


def test_a_reader_that_cannot_open_a_file_names_it(tmp_path, capsys, monkeypatch):
    """An OSError on a file of the input is the user's data failing, wherever it is raised."""
    root, _ = demo(tmp_path)
    unreadable = next(root.rglob("step_trace_time.csv"))

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(unreadable))

    monkeypatch.setattr("advisor.engine.discover", refuse)
    code = cli.main(["analyze", str(root), "--output", str(tmp_path / "out"), "--quiet"])
    assert code == 2
    expected = f"cannot read {unreadable}: permission denied"
    assert capsys.readouterr().err == f"performance-advisor: error: {expected}\n"


def test_an_os_error_outside_the_input_and_output_stays_an_internal_error(tmp_path, capsys, monkeypatch):
    root, _ = demo(tmp_path)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), "/nonexistent/knowledge.json")

    monkeypatch.setattr("advisor.engine.discover", broken)
    code = cli.main(["analyze", str(root), "--output", str(tmp_path / "out"), "--quiet"])
    assert code == 1 and "internal error: FileNotFoundError" in capsys.readouterr().err


def test_publish_takes_the_next_free_name_for_all_formats_or_none(tmp_path):
    (tmp_path / "r.json").write_text("someone else's")
    staged = {}
    for fmt in ("html", "json"):
        staged[fmt] = outputs.stage(tmp_path / f"r.{fmt}")
        staged[fmt].write_text(fmt)
    finals = outputs.publish(staged, ["r", "r_1"])
    assert finals == {"html": tmp_path / "r_1.html", "json": tmp_path / "r_1.json"}
    # r.html was linked first, then r.json was found taken: r.html was given back.
    assert files_in(tmp_path) == ["r.json", "r_1.html", "r_1.json"]
    assert (tmp_path / "r.json").read_text() == "someone else's" and finals["json"].read_text() == "json"
