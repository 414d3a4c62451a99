"""Find out what a folder holds: one rank or a cluster of Ascend PyTorch Profiler rank folders.

Discovery only lists files and reads a few small JSON files; the big tables are read later by the
loaders in `tables.py`, once per rank, only when a selected check needs them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InputError, cannot
from ..ranges import number_ranges
from .runs import RankFolder, single_run
from .trace_json import mapped_windows

if TYPE_CHECKING:
    from .metadata import RankMetadata

RANK_SUFFIX = "_ascend_pt"
MINDSPORE_SUFFIX = "_ascend_ms"
OUTPUT_DIR = "ASCEND_PROFILER_OUTPUT"
STEP_TRACE_CSV = "step_trace_time.csv"
TRACE_VIEW_JSON = "trace_view.json"

DB_FILE = re.compile(r"^ascend_(?:pytorch|mindspore)_profiler(_\d+)?\.db$")
PROFILER_INFO = re.compile(r"^profiler_info(?:_(-?\d+))?\.json$")
# profiler_info, profiler_metadata and PROF_*/device_*/info.json.* hold a few KB; they are read whole.
MAX_METADATA_BYTES = 16 << 20
# Only names that plainly say "rank N" (or are just digits) give a rank id: the digits of a
# canonical `{host}_{pid}_{timestamp}_ascend_pt` name are a pid and a time, not a rank.
_RANK_IN_NAME = re.compile(r"(?:^|[_\-.])rank[_\-]?(\d+)(?:[_\-.]|$)", re.IGNORECASE)
_DIGITS_NAME = re.compile(r"^(\d+)$")
_STEP_NAME = re.compile(rb'"name"\s*:\s*"ProfilerStep#(\d+)"')


@dataclass(frozen=True)
class RankInfo:
    """One rank folder: where it is, what it exports and which steps it profiled."""

    rank: int
    path: Path
    export: str  # "text" | "db"
    steps: tuple[int, ...] = ()
    files: tuple[str, ...] = ()  # paths relative to the rank folder, "/"-separated
    cann_version: str | None = None
    torch_version: str | None = None
    level: str | None = None  # profiler_level as recorded (Level0/Level1/Level2), None if not recorded
    framework: str = "pytorch"  # "pytorch" (*_ascend_pt) or "mindspore" (*_ascend_ms)
    device: str | None = None  # device type as recorded (db NPU_INFO), e.g. "Ascend910B"

    def file(self, name: str) -> Path | None:
        """The path of ASCEND_PROFILER_OUTPUT/`name` when the rank has it."""
        rel = f"{OUTPUT_DIR}/{name}"
        return self.path / OUTPUT_DIR / name if rel in self.files else None


@dataclass
class ProfileSet:
    """What `discover` found under a user path."""

    root: Path
    kind: str
    export: str  # "text" | "db" | "mixed"
    ranks: list[RankInfo]
    steps: list[int]
    cann_version: str | None = None
    torch_version: str | None = None
    warnings: list[str] = field(default_factory=list)
    # Pipeline-parallel stages (global ranks per stage, first stage first) and process groups
    # (name -> global ranks), from profiler_metadata.json; empty when the run did not record them.
    stages: list[tuple[int, ...]] = field(default_factory=list)
    groups: dict[str, tuple[int, ...]] = field(default_factory=dict)
    # What the profile was recorded on: "npu" (every Ascend format), "gpu" or "cpu" (checks.DEVICES).
    device: str = "npu"

    def describe(self) -> str:
        """'2 ranks, text export, steps 12–14' in English, for the server's inspect answer; the report
        writes its own from the message catalogue, in its language (report.html.profile_line)."""
        n = len(self.ranks)
        parts = [f"{n} rank{'s' if n != 1 else ''}", f"{self.export} export", describe_steps(self.steps)]
        return ", ".join(parts)


def describe_steps(steps: list[int]) -> str:
    """'step 50', 'steps 12–14', 'steps 1, 3–7' or 'no step markers'."""
    if not steps:
        return "no step markers"
    return f"step{'s' if len(steps) > 1 else ''} {number_ranges(steps)}"


def discover(path: str | Path) -> ProfileSet:
    """Classify `path` (rank folder, cluster root, or a path inside a rank folder) and list its ranks."""
    given = Path(path).expanduser()
    if not given.exists():
        raise InputError(f"{given}: no such file or directory")
    if not given.is_dir():
        raise InputError(
            f"{given}: not a directory (expected an *{RANK_SUFFIX} rank folder or a folder of them)"
        )
    root = given.resolve()

    for candidate in (root, *root.parents):
        if candidate.name.endswith((RANK_SUFFIX, MINDSPORE_SUFFIX)):
            return _build(root, [candidate])
    if root.name == OUTPUT_DIR:
        return _build(root, [root.parent])
    if (root / OUTPUT_DIR).is_dir():
        return _build(root, [root])

    rank_dirs, ms_dirs = _find_rank_dirs(root)
    if rank_dirs and ms_dirs:
        raise InputError(
            f"{given}: holds both PyTorch (*{RANK_SUFFIX}) and MindSpore (*{MINDSPORE_SUFFIX}) rank folders; "
            "analyse them separately"
        )
    if not rank_dirs and not ms_dirs:
        summary = _from_cluster_output(root)
        if summary is not None:
            return summary
        raise InputError(
            f"{given}: not profiling data: expected *{RANK_SUFFIX} rank folders or {OUTPUT_DIR}, "
            f"found {_describe_contents(root)}"
        )
    return _build(root, rank_dirs or ms_dirs, given)


def _from_cluster_output(root: Path) -> ProfileSet | None:
    """A folder with only msprof-analyze's cluster_analysis_output/: per-rank step and communication
    summaries without the rank folders (export "cluster")."""
    from .cluster_output import find_cluster_output, read_cluster_output  # it imports this module

    folder = find_cluster_output(root)
    if folder is None:
        return None
    output = read_cluster_output(folder)
    files = tuple(sorted(p.name for p in folder.iterdir() if p.is_file()))
    ranks = []
    for rank in output.ranks:
        table = output.step_trace.get(rank)
        steps = tuple(sorted({int(s) for s in table["step"].dropna()})) if table is not None else ()
        ranks.append(RankInfo(rank, folder, "cluster", steps, files))
    if not ranks:
        return None
    steps = sorted({s for r in ranks for s in r.steps})
    stages = sorted(output.stage_step_trace) if len(output.stage_step_trace) > 1 else []
    warnings = [f"{folder}: only the cluster summaries of msprof-analyze (no rank folders): step and "
                "communication tables only"]  # fmt: skip
    return ProfileSet(root, "cluster_output", "cluster", ranks, steps, None, None, warnings, stages)


def _is_rank_dir(path: Path) -> bool:
    if path.name.endswith(MINDSPORE_SUFFIX):
        return False  # listed separately: a folder may not mix frameworks
    return path.name.endswith(RANK_SUFFIX) or (path / OUTPUT_DIR).is_dir()


def _subdirs(path: Path) -> list[Path]:
    try:
        return sorted(p for p in path.iterdir() if p.is_dir())
    except OSError as exc:
        raise InputError(f"{path}: cannot list the folder ({exc.strerror})") from None


def _find_rank_dirs(root: Path) -> tuple[list[Path], list[Path]]:
    """Rank folders among the children, else among the grandchildren (e.g. one folder per node)."""
    for level in (_subdirs(root), [g for child in _subdirs(root) for g in _subdirs(child)]):
        ranks = [p for p in level if _is_rank_dir(p)]
        ms = [p for p in level if p.name.endswith(MINDSPORE_SUFFIX)]
        if ranks or ms:
            return ranks, ms
    return [], []


def _describe_contents(root: Path) -> str:
    entries = list(root.iterdir())
    if not entries:
        return "an empty folder"
    n_dirs = sum(1 for e in entries if e.is_dir())
    n_files = len(entries) - n_dirs
    bits = []
    if n_dirs:
        names = ", ".join(sorted(e.name for e in entries if e.is_dir())[:3])
        more = ", …" if n_dirs > 3 else ""
        bits.append(f"{n_dirs} folder{'s' if n_dirs != 1 else ''} ({names}{more})")
    if n_files:
        bits.append(f"{n_files} file{'s' if n_files != 1 else ''}")
    return ", ".join(bits) + ", no rank folders"


def read_small_json(path: Path) -> Any:
    """An optional metadata file's JSON (invalid UTF-8 replaced); None when it is unreadable, invalid
    or over MAX_METADATA_BYTES: a broken file just tells us nothing."""
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_METADATA_BYTES + 1)
        if len(data) > MAX_METADATA_BYTES:
            return None
        return json.loads(data.decode("utf-8-sig", errors="replace"))
    except (OSError, ValueError, RecursionError):
        return None


def _list_files(rank_dir: Path) -> tuple[str, ...]:
    out_dir = rank_dir / OUTPUT_DIR
    folder = rank_dir
    try:
        files = [p.name for p in rank_dir.iterdir() if p.is_file()]
        if out_dir.is_dir():
            folder = out_dir
            files += [f"{OUTPUT_DIR}/{p.name}" for p in out_dir.iterdir() if p.is_file()]
    except OSError as exc:
        raise InputError(cannot("read", folder, exc)) from None
    return tuple(sorted(files))


def _rank_from_files(rank_dir: Path, files: Iterable[str]) -> int | None:
    for name in files:
        match = PROFILER_INFO.match(name)
        if match and match.group(1) is not None and int(match.group(1)) >= 0:
            return int(match.group(1))
    for name in (*[f for f in files if PROFILER_INFO.match(f)], "profiler_metadata.json"):
        data = read_small_json(rank_dir / name) if name in files else None
        if isinstance(data, dict):
            value = data.get("rank_id")
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                return value
            if isinstance(value, str) and value.strip().isdigit():
                return int(value)
    stem = rank_dir.name.removesuffix(RANK_SUFFIX)
    match = _RANK_IN_NAME.search(stem) or _DIGITS_NAME.match(stem)
    return int(match.group(1)) if match else None


def _steps_from_csv(path: Path) -> list[int]:
    from .csvread import read_csv  # local import: discovery stays cheap when only listing

    header, rows = read_csv(path)
    key = next((i for i, h in enumerate(header) if h.strip().lower() == "step"), None)
    if key is None:
        return []
    steps = set()
    for row in rows:
        value = row[key] if key < len(row) else ""
        match = re.search(r"\d+", value)
        if match:
            steps.add(int(match.group()))
    return sorted(steps)


def _steps_from_trace(path: Path) -> list[int]:
    """ProfilerStep#N names found by a regex scan over the bytes, without parsing the JSON."""
    steps: set[int] = set()
    for buf, start, end in mapped_windows(path):
        steps.update(int(match.group(1)) for match in _STEP_NAME.finditer(buf, start, end))
    return sorted(steps)


def _rank_export(rank_dir: Path, files: tuple[str, ...]) -> str:
    outputs = [f.split("/", 1)[1] for f in files if f.startswith(f"{OUTPUT_DIR}/")]
    if any(name.endswith((".csv", ".json")) for name in outputs):
        return "text"
    if any(DB_FILE.match(name) for name in outputs):
        return "db"
    if not (rank_dir / OUTPUT_DIR).is_dir():
        raise InputError(
            f"{rank_dir}: no {OUTPUT_DIR} folder (the profile was not exported; run the profiler's "
            "offline analysis first)"
        )
    raise InputError(f"{rank_dir / OUTPUT_DIR}: no text (csv/json) or db export files")


def _read_metadata(rank_dir: Path, warnings: list[str]) -> RankMetadata:
    """What the rank recorded about itself; a broken metadata file is a warning, not a failure."""
    from .metadata import RankMetadata, read_metadata  # metadata's readers import this module

    try:
        return read_metadata(rank_dir)
    except InputError as error:
        warnings.append(str(error))
        return RankMetadata()


def _build(root: Path, rank_dirs: list[Path], label: Path | None = None) -> ProfileSet:
    warnings: list[str] = []
    found: list[RankFolder] = []
    seen: set[Path] = set()
    for rank_dir in sorted(rank_dirs):
        real = rank_dir.resolve()
        if real in seen:  # a link to a rank folder listed already: the same data
            continue
        seen.add(real)
        files = _list_files(rank_dir)
        meta = _read_metadata(rank_dir, warnings)
        found.append(RankFolder(rank_dir, _rank_from_files(rank_dir, files), files, meta))
    one_run = single_run(str(label or root), root, found, warnings)

    by_rank = {f.rank: f for f in one_run if f.rank is not None}
    next_free = 0
    for folder in one_run:
        if folder.rank is not None:
            continue
        while next_free in by_rank:
            next_free += 1
        by_rank[next_free] = folder
        warnings.append(f"{folder.path}: no rank id recorded; numbered rank {next_free} by folder order")

    ranks = []
    metadata: dict[int, RankMetadata] = {}
    for rank in sorted(by_rank):
        folder = by_rank[rank]
        metadata[rank] = folder.meta
        ranks.append(_rank_info(rank, folder.path, folder.files, folder.meta))

    exports = {r.export for r in ranks}
    export = exports.pop() if len(exports) == 1 else "mixed"
    steps = sorted({s for r in ranks for s in r.steps})
    cann = _agree([r.cann_version for r in ranks], "CANN version", warnings)
    torch = _agree([r.torch_version for r in ranks], "torch_npu version", warnings)
    framework = ranks[0].framework
    if framework == "mindspore":
        warnings.append(
            "MindSpore profile: read with the Ascend PyTorch Profiler readers where the files are the same; "
            "framework (host) tables may be missing"
        )
    groups, stages = _parallel_layout(metadata.values(), len(ranks), warnings)
    if not groups and len(ranks) > 1:
        from .layout import groups_from_communication, stages_from_groups  # it imports this module

        groups, p2p = groups_from_communication(ranks, warnings)
        stages = stages or stages_from_groups(groups, p2p)
    kind = "ascend_ms" if framework == "mindspore" else "ascend_pt"
    return ProfileSet(root, kind, export, ranks, steps, cann, torch, warnings, stages, groups)


def _parallel_layout(
    metadata: Iterable[RankMetadata], n_ranks: int, warnings: list[str]
) -> tuple[dict[str, tuple[int, ...]], list[tuple[int, ...]]]:
    """Process groups and pipeline stages from profiler_metadata.json (parallel_group_info,
    distributed_args). A rank's stage is its place in its pipeline group; without group info,
    Megatron's rank order (stage = rank // (world_size / pp_size)) is used."""
    groups: dict[str, tuple[int, ...]] = {}
    stage_of: dict[int, int] = {}
    pp_size = world = None
    for meta in metadata:
        for group_id, group in meta.parallel_groups.items():
            name = group.group_name or group_id
            groups.setdefault(name if name not in groups else f"{name}@{group_id}", group.global_ranks)
            if name.lower().startswith("pp") or "pipeline" in name.lower():
                for position, rank in enumerate(group.global_ranks):
                    stage_of.setdefault(rank, position)
        pp_size = pp_size or meta.distributed.pipeline_model_parallel_size
        world = world or meta.distributed.world_size
    if not stage_of and pp_size and pp_size > 1 and world and world % pp_size == 0:
        per_stage = world // pp_size
        stage_of = {rank: rank // per_stage for rank in range(world)}
        if world != n_ranks:
            warnings.append(f"world size {world} recorded, {n_ranks} rank folder(s) found")
    stages = [
        tuple(sorted(r for r, s in stage_of.items() if s == stage))
        for stage in sorted(set(stage_of.values()))
    ]
    return groups, stages if len(stages) > 1 else []


def _rank_info(rank: int, rank_dir: Path, files: tuple[str, ...], meta: RankMetadata) -> RankInfo:
    export = _rank_export(rank_dir, files)
    steps: list[int] = []
    recorded: dict[str, Any] = {}
    if export == "db":
        recorded = _db_metadata(rank_dir, files)
        steps = list(recorded.get("steps") or [])
    if export == "text":
        csv_path = rank_dir / OUTPUT_DIR / STEP_TRACE_CSV
        trace_path = rank_dir / OUTPUT_DIR / TRACE_VIEW_JSON
        if f"{OUTPUT_DIR}/{STEP_TRACE_CSV}" in files:
            steps = _steps_from_csv(csv_path)
        elif f"{OUTPUT_DIR}/{TRACE_VIEW_JSON}" in files:
            steps = _steps_from_trace(trace_path)
    framework = "mindspore" if rank_dir.name.endswith(MINDSPORE_SUFFIX) else "pytorch"
    return RankInfo(
        rank,
        rank_dir,
        export,
        tuple(steps),
        files,
        meta.cann_version or recorded.get("cann_version"),
        meta.torch_npu_version or meta.torch_version or recorded.get("torch_npu_version"),
        meta.profiler_level,
        framework,
        recorded.get("device_type"),
    )


def _db_metadata(rank_dir: Path, files: tuple[str, ...]) -> dict[str, Any]:
    """Steps, versions and device type recorded in the rank's profiler db (empty if unreadable)."""
    from .db_sqlite import read_db_metadata  # the db reader imports this module

    db = next((f for f in files if DB_FILE.match(f.rsplit("/", 1)[-1])), None)
    try:
        return read_db_metadata(rank_dir / db) if db else {}
    except InputError:
        return {}


def _agree(values: list[str | None], label: str, warnings: list[str]) -> str | None:
    distinct = sorted({v for v in values if v})
    if len(distinct) > 1:
        warnings.append(f"ranks disagree on the {label}: {', '.join(distinct)}")
    return distinct[0] if distinct else None
