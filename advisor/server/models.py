"""The task record and its wire format (the REST contract of docs/architecture.md §3.4)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import PurePath
from typing import Any

QUEUED, ANALYZING, SUCCESS, FAILED, CANCELLED, INTERRUPTED = (
    "queued",
    "analyzing",
    "success",
    "failed",
    "cancelled",
    "interrupted",
)
ACTIVE_STATUSES = (QUEUED, ANALYZING)
FINISHED_STATUSES = (SUCCESS, FAILED, CANCELLED, INTERRUPTED)
REPORT_FORMATS = ("html", "xlsx", "json")

# Wire keys of a task; tests compare handler output against this tuple and src/tokens.ts.
TASK_KEYS = (
    "id", "status", "source", "path", "compare", "options", "created", "started", "finished",
    "progress", "error", "title", "reports",
)  # fmt: skip


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def path_title(path: str) -> str:
    """The last meaningful part of a path as the user typed it: `./runs/job1/` and `obs://b/job1` give
    `job1`; a path without one (".", "/", "obs://bucket") gives itself."""
    parts = [p for p in PurePath(path.split("://", 1)[-1]).parts if p not in ("/", ".", "..")]
    return parts[-1] if parts else path


@dataclass
class Task:
    id: str
    source: str
    path: str
    options: dict[str, Any]
    compare: dict[str, str] | None = None
    status: str = QUEUED
    created: str = field(default_factory=utc_now)
    started: str | None = None
    finished: str | None = None
    progress: dict[str, Any] | None = None
    error: str | None = None
    # Absolute paths of the report files this task wrote, by format; never returned to clients.
    report_files: dict[str, str] = field(default_factory=dict)
    # The profile's real folder name (set at submission from the resolved path, so "." is named
    # after the folder it stands for); empty in rows stored before titles were.
    title: str = ""
    # The analysis's process group while it runs (it leads a session of its own), so that a server
    # restarted after a crash can end what is left of it; never returned to clients.
    pgid: int | None = None

    @property
    def finished_state(self) -> bool:
        return self.status in FINISHED_STATUSES

    def to_api(self) -> dict[str, Any]:
        reports: dict[str, str | None] = dict.fromkeys(REPORT_FORMATS)
        if self.status == SUCCESS:
            for fmt in REPORT_FORMATS:
                if fmt in self.report_files:
                    suffix = "" if fmt == "html" else f"/{fmt}"
                    reports[fmt] = f"performance-advisor/reports/{self.id}{suffix}"
        data = {
            "id": self.id,
            "status": self.status,
            "source": self.source,
            "path": self.path,
            "compare": self.compare,
            "options": self.options,
            "created": self.created,
            "started": self.started,
            "finished": self.finished,
            "progress": self.progress,
            "error": self.error,
            "title": self.title or path_title(self.path),
            "reports": reports,
        }
        return data
