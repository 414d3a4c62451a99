"""Input formats behind one interface, and their registry.

Each folder here is one format (`ascend_text`, `ascend_db`, `ascend_cluster`) exposing one `Format`
object: `detect`, `discover`, its table loaders and the files each table reads. `FORMATS` is the
one ordered registry: discovery asks every format how surely it recognises a path and lets the
surest (the first among equals) discover it; tables are loaded by the format of each rank.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd

from ..errors import InputError
from ..model import MIXED, ProfileSet, RankInfo, device_counts
from .ascend_cluster import FORMAT as ASCEND_CLUSTER
from .ascend_db import FORMAT as ASCEND_DB
from .ascend_text import FORMAT as ASCEND_TEXT
from .base import Detection, Format
from .kineto import FORMAT as KINETO
from .tables import load_cached, register_table

FORMATS: tuple[Format, ...] = (ASCEND_TEXT, ASCEND_DB, ASCEND_CLUSTER, KINETO)

__all__ = [
    "FORMATS",
    "Detection",
    "Format",
    "data_folder_at",
    "data_name",
    "discover",
    "format_named",
    "load_table",
    "reader_modules",
    "register_table",
    "report_input_fields",
    "table_names",
    "table_sources",
]


def format_named(name: str) -> Format:
    for fmt in FORMATS:
        if fmt.name == name:
            return fmt
    raise ValueError(f"unknown format {name!r}; known: {', '.join(f.name for f in FORMATS)}")


def discover(path: str | Path) -> ProfileSet:
    """What `path` (a folder, or a file that some format reads alone) holds, read by the format that
    recognises it most surely."""
    given = Path(path).expanduser()
    if not given.exists():
        raise InputError(f"{given}: no such file or directory")
    if not given.is_dir() and not given.is_file():
        raise InputError(f"{given}: neither a folder nor a regular file")
    candidates = [fmt for fmt in FORMATS if given.is_dir() or fmt.reads_files]
    detections = [(fmt, fmt.detect(given)) for fmt in candidates]
    fmt, best = max(detections, key=lambda pair: pair[1].confidence)  # max keeps the first of equals
    if best.confidence <= 0:
        looked_for = "; ".join(f"{fmt.name}: {detection.reason}" for fmt, detection in detections)
        if not given.is_dir():  # each format that reads single files says why this one is not its
            raise InputError(f"{given}: not profiling data: {looked_for}")
        raise InputError(
            f"{given}: not profiling data: found {_describe_contents(given)}; looked for {looked_for}"
        )
    families = {fmt.family or fmt.name: d.reason for fmt, d in detections if d.confidence > 0}
    if len(families) > 1:
        found = "; ".join(f"{family}: {reason}" for family, reason in sorted(families.items()))
        raise InputError(f"{given}: holds data of different profilers ({found}); analyse them separately")
    return fmt.discover(given)


def _describe_contents(root: Path) -> str:
    try:
        entries = list(root.iterdir())
    except OSError as exc:
        raise InputError(f"{root}: cannot list the folder ({exc.strerror})") from None
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
    return ", ".join(bits)


def reader_modules() -> list[str]:
    """Every format's reader modules (preloaded by the engine's worker processes)."""
    return [module for fmt in FORMATS for module in fmt.reader_modules]


def table_names() -> list[str]:
    return sorted({name for fmt in FORMATS for name in fmt.tables()})


def table_sources(tables: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """table name -> the file-name patterns its loaders read, over every format (for downloads)."""
    wanted = set(tables)
    found: dict[str, set[str]] = {}
    for fmt in FORMATS:
        for name, patterns in fmt.table_sources().items():
            if name in wanted:
                found.setdefault(name, set()).update(patterns)
    return {name: tuple(sorted(patterns)) for name, patterns in found.items()}


def load_table(name: str, rank: RankInfo, *, use_cache: bool = True) -> pd.DataFrame:
    """Table `name` of `rank`, by the rank's format. InputError (naming the file) when the data
    cannot give it."""
    # The rank's own format first: only a miss imports every other format's readers.
    loader = format_named(rank.format).tables().get(name)
    if loader is None and name not in table_names():
        raise ValueError(f"unknown table {name!r}; known: {', '.join(table_names())}")
    if loader is None:
        raise InputError(f"{rank.path}: reading {name} from {rank.format} data is not supported yet")
    return load_cached(name, rank, loader, use_cache=use_cache)


def report_export(profile: ProfileSet) -> str:
    """The JSON report's `input.export`: its format's, or "mixed"."""
    return MIXED if profile.format == MIXED else format_named(profile.format).export


def report_input_fields(profile: ProfileSet) -> dict[str, Any]:
    """The fields of the JSON report's `input` (contract 3.2) that name what was read: `kind`,
    `export`, `cann_version`, `torch_version`, `format`, `device`, `devices` and `versions`; the one
    place the model maps to them."""
    kind_from = profile.ranks[0].format if profile.format == MIXED else profile.format
    return {
        "kind": format_named(kind_from).report_kind(profile.framework),
        "export": report_export(profile),
        "cann_version": profile.versions.get("cann"),
        "torch_version": profile.versions.get("torch_npu"),
        "format": profile.format,
        "device": profile.device,
        "devices": device_counts(profile.ranks),
        "versions": dict(profile.versions),
    }


def data_folder_at(path: Path) -> Path | None:
    """`path` or the first of its parents that is part of some format's data (a rank folder, …), if
    any: reports are never written there."""
    for part in (path, *path.parents):
        if any(fmt.holds_data(part.name) for fmt in FORMATS):
            return part
    return None


def data_name(path: PurePosixPath) -> PurePosixPath:
    """The folder that names the data at `path`: its parent when `path` is a folder inside the data
    that does not name it (an Ascend rank's ASCEND_PROFILER_OUTPUT)."""
    inner = {name for fmt in FORMATS for name in fmt.inner_folders}
    return path.parent if path.name in inner else path
