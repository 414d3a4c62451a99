"""Tolerant CSV reading for profiler exports (BOM, CRLF, padded cells, "N/A")."""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path

from ..errors import InputError

_MISSING = {"", "n/a", "na", "nan", "none", "null", "-", "--"}


def read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    """Header and rows with every cell stripped; blank lines skipped. InputError names the file."""
    try:
        with path.open("r", encoding="utf-8-sig", newline="") as fh:
            rows = [[cell.strip() for cell in row] for row in csv.reader(fh)]
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except csv.Error as exc:
        raise InputError(f"{path}: malformed CSV ({exc})") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    rows = [row for row in rows if any(row)]
    if not rows:
        raise InputError(f"{path}: empty file (no header)")
    return rows[0], rows[1:]


def normalise_header(name: str) -> str:
    """'Communication(Not Overlapped) (us)' -> 'communication(not overlapped)'."""
    name = re.sub(r"\s+", " ", name.strip().lower())
    return re.sub(r"\s*\((us|μs|µs)\)$", "", name)


def parse_number(value: str, path: Path, row: int, column: str) -> float:
    """A float from a cell; missing markers give NaN, anything else unreadable is an InputError."""
    text = value.strip()
    if text.lower() in _MISSING:
        return math.nan
    try:
        return float(text)
    except ValueError:
        raise InputError(f"{path}: row {row}, column {column!r}: not a number: {text[:40]!r}") from None
