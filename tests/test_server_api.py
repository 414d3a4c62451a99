"""REST API of the server extension, end to end with the real analysis subprocess."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tornado.httpclient import HTTPClientError

from advisor.demo import write_demo_profile
from advisor.options import default_process_count
from advisor.server.models import TASK_KEYS

from .engine_fixtures import shifted_copy
from .server_helpers import API, call, submit, wait_for


async def test_options_lists_choices_and_defaults(jp_fetch):
    status, body = await call(jp_fetch, *API, "options")
    assert status == 200
    options = body["options"]
    assert options["cann_version"] == {
        "default": "",  # detect from the data
        "label": "CANN version",
        "choices": ["", "6.3.RC2", "7.0.RC1", "7.0.0", "8.0.RC1"],
    }
    assert options["torch_version"]["choices"] == ["", "1.11.0", "2.1.0"]
    assert options["advisor_analyze_processes"] == {
        "default": default_process_count(),  # AdvisorApp.default_processes: the usable cores, capped
        "label": "Analysis processes",
        "min": 1,
        "max": 8,
    }
    assert options["analysis_dimensions"]["default"] == [
        "computation", "communication", "schedule", "memory", "dataloader", "training",
    ]  # fmt: skip
    # Where the reports go and their language are job parameters, not analysis options.
    assert "output_path" not in options
    assert body["job"]["output_path"] == {"default": "performance_advisor_reports", "label": "Output path"}
    assert body["job"]["language"]["choices"] == ["en", "zh"]
    # The training log beside the profile, and the job's facts a log may not state (unset: from the log).
    assert body["job"]["training_log"] == {"default": "", "label": "Training log"}
    assert body["job"]["devices"] == {"default": None, "label": "Devices", "min": 1, "max": 1_000_000}
    assert body["job"]["seq_length"] == {
        "default": None,
        "label": "Sequence length",
        "min": 1,
        "max": 100_000_000,
    }
    assert body["sources"] == ["local", "obs"]


@pytest.mark.parametrize("advisor_config", [{"default_processes": 4}])
async def test_options_default_processes_follows_config(jp_fetch, advisor_config):
    _, body = await call(jp_fetch, *API, "options")
    assert body["options"]["advisor_analyze_processes"]["default"] == 4


async def test_inspect_describes_profiling_data(jp_fetch, demo_profile):
    status, body = await call(
        jp_fetch, *API, "inspect", params={"source": "local", "path": "./profiling_dir1"}
    )
    assert status == 200
    assert body == {
        "ok": True,
        "summary": "2 ranks, text export, steps 12–14",
        "path": "./profiling_dir1",
        "version_hints": True,  # Ascend data: the CANN/torch hints apply
        "kind": "profile",  # not a training log
    }
    # In the panel's language, from the report's catalogue.
    params = {"source": "local", "path": "./profiling_dir1", "language": "zh"}
    _, body = await call(jp_fetch, *API, "inspect", params=params)
    assert body["summary"] == "2 个 rank，文本格式导出，step 12–14"
    status, body = await call(jp_fetch, *API, "inspect", params={**params, "language": "fr"})
    assert status == 400 and body["message"].startswith("language must be one of en, zh")


async def test_inspect_explains_what_is_wrong(jp_fetch, jp_root_dir, demo_profile):
    (jp_root_dir / "notes").mkdir()
    (jp_root_dir / "notes" / "a.txt").write_text("hello")
    cases = {
        "./missing": "does not exist",
        "/etc": "outside the folders this server may read",
        "../": "outside the folders this server may read",
        "./notes": "not profiling data",
    }
    for path, reason in cases.items():
        status, body = await call(jp_fetch, *API, "inspect", params={"path": path})
        assert status == 200
        assert body["ok"] is False, path
        assert reason in body["message"], (path, body)


async def test_inspect_says_when_object_storage_has_no_credentials(jp_fetch, monkeypatch):
    for name in ("HUAWEICLOUD_SDK_AK", "HUAWEICLOUD_SDK_SK", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    _, body = await call(jp_fetch, *API, "inspect", params={"source": "obs", "path": "obs://bucket/run1"})
    assert body["ok"] is False
    assert body["message"].startswith("obs://bucket/run1: no object storage credentials: set ")
    # A URL no store could hold is malformed, not merely unusable yet: 400, as a submission.
    status, body = await call(jp_fetch, *API, "inspect", params={"source": "obs", "path": "obs:///run1"})
    assert status == 400 and "names no bucket" in body["message"]


@pytest.mark.parametrize(
    ("path", "title"),
    [("./profiling_dir1/", "profiling_dir1"), (".", None), ("obs://bucket/jobs/run7/", "run7")],
)
async def test_title_is_the_profile_folder_real_name(
    jp_fetch, jp_root_dir, demo_profile, monkeypatch, path, title
):
    monkeypatch.setenv("OBS_ENDPOINT", "http://127.0.0.1:9")  # never contacted: no credentials
    body = {"source": "obs" if path.startswith("obs") else "local", "path": path}
    if path == ".":  # the reports may not go into the folder analysed: to the object store, then
        body["options"] = {"output_path": "obs://advisor-reports/out"}
    status, task = await call(jp_fetch, *API, "tasks", method="POST", body=body)
    assert status == 201, task
    # "." is the folder the server serves from, named as it is on disk.
    assert task["title"] == (title or jp_root_dir.resolve().name)
    _, again = await call(jp_fetch, *API, "tasks", task["id"])
    assert again["title"] == task["title"]


async def test_task_log_is_plain_text_of_that_task(jp_fetch, jp_root_dir, demo_profile, advisor_state_dir):
    _, task = await submit(jp_fetch, "./profiling_dir1")
    await wait_for(jp_fetch, task["id"], ("success", "failed"))
    response = await jp_fetch(*API, "tasks", task["id"], "log")
    assert response.headers["Content-Type"] == "text/plain; charset=UTF-8"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    text = response.body.decode()
    assert text.startswith("$ ") and " analyze " in text
    assert text == (advisor_state_dir / "logs" / f"{task['id']}.log").read_text()
    status, body = await call(jp_fetch, *API, "tasks", "0123456789ab", "log")
    assert status == 404 and "No task" in body["message"]


@pytest.mark.parametrize(
    "advisor_config", [{"obs_access_key_id": "AKLOGSECRET01", "obs_secret_access_key": "SKLOGSECRET0123"}]
)
async def test_task_log_never_shows_a_secret(jp_fetch, demo_profile, advisor_state_dir, advisor_config):
    _, task = await submit(jp_fetch, "./profiling_dir1")
    await wait_for(jp_fetch, task["id"], ("success", "failed"))
    log = advisor_state_dir / "logs" / f"{task['id']}.log"
    log.write_text(log.read_text() + "a library echoed SKLOGSECRET0123 and AKLOGSECRET01\n")
    text = (await jp_fetch(*API, "tasks", task["id"], "log")).body.decode()
    assert "SKLOGSECRET0123" not in text and "AKLOGSECRET01" not in text
    assert "a library echoed *** and ***" in text


async def test_submit_analyse_and_serve_reports(jp_fetch, jp_root_dir, demo_profile):
    profile_files = {p: p.read_bytes() for p in Path(demo_profile).rglob("*") if p.is_file()}
    status, task = await submit(jp_fetch, "./profiling_dir1", options={"output_path": "reports"})
    assert status == 201
    assert tuple(task) == TASK_KEYS
    assert task["status"] in ("queued", "analyzing")
    assert task["title"] == "profiling_dir1"
    assert task["options"]["advisor_analyze_processes"] == default_process_count()

    done = await wait_for(jp_fetch, task["id"], ("success", "failed"))
    assert done["status"] == "success", done["error"]
    assert done["error"] is None
    assert done["started"] <= done["finished"]
    assert done["reports"] == {
        "html": f"performance-advisor/reports/{task['id']}",
        "xlsx": f"performance-advisor/reports/{task['id']}/xlsx",
        "json": f"performance-advisor/reports/{task['id']}/json",
    }
    written = sorted(p.suffix for p in (jp_root_dir / "reports").iterdir())
    assert written == [".html", ".json", ".xlsx"]

    html = await jp_fetch("performance-advisor", "reports", task["id"])
    assert html.headers["Content-Type"].startswith("text/html")
    csp = html.headers["Content-Security-Policy"]
    assert csp.endswith("; sandbox allow-scripts")
    assert "allow-same-origin" not in csp
    assert b"plotly" in html.body.lower()

    report_json = await jp_fetch("performance-advisor", "reports", task["id"], "json")
    assert "attachment" in report_json.headers["Content-Disposition"]
    report = json.loads(report_json.body)
    assert report["schema_version"] == 1
    assert report["input"]["ranks"] == [0, 1]
    assert any(f["check"] == "overall.summary" for f in report["findings"])

    xlsx = await jp_fetch("performance-advisor", "reports", task["id"], "xlsx")
    assert xlsx.body[:2] == b"PK"  # a zip container

    # The analysis only read the profile.
    assert {p: p.read_bytes() for p in Path(demo_profile).rglob("*") if p.is_file()} == profile_files


async def test_list_get_and_delete(jp_fetch, jp_root_dir, demo_profile):
    _, first = await submit(jp_fetch, "./profiling_dir1")
    await wait_for(jp_fetch, first["id"], ("success",))
    _, second = await submit(jp_fetch, str(demo_profile))  # absolute path inside the root
    assert second["path"] == "./profiling_dir1"
    done = await wait_for(jp_fetch, second["id"], ("success",))

    _, listing = await call(jp_fetch, *API, "tasks")
    assert [t["id"] for t in listing["tasks"]] == [second["id"], first["id"]]  # newest first

    status, _ = await call(jp_fetch, *API, "tasks", "0123456789ab")
    assert status == 404

    # No output path given: the reports of both tasks are in their own folder, named after the data.
    assert not list(jp_root_dir.glob("*.html"))
    reports = sorted((jp_root_dir / "performance_advisor_reports").glob("profiling_dir1_*"))
    assert len(reports) == 6
    status, _ = await call(jp_fetch, *API, "tasks", second["id"], method="DELETE")
    assert status == 204
    left = sorted((jp_root_dir / "performance_advisor_reports").glob("profiling_dir1_*"))
    assert len(left) == 3 and not any(done["id"] in p.name for p in left)
    assert (jp_root_dir / "profiling_dir1").is_dir()
    status, _ = await call(jp_fetch, *API, "tasks", second["id"])
    assert status == 404
    status, _ = await call(jp_fetch, "performance-advisor", "reports", second["id"])
    assert status == 404


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"options": {"advisor_analyze_processes": 9}}, "between 1 and 8"),
        ({"options": {"advisor_analyze_processes": 0}}, "between 1 and 8"),
        ({"options": {"cann_version": "9.9"}}, "cann_version must be one of"),
        ({"options": {"torch_version": "3.0.0"}}, "torch_version must be one of"),
        ({"options": {"analysis_dimensions": ["computation", "gpu"]}}, "analysis_dimensions"),
        ({"options": {"analysis_dimensions": []}}, "at least one"),
        ({"options": {"disable_affinity_api": "yes"}}, "true or false"),
        ({"options": {"colour": "red"}}, "unknown option"),
        ({"options": {"output_path": "/tmp"}}, "outside"),
        ({"path": "./nowhere"}, "does not exist"),
        ({"path": "/etc"}, "outside the folders this server may read"),
        ({"path": "../.."}, "outside the folders this server may read"),
        ({"source": "ftp"}, "source must be one of"),
        ({"compare": {"source": "local", "path": "/etc"}}, "outside"),
        ({"source": "obs", "path": "./profiling_dir1"}, "not an object storage path"),
        ({"extra": 1}, "unknown field"),
    ],
)
async def test_bad_submissions_are_refused_with_400(jp_fetch, demo_profile, fields, message):
    body = {"source": "local", "path": "./profiling_dir1", **fields}
    status, reply = await call(jp_fetch, *API, "tasks", method="POST", body=body)
    assert status == 400
    assert message in reply["message"]
    _, listing = await call(jp_fetch, *API, "tasks")
    assert listing["tasks"] == []


async def test_invalid_json_body_is_400(jp_fetch):
    with pytest.raises(HTTPClientError) as error:
        await jp_fetch(*API, "tasks", method="POST", body="{not json")
    assert error.value.code == 400


async def test_symlink_out_of_the_root_is_refused(jp_fetch, jp_root_dir, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (jp_root_dir / "link").symlink_to(outside)
    status, reply = await submit(jp_fetch, "./link")
    assert status == 400 and "outside" in reply["message"]


async def test_profile_that_is_not_profiling_data_fails_with_reason(jp_fetch, jp_root_dir):
    (jp_root_dir / "empty").mkdir()
    _, task = await submit(jp_fetch, "./empty")
    done = await wait_for(jp_fetch, task["id"], ("success", "failed"))
    assert done["status"] == "failed"
    assert "not profiling data" in done["error"]
    assert "Traceback" not in done["error"]
    assert done["reports"] == {"html": None, "xlsx": None, "json": None}


def _two_runs(jp_root_dir: Path) -> None:
    """`./runs` holding two runs of ranks 0-1 side by side, as `performance-advisor demo` writes them."""
    write_demo_profile(jp_root_dir / "runs" / "profiling_dir1")
    write_demo_profile(jp_root_dir / "runs" / "profiling_dir1_baseline", seed=1)


async def test_inspect_refuses_a_folder_of_two_runs_with_400(jp_fetch, jp_root_dir):
    _two_runs(jp_root_dir)
    status, body = await call(jp_fetch, *API, "inspect", params={"path": "./runs"})
    assert status == 400
    message = body["message"]
    assert message.startswith(f"{jp_root_dir / 'runs'}: holds the rank folders of 2 different profiling runs")
    assert "profiling_dir1/ (ranks 0–1" in message and "profiling_dir1_baseline/ (ranks 0–1" in message
    status, body = await call(jp_fetch, *API, "inspect", params={"path": "./runs/profiling_dir1"})
    assert status == 200 and body["ok"] is True


async def test_a_task_on_a_folder_of_two_runs_fails_with_the_reason(jp_fetch, jp_root_dir):
    # Submission checks the path, not its contents (as for any folder that is not profiling data).
    _two_runs(jp_root_dir)
    status, task = await submit(jp_fetch, "./runs")
    assert status == 201
    done = await wait_for(jp_fetch, task["id"], ("success", "failed"))
    assert done["status"] == "failed"
    assert "holds the rank folders of 2 different profiling runs" in done["error"]
    assert "profiling_dir1_baseline/ (ranks 0–1" in done["error"] and "\n" not in done["error"]


async def test_warnings_reach_the_task_log_and_the_json_report(jp_fetch, jp_root_dir, advisor_state_dir):
    # An earlier profiling window of rank 0's process: analysed without it, and said so.
    profile = write_demo_profile(jp_root_dir / "windows")
    latest = min(p for p in profile.iterdir() if p.is_dir())
    shifted_copy(latest, profile, -86400)
    _, task = await submit(jp_fetch, "./windows")
    done = await wait_for(jp_fetch, task["id"], ("success", "failed"))
    assert done["status"] == "success", done["error"]
    report = json.loads((await jp_fetch("performance-advisor", "reports", task["id"], "json")).body)
    [warning] = [w for w in report["warnings"] if "profiling windows" in w]
    assert f"analysed the latest, {latest.name}" in warning
    log = (advisor_state_dir / "logs" / f"{task['id']}.log").read_text()
    assert f"warning: {warning}\n" in log and '"event": "warning"' not in log


@pytest.mark.parametrize(
    ("method", "parts", "body"),
    [
        ("GET", (*API, "tasks"), None),
        ("POST", (*API, "tasks"), "{}"),
        ("GET", (*API, "options"), None),
        ("GET", (*API, "inspect"), None),
        ("GET", (*API, "tasks", "0123456789ab"), None),
        ("DELETE", (*API, "tasks", "0123456789ab"), None),
        ("GET", (*API, "tasks", "0123456789ab", "log"), None),
    ],
)
async def test_api_requires_authentication(jp_fetch, method, parts, body):
    with pytest.raises(HTTPClientError) as error:
        await jp_fetch(*parts, method=method, body=body, headers={"Authorization": ""})
    assert error.value.code == 403


async def test_report_requires_authentication(jp_fetch):
    with pytest.raises(HTTPClientError) as error:
        await jp_fetch(
            "performance-advisor",
            "reports",
            "0123456789ab",
            headers={"Authorization": ""},
            follow_redirects=False,
        )
    assert error.value.code in (302, 403)  # redirect to the login page, never the report


def cookies_of(response) -> dict[str, str]:
    return {
        name: rest.split(";", 1)[0]
        for name, _, rest in (header.partition("=") for header in response.headers.get_list("Set-Cookie"))
    }


async def test_cookie_post_needs_xsrf(jp_fetch, jp_serverapp, demo_profile):
    token = jp_serverapp.identity_provider.token
    # Log in with the token in the URL (the server answers with a login cookie), then load a page
    # for the _xsrf cookie, as a browser would.
    login = await jp_fetch("api", "status", params={"token": token}, headers={"Authorization": ""})
    cookies = cookies_of(login)
    assert any(name.startswith("username-") for name in cookies), cookies
    page = await jp_fetch("login", headers={"Authorization": ""})
    xsrf = cookies_of(page)["_xsrf"]
    cookie_header = "; ".join(f"{k}={v}" for k, v in cookies.items())
    body = json.dumps({"source": "local", "path": "./profiling_dir1"})

    without = {"Authorization": "", "Cookie": cookie_header}
    with pytest.raises(HTTPClientError) as error:
        await jp_fetch(*API, "tasks", method="POST", body=body, headers=without)
    assert error.value.code == 403

    with_xsrf = {"Authorization": "", "Cookie": f"{cookie_header}; _xsrf={xsrf}", "X-XSRFToken": xsrf}
    response = await jp_fetch(*API, "tasks", method="POST", body=body, headers=with_xsrf)
    assert response.code == 201


def test_every_route_is_authenticated(jp_serverapp):
    from advisor.server.handlers import handler_routes

    for pattern, handler in handler_routes():
        assert jp_serverapp.web_app._check_handler_auth(pattern, handler) == [], pattern
