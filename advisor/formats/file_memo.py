"""What a reader parsed from a file, kept per (file, size, mtime) in this process: the tables of a
rank are asked one by one, and each should not read the file again."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

from ..errors import InputError

Parsed = TypeVar("Parsed")


class FileMemo(Generic[Parsed]):
    """A small LRU of `parse(path)` results. Callers share what it returns: copy before changing it."""

    def __init__(self, parse: Callable[[Path], Parsed], size: int = 2) -> None:
        # Two: the tables of a rank are asked one by one, and two ranks' files may interleave.
        self._parse = parse
        self._size = size
        self._kept: OrderedDict[tuple[str, int, int], Parsed] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, path: Path) -> Parsed:
        try:
            stat = path.stat()
        except OSError as exc:
            raise InputError(f"{path}: cannot read ({exc.strerror})") from None
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        with self._lock:
            if key in self._kept:
                self._kept.move_to_end(key)
                return self._kept[key]
        parsed = self._parse(path)
        with self._lock:
            self._kept[key] = parsed
            while len(self._kept) > self._size:
                self._kept.popitem(last=False)
        return parsed
