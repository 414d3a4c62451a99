"""Reading a log's text: line by line, size-guarded, with the one-line errors of a bad file."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from ...errors import InputError, byte_size, cannot

# A trainer_state.json is one JSON document, read whole: past this it is not one Trainer wrote.
MAX_JSON_BYTES = 256 << 20
# How far into a log its format is looked for (Megatron prints its arguments and set-up first).
SNIFF_BYTES = 8 << 20
NOT_A_LOG = (
    "not a training log (LLaMA-Factory trainer_log.jsonl, Megatron/MindSpeed stdout or HuggingFace "
    "trainer_state.json)"
)


def refuse(path: str | Path, why: str) -> InputError:
    return InputError(f"{path}: {NOT_A_LOG}: {why}")


def checked_file(path: str | Path) -> Path:
    """`path` if it is a readable file, else InputError naming it."""
    file = Path(path)
    try:
        if file.is_dir():
            raise InputError(f"{path}: {NOT_A_LOG}: it is a folder")
        if not file.is_file():
            raise InputError(f"{path}: no such file")
        with file.open("rb"):
            pass
    except OSError as exc:
        raise InputError(cannot("read", path, exc)) from None
    return file


def lines(path: Path) -> Iterator[str]:
    """The file's lines, decoded leniently (a log may hold a stray byte of another encoding)."""
    try:
        with path.open("r", encoding="utf-8", errors="replace", newline=None) as fh:
            yield from fh
    except OSError as exc:
        raise InputError(cannot("read", path, exc)) from None


def head(path: Path, size: int = SNIFF_BYTES) -> str:
    try:
        with path.open("rb") as fh:
            data = fh.read(size)
    except OSError as exc:
        raise InputError(cannot("read", path, exc)) from None
    if b"\0" in data[:4096]:
        raise refuse(path, "it is a binary file")
    return data.decode("utf-8", errors="replace")


def tail(path: Path, size: int = 1 << 16) -> str:
    with path.open("rb") as fh:
        fh.seek(0, 2)
        fh.seek(max(0, fh.tell() - size))
        return fh.read().decode("utf-8", errors="replace")


def count_matches(path: Path, pattern: re.Pattern[bytes], chunk: int = 8 << 20) -> int:
    """How many times `pattern` (which never spans a line) occurs: a fast count of a huge log's records."""
    count, carry = 0, b""
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            block = carry + block
            cut = block.rfind(b"\n") + 1
            count += len(pattern.findall(block, 0, cut))
            carry = block[cut:]
    return count + len(pattern.findall(carry))


def guard_json_size(path: Path) -> None:
    size = path.stat().st_size
    if size > MAX_JSON_BYTES:
        raise InputError(
            f"{path}: {byte_size(size)} is too large for a trainer_state.json "
            f"(at most {byte_size(MAX_JSON_BYTES)})"
        )


def number(value: object) -> float | None:
    """A logged number (int, float or its text, "nan" and "inf" included), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip().replace(",", ""))
        except ValueError:
            return None
    return None


_CLOCK = re.compile(r"^\s*(?:(\d+)\s+days?,\s*)?(\d+):(\d{1,2}):(\d{1,2}(?:\.\d+)?)\s*$")


def clock_seconds(value: object) -> float | None:
    """'1:02:03', '1 day, 0:00:05' (Python's timedelta text) or a number of seconds, in seconds."""
    if isinstance(value, str):
        match = _CLOCK.match(value)
        if match:
            days, hours, minutes, seconds = match.groups()
            return int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    return number(value)
