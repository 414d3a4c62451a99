"""The server's side of the warm worker (`zygote.py`): start it lazily, hand it tasks, learn each child's
pid and exit status, retire it after `max_tasks` tasks or past `max_rss_mb`, replace it when it dies.

Whatever goes wrong here (no fork on this platform, the zygote cannot start or refuses to fork) makes
`start` return None, and the runner starts the task as a cold subprocess instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

from ..lifeline import PARENT_PID_ENV, TASK_ID_ENV
from .zygote import CMDLINE_RESERVE, MAX_MESSAGE_BYTES, TASK_ID_RESERVE, THREAD_LIMITS

READY_TIMEOUT_S = 60.0  # imports on a loaded machine; a cold analysis would pay them too
SPAWN_TIMEOUT_S = 30.0  # a fork takes milliseconds; past this the zygote is stuck
# Where the zygote starts: the folder holding the server's own `advisor` package, first on its
# sys.path, so that its children run the server's code.
PACKAGE_PARENT = Path(__file__).resolve().parents[2]


class WarmWorkerError(Exception):
    """The warm worker cannot run this task (the runner starts a cold subprocess)."""


class WarmProcess:
    """A task's process forked by the zygote, with what the runner uses of `asyncio.subprocess.Process`:
    `pid` (it leads its own process group), `stderr`, `returncode` and `wait()`."""

    def __init__(
        self, pid: int, zygote_pid: int, stderr: asyncio.StreamReader, exited: asyncio.Future[int]
    ) -> None:
        self.pid = pid
        self.zygote_pid = zygote_pid
        self.stderr = stderr
        self._exited = exited

    @property
    def returncode(self) -> int | None:
        return self._exited.result() if self._exited.done() else None

    async def wait(self) -> int:
        return await asyncio.shield(self._exited)


class Zygote:
    """One zygote process and its control socket."""

    def __init__(self, process: asyncio.subprocess.Process, channel: socket.socket) -> None:
        self.process = process
        self.channel = channel
        self.pid = process.pid
        self.tasks_started = 0
        self.rss_kb = 0
        self.exits: dict[int, asyncio.Future[int]] = {}
        self.replies: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.listener: asyncio.Task[None] | None = None
        self.alive = True

    @classmethod
    async def start(cls, cwd: str) -> Zygote:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            env = {
                **os.environ,
                **{name: value for name, value in THREAD_LIMITS.items() if name not in os.environ},
                "PYTHONUNBUFFERED": "1",
                TASK_ID_ENV: " " * TASK_ID_RESERVE,  # a child writes its task id over it
            }
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "advisor.server.zygote",
                "--fd",
                str(theirs.fileno()),
                " " * CMDLINE_RESERVE,  # a child writes its command over it
                pass_fds=(theirs.fileno(),),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                cwd=cwd,
                env=env,
                start_new_session=True,  # not in the server's group: a Ctrl-C is the server's to handle
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        ours.setblocking(False)
        zygote = cls(process, ours)
        zygote.listener = asyncio.ensure_future(zygote._listen())
        try:
            ready = await asyncio.wait_for(zygote.replies.get(), timeout=READY_TIMEOUT_S)
        except asyncio.TimeoutError:
            await zygote.kill()
            raise WarmWorkerError(f"it did not start within {READY_TIMEOUT_S:g} s") from None
        except BaseException:  # the server stopping meanwhile
            await zygote.kill()
            raise
        if "ready" not in ready:
            await zygote.kill()
            raise WarmWorkerError(f"it did not start: {ready.get('died', ready)}")
        zygote.rss_kb = int(ready.get("rss_kb", 0))
        return zygote

    async def spawn(self, argv: list[str], env: dict[str, str], cwd: str, stdout: int) -> WarmProcess:
        """Fork a child running `argv` (its stdout on `stdout`, its stderr on a new pipe)."""
        loop = asyncio.get_running_loop()
        read_end, write_end = os.pipe()
        try:
            message = json.dumps({"argv": argv, "env": env, "cwd": cwd}).encode()
            if len(message) > MAX_MESSAGE_BYTES:
                raise WarmWorkerError("the task's command and environment are too large for it")
            try:
                socket.send_fds(self.channel, [message], [stdout, write_end])
            except OSError as error:
                raise WarmWorkerError(f"it is not listening: {error}") from None
        except BaseException:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)
        try:
            reply = await asyncio.wait_for(self.replies.get(), timeout=SPAWN_TIMEOUT_S)
        except asyncio.TimeoutError:
            os.close(read_end)
            await self.kill()  # hung: its answer, should it come, would be taken for the next task's
            raise WarmWorkerError(f"it did not fork within {SPAWN_TIMEOUT_S:g} s") from None
        if "spawned" not in reply:
            os.close(read_end)
            raise WarmWorkerError(str(reply.get("refused") or reply.get("died") or reply))
        pid = int(reply["spawned"])
        self.tasks_started += 1
        self.rss_kb = int(reply.get("rss_kb", 0))
        stderr = asyncio.StreamReader(loop=loop)
        await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(stderr, loop=loop), os.fdopen(read_end, "rb", 0)
        )
        return WarmProcess(pid, self.pid, stderr, self.exits.setdefault(pid, loop.create_future()))

    async def _listen(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                data = await loop.sock_recv(self.channel, MAX_MESSAGE_BYTES)
                if not data:
                    break
                message = json.loads(data)
                if "exited" in message:
                    exited = self.exits.setdefault(int(message["exited"]), loop.create_future())
                    if not exited.done():
                        exited.set_result(int(message["returncode"]))
                else:
                    self.replies.put_nowait(message)
        except (OSError, ValueError):
            pass
        finally:
            self.alive = False
            self.channel.close()
            self.replies.put_nowait({"died": "it closed its socket (it exited)"})
            # Its children died with it (they are bound to it); end what may be left of their groups.
            for pid, exited in self.exits.items():
                if not exited.done():
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(pid, signal.SIGKILL)
                    exited.set_result(-signal.SIGKILL)

    def retire(self) -> None:
        """Take no more tasks; the zygote exits once its running children have ended."""
        with contextlib.suppress(OSError):
            self.channel.shutdown(socket.SHUT_WR)

    async def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        await self.process.wait()
        if self.listener is not None:
            await asyncio.wait([self.listener], timeout=5)


class WarmWorker:
    """Hands tasks to a zygote, replaced after `max_tasks` tasks, past `max_rss_mb` of resident memory,
    or when it died. A zygote starts in the background, on the first task or when the last one was
    retired or died; until it is ready, tasks run cold (as fast as without a warm worker)."""

    def __init__(self, *, max_tasks: int, max_rss_mb: int, log: logging.Logger) -> None:
        self.max_tasks = max_tasks
        self.max_rss_kb = max_rss_mb * 1024
        self.log = log
        self.zygote: Zygote | None = None
        self.retired: list[Zygote] = []
        self._starting: asyncio.Task[Zygote] | None = None
        self._lock = asyncio.Lock()
        self.available = (
            hasattr(os, "fork") and hasattr(socket, "send_fds") and hasattr(socket, "SOCK_SEQPACKET")
        )
        if not self.available:
            log.warning("Performance Advisor: no fork on this platform; analyses run as cold subprocesses")

    async def ready(self) -> bool:
        """Start a zygote if none is running and wait until it can fork (False: it cannot start)."""
        async with self._lock:
            if not self._usable():
                return False
            if self._starting is not None:
                await asyncio.wait([self._starting])
            return self._usable()

    async def start(self, argv: list[str], env: dict[str, str], cwd: str, stdout: int) -> WarmProcess | None:
        """The task's process forked by the zygote, or None: the caller starts it cold."""
        async with self._lock:
            if not self._usable() or self.zygote is None:
                return None  # no zygote yet: this task runs cold while one imports
            zygote = self.zygote
            try:
                # The child's parent is the zygote: it dies with the zygote, which dies with us.
                process = await zygote.spawn(argv, {**env, PARENT_PID_ENV: str(zygote.pid)}, cwd, stdout)
            except (WarmWorkerError, OSError) as error:
                self.log.warning(
                    "Performance Advisor: the warm worker refused a task (%s); starting it cold", error
                )
                self._retire(zygote)
                return None
            if zygote.tasks_started >= self.max_tasks or zygote.rss_kb > self.max_rss_kb:
                self.log.info(
                    "Performance Advisor: warm worker %d recycled after %d task(s) at %d MiB",
                    zygote.pid,
                    zygote.tasks_started,
                    zygote.rss_kb // 1024,
                )
                self._retire(zygote)
                self._usable()  # its successor imports while this task runs
            return process

    def _usable(self) -> bool:
        """Whether the warm worker may be used: take a finished start's zygote, or begin a start where
        there is no live zygote. False once a zygote could not start (said once, in the log)."""
        if not self.available:
            return False
        if self._starting is not None and self._starting.done():
            starting, self._starting = self._starting, None
            try:
                self.zygote = starting.result()
            except Exception as error:  # whatever it was, the tasks run cold
                self.available = False
                self.log.warning(
                    "Performance Advisor: the warm worker could not start (%s); "
                    "analyses run as cold subprocesses",
                    error,
                )
                return False
            self.log.info(
                "Performance Advisor: warm worker %d started (%d MiB)",
                self.zygote.pid,
                self.zygote.rss_kb // 1024,
            )
        if (self.zygote is None or not self.zygote.alive) and self._starting is None:
            self.zygote = None
            self._starting = asyncio.ensure_future(Zygote.start(str(PACKAGE_PARENT)))
        return True

    def _retire(self, zygote: Zygote) -> None:
        zygote.retire()
        self.retired = [old for old in self.retired if old.alive] + [zygote]
        self.zygote = None

    async def close(self) -> None:
        """Server stop (after the runner killed the tasks): end every zygote, and one starting."""
        if self._starting is not None:
            self._starting.cancel()
            await asyncio.gather(self._starting, return_exceptions=True)
            self._starting = None
        zygotes = [z for z in (self.zygote, *self.retired) if z is not None]
        self.zygote, self.retired = None, []
        await asyncio.gather(*(z.kill() for z in zygotes), return_exceptions=True)
