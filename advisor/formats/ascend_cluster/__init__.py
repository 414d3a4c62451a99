"""msprof-analyze's cluster_analysis_output/ without the rank folders: per-rank step and
communication summaries of a whole cluster."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ...errors import InputError
from ...model import ProfileSet, RankInfo
from ..ascend_common import SHARED_READERS
from ..ascend_common.discover import ASCEND_FAMILY
from ..base import Detection, Format
from .cluster_output import CLUSTER_OUTPUT_DIR, find_cluster_output, read_cluster_output


def detect(path: Path) -> Detection:
    """Below rank folders of any export (0.5): they hold more than the summaries made from them."""
    if find_cluster_output(path.resolve()) is None:
        return Detection(0.0, f"{CLUSTER_OUTPUT_DIR}/ with msprof-analyze's cluster summaries")
    return Detection(0.4, f"{CLUSTER_OUTPUT_DIR}/ (summaries only)")


def discover(path: Path) -> ProfileSet:
    """The ranks of the cluster summaries (export "cluster"): step and communication tables only."""
    root = path.resolve()
    folder = find_cluster_output(root)
    if folder is None:
        raise InputError(f"{path}: no {CLUSTER_OUTPUT_DIR} with cluster summaries")
    output = read_cluster_output(folder)
    files = tuple(sorted(p.name for p in folder.iterdir() if p.is_file()))
    ranks = []
    for rank in output.ranks:
        table = output.step_trace.get(rank)
        steps = tuple(sorted({int(s) for s in table["step"].dropna()})) if table is not None else ()
        ranks.append(RankInfo(rank, folder, FORMAT.name, steps, files))
    if not ranks:
        raise InputError(f"{folder}: the cluster summaries name no rank")
    steps = sorted({s for r in ranks for s in r.steps})
    stages = sorted(output.stage_step_trace) if len(output.stage_step_trace) > 1 else []
    warnings = [f"{folder}: only the cluster summaries of msprof-analyze (no rank folders): step and "
                "communication tables only"]  # fmt: skip
    return ProfileSet(root, FORMAT.name, ranks, steps, warnings=warnings, stages=stages)


def wants_object(rel: str, patterns: tuple[str, ...]) -> bool:
    """Every summary (CSV, JSON, db) under cluster_analysis_output/: they are small."""
    return CLUSTER_OUTPUT_DIR in rel.split("/")[:-1] and rel.endswith((".csv", ".json", ".db"))


def recognises_listing(rels: Iterable[str]) -> bool:
    return any(CLUSTER_OUTPUT_DIR in rel.split("/")[:-1] for rel in rels)


def report_kind(framework: str) -> str:
    """The JSON report's `input.kind`, whatever framework wrote the cluster."""
    return "cluster_output"


FORMAT = Format(
    name="ascend_cluster",
    export="cluster",
    detect=detect,
    discover=discover,
    report_kind=report_kind,
    reader_modules=(f"{__name__}.cluster_output", *SHARED_READERS),
    family=ASCEND_FAMILY,
    wants_object=wants_object,
    recognises_listing=recognises_listing,
)
