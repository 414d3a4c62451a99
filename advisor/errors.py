"""Errors meant for the user: one line that names the file and the problem."""

from __future__ import annotations


class InputError(Exception):
    """Unusable input (missing path, not profiling data, unreadable file): CLI exit code 2."""


class OptionError(InputError):
    """An analysis option out of its range or choices (HTTP 400 in the server)."""


class MixedRunsError(InputError):
    """A folder holding the rank folders of more than one profiling run (HTTP 400 in the server)."""


def byte_size(count: int) -> str:
    """A size in a message: MiB from 1 MiB on, else bytes."""
    return f"{count / (1 << 20):.4g} MiB" if count >= 1 << 20 else f"{count} bytes"
