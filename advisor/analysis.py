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
from .options import AnalysisOptions
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
    scheduler_address: str | None = None,
) -> Report:
    """The report of `path` (against the baseline `compare`); InputError (one line) for unusable
    input. The report's warnings are also given to `reporter`."""
    inputs = [path, *([compare] if compare else [])]
    if scheduler_address and any(is_object_url(p) for p in inputs):
        # The ranks would be downloaded here, to a folder the workers cannot read.
        raise OptionError(
            "--scheduler takes local paths on a file system the workers share, not obs:// or s3://"
        )
    with contextlib.ExitStack() as stack:
        data = _local_profile(stack, path, options, reporter)
        baseline = _local_profile(stack, compare, options, reporter) if compare else None
        local = [p for p in (data, baseline) if p is not None]
        try:
            report = engine.run_analysis(
                data,
                compare_path=baseline,
                options=options,
                language=language,
                progress=reporter,
                step=step,
                scheduler_address=scheduler_address,
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
