"""Reading `trace_view.json` (Chrome-trace JSON array written by the Ascend PyTorch Profiler).

The file is parsed once per rank and immediately reduced to the few columns a table needs; the
parsed event list is dropped as soon as the reduction is done.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError

OVERLAP_PROCESS = "Overlap Analysis"
OVERLAP_NAMES = ("Computing", "Communication", "Communication(Not Overlapped)", "Free")
_STEP = re.compile(r"^ProfilerStep#(\d+)$")


def load_events(path: Path) -> list[dict[str, Any]]:
    """The trace's event list; InputError naming the file when it is not a valid trace."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        byte = len(text[: exc.pos].encode("utf-8"))
        raise InputError(f"{path}: truncated or invalid JSON at byte {byte}") from None
    if isinstance(data, dict) and isinstance(data.get("traceEvents"), list):
        data = data["traceEvents"]
    if not isinstance(data, list):
        raise InputError(f"{path}: not a Chrome trace (expected a JSON array of events)")
    return data


@dataclass(frozen=True)
class OverlapTrace:
    """The Overlap Analysis slices and the ProfilerStep windows of one trace (µs)."""

    names: list[str]
    starts: list[float]
    durations: list[float]
    steps: list[tuple[int, float, float]]  # (step, start, end), sorted by start
    has_overlap_process: bool


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def extract_overlap(events: list[dict[str, Any]]) -> OverlapTrace:
    """One pass over the events keeping only Overlap Analysis slices and ProfilerStep#N events."""
    process_names: dict[Any, str] = {}
    candidates: list[tuple[Any, str, float, float]] = []
    steps: dict[int, tuple[bool, float, float]] = {}
    for event in events:
        if not isinstance(event, dict):
            continue
        name = event.get("name")
        phase = event.get("ph")
        if phase == "M":
            if name == "process_name" and isinstance(event.get("args"), dict):
                process_names[event.get("pid")] = str(event["args"].get("name", ""))
            continue
        if phase != "X" or not isinstance(name, str):
            continue
        if name in OVERLAP_NAMES:
            ts, dur = _number(event.get("ts")), _number(event.get("dur"))
            if ts is not None and dur is not None:
                candidates.append((event.get("pid"), name, ts, dur))
        elif name.startswith("ProfilerStep#"):
            match = _STEP.match(name)
            ts, dur = _number(event.get("ts")), _number(event.get("dur"))
            if match and ts is not None and dur is not None:
                # A step may be recorded on several tracks; the host cpu_op is the reference one.
                is_cpu = event.get("cat") == "cpu_op"
                step = int(match.group(1))
                if step not in steps or (is_cpu and not steps[step][0]):
                    steps[step] = (is_cpu, ts, ts + dur)
    overlap_pids = {pid for pid, pname in process_names.items() if pname == OVERLAP_PROCESS}
    kept = [c for c in candidates if c[0] in overlap_pids]
    kept.sort(key=lambda c: c[2])
    windows = sorted(((s, start, end) for s, (_, start, end) in steps.items()), key=lambda w: w[1])
    return OverlapTrace(
        names=[c[1] for c in kept],
        starts=[c[2] for c in kept],
        durations=[c[3] for c in kept],
        steps=windows,
        has_overlap_process=bool(overlap_pids),
    )
