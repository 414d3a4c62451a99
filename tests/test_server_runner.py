"""The task runner: bounded parallelism, cancel of the whole process group, timeout, restart recovery."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import time

import pytest

from advisor.server.models import Task
from advisor.server.runner import TaskRunner
from advisor.server.store import TaskStore

from .server_helpers import API, call, process_alive, submit, wait_for

# A stand-in analysis that speaks the progress protocol: it lets the tests control timing.
FAKE_ANALYSIS = r"""
import json, pathlib, subprocess, sys, time
out = pathlib.Path(sys.argv[1]); seconds = float(sys.argv[2]); linger = float(sys.argv[3])
child = subprocess.Popen(["sleep", "60"]) if seconds > 5 else None
if child: (out / "grandchild.pid").write_text(str(child.pid))
def emit(event): print(json.dumps(event), file=sys.stderr, flush=True)
emit({"event": "progress", "stage": "reading rank 1/2", "done": 1, "total": 2})
time.sleep(seconds)
report = out / f"report_{time.time_ns()}.html"; report.write_text("<html>fake</html>")
emit({"event": "result", "reports": {"html": str(report)}})
time.sleep(linger)  # what a real analysis spends exiting after its result (worker pools, teardown)
"""


@pytest.fixture
def fake_analysis(monkeypatch, tmp_path):
    """Replace the CLI command by FAKE_ANALYSIS running for `seconds` (set on the fixture)."""
    out = tmp_path / "fake_out"
    out.mkdir()

    class Control:
        seconds = 1.0
        linger = 0.0
        dir = out

    def command(self, task):
        return [sys.executable, "-c", FAKE_ANALYSIS, str(out), str(Control.seconds), str(Control.linger)]

    monkeypatch.setattr(TaskRunner, "_command", command)
    return Control


@pytest.mark.parametrize("advisor_config", [{"max_concurrent_tasks": 1}])
async def test_one_slot_means_tasks_never_overlap(jp_fetch, demo_profile, fake_analysis, advisor_config):
    fake_analysis.seconds = 1.0
    ids = [(await submit(jp_fetch, "./profiling_dir1"))[1]["id"] for _ in range(2)]
    _, listing = await call(jp_fetch, *API, "tasks")
    assert sorted(t["status"] for t in listing["tasks"]) in (["analyzing", "queued"], ["queued", "queued"])
    first, second = [await wait_for(jp_fetch, task_id, ("success",)) for task_id in ids]
    assert first["finished"] <= second["started"]


@pytest.mark.parametrize("advisor_config", [{"max_concurrent_tasks": 2}])
async def test_two_slots_run_two_tasks_at_once(jp_fetch, demo_profile, fake_analysis, advisor_config):
    fake_analysis.seconds = 1.5
    ids = [(await submit(jp_fetch, "./profiling_dir1"))[1]["id"] for _ in range(2)]
    first, second = [await wait_for(jp_fetch, task_id, ("success",)) for task_id in ids]
    assert second["started"] < first["finished"]


async def test_progress_events_are_stored(jp_fetch, demo_profile, fake_analysis):
    fake_analysis.seconds = 3.0
    _, task = await submit(jp_fetch, "./profiling_dir1")
    deadline = time.monotonic() + 20
    while True:
        _, current = await call(jp_fetch, *API, "tasks", task["id"])
        if current["progress"] and current["progress"]["stage"] == "reading rank 1/2":
            break
        assert time.monotonic() < deadline, current
        await asyncio.sleep(0.05)
    assert current["status"] == "analyzing"
    assert current["progress"] == {"stage": "reading rank 1/2", "done": 1, "total": 2}


@pytest.mark.parametrize("advisor_config", [{"max_concurrent_tasks": 1}])
async def test_success_when_the_reports_exist_not_when_the_process_exits(
    jp_fetch, demo_profile, fake_analysis, advisor_config
):
    fake_analysis.seconds, fake_analysis.linger = 0.5, 4.0
    _, first = await submit(jp_fetch, "./profiling_dir1")
    _, second = await submit(jp_fetch, "./profiling_dir1")
    started = time.monotonic()
    done = await wait_for(jp_fetch, first["id"], ("success", "failed"))
    assert done["status"] == "success" and done["reports"]["html"], done
    assert time.monotonic() - started < 3.5  # not after the 4 s the process takes to exit
    # Duration is the analysis': finished is when the result came, and the reports are served.
    assert done["started"] <= done["finished"]
    report = await jp_fetch("performance-advisor", "reports", first["id"])
    assert report.code == 200
    # The slot is still held while the process exits: the next task waits for it.
    _, waiting = await call(jp_fetch, *API, "tasks", second["id"])
    assert waiting["status"] == "queued"
    after = await wait_for(jp_fetch, second["id"], ("success",), timeout=30)
    assert after["started"] >= done["finished"]


@pytest.mark.parametrize("advisor_config", [{"task_timeout": 2.0}])
async def test_a_timeout_while_exiting_keeps_the_success(
    jp_fetch, demo_profile, fake_analysis, advisor_config
):
    fake_analysis.seconds, fake_analysis.linger = 0.2, 30.0
    _, task = await submit(jp_fetch, "./profiling_dir1")
    await wait_for(jp_fetch, task["id"], ("success",))
    await asyncio.sleep(3.0)  # past the timeout, which kills the lingering process
    _, current = await call(jp_fetch, *API, "tasks", task["id"])
    assert current["status"] == "success" and current["error"] is None


async def test_cancel_kills_the_whole_process_group(jp_fetch, demo_profile, fake_analysis):
    fake_analysis.seconds = 60.0
    _, task = await submit(jp_fetch, "./profiling_dir1")
    pid_file = fake_analysis.dir / "grandchild.pid"
    deadline = time.monotonic() + 20
    while not pid_file.exists():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    grandchild = int(pid_file.read_text())
    assert process_alive(grandchild)

    status, reply = await call(jp_fetch, *API, "tasks", task["id"], method="DELETE")
    assert status == 200
    assert reply["task"]["status"] == "cancelled"
    for _ in range(50):
        if not process_alive(grandchild):
            break
        await asyncio.sleep(0.1)
    assert not process_alive(grandchild)
    _, current = await call(jp_fetch, *API, "tasks", task["id"])
    assert current["status"] == "cancelled"
    assert current["reports"]["html"] is None
    # A cancelled task is finished: a second DELETE removes it.
    status, _ = await call(jp_fetch, *API, "tasks", task["id"], method="DELETE")
    assert status == 204


@pytest.mark.parametrize("advisor_config", [{"max_concurrent_tasks": 1}])
async def test_cancel_a_queued_task(jp_fetch, demo_profile, fake_analysis, advisor_config):
    fake_analysis.seconds = 2.0
    _, running = await submit(jp_fetch, "./profiling_dir1")
    _, queued = await submit(jp_fetch, "./profiling_dir1")
    status, reply = await call(jp_fetch, *API, "tasks", queued["id"], method="DELETE")
    assert status == 200 and reply["task"]["status"] == "cancelled"
    assert (await wait_for(jp_fetch, running["id"], ("success",)))["status"] == "success"
    _, current = await call(jp_fetch, *API, "tasks", queued["id"])
    assert current["status"] == "cancelled" and current["started"] is None


@pytest.mark.parametrize("advisor_config", [{"task_timeout": 1.0}])
async def test_timeout_fails_the_task(jp_fetch, demo_profile, fake_analysis, advisor_config):
    fake_analysis.seconds = 30.0
    _, task = await submit(jp_fetch, "./profiling_dir1")
    done = await wait_for(jp_fetch, task["id"], ("failed",), timeout=30)
    assert "longer than 1 s" in done["error"]


async def test_server_stays_responsive_while_a_task_runs(jp_fetch, demo_profile, fake_analysis):
    fake_analysis.seconds = 3.0
    _, task = await submit(jp_fetch, "./profiling_dir1")
    await wait_for(jp_fetch, task["id"], ("analyzing",))
    started = time.monotonic()
    for _ in range(5):
        status, _ = await call(jp_fetch, *API, "tasks")
        assert status == 200
    assert time.monotonic() - started < 2.0


@pytest.fixture
def tasks_from_a_previous_run(advisor_state_dir, tmp_path):
    """The store as a server that was killed mid-analysis left it."""
    report = tmp_path / "old_report.html"
    report.write_text("<html>previous run</html>")
    store = TaskStore(advisor_state_dir / "tasks.sqlite")
    done = Task(id="aaaaaaaaaaaa", source="local", path="./p", options={}, status="success")
    done.report_files = {"html": str(report)}
    store.add(done)
    store.add(Task(id="bbbbbbbbbbbb", source="local", path="./p", options={}, status="analyzing"))
    store.add(Task(id="cccccccccccc", source="local", path="./p", options={}, status="queued"))
    store.close()


async def test_restart_keeps_finished_tasks_and_interrupts_running_ones(tasks_from_a_previous_run, jp_fetch):
    _, listing = await call(jp_fetch, *API, "tasks")
    statuses = {t["id"]: t["status"] for t in listing["tasks"]}
    assert statuses == {
        "aaaaaaaaaaaa": "success",
        "bbbbbbbbbbbb": "interrupted",
        "cccccccccccc": "interrupted",
    }
    assert [t["id"] for t in listing["tasks"]] == ["cccccccccccc", "bbbbbbbbbbbb", "aaaaaaaaaaaa"]
    report = await jp_fetch("performance-advisor", "reports", "aaaaaaaaaaaa")
    assert b"previous run" in report.body


def test_store_round_trip(tmp_path):
    store = TaskStore(tmp_path / "t.sqlite")
    task = Task(
        id="dddddddddddd",
        source="local",
        path="./x",
        options={"a": 1},
        compare={"source": "local", "path": "./y"},
    )
    store.add(task)
    task.status, task.progress = "analyzing", {"stage": "s", "done": 1, "total": 3}
    store.update(task)
    again = TaskStore(tmp_path / "t.sqlite").get("dddddddddddd")
    assert again == task
    journal = sqlite3.connect(tmp_path / "t.sqlite").execute("PRAGMA journal_mode").fetchone()[0]
    assert journal == "wal"


def test_store_of_an_older_release_gains_the_title_column(tmp_path):
    db = sqlite3.connect(tmp_path / "old.sqlite")
    db.execute(
        "CREATE TABLE tasks (id TEXT PRIMARY KEY, seq INTEGER NOT NULL, status TEXT NOT NULL, source TEXT "
        "NOT NULL, path TEXT NOT NULL, compare TEXT, options TEXT NOT NULL, created TEXT NOT NULL, started "
        "TEXT, finished TEXT, progress TEXT, error TEXT, report_files TEXT NOT NULL DEFAULT '{}')"
    )
    db.execute(
        "INSERT INTO tasks VALUES ('eeeeeeeeeeee', 1, 'success', 'local', './runs/job7', NULL, '{}', "
        "'2026-01-01T00:00:00.000+00:00', NULL, NULL, NULL, NULL, '{}')"
    )
    db.commit()
    db.close()
    task = TaskStore(tmp_path / "old.sqlite").get("eeeeeeeeeeee")
    assert task is not None and task.title == ""
    assert task.to_api()["title"] == "job7"  # named after its path, as before titles were stored
