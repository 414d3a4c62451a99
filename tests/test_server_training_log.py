"""Training logs through the server (issue 21): the path check describes a log (as the data path, and
as the training log beside a profile), a submission carries `training_log`/`devices`/`seq_length` to
the analysis, and a training log outside the allowed roots is refused like the profiling path, with a
one-line 4xx and nothing logged as a server error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from advisor.demo import DEMO_TRAINING_LOG, DEMO_TRAINING_LOG_SPEC, write_demo_training_log

from .server_helpers import API, call, submit, wait_for
from .test_server_hostile import hostile_root, server_log  # noqa: F401  (fixtures)

LOG = f"./profiling_dir1/{DEMO_TRAINING_LOG}"
# The demo log's records and steps, as its generator was asked for them.
EVERY = DEMO_TRAINING_LOG_SPEC.log_every
LOG_STEPS = range(EVERY, DEMO_TRAINING_LOG_SPEC.steps + 1, EVERY)


def log_line(language: str) -> str:
    records, first, last = f"{len(LOG_STEPS):,}", f"{LOG_STEPS[0]:,}", f"{LOG_STEPS[-1]:,}"
    if language == "zh":
        return f"LLaMA-Factory 日志，{records} 条记录，step {first}–{last}"
    return f"LLaMA-Factory log, {records} records, steps {first}–{last}"


@pytest.fixture
def demo_log(demo_profile) -> Path:
    """The demo job's training log, where `performance-advisor demo` writes it: in the profile's folder."""
    return write_demo_training_log(Path(demo_profile) / DEMO_TRAINING_LOG)


async def inspect(jp_fetch, path: str, **params: str) -> tuple[int, Any]:
    return await call(jp_fetch, *API, "inspect", params={"source": "local", "path": path, **params})


@pytest.mark.parametrize("language", ["en", "zh"])
@pytest.mark.parametrize("input_kind", ["profile", "training_log"])
async def test_inspect_describes_a_training_log(jp_fetch, demo_log, input_kind, language):
    """As the data path (the default input) and as the training log beside a profile."""
    status, reply = await inspect(jp_fetch, LOG, input=input_kind, language=language)
    assert status == 200
    assert reply == {
        "ok": True,
        "summary": log_line(language),
        "path": LOG,
        "version_hints": False,
        "kind": "training_log",
    }


async def test_inspect_keeps_telling_profiles_and_logs_apart(jp_fetch, demo_log):
    """The demo profile's folder holds its log and is still the same profile; as a training log it is
    refused."""
    status, reply = await inspect(jp_fetch, "./profiling_dir1")
    assert (status, reply["ok"], reply["kind"], reply["version_hints"]) == (200, True, "profile", True)
    assert reply["summary"] == "2 ranks, text export, steps 12–14"
    status, reply = await inspect(jp_fetch, "./profiling_dir1", input="training_log")
    assert (status, reply) == (200, {"ok": False, "message": "training_log './profiling_dir1' is not a file"})


async def test_inspect_explains_a_file_that_is_no_training_log(jp_fetch, jp_root_dir):
    (jp_root_dir / "notes.txt").write_text("epoch 1 went fine\n")
    status, reply = await inspect(jp_fetch, "./notes.txt", input="training_log")
    assert status == 200 and reply["ok"] is False
    assert reply["message"] == (
        f"{jp_root_dir / 'notes.txt'}: not a training log (LLaMA-Factory trainer_log.jsonl, Megatron/"
        "MindSpeed stdout or HuggingFace trainer_state.json): no LLaMA-Factory record, trainer_state "
        "log_history or Megatron iteration line found"
    )
    status, reply = await inspect(jp_fetch, "./absent.jsonl", input="training_log")
    assert (status, reply) == (200, {"ok": False, "message": "training_log './absent.jsonl' does not exist"})
    status, reply = await inspect(jp_fetch, "./notes.txt", input="profiling")
    assert status == 400
    assert reply["message"] == "input must be one of profile, training_log; got 'profiling'"


# A training log outside the allowed roots, by every way out the hostile corpus knows of, through the
# path check and through a submission beside the demo profile: each refused, the message naming the field.
OUTSIDE = [
    ("parent folder", "../outside.jsonl", "is outside the folders this server may read"),
    ("absolute path", "/etc/passwd", "is outside the folders this server may read"),
    ("link out of the root", "./escape/trainer_log.jsonl", "is outside the folders this server may read"),
    ("symlink loop", "./loop", "cannot be used"),
    ("object store", "obs://bucket/trainer_log.jsonl", "must be a local file (obs:// is not read for it)"),
    ("NUL byte", "./trainer\x00log.jsonl", "training_log"),
]


@pytest.fixture
def outside_log(hostile_root: Path, tmp_path: Path) -> Path:  # noqa: F811  (the imported fixture)
    """A real training log beyond the root, which `../outside.jsonl` and `escape/` reach."""
    write_demo_training_log(tmp_path / "outside" / "trainer_log.jsonl")
    write_demo_training_log(hostile_root.parent / "outside.jsonl")
    return hostile_root


@pytest.mark.parametrize(("probe", "path", "message"), OUTSIDE, ids=[probe for probe, _, _ in OUTSIDE])
async def test_a_training_log_outside_the_roots_is_refused(
    jp_fetch,
    outside_log,
    server_log,  # noqa: F811  (the imported fixture)
    probe,
    path,
    message,
):
    status, reply = await inspect(jp_fetch, path, input="training_log")
    if status == 200:
        assert reply["ok"] is False
    else:  # a malformed path (a NUL byte) is refused outright, as a submission refuses it
        assert status == 400
    assert message in reply["message"] and reply["message"].startswith("training_log")

    status, reply = await submit(jp_fetch, "./profiling_dir1", training_log=path)
    assert status == 400
    assert message in reply["message"] and reply["message"].startswith("training_log")
    assert "\n" not in reply["message"] and len(reply["message"]) < 400
    _, listing = await call(jp_fetch, *API, "tasks")
    assert listing["tasks"] == []
    assert server_log.errors() == []


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"devices": 0}, "devices must be between 1 and 1000000; got 0"),
        ({"devices": "eight"}, "devices must be an integer; got 'eight'"),
        ({"seq_length": 2.5}, "seq_length must be an integer; got 2.5"),
        ({"training_log": 7}, "training_log must be a string; got 7"),
    ],
)
async def test_bad_training_fields_are_refused(jp_fetch, demo_log, server_log, fields, message):  # noqa: F811
    status, reply = await submit(jp_fetch, "./profiling_dir1", **{"training_log": LOG, **fields})
    assert (status, reply["message"]) == (400, message)
    assert server_log.errors() == []


async def report_of(jp_fetch, task: dict[str, Any]) -> dict[str, Any]:
    done = await wait_for(jp_fetch, task["id"], ("success", "failed"), timeout=120)
    assert done["status"] == "success", done["error"]
    reply = await jp_fetch("performance-advisor", "reports", task["id"], "json")
    return json.loads(reply.body)


async def command_line(jp_fetch, task_id: str) -> str:
    reply = await jp_fetch(*API, "tasks", task_id, "log")
    return reply.body.decode().splitlines()[0]


async def test_a_training_log_alone_is_analysed(jp_fetch, jp_root_dir, demo_log):
    """The log as the data path, with the device count the log does not state: the report's training
    object says what was read and that the count came from the user."""
    status, task = await submit(jp_fetch, LOG, devices=2, seq_length=2048)
    assert status == 201
    assert (task["title"], task["path"], task["devices"], task["seq_length"]) == (
        DEMO_TRAINING_LOG,
        LOG,
        2,
        2048,
    )
    report = await report_of(jp_fetch, task)
    training = report["training"]
    assert (training["format"], training["records"], training["steps"]) == (
        "llamafactory",
        len(LOG_STEPS),
        [LOG_STEPS[0], LOG_STEPS[-1]],
    )
    assert (training["devices"], training["devices_source"]) == (2, "user")
    assert "--devices 2 --seq-length 2048" in await command_line(jp_fetch, task["id"])


async def test_the_demo_profile_with_its_training_log(jp_fetch, jp_root_dir, demo_log):
    """The profile's findings and the log's training object in one report; the log is read where the
    server resolved it, and neither input is written to."""
    before = demo_log.read_bytes()
    status, task = await submit(jp_fetch, "./profiling_dir1", training_log=LOG, devices=2)
    assert status == 201
    assert (task["path"], task["training_log"], task["devices"], task["seq_length"]) == (
        "./profiling_dir1",
        LOG,
        2,
        None,
    )
    report = await report_of(jp_fetch, task)
    assert report["input"]["ranks"] == [0, 1]
    checks = {finding["check"] for finding in report["findings"]}
    assert "communication.exposed" in checks  # the demo profile's own problem
    assert report["training"]["records"] == len(LOG_STEPS)
    assert f"--training-log {jp_root_dir / 'profiling_dir1' / DEMO_TRAINING_LOG}" in await command_line(
        jp_fetch, task["id"]
    )
    assert demo_log.read_bytes() == before
