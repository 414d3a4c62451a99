"""Training logs read beside (or instead of) a profile: LLaMA-Factory `trainer_log.jsonl`,
Megatron-LM/MindSpeed-LLM stdout and HuggingFace `trainer_state.json` (docs/design.md, "Training
logs"). Not a profile `Format`: a log is one file with no ranks and no tables of events.

    read_training_log(path) -> TrainingLog          # every record, streamed line by line
    describe_training_log(path) -> TrainingLogSummary  # cheap: the panel's one line
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from ...errors import InputError
from . import hf_state, llamafactory, megatron
from .model import FORMAT_IDS, TrainingLog, TrainingLogSummary
from .text import checked_file, count_matches, head, refuse, tail

__all__ = [
    "FORMAT_IDS",
    "TrainingLog",
    "TrainingLogSummary",
    "describe_training_log",
    "detect_training_log",
    "is_training_log",
    "read_training_log",
]

# In the order they are tried: the JSON formats are told apart by their first bytes, Megatron's lines
# are looked for among any others.
PARSERS: tuple[ModuleType, ...] = (hf_state, llamafactory, megatron)
# A log up to this size is parsed to describe it; a larger one is counted by a scan of its lines. The
# panel describes the log as the user types its path: parsing runs at about 5-15 MB/s, the scan at
# hundreds, so past a few MB the exact count is not worth the wait.
DESCRIBE_PARSE_BYTES = 4 << 20


def detect_training_log(path: str | Path) -> str:
    """The format id of the training log at `path`, else InputError naming the file."""
    file = checked_file(path)
    text = head(file)
    if not text.strip():
        raise refuse(path, "the file is empty")
    for parser in PARSERS:
        if parser.sniff(text):
            return parser.FORMAT
    raise refuse(path, "no LLaMA-Factory record, trainer_state log_history or Megatron iteration line found")


def is_training_log(path: str | Path) -> bool:
    """Whether `path` is a file that reads as a training log (a profile, a folder or a missing path is
    not): how `analyze PATH` tells a log analysed alone from a profile."""
    try:
        detect_training_log(path)
    except InputError:
        return False
    return True


def _parser(format_id: str) -> ModuleType:
    return next(parser for parser in PARSERS if format_id == parser.FORMAT)


def read_training_log(path: str | Path) -> TrainingLog:
    """Every record of the training log at `path` (InputError for anything that is not one)."""
    format_id = detect_training_log(path)
    parse: Callable[[Path], TrainingLog] = _parser(format_id).parse
    return parse(Path(path))


def describe_training_log(path: str | Path) -> TrainingLogSummary:
    """Its format, records and first/last step: a log up to DESCRIBE_PARSE_BYTES is read whole; a larger
    line-per-record log is counted by a scan for its record lines (approximate: a Megatron log may
    repeat iterations) with its first and last step from its head and tail."""
    format_id = detect_training_log(path)
    file = Path(path)
    parser = _parser(format_id)
    if format_id == hf_state.FORMAT or file.stat().st_size <= DESCRIBE_PARSE_BYTES:
        log = parser.parse(file)
        steps = log.records["step"]
        return TrainingLogSummary(
            path=str(path),
            format=format_id,
            records=len(steps),
            first_step=int(steps.iloc[0]) if len(steps) else None,
            last_step=int(steps.iloc[-1]) if len(steps) else None,
        )
    first, last = _step_at(parser, head(file, 1 << 20)), _step_at(parser, tail(file), last=True)
    return TrainingLogSummary(
        path=str(path),
        format=format_id,
        records=count_matches(file, parser.RECORD),
        first_step=first,
        last_step=last,
        approximate=True,
    )


def _step_at(parser: ModuleType, text: str, *, last: bool = False) -> int | None:
    """The step of the first (or last) whole record line in `text`."""
    lines = text.splitlines()
    # A cut-off line at either end of a chunk is not a record.
    candidates = lines[1:] if last else lines[:-1]
    for line in reversed(candidates) if last else candidates:
        step = parser.record_step(line)
        if step is not None:
            return step
    return None
