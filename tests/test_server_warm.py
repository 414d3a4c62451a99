"""The warm worker: tasks forked from a process with the analysis code imported, as isolated as a
subprocess (own session, cancel and timeout kill the whole group, credentials only in the
environment), recycled after N tasks, replaced when it dies, and the cold subprocess when it is off
or cannot start."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from advisor.lifeline import TASK_ID_ENV
from advisor.server import warm
from advisor.server.runner import TaskRunner

from .server_helpers import API, call, process_alive, submit, wait_for

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")

# A stand-in analysis that records how it was started, starts a grandchild (a worker of its own) and
# speaks the progress protocol for `seconds`.
PROBE = r"""
import json, os, pathlib, subprocess, sys, time
out = pathlib.Path(sys.argv[1]); seconds = float(sys.argv[2])
grandchild = subprocess.Popen(["sleep", "60"])
info = {
    "pid": os.getpid(), "ppid": os.getppid(), "pgid": os.getpgid(0), "sid": os.getsid(0),
    "pandas_preloaded": "pandas" in sys.modules, "engine_preloaded": "advisor.engine" in sys.modules,
    "secret": os.environ.get("HUAWEICLOUD_SDK_SK"), "cwd": os.getcwd(), "argv": sys.argv[1:],
    "grandchild": grandchild.pid,
}
part = out / f"{os.getpid()}.part"; part.write_text(json.dumps(info))
part.rename(out / f"{os.getpid()}.json")  # whole, when the test sees it
print(json.dumps({"event": "progress", "stage": "reading rank 1/1", "done": 0, "total": 1}), file=sys.stderr)
time.sleep(seconds)
report = out / f"report_{os.getpid()}.html"; report.write_text("<html>probe</html>")
print(json.dumps({"event": "result", "reports": {"html": str(report)}}), file=sys.stderr)
grandchild.kill()
"""
SECRET = "SKWARMSECRET0123"


@pytest.fixture
def probe(monkeypatch, tmp_path):
    """Replace the CLI command by PROBE running for `seconds` (set on the fixture)."""
    out = tmp_path / "probe_out"
    out.mkdir()

    class Control:
        seconds = 0.0
        dir = out

        @staticmethod
        async def started(count: int = 1, timeout: float = 60.0) -> list[dict]:
            """What the first `count` probes recorded (waiting for them; the server runs in this loop)."""
            deadline = time.monotonic() + timeout
            while len(found := sorted(out.glob("*.json"), key=os.path.getmtime)) < count:
                assert time.monotonic() < deadline, "the probe did not start"
                await asyncio.sleep(0.05)
            return [json.loads(path.read_text()) for path in found]

    def command(self, task):
        return [sys.executable, "-c", PROBE, str(out), str(Control.seconds)]

    monkeypatch.setattr(TaskRunner, "_command", command)
    return Control


def runner_of(jp_serverapp) -> TaskRunner:
    return jp_serverapp.web_app.settings["performance_advisor"]["runner"]


async def warm_worker_ready(jp_serverapp) -> int:
    """Wait until the warm worker can fork (it starts in the background); its pid."""
    worker = runner_of(jp_serverapp).warm_worker
    assert await worker.ready()
    return worker.zygote.pid


async def gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while process_alive(pid):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def test_a_task_is_forked_by_the_warm_worker_with_the_code_imported(
    jp_fetch, jp_serverapp, jp_root_dir, demo_profile, probe, advisor_state_dir
):
    await warm_worker_ready(jp_serverapp)
    _, task = await submit(jp_fetch, "./profiling_dir1")
    done = await wait_for(jp_fetch, task["id"], ("success", "failed"))
    assert done["status"] == "success", done["error"]
    [info] = await probe.started()
    zygote = runner_of(jp_serverapp).warm_worker.zygote
    assert info["ppid"] == zygote.pid != os.getpid()
    assert info["pid"] == info["pgid"] == info["sid"]  # a session and process group of its own
    assert info["pandas_preloaded"] and info["engine_preloaded"]  # nothing left to import
    assert info["cwd"] == str(jp_root_dir) and info["argv"] == [str(probe.dir), "0.0"]
    # The zygote forks single-threaded: importing numpy and pyarrow started no thread in it.
    assert os.listdir(f"/proc/{zygote.pid}/task") == [str(zygote.pid)]
    log = advisor_state_dir / "logs"
    assert (
        f"# forked as pid {info['pid']} by the warm worker {zygote.pid}\n"
        in (log / f"{task['id']}.log").read_text()
    )
    assert await gone(info["pid"])  # reaped by the zygote, not left a zombie


async def test_a_real_analysis_in_the_warm_worker(jp_fetch, jp_serverapp, jp_root_dir, demo_profile):
    await warm_worker_ready(jp_serverapp)
    _, first = await submit(jp_fetch, "./profiling_dir1", options={"output_path": "reports"})
    _, second = await submit(jp_fetch, "./profiling_dir1", options={"output_path": "reports"})
    first, second = [await wait_for(jp_fetch, t["id"], ("success", "failed")) for t in (first, second)]
    assert (first["status"], second["status"]) == ("success", "success"), (first["error"], second["error"])
    reports = [json.loads(path.read_text()) for path in sorted((jp_root_dir / "reports").glob("*.json"))]
    assert len(reports) == 2 and reports[0]["findings"] == reports[1]["findings"]
    assert reports[0]["input"]["ranks"] == [0, 1]
    assert any(f["check"] == "overall.summary" for f in reports[0]["findings"])
    response = await jp_fetch(*API, "tasks", second["id"], "log")
    zygote = runner_of(jp_serverapp).warm_worker.zygote
    assert f"by the warm worker {zygote.pid}" in response.body.decode()
    assert zygote.tasks_started == 2


async def test_cancel_kills_the_forked_childs_whole_group(jp_fetch, jp_serverapp, demo_profile, probe):
    probe.seconds = 60.0
    await warm_worker_ready(jp_serverapp)
    _, task = await submit(jp_fetch, "./profiling_dir1")
    [info] = await probe.started()
    assert process_alive(info["pid"]) and process_alive(info["grandchild"])
    status, reply = await call(jp_fetch, *API, "tasks", task["id"], method="DELETE")
    assert status == 200 and reply["task"]["status"] == "cancelled"
    assert await gone(info["grandchild"]) and await gone(info["pid"])
    assert runner_of(jp_serverapp).warm_worker.zygote.alive  # only the task's group was killed


@pytest.mark.parametrize("advisor_config", [{"task_timeout": 1.0}])
async def test_timeout_kills_the_forked_childs_whole_group(
    jp_fetch, jp_serverapp, demo_profile, probe, advisor_config
):
    probe.seconds = 30.0
    await warm_worker_ready(jp_serverapp)
    _, task = await submit(jp_fetch, "./profiling_dir1")
    done = await wait_for(jp_fetch, task["id"], ("failed",), timeout=60)
    assert "longer than 1 s" in done["error"]
    [info] = await probe.started()
    assert await gone(info["grandchild"]) and await gone(info["pid"])


async def run_probes(jp_fetch, jp_serverapp, probe, count: int) -> list[tuple[int, int]]:
    """Run `count` probe tasks one after the other, each once the warm worker is ready: for each, the
    probe's parent and the warm worker that was ready for it."""
    seen = []
    for _ in range(count):
        ready = await warm_worker_ready(jp_serverapp)
        _, task = await submit(jp_fetch, "./profiling_dir1")
        assert (await wait_for(jp_fetch, task["id"], ("success",)))["status"] == "success"
        seen.append(((await probe.started(len(seen) + 1))[-1]["ppid"], ready))
    return seen


@pytest.mark.parametrize("advisor_config", [{"warm_worker_max_tasks": 2}])
async def test_the_warm_worker_is_replaced_after_n_tasks(
    jp_fetch, jp_serverapp, demo_profile, probe, advisor_config
):
    seen = await run_probes(jp_fetch, jp_serverapp, probe, 3)
    assert all(parent == ready for parent, ready in seen)
    parents = [parent for parent, _ in seen]
    assert parents[0] == parents[1] != parents[2] != os.getpid()
    assert await gone(parents[0])  # the retired zygote exited once its children had ended


@pytest.mark.parametrize("advisor_config", [{"warm_worker_max_rss_mb": 1}])
async def test_the_warm_worker_is_replaced_past_its_memory_limit(
    jp_fetch, jp_serverapp, demo_profile, probe, advisor_config
):
    (first, ready_first), (second, ready_second) = await run_probes(jp_fetch, jp_serverapp, probe, 2)
    assert (first, second) == (ready_first, ready_second) and first != second
    assert await gone(first)


async def test_the_first_task_runs_cold_while_the_warm_worker_imports(
    jp_fetch, jp_serverapp, demo_profile, probe
):
    _, task = await submit(jp_fetch, "./profiling_dir1")
    assert (await wait_for(jp_fetch, task["id"], ("success",)))["status"] == "success"
    [(cold)] = await probe.started()
    assert cold["ppid"] == os.getpid() and not cold["pandas_preloaded"]
    [(warm_parent, ready)] = (await run_probes(jp_fetch, jp_serverapp, probe, 2))[1:]
    assert warm_parent == ready != os.getpid()


async def test_a_killed_warm_worker_is_replaced(jp_fetch, jp_serverapp, demo_profile, probe):
    [(parent, killed)] = await run_probes(jp_fetch, jp_serverapp, probe, 1)
    assert parent == killed
    os.kill(killed, signal.SIGKILL)
    assert await gone(killed)
    # The next task runs (cold, or forked by the successor if it is ready already) and succeeds.
    _, task = await submit(jp_fetch, "./profiling_dir1")
    done = await wait_for(jp_fetch, task["id"], ("success", "failed"))
    assert done["status"] == "success", done["error"]
    ready = await warm_worker_ready(jp_serverapp)
    _, task = await submit(jp_fetch, "./profiling_dir1")
    assert (await wait_for(jp_fetch, task["id"], ("success",)))["status"] == "success"
    last = (await probe.started(3))[-1]
    assert last["ppid"] == ready != killed and last["pandas_preloaded"]


async def test_a_running_task_dies_with_its_killed_warm_worker(jp_fetch, jp_serverapp, demo_profile, probe):
    probe.seconds = 60.0
    await warm_worker_ready(jp_serverapp)
    _, task = await submit(jp_fetch, "./profiling_dir1")
    [info] = await probe.started()
    os.kill(runner_of(jp_serverapp).warm_worker.zygote.pid, signal.SIGKILL)
    done = await wait_for(jp_fetch, task["id"], ("failed",), timeout=30)
    assert "exited with code -9" in done["error"] or "killed" in done["error"].lower(), done["error"]
    assert await gone(info["grandchild"]) and await gone(info["pid"])


@pytest.mark.parametrize(
    "advisor_config", [{"obs_access_key_id": "AKWARMSECRET01", "obs_secret_access_key": SECRET}]
)
async def test_credentials_reach_the_child_in_its_environment_only(
    jp_fetch, jp_serverapp, demo_profile, probe, advisor_config, advisor_state_dir
):
    probe.seconds = 60.0
    await warm_worker_ready(jp_serverapp)
    _, task = await submit(jp_fetch, "./profiling_dir1")
    [info] = await probe.started()
    assert info["secret"] == SECRET  # the child has it, where the CLI reads it
    cmdline = Path(f"/proc/{info['pid']}/cmdline").read_bytes()
    environ = Path(f"/proc/{info['pid']}/environ").read_bytes().split(b"\0")
    zygote = runner_of(jp_serverapp).warm_worker.zygote.pid
    for memory in (cmdline, b"\0".join(environ), Path(f"/proc/{zygote}/cmdline").read_bytes()):
        assert SECRET.encode() not in memory and b"AKWARMSECRET01" not in memory
    # What /proc shows of the child: its command, and its task (how a restarted server finds it).
    assert cmdline.startswith(f"{sys.executable}\0-c\0".encode())
    assert f"{TASK_ID_ENV}={task['id']}".encode() in environ
    await call(jp_fetch, *API, "tasks", task["id"], method="DELETE")
    assert SECRET not in (advisor_state_dir / "logs" / f"{task['id']}.log").read_text()
    assert await gone(info["pid"])


@pytest.mark.parametrize("advisor_config", [{"warm_worker": False}])
async def test_off_means_a_cold_subprocess(jp_fetch, jp_serverapp, demo_profile, probe, advisor_config):
    _, task = await submit(jp_fetch, "./profiling_dir1")
    assert (await wait_for(jp_fetch, task["id"], ("success",)))["status"] == "success"
    [info] = await probe.started()
    assert info["ppid"] == os.getpid() and not info["pandas_preloaded"]
    assert info["pid"] == info["pgid"] == info["sid"]
    assert runner_of(jp_serverapp).warm_worker is None


async def test_a_warm_worker_that_cannot_start_falls_back_to_cold(
    jp_fetch, jp_serverapp, demo_profile, probe, tmp_path, monkeypatch, caplog
):
    # A broken install: the zygote's module fails on import (its folder comes first on its sys.path).
    broken = tmp_path / "broken"
    (broken / "advisor" / "server").mkdir(parents=True)
    for init in ("advisor/__init__.py", "advisor/server/__init__.py"):
        (broken / init).write_text("")
    (broken / "advisor" / "server" / "zygote.py").write_text("raise SystemExit('a broken install')\n")
    monkeypatch.setattr(warm, "PACKAGE_PARENT", broken)
    assert not await runner_of(jp_serverapp).warm_worker.ready()
    for _ in range(2):
        _, task = await submit(jp_fetch, "./profiling_dir1")
        assert (await wait_for(jp_fetch, task["id"], ("success",)))["status"] == "success"
    assert [info["ppid"] for info in await probe.started(2)] == [os.getpid()] * 2
    lines = [r.getMessage() for r in caplog.records if "warm worker could not start" in r.getMessage()]
    assert len(lines) == 1, lines  # said once, then every task runs cold without trying again
    assert "it did not start: it closed its socket" in lines[0]
