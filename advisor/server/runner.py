"""Runs analysis tasks as CLI subprocesses: bounded parallelism, progress, timeout, cancel."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import uuid
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..lifeline import PARENT_PID_ENV, TASK_ID_ENV
from ..options import Deployment, JobParameters, cli_args, parse_model, parse_options
from ..storage.config import is_object_url
from .models import ANALYZING, CANCELLED, FAILED, INTERRUPTED, QUEUED, SUCCESS, Task, utc_now
from .paths import PathResolver
from .store import TaskStore

KILL_GRACE_S = 5.0


def new_task_id() -> str:
    return uuid.uuid4().hex[:12]


class TaskRunner:
    """Queues tasks and runs at most `max_concurrent` analysis subprocesses at once.

    Each subprocess gets its own process group, so cancel and shutdown kill the analysis and every
    worker process it started.
    """

    def __init__(
        self,
        store: TaskStore,
        resolver: PathResolver,
        *,
        logs_dir: Path,
        max_concurrent: int = 1,
        timeout_s: float = 0,
        log: logging.Logger | None = None,
        store_env: dict[str, str] | None = None,
        reports_dir: Path | None = None,
        deployment: Deployment | None = None,
    ) -> None:
        self.store = store
        self.resolver = resolver
        self.logs_dir = logs_dir
        # Object-store endpoint and credentials for the analysis subprocess: passed in its environment
        # only (never on its command line, which the task log records).
        self.store_env = dict(store_env or {})
        # Local copies of reports uploaded to an object store (the server serves these).
        self.reports_dir = reports_dir or logs_dir.parent / "reports"
        self.timeout_s = timeout_s
        # Where every analysis runs its ranks (a server setting: the address is not a secret, so it
        # goes on the command line that the task log records).
        self.deployment = deployment or Deployment()
        self.log = log or logging.getLogger(__name__)
        self._slots = asyncio.Semaphore(max_concurrent)
        self._active: dict[str, Task] = {}
        self._processes: dict[str, asyncio.subprocess.Process] = {}
        self._jobs: dict[str, asyncio.Task[None]] = {}
        self._cancel_requested: set[str] = set()
        self.logs_dir.mkdir(parents=True, exist_ok=True)

    # -- public -------------------------------------------------------------------------------
    def submit(self, task: Task) -> Task:
        self.store.add(task)
        self._active[task.id] = task
        self._jobs[task.id] = asyncio.ensure_future(self._run(task))
        return task

    def log_path(self, task_id: str) -> Path:
        return self.logs_dir / f"{task_id}.log"

    def running_count(self) -> int:
        return len(self._processes)

    def queued_count(self) -> int:
        """Tasks waiting for a slot (submitted in this server's life, not yet started)."""
        return sum(task.status == QUEUED for task in self._active.values())

    async def cancel(self, task_id: str) -> Task | None:
        """Cancel a queued or analyzing task; returns it, or None if it is not active."""
        task = self._active.get(task_id)
        if task is None:
            return None
        self._cancel_requested.add(task_id)
        process = self._processes.get(task_id)
        if process is None:
            # Still waiting for a slot: it never started, so nothing to kill.
            self._finish(task, CANCELLED, error="Cancelled before it started")
            return task
        await self._kill(process)
        job = self._jobs.get(task_id)
        if job is not None:
            await asyncio.wait([job], timeout=KILL_GRACE_S * 2)
        return task

    async def shutdown(self) -> None:
        """Server stop: kill every analysis and record its task as interrupted."""
        for task_id in list(self._active):
            self._cancel_requested.add(task_id)
        await asyncio.gather(*(self._kill(p) for p in list(self._processes.values())), return_exceptions=True)
        for task in list(self._active.values()):
            self._finish(task, INTERRUPTED, error="The server stopped while this task was running")
        for job in self._jobs.values():
            job.cancel()

    # -- internals ----------------------------------------------------------------------------
    def _input(self, source: str, path: str, kind: str) -> str:
        """A local path resolved inside the allowed roots, or an obs:// / s3:// URL as it is."""
        if source == "obs":
            return path
        return str(self.resolver.resolve(path, kind=kind))

    def _command(self, task: Task) -> list[str]:
        data = self._input(task.source, task.path, "profiling path")
        output_path = task_job(task).output_path
        command = [sys.executable, "-m", "advisor", "analyze", data, "--progress", "json"]
        if is_object_url(output_path):
            command += ["--local-output", str(self.reports_dir / task.id)]
        else:
            output_path = str(self.resolver.resolve(output_path, must_exist=False, kind="output_path"))
        training_log = task_job(task).training_log
        if training_log:  # confined again: the roots may have changed since the submission
            training_log = str(self.resolver.resolve(training_log, kind="training_log"))
        command += task_cli_options(task, output_path, training_log) + cli_args(self.deployment)
        if task.compare:
            compare = self._input(task.compare["source"], task.compare["path"], "compared profiling path")
            command += ["--compare", compare]
        return command

    async def _run(self, task: Task) -> None:
        try:
            async with self._slots:
                if task.status != QUEUED:  # cancelled while waiting for a slot
                    return
                await self._execute(task)
        except Exception as error:  # a bug here must not leave the task "analyzing" forever
            self.log.exception("Performance Advisor task %s crashed", task.id)
            if task.status in (QUEUED, ANALYZING):
                self._finish(task, FAILED, error=f"Internal error while running the task: {error}")
        finally:
            self._jobs.pop(task.id, None)
            self._cancel_requested.discard(task.id)

    async def _execute(self, task: Task) -> None:
        try:
            command = self._command(task)
        except InputError as error:  # the data was moved or deleted after submission
            self._finish(task, FAILED, error=str(error))
            return
        task.status, task.started = ANALYZING, utc_now()
        task.progress = {"stage": "starting", "done": 0, "total": 1}
        self.store.update(task)
        with open(self.log_path(task.id), "ab") as log_file:
            log_file.write(("$ " + " ".join(command) + "\n").encode())
            log_file.flush()
            process = await asyncio.create_subprocess_exec(
                *command,
                stdout=log_file,
                stderr=asyncio.subprocess.PIPE,
                stdin=asyncio.subprocess.DEVNULL,
                cwd=str(self.resolver.root_dir),
                env={
                    **os.environ,
                    **self.store_env,
                    "PYTHONUNBUFFERED": "1",
                    PARENT_PID_ENV: str(os.getpid()),  # it dies with us (advisor/lifeline.py)
                    TASK_ID_ENV: task.id,  # how a restarted server knows it (end_orphaned_analyses)
                },
                start_new_session=True,
            )
            self._processes[task.id] = process
            task.pgid = process.pid  # a session leader's group id is its pid
            self.store.update(task)
            outcome: dict[str, Any] = {}
            try:
                reader = self._read_events(task, process, log_file, outcome)
                if self.timeout_s > 0:
                    await asyncio.wait_for(reader, timeout=self.timeout_s)
                else:
                    await reader
                returncode = await process.wait()
            except asyncio.TimeoutError:
                await self._kill(process)
                if task.status != SUCCESS:  # a process slow to exit after its result keeps its success
                    self._finish(
                        task,
                        FAILED,
                        error=f"The analysis took longer than {self.timeout_s:g} s and was stopped",
                    )
                return
            finally:
                self._processes.pop(task.id, None)
        if task.status == SUCCESS:
            # Marked on the result event; the exit only frees the slot.
            if returncode != 0:
                self.log.warning(
                    "Performance Advisor task %s exited with code %s after writing its reports",
                    task.id,
                    returncode,
                )
        elif task.id in self._cancel_requested:
            self._finish(task, CANCELLED, error="Cancelled by the user")
        elif returncode == 0 and outcome.get("reports"):
            task.report_files = {fmt: path for fmt, path in outcome["reports"].items() if path}
            self._finish(task, SUCCESS)
        else:
            reason = (
                outcome.get("error")
                or outcome.get("last_line")
                or f"the analysis exited with code {returncode}"
            )
            self._finish(task, FAILED, error=reason)

    async def _read_events(
        self, task: Task, process: asyncio.subprocess.Process, log_file: Any, outcome: dict[str, Any]
    ) -> None:
        assert process.stderr is not None
        async for raw in process.stderr:
            line = raw.decode("utf-8", "replace").strip()
            event = parse_event(line)
            if event is not None and event.get("event") == "warning":
                # What changed the result, for whoever reads the log: as the CLI prints it elsewhere.
                log_file.write(f"warning: {event.get('message', '')}\n".encode())
            else:
                log_file.write(raw)
            log_file.flush()
            if not line:
                continue
            if event is None:
                outcome["last_line"] = line[:500]
            elif event.get("event") == "progress":
                task.progress = {
                    "stage": str(event.get("stage", "")),
                    "done": int(event.get("done", 0)),
                    "total": int(event.get("total", 0)),
                }
                self.store.update(task)
            elif event.get("event") == "result":
                outcome["reports"] = event.get("reports") or {}
                self._succeed_early(task, outcome["reports"])
            elif event.get("event") == "error":
                outcome["error"] = str(event.get("message", ""))[:1000]

    def _succeed_early(self, task: Task, reports: dict[str, Any]) -> None:
        """Success as soon as the result event names report files that exist: the analysis may take
        seconds more to exit (worker pools, interpreter teardown), and the user should not wait on it."""
        files = {str(fmt): str(path) for fmt, path in reports.items() if path}
        if task.id in self._cancel_requested or not files:
            return
        if all(Path(path).is_file() for path in files.values()):
            task.report_files = files
            self._finish(task, SUCCESS)

    def scrub(self, text: str) -> str:
        """`text` without the object-store secrets the analyses are given (for serving task logs)."""
        from ..storage import config as names

        secrets = (names.OBS_AK, names.OBS_SK, names.OBS_TOKEN, names.AWS_AK, names.AWS_SK, names.AWS_TOKEN)
        for name in secrets:
            secret = self.store_env.get(name) or os.environ.get(name, "")
            if len(secret) >= 6:  # shorter ones are no real keys, and would mangle the text
                text = text.replace(secret, "***")
        return text

    async def _kill(self, process: asyncio.subprocess.Process) -> None:
        """SIGTERM the whole process group, SIGKILL it if it does not exit within the grace period."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
            try:
                await asyncio.wait_for(process.wait(), timeout=KILL_GRACE_S)
                return
            except asyncio.TimeoutError:
                continue

    def _finish(self, task: Task, status: str, *, error: str | None = None) -> None:
        task.status, task.error, task.finished = status, error, utc_now()
        task.pgid = None
        if status != SUCCESS:
            task.report_files = {}
        self.store.update(task)
        self._active.pop(task.id, None)


def end_orphaned_analyses(groups: Iterable[tuple[str, int]], proc: Path = Path("/proc")) -> list[int]:
    """SIGKILL what is left of the analyses of a crashed server: every process of a recorded process
    group that carries its task's id in its environment, so that a process group id reused since by
    anything else is never touched. Returns the pids killed. Without /proc (not Linux) nothing is
    done here: the analyses' own parent-liveness check (advisor/lifeline.py) ends them."""
    tasks_by_group = {pgid: task_id for task_id, pgid in groups}
    if not tasks_by_group or not proc.is_dir():
        return []
    killed = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # "pid (comm) state ppid pgrp …": comm may hold spaces and parentheses, the rest cannot.
            group = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[2])
            if group not in tasks_by_group:
                continue
            environment = (entry / "environ").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):  # gone meanwhile, or not ours to read
            continue
        if f"{TASK_ID_ENV}={tasks_by_group[group]}".encode() in environment:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry.name), signal.SIGKILL)
                killed.append(int(entry.name))
    return killed


def parse_event(line: str) -> dict[str, Any] | None:
    """A progress-protocol event (see docs/design.md), or None for free text."""
    if not line.startswith("{"):
        return None
    try:
        event = json.loads(line)
    except ValueError:
        return None
    return event if isinstance(event, dict) and "event" in event else None


def task_job(task: Task) -> JobParameters:
    """A task's job parameters (validated at submission; one stored before a parameter was kept takes
    its default)."""
    return parse_model(JobParameters, task.job)


def task_cli_options(task: Task, output: str, training_log: str = "") -> list[str]:
    """The CLI flags of a task's job parameters, its reports going to `output` and its training log
    read from `training_log` (resolved), and of its analysis options (validated at submission)."""
    job = replace(task_job(task), output_path=output, training_log=training_log)
    return [*cli_args(job), *parse_options(task.options).to_cli_args()]
