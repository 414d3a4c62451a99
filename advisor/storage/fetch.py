"""Bring a profile from an object store into the local cache (only what the checks read, in
parallel, resumable, with progress), and upload reports back."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .cache import DownloadCache, Entry, part_path
from .client import StorageError, explain, is_transient, make_client
from .config import ObjectURL, StoreConfig, load_config, parse_url
from .select import is_profile_file, looks_like_profile, needed_patterns

ProgressFn = Callable[[str, int, int], None]
CHUNK = 1 << 20
PROGRESS_EVERY_S = 0.5
RETRY_BACKOFF_S = 0.2


def human_bytes(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"  # pragma: no cover


@dataclass
class FetchStats:
    listed: int = 0  # objects under the prefix
    selected: int = 0  # of them, the files the analysis reads
    downloaded: int = 0
    cached: int = 0  # selected files already in the cache with the same ETag
    bytes_downloaded: int = 0
    bytes_selected: int = 0
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"downloaded {self.downloaded} of {self.selected} files ({human_bytes(self.bytes_downloaded)}), "
            f"{self.cached} from the cache; {self.listed - self.selected} other objects skipped"
        )


def _safe_key(key: str) -> bool:
    """A key that maps to a file inside the cache (no '..', no absolute or empty segments)."""
    parts = key.split("/")
    return (
        bool(key)
        and not key.endswith("/")
        and "\\" not in key
        and all(p not in ("", ".", "..") for p in parts)
    )


def _check_listing(url: ObjectURL, keys: list[str], *, complete: bool = True) -> None:
    """StorageError unless the objects under `url` look like profiling data (`keys`: all of them, or
    the first pages when not `complete`)."""
    if not keys:
        where = f"under {url}" if url.prefix else f"in bucket {url.bucket!r}"
        raise StorageError(f"{url}: no such folder: nothing is stored {where}")
    if not looks_like_profile(keys):
        sample = ", ".join(key.removeprefix(url.prefix) for key in keys[:3])
        count = f"{len(keys)}{'' if complete else '+'}"
        raise StorageError(
            f"{url}: not profiling data: {count} object(s) "
            f"({sample}{', …' if len(keys) > 3 else ''}) "
            "but no *_ascend_pt rank folder with ASCEND_PROFILER_OUTPUT"
        )


def probe_profile(url_text: str, config: StoreConfig | None = None, *, max_keys: int = 5000) -> str:
    """Check, without downloading, that `url_text` names profiling data the analysis can reach: the
    credentials are set, the bucket answers, the prefix holds objects and some look like a rank
    export. Lists until one does, at most `max_keys` objects (exports sort before raw PROF_* data), and
    tries once, so that it can run as the user types. Returns a one-line summary; raises StorageError."""
    url = parse_url(url_text)
    config = replace(config or load_config(url.scheme), max_attempts=1)
    client = make_client(config, str(url))
    keys: list[str] = []
    try:
        pages = client.get_paginator("list_objects_v2").paginate(
            Bucket=url.bucket, Prefix=url.prefix, PaginationConfig={"MaxItems": max_keys, "PageSize": 1000}
        )
        for page in pages:
            keys += [item["Key"] for item in page.get("Contents", [])]
            if looks_like_profile(keys):
                break
    except Exception as error:
        raise explain(error, config, str(url), bucket=url.bucket) from None
    _check_listing(url, keys, complete=len(keys) < max_keys)
    return f"profiling data found in {url}"


def _list(client: Any, url: ObjectURL, config: StoreConfig) -> list[Entry]:
    entries = []
    try:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=url.bucket, Prefix=url.prefix)
        for page in pages:
            for item in page.get("Contents", []):
                modified = item.get("LastModified")
                entries.append(
                    Entry(
                        url.bucket,
                        item["Key"],
                        str(item.get("ETag", "")).strip('"'),
                        int(item.get("Size", 0)),
                        modified.timestamp() if modified is not None else 0.0,
                    )
                )
    except Exception as error:
        raise explain(error, config, str(url), bucket=url.bucket) from None
    return entries


def list_profile(url_text: str, config: StoreConfig | None = None) -> list[str]:
    """The objects under `url_text` (relative to it), checked to look like profiling data; reads
    no object (a Dask client that leaves the downloads to the workers needs only listing rights)."""
    url = parse_url(url_text)
    config = config or load_config(url.scheme)
    listing = _list(make_client(config, str(url)), url, config)
    _check_listing(url, [e.key for e in listing])
    return [e.key.removeprefix(url.prefix) for e in listing]


class _Progress:
    """Thread-safe "downloading 12/48 files, 1.2 GB" events, at most every PROGRESS_EVERY_S."""

    def __init__(self, notify: ProgressFn, total_files: int, total_bytes: int) -> None:
        self.notify, self.total_files, self.total_bytes = notify, total_files, total_bytes
        self.files = self.bytes = 0
        self._last = 0.0
        self._lock = threading.Lock()

    def add(self, nbytes: int = 0, files: int = 0) -> None:
        with self._lock:
            self.bytes += nbytes
            self.files += files
            now = time.monotonic()
            if files or now - self._last >= PROGRESS_EVERY_S:
                self._last = now
                self.notify(
                    f"downloading {self.files}/{self.total_files} files, {human_bytes(self.bytes)} "
                    f"of {human_bytes(self.total_bytes)}",
                    self.files,
                    self.total_files,
                )


def _download(client: Any, entry: Entry, path: Path, config: StoreConfig, progress: _Progress) -> int:
    """One object into `path` via its `.part` file (resumed when it exists); returns bytes fetched."""
    part = part_path(path, entry.etag)
    path.parent.mkdir(parents=True, exist_ok=True)
    fetched = 0
    for attempt in range(config.max_attempts + 1):
        offset = part.stat().st_size if part.exists() else 0
        if offset > entry.size:
            part.unlink()
            offset = 0
        if offset == entry.size and (entry.size or part.exists()):
            break
        request: dict[str, Any] = {"Bucket": entry.bucket, "Key": entry.key}
        if entry.etag:
            request["IfMatch"] = f'"{entry.etag}"'
        if offset:
            request["Range"] = f"bytes={offset}-"
        try:
            body = client.get_object(**request)["Body"]
            with open(part, "ab") as handle:
                for chunk in body.iter_chunks(CHUNK):
                    handle.write(chunk)
                    fetched += len(chunk)
                    progress.add(len(chunk))
        except Exception as error:
            if attempt == config.max_attempts or not is_transient(error):
                raise
            time.sleep(RETRY_BACKOFF_S * 2**attempt)  # the .part keeps what arrived: the next try resumes
    size = part.stat().st_size if part.exists() else -1
    if size != entry.size:
        raise StorageError(f"{entry.key}: downloaded {size} bytes, the store lists {entry.size}; run again")
    if entry.mtime:
        os.utime(part, (entry.mtime, entry.mtime))
    os.replace(part, path)
    return fetched


def _noop(stage: str, done: int, total: int) -> None:
    pass


def sync_profile(
    url_text: str,
    *,
    tables: Iterable[str],
    progress: ProgressFn | None = None,
    config: StoreConfig | None = None,
) -> tuple[Path, FetchStats, DownloadCache]:
    """Download the files of the profile at `url_text` that the formats read for `tables` into the
    cache; returns (local folder, stats, cache)."""
    started = time.perf_counter()
    notify = progress or _noop
    url = parse_url(url_text)
    config = config or load_config(url.scheme)
    client = make_client(config, str(url))
    notify(f"listing {url}", 0, 1)
    listing = _list(client, url, config)
    _check_listing(url, [e.key for e in listing])
    patterns = needed_patterns(tables)
    stats = FetchStats(listed=len(listing))
    unsafe = [e.key for e in listing if not _safe_key(e.key)]
    if unsafe:
        stats.warnings.append(
            f"{url}: skipped {len(unsafe)} object(s) with unusable names, e.g. {unsafe[0]!r}"
        )
    wanted = [e for e in listing if _safe_key(e.key) and is_profile_file(e.key, patterns)]
    stats.selected, stats.bytes_selected = len(wanted), sum(e.size for e in wanted)

    cache = DownloadCache(config.cache_dir, config.endpoint, config.cache_bytes)
    with cache.locked():
        cache.drop_stale(url.bucket, url.prefix, {e.key: e for e in listing})
        missing = [e for e in wanted if not cache.is_fresh(e)]
        stats.cached = len(wanted) - len(missing)
        missing_set = set(missing)
        cache.touch([e for e in wanted if e not in missing_set])
        need = sum(e.size for e in missing)
        cache.make_room(need, {(e.bucket, e.key) for e in wanted})
        if cache.total_bytes() + need > cache.limit_bytes:
            stats.warnings.append(
                f"the download cache limit ({human_bytes(cache.limit_bytes)}) is smaller than this profile "
                f"({human_bytes(stats.bytes_selected)}); raise PERFORMANCE_ADVISOR_OBS_CACHE_MB"
            )
        tracker = _Progress(notify, len(missing), need)
        if missing:
            tracker.add()
        with ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix="obs-download") as pool:
            futures = {
                pool.submit(_download, client, e, cache.local_path(e.bucket, e.key), config, tracker): e
                for e in missing
            }
            try:
                for future in as_completed(futures):
                    entry = futures[future]
                    try:
                        stats.bytes_downloaded += future.result()
                    except StorageError:
                        raise
                    except Exception as error:
                        raise explain(error, config, str(url), bucket=url.bucket, key=entry.key) from None
                    cache.record(entry)
                    stats.downloaded += 1
                    tracker.add(files=1)
            except BaseException:
                for pending in futures:
                    pending.cancel()
                raise
    folder = cache.folder(url.bucket, url.prefix)
    folder.mkdir(parents=True, exist_ok=True)
    stats.seconds = time.perf_counter() - started
    notify(stats.summary(), 1, 1)
    return folder, stats, cache


@contextlib.contextmanager
def open_profile(
    url_text: str,
    *,
    tables: Iterable[str],
    progress: ProgressFn | None = None,
    config: StoreConfig | None = None,
) -> Iterator[tuple[Path, FetchStats]]:
    """`sync_profile`, then the local folder marked in use (no eviction) while the block runs."""
    folder, stats, cache = sync_profile(url_text, tables=tables, progress=progress, config=config)
    try:
        with cache.in_use(folder):
            yield folder, stats
    finally:
        cache.close()


def upload_reports(
    reports: dict[str, Path], dest_text: str, *, config: StoreConfig | None = None
) -> dict[str, str]:
    """Upload report files to the `dest_text` folder; returns their object URLs by format. All or
    none: a failed upload deletes the reports already uploaded (a failed multipart upload is aborted
    by boto3's transfer manager), so the folder never holds part of a set."""
    url = parse_url(dest_text)
    config = config or load_config(url.scheme)
    client = make_client(config, str(url))
    uploaded: dict[str, str] = {}
    try:
        for fmt, path in reports.items():
            key = url.child(Path(path).name)
            try:
                client.upload_file(str(path), url.bucket, key)
            except Exception as error:
                raise explain(error, config, str(url), bucket=url.bucket, key=key) from None
            uploaded[fmt] = key
    except BaseException:
        for key in uploaded.values():
            with contextlib.suppress(Exception):  # best effort: the upload's own error is the one to tell
                client.delete_object(Bucket=url.bucket, Key=key)
        raise
    return {fmt: f"{url.scheme}://{url.bucket}/{key}" for fmt, key in uploaded.items()}
