"""One run per analysis: the ranks found under a path (Ascend rank folders, PyTorch profiler traces)
must come from a single profiling run.

A folder can hold the ranks of several runs: `profiling_dir1/` and `profiling_dir1_baseline/` side by
side, a rerun written into the same folder, or traces of unrelated benchmarks collected together. Read
as one cluster they would give a report built from rank 0 of one run and rank 1 of the other, and
compare ranks that never ran together, so discovery refuses them. Ranks are of one run when:

- their rank ids do not repeat. The one repeat accepted is the profiling windows of one process: with
  a schedule that repeats, the profiler writes a new folder or file per window with the same process
  name (torch_npu's `{worker}_{pid}_{timestamp}_ascend_pt`, tensorboard_trace_handler's
  `{worker}.{timestamp}.pt.trace.json`); the latest window of each rank is analysed, with a warning;
- their profiler configurations agree, field by field where both record one;
- their collections started at most MAX_START_GAP_NS after the one before (start times sorted, so a
  run is a chain of starts without a larger gap). The ranks of one job open each window at the same
  step, which collectives keep within seconds of each other across ranks; a slow rank or an
  unsynchronised host clock may add minutes. An hour never splits a real job, and still tells apart
  runs whose rank ids cannot (a job without distribution records no rank id);
- across sibling subfolders (one folder per node or worker, one level down), they record rank ids and
  these do not overlap: ranks without rank ids in separate subfolders are separate runs.

Each format says what its ranks record (`RunMember`): Ascend rank folders in `ascend_common/runs.py`,
PyTorch profiler traces in `kineto/discover.py`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from ..errors import MixedRunsError

MAX_START_GAP_NS = 3600 * 1_000_000_000
MAX_RUNS_LISTED = 5
MAX_FOLDERS_LISTED = 2
Span = tuple[int, int]  # earliest and latest start, ns


class RunMember(Protocol):
    """A rank as discovery found it (a rank folder, a trace file), with what tells its run apart."""

    @property
    def path(self) -> Path: ...

    @property
    def rank(self) -> int | None:
        """The rank id it records (None: none)."""

    @property
    def process(self) -> str | None:
        """The same in every profiling window of one process (None: not known)."""

    @property
    def start_ns(self) -> int | None:
        """When its collection started, ns since the epoch (None: not known)."""

    @property
    def config(self) -> dict[str, object]:
        """The profiler configuration it records, by field (fields it does not record left out)."""


Member = TypeVar("Member", bound=RunMember)


def _starts(member: RunMember) -> Span | None:
    return None if member.start_ns is None else (member.start_ns, member.start_ns)


@dataclass
class _Run(Generic[Member]):
    folders: list[Member] = field(default_factory=list)
    ranks: set[int] = field(default_factory=set)
    config: dict[str, object] = field(default_factory=dict)
    starts: Span | None = None

    def add(self, folders: list[Member]) -> None:
        for folder in folders:
            self.folders.append(folder)
            if folder.rank is not None:
                self.ranks.add(folder.rank)
            self.config = {**folder.config, **self.config}
            self.starts = _union(self.starts, _starts(folder))

    def agrees(self, config: dict[str, object], starts: Span | None) -> bool:
        """The same recorded configuration, and no gap over MAX_START_GAP_NS between the starts."""
        if any(self.config.get(name, value) != value for name, value in config.items()):
            return False
        return _gap_ns(self.starts, starts) <= MAX_START_GAP_NS

    def accepts(self, folder: Member) -> bool:
        """`folder` (from the same parent folder) may be a rank of this run."""
        fresh = folder.rank is None or folder.rank not in self.ranks
        return fresh and self.agrees(folder.config, _starts(folder))

    def joins(self, other: _Run[Member]) -> bool:
        """`other` (from a sibling subfolder) holds further ranks of this run."""
        known = len(self.ranks) == len(self.folders) and len(other.ranks) == len(other.folders)
        return known and not self.ranks & other.ranks and self.agrees(other.config, other.starts)


def _union(span: Span | None, other: Span | None) -> Span | None:
    if span is None or other is None:
        return span or other
    return min(span[0], other[0]), max(span[1], other[1])


def _gap_ns(span: Span | None, other: Span | None) -> int:
    """How long after the one span of starts the other began (0 when they overlap or one is unknown)."""
    if span is None or other is None:
        return 0
    return max(0, max(span[0], other[0]) - min(span[1], other[1]))


def single_run(label: str, root: Path, folders: list[Member], warnings: list[str], what: str) -> list[Member]:
    """The ranks (`what` they are: "rank folders", "traces") of the one run under `root`, the latest
    window of each process.

    Raises MixedRunsError, naming the runs found (relative to `root`), when there are several.
    """
    by_parent: dict[Path, list[Member]] = {}
    for folder in folders:
        by_parent.setdefault(folder.path.parent, []).append(folder)
    runs: list[_Run[Member]] = []
    for siblings in by_parent.values():
        for run in _runs_in_one_folder(_latest_windows(root, siblings, warnings)):
            target = next((r for r in runs if r.joins(run)), None)
            if target is None:
                runs.append(run)
            else:
                target.add(run.folders)
    if len(runs) > 1:
        raise MixedRunsError(_refusal(label, root, runs, what))
    return sorted(runs[0].folders, key=lambda f: f.path) if runs else []


def numbered(one_run: list[Member]) -> tuple[dict[int, Member], list[tuple[int, Member]]]:
    """The ranks of one run by rank id, in rank order: each its recorded id, the ones that record none
    the first free ids in their order (also returned as (id, member), for the format's warning)."""
    by_rank = {member.rank: member for member in one_run if member.rank is not None}
    guessed = []
    next_free = 0
    for member in one_run:
        if member.rank is not None:
            continue
        while next_free in by_rank:
            next_free += 1
        by_rank[next_free] = member
        guessed.append((next_free, member))
    return dict(sorted(by_rank.items())), guessed


def _latest_windows(root: Path, folders: list[Member], warnings: list[str]) -> list[Member]:
    """One folder per (process, rank): the latest profiling window, saying which were left out."""
    windows: dict[tuple[str, int | None], list[Member]] = {}
    kept = []
    for folder in folders:
        process = folder.process
        if process is None:
            kept.append(folder)
        else:
            windows.setdefault((process, folder.rank), []).append(folder)
    for (process, rank), group in windows.items():
        group.sort(key=lambda f: (f.start_ns or 0, f.path))
        kept.append(group[-1])
        if len(group) > 1:
            who = f"rank {rank} ({process})" if rank is not None else process
            ignored = ", ".join(_relative(root, f.path) for f in group[:-1])
            warnings.append(
                f"{who}: {len(group)} profiling windows of one process; analysed the latest, "
                f"{_relative(root, group[-1].path)}; ignored {ignored}"
            )
    return kept


def _runs_in_one_folder(folders: list[Member]) -> list[_Run[Member]]:
    """Rank folders of one parent folder into runs: in order of start, each joins the first run that
    lacks its rank and agrees with its configuration and start."""
    runs: list[_Run[Member]] = []
    for folder in sorted(folders, key=lambda f: (f.start_ns is None, f.start_ns or 0, f.path)):
        run = next((r for r in runs if r.accepts(folder)), None)
        if run is None:
            run = _Run()
            runs.append(run)
        run.add([folder])
    return runs


def _relative(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)


def _rank_text(ranks: set[int]) -> str:
    if not ranks:
        return "no rank id recorded"
    low, high = min(ranks), max(ranks)
    if len(ranks) == 1:
        return f"rank {low}"
    if high - low + 1 == len(ranks):
        return f"ranks {low}–{high}"
    return f"{len(ranks)} ranks from {low} to {high}"


def _start_text(start_ns: int) -> str:
    moment = datetime.fromtimestamp(start_ns / 1e9, tz=timezone.utc)
    return f"started {moment:%Y-%m-%d %H:%M:%S} UTC"


def _refusal(label: str, root: Path, runs: list[_Run[Member]], what: str) -> str:
    """One line: which runs, where each is, why they differ and how to analyse one."""
    parents = [{f.path.parent for f in run.folders} for run in runs]
    # Each run in subfolders of its own: the user can name a run's folder as PATH.
    separate = all(root not in p for p in parents) and sum(map(len, parents)) == len(set().union(*parents))
    fields = dict.fromkeys(name for run in runs for name in run.config)
    differing = [name for name in fields if len({repr(r.config[name]) for r in runs if name in r.config}) > 1]
    described = []
    for run, where in zip(runs[:MAX_RUNS_LISTED], parents, strict=False):
        if separate:
            place = ", ".join(f"{_relative(root, p)}/" for p in sorted(where))
        else:
            names = sorted(_relative(root, f.path) for f in run.folders)
            more = len(names) - MAX_FOLDERS_LISTED
            place = ", ".join(names[:MAX_FOLDERS_LISTED]) + (f" and {more} more" if more > 0 else "")
        bits = [_rank_text(run.ranks)]
        bits += [f"{name} {_value_text(run.config[name])}" for name in differing if name in run.config]
        if run.starts is not None:
            bits.append(_start_text(run.starts[0]))
        described.append(f"{place} ({', '.join(bits)})")
    if len(runs) > MAX_RUNS_LISTED:
        described.append(f"and {len(runs) - MAX_RUNS_LISTED} more")
    if separate:
        example = _relative(root, min(parents[0]))
        how = f"give its folder as PATH (e.g. {os.path.join(label, example)}) and another run's as --compare"
    else:
        how = (
            f"move each run's {what} into a folder of its own, then give one as PATH and another as --compare"
        )
    return (
        f"{label}: holds the {what} of {len(runs)} different profiling runs{_why(runs, differing)}: "
        f"{'; '.join(described)}; analyse one run at a time: {how}"
    )


def _value_text(value: object) -> str:
    return "+".join(map(str, value)) if isinstance(value, tuple) else str(value)


def _why(runs: list[_Run[Member]], differing: list[str]) -> str:
    reasons = []
    ranks = [run.ranks for run in runs]
    if any(a & b for i, a in enumerate(ranks) for b in ranks[i + 1 :]):
        reasons.append("the same rank ids")
    if differing:
        reasons.append(f"different {', '.join(differing)}")
    if any(_gap_ns(a.starts, b.starts) > MAX_START_GAP_NS for i, a in enumerate(runs) for b in runs[i + 1 :]):
        reasons.append("started over an hour apart")
    if not reasons:  # only what they lack tells them apart: rank ids, in separate subfolders
        reasons.append("no rank ids recorded")
    return f" ({'; '.join(reasons)})"
