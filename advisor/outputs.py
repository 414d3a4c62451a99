"""Output files that appear complete or not at all.

Each file is written to a hidden temporary name in its output folder (`.name.<random>.part`) and given
its real name only when every file of the set is complete; a failure (or SIGTERM, see
`discard_staged`) removes the temporaries, so no partial report is ever left or listed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import uuid
from collections.abc import Iterable
from pathlib import Path

# Temporaries being written by this process, for a signal handler to remove before the process dies.
_staged: set[Path] = set()


def stage(final: Path) -> Path:
    """The temporary path to write `final`'s content to (in the same folder, so renaming is atomic)."""
    temporary = final.with_name(f".{final.name}.{uuid.uuid4().hex[:12]}.part")
    _staged.add(temporary)
    return temporary


def discard(paths: Iterable[Path]) -> None:
    for path in paths:
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)
        _staged.discard(path)


def discard_staged() -> None:
    """Remove every temporary still being written (the process is about to die)."""
    discard(list(_staged))


def publish(staged: dict[str, Path], names: Iterable[str]) -> dict[str, Path]:
    """Give the staged files (by format) the first of `names` (stems) under which none of them exists
    yet, never overwriting a file; returns their final paths by format."""
    for name in names:
        finals = {fmt: temporary.with_name(f"{name}.{fmt}").absolute() for fmt, temporary in staged.items()}
        linked: list[Path] = []
        try:
            for fmt, temporary in staged.items():
                _claim(temporary, finals[fmt])
                linked.append(finals[fmt])
        except FileExistsError:  # another analysis has this name: all or none, try the next one
            discard(linked)
            continue
        except BaseException:
            discard(linked)
            raise
        discard(staged.values())
        return finals
    raise FileExistsError(errno.EEXIST, "no free report name", str(next(iter(staged.values())).parent))


def _claim(temporary: Path, final: Path) -> None:
    """`final` becomes `temporary`'s content, atomically; FileExistsError if `final` exists."""
    try:
        os.link(temporary, final)  # fails if `final` exists: no window in which a file is overwritten
    except FileExistsError:
        raise
    except OSError as error:
        if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS):
            raise
        # A file system without hard links (some network and FAT mounts): check, then rename.
        if final.exists():
            raise FileExistsError(errno.EEXIST, "file exists", str(final)) from None
        os.rename(temporary, final)
