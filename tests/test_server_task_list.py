"""The task list at scale: pages, `since` polls of changes and deletions, and the store's upgrades."""

from __future__ import annotations

import json
import sqlite3

import pytest

from advisor.server.models import TASK_LIST_KEYS, TASK_SUMMARY_KEYS, Task
from advisor.server.store import SCHEMA_VERSION, SchemaError, TaskStore

from .server_helpers import API, call

# The table of the first release (no title) and the one before schema versions (with title), exactly.
FIRST_RELEASE = (
    "CREATE TABLE IF NOT EXISTS tasks (id TEXT PRIMARY KEY, seq INTEGER NOT NULL, status TEXT NOT NULL, "
    "source TEXT NOT NULL, path TEXT NOT NULL, compare TEXT, options TEXT NOT NULL, created TEXT NOT NULL, "
    "started TEXT, finished TEXT, progress TEXT, error TEXT, report_files TEXT NOT NULL DEFAULT '{}')"
)
WITH_TITLE = FIRST_RELEASE[:-1] + ", title TEXT NOT NULL DEFAULT '')"


def a_task(index: int, status: str = "success") -> Task:
    return Task(
        id=f"{index:012x}",
        source="local",
        path=f"./runs/job{index}",
        options={"cann_version": "", "analysis_dimensions": ["computation"]},
        job={"output_path": "out"},
        compare={"source": "local", "path": "./runs/base"} if index % 2 else None,
        status=status,
        created=f"2026-01-01T00:00:{index % 60:02d}.000+00:00",
        progress={"stage": "rendering the report", "done": 3, "total": 3},
        error="rank 1: no step_trace_time.csv" if status == "failed" else None,
        report_files={"html": f"/out/job{index}.html"} if status == "success" else {},
        title=f"job{index}",
    )


def old_database(path, layout: str, count: int) -> list[tuple]:
    """A database as an earlier release wrote it: its CREATE TABLE and its INSERTs."""
    db = sqlite3.connect(path)
    db.execute(layout)
    rows = []
    for index in range(1, count + 1):
        task = a_task(index, status=("success", "failed", "analyzing")[index % 3])
        row = (
            task.id, index, task.status, task.source, task.path, json.dumps(task.compare),
            json.dumps({**task.options, **task.job}), task.created, None, None, json.dumps(task.progress),
            task.error, json.dumps(task.report_files),
        )  # fmt: skip
        if layout == WITH_TITLE:
            row = (*row, task.title)
        db.execute(f"INSERT INTO tasks VALUES ({', '.join('?' for _ in row)})", row)
        rows.append(row)
    db.commit()
    db.close()
    return rows


@pytest.mark.parametrize("layout", [FIRST_RELEASE, WITH_TITLE], ids=["first release", "with title"])
def test_every_task_survives_the_upgrade_of_an_earlier_layout(tmp_path, layout):
    rows = old_database(tmp_path / "tasks.sqlite", layout, count=7)
    store = TaskStore(tmp_path / "tasks.sqlite")
    db = sqlite3.connect(tmp_path / "tasks.sqlite")
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    columns = {row[1]: row[2] for row in db.execute("PRAGMA table_info(tasks)")}
    assert columns["pgid"] == "INTEGER" and "change" in columns and "title" in columns
    indexes = {row[1] for row in db.execute("PRAGMA index_list(tasks)")}
    assert {"tasks_by_seq", "tasks_by_change"} <= indexes

    listed = store.page(limit=100)
    assert [task.id for task in listed] == [row[0] for row in reversed(rows)]
    for task, row in zip(reversed(listed), rows, strict=True):
        assert (task.id, task.seq, task.status, task.source, task.path) == row[:5]
        # Earlier releases kept the job parameters among the options: the store tells them apart.
        assert (task.compare, task.options, task.created) == (json.loads(row[5]), a_task(0).options, row[7])
        assert task.job == {"output_path": "out"}
        assert (task.progress, task.error) == (json.loads(row[10]), row[11])
        assert task.report_files == json.loads(row[12])
        assert task.title == (row[13] if layout == WITH_TITLE else "")
        assert task.change == task.seq  # numbered in task order
    # Tasks added after the upgrade come after every old one, in the list and in the changes.
    new = a_task(100)
    store.add(new)
    assert (new.seq, new.change) == (8, 8)
    assert store.page(limit=1)[0].id == new.id
    assert [task.id for task in store.changes(since=7, limit=10).tasks] == [new.id]
    store.close()
    # An upgraded database opens again as it is.
    assert len(TaskStore(tmp_path / "tasks.sqlite").page(limit=100)) == 8


def test_a_database_of_a_newer_release_is_refused_by_name(tmp_path):
    db = sqlite3.connect(tmp_path / "tasks.sqlite")
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(SchemaError, match=r"tasks\.sqlite: written by a newer release"):
        TaskStore(tmp_path / "tasks.sqlite")


def test_every_write_takes_a_new_change_number(tmp_path):
    store = TaskStore(tmp_path / "tasks.sqlite")
    first, second = a_task(1, "analyzing"), a_task(2, "queued")
    store.add(first)
    store.add(second)
    token = store.token()
    assert (first.change, second.change, token) == (1, 2, 2)
    assert store.changes(token, limit=10).tasks == []

    first.progress = {"stage": "reading rank 1/2", "done": 1, "total": 4}
    store.update(first)
    changed = store.changes(token, limit=10)
    assert [task.id for task in changed.tasks] == [first.id] and changed.token == first.change == 3

    store.delete(second.id)
    deleted = store.changes(changed.token, limit=10)
    assert (deleted.tasks, deleted.deleted, deleted.token) == ([], [second.id], 4)

    assert store.recover_interrupted() == 1
    interrupted = store.changes(deleted.token, limit=10)
    assert [(task.id, task.status) for task in interrupted.tasks] == [(first.id, "interrupted")]
    # A token ahead of the database (another database), or more changes than one reply carries.
    assert store.changes(store.token() + 1, limit=10) is None
    assert store.changes(0, limit=0) is None


@pytest.fixture
def task_store(jp_serverapp) -> TaskStore:
    return jp_serverapp.web_app.settings["performance_advisor"]["store"]


def fill(store: TaskStore, count: int) -> list[Task]:
    tasks = [a_task(index, status=("success", "failed")[index % 2]) for index in range(1, count + 1)]
    for task in tasks:
        store.add(task)
    return tasks


async def test_the_list_comes_in_pages_of_what_the_table_shows(jp_fetch, task_store):
    tasks = fill(task_store, 120)
    newest_first = [task.id for task in reversed(tasks)]

    status, page = await call(jp_fetch, *API, "tasks")
    assert status == 200 and tuple(page) == TASK_LIST_KEYS
    assert [task["id"] for task in page["tasks"]] == newest_first[:50]  # the default page
    assert all(tuple(task) == TASK_SUMMARY_KEYS for task in page["tasks"])
    assert "options" not in json.dumps(page)  # the form's options are only in the task itself
    assert page["token"] == 120 and page["deleted"] == [] and page["reset"] is False

    listed, cursor = [], None
    while True:
        query = {"limit": "35"} | ({"before": str(cursor)} if cursor else {})
        status, page = await call(jp_fetch, *API, "tasks", params=query)
        assert status == 200 and len(page["tasks"]) <= 35
        listed += [task["id"] for task in page["tasks"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert listed == newest_first

    # The full task (with its options) is still one GET away.
    status, full = await call(jp_fetch, *API, "tasks", listed[0])
    assert status == 200 and full["options"] == tasks[-1].options
    assert (full["output_path"], full["language"]) == ("out", "en")  # stored before languages: the default


async def test_a_since_poll_gets_only_changed_new_and_deleted_tasks(jp_fetch, task_store):
    tasks = fill(task_store, 60)
    _, page = await call(jp_fetch, *API, "tasks")
    token = page["token"]

    status, nothing = await call(jp_fetch, *API, "tasks", params={"since": str(token)})
    assert status == 200
    assert (nothing["tasks"], nothing["deleted"], nothing["reset"]) == ([], [], False)
    assert nothing["token"] == token

    old = tasks[0]  # far beyond the first page: still reported, the client keeps it if it shows it
    old.status, old.error = "failed", "cancelled by hand"
    task_store.update(old)
    task_store.delete(tasks[30].id)
    new = a_task(500, "queued")
    task_store.add(new)
    _, changed = await call(jp_fetch, *API, "tasks", params={"since": str(token)})
    listed = [(task["id"], task["status"]) for task in changed["tasks"]]
    assert listed == [(old.id, "failed"), (new.id, "queued")]
    assert changed["deleted"] == [tasks[30].id]
    assert changed["token"] == new.change > token


async def test_a_since_token_that_cannot_be_answered_gives_the_first_page(jp_fetch, task_store):
    fill(task_store, 3)
    status, reply = await call(jp_fetch, *API, "tasks", params={"since": "99", "limit": "2"})
    assert status == 200 and reply["reset"] is True
    assert [task["seq"] for task in reply["tasks"]] == [3, 2] and reply["next"] == 2
    # More changes than a reply may carry: reload too.
    status, reply = await call(jp_fetch, *API, "tasks", params={"since": "0", "limit": "2"})
    assert status == 200 and reply["reset"] is True and len(reply["tasks"]) == 2


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"limit": "0"}, "limit must be a whole number between 1 and 500; got '0'"),
        ({"limit": "501"}, "limit must be a whole number between 1 and 500"),
        ({"limit": "ten"}, "limit must be a whole number between 1 and 500; got 'ten'"),
        ({"limit": "-5"}, "limit must be a whole number"),
        ({"before": "0"}, "before must be a whole number at least 1"),
        ({"before": "1e3"}, "before must be a whole number"),
        ({"since": "x"}, "since must be a whole number at least 0"),
        ({"since": "9" * 40}, "since must be a whole number"),
        ({"since": "٣"}, "since must be a whole number"),  # a digit, but not an ASCII one
        ({"since": "3", "before": "2"}, "since and before cannot be combined"),
    ],
)
async def test_bad_list_arguments_are_400_naming_the_argument(jp_fetch, query, message):
    status, reply = await call(jp_fetch, *API, "tasks", params=query)
    assert status == 400
    assert message in reply["message"]
