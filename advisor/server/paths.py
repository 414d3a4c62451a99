"""Turn user-typed paths into real paths confined to the allowed roots."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import InputError
from ..pathtext import check_local_path, shown


class PathResolver:
    """Resolves paths against the server root and refuses anything outside the allowed roots.

    Symlinks are resolved before the check, so a link inside the root that points outside is refused.
    """

    def __init__(self, root_dir: str | Path, allowed_roots: list[str] | None = None) -> None:
        self.root_dir = Path(root_dir).expanduser().resolve()
        roots = [Path(r).expanduser() for r in (allowed_roots or [])] or [self.root_dir]
        self.allowed_roots = [(r if r.is_absolute() else self.root_dir / r).resolve() for r in roots]

    def resolve(self, user_path: str, *, must_exist: bool = True, kind: str = "path") -> Path:
        text = check_local_path((user_path or "").strip(), kind)
        if not text:
            raise InputError(f"{kind} is empty")
        candidate = Path(os.path.expanduser(text))
        if not candidate.is_absolute():
            candidate = self.root_dir / candidate
        try:
            resolved = candidate.resolve()
            if not any(resolved == root or root in resolved.parents for root in self.allowed_roots):
                raise InputError(f"{kind} {shown(text)} is outside the folders this server may read")
            if must_exist and not resolved.exists():
                raise InputError(f"{kind} {shown(text)} does not exist")
        except RuntimeError:  # Python 3.11's Path.resolve on a symlink loop
            raise InputError(f"{kind} {shown(text)} cannot be used: a symbolic link loop") from None
        except OSError as error:  # a symlink loop (3.13), a folder that may not be searched
            raise InputError(f"{kind} {shown(text)} cannot be used: {error.strerror or error}") from None
        return resolved

    def display(self, path: Path) -> str:
        """A path as the user should see it: relative to the server root when inside it."""
        try:
            relative = path.relative_to(self.root_dir)
        except ValueError:
            return str(path)
        return "./" + relative.as_posix() if str(relative) != "." else "."
