"""No analysis outlives its server: a real Jupyter server is SIGKILLed during two analyses and restarted
on the same data; both tasks are interrupted and no analysis process is left. The start-up clean-up of
a crashed server's process groups is tested on its own, with a decoy that reuses a group id."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from advisor.lifeline import TASK_ID_ENV
from advisor.server.models import Task
from advisor.server.runner import end_orphaned_analyses
from advisor.server.store import TaskStore
from advisor.synth import SynthSpec, write_synth_profile

from .engine_fixtures import PROJECT_ROOT

pytestmark = pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads /proc (Linux)")
TOKEN = "orphan-test-token"


def live_processes() -> dict[int, tuple[int, str]]:
    """pid -> (session id, command line) of every live (not zombie) process."""
    found = {}
    for entry in Path("/proc").iterdir():
        try:
            if not entry.name.isdigit():
                continue
            # "pid (comm) state ppid pgrp session …": comm may hold spaces and parentheses.
            state, _, _, session = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:4]
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError):
            continue
        if state != "Z":
            found[int(entry.name)] = (int(session), command)
    return found


def analysis_sessions(profile: Path) -> set[int]:
    """Sessions led by an analysis of `profile` (the runner starts each in a session of its own)."""
    return {
        pid
        for pid, (session, command) in live_processes().items()
        if session == pid and " -m advisor analyze " in command and str(profile) in command
    }


def survivors(sessions: set[int]) -> list[str]:
    """Live processes of `sessions` (the analyses and any worker they started)."""
    return [command for session, command in live_processes().values() if session in sessions]


class Server:
    """`jupyter server` with the extension, in a subprocess of its own, on a fixed port and data dir."""

    def __init__(self, tmp_path: Path) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.config_dir = tmp_path / "jupyter_config"
        self.config_dir.mkdir()
        config = {
            "ServerApp": {
                "root_dir": str(tmp_path / "root"),
                "port": self.port,
                "port_retries": 0,
                "open_browser": False,
                "allow_root": True,  # where the tests run as root (containers)
                # Only the extension under test: a quicker start.
                "jpserver_extensions": {
                    "advisor": True,
                    "jupyter_server_terminals": False,
                    "jupyterlab": False,
                },
            },
            "IdentityProvider": {"token": TOKEN},
            "AdvisorApp": {"reports_dir": str(tmp_path / "state"), "max_concurrent_tasks": 2},
        }
        (self.config_dir / "jupyter_server_config.json").write_text(json.dumps(config))
        self.env = {
            **os.environ,
            "JUPYTER_CONFIG_DIR": str(self.config_dir),
            "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
            "PYTHONPATH": str(PROJECT_ROOT),  # this checkout's advisor, in the server and its analyses
            "PERFORMANCE_ADVISOR_CACHE": str(tmp_path / "table_cache"),
        }
        self.log = tmp_path / "server.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "jupyter_server"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + 90
        while True:
            try:
                self.call("GET", "api/status")
                return
            except OSError:
                assert self.process.poll() is None, self.log.read_text()[-3000:]
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.3)

    def call(self, method: str, path: str, body: object = None) -> object:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/{path}",
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"token {TOKEN}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or b"null")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()


@pytest.fixture
def server(tmp_path):
    (tmp_path / "root").mkdir()
    running = Server(tmp_path)
    yield running
    running.stop()


def test_a_killed_server_leaves_no_analysis_running_after_its_restart(tmp_path, server):
    # Two analyses of two large ranks each, read by two worker processes per analysis: tens of seconds
    # during which the workers write nothing (a dead server's closed pipe does not stop them).
    profile = write_synth_profile(tmp_path / "root" / "big", SynthSpec(ranks=2, size_mb=100))
    server.start()
    api = "performance-advisor/api/tasks"
    body = {"source": "local", "path": "big", "options": {"advisor_analyze_processes": 2}}
    ids = [server.call("POST", api, body)["id"] for _ in range(2)]
    deadline = time.monotonic() + 60
    while True:  # both analyses are reading their ranks
        tasks = [server.call("GET", f"{api}/{task_id}") for task_id in ids]
        if all((task["progress"] or {}).get("stage", "").startswith("reading") for task in tasks):
            break
        assert time.monotonic() < deadline, tasks
        time.sleep(0.1)
    assert [task["status"] for task in tasks] == ["analyzing"] * 2
    sessions = analysis_sessions(profile)
    assert len(sessions) == 2

    server.kill()
    server.start()
    assert [server.call("GET", f"{api}/{task_id}")["status"] for task_id in ids] == ["interrupted"] * 2
    deadline = time.monotonic() + 5
    while left := survivors(sessions):
        assert time.monotonic() < deadline, f"analysis processes survived the restart: {left}"
        time.sleep(0.2)


def _sleeper(task_id: str | None) -> subprocess.Popen:
    """A process leading a session of its own, as the runner starts an analysis."""
    env = {k: v for k, v in os.environ.items() if k != TASK_ID_ENV}
    if task_id is not None:
        env[TASK_ID_ENV] = task_id
    return subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], env=env, start_new_session=True
    )


def test_start_up_ends_the_recorded_groups_of_interrupted_tasks_and_nothing_else(tmp_path):
    orphan, decoy = _sleeper("aaaaaaaaaaaa"), _sleeper(None)
    try:
        store = TaskStore(tmp_path / "tasks.sqlite")
        # The decoy holds the group id recorded for the second task: a pid reused since the crash.
        for task_id, pgid in (("aaaaaaaaaaaa", orphan.pid), ("bbbbbbbbbbbb", decoy.pid)):
            store.add(Task(id=task_id, source="local", path="x", options={}, status="analyzing", pgid=pgid))
        assert store.active_process_groups() == [("aaaaaaaaaaaa", orphan.pid), ("bbbbbbbbbbbb", decoy.pid)]
        assert end_orphaned_analyses(store.active_process_groups()) == [orphan.pid]
        assert orphan.wait(timeout=10) == -signal.SIGKILL
        assert decoy.poll() is None
        assert store.recover_interrupted() == 2
        assert store.active_process_groups() == []
        assert "pgid" not in store.get("aaaaaaaaaaaa").to_api()  # never on the wire
    finally:
        for process in (orphan, decoy):
            process.kill()
            process.wait()
