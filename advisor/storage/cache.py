"""The download cache: objects stored under `<cache>/data/<store>/<bucket>/<key>`, indexed by their
ETag in a small SQLite database, evicted least-recently-used beyond a size limit.

A file is complete only once renamed from its `.part` name; a partial download is resumed from its
length when the object's ETag is unchanged. Syncs of one cache are serialised by a file lock; an
analysis marks the folder it reads as in use so that another process's eviction leaves it alone.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import hashlib
import os
import sqlite3
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PART_SUFFIX = ".part"


@dataclass(frozen=True)
class Entry:
    bucket: str
    key: str
    etag: str
    size: int
    mtime: float = 0.0  # the object's Last-Modified: the local copy gets it, so its table cache survives


def store_id(endpoint: str | None) -> str:
    """A folder name per endpoint: the same bucket name on two stores is two different buckets."""
    return hashlib.sha1((endpoint or "default").encode()).hexdigest()[:12]


def part_path(path: Path, etag: str) -> Path:
    """The partial file of one object version: a changed object never resumes an old part."""
    return path.with_name(f"{path.name}.{hashlib.sha1(etag.encode()).hexdigest()[:8]}{PART_SUFFIX}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class DownloadCache:
    def __init__(self, root: Path, endpoint: str | None, limit_bytes: int) -> None:
        self.root = root
        self.store = store_id(endpoint)
        self.limit_bytes = limit_bytes
        self.data = root / "data"
        self.inuse = root / "inuse"
        for folder in (self.data, self.inuse):
            folder.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(root / "index.sqlite", timeout=60, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS objects (store TEXT, bucket TEXT, key TEXT, etag TEXT, size INTEGER, "
            "used REAL, PRIMARY KEY (store, bucket, key))"
        )

    def close(self) -> None:
        self._db.close()

    # -- paths ----------------------------------------------------------------------------------
    def local_path(self, bucket: str, key: str) -> Path:
        return self.data / self.store / bucket / key

    def folder(self, bucket: str, prefix: str) -> Path:
        return self.data / self.store / bucket / prefix

    # -- locking --------------------------------------------------------------------------------
    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """One sync (listing, eviction, download, index update) at a time per cache folder."""
        with open(self.root / ".lock", "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def in_use(self, folder: Path) -> Iterator[Path]:
        """Mark `folder` as being analysed by this process until the block ends."""
        marker = self.inuse / f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        marker.write_text(str(folder), encoding="utf-8")
        try:
            yield folder
        finally:
            marker.unlink(missing_ok=True)

    def _busy_folders(self) -> list[str]:
        busy = []
        for marker in self.inuse.iterdir():
            pid = marker.name.split("-", 1)[0]
            if pid.isdigit() and _pid_alive(int(pid)):
                with contextlib.suppress(OSError):
                    busy.append(marker.read_text(encoding="utf-8"))
            else:
                marker.unlink(missing_ok=True)  # left by a process that died
        return busy

    # -- index ----------------------------------------------------------------------------------
    def is_fresh(self, entry: Entry) -> bool:
        """Cached with this ETag and the expected length on disk."""
        row = self._db.execute(
            "SELECT etag, size FROM objects WHERE store=? AND bucket=? AND key=?",
            (self.store, entry.bucket, entry.key),
        ).fetchone()
        if row is None or row[0] != entry.etag or row[1] != entry.size:
            return False
        try:
            return self.local_path(entry.bucket, entry.key).stat().st_size == entry.size
        except OSError:
            return False

    def touch(self, entries: list[Entry]) -> None:
        now = time.time()
        self._db.executemany(
            "UPDATE objects SET used=? WHERE store=? AND bucket=? AND key=?",
            [(now, self.store, e.bucket, e.key) for e in entries],
        )

    def record(self, entry: Entry) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO objects VALUES (?, ?, ?, ?, ?, ?)",
            (self.store, entry.bucket, entry.key, entry.etag, entry.size, time.time()),
        )

    def forget(self, bucket: str, key: str) -> None:
        self._db.execute(
            "DELETE FROM objects WHERE store=? AND bucket=? AND key=?", (self.store, bucket, key)
        )
        path = self.local_path(bucket, key)
        path.unlink(missing_ok=True)
        for part in path.parent.glob(f"{glob.escape(path.name)}.*{PART_SUFFIX}"):
            part.unlink(missing_ok=True)

    def drop_stale(self, bucket: str, prefix: str, listing: dict[str, Entry]) -> int:
        """Delete cached objects under `prefix` that the store no longer has (or has changed), so the
        local folder shows what the store holds now. Returns how many were dropped."""
        rows = self._db.execute(
            "SELECT key, etag FROM objects WHERE store=? AND bucket=? AND substr(key, 1, ?)=?",
            (self.store, bucket, len(prefix), prefix),
        ).fetchall()
        stale = [key for key, etag in rows if key not in listing or listing[key].etag != etag]
        for key in stale:
            self.forget(bucket, key)
        return len(stale)

    def total_bytes(self) -> int:
        return int(self._db.execute("SELECT COALESCE(SUM(size), 0) FROM objects").fetchone()[0])

    def make_room(self, needed: int, keep: set[tuple[str, str]]) -> int:
        """Evict least-recently-used objects (none of `keep` (bucket, key) of this store, none in a
        folder being analysed) until `needed` more bytes fit the limit. Returns the bytes freed."""
        excess = self.total_bytes() + needed - self.limit_bytes
        if excess <= 0:
            return 0
        busy = [Path(f) for f in self._busy_folders()]
        freed = 0
        rows = self._db.execute("SELECT store, bucket, key, size FROM objects ORDER BY used").fetchall()
        for store, bucket, key, size in rows:
            if freed >= excess:
                break
            if store == self.store and (bucket, key) in keep:
                continue
            path = self.data / store / bucket / key
            if any(folder == path or folder in path.parents for folder in busy):
                continue
            self._db.execute("DELETE FROM objects WHERE store=? AND bucket=? AND key=?", (store, bucket, key))
            path.unlink(missing_ok=True)
            freed += int(size)
        return freed
