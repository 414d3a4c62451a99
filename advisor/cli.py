"""`performance-advisor` command line (docs/architecture.md §3.1).

Exit codes: 0 the analysis ran (whatever it found); 2 unusable input or options (one line on
stderr); 1 internal error (one line, traceback with --debug).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO, cast

from .errors import InputError, OptionError
from .lifeline import bind_to_parent_from_environment, remove_partial_reports_on_sigterm
from .locations import refuse_output_inside_inputs
from .options import (
    OUTPUT_FORMATS,
    REPORT_FORMATS,
    AnalysisOptions,
    Deployment,
    JobParameters,
    add_cli_arguments,
    from_cli,
    parse_choice,
)
from .outputs import discard
from .progress import PROGRESS_MODES, Reporter, make_reporter, one_line
from .ranges import number_ranges
from .tool_version import __version__

if TYPE_CHECKING:
    from .report.model import Report

PROG = "performance-advisor"
MAX_DEMO_RANKS = 64
MAX_SYNTH_RANKS = 1024
SYNTH_PROFILERS = ("ascend", "kineto", "training_log")
SUMMARY_ROWS = 10  # findings listed after the report paths; the report has the rest
# ANSI colours of the priorities on a terminal (red, yellow, green), as the report's badges.
PRIORITY_COLOURS = {"high": "\033[1;31m", "medium": "\033[1;33m", "low": "\033[32m"}
RESET = "\033[0m"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Explain why a training job is slow from its profiling data."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{analyze,demo,synth}")

    analyze = sub.add_parser("analyze", help="analyse a profile and write reports")
    analyze.add_argument(
        "path",
        help="an *_ascend_pt rank folder, or a folder of them (a cluster); a PyTorch profiler trace "
        "(*.json, *.json.gz), or a folder of them (one per rank); or obs://bucket/dir, s3://bucket/dir; "
        "or a training log alone (trainer_log.jsonl, Megatron/MindSpeed stdout, trainer_state.json)",
    )
    analyze.add_argument("--compare", metavar="PATH", help="a baseline profile to compare with (or obs://…)")
    add_cli_arguments(analyze, JobParameters)
    analyze.add_argument(
        "--local-output",
        metavar="DIR",
        default=None,
        help="with --output obs://…: also keep the reports here (default: only uploaded)",
    )
    analyze.add_argument(
        "--format",
        default=",".join(REPORT_FORMATS),
        help=f"comma-separated, among {','.join(OUTPUT_FORMATS)} (ipynb: a notebook that re-analyses "
        f"the data with the Python API; default {','.join(REPORT_FORMATS)})",
    )
    analyze.add_argument("--step", help="analyse this profiled step only (default: every profiled step)")
    add_cli_arguments(analyze, AnalysisOptions)
    add_cli_arguments(analyze, Deployment)
    analyze.add_argument("--quiet", action="store_true", help="no progress output")
    analyze.add_argument(
        "--progress", choices=PROGRESS_MODES, default="auto", help="progress format on stderr"
    )
    analyze.add_argument("--debug", action="store_true", help="show tracebacks")

    demo = sub.add_parser("demo", help="write a demo profile (a small cluster with known problems)")
    demo.add_argument("dest", help="a new or empty folder")
    demo.add_argument("--ranks", default="2", help=f"number of ranks (1-{MAX_DEMO_RANKS})")
    demo.add_argument("--steps", default="12-14", help="step numbers: 12-14 or 3,5,7")
    demo.add_argument("--seed", default="0", help="random seed")
    demo.add_argument("--debug", action="store_true", help="show tracebacks")

    synth = sub.add_parser(
        "synth", help="write a synthetic profile with injected problems and their ground truth"
    )
    synth.add_argument("dest", help="a new or empty folder")
    synth.add_argument("--ranks", default="2", help=f"number of ranks (1-{MAX_SYNTH_RANKS})")
    synth.add_argument(
        "--steps", default="12-14", help="a number of steps (20) or step numbers (12-14, 3,5,7)"
    )
    synth.add_argument(
        "--size-mb", default=None, help="trace_view.json size per rank; sets the number of steps"
    )
    synth.add_argument("--inject", default="", help="comma-separated check ids to build in (gc, aicpu, ...)")
    synth.add_argument(
        "--inject-ranks", default=None, help="ranks the faults hit, e.g. 1,3 (default per fault)"
    )
    synth.add_argument("--export", default="text", help="text, db or both")
    synth.add_argument(
        "--no-gc-events",
        dest="gc_events",
        action="store_false",
        help="GC detection off (torch_npu's default): no 'Python GC' events; gc pauses last 150-400 ms",
    )
    synth.add_argument("--workload", default="cnn", help="cnn or llm (a compute-bound decoder)")
    synth.add_argument("--pmu", default=None, help="ideal or realistic (default: per workload)")
    synth.add_argument("--pp", default="1", help="pipeline-parallel stages (1F1B)")
    synth.add_argument("--microbatches", default=None, help="micro-batches per step (default: per workload)")
    synth.add_argument("--ranks-per-node", default="8", help="ranks per node (RDMA between nodes)")
    synth.add_argument("--profiler-level", default="Level1", help="Level0 or Level1")
    synth.add_argument("--seed", default="0", help="random seed")
    synth.add_argument(
        "--profiler",
        default="ascend",
        help="ascend (rank folders) or kineto (PyTorch profiler traces; only --ranks, --steps, --inject, "
        "--inject-ranks, --seed, --device and --schema apply)",
    )
    synth.add_argument(
        "--log-format",
        default="llamafactory",
        help="training_log: llamafactory, megatron or hf_trainer_state (--steps: steps of the run; --inject: "
        "loss_spike, nan_loss, loss_divergence, throughput_drop, stalls, warmup)",
    )
    synth.add_argument("--device", default="cuda", help="kineto: cuda or cpu")
    synth.add_argument("--schema", default="new", help="kineto: new (torch >= 2.4) or old (2021)")
    synth.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser


def parse_formats(value: str) -> tuple[str, ...]:
    chosen = [parse_choice("format", item, OUTPUT_FORMATS) for item in value.split(",") if item.strip()]
    if not chosen:
        raise OptionError(f"format must name at least one of {', '.join(OUTPUT_FORMATS)}")
    return tuple(f for f in OUTPUT_FORMATS if f in chosen)


def parse_steps(value: str) -> tuple[int, ...]:
    steps: list[int] = []
    for item in value.split(","):
        item = item.strip()
        match = re.fullmatch(r"(\d+)\s*[-–]\s*(\d+)", item)
        if match and int(match.group(1)) <= int(match.group(2)):
            steps.extend(range(int(match.group(1)), int(match.group(2)) + 1))
        elif item.isdigit():
            steps.append(int(item))
        else:
            raise OptionError(f"steps must look like 12-14 or 3,5,7; got {value!r}")
    if len(steps) > 1000 or len(set(steps)) != len(steps):
        raise OptionError(f"steps must be at most 1000 distinct numbers; got {value!r}")
    return tuple(steps)


def _int_option(name: str, value: str, low: int, high: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise OptionError(f"{name} must be an integer; got {value!r}") from None
    if not low <= number <= high:
        raise OptionError(f"{name} must be between {low} and {high}; got {number}")
    return number


def _analyze(args: argparse.Namespace, reporter: Reporter) -> int:
    from .analysis import analyse_input, training_log_input
    from .engine import write_reports

    options: AnalysisOptions = from_cli(args, AnalysisOptions)
    job: JobParameters = from_cli(args, JobParameters)
    deployment: Deployment = from_cli(args, Deployment)
    formats = parse_formats(args.format)
    step = _int_option("step", args.step, 0, 2**63 - 1) if args.step is not None else None
    upload_to = job.output_path if _is_object_url(job.output_path) else None
    inputs = {"PATH": args.path, **({"--compare": args.compare} if args.compare else {})}
    refuse_output_inside_inputs(job.output_path, inputs, "--output")
    if args.local_output:
        refuse_output_inside_inputs(args.local_output, inputs, "--local-output")
    if upload_to:
        from .storage import load_config, parse_url
        from .storage.client import make_client

        target = parse_url(upload_to)
        make_client(load_config(target.scheme), str(target))  # no credentials: fail before analysing
    given_log = training_log_input(
        args.path,
        job.training_log,
        devices=job.devices,
        seq_length=job.seq_length,
        compare=args.compare,
        step=args.step,
    )
    report = analyse_input(
        args.path,
        args.compare,
        options=options,
        language=job.language,
        reporter=reporter,
        step=step,
        deployment=deployment,
        training_log=given_log,
    )
    if upload_to is None:
        paths = write_reports(report, job.output_path, formats, progress=reporter)
        reporter.result(paths)
        for path in paths.values():
            print(path)
        if not args.quiet:
            print_summary(report)
        return 0
    # The upload's local staging folder: only this path needs tempfile and shutil.
    import shutil
    import tempfile

    from .storage import upload_reports

    local = (
        Path(args.local_output) if args.local_output else Path(tempfile.mkdtemp(prefix="advisor-reports-"))
    )
    try:
        paths = write_reports(report, local, formats, progress=reporter)
        try:
            uploaded = upload_reports(paths, upload_to)
        except BaseException:
            discard(paths.values())  # the local copies of a set that was not uploaded: all or none
            raise
    finally:
        if not args.local_output:
            shutil.rmtree(local, ignore_errors=True)
    # The server serves the local copies; without them the uploaded objects are the result.
    reporter.result(paths if args.local_output else cast("dict[str, Path]", uploaded))  # URLs, not paths
    for url in uploaded.values():
        print(url)
    if not args.quiet:
        print_summary(report)
    return 0


def use_colour(stream: TextIO) -> bool:
    """Colours only on a terminal, and never when NO_COLOR is set (https://no-color.org)."""
    return stream.isatty() and not os.environ.get("NO_COLOR")


def print_summary(report: Report, stream: TextIO | None = None) -> None:
    """After the report paths, a blank line, what was analysed ("PyTorch profiler trace (GPU: …), 8
    ranks, steps 1–3") and one line per cause to fix, as the report's "What to fix first" ranks them:
    priority, title, estimated gain per step (its text brings the leading blank where the language
    wants one). The paths stay the first lines of stdout."""
    from .report.messages import Messages

    out = stream if stream is not None else sys.stdout
    m = Messages(report.language)
    ranked = [f for f in report.sorted_findings() if f.ranked]
    lines = ["", report.description()]
    if not ranked:
        lines.append(m.t("report.fix_first.none"))
    labels = {p: m.t(f"report.priority.{p}").upper() for p in PRIORITY_COLOURS}
    width = max(len(label) for label in labels.values())
    colour = use_colour(out)
    for finding in ranked[:SUMMARY_ROWS]:
        label = labels[finding.priority].ljust(width)
        if colour:
            label = f"{PRIORITY_COLOURS[finding.priority]}{label}{RESET}"
        gain = finding.estimated_gain_us
        if gain is None:
            figure = ""
        elif finding.share_of_step is None:
            figure = m.t("cli.summary.gain", gain_ms=gain / 1000)
        else:
            figure = m.t("cli.summary.gain_share", gain_ms=gain / 1000, share=finding.share_of_step)
        lines.append(f"{label}  {one_line(finding.title)}{figure}")
    if len(ranked) > SUMMARY_ROWS:
        lines.append(m.t("cli.summary.more", count=len(ranked) - SUMMARY_ROWS))
    out.write("\n".join(lines) + "\n")
    out.flush()


def _is_object_url(path: str | None) -> bool:
    from .storage import is_object_url

    return is_object_url(path)


def _demo(args: argparse.Namespace) -> int:
    import shlex

    from .demo import DEMO_TRAINING_LOG, write_demo_profile, write_demo_training_log

    ranks = _int_option("ranks", args.ranks, 1, MAX_DEMO_RANKS)
    seed = _int_option("seed", args.seed, 0, 2**32 - 1)
    steps = parse_steps(args.steps)
    dest = write_demo_profile(args.dest, ranks=ranks, steps=steps, seed=seed)
    write_demo_training_log(dest / DEMO_TRAINING_LOG, devices=ranks)
    print(f"Wrote a demo profile to {dest}: {ranks} rank{'s' if ranks != 1 else ''}, ", end="")
    print(f"step{'s' if len(steps) != 1 else ''} {number_ranges(steps)}, with problems built in to find,")
    print(f"and its job's training log, {DEMO_TRAINING_LOG}.")
    log = shlex.quote(str(Path(args.dest) / DEMO_TRAINING_LOG))
    print(f"Analyse it:  {PROG} analyze {shlex.quote(args.dest)} --training-log {log} --devices {ranks}")
    return 0


def _synth(args: argparse.Namespace) -> int:
    from .synth import SynthSpec, check_faults, parse_faults, write_synth_profile
    from .synth.spec import PMU_MODES, PROFILER_LEVELS, WORKLOADS

    ranks = _int_option("ranks", args.ranks, 1, MAX_SYNTH_RANKS)
    count = args.steps.strip()
    steps = (
        tuple(range(1, _int_option("steps", count, 1, 100_000) + 1))
        if count.isdigit()
        else parse_steps(count)
    )
    profiler = parse_choice("profiler", args.profiler, SYNTH_PROFILERS)
    if profiler == "kineto":
        return _synth_kineto(args, ranks, steps)
    if profiler == "training_log":
        return _synth_training_log(args, len(steps))
    try:
        spec = SynthSpec(
            ranks=ranks,
            steps=steps,
            seed=_int_option("seed", args.seed, 0, 2**32 - 1),
            size_mb=float(args.size_mb) if args.size_mb is not None else None,
            inject=parse_faults(args.inject),
            inject_ranks=tuple(int(r) for r in args.inject_ranks.split(",")) if args.inject_ranks else None,
            export=parse_choice("export", args.export, ("text", "db", "both")),
            gc_events=args.gc_events,
            workload=parse_choice("workload", args.workload, WORKLOADS),
            pmu=parse_choice("pmu", args.pmu, PMU_MODES) if args.pmu is not None else None,
            pipeline_parallel=_int_option("pp", args.pp, 1, MAX_SYNTH_RANKS),
            microbatches=_int_option("microbatches", args.microbatches, 1, 256)
            if args.microbatches
            else None,
            ranks_per_node=_int_option("ranks-per-node", args.ranks_per_node, 1, MAX_SYNTH_RANKS),
            profiler_level=parse_choice("profiler-level", args.profiler_level, PROFILER_LEVELS),
        )
        check_faults(spec)
    except ValueError as exc:  # numbers out of range, an unknown fault, a fault this cluster cannot have
        raise OptionError(f"synth: {exc}") from None
    print(write_synth_profile(args.dest, spec))
    return 0


def _synth_kineto(args: argparse.Namespace, ranks: int, steps: tuple[int, ...]) -> int:
    from .synth import parse_faults
    from .synth.kineto import KINETO_FAULTS, KinetoSpec, write_kineto_traces
    from .synth.kineto.spec import DEVICES, SCHEMAS

    try:
        spec = KinetoSpec(
            ranks=ranks,
            steps=steps,
            seed=_int_option("seed", args.seed, 0, 2**32 - 1),
            device=parse_choice("device", args.device, DEVICES),
            schema=parse_choice("schema", args.schema, SCHEMAS),
            inject=parse_faults(args.inject, KINETO_FAULTS),
            inject_ranks=tuple(int(r) for r in args.inject_ranks.split(",")) if args.inject_ranks else None,
        )
    except ValueError as exc:  # numbers out of range, an unknown fault, a fault this device cannot have
        raise OptionError(f"synth: {exc}") from None
    print(write_kineto_traces(args.dest, spec))
    return 0


def _synth_training_log(args: argparse.Namespace, steps: int) -> int:
    from .synth.training_log import ANOMALIES, LOG_FORMATS, TrainingLogSpec, write_training_log

    try:
        spec = TrainingLogSpec(
            format=parse_choice("log-format", args.log_format, LOG_FORMATS),
            steps=steps,
            seed=_int_option("seed", args.seed, 0, 2**32 - 1),
            inject=tuple(
                parse_choice("inject", item, ANOMALIES) for item in args.inject.split(",") if item.strip()
            ),
        )
    except ValueError as exc:  # too few steps
        raise OptionError(f"synth: {exc}") from None
    print(write_training_log(args.dest, spec))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    reporter: Reporter = Reporter()
    if args.command == "analyze":
        reporter = make_reporter(args.progress, quiet=args.quiet)
        remove_partial_reports_on_sigterm()
        bind_to_parent_from_environment()
    try:
        if args.command == "analyze":
            return _analyze(args, reporter)
        return _demo(args) if args.command == "demo" else _synth(args)
    except InputError as exc:
        message = one_line(str(exc))
        reporter.error(message)
        print(f"{PROG}: error: {message}", file=sys.stderr)
        if args.debug:
            traceback.print_exc()
        return 2
    except KeyboardInterrupt:
        reporter.error("interrupted")
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        message = one_line(f"{type(exc).__name__}: {exc}")
        reporter.error(f"internal error: {message}")
        if args.debug:
            traceback.print_exc()
            print(f"{PROG}: internal error: {message}", file=sys.stderr)
        else:
            print(
                f"{PROG}: internal error: {message} (rerun with --debug for the traceback)", file=sys.stderr
            )
        return 1


if __name__ == "__main__":
    sys.exit(main())
