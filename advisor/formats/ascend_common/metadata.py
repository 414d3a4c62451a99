"""What a rank recorded about its own collection: profiler_info_{N}.json and profiler_metadata.json.

profiler_info: rank id, the profiler's configuration (export type, level, activities, switches) and
when the collection started.
profiler_metadata: ENV_VARIABLES, and what the training framework added (distributed_args,
parallel_group_info). Both are optional; whatever is absent or of an unexpected type is None/empty,
while a file that is not valid JSON is an InputError.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ...errors import InputError
from ...model import RankInfo
from .csvread import read_json
from .db_sqlite import profiler_db, read_db_metadata
from .folder import MAX_METADATA_BYTES, PROFILER_INFO

PROFILER_METADATA_JSON = "profiler_metadata.json"
_VERSION_KEYS = {"cann_version": "cann", "torch_npu_version": "torch_npu", "torch_version": "torch"}


@dataclass(frozen=True)
class DistributedArgs:
    """Parallel sizes the framework recorded (Megatron naming); None where not recorded."""

    world_size: int | None = None
    tensor_model_parallel_size: int | None = None
    pipeline_model_parallel_size: int | None = None
    data_parallel_size: int | None = None
    context_parallel_size: int | None = None
    expert_model_parallel_size: int | None = None


@dataclass(frozen=True)
class ParallelGroup:
    """One process group: its name (e.g. 'dp', 'tp'), this rank's place in it and its global ranks."""

    group_name: str | None
    group_rank: int | None
    global_ranks: tuple[int, ...]


@dataclass(frozen=True)
class RankMetadata:
    rank_id: int | None = None
    export_type: str | None = None  # "text" or "db" (a list naming db counts as db, as the profiler does)
    profiler_level: str | None = None  # "Level0", "Level1", "Level2", "Level_none"
    activities: tuple[str, ...] = ()  # "CPU", "NPU"
    with_stack: bool | None = None
    record_shapes: bool | None = None
    profile_memory: bool | None = None
    aic_metrics: str | None = None  # e.g. "ACL_AICORE_PIPE_UTILIZATION": which PMU columns exist
    env: Mapping[str, str] = field(default_factory=dict)
    distributed: DistributedArgs = field(default_factory=DistributedArgs)
    parallel_groups: Mapping[str, ParallelGroup] = field(default_factory=dict)  # by group id
    cann_version: str | None = None
    torch_npu_version: str | None = None
    torch_version: str | None = None
    start_ns: int | None = None  # when the collection started: ns since the epoch (UTC)


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def _bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _enum_name(value: Any) -> str | None:
    """'Level1' for 'ProfilerLevel.Level1', 'text' for 'ExportType.Text'-style enum strings."""
    text = _text(value)
    return text.rsplit(".", 1)[-1] if text else None


def _export_type(value: Any) -> str | None:
    names = [_enum_name(v) for v in value] if isinstance(value, list) else [_enum_name(value)]
    names = [n.lower() for n in names if n]
    if not names:
        return None
    return "db" if "db" in names else names[0]


def _versions(data: Any, found: dict[str, str], depth: int = 0) -> None:
    """cann/torch_npu/torch version strings anywhere in the first levels of the JSON (first wins)."""
    if depth > 3 or not isinstance(data, dict):
        return
    for key, value in data.items():
        kind = _VERSION_KEYS.get(str(key).lower())
        if kind and isinstance(value, (str, int, float)) and str(value).strip():
            found.setdefault(kind, str(value).strip())
        elif isinstance(value, dict):
            _versions(value, found, depth + 1)


def _parallel_groups(value: Any) -> dict[str, ParallelGroup]:
    groups = {}
    for group_id, info in _dict(value).items():
        info = _dict(info)
        ranks = info.get("global_ranks")
        ranks = [_int(r) for r in ranks] if isinstance(ranks, list) else []
        groups[str(group_id)] = ParallelGroup(
            _text(info.get("group_name")),
            _int(info.get("group_rank")),
            tuple(r for r in ranks if r is not None),
        )
    return groups


def _start_ns(info: dict) -> int | None:
    """The collection's wall-clock start. profiler_info records the start on the monotonic clock only
    (start_info.start_monotonic) and the end on both clocks (end_info), so the start is the wall-clock
    end less the monotonic duration."""
    start, end = _dict(info.get("start_info")), _dict(info.get("end_info"))
    wall_end, monotonic_end = _int(end.get("collectionTimeEnd")), _int(end.get("MonotonicTimeEnd"))
    monotonic_start = _int(start.get("start_monotonic"))
    if wall_end is None or monotonic_end is None or monotonic_start is None:
        return None
    started = wall_end - (monotonic_end - monotonic_start)
    return started if monotonic_start <= monotonic_end and started > 0 else None


def _info_file(names: list[str]) -> tuple[str | None, int | None]:
    """profiler_info_{N}.json (rank N) before a plain profiler_info.json."""
    found = [(m.group(1) is None, name, m.group(1)) for name in names if (m := PROFILER_INFO.match(name))]
    matches = sorted(found)
    if not matches:
        return None, None
    _, name, digits = matches[0]
    return name, int(digits) if digits is not None and int(digits) >= 0 else None


def read_metadata(rank_dir: Path) -> RankMetadata:
    """The metadata of the rank folder `rank_dir` (InputError when a present file is not valid JSON)."""
    names = [p.name for p in rank_dir.iterdir() if p.is_file()] if rank_dir.is_dir() else []
    info_name, rank_id = _info_file(names)
    info = _dict(read_json(rank_dir / info_name, MAX_METADATA_BYTES)) if info_name else {}
    meta_path = rank_dir / PROFILER_METADATA_JSON
    meta = _dict(read_json(meta_path, MAX_METADATA_BYTES)) if PROFILER_METADATA_JSON in names else {}
    config = _dict(info.get("config"))
    common, experimental = _dict(config.get("common_config")), _dict(config.get("experimental_config"))
    activities = common.get("activities")
    distributed = _dict(meta.get("distributed_args"))
    versions: dict[str, str] = {}
    _versions(info, versions)
    _versions(meta, versions)
    return RankMetadata(
        rank_id=rank_id if rank_id is not None else _int(info.get("rank_id")),
        export_type=_export_type(experimental.get("_export_type")),
        profiler_level=_enum_name(experimental.get("_profiler_level")),
        activities=tuple(n for n in map(_enum_name, activities) if n) if isinstance(activities, list) else (),
        with_stack=_bool(common.get("with_stack")),
        record_shapes=_bool(common.get("record_shapes")),
        profile_memory=_bool(common.get("profile_memory")),
        aic_metrics=_text(experimental.get("_aic_metrics")),
        env={str(k): "" if v is None else str(v) for k, v in _dict(meta.get("ENV_VARIABLES")).items()},
        distributed=DistributedArgs(
            **{f.name: _int(distributed.get(f.name)) for f in fields(DistributedArgs)}
        ),
        parallel_groups=_parallel_groups(meta.get("parallel_group_info")),
        cann_version=versions.get("cann"),
        torch_npu_version=versions.get("torch_npu"),
        torch_version=versions.get("torch"),
        start_ns=_start_ns(info),
    )


def load_metadata(rank: RankInfo) -> RankMetadata:
    """The rank's metadata; for a db export without ENV_VARIABLES in profiler_metadata.json (torch_npu
    need not write that file), the ENV_VARIABLES its db recorded in META_DATA."""
    meta = read_metadata(rank.path)
    if meta.env or rank.format != "ascend_db":
        return meta
    env = _db_env(rank)
    return replace(meta, env=env) if env else meta


def _db_env(rank: RankInfo) -> dict[str, str]:
    try:
        found = read_db_metadata(profiler_db(rank).path).get("env_variables")
    except (InputError, OSError):  # an unreadable db is the table readers' error to report
        return {}
    return {str(k): "" if v is None else str(v) for k, v in _dict(found).items()}
