"""Profiling data in OBS or any S3-compatible object store (`obs://bucket/dir`, `s3://bucket/dir`).

`open_profile` downloads what the selected checks read into a size-bounded local cache keyed by
bucket/key/ETag and yields the local folder that the engine analyses; `upload_reports` writes
reports back. See docs/design.md, "Object storage".
"""

from .client import StorageError
from .config import ObjectURL, StoreConfig, is_object_url, load_config, parse_url
from .fetch import FetchStats, human_bytes, open_profile, sync_profile, upload_reports

__all__ = [
    "FetchStats",
    "ObjectURL",
    "StorageError",
    "StoreConfig",
    "human_bytes",
    "is_object_url",
    "load_config",
    "open_profile",
    "parse_url",
    "sync_profile",
    "upload_reports",
]
