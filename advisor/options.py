"""The options contract: one typed model from which the CLI flags, the REST validation, `GET api/options`,
the server runner's command line and the panel's TypeScript types (src/options.ts, written by
scripts/options_ts.py) are all derived. A new analysis option is one field of `AnalysisOptions` plus
its control in the panel (docs/design.md, "Options").

Two models: `AnalysisOptions` change what the analysis finds; `JobParameters` (where the reports go,
their language) change only how the result is delivered. A third, `Deployment` (where the per-rank
work runs), is set by whoever runs the CLI or the server, never by a REST request: it names a host the
analysis connects to and accepts results from, which a panel user has no business choosing.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from .errors import OptionError
from .pathtext import shown

# "" (the default) means "detect from the data": a version is a hint only for data that records none,
# so a default hint would put a version the user never gave into every such report.
DETECT = ""
CANN_VERSIONS = (DETECT, "6.3.RC2", "7.0.RC1", "7.0.0", "8.0.RC1")
TORCH_VERSIONS = (DETECT, "1.11.0", "2.1.0")
# The version hints name Ascend software (CANN, torch_npu): they mean something on NPU profiles only.
VERSION_HINTS = ("cann_version", "torch_version")
VERSION_HINT_DEVICES = ("npu",)
DIMENSIONS = ("computation", "communication", "schedule", "memory", "dataloader", "training")
REPORT_FORMATS = ("html", "xlsx", "json")  # what an analysis writes unless told otherwise
# A notebook that re-analyses the data with the Python API (advisor.report.notebook): on request only.
NOTEBOOK_FORMAT = "ipynb"
OUTPUT_FORMATS = (*REPORT_FORMATS, NOTEBOOK_FORMAT)
LANGUAGES = ("en", "zh")
MIN_PROCESSES, MAX_PROCESSES = 1, 8
# Worker processes when the user does not say: the cores this process may use, at most this many
# (each process holds one rank's tables at a time: memory grows with the processes).
DEFAULT_PROCESSES_CAP = 4
# The training log's facts a user may state where the log does not (docs/design.md, "Training logs"):
# the largest clusters and context lengths in use, with room to spare.
MAX_DEVICES = 1_000_000
MAX_SEQ_LENGTH = 100_000_000
# Reports go into a folder of their own under the server root (or the CLI's current folder) unless
# the user names one: three files per run would otherwise pile up among the user's own files.
REPORTS_DIR = "performance_advisor_reports"


def default_process_count() -> int:
    """Worker processes for reading ranks when the user does not say: the usable cores, capped."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # no affinity on this platform
        cores = os.cpu_count() or 1
    return max(MIN_PROCESSES, min(cores, DEFAULT_PROCESSES_CAP))


# How a value is read, offered and passed on: one of a list ("choice"), several of it ("multi"), an
# integer in a range ("range"), an integer in a range or nothing ("count": unset is None), on/off
# ("flag", a CLI switch), free text ("text").
Kind = Literal["choice", "multi", "range", "count", "flag", "text"]


@dataclass(frozen=True)
class Spec:
    """What the CLI, the REST API and the panel need to know of one option (a field's metadata)."""

    kind: Kind
    flag: str  # the `performance-advisor analyze` flag
    label: str  # the panel's name for it (English; the panel translates its own copy)
    help: str
    choices: tuple[str, ...] = ()
    minimum: int = 0
    maximum: int = 0
    metavar: str | None = None


def option(default: Any, spec: Spec) -> Any:
    """A model field: its default and its Spec."""
    return field(default=default, metadata={"spec": spec})


@dataclass(frozen=True)
class AnalysisOptions:
    """What the user chose in Advanced Settings (REST names), each field with its Spec."""

    cann_version: str = option(
        DETECT,
        Spec(
            "choice",
            "--cann-version",
            "CANN version",
            "used only where the data records no CANN version (default: none, detect from the data)",
            choices=CANN_VERSIONS,
        ),
    )
    torch_version: str = option(
        DETECT,
        Spec(
            "choice",
            "--torch-version",
            "Torch version",
            "used only where the data records no torch_npu version (default: none)",
            choices=TORCH_VERSIONS,
        ),
    )
    analysis_dimensions: tuple[str, ...] = option(
        DIMENSIONS,
        Spec(
            "multi",
            "--dimensions",
            "Analysis dimensions",
            "comma-separated analysis dimensions (default: all)",
            choices=DIMENSIONS,
        ),
    )
    advisor_analyze_processes: int = option(
        default_process_count(),
        Spec(
            "range",
            "--processes",
            "Analysis processes",
            f"worker processes for reading ranks ({MIN_PROCESSES}-{MAX_PROCESSES})",
            minimum=MIN_PROCESSES,
            maximum=MAX_PROCESSES,
        ),
    )
    disable_profiling_comparison: bool = option(
        False,
        Spec("flag", "--no-comparison", "Disable profiling comparison", "skip comparison with the baseline"),
    )
    disable_affinity_api: bool = option(
        False, Spec("flag", "--no-affinity-api", "Disable affinity API check", "skip the affinity-API check")
    )

    def to_json(self) -> dict[str, Any]:
        return model_json(self)

    def to_cli_args(self) -> list[str]:
        """The `performance-advisor analyze` flags for these options."""
        return cli_args(self)


@dataclass(frozen=True)
class JobParameters:
    """Where the reports of one analysis go and their language, and the training log read beside the
    profile (an input like `path`, confined to the allowed roots as it is) with the facts of the job a
    log may not state (its device count and sequence length). Top-level fields of the REST body."""

    output_path: str = option(
        REPORTS_DIR,
        Spec(
            "text",
            "--output",
            "Output path",
            f"report folder, or obs://bucket/dir to upload the reports (default: ./{REPORTS_DIR})",
            metavar="DIR",
        ),
    )
    language: str = option(
        "en", Spec("choice", "--language", "Report language", "report language: en or zh", choices=LANGUAGES)
    )
    training_log: str = option(
        "",
        Spec(
            "text",
            "--training-log",
            "Training log",
            "a training log to read beside the profile: LLaMA-Factory trainer_log.jsonl, Megatron/"
            "MindSpeed stdout or HuggingFace trainer_state.json (default: none)",
            metavar="LOG",
        ),
    )
    devices: int | None = option(
        None,
        Spec(
            "count",
            "--devices",
            "Devices",
            "the job's device count, where the training log does not state it (for tokens/s per device)",
            minimum=1,
            maximum=MAX_DEVICES,
            metavar="N",
        ),
    )
    seq_length: int | None = option(
        None,
        Spec(
            "count",
            "--seq-length",
            "Sequence length",
            "tokens per sample, where the training log does not state it (Megatron logs: for tokens/s)",
            minimum=1,
            maximum=MAX_SEQ_LENGTH,
            metavar="L",
        ),
    )

    def to_json(self) -> dict[str, Any]:
        return model_json(self)


@dataclass(frozen=True)
class Deployment:
    """Where the per-rank work of an analysis runs (docs/design.md, "Scale-out on Dask"): a CLI flag
    and a server setting (AdvisorApp.dask_scheduler_address), not part of the REST API or the panel."""

    dask_scheduler_address: str | None = option(
        None,
        Spec(
            "text",
            "--scheduler",
            "Dask scheduler",
            "run the per-rank work on this Dask scheduler, e.g. tcp://host:8786 (needs the dask extra; "
            "default: local processes)",
            metavar="ADDRESS",
        ),
    )
    # A tls:// scheduler: the client's certificate and key, and the CA that signed the cluster's.
    dask_tls_ca_file: str | None = option(
        None,
        Spec("text", "--scheduler-ca", "Dask TLS CA", "CA certificate of a tls:// scheduler", metavar="FILE"),
    )
    dask_tls_cert_file: str | None = option(
        None,
        Spec("text", "--scheduler-cert", "Dask TLS cert", "client certificate (tls://)", metavar="FILE"),
    )
    dask_tls_key_file: str | None = option(
        None,
        Spec("text", "--scheduler-key", "Dask TLS key", "client private key (tls://)", metavar="FILE"),
    )


Model = AnalysisOptions | JobParameters | Deployment


def specs(model: type[Model]) -> dict[str, Spec]:
    """The Spec of each field of `model`, in field order."""
    return {f.name: f.metadata["spec"] for f in fields(model)}


def model_json(value: Model) -> dict[str, Any]:
    return {name: list(v) if isinstance(v, tuple) else v for name, v in dataclasses.asdict(value).items()}


def cli_args(value: Model) -> list[str]:
    """The CLI flags that give `value` (a version hint left to detect or a setting left unset is not
    passed; a flag only when set)."""
    args: list[str] = []
    for name, spec in specs(type(value)).items():
        current = getattr(value, name)
        if spec.kind == "flag":
            args += [spec.flag] if current else []
        elif spec.kind == "multi":
            args += [spec.flag, ",".join(current)]
        elif current not in (DETECT, None):  # None: an optional setting left unset
            args += [spec.flag, str(current)]
    return args


def add_cli_arguments(parser: argparse.ArgumentParser, model: type[Model]) -> None:
    """One flag per field of `model`; the values are left raw (None when not given) for `from_cli`."""
    for name, spec in specs(model).items():
        if spec.kind == "flag":
            parser.add_argument(spec.flag, dest=name, action="store_true", default=None, help=spec.help)
        else:
            metavar = spec.metavar or spec.flag.lstrip("-").replace("-", "_").upper()
            parser.add_argument(spec.flag, dest=name, default=None, metavar=metavar, help=spec.help)


def from_cli(args: argparse.Namespace, model: type[Model]) -> Any:
    """The validated `model` of the flags `add_cli_arguments` added (flags not given take defaults)."""
    raw = {name: getattr(args, name) for name in specs(model) if getattr(args, name) is not None}
    return parse_model(model, raw)


def options_schema(model: type[Model] = AnalysisOptions) -> dict[str, Any]:
    """Defaults, choices, ranges and labels of `model`'s fields, as `GET api/options` serves them."""
    defaults = model_json(model())
    schema: dict[str, Any] = {}
    for name, spec in specs(model).items():
        entry: dict[str, Any] = {"default": defaults[name], "label": spec.label}
        if spec.kind in ("choice", "multi"):
            entry["choices"] = list(spec.choices)
        if spec.kind in ("range", "count"):
            entry.update(min=spec.minimum, max=spec.maximum)
        schema[name] = entry
    return schema


def parse_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    """`value` if it is one of `choices` (case-insensitive), else OptionError."""
    if isinstance(value, str):
        for choice in choices:
            if value.strip().lower() == choice.lower():
                return choice
    named = ", ".join(choice or '"" (detect from the data)' for choice in choices)
    raise OptionError(f"{name} must be one of {named}; got {shown(value)}")


def parse_multi(name: str, value: Any, choices: tuple[str, ...]) -> tuple[str, ...]:
    """A list (or comma-separated string) of `choices`, in their order; empty or unknown entries are
    refused."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)):
        raise OptionError(f"{name} must be a list; got {shown(value)}")
    chosen = [parse_choice(name, item, choices) for item in items]
    if not chosen:
        raise OptionError(f"{name} must name at least one of " + ", ".join(choices))
    return tuple(c for c in choices if c in chosen)


def parse_range(name: str, value: Any, minimum: int, maximum: int) -> int:
    """An integer (or its digits) between `minimum` and `maximum`."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise OptionError(f"{name} must be an integer; got {shown(value)}")
    try:
        number = int(value)
    except ValueError:  # not digits, or more digits than int() takes
        raise OptionError(f"{name} must be an integer; got {shown(value)}") from None
    if not minimum <= number <= maximum:
        raise OptionError(f"{name} must be between {minimum} and {maximum}; got {shown(number)}")
    return number


def parse_flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise OptionError(f"{name} must be true or false; got {shown(value)}")
    return value


def parse_text(name: str, value: Any, default: str) -> str:
    """Text, stripped; empty (or null) takes the default."""
    if value is None:
        return default
    if not isinstance(value, str):
        raise OptionError(f"{name} must be a string; got {shown(value)}")
    return value.strip() or default


def parse_value(name: str, spec: Spec, value: Any, default: Any) -> Any:
    """One field's value, checked as its Spec says; errors call it `name`."""
    if spec.kind == "choice":
        return parse_choice(name, value, spec.choices)
    if spec.kind == "multi":
        return parse_multi(name, value, spec.choices)
    if spec.kind == "range":
        return parse_range(name, value, spec.minimum, spec.maximum)
    if spec.kind == "count":  # null or "" leaves it unset
        return None if value in (None, "") else parse_range(name, value, spec.minimum, spec.maximum)
    if spec.kind == "flag":
        return parse_flag(name, value)
    return parse_text(name, value, default)


def parse_model(model: type[Model], raw: dict[str, Any], names: dict[str, str] | None = None) -> Any:
    """A validated `model` from `raw` (missing keys take their defaults; unknown keys are refused by the
    caller). Errors name each field as `names` maps it (default: its own name)."""
    defaults = model()
    values = {
        name: parse_value((names or {}).get(name, name), spec, raw[name], getattr(defaults, name))
        for name, spec in specs(model).items()
        if name in raw
    }
    return dataclasses.replace(defaults, **values)


def parse_options(raw: dict[str, Any] | None, prefix: str = "") -> AnalysisOptions:
    """Validate analysis options from the REST API (missing keys take their defaults; unknown keys are
    refused). Messages name each option with `prefix` ("options.", as the request body nests them)."""
    raw = dict(raw or {})
    unknown = sorted(set(raw) - set(specs(AnalysisOptions)))
    if unknown:
        where = f" in {prefix.rstrip('.')}" if prefix else ""
        raise OptionError(f"unknown option(s){where}: {', '.join(map(shown, unknown[:5]))}")
    names = {name: f"{prefix}{name}" for name in specs(AnalysisOptions)}
    return parse_model(AnalysisOptions, raw, names)


def version_hints(options: AnalysisOptions, device: str) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """The version hints that apply to a profile on `device` ({field: value}), and those given that
    do not, as (flag, value): the CANN/torch hints describe Ascend software, so a PyTorch profiler
    trace (GPU, CPU) ignores them, which the user is told once each."""
    given = {name: getattr(options, name) for name in VERSION_HINTS}
    if device in VERSION_HINT_DEVICES:
        return given, []
    flags = specs(AnalysisOptions)
    return {}, [(flags[name].flag, value) for name, value in given.items() if value]
