"""Validate a POSTed task (REST body of docs/architecture.md §3.4) into a Task record.

Every field is checked before anything uses it, and a refusal names the field as the body spells it
(`path`, `compare.path`, `output_path`): see docs/design.md, "Request validation". The job parameters
(`output_path`, `language`) are top-level fields; `options.output_path`, where the panel put it before
they were told apart, is still accepted and named so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..locations import refuse_output_inside_inputs
from ..options import JobParameters, parse_model, parse_options
from ..pathtext import shown
from ..storage.config import is_object_url, load_config, parse_url, require_endpoint
from .models import JOB_KEYS, Task, path_title
from .paths import PathResolver
from .runner import new_task_id

SOURCES = ("local", "obs")
BODY_FIELDS = ("source", "path", "compare", "options", *JOB_KEYS)
# The job parameters that the body before the split put in `options` (the report language never was).
JOB_KEYS_IN_OPTIONS = ("output_path",)


@dataclass(frozen=True)
class Source:
    """Where one input is: `source`/`path` as stored in the task, `location` what the analysis reads
    (the resolved folder or trace file, or the URL), `title` the profile's real name."""

    source: str
    path: str
    location: str
    title: str


def parse_source(
    body: Any, resolver: PathResolver, *, prefix: str, env: Mapping[str, str] | None = None
) -> Source:
    """One input: confined to the allowed roots (local) or a well-formed URL of a configured object store
    (obs); the title is the real name of the folder or file (the folder "." stands for, not ".")."""
    if not isinstance(body, dict):
        raise InputError(f"{prefix.rstrip('.') or 'the body'} must be an object with source and path")
    source = body.get("source", "local")
    path = body.get("path")
    if source not in SOURCES:
        raise InputError(f"{prefix}source must be one of {', '.join(SOURCES)}; got {shown(source)}")
    if not isinstance(path, str) or not path.strip():
        raise InputError(f"{prefix}path is missing (a string is expected)")
    if source == "obs" or is_object_url(path):  # an obs:// path typed with Source: local
        text = object_store_location(path, f"{prefix}path", env)
        return Source("obs", text, text, path_title(text))
    resolved = resolver.resolve(path, kind=f"{prefix}path")
    # A folder of profiling data, or one trace file (a PyTorch profiler trace is a single file).
    if not (resolved.is_dir() or resolved.is_file()):
        raise InputError(f"{prefix}path {shown(path)} is neither a folder nor a file")
    return Source(source, resolver.display(resolved), str(resolved), resolved.name or str(resolved))


def object_store_location(path: str, field: str, env: Mapping[str, str] | None = None) -> str:
    """`path` if it is a valid object-store URL whose store has an endpoint configured (in `env`, by
    default the process environment), else InputError."""
    url = parse_url(path, field)
    require_endpoint(url, load_config(url.scheme, env))
    return path.strip()


def parse_submission(
    body: Any,
    resolver: PathResolver,
    *,
    env: Mapping[str, str] | None = None,
    default_processes: int | None = None,
) -> Task:
    """The task a request body asks for; `env` holds the object-store settings the analysis would get
    (default: the process environment), `default_processes` the processes of a request that does not
    say (default: the options' default)."""
    if not isinstance(body, dict):
        raise InputError("the request body must be a JSON object")
    unknown = sorted(set(body) - set(BODY_FIELDS))
    if unknown:
        raise InputError(f"unknown field(s): {', '.join(map(shown, unknown[:5]))}")
    data = parse_source(body, resolver, prefix="", env=env)
    compare = body.get("compare")
    compared = parse_source(compare, resolver, prefix="compare.", env=env) if compare else None
    raw_options = body.get("options") or {}
    if not isinstance(raw_options, dict):
        raise InputError("options must be an object")
    raw_options = dict(raw_options)  # parse_job takes the job parameters out
    job = parse_job(body, raw_options)
    if default_processes is not None:
        raw_options = {"advisor_analyze_processes": default_processes, **raw_options}
    options = parse_options(raw_options, prefix="options.")
    training_log = parse_training_log(job.parameters.training_log, resolver)
    if training_log:
        job = JobRequest(replace(job.parameters, training_log=training_log.path), job.names)
    field = job.names["output_path"]
    output_path = job.parameters.output_path
    if is_object_url(output_path):
        output: str | Path = object_store_location(output_path, field, env)
    else:
        output = resolver.resolve(output_path, must_exist=False, kind=field)
        if output.exists() and not output.is_dir():
            raise InputError(f"{field} {shown(output_path)} is not a folder")
    inputs = {
        "path": data.location,
        **({"compare.path": compared.location} if compared else {}),
        **({"training_log": training_log.location} if training_log else {}),
    }
    refuse_output_inside_inputs(output, inputs, field, as_typed=output_path)
    return Task(
        id=new_task_id(),
        source=data.source,
        path=data.path,
        # The wire format's compare is {source, path}.
        compare={"source": compared.source, "path": compared.path} if compared else None,
        options=options.to_json(),
        job=job.parameters.to_json(),
        title=data.title,
    )


def parse_training_log(path: str, resolver: PathResolver) -> Source | None:
    """The training log beside the profile (None when not given): a file inside the allowed roots, as
    the profiling path is confined (an object-store URL is not read for it)."""
    if not path:
        return None
    if is_object_url(path):
        raise InputError(f"training_log {shown(path)} must be a local file (obs:// is not read for it)")
    resolved = resolver.resolve(path, kind="training_log")
    if not resolved.is_file():
        raise InputError(f"training_log {shown(path)} is not a file")
    return Source("local", resolver.display(resolved), str(resolved), resolved.name)


@dataclass(frozen=True)
class JobRequest:
    """The job parameters of a request and the name of each as the request spelled it."""

    parameters: JobParameters
    names: dict[str, str]


def parse_job(body: dict[str, Any], raw_options: dict[str, Any]) -> JobRequest:
    """The top-level job parameters of `body`, or (the shape before they were told apart from the
    analysis options) those of JOB_KEYS_IN_OPTIONS in `raw_options`, which are taken out of it. Null
    means "not given"."""
    raw: dict[str, Any] = {}
    names: dict[str, str] = {}
    for key in JOB_KEYS:
        names[key] = key
        if body.get(key) is not None:
            raw[key] = body[key]
        if key in JOB_KEYS_IN_OPTIONS and key in raw_options:
            if key in raw:
                raise InputError(f"{key} is given twice: as {key} and as options.{key}")
            names[key] = f"options.{key}"
            value = raw_options.pop(key)
            if value is not None:
                raw[key] = value
    return JobRequest(parse_model(JobParameters, raw, names), names)
