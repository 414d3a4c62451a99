"""Worker processes of an analysis (ranks read in parallel, one big trace split across processes).

Forked when this process runs no other Python thread that may hold a lock: a forked worker starts in
milliseconds with everything this process imported (pandas, the readers, the checks), where a fresh
interpreter spends about a second of a core importing them again, more than a small rank's whole
analysis. The CLI and an analysis started by the server (cold or by the warm worker) qualify: their
only other thread is the lifeline's watcher (`lifeline.py`), which only sleeps and reads the parent's
pid, and is declared `lock_free`.

Where another Python thread runs (a notebook kernel, a server), a fork could inherit a lock that
thread holds, so the workers come from a fork server (a clean process that imports `preload` once and
forks them). The native thread pools that importing numpy and pyarrow may start (OpenBLAS, Arrow's CPU
and I/O pools, jemalloc's background thread) do not count: each library re-creates its threads in a
forked child (pthread_atfork handlers), and none holds a lock that Python code waits on.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported when a pool starts: a one-process run does without
    from concurrent.futures import ProcessPoolExecutor

# What starting the workers costs, in seconds of a core each: a fork, or a fresh interpreter that
# imports pandas and the readers (measured on this project's 2-core machine, issue 19).
FORK_START_S = 0.03
FORKSERVER_START_S = 1.0

_LOCK_FREE: weakref.WeakSet[threading.Thread] = weakref.WeakSet()


def lock_free(thread: threading.Thread) -> threading.Thread:
    """Declare that `thread` never holds a lock a forked child could wait on (it does not stop forks)."""
    _LOCK_FREE.add(thread)
    return thread


def can_fork() -> bool:
    """Whether workers may be forks of this process: a platform with fork, and no Python thread
    besides this one and the lock-free ones."""
    import multiprocessing

    main = threading.main_thread()
    others = [t for t in threading.enumerate() if t is not main and t not in _LOCK_FREE]
    alone = threading.current_thread() is main and not others
    return alone and "fork" in multiprocessing.get_all_start_methods()


def worker_start_s() -> float:
    """What starting one worker costs from this process, in seconds of a core."""
    return FORK_START_S if can_fork() else FORKSERVER_START_S


def worker_pool(workers: int, preload: Sequence[str] = ()) -> ProcessPoolExecutor:
    """`workers` processes: forks of this one when `can_fork()`, else started by a fork server that
    has imported `preload`. A fork pool forks all its workers at the first `submit`, before it starts
    the thread that feeds them."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    if can_fork():
        return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork"))
    context = multiprocessing.get_context("forkserver")
    if preload:
        context.set_forkserver_preload(list(preload))
    return ProcessPoolExecutor(max_workers=workers, mp_context=context)
