"""The report: one immutable-ish object rendered to JSON, HTML and XLSX."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..model import DeviceCount

SCHEMA_VERSION = 1
TOOL_NAME = "performance-advisor"
# The overall picture: shown in the Overall section, never a competing row in the ranking.
SUMMARY_CHECK = "overall.summary"
PRIORITIES = ("high", "medium", "low")
# How an estimated gain was obtained (docs/design.md "Priority"): time the profile shows being lost,
# which the fix removes, a model's figure against an ideal (an upper bound, never high priority), or
# both (high only when the measured part alone is).
GAIN_BASES = ("measured", "upper_bound", "partly_measured")


@dataclass
class Evidence:
    """A table backing a finding (one XLSX sheet, one HTML table)."""

    name: str
    columns: list[str]
    rows: list[list[Any]]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "columns": list(self.columns), "rows": [plain(r) for r in self.rows]}


@dataclass
class Finding:
    check: str
    dimension: str
    priority: str
    title: str
    description: str
    suggestions: list[str] = field(default_factory=list)
    ranks: list[int] = field(default_factory=list)
    step: int | None = None
    estimated_gain_us: float | None = None
    evidence: list[Evidence] = field(default_factory=list)
    # estimated_gain_us / the step time it was judged against (the number the ranking shows).
    share_of_step: float | None = None
    gain_basis: str | None = None
    # Findings whose gain this one's cause accounts for are listed under it, not ranked again: the
    # check ids of the findings that explain this one (empty: it is a cause of its own).
    counted_in: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.priority not in PRIORITIES:
            raise ValueError(f"priority must be one of {PRIORITIES}; got {self.priority!r}")
        if self.gain_basis is not None and self.gain_basis not in GAIN_BASES:
            raise ValueError(f"gain_basis must be one of {GAIN_BASES}; got {self.gain_basis!r}")

    @property
    def ranked(self) -> bool:
        """Whether the finding is a row of its own in "what to fix first": a cause with a gain."""
        return not self.counted_in and self.check != SUMMARY_CHECK

    def to_json(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "dimension": self.dimension,
            "priority": self.priority,
            "title": self.title,
            "description": self.description,
            "suggestions": list(self.suggestions),
            "ranks": [int(r) for r in self.ranks],
            "step": plain(self.step),
            "estimated_gain_us": plain(self.estimated_gain_us),
            "share_of_step": plain(self.share_of_step),
            "gain_basis": self.gain_basis,
            "counted_in": list(self.counted_in),
            "evidence": [e.to_json() for e in self.evidence],
        }


@dataclass
class CheckNote:
    """A selected check that gave no findings, and why (one line, in the report's language)."""

    check: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"check": self.check, "reason": self.reason}


class NotEvaluated(CheckNote):
    """The check applies but could not answer on this data (a table missing, a failure)."""


class NotApplicable(CheckNote):
    """The check does not apply to the profile's device ("not applicable to GPU traces"): not run."""


@dataclass
class InputInfo:
    path: str
    compare_path: str | None
    kind: str
    export: str
    ranks: list[int]
    steps: list[int]
    cann_version: str | None
    torch_version: str | None
    # Added within schema_version 1 (docs/architecture.md §3.2): the format that read the data
    # (ProfileSet.format), the profile's device kind (ProfileSet.device: npu, gpu, cpu), its ranks
    # counted by device and model, and every version the data records, by component.
    format: str = ""
    device: str = ""
    devices: list[DeviceCount] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "compare_path": self.compare_path,
            "kind": self.kind,
            "export": self.export,
            "ranks": list(self.ranks),
            "steps": list(self.steps),
            "cann_version": self.cann_version,
            "torch_version": self.torch_version,
            "format": self.format,
            "device": self.device,
            "devices": [d.to_json() for d in self.devices],
            "versions": dict(self.versions),
        }


@dataclass
class Report:
    """Everything one analysis produced. `to_json()` is the schema_version 1 contract."""

    input: InputInfo
    tool_version: str
    summary: dict[str, Any] = field(default_factory=lambda: {"per_rank": []})
    findings: list[Finding] = field(default_factory=list)
    not_evaluated: list[NotEvaluated] = field(default_factory=list)
    # Listed once each; in the JSON only when there are any (an NPU profile has none).
    not_applicable: list[NotApplicable] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=lambda: {"load": 0.0, "checks": 0.0, "render": 0.0})
    # What changed the result (a rank folder left out, a table not read): in every output.
    warnings: list[str] = field(default_factory=list)
    # Not part of the JSON contract; shown in the HTML header.
    generated: datetime = field(default_factory=lambda: datetime.now().astimezone())
    language: str = "en"
    dimensions: tuple[str, ...] = ()  # the dimensions the user selected
    checked_dimensions: tuple[str, ...] = ()  # the dimensions that have at least one check that ran
    version_hints: dict[str, str] = field(default_factory=dict)
    # Not part of the JSON contract: the per-rank tables the cluster checks read, by rank and table
    # name (step_trace always; the communication tables when the cluster checks ran), as the engine
    # handed them to the checks. The Python API's metrics (advisor.api.Metrics) are these.
    rank_tables: dict[int, dict[str, Any]] = field(default_factory=dict, repr=False, compare=False)

    def sorted_findings(self) -> list[Finding]:
        """By priority, then the largest estimated gain first (findings without one last): a large
        upper bound never ranks above a measured loss that is worth more of the user's time."""
        return sorted(
            self.findings,
            key=lambda f: (
                PRIORITIES.index(f.priority),
                f.estimated_gain_us is None,
                -(f.estimated_gain_us or 0.0),
                f.check,
            ),
        )

    def _description(self) -> str:
        from .messages import Messages, describe_input

        return describe_input(Messages(self.language), self.input)

    def to_json(self) -> dict[str, Any]:
        out = {
            "schema_version": SCHEMA_VERSION,
            "tool": {"name": TOOL_NAME, "version": self.tool_version},
            "input": {**self.input.to_json(), "description": self._description()},
            "summary": plain(self.summary),
            "findings": [f.to_json() for f in self.sorted_findings()],
            "not_evaluated": [n.to_json() for n in self.not_evaluated],
            "timings_s": {
                k: round(float(self.timings_s.get(k, 0.0)), 3) for k in ("load", "checks", "render")
            },
            "warnings": list(self.warnings),
        }
        if self.not_applicable:
            out["not_applicable"] = [n.to_json() for n in self.not_applicable]
        return out


def plain(value: Any) -> Any:
    """JSON-safe Python values: NaN/inf/NA -> None, numpy scalars -> int/float, tuples -> lists."""
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "item"):  # numpy / pandas scalars
        try:
            return plain(value.item())
        except (TypeError, ValueError):
            pass
    try:
        import pandas as pd

        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return str(value)
