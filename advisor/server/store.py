"""Tasks in SQLite (WAL), so that finished tasks and their reports survive a server restart."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from .models import ACTIVE_STATUSES, ANALYZING, INTERRUPTED, Task, utc_now

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
    title TEXT NOT NULL DEFAULT ''
)
"""
# Columns added after the first release: (name, definition) for databases created before them.
ADDED_COLUMNS = (("title", "TEXT NOT NULL DEFAULT ''"), ("pgid", "INTEGER"))
JSON_COLUMNS = ("compare", "options", "progress", "report_files")
COLUMNS = ("id", "status", "source", "path", "compare", "options", "created", "started", "finished",
           "progress", "error", "report_files", "title", "pgid")  # fmt: skip


class TaskStore:
    def __init__(self, db_path: str | Path) -> None:
        self.db_path = Path(db_path)
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        # One connection, used from the server's event loop thread only.
        self._db = sqlite3.connect(self.db_path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.execute(SCHEMA)
        present = {row[1] for row in self._db.execute("PRAGMA table_info(tasks)")}
        for name, definition in ADDED_COLUMNS:
            if name not in present:
                self._db.execute(f"ALTER TABLE tasks ADD COLUMN {name} {definition}")

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
            f"UPDATE tasks SET status=?, finished=?, error=?, pgid=NULL WHERE status IN ({marks})",
            (INTERRUPTED, utc_now(), "The server stopped while this task was running", *ACTIVE_STATUSES),
        )
        return cursor.rowcount

    def add(self, task: Task) -> None:
        values = self._row_values(task)
        self._db.execute(
            f"INSERT INTO tasks (seq, {', '.join(COLUMNS)}) "
            f"VALUES ((SELECT COALESCE(MAX(seq), 0) + 1 FROM tasks), {', '.join('?' for _ in COLUMNS)})",
            values,
        )

    def update(self, task: Task) -> None:
        assignments = ", ".join(f"{column}=?" for column in COLUMNS[1:])
        self._db.execute(f"UPDATE tasks SET {assignments} WHERE id=?", (*self._row_values(task)[1:], task.id))

    def get(self, task_id: str) -> Task | None:
        row = self._db.execute(f"SELECT {', '.join(COLUMNS)} FROM tasks WHERE id=?", (task_id,)).fetchone()
        return self._task(row) if row else None

    def list(self) -> list[Task]:
        rows = self._db.execute(f"SELECT {', '.join(COLUMNS)} FROM tasks ORDER BY seq DESC").fetchall()
        return [self._task(row) for row in rows]

    def delete(self, task_id: str) -> None:
        self._db.execute("DELETE FROM tasks WHERE id=?", (task_id,))

    @staticmethod
    def _row_values(task: Task) -> tuple[Any, ...]:
        values = []
        for column in COLUMNS:
            value = getattr(task, column)
            values.append(json.dumps(value) if column in JSON_COLUMNS else value)
        return tuple(values)

    @staticmethod
    def _task(row: tuple[Any, ...]) -> Task:
        data = dict(zip(COLUMNS, row, strict=True))
        for column in JSON_COLUMNS:
            data[column] = json.loads(data[column]) if data[column] is not None else None
        data["report_files"] = data["report_files"] or {}
        return Task(**data)
