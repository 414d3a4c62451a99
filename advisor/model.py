"""The format-neutral domain model: what a profile holds, whatever wrote it.

Formats (`advisor.formats`) build these objects; the engine, the checks, the report and the server
read them. Nothing here knows a folder layout or a file name, and this module imports no reader.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .ranges import number_ranges

DEVICES = ("npu", "gpu", "cpu")
# ProfileSet.format when its ranks are read by different formats (e.g. text and db exports).
MIXED = "mixed"


@dataclass(frozen=True)
class RankInfo:
    """One rank: where its data is, which format reads it and which steps it profiled."""

    rank: int
    path: Path
    format: str  # the name of the format that reads this rank (advisor.formats), e.g. "ascend_text"
    steps: tuple[int, ...] = ()
    files: tuple[str, ...] = ()  # paths relative to `path`, "/"-separated
    # What the data records about the software that wrote it, by component: "cann", "torch_npu", ….
    versions: dict[str, str] = field(default_factory=dict, hash=False)
    level: str | None = None  # profiler level as recorded (Level0/Level1/Level2), None if not recorded
    framework: str = "pytorch"  # "pytorch", "mindspore"
    device: str = "npu"  # one of DEVICES
    device_type: str | None = None  # the device model as recorded, e.g. "Ascend910B"


@dataclass
class ProfileSet:
    """What a format's discovery found under a user path."""

    root: Path
    format: str  # the ranks' format name, or MIXED
    ranks: list[RankInfo]
    steps: list[int]
    framework: str = "pytorch"
    device: str = "npu"
    versions: dict[str, str] = field(default_factory=dict)  # the ranks' versions where they agree
    warnings: list[str] = field(default_factory=list)
    # Pipeline-parallel stages (global ranks per stage, first stage first) and process groups
    # (name -> global ranks), as the data records them; empty when it does not.
    stages: list[tuple[int, ...]] = field(default_factory=list)
    groups: dict[str, tuple[int, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class DeviceCount:
    """How many of a profile's ranks ran on one kind and model of device."""

    device: str  # one of DEVICES
    type: str | None  # the model as recorded ("NVIDIA A100-SXM4-80GB"), None when not recorded
    ranks: int

    def to_json(self) -> dict[str, str | int | None]:
        return {"device": self.device, "type": self.type, "ranks": self.ranks}


def device_counts(ranks: list[RankInfo]) -> list[DeviceCount]:
    """The ranks counted by device kind and model, in the order the ranks first name them."""
    counts: dict[tuple[str, str | None], int] = {}
    for rank in ranks:
        key = (rank.device, rank.device_type or None)
        counts[key] = counts.get(key, 0) + 1
    return [DeviceCount(device, model, n) for (device, model), n in counts.items()]


def describe_steps(steps: list[int]) -> str:
    """'step 50', 'steps 12–14', 'steps 1, 3–7' or 'no step markers'."""
    if not steps:
        return "no step markers"
    return f"step{'s' if len(steps) > 1 else ''} {number_ranges(steps)}"
