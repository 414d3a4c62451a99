"""Progress reporting on stderr (see docs/design.md, "Progress protocol").

- json:  one JSON object per line ({"event": "progress" | "warning" | "result" | "error", ...}) for the
  server;
- a terminal: a one-line progress bar redrawn with '\\r';
- otherwise: plain "[done/total] stage" lines.

Warnings say what changed the result (a rank folder left out, a table not read), so they are written
in every mode, --quiet included: one "warning: ..." line each, or a warning event.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TextIO

PROGRESS_MODES = ("auto", "json", "plain")


class Reporter:
    """Base reporter (used for --quiet): no progress, warnings only."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr

    def __call__(self, stage: str, done: int, total: int) -> None:
        pass

    def result(self, reports: dict[str, Path]) -> None:
        pass

    def error(self, message: str) -> None:
        pass

    def warning(self, message: str) -> None:
        self._write(f"warning: {one_line(message)}\n")

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()


class JsonReporter(Reporter):
    def __init__(self, stream: TextIO | None = None, *, quiet: bool = False) -> None:
        super().__init__(stream)
        self.quiet = quiet

    def _event(self, **fields: object) -> None:
        self._write(json.dumps(fields, ensure_ascii=False) + "\n")

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.quiet:
            self._event(event="progress", stage=stage, done=done, total=total)

    # warning, result and error events are the protocol itself, so --quiet keeps them.
    def result(self, reports: dict[str, Path]) -> None:
        self._event(event="result", reports={fmt: str(path) for fmt, path in reports.items()})

    def error(self, message: str) -> None:
        self._event(event="error", message=message)

    def warning(self, message: str) -> None:
        self._event(event="warning", message=one_line(message))


class PlainReporter(Reporter):
    def __call__(self, stage: str, done: int, total: int) -> None:
        self._write(f"[{done}/{total}] {stage}\n")


class BarReporter(Reporter):
    WIDTH = 30

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(stream)
        self._open = False

    def __call__(self, stage: str, done: int, total: int) -> None:
        filled = self.WIDTH * done // total if total else self.WIDTH
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        self._write(f"\r[{bar}] {done}/{total} {stage[:50]:<50}")
        self._open = done < total
        if not self._open:
            self._write("\n")

    def _end_line(self) -> None:
        if self._open:
            self._write("\n")
            self._open = False

    def result(self, reports: dict[str, Path]) -> None:
        self._end_line()

    def error(self, message: str) -> None:
        self._end_line()

    def warning(self, message: str) -> None:
        self._end_line()
        super().warning(message)


def one_line(message: str) -> str:
    """`message` with its line breaks and runs of blanks made single spaces."""
    return " ".join(message.split())


def make_reporter(mode: str = "auto", *, quiet: bool = False, stream: TextIO | None = None) -> Reporter:
    """The reporter for `--progress MODE` (auto: a bar on a terminal, plain lines otherwise)."""
    stream = stream if stream is not None else sys.stderr
    if mode == "json":
        return JsonReporter(stream, quiet=quiet)
    if quiet:
        return Reporter(stream)
    if mode == "plain":
        return PlainReporter(stream)
    return BarReporter(stream) if stream.isatty() else PlainReporter(stream)
