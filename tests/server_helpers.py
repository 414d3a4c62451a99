"""Helpers for the server tests: JSON requests and waiting for a task to settle."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from tornado.httpclient import HTTPClientError

API = ("performance-advisor", "api")


async def call(
    jp_fetch, *parts: str, method: str = "GET", body: Any = None, raw: str | None = None, **kwargs
) -> tuple[int, Any]:
    """(status, parsed JSON body or None); HTTP errors are returned, not raised. `raw`: the request body
    as sent, for bodies that are not JSON (else `body`, serialised)."""
    if body is not None or raw is not None:
        kwargs["body"] = raw if raw is not None else json.dumps(body)
    try:
        response = await jp_fetch(*parts, method=method, **kwargs)
    except HTTPClientError as error:
        response = error.response
        assert response is not None, error
    text = response.body.decode() if response.body else ""
    payload = (
        json.loads(text)
        if text and response.headers.get("Content-Type", "").startswith("application/json")
        else None
    )
    return response.code, payload


async def submit(jp_fetch, path: str, **fields: Any) -> tuple[int, Any]:
    return await call(
        jp_fetch, *API, "tasks", method="POST", body={"source": "local", "path": path, **fields}
    )


async def wait_for(jp_fetch, task_id: str, statuses: tuple[str, ...], timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status, task = await call(jp_fetch, *API, "tasks", task_id)
        assert status == 200
        if task["status"] in statuses:
            return task
        assert time.monotonic() < deadline, f"task stayed {task['status']}: {task}"
        await asyncio.sleep(0.1)


def process_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in state  # a zombie has exited already
