"""Latency and payload of `GET /performance-advisor/api/tasks` with thousands of tasks in the store.

    python benchmarks/task_list.py [--tasks 1000 10000] [--requests 200] [--repo DIR]

For each count, a fresh `tasks.sqlite` is filled through `TaskStore` with realistic rows (every option,
a progress record, three report files, a comparison and an error on some), then a real Jupyter server
(`python -m jupyter_server`, this extension enabled, token auth) is started on it, and the list endpoint
is called `--requests` times over one keep-alive HTTP connection, one request at a time, as the panel's
poll does:
- `first page`: `GET api/tasks` as the panel asks for it on opening;
- `since poll`: `GET api/tasks?since=<token of the first page>` with nothing changed, the panel's
  5-second poll. A server without `since` answers it with the whole list again.
The table gives p50/p95 of the wall time per request (client side, loopback) and the reply's bytes.
`--repo` runs another checkout's code (its `advisor` package and store), e.g. the main branch's, for a
before/after comparison on one machine.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STATUS_MIX = ("success",) * 8 + ("failed", "cancelled")


def fill_store(db_path: Path, count: int) -> None:
    """`count` finished tasks written through the checkout's own TaskStore (old or new layout)."""
    from advisor.options import AnalysisOptions, JobParameters
    from advisor.server.models import Task
    from advisor.server.store import TaskStore

    store = TaskStore(db_path)
    reports = Path("/home/user/work/performance_advisor_reports")
    for index in range(count):
        task_id = f"{index:012x}"
        status = STATUS_MIX[index % len(STATUS_MIX)]
        name = f"llama2_70b_job{index % 97}_ascend_pt_cluster"
        task = Task(
            id=task_id,
            source="local",
            path=f"./profiling/2026-11/{name}",
            options=AnalysisOptions(advisor_analyze_processes=4).to_json(),
            job=JobParameters(language="zh").to_json(),
            compare={"source": "local", "path": f"./profiling/baseline/{name}"} if index % 5 == 0 else None,
            status=status,
            created=f"2026-11-{1 + index % 28:02d}T{index % 24:02d}:12:41.317+00:00",
            started=f"2026-11-{1 + index % 28:02d}T{index % 24:02d}:12:42.001+00:00",
            finished=f"2026-11-{1 + index % 28:02d}T{index % 24:02d}:14:05.950+00:00",
            progress={"stage": "rendering the report", "done": 17, "total": 17},
            error=(
                "rank 3: step_trace_time.csv has no Step column; the profile is cut short (see the task log)"
                if status == "failed"
                else None
            ),
            report_files=(
                {fmt: str(reports / f"{name}_20261101-121241.{fmt}") for fmt in ("html", "xlsx", "json")}
                if status == "success"
                else {}
            ),
            title=name,
        )
        store.add(task)
    store.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(repo: Path, root: Path, state: Path, port: int, token: str) -> subprocess.Popen:
    command = [
        sys.executable, "-m", "jupyter_server", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
        f"--ServerApp.root_dir={root}", f"--IdentityProvider.token={token}",
        "--ServerApp.jpserver_extensions={'advisor': True}", f"--AdvisorApp.reports_dir={state}",
        "--ServerApp.log_level=WARN", "--allow-root",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(repo), "JUPYTER_CONFIG_DIR": str(state / "config")}
    server = subprocess.Popen(command, cwd=repo, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return server
        except OSError:
            if server.poll() is not None:
                raise SystemExit(f"jupyter server exited: {server.stderr.read().decode()[-2000:]}") from None
            time.sleep(0.2)
    server.kill()
    raise SystemExit("jupyter server did not start within 60 s")


def timed_gets(
    connection: http.client.HTTPConnection, url: str, token: str, count: int
) -> tuple[list[float], bytes]:
    """Milliseconds of each of `count` GETs of `url`, and the last reply's body."""
    times, body = [], b""
    for _ in range(count):
        start = time.perf_counter()
        connection.request("GET", url, headers={"Authorization": f"token {token}"})
        response = connection.getresponse()
        body = response.read()
        times.append((time.perf_counter() - start) * 1000)
        if response.status != 200:
            raise SystemExit(f"GET {url}: {response.status} {body[:300]!r}")
    return times, body


def percentile(values: list[float], share: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[round(share * 100) - 1]


def measure(repo: Path, count: int, requests: int) -> list[tuple[str, list[float], int, int]]:
    with tempfile.TemporaryDirectory(prefix="task_list_") as folder:
        root, state = Path(folder) / "root", Path(folder) / "state"
        root.mkdir()
        fill_store(state / "tasks.sqlite", count)
        token, port = secrets.token_hex(16), free_port()
        server = start_server(repo, root, state, port, token)
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            base = "/performance-advisor/api/tasks"
            timed_gets(connection, base, token, 5)  # warm up: imports, first queries
            page_times, page = timed_gets(connection, base, token, requests)
            first = json.loads(page)
            since_url = f"{base}?since={first.get('token', 0)}"
            since_times, since = timed_gets(connection, since_url, token, requests)
            connection.close()
        finally:
            server.terminate()
            server.wait(timeout=30)
    return [
        ("first page", page_times, len(page), len(first["tasks"])),
        ("since poll, nothing changed", since_times, len(since), len(json.loads(since)["tasks"])),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parents[1])
    args = parser.parse_args()
    repo = args.repo.resolve()
    sys.path.insert(0, str(repo))
    print(f"code: {repo}  ({args.requests} sequential requests per row, loopback, one keep-alive connection)")
    print(f"{'tasks':>6}  {'request':<28} {'p50 ms':>7} {'p95 ms':>7} {'bytes':>9} {'tasks in reply':>14}")
    for count in args.tasks:
        for name, times, size, listed in measure(repo, count, args.requests):
            p50, p95 = percentile(times, 0.50), percentile(times, 0.95)
            print(f"{count:>6}  {name:<28} {p50:>7.1f} {p95:>7.1f} {size:>9} {listed:>14}")


if __name__ == "__main__":
    main()
