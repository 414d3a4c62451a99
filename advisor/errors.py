"""Errors meant for the user: one line that names the file and the problem."""

from __future__ import annotations

import errno
import os

# The cause of an operating-system error in the words of a one-line message; other errors give
# their own (lower-cased) text.
_CAUSES = {
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ENOENT: "no such file or folder",
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large (over the file size limit)",
    errno.EROFS: "read-only file system",
    errno.ENOTDIR: "not a folder",
    errno.EISDIR: "is a folder",
}


class InputError(Exception):
    """Unusable input (missing path, not profiling data, unreadable file): CLI exit code 2."""

    def _render_traceback_(self) -> list[str]:
        """What IPython (a notebook cell) shows for it: the one line, not a traceback of our code."""
        return [f"{type(self).__name__}: {' '.join(str(self).split())}"]


class OptionError(InputError):
    """An analysis option out of its range or choices (HTTP 400 in the server)."""


class MixedRunsError(InputError):
    """A folder holding the rank folders of more than one profiling run (HTTP 400 in the server)."""


class MalformedPathError(InputError):
    """A path or URL that no file or object could ever have (text that is no text, over the length
    limits, a bucket name the store's rules forbid): HTTP 400 wherever the server meets it, even in
    api/inspect, which answers `{ok: false}` for paths that are merely not (yet) usable."""


class OutputError(InputError):
    """The output location cannot be written (permission, full disk): the user's to fix, exit code 2."""


def os_error_cause(error: OSError) -> str:
    """'permission denied', 'no space left on device', …: why `error` happened, in a few words."""
    if error.errno in _CAUSES:
        return _CAUSES[error.errno]
    return (error.strerror or str(error)).lower()


def cannot(action: str, path: str | os.PathLike[str], error: OSError) -> str:
    """'cannot write /out/r.html: no space left on device': the one line for `error` on `path`."""
    return f"cannot {action} {path}: {os_error_cause(error)}"


def byte_size(count: int) -> str:
    """A size in a message: MiB from 1 MiB on, else bytes."""
    return f"{count / (1 << 20):.4g} MiB" if count >= 1 << 20 else f"{count} bytes"
