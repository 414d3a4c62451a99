"""Tasks in SQLite (WAL), so that finished tasks and their reports survive a server restart."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .models import ACTIVE_STATUSES, ANALYZING, INTERRUPTED, JOB_KEYS, Task, utc_now

# PRAGMA user_version of the layout below. 0 is every database written before versions were kept
# (the first release's table without `title`, and the one with it); UPGRADES brings each one up.
SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    status TEXT NOT NULL,
    source TEXT NOT NULL,
    path TEXT NOT NULL,
    compare TEXT,
    options TEXT NOT NULL,
    created TEXT NOT NULL,
    started TEXT,
    finished TEXT,
    progress TEXT,
    error TEXT,
    report_files TEXT NOT NULL DEFAULT '{}',
    title TEXT NOT NULL DEFAULT '',
    pgid INTEGER,
    change INTEGER NOT NULL DEFAULT 0
)
"""
# Columns added after the first release: (name, definition) for databases created before them.
# `pgid` is the process group of the task's analysis; `change` the store's change counter when the row
# was last written (the `since` token of the task list).
ADDED_COLUMNS = (
    ("title", "TEXT NOT NULL DEFAULT ''"),
    ("pgid", "INTEGER"),
    ("change", "INTEGER NOT NULL DEFAULT 0"),
)
JSON_COLUMNS = ("compare", "options", "progress", "report_files")
# The `options` column holds a task's analysis options and job parameters in one object, as every
# release before they were told apart did: old rows read as they are and the layout stays the same.
COLUMNS = ("id", "status", "source", "path", "compare", "options", "created", "started", "finished",
           "progress", "error", "report_files", "title", "pgid")  # fmt: skip
# Set by the store, never from a Task: read back, not written by add/update.
STORE_COLUMNS = ("seq", "change")
SELECT_COLUMNS = ", ".join(COLUMNS + STORE_COLUMNS)

# The next value of the change counter: above every live row and every deletion recorded.
NEXT_CHANGE = (
    "(SELECT MAX(COALESCE((SELECT MAX(change) FROM tasks), 0),"
    " COALESCE((SELECT MAX(change) FROM deleted_tasks), 0)) + 1)"
)


def _upgrade_to_1(db: sqlite3.Connection) -> None:
    """Unversioned layouts: add the columns they lack, number their rows' changes in task order, and
    add the deletions table and the indexes of the list queries."""
    present = {row[1] for row in db.execute("PRAGMA table_info(tasks)")}
    for name, definition in ADDED_COLUMNS:
        if name not in present:
            db.execute(f"ALTER TABLE tasks ADD COLUMN {name} {definition}")
    db.execute("UPDATE tasks SET change = seq WHERE change = 0")
    db.execute("CREATE TABLE IF NOT EXISTS deleted_tasks (id TEXT PRIMARY KEY, change INTEGER NOT NULL)")
    db.execute("CREATE INDEX IF NOT EXISTS tasks_by_seq ON tasks (seq)")
    db.execute("CREATE INDEX IF NOT EXISTS tasks_by_change ON tasks (change)")
    db.execute("CREATE INDEX IF NOT EXISTS deleted_tasks_by_change ON deleted_tasks (change)")


# UPGRADES[n] brings a database from user_version n to n + 1.
UPGRADES = (_upgrade_to_1,)
assert len(UPGRADES) == SCHEMA_VERSION


class SchemaError(RuntimeError):
    """The task database was written by a newer release."""


@dataclass(frozen=True)
class Changes:
    """What changed in the store after a `since` token: tasks written, ids deleted, and the new token."""

    tasks: list[Task]
    deleted: list[str]
    token: int


class TaskStore:
    def __init__(self, db_path: str | Path) -> None:
        self.db_path = Path(db_path)
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        # One connection, used from the server's event loop thread only.
        self._db = sqlite3.connect(self.db_path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._upgrade()

    def _upgrade(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise SchemaError(
                f"{self.db_path}: written by a newer release (schema {version}; this one reads up to "
                f"{SCHEMA_VERSION}); upgrade the extension or move the file aside"
            )
        if version == SCHEMA_VERSION:
            return
        # One transaction: a crash half-way leaves the old layout, upgraded again at the next start.
        with self._transaction():
            self._db.execute(SCHEMA)
            for upgrade in UPGRADES[version:]:
                upgrade(self._db)
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()

    def active_process_groups(self) -> list[tuple[str, int]]:
        """(task id, process group) of the tasks a previous server process left analyzing."""
        rows = self._db.execute(
            "SELECT id, pgid FROM tasks WHERE status=? AND pgid IS NOT NULL", (ANALYZING,)
        ).fetchall()
        return [(task_id, int(pgid)) for task_id, pgid in rows]

    def recover_interrupted(self) -> int:
        """Tasks left queued or analyzing by a previous server process can never finish: say so."""
        marks = ",".join("?" for _ in ACTIVE_STATUSES)
        cursor = self._db.execute(
            f"UPDATE tasks SET status=?, finished=?, error=?, pgid=NULL, change={NEXT_CHANGE} "
            f"WHERE status IN ({marks})",
            (INTERRUPTED, utc_now(), "The server stopped while this task was running", *ACTIVE_STATUSES),
        )
        return cursor.rowcount

    def add(self, task: Task) -> None:
        task.seq, task.change = self._db.execute(
            f"INSERT INTO tasks (seq, change, {', '.join(COLUMNS)}) "
            f"VALUES ((SELECT COALESCE(MAX(seq), 0) + 1 FROM tasks), {NEXT_CHANGE}, "
            f"{', '.join('?' for _ in COLUMNS)}) RETURNING seq, change",
            self._row_values(task),
        ).fetchone()

    def update(self, task: Task) -> None:
        assignments = ", ".join(f"{column}=?" for column in COLUMNS[1:])
        row = self._db.execute(
            f"UPDATE tasks SET {assignments}, change={NEXT_CHANGE} WHERE id=? RETURNING change",
            (*self._row_values(task)[1:], task.id),
        ).fetchone()
        if row:
            task.change = row[0]

    def get(self, task_id: str) -> Task | None:
        row = self._db.execute(f"SELECT {SELECT_COLUMNS} FROM tasks WHERE id=?", (task_id,)).fetchone()
        return self._task(row) if row else None

    def page(self, limit: int, before: int | None = None) -> list[Task]:
        """At most `limit` tasks, newest first, from those with a sequence number below `before`."""
        rows = self._db.execute(
            f"SELECT {SELECT_COLUMNS} FROM tasks WHERE seq < ? ORDER BY seq DESC LIMIT ?",
            (before if before is not None else 1 << 62, limit),
        ).fetchall()
        return [self._task(row) for row in rows]

    def token(self) -> int:
        """The change counter now: a `since` token that lists nothing yet."""
        return self._db.execute(f"SELECT {NEXT_CHANGE} - 1").fetchone()[0]

    def changes(self, since: int, limit: int) -> Changes | None:
        """Tasks written and deleted after `since`; None when that token cannot be answered (more than
        `limit` tasks changed, or the token is ahead of this database, e.g. one deleted since)."""
        token = self.token()
        if since > token:
            return None
        rows = self._db.execute(
            f"SELECT {SELECT_COLUMNS} FROM tasks WHERE change > ? ORDER BY change LIMIT ?", (since, limit + 1)
        ).fetchall()
        if len(rows) > limit:
            return None
        deleted = self._db.execute("SELECT id FROM deleted_tasks WHERE change > ?", (since,)).fetchall()
        return Changes([self._task(row) for row in rows], [row[0] for row in deleted], token)

    def delete(self, task_id: str) -> None:
        # The deletion takes a change number, so that a `since` poll learns of it.
        with self._transaction():
            self._db.execute(
                "INSERT OR REPLACE INTO deleted_tasks (id, change) "
                f"SELECT id, {NEXT_CHANGE} FROM tasks WHERE id=?",
                (task_id,),
            )
            self._db.execute("DELETE FROM tasks WHERE id=?", (task_id,))

    @staticmethod
    def _row_values(task: Task) -> tuple[Any, ...]:
        values = []
        for column in COLUMNS:
            value = {**task.options, **task.job} if column == "options" else getattr(task, column)
            values.append(json.dumps(value) if column in JSON_COLUMNS else value)
        return tuple(values)

    @staticmethod
    def _task(row: tuple[Any, ...]) -> Task:
        data = dict(zip(COLUMNS + STORE_COLUMNS, row, strict=True))
        for column in JSON_COLUMNS:
            data[column] = json.loads(data[column]) if data[column] is not None else None
        data["report_files"] = data["report_files"] or {}
        stored = data.pop("options")
        data["options"] = {k: v for k, v in stored.items() if k not in JOB_KEYS}
        data["job"] = {k: v for k, v in stored.items() if k in JOB_KEYS}
        return Task(**data)
