"""`POST api/tasks/{id}/notebook`: a successful task's report written as a notebook next to it, never
over a file, inside the Jupyter root; every refusal a one-line JSON message."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from tornado.httpclient import HTTPClientError

from advisor.server.models import SUCCESS, Task
from advisor.server.notebooks import NotebookRefused, write_task_notebook
from advisor.server.paths import PathResolver

from .server_helpers import API, call, submit, wait_for
from .test_server_api import cookies_of


def _analyze_arguments(notebook: dict) -> tuple[list[object], dict[str, object]]:
    """The literal arguments of the notebook's `advisor.analyze(...)` call."""
    for cell in notebook["cells"]:
        if cell["cell_type"] != "code":
            continue
        for node in ast.walk(ast.parse("".join(cell["source"]))):
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "advisor.analyze":
                return (
                    [ast.literal_eval(a) for a in node.args],
                    {k.arg: ast.literal_eval(k.value) for k in node.keywords if k.arg},
                )
    raise AssertionError("the notebook has no advisor.analyze call")


async def _successful_task(jp_fetch, path: str = "./profiling_dir1", **fields) -> dict:
    status, task = await submit(jp_fetch, path, options={"analysis_dimensions": ["computation"]}, **fields)
    assert status == 201, task
    done = await wait_for(jp_fetch, task["id"], ("success", "failed"))
    assert done["status"] == "success", done["error"]
    return done


async def test_notebook_is_written_beside_the_report_and_never_overwritten(
    jp_fetch, jp_root_dir, demo_profile
):
    baseline = jp_root_dir / "baseline"
    from advisor.demo import write_demo_profile

    write_demo_profile(baseline, seed=1)
    task = await _successful_task(jp_fetch, compare={"source": "local", "path": "./baseline"}, language="zh")
    reports = jp_root_dir / "performance_advisor_reports"
    (json_report,) = reports.glob("*.json")
    before = {p.name: p.read_bytes() for p in reports.iterdir()}

    status, body = await call(jp_fetch, *API, "tasks", task["id"], "notebook", method="POST", body={})
    assert status == 201, body
    assert body == {"path": f"performance_advisor_reports/{json_report.stem}.ipynb"}
    notebook = json.loads((jp_root_dir / body["path"]).read_text(encoding="utf-8"))
    assert notebook["nbformat"] == 4
    # The notebook re-analyses the task's own inputs, named relative to its folder (the kernel's
    # working directory), with the task's dimensions and report language.
    args, keywords = _analyze_arguments(notebook)
    assert args == ["../profiling_dir1"]
    assert keywords["compare"] == "../baseline"
    assert keywords["language"] == "zh"
    assert keywords["dimensions"] == ("computation",)
    assert (reports / args[0]).resolve() == demo_profile.resolve()

    # A second call writes a second notebook; nothing already there is touched.
    status, again = await call(jp_fetch, *API, "tasks", task["id"], "notebook", method="POST", body={})
    assert status == 201
    assert again == {"path": f"performance_advisor_reports/{json_report.stem}-1.ipynb"}
    assert {p.name: p.read_bytes() for p in reports.iterdir() if p.name in before} == before
    assert sorted(p.suffix for p in reports.iterdir()) == [".html", ".ipynb", ".ipynb", ".json", ".xlsx"]


async def test_unknown_task_is_404_with_a_message(jp_fetch):
    status, body = await call(jp_fetch, *API, "tasks", "0123456789ab", "notebook", method="POST", body={})
    assert (status, body["message"]) == (404, "No task 0123456789ab")
    # A malformed id matches no route at all.
    status, _ = await call(jp_fetch, *API, "tasks", "not-an-id", "notebook", method="POST", body={})
    assert status == 404


async def test_failed_task_is_refused_with_409(jp_fetch, jp_root_dir):
    (jp_root_dir / "empty").mkdir()
    _, task = await submit(jp_fetch, "./empty")
    await wait_for(jp_fetch, task["id"], ("failed",))
    status, body = await call(jp_fetch, *API, "tasks", task["id"], "notebook", method="POST", body={})
    assert status == 409
    assert body["message"] == (
        f"Task {task['id']} is failed: only a successful analysis has a report for a notebook"
    )


async def test_deleted_report_is_404_with_a_message(jp_fetch, jp_root_dir, demo_profile):
    task = await _successful_task(jp_fetch)
    for report in (jp_root_dir / "performance_advisor_reports").glob("*.json"):
        report.unlink()
    status, body = await call(jp_fetch, *API, "tasks", task["id"], "notebook", method="POST", body={})
    assert status == 404
    assert body["message"] == f"The JSON report of task {task['id']} is not on disk (was it deleted?)"
    assert not list((jp_root_dir / "performance_advisor_reports").glob("*.ipynb"))


async def test_notebook_needs_authentication(jp_fetch):
    with pytest.raises(HTTPClientError) as error:
        await jp_fetch(
            *API, "tasks", "0123456789ab", "notebook", method="POST", body="{}", headers={"Authorization": ""}
        )
    assert error.value.code == 403


async def test_cookie_post_needs_xsrf(jp_fetch, jp_serverapp, jp_root_dir, demo_profile):
    task = await _successful_task(jp_fetch)
    token = jp_serverapp.identity_provider.token
    login = await jp_fetch("api", "status", params={"token": token}, headers={"Authorization": ""})
    cookies = "; ".join(f"{k}={v}" for k, v in cookies_of(login).items())
    xsrf = cookies_of(await jp_fetch("login", headers={"Authorization": ""}))["_xsrf"]
    parts = (*API, "tasks", task["id"], "notebook")

    with pytest.raises(HTTPClientError) as error:
        await jp_fetch(*parts, method="POST", body="{}", headers={"Authorization": "", "Cookie": cookies})
    assert error.value.code == 403
    assert not list((jp_root_dir / "performance_advisor_reports").glob("*.ipynb"))

    with_xsrf = {"Authorization": "", "Cookie": f"{cookies}; _xsrf={xsrf}", "X-XSRFToken": xsrf}
    response = await jp_fetch(*parts, method="POST", body="{}", headers=with_xsrf)
    assert response.code == 201


def _task(report_files: dict[str, str], output_path: str = "performance_advisor_reports") -> Task:
    return Task(
        id="0123456789ab",
        source="local",
        path="./data",
        options={"analysis_dimensions": ["computation"]},
        job={"output_path": output_path, "language": "en"},
        status=SUCCESS,
        report_files=report_files,
    )


def test_reports_uploaded_to_object_storage_are_refused(tmp_path):
    with pytest.raises(NotebookRefused) as refused:
        write_task_notebook(
            _task({"json": str(tmp_path / "r.json")}, "obs://bucket/reports"), PathResolver(tmp_path)
        )
    assert refused.value.status == 409
    assert str(refused.value) == (
        "The reports of task 0123456789ab were uploaded to obs://bucket/reports; "
        "a notebook is written only next to reports in a local folder"
    )


def test_reports_outside_the_jupyter_root_are_refused(tmp_path):
    root, elsewhere = tmp_path / "root", tmp_path / "elsewhere"
    root.mkdir()
    elsewhere.mkdir()
    (elsewhere / "r.json").write_text(json.dumps({"input": {}, "findings": []}))
    # The server may read `elsewhere` (an allowed root), but JupyterLab opens only files under its root.
    resolver = PathResolver(root, [str(root), str(elsewhere)])
    with pytest.raises(NotebookRefused) as refused:
        write_task_notebook(_task({"json": str(elsewhere / "r.json")}), resolver)
    assert refused.value.status == 409
    assert "outside the Jupyter root folder" in str(refused.value)
    assert list(elsewhere.iterdir()) == [elsewhere / "r.json"]


def test_unreadable_report_is_refused_in_one_line(tmp_path):
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "r.json").write_text("{not json")
    with pytest.raises(NotebookRefused) as refused:
        write_task_notebook(_task({"json": str(tmp_path / "reports" / "r.json")}), PathResolver(tmp_path))
    assert refused.value.status == 409
    message = str(refused.value)
    assert message.startswith("The JSON report of task 0123456789ab cannot be read: ") and "\n" not in message
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == ["r.json"]


def test_reports_path_is_relative_for_the_frontend(tmp_path: Path):
    (tmp_path / "data").mkdir()
    (tmp_path / "out" / "deep").mkdir(parents=True)
    (tmp_path / "out" / "deep" / "r.json").write_text(json.dumps({"input": {}, "findings": []}))
    written = write_task_notebook(
        _task({"json": str(tmp_path / "out" / "deep" / "r.json")}), PathResolver(tmp_path)
    )
    assert written == tmp_path / "out" / "deep" / "r.ipynb"
    args, _ = _analyze_arguments(json.loads(written.read_text(encoding="utf-8")))
    assert args == ["../../data"]


async def test_the_notebook_reads_the_tasks_training_log_too(jp_fetch, jp_root_dir, demo_profile):
    from advisor.demo import write_demo_training_log

    write_demo_training_log(jp_root_dir / "logs" / "trainer_log.jsonl")
    status, task = await submit(
        jp_fetch,
        "./profiling_dir1",
        options={"analysis_dimensions": ["computation", "training"]},
        training_log="./logs/trainer_log.jsonl",
        devices=2,
    )
    assert status == 201, task
    done = await wait_for(jp_fetch, task["id"], ("success", "failed"))
    assert done["status"] == "success", done["error"]
    status, body = await call(jp_fetch, *API, "tasks", task["id"], "notebook", method="POST", body={})
    assert status == 201, body
    notebook = json.loads((jp_root_dir / body["path"]).read_text(encoding="utf-8"))
    # Without the log, the notebook's analysis would lack the report's training findings.
    args, keywords = _analyze_arguments(notebook)
    assert args == ["../profiling_dir1"]
    assert keywords["training_log"] == "../logs/trainer_log.jsonl"
    assert keywords["devices"] == 2  # the user's, as the task had it
    assert "seq_length" not in keywords
