"""The warm worker: a process with the analysis code imported that forks one child per task.

The server (`warm.WarmWorker`) starts it as `python -m advisor.server.zygote --fd N <reserve>` and
talks to it over a Unix `SOCK_SEQPACKET` socket (fd N), one JSON object per message:

- server -> zygote: `{"argv": [...], "env": {...}, "cwd": "..."}` with two file descriptors attached
  (the child's stdout and stderr). `argv` is what follows the interpreter on a command line:
  `["-m", module, *args]` or `["-c", code, *args]`. The environment (object-store credentials
  included) travels only here, never on a command line.
- zygote -> server: `{"ready": pid, "rss_kb": n}` once imported; `{"spawned": pid, "rss_kb": n}` or
  `{"refused": reason}` per request, in request order; `{"exited": pid, "returncode": n}` when a
  child ends (negative: killed by that signal, as `asyncio` reports it).

End of input (the server retired or stopped this worker) makes the zygote accept no more tasks and
exit once its last child has ended. The server's death ends it at once (PR_SET_PDEATHSIG, and its
parent pid checked every loop), which ends its children (they are bound to it, `advisor/lifeline.py`).

Each child is as isolated as a subprocess of the server: `setsid()` (its own session and process
group), stdin from /dev/null, stdout/stderr on the task's descriptors, the environment the server sent
(and nothing of the zygote's), the working folder asked for; then it runs the module or code as
`python -m`/`-c` would, and exits with the code that would have. On Linux its `/proc/<pid>/cmdline`
shows the analysis command and its `/proc/<pid>/environ` names its task, as a subprocess's would: the
server's start-up clean-up (`runner.end_orphaned_analyses`) recognises a crashed server's analyses by
that environment entry.

Threads: a fork copies only the calling thread, so a lock held by any other thread stays held forever in
the child. The zygote forks from its single-threaded main loop and refuses to fork when the process has
a second thread. Importing numpy starts OpenBLAS's thread pool and importing pyarrow starts jemalloc's
background thread (pyarrow allocates with mimalloc; jemalloc is only loaded): the zygote is started with
`OPENBLAS_NUM_THREADS=1` and `JE_ARROW_MALLOC_CONF=background_thread:false` (`THREAD_LIMITS`), so
neither starts one. The children get the server's own values of those variables back, so the worker
processes they start are configured as a subprocess's would be; a child's own BLAS stays single
threaded (the checks are pandas/pyarrow work, no BLAS).
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import ctypes
import gc
import importlib
import json
import os
import pkgutil
import runpy
import select
import signal
import socket
import sys
import threading
import traceback
from typing import Any

from ..lifeline import TASK_ID_ENV

# What a child needs imported before it touches data: the CLI, the engine with pandas and pyarrow, every
# check, every format reader and the report writers. Code only: the zygote never reads data. The
# libraries' parts that are imported on first use go too: pyarrow's Parquet and dataset modules (the
# table cache, ~25 ms) and the part of openpyxl that saves a workbook.
PRELOAD_MODULES = (
    "advisor.cli",
    "advisor.analysis",
    "advisor.training",
    "advisor.engine",
    "pyarrow.parquet",
    "pyarrow.dataset",
    "openpyxl.packaging.extended",
    # The ranks' worker processes: a task forks them (advisor/worker_pool.py).
    "concurrent.futures.process",
    "multiprocessing.popen_fork",
    "multiprocessing.synchronize",
)
PRELOAD_PACKAGES = ("advisor.checks", "advisor.formats", "advisor.report")
# Variables set for the zygote only, so that importing numpy and pyarrow starts no thread (see above).
THREAD_LIMITS = {"OPENBLAS_NUM_THREADS": "1", "JE_ARROW_MALLOC_CONF": "background_thread:false"}
# Room on the zygote's command line and in its environment that a child overwrites with its own
# command and task id, so that /proc shows them (the kernel shows the memory the process started with).
CMDLINE_RESERVE = 16384
TASK_ID_RESERVE = 64
MAX_MESSAGE_BYTES = 1 << 20
POLL_S = 0.5  # how often the zygote checks that the server is alive
PR_SET_PDEATHSIG = 1


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m advisor.server.zygote")
    parser.add_argument("--fd", type=int, required=True, help="the Unix socket to the server")
    parser.add_argument("reserve", nargs="?", default="", help="room for the children's command lines")
    args = parser.parse_args()
    server_pid = os.getppid()
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server's terminal's Ctrl-C is the server's
    channel = socket.socket(fileno=args.fd)
    preload()
    os.environ.pop(TASK_ID_ENV, None)  # the reserve, not a task's
    # What is imported stays as it is: a child's collections need not scan it (nor touch its pages,
    # which would copy them); about 45 ms per full collection.
    gc.freeze()
    try:
        _send(channel, {"ready": os.getpid(), "rss_kb": rss_kb()})
    except OSError:  # the server stopped while we were importing
        return
    Zygote(channel, server_pid).serve()


def preload() -> None:
    """Import what a child needs (PRELOAD_MODULES, every module of PRELOAD_PACKAGES) and compile the
    report template."""
    for name in PRELOAD_MODULES:
        importlib.import_module(name)
    for package in PRELOAD_PACKAGES:
        for module in pkgutil.walk_packages(importlib.import_module(package).__path__, package + "."):
            importlib.import_module(module.name)
    from ..report.html import report_template

    report_template()  # code too: the template compiled once, not by every child


class Zygote:
    def __init__(self, channel: socket.socket, server_pid: int) -> None:
        self.channel = channel
        self.server_pid = server_pid
        self.children: set[int] = set()
        self.accepting = True
        # SIGCHLD wakes the select() below through this pipe (its handler itself does nothing).
        self.wakeup_read, self.wakeup_write = os.pipe()
        os.set_blocking(self.wakeup_write, False)
        signal.set_wakeup_fd(self.wakeup_write)
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)

    def serve(self) -> None:
        while (self.accepting or self.children) and os.getppid() == self.server_pid:
            # Once retired, the socket stays readable (at its end): no longer waited on.
            waited = [self.channel, self.wakeup_read] if self.accepting else [self.wakeup_read]
            readable, _, _ = select.select(waited, [], [], POLL_S)
            if self.wakeup_read in readable:
                os.read(self.wakeup_read, 4096)
            self._reap()
            if self.channel in readable:
                self._receive()

    def _receive(self) -> None:
        data, descriptors, flags, _ = socket.recv_fds(self.channel, MAX_MESSAGE_BYTES, 2)
        if not data:
            self.accepting = False  # retired: finish the children, then exit
            return
        try:
            if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
                raise ValueError("it is too long")
            request = json.loads(data)
            argv, env, cwd = list(request["argv"]), dict(request["env"]), str(request["cwd"])
        except (ValueError, KeyError, TypeError) as error:
            self._refuse(descriptors, f"a malformed request: {error}")
            return
        if len(descriptors) != 2:
            self._refuse(descriptors, "a request without its output descriptors")
            return
        threads = len(os.listdir("/proc/self/task")) if os.path.isdir("/proc/self/task") else 1
        if threading.active_count() > 1 or threads > 1:
            self._refuse(descriptors, f"the warm worker has {threads} threads; it forks single-threaded")
            return
        try:
            pid = os.fork()
        except OSError as error:
            self._refuse(descriptors, f"fork failed: {error}")
            return
        if pid == 0:
            run_child(argv, env, cwd, descriptors, closing=(self.channel.fileno(), *self._own_fds()))
        for fd in descriptors:
            os.close(fd)
        self.children.add(pid)
        self._tell({"spawned": pid, "rss_kb": rss_kb()})

    def _own_fds(self) -> tuple[int, int]:
        return self.wakeup_read, self.wakeup_write

    def _refuse(self, descriptors: list[int], reason: str) -> None:
        for fd in descriptors:
            os.close(fd)
        self._tell({"refused": reason})

    def _reap(self) -> None:
        for pid in list(self.children):
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:  # reaped already: nothing to report
                self.children.discard(pid)
                continue
            if done == pid:
                self.children.discard(pid)
                self._tell({"exited": pid, "returncode": os.waitstatus_to_exitcode(status)})

    def _tell(self, message: dict[str, Any]) -> None:
        with contextlib.suppress(OSError):  # the server closed its end: it is stopping, or gone
            _send(self.channel, message)


def run_child(argv: list[str], env: dict[str, str], cwd: str, descriptors: list[int], closing: tuple) -> None:
    """In the forked child: become the isolated analysis process, run `argv`, exit with its code."""
    code = 1
    try:
        os.setsid()
        signal.set_wakeup_fd(-1)
        for signum in (signal.SIGCHLD, signal.SIGTERM):
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for fd in closing:
            os.close(fd)
        stdin = os.open(os.devnull, os.O_RDONLY)
        for target, fd in ((0, stdin), (1, descriptors[0]), (2, descriptors[1])):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(env)
        task_id = env.get(TASK_ID_ENV, "")
        show_in_proc(argv, task_id)
        code = _run(argv)
    except BaseException:  # whatever happens here, the zygote's loop must never run in the child
        with contextlib.suppress(BaseException):
            traceback.print_exc()
    finally:
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _run(argv: list[str]) -> int:
    """Run `argv` as `python <argv>` would, interpreter shutdown included; return the exit code."""
    try:
        if argv[0] == "-m":
            sys.argv = [argv[1], *argv[2:]]
            runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
        elif argv[0] == "-c":
            sys.argv = ["-c", *argv[2:]]
            exec(compile(argv[1], "<string>", "exec"), {"__name__": "__main__"})
        else:
            raise ValueError(f"the warm worker runs -m or -c commands, not {argv[0]!r}")
        code = 0
    except SystemExit as exit_:
        code = _exit_code(exit_.code)
    except BaseException:
        traceback.print_exc()
        code = 1
    # What the interpreter does at exit: wait for non-daemon threads, then the atexit handlers
    # (multiprocessing's among them: it stops the analysis's worker pool).
    threading._shutdown()  # type: ignore[attr-defined]
    atexit._run_exitfuncs()
    return code


def _exit_code(value: object) -> int:
    if value is None:
        return 0
    if isinstance(value, int):
        return value & 0xFF
    print(value, file=sys.stderr)
    return 1


def show_in_proc(argv: list[str], task_id: str) -> None:
    """Write the child's command and task id over the zygote's reserves in the memory that
    /proc/<pid>/cmdline and /proc/<pid>/environ show (Linux; elsewhere nothing is shown)."""
    try:
        fields = open("/proc/self/stat").read().rsplit(")", 1)[1].split()  # noqa: SIM115
        # Fields 48-51 of proc(5) (arg_start, arg_end, env_start, env_end); the split starts at field 3.
        arg_start, arg_end, env_start, env_end = (int(value) for value in fields[45:49])
        environ = ctypes.string_at(env_start, env_end - env_start)
    except (OSError, ValueError, IndexError):
        return
    command = b"\0".join(part.encode(errors="replace") for part in [sys.executable, *argv])
    room = arg_end - arg_start - 1  # the last byte stays NUL: the kernel shows the area as it is
    ctypes.memmove(arg_start, command[:room].ljust(room, b"\0"), room)
    entry = f"{TASK_ID_ENV}=".encode()
    at = (b"\0" + environ).find(b"\0" + entry)  # the entry's offset, first entry included
    if at >= 0 and len(task_id) <= TASK_ID_RESERVE:
        value = env_start + at + len(entry)
        ctypes.memmove(value, task_id.encode().ljust(TASK_ID_RESERVE, b"\0"), TASK_ID_RESERVE)


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def rss_kb() -> int:
    """The zygote's resident memory in KiB (0 where /proc is missing)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
    except (OSError, ValueError, IndexError):
        return 0


def _send(channel: socket.socket, message: dict[str, Any]) -> None:
    channel.sendall(json.dumps(message).encode() + b"\n")


if __name__ == "__main__":
    main()
