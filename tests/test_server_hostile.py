"""Hostile and broken requests (issue 16): each gets a 4xx with a one-line message naming the field,
never a 500, and the server logs no error or traceback. The requests are data, in
tests/data/hostile_requests.json: `probe` (what it tries), `method`, `body` (JSON) or `raw` (the body as
sent) or `query` (api/inspect), `env` (object-store settings for the request), `status` and `message`
(a part of the reply's message)."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .server_helpers import API, call

CORPUS = json.loads((Path(__file__).parent / "data" / "hostile_requests.json").read_text())
STORE_ENV = (
    "OBS_ENDPOINT",
    "AWS_ENDPOINT_URL",
    "HUAWEICLOUD_SDK_AK",
    "HUAWEICLOUD_SDK_SK",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
)


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def errors(self) -> list[str]:
        """Records of a server fault: an error or worse, or any that carries a traceback."""
        return [
            self.format(r)
            for r in self.records
            if r.levelno >= logging.ERROR
            or r.exc_info
            or any(word in r.getMessage() for word in ("Traceback", "Unhandled error", "Uncaught exception"))
        ]


@pytest.fixture
def server_log(jp_serverapp) -> Iterator[Captured]:
    """Everything the server and tornado log during the test (the server's logger does not propagate)."""
    handler = Captured()
    loggers = [jp_serverapp.log, logging.getLogger("tornado"), logging.getLogger()]
    for logger in loggers:
        logger.addHandler(handler)
    yield handler
    for logger in loggers:
        logger.removeHandler(handler)


@pytest.fixture
def hostile_root(jp_root_dir: Path, demo_profile, tmp_path: Path, monkeypatch) -> Path:
    """The server root as the corpus expects it: the demo profile, a baseline, a link to the profile,
    a link out of the root, a symlink loop; no object-store settings unless an entry brings them."""
    shutil.copytree(demo_profile, jp_root_dir / "baseline")
    (jp_root_dir / "profile_link").symlink_to(jp_root_dir / "profiling_dir1")
    outside = tmp_path / "outside"
    outside.mkdir()
    (jp_root_dir / "escape").symlink_to(outside)
    (jp_root_dir / "loop").symlink_to(jp_root_dir / "loop")
    for name in STORE_ENV:
        monkeypatch.delenv(name, raising=False)
    return jp_root_dir


async def send(jp_fetch, entry: dict[str, Any]) -> tuple[int, Any]:
    if entry["method"] == "GET":
        # Encoded by hand: a lone surrogate is sent as the bytes a careless client would send.
        query = {k: v.encode("utf-8", "surrogatepass") for k, v in entry["query"].items()}
        return await call(jp_fetch, *API, "inspect", params=query)
    raw = entry["raw"] if "raw" in entry else json.dumps(entry["body"])
    return await call(jp_fetch, *API, "tasks", method="POST", raw=raw)


@pytest.mark.parametrize("entry", CORPUS, ids=[entry["probe"] for entry in CORPUS])
async def test_hostile_request_gets_a_clear_refusal(jp_fetch, hostile_root, server_log, monkeypatch, entry):
    for name, value in entry.get("env", {}).items():
        monkeypatch.setenv(name, value)
    status, reply = await send(jp_fetch, entry)
    assert status == entry["status"], reply
    message = reply["message"]
    assert entry["message"] in message
    assert "\n" not in message and len(message) < 400
    if status == 200:  # api/inspect: a path that is not usable
        assert reply["ok"] is False
    assert server_log.errors() == []
    _, listing = await call(jp_fetch, *API, "tasks")
    assert listing["tasks"] == []


def test_corpus_covers_every_field_and_endpoint():
    """The corpus keeps probing each field a request carries, and both endpoints."""
    messages = " ".join(entry["message"] for entry in CORPUS)
    for field in ("path", "compare.path", "options.output_path", "options.advisor_analyze_processes"):
        assert f"{field} " in messages, field
    assert {entry["method"] for entry in CORPUS} == {"GET", "POST"}


@pytest.mark.parametrize("advisor_config", [{"max_request_bytes": 1000}])
async def test_a_body_over_the_limit_is_413(jp_fetch, demo_profile, server_log, advisor_config):
    body = {"source": "local", "path": "./profiling_dir1", "options": {"output_path": "r" * 1000}}
    status, reply = await call(jp_fetch, *API, "tasks", method="POST", body=body)
    assert status == 413
    assert reply["message"] == "The request body is larger than 1000 bytes"
    status, _ = await call(jp_fetch, *API, "tasks", method="POST", body={**body, "options": {}})
    assert status == 201
    assert server_log.errors() == []


@pytest.mark.parametrize("advisor_config", [{"max_queued_tasks": 2, "max_concurrent_tasks": 1}])
async def test_a_full_queue_is_429(jp_fetch, demo_profile, server_log, advisor_config):
    """One task runs, two wait: the fourth submission is refused until a waiting one goes."""
    tasks = []
    for _ in range(3):
        status, task = await call(
            jp_fetch, *API, "tasks", method="POST", body={"source": "local", "path": "./profiling_dir1"}
        )
        assert status == 201
        tasks.append(task)
    status, reply = await call(
        jp_fetch, *API, "tasks", method="POST", body={"source": "local", "path": "./profiling_dir1"}
    )
    assert status == 429
    assert reply["message"].startswith("2 analyses are already waiting")
    status, _ = await call(jp_fetch, *API, "tasks", tasks[-1]["id"], method="DELETE")
    assert status == 200
    status, _ = await call(
        jp_fetch, *API, "tasks", method="POST", body={"source": "local", "path": "./profiling_dir1"}
    )
    assert status == 201
    for task in (await call(jp_fetch, *API, "tasks"))[1]["tasks"]:
        await call(jp_fetch, *API, "tasks", task["id"], method="DELETE")
    assert server_log.errors() == []
