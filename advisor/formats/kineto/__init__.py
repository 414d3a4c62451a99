"""PyTorch profiler (Kineto) traces: Chrome-trace JSON (`*.json`, `*.json.gz`) written by
`torch.profiler` on GPU (CUDA, ROCm) or CPU, one file per rank and profiling window."""

from __future__ import annotations

from collections.abc import Iterable

from ..base import Format
from .discover import FORMAT_NAME, detect, discover

REPORT_KIND = "torch_profiler"


def report_kind(framework: str) -> str:
    """The JSON report's `input.kind` for PyTorch profiler traces."""
    return REPORT_KIND


HANDLER_SUFFIXES = (".pt.trace.json", ".pt.trace.json.gz")


def wants_object(rel: str, patterns: tuple[str, ...]) -> bool:
    """Traces named as tensorboard_trace_handler names them (the one file of a rank gives all of its
    tables); any other JSON file may be an Ascend export's, which its own format selects."""
    return rel.lower().endswith(HANDLER_SUFFIXES)


def recognises_listing(rels: Iterable[str]) -> bool:
    return any(wants_object(rel, ()) for rel in rels)


FORMAT = Format(
    name=FORMAT_NAME,
    export="json",
    detect=detect,
    discover=discover,
    report_kind=report_kind,
    reader_modules=(f"{__name__}.tables",),
    family="kineto",
    reads_files=True,
    wants_object=wants_object,
    recognises_listing=recognises_listing,
)
