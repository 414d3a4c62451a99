"""An analysis started by the server dies with it, workers included, and removes its partial reports.

The server starts each analysis in a session (process group) of its own and names itself and the task
in the environment. On Linux the kernel sends SIGTERM when the server dies (PR_SET_PDEATHSIG); on every
platform a watcher thread also notices the new parent (the server's death re-parents us), since the
signal's handler waits for the main thread and a group member other than us never gets that signal.
Either way the whole group is killed: a worker must not outlive the analysis it works for.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
import time
from types import FrameType

from . import outputs
from .worker_pool import lock_free

PARENT_PID_ENV = "PERFORMANCE_ADVISOR_PARENT_PID"
TASK_ID_ENV = "PERFORMANCE_ADVISOR_TASK_ID"  # also how the server recognises its orphans (runner.py)
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
WATCH_INTERVAL_S = 0.5


def end_group() -> None:
    """Remove the reports being written, then SIGKILL our process group if we lead it (the server
    starts us so), else only ourselves."""
    outputs.discard_staged()
    if os.getpgrp() == os.getpid():
        os.killpg(os.getpid(), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    if PARENT_PID_ENV in os.environ:  # the server's analysis: its workers go too
        end_group()
    # Run from a shell: end as SIGTERM ends a process, leaving the shell's job (a pipe's tee) alone.
    outputs.discard_staged()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def remove_partial_reports_on_sigterm() -> None:
    """SIGTERM (a cancel, a timeout, the server's death) removes the reports being written first."""
    signal.signal(signal.SIGTERM, _on_sigterm)


def bind_to_parent_from_environment() -> None:
    """Die with the server that started us, if it did (`PARENT_PID_ENV` names it)."""
    value = os.environ.get(PARENT_PID_ENV, "")
    if value.isdigit():
        bind_to_parent(int(value))


def bind_to_parent(parent_pid: int) -> None:
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent_pid:  # the server died before the binding took hold
        end_group()
    # Lock-free: it only sleeps and reads the parent's pid, so the analysis may still fork its workers.
    watcher = threading.Thread(target=_watch, args=(parent_pid,), name="advisor-lifeline", daemon=True)
    lock_free(watcher).start()


def _watch(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(WATCH_INTERVAL_S)
    end_group()
