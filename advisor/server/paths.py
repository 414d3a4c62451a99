"""Turn user-typed paths into real paths confined to the allowed roots."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import InputError

OBJECT_STORE_PREFIXES = ("obs://", "s3://")


def is_object_store_path(path: str) -> bool:
    return path.strip().lower().startswith(OBJECT_STORE_PREFIXES)


def validate_object_store_path(path: str) -> str:
    """`obs://bucket/prefix` or `s3://bucket/prefix`, with a bucket name."""
    text = path.strip()
    if not is_object_store_path(text):
        raise InputError(
            f"{text!r} is not an object storage path: expected obs://bucket/path or s3://bucket/path"
        )
    bucket = text.split("://", 1)[1].split("/", 1)[0]
    if not bucket:
        raise InputError(f"{text!r} names no bucket: expected obs://bucket/path")
    return text


class PathResolver:
    """Resolves paths against the server root and refuses anything outside the allowed roots.

    Symlinks are resolved before the check, so a link inside the root that points outside is refused.
    """

    def __init__(self, root_dir: str | Path, allowed_roots: list[str] | None = None) -> None:
        self.root_dir = Path(root_dir).expanduser().resolve()
        roots = [Path(r).expanduser() for r in (allowed_roots or [])] or [self.root_dir]
        self.allowed_roots = [(r if r.is_absolute() else self.root_dir / r).resolve() for r in roots]

    def resolve(self, user_path: str, *, must_exist: bool = True, kind: str = "path") -> Path:
        text = (user_path or "").strip()
        if not text:
            raise InputError(f"{kind} is empty")
        if "\x00" in text:
            raise InputError(f"{kind} contains a NUL character")
        candidate = Path(os.path.expanduser(text))
        if not candidate.is_absolute():
            candidate = self.root_dir / candidate
        resolved = candidate.resolve()
        if not any(resolved == root or root in resolved.parents for root in self.allowed_roots):
            raise InputError(f"{kind} {text!r} is outside the folders this server may read")
        if must_exist and not resolved.exists():
            raise InputError(f"{kind} {text!r} does not exist")
        return resolved

    def display(self, path: Path) -> str:
        """A path as the user should see it: relative to the server root when inside it."""
        try:
            relative = path.relative_to(self.root_dir)
        except ValueError:
            return str(path)
        return "./" + relative.as_posix() if str(relative) != "." else "."
