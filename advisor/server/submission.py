"""Validate a POSTed task (REST body of docs/architecture.md §3.4) into a Task record."""

from __future__ import annotations

from typing import Any

from ..errors import InputError
from ..options import LANGUAGES, parse_choice, parse_options
from .models import Task, path_title
from .paths import PathResolver, is_object_store_path, validate_object_store_path
from .runner import new_task_id

SOURCES = ("local", "obs")


def parse_source(body: Any, resolver: PathResolver, *, kind: str) -> dict[str, str]:
    """`{source, path, title}`: the path confined to the allowed roots (local) or well-formed (obs); the
    title is the profile folder's real name (the folder "." stands for, not ".")."""
    if not isinstance(body, dict):
        raise InputError(f"{kind} must be an object with source and path")
    source = body.get("source", "local")
    path = body.get("path")
    if source not in SOURCES:
        raise InputError(f"{kind} source must be one of {', '.join(SOURCES)}; got {source!r}")
    if not isinstance(path, str) or not path.strip():
        raise InputError(f"{kind} path is missing")
    if source == "obs" or is_object_store_path(path):  # an obs:// path typed with Source: local
        text = _object_store_path(path)
        return {"source": "obs", "path": text, "title": path_title(text)}
    resolved = resolver.resolve(path, kind=f"{kind} path")
    if not resolved.is_dir():
        raise InputError(f"{kind} path {path!r} is not a folder")
    return {"source": source, "path": resolver.display(resolved), "title": resolved.name or str(resolved)}


def _object_store_path(path: str) -> str:
    from ..storage import parse_url  # rejects '..' segments as well

    text = validate_object_store_path(path)
    parse_url(text)
    return text


def parse_submission(body: Any, resolver: PathResolver, *, default_processes: int = 1) -> Task:
    if not isinstance(body, dict):
        raise InputError("the request body must be a JSON object")
    unknown = sorted(set(body) - {"source", "path", "compare", "options", "language"})
    if unknown:
        raise InputError(f"unknown field(s): {', '.join(unknown)}")
    data = parse_source(body, resolver, kind="profiling data")
    compare = body.get("compare")
    compared = parse_source(compare, resolver, kind="compared profiling data") if compare else None
    if compared:
        del compared["title"]  # the wire format's compare is {source, path}
    raw_options = body.get("options") or {}
    if not isinstance(raw_options, dict):
        raise InputError("options must be an object")
    raw_options = {"advisor_analyze_processes": default_processes, **raw_options}
    options = parse_options(raw_options)
    if options.output_path and is_object_store_path(options.output_path):
        _object_store_path(options.output_path)
    elif options.output_path:
        output = resolver.resolve(options.output_path, must_exist=False, kind="output_path")
        if output.exists() and not output.is_dir():
            raise InputError(f"output_path {options.output_path!r} is not a folder")
    stored = options.to_json()
    if body.get("language") is not None:
        # The report language travels with the stored options (the CLI's --language).
        stored["language"] = parse_choice("language", body["language"], LANGUAGES)
    return Task(
        id=new_task_id(),
        source=data["source"],
        path=data["path"],
        compare=compared,
        options=stored,
        title=data["title"],
    )
