"""Where an input or output is, for a local path and an object-store URL alike: the check that
reports are never written into the profiling data they were made from."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from .errors import InputError
from .pathtext import shown
from .storage.config import is_object_url, parse_url


def location_parts(location: str | Path) -> tuple[str, ...]:
    """Where a location is, as parts a location inside it starts with: a local path resolved (symlinks
    followed), an object-store URL as its bucket and prefix (obs:// and s3:// may name one store)."""
    if is_object_url(location):
        url = parse_url(str(location))
        return ("object storage", url.bucket, *url.prefix.split("/")[:-1])
    return Path(location).expanduser().resolve().parts


def is_within(location: str | Path, container: str | Path) -> bool:
    """Whether `location` is `container` or lies inside it, at any depth (links followed)."""
    where = location_parts(container)
    return location_parts(location)[: len(where)] == where


def refuse_output_inside_inputs(
    output: str | Path, inputs: Mapping[str, str | Path], field: str, *, as_typed: str | None = None
) -> None:
    """InputError if the output location is one of the inputs or inside one, at any depth: profiling
    data is read-only, and reports written into it would be read as part of it by the next analysis.
    `inputs` maps the field each input came in ("path", "compare.path") to its location; `as_typed` is
    the output as the user wrote it, for the message (default: `output`)."""
    for name, location in inputs.items():
        if is_within(output, location):
            raise InputError(
                f"{field} {shown(as_typed or str(output))} is inside the profiling data given as {name}, "
                "which is read-only: choose an output folder outside it"
            )
        # A trace file's own folder holds the traces beside it: reports written there (*.json) would
        # be read as traces by the next analysis of that folder. A folder below it is fine.
        trace_file = not is_object_url(location) and Path(location).is_file()
        if trace_file and location_parts(output) == location_parts(
            Path(location).expanduser().resolve().parent
        ):
            raise InputError(
                f"{field} {shown(as_typed or str(output))} is the folder of the trace file given as {name}, "
                "which holds profiling data: choose another output folder (a folder inside it will do)"
            )
