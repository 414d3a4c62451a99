"""A PyTorch profiler trace is one file: the panel's path check and submission take a trace file as
well as a folder of traces, within the same confinement rules (REST, end to end)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from .server_helpers import API, call, submit

KINETO_DATA = Path(__file__).parent / "data" / "kineto"
HOST_BOUND = next((KINETO_DATA / "host_bound").glob("*.pt.trace.json.gz"))


@pytest.fixture
def traces(jp_root_dir: Path) -> Path:
    """tests/data/kineto's host_bound trace and ddp_straggler folder under the server root, in traces/."""
    folder = jp_root_dir / "traces"
    shutil.copytree(KINETO_DATA / "ddp_straggler", folder / "ddp_straggler")
    shutil.copy(HOST_BOUND, folder / HOST_BOUND.name)
    return folder


async def test_a_trace_file_is_accepted_as_the_input(jp_fetch, traces):
    status, task = await submit(jp_fetch, f"./traces/{HOST_BOUND.name}", output_path="reports")
    assert status == 201, task
    assert task["path"] == f"./traces/{HOST_BOUND.name}"
    _, listing = await call(jp_fetch, *API, "tasks")
    assert [t["title"] for t in listing["tasks"]] == [HOST_BOUND.name]


async def test_reports_are_not_written_beside_the_trace_file(jp_fetch, traces):
    # Report *.json files among the traces would be read as traces by the next analysis of the folder.
    status, reply = await submit(jp_fetch, f"./traces/{HOST_BOUND.name}", output_path="traces")
    assert status == 400
    assert reply["message"] == (
        "output_path 'traces' is the folder of the trace file given as path, which holds profiling data: "
        "choose another output folder (a folder inside it will do)"
    )
    status, _ = await submit(jp_fetch, f"./traces/{HOST_BOUND.name}", output_path="traces/reports")
    assert status == 201
    status, reply = await submit(jp_fetch, "./traces/ddp_straggler", output_path="traces/ddp_straggler/out")
    assert status == 400 and "is inside the profiling data given as path" in reply["message"]


async def test_a_path_that_is_neither_file_nor_folder_is_refused(jp_fetch, jp_root_dir):
    os.mkfifo(jp_root_dir / "pipe.json")
    status, reply = await submit(jp_fetch, "./pipe.json")
    assert status == 400 and reply["message"] == "path './pipe.json' is neither a folder nor a file"
