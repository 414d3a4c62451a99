"""Plan and run an analysis: discover, load per-rank tables, run checks, build the Report."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import pandas as pd

from . import __version__
from .checks.catalogue import applicable_dimensions, unimplemented
from .checks.registry import (
    CheckResult,
    CheckSpec,
    ClusterContext,
    RankContext,
    all_checks,
    selected_checks,
)
from .checks.registry import (
    NotEvaluated as CheckNotEvaluated,
)
from .errors import InputError
from .options import REPORT_FORMATS, AnalysisOptions
from .profiles.discover import (
    MINDSPORE_SUFFIX,
    OUTPUT_DIR,
    RANK_SUFFIX,
    ProfileSet,
    RankInfo,
    describe_steps,
    discover,
)
from .profiles.tables import READER_MODULES, load_table
from .report.messages import Messages
from .report.model import Finding, InputInfo, NotEvaluated, Report

ProgressFn = Callable[[str, int, int], None]


def _no_progress(stage: str, done: int, total: int) -> None:
    pass


def load_rank_tables(rank: RankInfo, names: Sequence[str]) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    """Tables of one rank, and a one-line reason for each table that could not be read.

    Runs in worker processes: returns plain strings for errors so that nothing unpicklable travels.
    """
    tables: dict[str, pd.DataFrame] = {}
    errors: dict[str, str] = {}
    for name in names:
        try:
            tables[name] = load_table(name, rank)
        except InputError as exc:
            errors[name] = str(exc)
        except Exception as exc:  # a reader bug on odd data must not sink the other ranks
            errors[name] = _one_line(
                f"internal error reading {name} of {rank.path}: {type(exc).__name__}: {exc}"
            )
    return tables, errors


def _one_line(text: str) -> str:
    return " ".join(text.split())


def load_all_tables(
    profile: ProfileSet, names: Sequence[str], processes: int, progress: ProgressFn, total: int
) -> tuple[dict[int, dict[str, pd.DataFrame]], dict[int, dict[str, str]]]:
    tables: dict[int, dict[str, pd.DataFrame]] = {}
    errors: dict[int, dict[str, str]] = {}
    n = len(profile.ranks)
    if not names:
        return {r.rank: {} for r in profile.ranks}, {r.rank: {} for r in profile.ranks}
    if processes > 1 and n > 1:
        # forkserver, not fork: the engine may run inside a threaded process. The server process
        # imports the readers once, so each worker starts without paying for pandas/pyarrow again.
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(list(READER_MODULES))
        with ProcessPoolExecutor(max_workers=min(processes, n), mp_context=context) as pool:
            futures = {pool.submit(load_rank_tables, rank, list(names)): rank.rank for rank in profile.ranks}
            for done, future in enumerate(as_completed(futures), start=1):
                tables[futures[future]], errors[futures[future]] = future.result()
                if done < n:
                    progress(f"reading rank {done + 1}/{n}", done, total)
    else:
        for done, rank in enumerate(profile.ranks, start=1):
            tables[rank.rank], errors[rank.rank] = load_rank_tables(rank, names)
            if done < n:
                progress(f"reading rank {done + 1}/{n}", done, total)
    return dict(sorted(tables.items())), dict(sorted(errors.items()))


def table_warnings(tables: dict[int, dict[str, pd.DataFrame]]) -> list[str]:
    """What the readers could not read (e.g. a truncated trace), once each, for the report."""
    found = (
        w for rank in tables.values() for frame in rank.values() for w in frame.attrs.get("warnings", ())
    )
    return list(dict.fromkeys(found))


def select_step(tables: dict[str, pd.DataFrame], step: int) -> dict[str, pd.DataFrame]:
    """Only `step`'s rows of the tables that are per step; whole-profile tables stay as they are."""
    return {
        name: frame[frame["step"] == step].reset_index(drop=True) if "step" in frame.columns else frame
        for name, frame in tables.items()
    }


def _normalise(result: Any, check_id: str) -> CheckResult:
    if isinstance(result, CheckResult):
        out = result
    elif isinstance(result, list):
        out = CheckResult(findings=result)
    else:
        raise TypeError(f"check {check_id} returned {type(result).__name__}, not a list of findings")
    for finding in out.findings:
        if not isinstance(finding, Finding):
            raise TypeError(f"check {check_id} returned a {type(finding).__name__} among its findings")
    return out


def _run_one(spec: CheckSpec, ctx: Any, messages: Messages, prefix: str = "") -> CheckResult | NotEvaluated:
    try:
        return _normalise(spec.fn(ctx), spec.id)
    except CheckNotEvaluated as exc:
        return NotEvaluated(spec.id, _one_line(prefix + exc.reason))
    except Exception as exc:  # a failing check lands in not_evaluated, it never sinks the run
        reason = messages.t("engine.check_failed", error=f"{type(exc).__name__}: {exc}")
        return NotEvaluated(spec.id, _one_line(prefix + reason))


def run_checks(
    specs: Iterable[CheckSpec],
    profile: ProfileSet,
    tables: dict[int, dict[str, pd.DataFrame]],
    errors: dict[int, dict[str, str]],
    options: AnalysisOptions,
    messages: Messages,
) -> tuple[list[Finding], list[NotEvaluated], dict[str, Any]]:
    findings: list[Finding] = []
    not_evaluated: list[NotEvaluated] = []
    summary: dict[str, Any] = {"per_rank": []}

    def collect(outcome: CheckResult | NotEvaluated) -> None:
        if isinstance(outcome, NotEvaluated):
            not_evaluated.append(outcome)
            return
        findings.extend(outcome.findings)
        for key, value in outcome.summary.items():
            if isinstance(value, list) and isinstance(summary.get(key), list):
                summary[key].extend(value)
            else:
                summary[key] = value

    def missing_reason(rank: int, needs: frozenset[str]) -> str | None:
        absent = sorted(n for n in needs if n not in tables.get(rank, {}))
        return errors.get(rank, {}).get(absent[0], f"table {absent[0]} unavailable") if absent else None

    for spec in specs:
        if spec.scope == "rank":
            for rank in profile.ranks:
                reason = missing_reason(rank.rank, spec.needs)
                if reason:
                    not_evaluated.append(
                        NotEvaluated(
                            spec.id, messages.t("engine.missing_table", rank=rank.rank, reason=reason)
                        )
                    )
                    continue
                ctx = RankContext(
                    profile, rank, {n: tables[rank.rank][n] for n in spec.needs}, options, messages
                )
                prefix = f"rank {rank.rank}: " if len(profile.ranks) > 1 else ""
                collect(_run_one(spec, ctx, messages, prefix))
            continue
        usable: dict[int, dict[str, pd.DataFrame]] = {}
        for rank in profile.ranks:
            reason = missing_reason(rank.rank, spec.needs)
            if reason:
                not_evaluated.append(
                    NotEvaluated(spec.id, messages.t("engine.rank_left_out", rank=rank.rank, reason=reason))
                )
            else:
                usable[rank.rank] = {n: tables[rank.rank][n] for n in spec.needs}
        if usable:
            collect(_run_one(spec, ClusterContext(profile, usable, options, messages), messages))
    return findings, not_evaluated, summary


def run_analysis(
    path: str | Path,
    *,
    compare_path: str | Path | None = None,
    options: AnalysisOptions | None = None,
    language: str = "en",
    progress: ProgressFn | None = None,
    step: int | None = None,
) -> Report:
    """Analyse the profile at `path` (only `step` when given). InputError for unusable input; a
    failing check never raises."""
    options = options or AnalysisOptions()
    messages = Messages(language)
    notify = progress or _no_progress
    started = time.perf_counter()

    profile = discover(path)
    compare = discover(compare_path) if compare_path is not None else None
    specs = selected_checks(options.analysis_dimensions)
    names = sorted({name for spec in specs for name in spec.needs})
    total = len(profile.ranks) + 2
    notify(f"reading rank 1/{len(profile.ranks)}", 0, total)
    if step is not None and step not in profile.steps:
        raise InputError(f"{profile.root}: step {step} was not profiled ({describe_steps(profile.steps)})")
    tables, errors = load_all_tables(profile, names, options.advisor_analyze_processes, notify, total)
    if step is not None:
        tables = {rank: select_step(rank_tables, step) for rank, rank_tables in tables.items()}
    if names and not any(tables.values()):
        # Nothing at all could be read: that is unusable input, not a report with every check missing.
        first = next(msg for rank_errors in errors.values() for msg in rank_errors.values())
        others = sum(len(e) for e in errors.values()) - 1
        raise InputError(first + (f" (and {others} more like it)" if others else ""))
    loaded = time.perf_counter()

    notify("running checks", len(profile.ranks), total)
    findings, not_evaluated, summary = run_checks(specs, profile, tables, errors, options, messages)
    dimensions = applicable_dimensions(
        options.analysis_dimensions,
        ranks=len(profile.ranks),
        has_baseline=compare is not None,
        comparison_disabled=options.disable_profiling_comparison,
    )
    not_evaluated.extend(
        NotEvaluated(c, messages.t("engine.not_implemented"))
        for c in unimplemented(dimensions, (spec.id for spec in all_checks()))
    )
    checked = time.perf_counter()

    return Report(
        input=InputInfo(
            path=str(profile.root),
            compare_path=str(compare.root) if compare is not None else None,
            kind=profile.kind,
            export=profile.export,
            ranks=[r.rank for r in profile.ranks],
            steps=[step] if step is not None else list(profile.steps),
            cann_version=profile.cann_version,
            torch_version=profile.torch_version,
        ),
        tool_version=__version__,
        summary=summary,
        findings=findings,
        not_evaluated=not_evaluated,
        timings_s={"load": loaded - started, "checks": checked - loaded, "render": 0.0},
        language=language,
        description=profile.describe(),
        warnings=list(profile.warnings)
        + (list(compare.warnings) if compare else [])
        + table_warnings(tables),
        dimensions=tuple(options.analysis_dimensions),
        checked_dimensions=tuple(dict.fromkeys(spec.dimension for spec in specs)),
        version_hints={"cann_version": options.cann_version, "torch_version": options.torch_version},
    )


def _check_output_dir(output_dir: Path) -> Path:
    out = output_dir.expanduser()
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: output path exists and is not a directory")
    resolved = out.resolve()
    for part in (resolved, *resolved.parents):
        if part.name.endswith((RANK_SUFFIX, MINDSPORE_SUFFIX)) or part.name == OUTPUT_DIR:
            raise InputError(
                f"{out}: output folder is inside profiling data ({part}); input folders are read-only"
            )
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{out}: cannot create the output folder ({exc.strerror})") from None
    return out


def write_reports(
    report: Report,
    output_dir: str | Path,
    formats: Iterable[str] = REPORT_FORMATS,
    *,
    progress: ProgressFn | None = None,
) -> dict[str, Path]:
    """Write `performance_advisor_<YYYYmmddHHMMSS>[_N].{html,xlsx,json}`; never overwrites a file."""
    from .report.html import write_html
    from .report.jsonout import write_json
    from .report.xlsx import write_xlsx

    chosen = [f for f in REPORT_FORMATS if f in set(formats)]
    unknown = sorted(set(formats) - set(REPORT_FORMATS))
    if unknown or not chosen:
        raise InputError(
            f"report formats must be among {', '.join(REPORT_FORMATS)}; got {', '.join(formats)}"
        )
    out = _check_output_dir(Path(output_dir))
    total = len(report.input.ranks) + 2
    (progress or _no_progress)("writing report", total - 1, total)
    started = time.perf_counter()
    base = f"performance_advisor_{report.generated.strftime('%Y%m%d%H%M%S')}"
    writers = {"html": write_html, "xlsx": write_xlsx, "json": write_json}
    suffix = 0
    while True:
        name = base if suffix == 0 else f"{base}_{suffix}"
        paths = {fmt: (out / f"{name}.{fmt}").absolute() for fmt in chosen}
        if any(p.exists() for p in paths.values()):
            suffix += 1
            continue
        written: list[Path] = []
        try:
            for fmt in chosen:
                if fmt == "json":  # last, so that it carries the render time of the others
                    report.timings_s["render"] = time.perf_counter() - started
                written.append(writers[fmt](report, paths[fmt]))
        except FileExistsError:
            # Another analysis took this name between our check and our write: use the next one.
            for path in written:
                path.unlink(missing_ok=True)
            suffix += 1
            continue
        break
    report.timings_s["render"] = time.perf_counter() - started
    (progress or _no_progress)("done", total, total)
    return paths
