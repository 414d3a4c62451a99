"""Shared helpers for the engine tests (kept out of conftest.py, which belongs to the server tests)."""

from __future__ import annotations

import json
import os
import re
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from advisor.demo import DemoSpec, plan_demo, write_demo_profile

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CORPUS = PROJECT_ROOT / ".." / "shared" / "corpus"
TEXT_CORPUS = CORPUS / "ascend-text-level1-2rank"
DB_CORPUS = CORPUS / "ascend-db-level1-2rank"
FIXTURE_TRACE = (
    CORPUS / "ascend-reference-fixtures" / "ut" / "advisor" / "timeline_advice" / "trace_view.json"
)

STEP_TRACE_HEADER = (
    "Step,Computing,Communication(Not Overlapped),Overlapped,Communication,Free,Stage,Bubble,"
    "Communication(Not Overlapped and Exclude Receive),Preparing"
)


def corpus_path(path: Path) -> Path:
    """`path` inside the shared corpus, or skip the test when the corpus is not on this machine.

    PERFORMANCE_ADVISOR_REQUIRE_CORPUS=1 turns the skip into a failure, for a machine that is
    known to hold the corpus, so a moved or renamed case cannot silently pass as a skip."""
    if not path.exists():
        message = f"corpus not available: {path.resolve()}"
        if os.environ.get("PERFORMANCE_ADVISOR_REQUIRE_CORPUS") == "1":
            pytest.fail(message + " (PERFORMANCE_ADVISOR_REQUIRE_CORPUS=1)")
        pytest.skip(message)
    return path


def demo(tmp_path: Path, name: str = "demo", **spec: object) -> tuple[Path, DemoSpec]:
    """Write a demo profile with `DemoSpec(**spec)` into tmp_path/name."""
    the_spec = DemoSpec(**spec)  # type: ignore[arg-type]
    return write_demo_profile(tmp_path / name, spec=the_spec), the_spec


def expected_by_rank_step(spec: DemoSpec) -> dict[tuple[int, int], dict[str, float]]:
    return {
        (p.rank, p.step): {
            "computing_us": p.us("computing"),
            "communication_not_overlapped_us": p.us("not_overlapped"),
            "overlapped_us": p.us("overlapped"),
            "communication_us": p.us("communication"),
            "free_us": p.us("free"),
            "preparing_us": p.us("preparing"),
            "step_us": p.us("step"),
        }
        for p in plan_demo(spec)
    }


def rank_dir(
    parent: Path,
    name: str,
    *,
    rank: int | None = 0,
    csv: bytes | str | None = None,
    trace: object | None = None,
    info: dict | None = None,
) -> Path:
    """A minimal rank folder: profiler_info_{rank}.json (unless rank is None) and chosen exports."""
    folder = parent / name
    output = folder / "ASCEND_PROFILER_OUTPUT"
    output.mkdir(parents=True)
    if rank is not None:
        (folder / f"profiler_info_{rank}.json").write_text(json.dumps(info or {"rank_id": rank}))
    if csv is None and trace is None:
        csv = f"{STEP_TRACE_HEADER}\r\n7,10.0,20.0,5.0,25.0,3.0,33.0,0,20.0,1.0\r\n"
    if csv is not None:
        data = csv.encode("utf-8") if isinstance(csv, str) else csv
        (output / "step_trace_time.csv").write_bytes(data)
    if trace is not None:
        text = trace if isinstance(trace, str) else json.dumps(trace)
        (output / "trace_view.json").write_text(text)
    return folder


def name_time(folder: Path) -> tuple[str, datetime]:
    """`{worker}_{pid}` and the start in a canonical rank folder name (17 digits, UTC)."""
    match = re.fullmatch(r"(.+)_(\d{17})_ascend_pt", folder.name)
    assert match, folder.name
    return match.group(1), datetime.strptime(match.group(2), "%Y%m%d%H%M%S%f").replace(tzinfo=timezone.utc)


def shifted_copy(folder: Path, parent: Path, seconds: float) -> Path:
    """A copy of the generated rank `folder` in `parent`, collected `seconds` later (earlier when
    negative): the timestamp of its name and the wall clock of its profiler_info move together."""
    process, started = name_time(folder)
    stamp = f"{started + timedelta(seconds=seconds):%Y%m%d%H%M%S%f}"[:17]
    copy = shutil.copytree(folder, parent / f"{process}_{stamp}_ascend_pt")
    [info] = copy.glob("profiler_info_*.json")
    data = json.loads(info.read_text())
    data["end_info"]["collectionTimeEnd"] += int(seconds * 1e9)
    info.write_text(json.dumps(data))
    return copy
