"""The analysis options: one table of choices and defaults for the CLI, the server and the UI."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import OptionError
from .pathtext import shown

# "" (the default) means "detect from the data": a version is a hint only for data that records none,
# so a default hint would put a version the user never gave into every such report.
DETECT = ""
CANN_VERSIONS = (DETECT, "6.3.RC2", "7.0.RC1", "7.0.0", "8.0.RC1")
TORCH_VERSIONS = (DETECT, "1.11.0", "2.1.0")
DIMENSIONS = ("computation", "communication", "schedule", "memory", "dataloader")
REPORT_FORMATS = ("html", "xlsx", "json")
LANGUAGES = ("en", "zh")
MIN_PROCESSES, MAX_PROCESSES = 1, 8
# Reports go into a folder of their own under the server root (or the CLI's current folder) unless
# the user names one: three files per run would otherwise pile up among the user's own files.
REPORTS_DIR = "performance_advisor_reports"


@dataclass(frozen=True)
class AnalysisOptions:
    """What the user chose in Advanced Settings (REST names)."""

    cann_version: str = DETECT
    torch_version: str = DETECT
    analysis_dimensions: tuple[str, ...] = DIMENSIONS
    advisor_analyze_processes: int = 1
    disable_profiling_comparison: bool = False
    disable_affinity_api: bool = False
    output_path: str = REPORTS_DIR
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("extra")
        data["analysis_dimensions"] = list(self.analysis_dimensions)
        return data

    def to_cli_args(self) -> list[str]:
        """The `performance-advisor analyze` flags for these options (output excluded)."""
        args = []
        if self.cann_version:
            args += ["--cann-version", self.cann_version]
        if self.torch_version:
            args += ["--torch-version", self.torch_version]
        args += ["--dimensions", ",".join(self.analysis_dimensions)]
        args += ["--processes", str(self.advisor_analyze_processes)]
        if self.disable_profiling_comparison:
            args.append("--no-comparison")
        if self.disable_affinity_api:
            args.append("--no-affinity-api")
        return args


def options_schema() -> dict[str, Any]:
    """Choices and defaults, as served to the frontend."""
    defaults = AnalysisOptions()
    return {
        "cann_version": {"default": defaults.cann_version, "choices": list(CANN_VERSIONS)},
        "torch_version": {"default": defaults.torch_version, "choices": list(TORCH_VERSIONS)},
        "analysis_dimensions": {"default": list(DIMENSIONS), "choices": list(DIMENSIONS)},
        "advisor_analyze_processes": {
            "default": defaults.advisor_analyze_processes,
            "min": MIN_PROCESSES,
            "max": MAX_PROCESSES,
        },
        "disable_profiling_comparison": {"default": False},
        "disable_affinity_api": {"default": False},
        "output_path": {"default": defaults.output_path},
    }


def parse_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    """`value` if it is one of `choices` (case-insensitive), else OptionError."""
    if isinstance(value, str):
        for choice in choices:
            if value.strip().lower() == choice.lower():
                return choice
    named = ", ".join(choice or '"" (detect from the data)' for choice in choices)
    raise OptionError(f"{name} must be one of {named}; got {shown(value)}")


def parse_dimensions(value: Any, prefix: str = "") -> tuple[str, ...]:
    """A list (or comma-separated string) of dimensions; empty or unknown entries are refused. `prefix`
    ("options.") names the option as the request does."""
    name = f"{prefix}analysis_dimensions"
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)):
        raise OptionError(f"{name} must be a list; got {shown(value)}")
    chosen = [parse_choice(name, item, DIMENSIONS) for item in items]
    if not chosen:
        raise OptionError(f"{name} must name at least one of " + ", ".join(DIMENSIONS))
    return tuple(d for d in DIMENSIONS if d in chosen)


def parse_processes(value: Any, prefix: str = "") -> int:
    name = f"{prefix}advisor_analyze_processes"
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise OptionError(f"{name} must be an integer; got {shown(value)}")
    try:
        number = int(value)
    except ValueError:  # not digits, or more digits than int() takes
        raise OptionError(f"{name} must be an integer; got {shown(value)}") from None
    if not MIN_PROCESSES <= number <= MAX_PROCESSES:
        raise OptionError(f"{name} must be between {MIN_PROCESSES} and {MAX_PROCESSES}; got {shown(number)}")
    return number


def parse_flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise OptionError(f"{name} must be true or false; got {shown(value)}")
    return value


def parse_options(raw: dict[str, Any] | None, prefix: str = "") -> AnalysisOptions:
    """Validate options from the REST API (missing keys take their defaults; unknown keys are refused).
    Messages name each option with `prefix` ("options.", as the request body nests them)."""
    raw = dict(raw or {})
    known = set(options_schema())
    unknown = sorted(set(raw) - known)
    if unknown:
        where = f" in {prefix.rstrip('.')}" if prefix else ""
        raise OptionError(f"unknown option(s){where}: {', '.join(map(shown, unknown[:5]))}")
    defaults = AnalysisOptions()
    output_path = raw.get("output_path") or defaults.output_path
    if not isinstance(output_path, str):
        raise OptionError(f"{prefix}output_path must be a string; got {shown(output_path)}")
    return AnalysisOptions(
        cann_version=parse_choice(
            f"{prefix}cann_version", raw.get("cann_version", defaults.cann_version), CANN_VERSIONS
        ),
        torch_version=parse_choice(
            f"{prefix}torch_version", raw.get("torch_version", defaults.torch_version), TORCH_VERSIONS
        ),
        analysis_dimensions=parse_dimensions(raw.get("analysis_dimensions", list(DIMENSIONS)), prefix),
        advisor_analyze_processes=parse_processes(
            raw.get("advisor_analyze_processes", defaults.advisor_analyze_processes), prefix
        ),
        disable_profiling_comparison=parse_flag(
            f"{prefix}disable_profiling_comparison", raw.get("disable_profiling_comparison", False)
        ),
        disable_affinity_api=parse_flag(
            f"{prefix}disable_affinity_api", raw.get("disable_affinity_api", False)
        ),
        output_path=output_path.strip(),
    )
