"""Find out what a folder holds: one rank or a cluster of Ascend PyTorch Profiler rank folders.

Discovery only lists files and reads a few small JSON files; the big tables are read later by the
loaders in `tables.py`, once per rank, only when a selected check needs them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

from ...errors import InputError, cannot
from ...model import MIXED, ProfileSet, RankInfo
from ..base import Detection, Format
from ..runs import numbered, single_run
from . import remote
from .csvread import read_csv
from .db_sqlite import read_db_metadata
from .folder import (
    DB_FILE,
    MINDSPORE_SUFFIX,
    OUTPUT_DIR,
    PROFILER_INFO,
    RANK_SUFFIX,
    STEP_TRACE_CSV,
    TRACE_VIEW_JSON,
    read_small_json,
)
from .layout import groups_from_communication, rank_ops, stages_from_groups
from .metadata import RankMetadata, read_metadata
from .runs import RankFolder
from .trace_json import mapped_windows

# Only names that plainly say "rank N" (or are just digits) give a rank id: the digits of a
# canonical `{host}_{pid}_{timestamp}_ascend_pt` name are a pid and a time, not a rank.
_RANK_IN_NAME = re.compile(r"(?:^|[_\-.])rank[_\-]?(\d+)(?:[_\-.]|$)", re.IGNORECASE)
_DIGITS_NAME = re.compile(r"^(\d+)$")
_STEP_NAME = re.compile(rb'"name"\s*:\s*"ProfilerStep#(\d+)"')
ASCEND_FAMILY = "ascend"


def ascend_kind(framework: str) -> str:
    """The JSON report's `input.kind` for rank folders of `framework`."""
    return "ascend_ms" if framework == "mindspore" else "ascend_pt"


def locate_rank_dirs(root: Path) -> tuple[list[Path], bool]:
    """The rank folders `root` (resolved) is or holds, and whether they were found below it (a
    cluster); ([], False) when there are none. A path inside a rank folder means that rank."""
    for candidate in (root, *root.parents):
        if candidate.name.endswith((RANK_SUFFIX, MINDSPORE_SUFFIX)):
            return [candidate], False
    if root.name == OUTPUT_DIR:
        return [root.parent], False
    if not root.is_dir():  # a file outside rank folders (another profiler's trace)
        return [], False
    if (root / OUTPUT_DIR).is_dir():
        return [root], False
    rank_dirs, ms_dirs = _find_rank_dirs(root)
    if rank_dirs and ms_dirs:
        raise InputError(
            f"{root}: holds both PyTorch (*{RANK_SUFFIX}) and MindSpore (*{MINDSPORE_SUFFIX}) rank folders; "
            "analyse them separately"
        )
    return rank_dirs or ms_dirs, True


def rank_folders_detection(path: Path, export: str) -> Detection:
    """How surely `path` holds rank folders with an `export` ("text" or "db") export: certain when
    one of them has such files; half sure for rank folders without any export, so that discovery
    runs and says what is missing."""
    files = {"text": "csv/json files", "db": "an ascend_pytorch_profiler*.db"}[export]
    looked_for = f"*{RANK_SUFFIX} or *{MINDSPORE_SUFFIX} rank folders or {OUTPUT_DIR} with {files}"
    rank_dirs, _ = locate_rank_dirs(path.resolve())
    if not rank_dirs:
        return Detection(0.0, looked_for)
    other_export = False
    for rank_dir in rank_dirs:  # stops at the first rank folder of this export
        found = _output_export(rank_dir)
        if found == export:
            return Detection(1.0, f"{len(rank_dirs)} rank folder(s) with a {export} export")
        other_export = other_export or found is not None
    if other_export:
        return Detection(0.0, f"rank folders without a {export} export")
    return Detection(0.5, f"{len(rank_dirs)} rank folder(s) without a text or db export")


def discover(path: Path) -> ProfileSet:
    """The rank folders `path` is, is inside, or holds (children or grandchildren), as one run."""
    root = path.resolve()
    rank_dirs, below = locate_rank_dirs(root)
    if not rank_dirs:
        raise InputError(f"{path}: no *{RANK_SUFFIX} rank folders or {OUTPUT_DIR}")
    return _build(root, rank_dirs, path if below else None)


def rank_folder_format(name: str, export: str, reader_modules: tuple[str, ...]) -> Format:
    """The format of rank folders with an `export` ("text" or "db") export: both discover alike (a
    cluster may mix them, each rank then read by its own format)."""
    return Format(
        name=name,
        export=export,
        detect=partial(rank_folders_detection, export=export),
        discover=discover,
        report_kind=ascend_kind,
        reader_modules=reader_modules,
        family=ASCEND_FAMILY,
        holds_data=is_rank_folder_part,
        inner_folders=(OUTPUT_DIR,),
        wants_object=remote.wants_object,
        recognises_listing=remote.recognises_listing,
    )


def is_rank_folder_part(name: str) -> bool:
    """A rank folder (`*_ascend_pt`, `*_ascend_ms`) or its export folder, by name."""
    return name.endswith((RANK_SUFFIX, MINDSPORE_SUFFIX)) or name == OUTPUT_DIR


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


def _export_of(outputs: Iterable[str]) -> str | None:
    """ "text" or "db" from the file names in a rank's output folder (text first); None for neither."""
    names = list(outputs)
    if any(name.endswith((".csv", ".json")) for name in names):
        return "text"
    if any(DB_FILE.match(name) for name in names):
        return "db"
    return None


def _output_export(rank_dir: Path) -> str | None:
    try:
        return _export_of(p.name for p in (rank_dir / OUTPUT_DIR).iterdir() if p.is_file())
    except OSError:  # no output folder, or unreadable: discovery says which
        return None


def _rank_export(rank_dir: Path, files: tuple[str, ...]) -> str:
    export = _export_of(f.split("/", 1)[1] for f in files if f.startswith(f"{OUTPUT_DIR}/"))
    if export is not None:
        return export
    if not (rank_dir / OUTPUT_DIR).is_dir():
        raise InputError(
            f"{rank_dir}: no {OUTPUT_DIR} folder (the profile was not exported; run the profiler's "
            "offline analysis first)"
        )
    raise InputError(f"{rank_dir / OUTPUT_DIR}: no text (csv/json) or db export files")


def _read_metadata(rank_dir: Path, warnings: list[str]) -> RankMetadata:
    """What the rank recorded about itself; a broken metadata file is a warning, not a failure."""
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
    by_rank = _numbered(single_run(str(label or root), root, found, warnings, "rank folders"), warnings)
    ranks = [_rank_info(rank, folder.path, folder.files, folder.meta) for rank, folder in by_rank.items()]
    metadata = [folder.meta for folder in by_rank.values()]
    return _profile_set(root, ranks, metadata, warnings, rank_ops)


@dataclass(frozen=True)
class RankSurvey:
    """What discovery reads of one rank folder, read where the folder is (a Dask worker that
    downloaded its rank from object storage), for `assemble` to build the profile elsewhere.
    `folder.path` and `info.path` name the rank as the profile shows it (not where the surveyor
    read it); `info.rank` is the folder's recorded rank id, -1 when it records none."""

    folder: RankFolder
    info: RankInfo
    ops: frozenset[tuple[str, str]] | str  # its communication ops, or why they could not be read
    warnings: tuple[str, ...]


def survey_rank(rank_dir: Path, name: Path) -> RankSurvey:
    """`rank_dir`'s RankSurvey, the rank named `name` in the profile."""
    warnings: list[str] = []
    files = _list_files(rank_dir)
    meta = _read_metadata(rank_dir, warnings)
    recorded = _rank_from_files(rank_dir, files)
    info = _rank_info(-1 if recorded is None else recorded, rank_dir, files, meta)
    try:
        ops: frozenset[tuple[str, str]] | str = frozenset(rank_ops(info))
    except (OSError, ValueError, InputError) as exc:
        ops = str(exc)
    return RankSurvey(RankFolder(name, recorded, files, meta), replace(info, path=name), ops, tuple(warnings))


def assemble(root: Path, surveys: list[RankSurvey]) -> ProfileSet:
    """The profile of rank folders surveyed apart (`survey_rank`), as `discover` builds it from the
    folders themselves: one run, ranks numbered, steps, versions, groups and stages."""
    warnings = [w for survey in surveys for w in survey.warnings]
    by_name = {survey.folder.path: survey for survey in surveys}
    one_run = single_run(str(root), root, [s.folder for s in surveys], warnings, "rank folders")
    by_rank = _numbered(one_run, warnings)
    ranks = [replace(by_name[folder.path].info, rank=rank) for rank, folder in by_rank.items()]
    ops = {rank.rank: by_name[folder.path].ops for rank, folder in zip(ranks, by_rank.values(), strict=True)}

    def ops_of(rank: RankInfo) -> set[tuple[str, str]]:
        found = ops[rank.rank]
        if isinstance(found, str):
            raise InputError(found)
        return set(found)

    return _profile_set(root, ranks, [folder.meta for folder in by_rank.values()], warnings, ops_of)


def _numbered(one_run: list[RankFolder], warnings: list[str]) -> dict[int, RankFolder]:
    """The rank folders by rank id, in rank order; a folder that records none gets the first free."""
    by_rank, guessed = numbered(one_run)
    warnings += [f"{f.path}: no rank id recorded; numbered rank {n} by folder order" for n, f in guessed]
    return by_rank


def _profile_set(
    root: Path,
    ranks: list[RankInfo],
    metadata: list[RankMetadata],
    warnings: list[str],
    ops_of: Callable[[RankInfo], set[tuple[str, str]]],
) -> ProfileSet:
    formats = {r.format for r in ranks}
    steps = sorted({s for r in ranks for s in r.steps})
    versions = {
        key: agreed
        for key, label in (("cann", "CANN version"), ("torch_npu", "torch_npu version"))
        if (agreed := _agree([r.versions.get(key) for r in ranks], label, warnings))
    }
    framework = ranks[0].framework
    if framework == "mindspore":
        warnings.append(
            "MindSpore profile: read with the Ascend PyTorch Profiler readers where the files are the same; "
            "framework (host) tables may be missing"
        )
    groups, stages = _parallel_layout(metadata, len(ranks), warnings)
    if not groups and len(ranks) > 1:
        groups, p2p = groups_from_communication(ranks, warnings, ops_of)
        stages = stages or stages_from_groups(groups, p2p)
    form = formats.pop() if len(formats) == 1 else MIXED
    return ProfileSet(root, form, ranks, steps, framework, "npu", versions, warnings, stages, groups)


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
    recorded_versions = {
        "cann": meta.cann_version or recorded.get("cann_version"),
        # torch's own version stands in where torch_npu's is not recorded
        "torch_npu": meta.torch_npu_version or meta.torch_version or recorded.get("torch_npu_version"),
    }
    return RankInfo(
        rank,
        rank_dir,
        f"ascend_{export}",
        tuple(steps),
        files,
        {key: value for key, value in recorded_versions.items() if value},
        meta.profiler_level,
        framework,
        "npu",
        recorded.get("device_type"),
    )


def _db_metadata(rank_dir: Path, files: tuple[str, ...]) -> dict[str, Any]:
    """Steps, versions and device type recorded in the rank's profiler db (empty if unreadable)."""
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
