"""The task record and its wire format (the REST contract of docs/architecture.md §3.4)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import PurePath
from typing import Any

from ..options import JobParameters, model_json, specs

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

# Wire keys of a task as the task list (GET api/tasks) gives it: what the Reports table shows, plus
# `seq` (its place in the list, the `before` cursor) and `change` (when it was last written: of two
# copies of a task, the higher is the newer). Tests compare handler output against these tuples and
# src/tokens.ts (ITaskSummary, ITask).
TASK_SUMMARY_KEYS = (
    "id", "seq", "change", "status", "path", "compare", "created", "started", "finished", "progress",
    "error", "title", "reports",
)  # fmt: skip
# The job parameters (advisor/options.py JobParameters): top-level keys of a task and of its request.
JOB_KEYS = tuple(specs(JobParameters))
# A task in full (GET api/tasks/{id}, POST's answer): the summary and what the table does not show.
TASK_KEYS = (*TASK_SUMMARY_KEYS, *JOB_KEYS, "source", "options")
# GET api/tasks: a page (`tasks`, `next`: the `before` of the following page or null) or, with
# `since`, the tasks written and the ids deleted after that token; `token` for the next `since`.
# `reset` says that the token could not be answered and the reply is the first page instead.
TASK_LIST_KEYS = ("tasks", "next", "deleted", "token", "reset")


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
    # The analysis options (AnalysisOptions.to_json()) and the job parameters (JobParameters.to_json();
    # a key is missing from tasks stored before it was kept, e.g. `language` when none was asked for).
    options: dict[str, Any]
    job: dict[str, Any] = field(default_factory=dict)
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
    # Set by the store: the task's place in submission order and its last change number.
    seq: int = 0
    change: int = 0

    @property
    def finished_state(self) -> bool:
        return self.status in FINISHED_STATUSES

    def to_summary(self) -> dict[str, Any]:
        """The task as the task list gives it (TASK_SUMMARY_KEYS)."""
        reports: dict[str, str | None] = dict.fromkeys(REPORT_FORMATS)
        if self.status == SUCCESS:
            for fmt in REPORT_FORMATS:
                if fmt in self.report_files:
                    suffix = "" if fmt == "html" else f"/{fmt}"
                    reports[fmt] = f"performance-advisor/reports/{self.id}{suffix}"
        return {
            "id": self.id,
            "seq": self.seq,
            "change": self.change,
            "status": self.status,
            "path": self.path,
            "compare": self.compare,
            "created": self.created,
            "started": self.started,
            "finished": self.finished,
            "progress": self.progress,
            "error": self.error,
            "title": self.title or path_title(self.path),
            "reports": reports,
        }

    def to_api(self) -> dict[str, Any]:
        """The task in full (TASK_KEYS)."""
        job = {**model_json(JobParameters()), **self.job}  # defaults for what older tasks did not keep
        return {**self.to_summary(), **job, "source": self.source, "options": self.options}
