"""Errors meant for the user: one line that names the file and the problem."""

from __future__ import annotations


class InputError(Exception):
    """Unusable input (missing path, not profiling data, unreadable file): CLI exit code 2."""


class OptionError(InputError):
    """An analysis option out of its range or choices (HTTP 400 in the server)."""


class MixedRunsError(InputError):
    """A folder holding the rank folders of more than one profiling run (HTTP 400 in the server)."""


class MalformedPathError(InputError):
    """A path or URL that no file or object could ever have (text that is no text, over the length
    limits, a bucket name the store's rules forbid): HTTP 400 wherever the server meets it, even in
    api/inspect, which answers `{ok: false}` for paths that are merely not (yet) usable."""
