"""Speed and peak memory of the Kineto (PyTorch profiler) trace reader on a large generated trace,
plain and gzip, and of the whole CLI analysis, against Holistic Trace Analysis loading the same
files, in one run.

    python benchmarks/bench_kineto.py --size-mb 500 [--repeat 2] [--out DIR] [--hta-python PATH]

The trace is one rank of `performance-advisor`'s Kineto generator (advisor/synth/kineto: torch 2.13's
layout, GPU kernels, runtime calls, memcpy, NCCL collectives, memory events, flows) with its event
array repeated until the file reaches `--size-mb` (timestamps repeat: parsing does not care). Each
measurement runs in a fresh child process that reports its time and peak RSS (ru_maxrss).
`--hta-python` is the interpreter of a venv with HolisticTraceAnalysis installed (its dependencies
conflict with none of ours, but it is heavy); without it HTA is not measured.
"""

from __future__ import annotations

import argparse
import gzip
import re
import shutil
import sys
import tempfile
import textwrap
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_trace import best_of  # noqa: E402  (benchmarks/ is on the path when run as a script)

from advisor.synth.kineto import KinetoSpec, write_kineto_traces  # noqa: E402

TRACE_NAME = "rank0.pt.trace.json"

_READER = textwrap.dedent(
    """
    import json, resource, sys, time
    from pathlib import Path
    from advisor.formats.kineto.events import read_trace
    mode, path = sys.argv[1], Path(sys.argv[2])
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    trace = read_trace(path, compiled=mode == "reader")
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rows = {"x": len(trace.x), "flows": len(trace.flows), "events": trace.count}
    print(json.dumps({"seconds": seconds, "base_kb": base, "peak_kb": peak, "rows": rows}))
    """
)
# End to end as a user runs it: the CLI's analysis of the trace (imports, reading, every check, the
# JSON report), timed from before the imports.
_ANALYZE = textwrap.dedent(
    """
    import json, resource, sys, tempfile, time
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    from advisor.cli import main
    with tempfile.TemporaryDirectory() as out:
        code = main(["analyze", sys.argv[2], "--output", out, "--format", "json", "--quiet"])
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "base_kb": base, "peak_kb": peak, "rows": {"exit": code}}))
    """
)
# HTA's TraceAnalysis parses every trace of the folder into DataFrames (its own parser choice).
_HTA = textwrap.dedent(
    """
    import json, resource, sys, time
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    from hta.trace_analysis import TraceAnalysis
    imported = time.perf_counter()
    analysis = TraceAnalysis(trace_dir=sys.argv[2])
    seconds = time.perf_counter() - imported
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    frame = analysis.t.get_trace(0)
    print(json.dumps({"seconds": seconds, "base_kb": base, "peak_kb": peak, "rows": {"events": len(frame)}}))
    """
)


# Fields shifted in each copy of the events, so that copies are later steps of the same run: ids
# stay unique (tools join on correlation; repeated ids multiply rows) and time moves on.
_SHIFTED = re.compile(rb'"(ts|id|correlation|External id|Ev Idx)": (\d+)')


def write_big_trace(folder: Path, size_mb: float) -> tuple[Path, Path]:
    """A plain and a gzip trace of about `size_mb` MB: one generated rank, its events repeated with
    their timestamps and ids shifted past the previous copy's."""
    with tempfile.TemporaryDirectory() as scratch:
        spec = KinetoSpec(ranks=2, steps=(2, 3, 4, 5), gzip=False, profile_memory=True, ops_per_step=300)
        generated = write_kineto_traces(Path(scratch) / "gen", spec)
        text = next(p for p in sorted(generated.iterdir()) if p.name.startswith("rank0")).read_bytes()
    start = text.index(b"[", text.index(b'"traceEvents"')) + 1
    end = text.rindex(b"]", 0, text.rindex(b'"traceName"'))
    head, events, tail = text[:start], text[start:end].rstrip(), text[end:]
    numbers = [(key, int(value)) for key, value in _SHIFTED.findall(events)]
    span_us = max(v for k, v in numbers if k == b"ts") - min(v for k, v in numbers if k == b"ts") + 1000
    id_span = max(v for k, v in numbers if k != b"ts") + 1
    copies = max(1, round(size_mb * 1e6 / len(events)))
    plain = folder / "plain" / TRACE_NAME
    packed = folder / "gz" / (TRACE_NAME + ".gz")
    plain.parent.mkdir(parents=True, exist_ok=True)
    packed.parent.mkdir(parents=True, exist_ok=True)
    with plain.open("wb") as out, gzip.open(packed, "wb", compresslevel=zlib.Z_DEFAULT_COMPRESSION) as gz:

        def write(chunk: bytes) -> None:
            out.write(chunk)
            gz.write(chunk)

        write(head)
        for copy in range(copies):

            def shift(match: re.Match, copy: int = copy) -> bytes:
                step = span_us if match.group(1) == b"ts" else id_span
                return b'"%s": %d' % (match.group(1), int(match.group(2)) + copy * step)

            write((b",\n" if copy else b"") + _SHIFTED.sub(shift, events))
        write(b"\n" + tail)
    return plain, packed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mb", type=float, default=500.0, help="size of the plain trace (MB)")
    parser.add_argument("--repeat", type=int, default=2, help="runs per reader; the best time is kept")
    parser.add_argument("--out", type=Path, help="folder for the traces (kept and reused)")
    parser.add_argument("--hta-python", type=Path, help="python of a venv with HolisticTraceAnalysis")
    parser.add_argument("--compare-python", action="store_true", help="also the reader without its C scanner")
    args = parser.parse_args(argv)

    scratch = None if args.out else tempfile.mkdtemp()
    folder = args.out or Path(scratch)
    try:
        plain, packed = folder / "plain" / TRACE_NAME, folder / "gz" / (TRACE_NAME + ".gz")
        if plain.exists() and packed.exists():
            print(f"{folder}: reused")
        else:
            plain, packed = write_big_trace(folder, args.size_mb)
        size = plain.stat().st_size
        print(f"{plain}: {size / 1e6:.1f} MB; {packed}: {packed.stat().st_size / 1e6:.1f} MB")
        header = (
            f"{'reader':<14} {'file':<6} {'best s':>8} {'MB/s':>8} {'peak RSS MB':>12} {'over base MB':>13}"
        )
        print(header + "  rows")
        modes = ["reader", *(("reader-python",) if args.compare_python else ())]
        runs = [(mode, [sys.executable, "-c", _READER, mode]) for mode in modes]
        runs.append(("analyze (CLI)", [sys.executable, "-c", _ANALYZE, "analyze"]))
        if args.hta_python:
            runs.append(("HTA", [str(args.hta_python), "-c", _HTA, "hta"]))
        for mode, command in runs:
            for label, path in (("plain", plain), ("gz", packed)):
                target = str(path.parent if mode == "HTA" else path)
                result = best_of([*command, target], 1 if mode == "HTA" else args.repeat)
                mb_s = size / 1e6 / result["seconds"]  # the uncompressed size, for both
                peak, base = result["peak_kb"] / 1024, result["base_kb"] / 1024
                print(
                    f"{mode:<14} {label:<6} {result['seconds']:>8.2f} {mb_s:>8.1f} {peak:>12.0f} "
                    f"{peak - base:>13.0f}  {result['rows']}"
                )
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
