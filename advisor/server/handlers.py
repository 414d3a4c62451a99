"""REST handlers (JSON) and the report handler (HTML in a sandbox)."""

from __future__ import annotations

import asyncio
import json
import mimetypes
import os
from pathlib import Path
from typing import Any

from jupyter_server.base.handlers import APIHandler, JupyterHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web

from ..errors import InputError, MalformedPathError, MixedRunsError, OptionError
from ..formats import discover, report_input_fields
from ..formats.training_log import describe_training_log, detect_training_log
from ..options import LANGUAGES, VERSION_HINT_DEVICES, JobParameters, options_schema, parse_choice
from ..pathtext import check_text
from ..report.messages import Messages, profile_line, training_log_line
from ..storage.config import is_object_url
from .models import ACTIVE_STATUSES, SUCCESS, Task
from .notebooks import NotebookRefused, write_task_notebook
from .paths import PathResolver
from .runner import TaskRunner
from .store import TaskStore
from .submission import parse_submission, parse_training_log

NAMESPACE = "performance-advisor"
# What api/inspect is asked to check (`input`): the data path (profiling data, or a training log
# analysed alone), or the training log beside the profile (a training log only).
INSPECT_INPUTS = ("profile", "training_log")
# A task log is served from its end: the failure is there.
MAX_LOG_BYTES = 1 << 20
# Tasks per page of GET api/tasks: by default what a panel shows at first, at most what one reply
# may carry whatever the client asks.
DEFAULT_PAGE = 50
MAX_PAGE = 500


class AdvisorHandlerMixin(ExtensionHandlerMixin):
    @property
    def store(self) -> TaskStore:
        return self.settings["performance_advisor"]["store"]

    @property
    def runner(self) -> TaskRunner:
        return self.settings["performance_advisor"]["runner"]

    @property
    def resolver(self) -> PathResolver:
        return self.settings["performance_advisor"]["resolver"]

    def get_task_or_404(self, task_id: str) -> Task:
        task = self.store.get(task_id)
        if task is None:
            raise web.HTTPError(404, f"No task {task_id}")
        return task


class AdvisorAPIHandler(AdvisorHandlerMixin, APIHandler):
    def write_json(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps(data))

    def json_body(self) -> Any:
        """The parsed body of an authenticated request. The largest valid body is a few paths and
        options: anything over the limit is refused unparsed."""
        limit = self.settings["performance_advisor"]["max_request_bytes"]
        if len(self.request.body or b"") > limit:
            raise web.HTTPError(413, f"The request body is larger than {limit} bytes")
        try:
            return json.loads(self.request.body or b"{}")
        except (ValueError, RecursionError):  # RecursionError: arrays nested thousands deep
            raise web.HTTPError(400, "The request body is not valid JSON") from None

    def text_argument(self, name: str, default: str) -> str:
        """A query argument, refused (400) unless it is text a path may hold (tornado itself refuses
        bytes that are not UTF-8)."""
        try:
            return check_text(self.get_argument(name, default), name)
        except MalformedPathError as error:
            raise web.HTTPError(400, str(error)) from None


class OptionsHandler(AdvisorAPIHandler):
    @web.authenticated
    def get(self) -> None:
        schema = options_schema()
        schema["advisor_analyze_processes"]["default"] = self.settings["performance_advisor"][
            "default_processes"
        ]
        self.write_json(
            {"options": schema, "job": options_schema(JobParameters), "sources": ["local", "obs"]}
        )


class InspectHandler(AdvisorAPIHandler):
    """Validates a path as the user types: does it exist, and is it profiling data?

    A usable path answers `{ok: true, summary, path, version_hints, kind}`: what was found in the
    panel's language, the path as resolved, whether the CANN/torch version hints apply to it (Ascend
    data), and what it holds (`profile`, or `training_log`: a file the training-log reader recognises,
    which the analysis reads as a log alone). A path that is not (yet) usable answers 200
    `{ok: false, message}`; a malformed one (see MalformedPathError) and profiling data that the analysis
    refuses outright (rank folders of several runs) answer 400 `{message}`, as a submission would.
    `language` (en, zh: the panel's) is the language of the summary. `input=training_log` checks the
    training log beside the profile (the job parameter `training_log`): a local file inside the allowed
    roots that is a training log.
    """

    @web.authenticated
    async def get(self) -> None:
        source = self.text_argument("source", "local")
        path = self.text_argument("path", "")
        try:
            messages = Messages(parse_choice("language", self.get_argument("language", "en"), LANGUAGES))
            input_kind = parse_choice("input", self.get_argument("input", "profile"), INSPECT_INPUTS)
        except OptionError as error:
            raise web.HTTPError(400, str(error)) from None
        if input_kind == "training_log":
            await self._inspect_training_log(path, messages)
            return
        try:
            if source == "obs" or is_object_url(path):
                summary = await self._probe_object_store(path)
                self.write_json({"ok": True, "summary": summary})
                return
            resolved = self.resolver.resolve(path, kind="path")
            if resolved.is_file() and await self._is_training_log(resolved):
                await self._inspect_training_log(path, messages)
                return
            # Discovery lists folders and reads a few small files: off the event loop all the same.
            found = await asyncio.get_running_loop().run_in_executor(None, discover, resolved)
        except (MixedRunsError, MalformedPathError) as error:
            raise web.HTTPError(400, str(error)) from None
        except InputError as error:
            self.write_json({"ok": False, "message": str(error)})
            return
        fields = report_input_fields(found)
        summary = profile_line(
            messages,
            ranks=len(found.ranks),
            export=fields["export"],
            steps=found.steps,
            format=fields["format"],
            devices=fields["devices"],
        )
        self.write_json(
            {
                "ok": True,
                "summary": summary,
                "path": self.resolver.display(resolved),
                "version_hints": found.device in VERSION_HINT_DEVICES,
                "kind": "profile",
            }
        )

    async def _is_training_log(self, file: Path) -> bool:
        """Whether the training-log reader recognises `file` (it reads the file's head only)."""
        try:
            await asyncio.get_running_loop().run_in_executor(None, detect_training_log, file)
        except InputError:
            return False
        return True

    async def _inspect_training_log(self, path: str, messages: Messages) -> None:
        """The answer for a training log, checked as a submission checks it (a local file inside the
        allowed roots), then described."""
        try:
            log = parse_training_log(path, self.resolver)
            if log is None:
                raise InputError("training_log is empty")
            # A log up to a few MB is parsed, a larger one scanned: off the event loop.
            summary = await asyncio.get_running_loop().run_in_executor(
                None, describe_training_log, log.location
            )
        except MalformedPathError as error:
            raise web.HTTPError(400, str(error)) from None
        except InputError as error:
            self.write_json({"ok": False, "message": str(error)})
            return
        self.write_json(
            {
                "ok": True,
                "summary": training_log_line(messages, summary),
                "path": log.path,
                "version_hints": False,
                "kind": "training_log",
            }
        )

    async def _probe_object_store(self, path: str) -> str:
        """List the prefix with the credentials the analysis would get (the server's environment and
        its AdvisorApp.obs_* settings); StorageError (an InputError) says what is missing or wrong."""
        from ..storage import load_config, parse_url, probe_profile

        url = parse_url(path)
        config = load_config(url.scheme, {**os.environ, **self.runner.store_env})
        return await asyncio.get_running_loop().run_in_executor(None, probe_profile, path, config)


class TasksHandler(AdvisorAPIHandler):
    @web.authenticated
    def get(self) -> None:
        """A page of the task list (`limit`, `before`), or what changed after a token (`since`): see
        models.TASK_LIST_KEYS and docs/design.md "Task list"."""
        limit = self._whole_number("limit", minimum=1, maximum=MAX_PAGE) or DEFAULT_PAGE
        before = self._whole_number("before", minimum=1)
        since = self._whole_number("since", minimum=0)
        if since is not None and before is not None:
            raise web.HTTPError(400, "since and before cannot be combined: since asks for every change")
        if since is not None:
            changes = self.store.changes(since, limit)
            if changes is not None:
                self.write_json(
                    {
                        "tasks": [task.to_summary() for task in changes.tasks],
                        "next": None,
                        "deleted": changes.deleted,
                        "token": changes.token,
                        "reset": False,
                    }
                )
                return
        # One more than asked says whether a next page exists.
        tasks = self.store.page(limit + 1, before)
        self.write_json(
            {
                "tasks": [task.to_summary() for task in tasks[:limit]],
                "next": tasks[limit - 1].seq if len(tasks) > limit else None,
                "deleted": [],
                "token": self.store.token(),
                "reset": since is not None,
            }
        )

    def _whole_number(self, name: str, *, minimum: int, maximum: int | None = None) -> int | None:
        """The query argument `name` as an int within bounds, None when absent; else a 400 naming it."""
        raw = self.get_argument(name, None)
        if raw is None:
            return None
        value = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 18 else None
        if value is None or value < minimum or (maximum is not None and value > maximum):
            bounds = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
            raise web.HTTPError(400, f"{name} must be a whole number {bounds}; got {raw[:40]!r}")
        return value

    @web.authenticated
    def post(self) -> None:
        settings = self.settings["performance_advisor"]
        if self.runner.queued_count() >= settings["max_queued_tasks"]:
            raise web.HTTPError(
                429,
                f"{settings['max_queued_tasks']} analyses are already waiting; "
                "submit again when some have finished (or cancel some)",
            )
        try:
            task = parse_submission(
                self.json_body(),
                self.resolver,
                env={**os.environ, **self.runner.store_env},
                default_processes=settings["default_processes"],
            )
        except InputError as error:
            raise web.HTTPError(400, str(error)) from None
        self.runner.submit(task)
        self.write_json(task.to_api(), status=201)


class TaskHandler(AdvisorAPIHandler):
    @web.authenticated
    def get(self, task_id: str) -> None:
        self.write_json(self.get_task_or_404(task_id).to_api())

    @web.authenticated
    async def delete(self, task_id: str) -> None:
        """Cancel a queued/analyzing task (200 with the task), or delete a finished one (204)."""
        task = self.get_task_or_404(task_id)
        if task.status in ACTIVE_STATUSES:
            cancelled = await self.runner.cancel(task_id)
            if cancelled is None:
                raise web.HTTPError(409, "The task is finishing; try again in a moment")
            self.write_json({"task": cancelled.to_api()})
            return
        for report in task.report_files.values():
            # Only the files this task wrote; the profiling data is never touched.
            Path(report).unlink(missing_ok=True)
        self.runner.log_path(task_id).unlink(missing_ok=True)
        self.store.delete(task_id)
        self.set_status(204)
        self.finish()


class TaskNotebookHandler(AdvisorAPIHandler):
    """Writes a successful task's report as a notebook next to it (never over a file) and answers 201
    `{path}`, the notebook's path relative to the Jupyter root, for the frontend to open; a refusal is a
    one-line `{message}` (see notebooks.write_task_notebook)."""

    @web.authenticated
    async def post(self, task_id: str) -> None:
        task = self.get_task_or_404(task_id)
        try:
            # Reads the JSON report and writes the notebook: off the event loop.
            path = await asyncio.get_running_loop().run_in_executor(
                None, write_task_notebook, task, self.resolver
            )
        except NotebookRefused as error:
            raise web.HTTPError(error.status, str(error)) from None
        except InputError as error:  # an input path no longer inside the allowed roots
            raise web.HTTPError(409, str(error)) from None
        except OSError as error:  # the report folder is not writable, the disk is full
            raise web.HTTPError(409, f"The notebook of task {task_id} cannot be written: {error}") from None
        self.write_json({"path": path.relative_to(self.resolver.root_dir).as_posix()}, status=201)


class TaskLogHandler(AdvisorAPIHandler):
    """The task's log (the command line, progress and warnings, the failure) as plain text.

    The file name comes from the route's task id, never from the request, so it stays in the logs
    folder; object-store secrets are never written to it, and are scrubbed again in case a library
    echoed one.
    """

    @web.authenticated
    def get(self, task_id: str) -> None:
        self.get_task_or_404(task_id)
        path = self.runner.log_path(task_id)
        try:
            with open(path, "rb") as log:
                size = log.seek(0, os.SEEK_END)
                log.seek(max(0, size - MAX_LOG_BYTES))
                text = log.read().decode("utf-8", "replace")
        except FileNotFoundError:
            raise web.HTTPError(404, f"Task {task_id} has no log yet") from None
        if size > MAX_LOG_BYTES:
            text = f"[… the first {size - MAX_LOG_BYTES} bytes are left out]\n" + text.split("\n", 1)[-1]
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.finish(self.runner.scrub(text), set_content_type="text/plain; charset=UTF-8")


class ReportHandler(AdvisorHandlerMixin, JupyterHandler):
    """Serves a task's reports. HTML runs in a CSP sandbox: scripts yes, same origin no."""

    @property
    def content_security_policy(self) -> str:
        return super().content_security_policy + "; sandbox allow-scripts"

    @web.authenticated
    def get(self, task_id: str, fmt: str | None = None) -> None:
        fmt = fmt or "html"
        task = self.get_task_or_404(task_id)
        path = task.report_files.get(fmt)
        if task.status != SUCCESS or not path:
            raise web.HTTPError(404, f"Task {task_id} has no {fmt} report")
        file = Path(path)
        if not file.is_file():
            raise web.HTTPError(404, f"The {fmt} report of task {task_id} was deleted from disk")
        content_type = "text/html; charset=UTF-8" if fmt == "html" else mimetypes.guess_type(file.name)[0]
        self.set_header("Content-Type", content_type or "application/octet-stream")
        self.set_header("Cache-Control", "no-store")
        if fmt != "html":
            self.set_header("Content-Disposition", f'attachment; filename="{file.name}"')
        self.finish(file.read_bytes())


def handler_routes() -> list[tuple[str, type]]:
    task_id = r"(?P<task_id>[0-9a-f]{12})"
    return [
        (rf"/{NAMESPACE}/api/options", OptionsHandler),
        (rf"/{NAMESPACE}/api/inspect", InspectHandler),
        (rf"/{NAMESPACE}/api/tasks", TasksHandler),
        (rf"/{NAMESPACE}/api/tasks/{task_id}", TaskHandler),
        (rf"/{NAMESPACE}/api/tasks/{task_id}/log", TaskLogHandler),
        (rf"/{NAMESPACE}/api/tasks/{task_id}/notebook", TaskNotebookHandler),
        (rf"/{NAMESPACE}/reports/{task_id}", ReportHandler),
        (rf"/{NAMESPACE}/reports/{task_id}/(?P<fmt>xlsx|json)", ReportHandler),
    ]
