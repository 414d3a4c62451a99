"""Profiling data in OBS or any S3-compatible object store (`obs://bucket/dir`, `s3://bucket/dir`).

`open_profile` downloads what the selected checks read into a size-bounded local cache keyed by
bucket/key/ETag and yields the local folder that the engine analyses; `upload_reports` writes
reports back. See docs/design.md, "Object storage".
"""

from importlib import import_module
from typing import Any

from .config import (
    ObjectURL,
    StorageError,
    StoreConfig,
    is_object_url,
    load_config,
    parse_url,
    require_endpoint,
)

# The transfer side imports boto3 (~0.3 s): only when used, not for a local analysis that asks
# `is_object_url` or a server that parses a submitted URL.
_LAZY = {
    "FetchStats": ".fetch",
    "human_bytes": ".fetch",
    "list_profile": ".fetch",
    "open_profile": ".fetch",
    "probe_profile": ".fetch",
    "sync_profile": ".fetch",
    "upload_reports": ".fetch",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "FetchStats",
    "ObjectURL",
    "StorageError",
    "StoreConfig",
    "human_bytes",
    "is_object_url",
    "list_profile",
    "load_config",
    "open_profile",
    "parse_url",
    "probe_profile",
    "require_endpoint",
    "sync_profile",
    "upload_reports",
]
