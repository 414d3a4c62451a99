"""How many processes read one big trace file: the spare processes of a run, for files big enough.

The engine sets the processes a run may use (`spare_processes`) around the ranks it analyses in
this process; a reader asks `split_processes` for one file. Kept free of the readers' imports, so
that the engine can set it without loading any format.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path

# A span per this many bytes at most: a worker costs ~50 ms to fork (~1 s when it must start a fresh
# interpreter) and the spans' tables are sent back to this process, so small files are read whole.
SPLIT_BYTES_PER_PROCESS = 256 << 20

_processes: ContextVar[int] = ContextVar("trace_split_processes", default=1)


@contextlib.contextmanager
def spare_processes(processes: int) -> Iterator[None]:
    """Let the trace files read in this block be split across up to `processes` processes."""
    token = _processes.set(max(1, processes))
    try:
        yield
    finally:
        _processes.reset(token)


def split_processes(path: Path) -> int:
    """The processes to read `path` with: those allowed here, one per `SPLIT_BYTES_PER_PROCESS`."""
    allowed = _processes.get()
    if allowed == 1:
        return 1
    try:
        size = path.stat().st_size
    except OSError:  # the reader says why it cannot read the file
        return 1
    return max(1, min(allowed, size // SPLIT_BYTES_PER_PROCESS))
