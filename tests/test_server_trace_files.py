"""A PyTorch profiler trace is one file: the panel's path check and submission take a trace file as
well as a folder of traces, within the same confinement rules (REST, end to end)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from .server_helpers import API, call, submit, wait_for

KINETO_DATA = Path(__file__).parent / "data" / "kineto"
HOST_BOUND = next((KINETO_DATA / "host_bound").glob("*.pt.trace.json.gz"))


@pytest.fixture
def traces(jp_root_dir: Path) -> Path:
    """tests/data/kineto's host_bound trace and ddp_straggler folder under the server root, in traces/."""
    folder = jp_root_dir / "traces"
    shutil.copytree(KINETO_DATA / "ddp_straggler", folder / "ddp_straggler")
    shutil.copy(HOST_BOUND, folder / HOST_BOUND.name)
    return folder


async def test_inspect_names_a_trace_file_and_a_folder_of_traces(jp_fetch, traces):
    # tests/data/kineto/README.md: CPU traces, ProfilerStep#2 and #3; ddp_straggler has ranks 0 and 1.
    cases = {
        f"./traces/{HOST_BOUND.name}": ("PyTorch profiler trace (CPU), 1 rank, steps 2–3",
                                        "PyTorch Profiler trace（CPU），1 个 rank，step 2–3"),
        "./traces/ddp_straggler": ("PyTorch profiler trace (CPU), 2 ranks, steps 2–3",
                                   "PyTorch Profiler trace（CPU），2 个 rank，step 2–3"),
    }  # fmt: skip
    for path, (english, chinese) in cases.items():
        status, body = await call(jp_fetch, *API, "inspect", params={"path": path})
        assert status == 200
        # The CANN/torch hints do not apply to a PyTorch profiler trace: the form hides them.
        assert body == {
            "ok": True,
            "summary": english,
            "path": path,
            "version_hints": False,
            "kind": "profile",
        }
        _, body = await call(jp_fetch, *API, "inspect", params={"path": path, "language": "zh"})
        assert body["summary"] == chinese


async def test_a_trace_file_is_analysed_and_its_report_named_after_it(jp_fetch, jp_root_dir, traces):
    trace = traces / HOST_BOUND.name
    before = trace.read_bytes()
    options = {"cann_version": "8.0.RC1"}
    status, task = await submit(
        jp_fetch, f"./traces/{HOST_BOUND.name}", output_path="reports", options=options
    )
    assert status == 201, task
    done = await wait_for(jp_fetch, task["id"], ("success", "failed"))
    assert done["status"] == "success", done["error"]
    stem = HOST_BOUND.name.removesuffix(".pt.trace.json.gz")
    written = sorted(p.name for p in (jp_root_dir / "reports").iterdir())
    assert [name.rsplit("_", 1)[0] for name in written] == [stem] * 3
    assert sorted(Path(name).suffix for name in written) == [".html", ".json", ".xlsx"]
    report = json.loads((await jp_fetch("performance-advisor", "reports", task["id"], "json")).body)
    assert report["input"]["description"] == "PyTorch profiler trace (CPU), 1 rank, steps 2–3"
    assert report["input"]["format"] == "kineto" and report["input"]["devices"] == [
        {"device": "cpu", "type": None, "ranks": 1}
    ]
    # The CANN hint was not used as if it applied: one warning says it was ignored.
    assert report["warnings"] == [
        "--cann-version applies to Ascend profiles only: the hint 8.0.RC1 was ignored"
    ]
    html = (await jp_fetch("performance-advisor", "reports", task["id"])).body.decode()
    assert (
        "PyTorch profiler trace (CPU), 1 rank, steps 2–3" in html
        and "CANN" not in html.split("pa-warnings")[0]
    )
    assert trace.read_bytes() == before  # read-only


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
