"""Open a finished task's report as a notebook (`POST api/tasks/{id}/notebook`).

The notebook is written next to the task's JSON report, never over an existing file, and only where
JupyterLab can open it: in a local report folder inside both the allowed roots and the Jupyter root.
It re-analyses the task's own data with the Python API, so its input paths are written relative to the
notebook's folder (the kernel's working directory) for local data, and as the URL for object storage.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import InputError
from ..report.notebook import build_notebook, write_notebook_beside
from ..storage.config import is_object_url
from .models import SUCCESS, Task
from .paths import PathResolver
from .runner import task_job


class NotebookRefused(InputError):
    """Why a task's notebook cannot be written, with the HTTP status that says so."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def write_task_notebook(task: Task, resolver: PathResolver) -> Path:
    """Write the notebook of a successful task beside its JSON report; returns its path.

    NotebookRefused (409: the task is not successful, its reports went to object storage or lie
    outside the Jupyter root; 404: its JSON report is gone) says why not, in one line.
    """
    if task.status != SUCCESS:
        raise NotebookRefused(
            409, f"Task {task.id} is {task.status}: only a successful analysis has a report for a notebook"
        )
    job = task_job(task)
    if is_object_url(job.output_path):
        raise NotebookRefused(
            409,
            f"The reports of task {task.id} were uploaded to {job.output_path}; "
            "a notebook is written only next to reports in a local folder",
        )
    json_report = Path(task.report_files.get("json") or "")
    if not task.report_files.get("json") or not json_report.is_file():
        raise NotebookRefused(404, f"The JSON report of task {task.id} is not on disk (was it deleted?)")
    try:
        report_dir = resolver.resolve(str(json_report.parent), kind="report folder")
    except InputError as error:
        raise NotebookRefused(409, str(error)) from None
    if not report_dir.is_relative_to(resolver.root_dir):
        raise NotebookRefused(
            409,
            f"The reports of task {task.id} are outside the Jupyter root folder: JupyterLab could not open "
            "a notebook there",
        )
    try:
        report = json.loads(json_report.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise NotebookRefused(409, f"The JSON report of task {task.id} cannot be read: {error}") from None
    if not isinstance(report, dict):
        raise NotebookRefused(409, f"The JSON report of task {task.id} is not a JSON object")
    notebook = build_notebook(
        report,
        data_path=notebook_input(task.source, task.path, report_dir, resolver),
        compare_path=(
            notebook_input(task.compare["source"], task.compare["path"], report_dir, resolver)
            if task.compare
            else None
        ),
        language=job.language,
        dimensions=task.options.get("analysis_dimensions"),
        training_log=(
            notebook_input("local", job.training_log, report_dir, resolver)
            if job.training_log and job.training_log != task.path
            else None
        ),
    )
    return write_notebook_beside(report_dir, json_report.stem, notebook)


def notebook_input(source: str, path: str, notebook_dir: Path, resolver: PathResolver) -> str:
    """An input of the task as the notebook's code names it: an object-store URL as it is; a local path
    relative to the notebook's folder, so that the notebook and its data can move together."""
    if source == "obs" or is_object_url(path):
        return path
    # The data may have been moved since the analysis: the notebook's own run will say so.
    resolved = resolver.resolve(path, must_exist=False, kind="profiling path")
    return Path(os.path.relpath(resolved, notebook_dir)).as_posix()
