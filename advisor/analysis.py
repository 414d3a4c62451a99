"""One analysis of a profile as the user names it, shared by the command line and the Python API.

Object-store inputs (obs://, s3://) are downloaded first (only the files the selected checks read);
the engine then runs on local folders, and the report names the data as the user gave it. A file of
the user's data that cannot be read is unusable input (InputError), not an internal error.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from . import engine
from .errors import InputError, OptionError, cannot
from .locations import is_within
from .options import AnalysisOptions, Deployment
from .progress import Reporter
from .report.model import Report
from .storage import is_object_url


def analyse_input(
    path: str,
    compare: str | None,
    *,
    options: AnalysisOptions,
    language: str,
    reporter: Reporter,
    step: int | None = None,
    deployment: Deployment | None = None,
    training_log: engine.TrainingLogInput | None = None,
) -> Report:
    """The report of `path` (against the baseline `compare`, with the training log beside it), or of
    the training log alone when `path` is that log; InputError (one line) for unusable input. The
    report's warnings are also given to `reporter`."""
    if training_log is not None and training_log.path == path:
        report = engine.run_log_analysis(training_log, options=options, language=language, progress=reporter)
        for warning in report.warnings:
            reporter.warning(warning)
        return report
    # On Dask, the workers read a profile in object storage themselves: nothing is downloaded here.
    on_workers = bool(deployment and deployment.dask_scheduler_address) and is_object_url(path)
    with contextlib.ExitStack() as stack:
        data = path if on_workers else _local_profile(stack, path, options, reporter)
        baseline = _local_profile(stack, compare, options, reporter) if compare else None
        local = [p for p in (data, baseline) if p is not None and not is_object_url(str(p))]
        try:
            report = engine.run_analysis(
                data,
                compare_path=baseline,
                options=options,
                language=language,
                progress=reporter,
                step=step,
                deployment=deployment,
                training_log=training_log,
            )
        except OSError as exc:
            # A file of the user's data that cannot be read is unusable input, not a bug of ours.
            if exc.filename is None or not any(is_within(exc.filename, p) for p in local):
                raise
            raise InputError(cannot("read", exc.filename, exc)) from None
    # The report names the data as the user gave it, not the download cache folder.
    if data != path:
        report.input.path = path
    if baseline is not None and baseline != compare:
        report.input.compare_path = compare
    for warning in report.warnings:
        reporter.warning(warning)
    return report


def training_log_input(
    path: str,
    training_log: str | None,
    *,
    devices: int | None,
    seq_length: int | None,
    compare: str | None = None,
    step: object = None,
) -> engine.TrainingLogInput | None:
    """The training log to read: `path` itself when it is one (analysed alone; a training log beside
    it, a baseline or a step then make no sense), else `training_log` beside the profile, else none."""
    from .formats.training_log import is_training_log

    if not is_object_url(path) and is_training_log(path):
        alone = [
            flag
            for flag, given in (("--training-log", training_log), ("--compare", compare), ("--step", step))
            if given is not None and given != ""
        ]
        if alone:
            raise OptionError(f"PATH {path} is a training log: {', '.join(alone)} needs a profile as PATH")
        return engine.TrainingLogInput(path, devices, seq_length)
    if training_log:
        if is_object_url(training_log):
            raise OptionError("--training-log takes a local file, not obs:// or s3://")
        return engine.TrainingLogInput(training_log, devices, seq_length)
    return None


def _local_profile(
    stack: contextlib.ExitStack, path: str, options: AnalysisOptions, reporter: Reporter
) -> str | Path:
    """`path` itself, or for obs:// and s3:// the cache folder the needed files were downloaded to."""
    if not is_object_url(path):
        return path
    from .storage import open_profile

    tables = engine.needed_tables(options.analysis_dimensions)
    folder, stats = stack.enter_context(open_profile(path, tables=tables, progress=reporter))
    for warning in stats.warnings:
        reporter.warning(warning)
    return folder
