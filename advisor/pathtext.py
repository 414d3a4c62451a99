"""Checks on a path as the user typed it, before any file system or object store sees it, and on where
reports may go; shared by the CLI and the server so that both refuse the same things with the same words.
"""

from __future__ import annotations

import re

from .errors import MalformedPathError

# What Linux takes: PATH_MAX and NAME_MAX, in bytes of the file system's encoding (UTF-8).
MAX_PATH_BYTES = 4096
MAX_COMPONENT_BYTES = 255
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Longest user text quoted back in a message.
MAX_SHOWN = 120


def shown(value: object) -> str:
    """`value` as Python writes it (a string quoted, a lone surrogate or control character escaped), cut
    to a readable length: a message quotes what the user sent without echoing a megabyte of it."""
    text = repr(value)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 1] + "…"


def check_text(text: str, field: str) -> str:
    """`text` if it is encodable UTF-8 without control characters (NUL, newline, …), else InputError.

    A lone surrogate (JSON allows `"\\ud800"`) cannot be encoded for the file system; a control character
    has no business in a path and would break the one-line messages and logs that quote it.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise MalformedPathError(
            f"{field} is not valid text: character {error.start + 1} is an unpaired surrogate "
            f"(U+{ord(text[error.start]):04X})"
        ) from None
    control = _CONTROL.search(text)
    if control:
        raise MalformedPathError(
            f"{field} contains a control character (U+{ord(control.group()):04X}) "
            f"at position {control.start() + 1}"
        )
    return text


def check_local_path(text: str, field: str) -> str:
    """`text` if the file system can take it: valid text, at most 4096 bytes, each component at most 255."""
    size = len(check_text(text, field).encode())
    if size > MAX_PATH_BYTES:
        raise MalformedPathError(f"{field} is {size} bytes long; a path may have at most {MAX_PATH_BYTES}")
    for component in text.split("/"):
        size = len(component.encode())
        if size > MAX_COMPONENT_BYTES:
            raise MalformedPathError(
                f"{field} has a folder or file name of {size} bytes ({shown(component)}); "
                f"a name may have at most {MAX_COMPONENT_BYTES}"
            )
    return text
