"""ground_truth.json for Kineto traces: what was built in, and what it costs as the events show it.

Every number is measured from the simulated events (ns, written as µs), not taken from the plan:
- device idle: time in a window when no kernel, copy or collective runs on the rank's GPU;
- a host stall (`schedule.host_sync`, `schedule.gc`, `dataloader.slow`) costs the GPU idle time from
  its start until the first GPU work after it ends (the GPU resumes only once the host launches);
- `schedule.launch_overhead` costs the idle time between the first and last tiny kernel;
- `memory.pageable_memcpy` costs the copy's time beyond the same bytes at pinned bandwidth;
- `communication.exposed` costs the step's collective time that no compute kernel overlaps
  (on the CPU: the main thread's wait for the gloo work after the backward);
- `cluster.slow_rank` costs the others the slow rank's extra compute time (their step waits for
  it); `wait_in_collectives_us` adds how long they sat inside collectives, which is more, as
  their waits for several buckets overlap their own compute.
On device "cpu" the CPU is the device: a stall costs its own length.
"""

from __future__ import annotations

import bisect
from dataclasses import asdict
from typing import Any

from .spec import KINETO_COLLATERAL, KINETO_FAULTS, KinetoSpec
from .timeline import RankState

Intervals = list[tuple[float, float]]  # ns here; the tests pass µs read back from the files
_STALLS = ("schedule.host_sync", "schedule.gc", "dataloader.slow")


def merged(intervals: Intervals) -> Intervals:
    out: Intervals = []
    for start, end in sorted(intervals):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def covered(union: Intervals, start: float, end: float) -> float:
    """How much of [start, end) `union` (merged) covers."""
    return sum(max(0, min(end, b) - max(start, a)) for a, b in union)


def _us(ns: float) -> float:
    return round(ns / 1000, 3)


class RankMeasure:
    """One rank's GPU activity, merged once, and the measures taken from it."""

    def __init__(self, state: RankState) -> None:
        self.state = state
        self.busy = merged([(g.start, g.end) for g in state.gpu])
        self.compute = merged([(g.start, g.end) for g in state.gpu if g.role != "comm"])
        self.comm = merged([(g.start, g.end) for g in state.gpu if g.role == "comm"])
        self.starts = sorted(g.start for g in state.gpu)

    def idle(self, start: float, end: float) -> float:
        return max(0, end - start - covered(self.busy, start, end))

    def idle_until_resumed(self, start: float, end: float) -> float:
        """GPU idle from `start` until the first GPU work that starts at or after `end`."""
        index = bisect.bisect_left(self.starts, end)
        resumed = self.starts[index] if index < len(self.starts) else end
        return self.idle(start, resumed)

    def exposed_comm(self, start: float, end: float) -> float:
        hidden = sum(
            covered(self.compute, max(a, start), min(b, end)) for a, b in self.comm if a < end and b > start
        )
        return covered(self.comm, start, end) - hidden

    def lost(self, fault: str, step: int) -> float:
        state = self.state
        windows = state.windows.get(fault, {}).get(step, [])
        if not state.cuda or fault == "memory.pageable_memcpy":
            return sum(end - start for start, end in windows)
        if fault == "communication.exposed":
            return self.exposed_comm(*state.steps[step])
        if fault in _STALLS:
            return sum(self.idle_until_resumed(start, end) for start, end in windows)
        return sum(self.idle(start, end) for start, end in windows)  # launch overhead

    def step_summary(self, step: int) -> dict[str, Any]:
        state = self.state
        start, end = state.steps[step]
        summary: dict[str, Any] = {
            "step_us": _us(end - start),
            "collective_wait_us": _us(state.waits.get(step, 0)),
        }
        if state.cuda:
            summary["gpu_busy_share"] = round(covered(self.busy, start, end) / (end - start), 4)
            summary["exposed_comm_us"] = _us(self.exposed_comm(start, end))
            benign = state.benign_sync_windows.get(step, [])
            summary["logging_sync_idle_us"] = _us(sum(self.idle_until_resumed(a, b) for a, b in benign))
        return summary


def build_truth(spec: KinetoSpec, states: list[RankState], files: dict[str, int]) -> dict[str, Any]:
    measures = {state.rank: RankMeasure(state) for state in states}
    injected = []
    for fault in spec.inject:
        ranks = spec.fault_ranks(fault)
        # The slow rank's cost lands on the others: they wait for it.
        paying = [r for r in range(spec.ranks) if r not in ranks] if fault == "cluster.slow_rank" else ranks
        steps = spec.fault_steps(fault)
        if fault == "cluster.slow_rank":
            extra = {s: max(states[r].extra_compute.get(s, 0) for r in ranks) for s in steps}
            lost_ns = {r: {s: extra[s] for s in steps} for r in paying}
        else:
            lost_ns = {r: {s: measures[r].lost(fault, s) for s in steps} for r in paying}
        lost = {str(r): {str(s): _us(ns) for s, ns in by_step.items()} for r, by_step in lost_ns.items()}
        entry: dict[str, Any] = {
            "check": fault,
            "description": KINETO_FAULTS[fault],
            "ranks": list(ranks),
            "steps": list(steps),
            "collateral": list(KINETO_COLLATERAL[fault]),
            "expected": {
                "lost_us": lost,
                "lost_us_per_step": {r: round(sum(v.values()) / len(v), 3) for r, v in lost.items()},
                "share_of_step": {
                    str(r): round(
                        sum(lost_ns[r].values())
                        / sum(states[r].steps[s][1] - states[r].steps[s][0] for s in steps),
                        4,
                    )
                    for r in paying
                },
            },
        }
        # A fault can hide behind another (tiny kernels queued behind an exposed all-reduce cost
        # nothing): then no check should report it.
        entry["expected"]["visible"] = any(ns > 0 for by_step in lost_ns.values() for ns in by_step.values())
        if fault == "cluster.slow_rank":
            entry["expected"]["slow_ranks_extra_compute_us"] = {
                str(r): {str(s): _us(states[r].extra_compute.get(s, 0)) for s in steps} for r in ranks
            }
            entry["expected"]["wait_in_collectives_us"] = {
                str(r): {str(s): _us(states[r].waits.get(s, 0)) for s in steps} for r in paying
            }
        if fault == "schedule.gc":
            entry["expected"]["gc_events_written"] = spec.python_gc_events and spec.schema == "new"
        injected.append(entry)
    return {
        "format": "kineto",
        "seed": spec.seed,
        "spec": asdict(spec),
        "healthy": not spec.inject,
        "files": files,
        "steps": list(spec.steps),
        "ranks": {
            str(state.rank): {
                "pid": state.pid,
                "device": state.device_index if state.cuda else None,
                "steps": {str(s): measures[state.rank].step_summary(s) for s in spec.steps},
            }
            for state in states
        },
        "injected": injected,
    }
