"""What a format is: one object per input format, registered in `advisor.formats.FORMATS`."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from ..model import ProfileSet
from .tables import Loader, registered_loaders


@dataclass(frozen=True)
class Detection:
    """How surely a path holds a format's data (0: not at all, 1: certainly), and why: what was
    found, or what was looked for and not found (the "not profiling data" message lists these)."""

    confidence: float
    reason: str


@dataclass(frozen=True)
class Format:
    """One input format: how to recognise it, discover its ranks and read its tables."""

    name: str  # RankInfo.format / ProfileSet.format
    export: str  # the JSON report's `input.export` for this format (contract 3.2)
    detect: Callable[[Path], Detection]  # cheap: lists folders, reads no table
    discover: Callable[[Path], ProfileSet]  # the path as the user gave it
    report_kind: Callable[[str], str]  # framework -> the JSON report's `input.kind`
    # Modules that register this format's table loaders, imported on first use (also in worker
    # processes, which start fresh); imported by name so that detection stays free of the readers.
    reader_modules: tuple[str, ...]
    # Formats of one family may share a folder (an Ascend cluster mixing text and db exports); a
    # folder holding data of two families is refused (analyse them separately). "": the name.
    family: str = ""
    # Whether a single file (not a folder) can be this format's data: only such formats look at one.
    reads_files: bool = False
    # Whether a folder of this name is part of this format's data: reports never go inside one.
    holds_data: Callable[[str], bool] = lambda name: False
    # Folders inside the data that a user may point at but that do not name it (a report is named
    # after their parent).
    inner_folders: tuple[str, ...] = ()
    # Object-store downloads: whether the object at a path (relative to the analysed prefix) is one
    # this format reads whatever the tables (discovery's files), or one of its export's files that a
    # file-name source pattern of the requested tables names (patterns saying where their file
    # lies are matched by storage for every format alike); and whether a listing holds its data.
    wants_object: Callable[[str, tuple[str, ...]], bool] = lambda rel, patterns: False
    recognises_listing: Callable[[Iterable[str]], bool] = lambda rels: False

    def tables(self) -> dict[str, Loader]:
        """table name -> its loader for this format."""
        for module in self.reader_modules:
            importlib.import_module(module)
        return registered_loaders(self.name)

    def table_sources(self) -> dict[str, tuple[str, ...]]:
        """table name -> the file-name patterns its loader reads (cache key, selective download)."""
        return {name: loader.sources or () for name, loader in self.tables().items()}
