"""Profiling data in object storage (obs://, s3://) against a real S3 server (moto) on loopback:
the CLI and the REST API end to end, the download cache, resumable downloads and every error."""

from __future__ import annotations

import contextlib
import fnmatch
import json
import logging
import sqlite3
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ResponseStreamingError
from moto import settings as moto_settings
from moto.server import ThreadedMotoServer

from advisor.cli import main
from advisor.engine import needed_tables
from advisor.errors import InputError
from advisor.formats.ascend_cluster.cluster_output import CLUSTER_OUTPUT_DIR
from advisor.formats.ascend_common.folder import DB_FILE, OUTPUT_DIR, PROFILER_INFO
from advisor.formats.ascend_common.remote import DISCOVERY_OUTPUTS, METADATA_FILES
from advisor.storage import StoreConfig, load_config, parse_url, sync_profile
from advisor.storage.cache import Entry, part_path
from advisor.storage.fetch import _download, _Progress
from advisor.storage.select import is_profile_file, needed_patterns
from advisor.synth import SynthSpec, write_synth_profile

from .server_helpers import API, call, wait_for

# Long, distinctive values: a test greps task records, logs and reports for them.
AK = "AKIAADVISORTESTKEY01"
SK = "advisor-secret-sk-0123456789abcdefXYZ"
BUCKET = "advisor-obs-tests"
PREFIX = "jobs/run1"
ALL_DIMENSIONS = ("computation", "communication", "schedule", "memory", "dataloader")


def needs(dimensions: tuple[str, ...]) -> dict[str, object]:
    """sync_profile's `tables` for the checks of `dimensions`, as the CLI passes them."""
    return {"tables": needed_tables(dimensions)}


@pytest.fixture(scope="module")
def s3():
    """A moto S3 server on a free loopback port, with a 2-rank demo profile uploaded (plus raw
    PROF_* data and a log that the analysis does not read)."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client(
        "s3", endpoint_url=endpoint, aws_access_key_id=AK, aws_secret_access_key=SK, region_name="us-east-1"
    )
    client.create_bucket(Bucket=BUCKET)
    yield endpoint, client
    server.stop()


@pytest.fixture(scope="module")
def profile(s3, tmp_path_factory) -> Path:
    from advisor.demo import write_demo_profile

    _, client = s3
    root = Path(write_demo_profile(tmp_path_factory.mktemp("demo") / "run1"))
    for path in sorted(root.rglob("*")):
        if path.is_file():
            client.upload_file(str(path), BUCKET, f"{PREFIX}/{path.relative_to(root).as_posix()}")
    rank0 = next(p.name for p in root.iterdir() if p.name.endswith("_ascend_pt"))
    client.put_object(Bucket=BUCKET, Key=f"{PREFIX}/{rank0}/PROF_1/host/data/raw.data.0", Body=b"\0" * 4096)
    client.put_object(Bucket=BUCKET, Key=f"{PREFIX}/{rank0}/train.log", Body=b"log\n")
    client.put_object(Bucket=BUCKET, Key="notes/readme.txt", Body=b"hello")
    return root


@pytest.fixture
def store_env(s3, tmp_path, monkeypatch):
    """Credentials and endpoint in the environment; a download cache of this test's own."""
    endpoint, _ = s3
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OBS_ENDPOINT", endpoint)
    monkeypatch.setenv("HUAWEICLOUD_SDK_AK", AK)
    monkeypatch.setenv("HUAWEICLOUD_SDK_SK", SK)
    monkeypatch.setenv("PERFORMANCE_ADVISOR_OBS_CACHE", str(tmp_path / "obs_cache"))
    return endpoint


def _run_cli(capsys, *args: str) -> tuple[int, list[dict], str, str]:
    """Run `performance-advisor analyze` in process: (exit code, JSON events, stdout, stderr)."""
    code = main(["analyze", *args, "--progress", "json", "--format", "json"])
    out, err = capsys.readouterr()
    events = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    return code, events, out, err


def _findings(report: dict) -> list[tuple]:
    return [
        (f["check"], f["priority"], tuple(f["ranks"]), f["estimated_gain_us"], f["title"])
        for f in report["findings"]
    ]


def _downloads(events: list[dict]) -> list[dict]:
    return [e for e in events if e.get("event") == "progress" and e["stage"].startswith("downloading")]


# -- configuration and selection -----------------------------------------------------------------
def test_parse_url_and_config_from_env():
    assert parse_url("obs://bkt/a//c/") == parse_url("obs://bkt/a/c")
    assert str(parse_url("OBS://bkt/a/c")) == "obs://bkt/a/c"
    assert parse_url("s3://bkt").prefix == ""
    for bad in ("obs:///x", "http://bkt/x", "obs://bkt/../etc", "obs://b/x"):
        with pytest.raises(InputError):
            parse_url(bad)
    env = {
        "OBS_ENDPOINT": "obs.cn-north-4.myhuaweicloud.com",
        "HUAWEICLOUD_SDK_AK": "obs-ak",
        "HUAWEICLOUD_SDK_SK": "obs-sk",
        "AWS_ACCESS_KEY_ID": "aws-ak",
        "AWS_SECRET_ACCESS_KEY": "aws-sk",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9000",
    }
    obs = load_config("obs", env)
    assert (obs.endpoint, obs.access_key, obs.region) == (
        "https://obs.cn-north-4.myhuaweicloud.com", "obs-ak", "cn-north-4",
    )  # fmt: skip
    s3 = load_config("s3", env)
    assert (s3.endpoint, s3.access_key, s3.secret_key) == ("http://127.0.0.1:9000", "aws-ak", "aws-sk")
    # A key is never paired with the other family's secret.
    half = load_config("obs", {"HUAWEICLOUD_SDK_AK": "x", "AWS_SECRET_ACCESS_KEY": "y"})
    assert not half.has_credentials
    assert SK not in repr(StoreConfig("http://e", AK, SK))


def test_selection_keeps_what_readers_use_and_skips_raw_data():
    patterns = needed_patterns(needed_tables(ALL_DIMENSIONS))
    keep = [
        "r/rank0_ascend_pt/profiler_info_0.json",
        "r/rank0_ascend_pt/profiler_metadata.json",
        "r/rank0_ascend_pt/ASCEND_PROFILER_OUTPUT/trace_view.json",
        "r/rank0_ascend_pt/ASCEND_PROFILER_OUTPUT/kernel_details.csv",
        "r/rank0_ascend_pt/ASCEND_PROFILER_OUTPUT/step_trace_time.csv",
        "r/rank0_ascend_pt/ASCEND_PROFILER_OUTPUT/ascend_pytorch_profiler_0.db",
        "r/rank0_ascend_pt/ASCEND_PROFILER_OUTPUT/analysis.db",
        "r/rank0_ascend_pt/PROF_1/device_0/info.json.0",
        "r/rank0_ascend_pt/PROF_1/device_12/info.json.12",
        "r/cluster_analysis_output/cluster_step_trace_time.csv",
    ]
    skip = [
        "r/rank0_ascend_pt/PROF_1/device_0/data/aicore.data.0.slice_0",
        "r/rank0_ascend_pt/PROF_1/device_0/info.json.0.done",
        "r/rank0_ascend_pt/PROF_1/host/data/api_event.data",
        "r/rank0_ascend_pt/PROF_1/host/info.json",
        "r/rank0_ascend_pt/logs/train.log",
        "r/rank0_ascend_pt/ASCEND_PROFILER_OUTPUT/l2_cache.csv",
    ]
    assert [k for k in keep if not is_profile_file(k, patterns)] == []
    assert [k for k in skip if is_profile_file(k, patterns)] == []
    # GE graph dumps are fetched only for the computation checks (graph fusion reads them), at any depth.
    dumps = ["r/x_ascend_pt/ge/ge_proto_00001_Build.txt", "r/x_ascend_pt/a/b/c/graph_1_Build.txt"]
    memory = needed_patterns(needed_tables(("memory",)))
    assert all(is_profile_file(d, patterns) and not is_profile_file(d, memory) for d in dumps)


def _former_selection(rel: str, patterns: tuple[str, ...], graph_dumps: bool) -> bool:
    """The selection before device info and graph dumps became table sources (special cases)."""
    parts, name = rel.split("/"), rel.split("/")[-1]
    if PROFILER_INFO.match(name) or name in METADATA_FILES:
        return True
    parent = parts[-2] if len(parts) > 1 else ""
    if parent == OUTPUT_DIR:
        return DB_FILE.match(name) is not None or any(fnmatch.fnmatchcase(name, p) for p in patterns)
    if CLUSTER_OUTPUT_DIR in parts[:-1]:
        return name.endswith((".csv", ".json", ".db"))
    device_info = ("PROF_*", "device_*", "info.json.*")
    if (
        len(parts) >= 3
        and all(map(fnmatch.fnmatchcase, parts[-3:], device_info))
        and not name.endswith("done")
    ):
        return True
    dump_names = ("*_Build.txt", "ge_proto*Build*.txt", "*Build.txt")
    return graph_dumps and any(fnmatch.fnmatchcase(name, p) for p in dump_names)


@pytest.mark.parametrize(
    "dimensions", [ALL_DIMENSIONS, ("computation",), ("memory",), ("computation", "schedule")]
)
def test_selection_equals_the_former_special_cases(tmp_path, dimensions):
    """Device info and GE graph dumps are table sources like any other file now: for the dimensions
    whose checks read them, exactly the objects the former special cases fetched are fetched."""
    run = write_synth_profile(tmp_path / "run", spec=SynthSpec(steps=(1, 2), ranks=2))
    rels = sorted(p.relative_to(tmp_path).as_posix() for p in run.rglob("*") if p.is_file())
    rank = next(r for r in rels if r.endswith("profiler_metadata.json")).rsplit("/", 1)[0]
    rels += [f"{rank}/{rel}" for rel in ("PROF_1/device_0/info.json.0.done", "ge/ge_proto_1_Build.txt")]
    rels += [f"{rank}/a/b/c/d/graph_Build.txt", f"{rank}/ASCEND_PROFILER_OUTPUT/l2_cache.csv"]
    assert any("/device_" in r for r in rels)
    patterns = needed_patterns(needed_tables(dimensions))
    file_names = (*DISCOVERY_OUTPUTS, *(p for p in patterns if "/" not in p))
    before = [r for r in rels if _former_selection(r, file_names, "computation" in dimensions)]
    assert [r for r in rels if is_profile_file(r, patterns)] == before


# -- end to end through the CLI ------------------------------------------------------------------
def test_cli_report_equals_local_and_second_run_downloads_nothing(store_env, profile, capsys, tmp_path):
    code, events, _, err = _run_cli(capsys, str(profile), "--output", str(tmp_path / "local"))
    assert code == 0, err
    local = json.loads(Path(events[-1]["reports"]["json"]).read_text())

    url = f"obs://{BUCKET}/{PREFIX}"
    code, events, _, err = _run_cli(capsys, url, "--output", str(tmp_path / "cold"))
    assert code == 0, err
    cold = json.loads(Path(events[-1]["reports"]["json"]).read_text())
    assert cold["input"]["path"] == url  # the report names the data as given, not the cache folder
    assert cold["input"]["ranks"] == local["input"]["ranks"] == [0, 1]
    assert _findings(cold) == _findings(local) and len(_findings(local)) > 0
    assert cold["not_evaluated"] == local["not_evaluated"]

    progress = _downloads(events)
    n_files = sum(1 for p in profile.rglob("*") if p.is_file())
    selected = n_files - 12  # per rank: 6 csv files that no selected check reads
    assert progress[-1]["done"] == progress[-1]["total"] == selected == 16
    assert progress[-1]["stage"].startswith(f"downloading {selected}/{selected} files, ")
    assert "raw.data" not in err and "train.log" not in err
    cache = load_config("obs").cache_dir
    cached = sorted(p.name for p in (cache / "data").rglob("*") if p.is_file())
    assert "raw.data.0" not in cached and "train.log" not in cached and "memory_record.csv" not in cached
    assert not list((cache / "data").rglob("*.part"))

    code, events, _, err = _run_cli(capsys, url, "--output", str(tmp_path / "warm"))
    assert code == 0, err
    assert _downloads(events) == []  # a second analysis downloads nothing
    summary = [e["stage"] for e in events if e.get("stage", "").startswith("downloaded")]
    skipped = n_files + 2 - selected  # and raw.data, train.log
    assert summary == [f"downloaded 0 of 16 files (0 B), 16 from the cache; {skipped} other objects skipped"]
    warm = json.loads(Path(events[-1]["reports"]["json"]).read_text())
    assert _findings(warm) == _findings(local)


def test_cli_uploads_reports_to_the_store(store_env, profile, s3, capsys, tmp_path):
    _, client = s3
    out = f"s3://{BUCKET}/reports/cli"
    code, events, stdout, err = _run_cli(
        capsys, f"obs://{BUCKET}/{PREFIX}", "--output", out, "--dimensions", "memory"
    )
    assert code == 0, err
    urls = stdout.split("\n\n")[0].split()  # the URLs, then a blank line and the summary
    assert len(urls) == 1 and urls[0].endswith(".json")
    assert urls[0].startswith(f"{out}/run1_")  # named after the analysed folder, obs://…/jobs/run1
    body = client.get_object(Bucket=BUCKET, Key=urls[0].split(f"{BUCKET}/", 1)[1])["Body"].read()
    assert json.loads(body)["input"]["path"] == f"obs://{BUCKET}/{PREFIX}"
    assert events[-1] == {"event": "result", "reports": {"json": urls[0]}}


def test_changed_and_deleted_objects_are_refetched_or_dropped(store_env, profile, s3, tmp_path):
    _, client = s3
    prefix = "jobs/changing"
    rank = next(p for p in profile.iterdir() if p.name.endswith("_ascend_pt"))
    for path in rank.rglob("*"):
        if path.is_file():
            client.upload_file(str(path), BUCKET, f"{prefix}/{rank.name}/{path.relative_to(rank).as_posix()}")
    url = f"obs://{BUCKET}/{prefix}"
    folder, first, cache = sync_profile(url, **needs(ALL_DIMENSIONS))
    cache.close()
    assert (first.downloaded, first.cached) == (first.selected, 0) and first.selected == 8
    metadata = f"{prefix}/{rank.name}/profiler_metadata.json"
    client.put_object(Bucket=BUCKET, Key=metadata, Body=b'{"rank_id": 0}')
    client.delete_object(Bucket=BUCKET, Key=f"{prefix}/{rank.name}/ASCEND_PROFILER_OUTPUT/communication.json")
    folder, second, cache = sync_profile(url, **needs(ALL_DIMENSIONS))
    cache.close()
    assert (second.downloaded, second.cached, second.selected) == (1, 6, 7)  # only the new ETag
    assert (folder / rank.name / "profiler_metadata.json").read_bytes() == b'{"rank_id": 0}'
    assert not (folder / rank.name / "ASCEND_PROFILER_OUTPUT" / "communication.json").exists()


def test_cache_evicts_least_recently_used_beyond_its_limit(store_env, profile, s3, tmp_path):
    _, client = s3
    for name in ("a", "b"):
        for i in range(3):
            client.put_object(
                Bucket=BUCKET,
                Key=f"lru/{name}/x_ascend_pt/ASCEND_PROFILER_OUTPUT/step_trace_time.csv"
                if i == 0
                else f"lru/{name}/x_ascend_pt/profiler_info_{i}.json",
                Body=bytes([65 + i]) * 400_000,
            )
    config = StoreConfig(store_env, AK, SK, cache_dir=tmp_path / "small", cache_bytes=1_500_000)
    folder_a, stats_a, cache = sync_profile(f"obs://{BUCKET}/lru/a", **needs(()), config=config)
    cache.close()
    assert stats_a.downloaded == 3
    folder_b, stats_b, cache = sync_profile(f"obs://{BUCKET}/lru/b", **needs(()), config=config)
    assert stats_b.downloaded == 3 and cache.total_bytes() <= 1_500_000
    cache.close()
    assert len([p for p in folder_b.rglob("*") if p.is_file()]) == 3
    assert len([p for p in folder_a.rglob("*") if p.is_file()]) == 0  # b's download evicted a
    _, again, cache = sync_profile(f"obs://{BUCKET}/lru/a", **needs(()), config=config)
    cache.close()
    assert again.downloaded == 3


# -- resumable, retried downloads ----------------------------------------------------------------
class _Body:
    def __init__(self, data: bytes, fail_after: int | None) -> None:
        self.data, self.fail_after = data, fail_after

    def iter_chunks(self, size: int):
        sent = 0
        while sent < len(self.data):
            if self.fail_after is not None and sent >= self.fail_after:
                raise ResponseStreamingError(error="connection reset by peer")
            step = min(size, len(self.data) - sent, 1000)
            yield self.data[sent : sent + step]
            sent += step


class _FlakyClient:
    """get_object that drops the connection after `fail_after` bytes on the first `failures` calls."""

    def __init__(self, data: bytes, failures: int, fail_after: int) -> None:
        self.data, self.failures, self.fail_after = data, failures, fail_after
        self.requests: list[dict] = []

    def get_object(self, **request):
        self.requests.append(request)
        start = int(request["Range"].split("=")[1].rstrip("-")) if "Range" in request else 0
        fail = self.fail_after if len(self.requests) <= self.failures else None
        return {"Body": _Body(self.data[start:], fail)}


def test_transient_failures_resume_from_the_partial_file(tmp_path):
    data = bytes(range(256)) * 40  # 10240 bytes
    entry = Entry("b", "k/f.bin", "etag1", len(data), 1_700_000_000.0)
    client = _FlakyClient(data, failures=2, fail_after=3000)
    config = StoreConfig("http://e", AK, SK, max_attempts=3)
    target = tmp_path / "f.bin"
    fetched = _download(client, entry, target, config, _Progress(lambda *a: None, 1, len(data)))
    assert target.read_bytes() == data and fetched == len(data)
    assert [r.get("Range") for r in client.requests] == [None, "bytes=3000-", "bytes=6000-"]
    assert all(r["IfMatch"] == '"etag1"' for r in client.requests)  # a changed object is refused
    assert target.stat().st_mtime == 1_700_000_000.0
    assert not part_path(target, "etag1").exists()


def test_an_interrupted_download_is_resumed_by_the_next_run(tmp_path):
    data = b"x" * 5000
    entry = Entry("b", "k/g.bin", "etag2", len(data))
    target = tmp_path / "g.bin"
    part_path(target, "etag2").write_bytes(data[:1234])  # what a killed run left
    client = _FlakyClient(data, failures=0, fail_after=0)
    _download(client, entry, target, StoreConfig("http://e", AK, SK), _Progress(lambda *a: None, 1, 1))
    assert [r.get("Range") for r in client.requests] == ["bytes=1234-"]
    assert target.read_bytes() == data


def test_persistent_failures_give_up(tmp_path):
    client = _FlakyClient(b"y" * 5000, failures=99, fail_after=100)
    entry = Entry("b", "k/h.bin", "e", 5000)
    with pytest.raises(ResponseStreamingError):
        _download(
            client,
            entry,
            tmp_path / "h",
            StoreConfig("http://e", AK, SK, max_attempts=2),
            _Progress(lambda *a: None, 1, 1),
        )
    assert len(client.requests) == 3


# -- errors: one line each, as the CLI's error event --------------------------------------------
@pytest.fixture
def restricted_user(s3):
    """An IAM user with no permissions, and moto's authorisation switched on for the test."""
    endpoint, _ = s3
    iam = boto3.client(
        "iam", endpoint_url=endpoint, aws_access_key_id=AK, aws_secret_access_key=SK, region_name="us-east-1"
    )
    name = "advisor-nobody"
    with contextlib.suppress(iam.exceptions.EntityAlreadyExistsException):
        iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    previous = moto_settings.INITIAL_NO_AUTH_ACTION_COUNT
    moto_settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
    yield key["AccessKeyId"], key["SecretAccessKey"]
    moto_settings.INITIAL_NO_AUTH_ACTION_COUNT = previous


def _error(capsys, *args: str) -> str:
    code, events, _, err = _run_cli(capsys, *args)
    assert code == 2, err
    errors = [e["message"] for e in events if e["event"] == "error"]
    assert len(errors) == 1 and "\n" not in errors[0] and "Traceback" not in err
    assert SK not in err
    return errors[0]


def test_errors_no_credentials_bucket_prefix_not_profiling(store_env, profile, capsys, monkeypatch, tmp_path):
    out = str(tmp_path / "out")
    assert "no such bucket 'no-such-bucket'" in _error(capsys, "obs://no-such-bucket/x", "--output", out)
    assert "no such folder" in _error(capsys, f"obs://{BUCKET}/jobs/missing", "--output", out)
    assert "not profiling data" in _error(capsys, f"obs://{BUCKET}/notes", "--output", out)
    for name in ("HUAWEICLOUD_SDK_AK", "HUAWEICLOUD_SDK_SK"):
        monkeypatch.delenv(name)
    message = _error(capsys, f"obs://{BUCKET}/{PREFIX}", "--output", out)
    assert "no object storage credentials" in message and "HUAWEICLOUD_SDK_AK" in message
    # The output path is checked before any analysis runs.
    message = _error(capsys, str(profile), "--output", f"obs://{BUCKET}/r")
    assert "no object storage credentials" in message
    assert not Path(out).exists()


def test_errors_access_denied_and_rejected_keys(store_env, profile, restricted_user, capsys, monkeypatch):
    ak, sk = restricted_user
    monkeypatch.setenv("HUAWEICLOUD_SDK_AK", ak)
    monkeypatch.setenv("HUAWEICLOUD_SDK_SK", sk)
    message = _error(capsys, f"obs://{BUCKET}/{PREFIX}")
    assert message == f"obs://{BUCKET}/{PREFIX}: access denied: " + (
        "the credentials may not read (or write) this bucket or path"
    )
    monkeypatch.setenv("HUAWEICLOUD_SDK_AK", "AKIANOSUCHKEY0000000")
    assert "refused the credentials (InvalidAccessKeyId)" in _error(capsys, f"obs://{BUCKET}/{PREFIX}")


def test_error_network_failure_is_quick(store_env, capsys, monkeypatch):
    import socket
    import time

    with socket.socket() as probe:  # a port with nothing listening on it
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("OBS_ENDPOINT", f"http://127.0.0.1:{port}")
    started = time.monotonic()
    message = _error(capsys, f"obs://{BUCKET}/{PREFIX}")
    assert time.monotonic() - started < 15
    assert message.startswith(f"obs://{BUCKET}/{PREFIX}: network failure: cannot reach the object store at ")


# -- the REST API ------------------------------------------------------------------------------
@pytest.fixture
def obs_server_config(s3, tmp_path, monkeypatch):
    """Credentials only in the server's traitlets: the environment has none."""
    endpoint, _ = s3
    for name in ("HUAWEICLOUD_SDK_AK", "HUAWEICLOUD_SDK_SK", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("OBS_ENDPOINT", raising=False)
    return {
        "obs_endpoint": endpoint,
        "obs_access_key_id": AK,
        "obs_secret_access_key": SK,
        "obs_cache_dir": str(tmp_path / "server_obs_cache"),
    }


@pytest.fixture
def advisor_config(obs_server_config):
    return obs_server_config


async def test_rest_obs_task_succeeds_and_keeps_secrets_out(
    jp_fetch, profile, s3, advisor_state_dir, capsys, tmp_path
):
    _, client = s3
    body = {
        "source": "obs",
        "path": f"obs://{BUCKET}/{PREFIX}",
        "options": {"output_path": f"obs://{BUCKET}/reports/rest"},
    }
    status, task = await call(jp_fetch, *API, "tasks", method="POST", body=body)
    assert status == 201, task
    done = await wait_for(jp_fetch, task["id"], ("success", "failed"), timeout=120)
    assert done["status"] == "success", done["error"]
    assert done["title"] == "run1"

    response = await jp_fetch("performance-advisor", "reports", task["id"], "json")
    report = json.loads(response.body)
    uploaded = client.list_objects_v2(Bucket=BUCKET, Prefix="reports/rest/")["Contents"]
    assert {o["Key"].rsplit(".", 1)[1] for o in uploaded} == {"html", "xlsx", "json"}

    # The same findings as a local analysis of the same data.
    assert (
        main(["analyze", str(profile), "--output", str(tmp_path / "local"), "--format", "json", "--quiet"])
        == 0
    )
    local = json.loads(next((tmp_path / "local").glob("*.json")).read_text())
    capsys.readouterr()
    assert _findings(report) == _findings(local)

    # Secrets appear nowhere: the task (API and database), its log, its command line, the reports.
    _, listed = await call(jp_fetch, *API, "tasks")
    log = (advisor_state_dir / "logs" / f"{task['id']}.log").read_text()
    assert "downloading" in log and f"obs://{BUCKET}/{PREFIX}" in log
    with sqlite3.connect(advisor_state_dir / "tasks.sqlite") as db:
        rows = json.dumps(db.execute("SELECT * FROM tasks").fetchall())
    reports = "".join(p.read_text(errors="replace") for p in advisor_state_dir.rglob("*.json"))
    texts = [json.dumps(done), json.dumps(listed), log, rows, reports, response.body.decode()]
    for text in texts:
        assert SK not in text and AK not in text


async def test_inspect_checks_bucket_prefix_and_data_with_the_server_credentials(jp_fetch, profile, s3):
    async def inspect(path: str) -> dict:
        status, body = await call(jp_fetch, *API, "inspect", params={"source": "obs", "path": path})
        assert status == 200
        return body

    found = await inspect(f"obs://{BUCKET}/{PREFIX}")
    assert found == {"ok": True, "summary": f"profiling data found in obs://{BUCKET}/{PREFIX}"}
    missing_bucket = await inspect(f"obs://no-such-bucket-x/{PREFIX}")
    assert missing_bucket["ok"] is False and "no such bucket 'no-such-bucket-x'" in missing_bucket["message"]
    empty = await inspect(f"obs://{BUCKET}/jobs/nothing-here")
    assert empty["ok"] is False and "no such folder" in empty["message"]
    other = await inspect(f"obs://{BUCKET}/notes")
    assert other["ok"] is False and "not profiling data" in other["message"]
    for body in (found, missing_bucket, empty, other):
        assert SK not in json.dumps(body) and AK not in json.dumps(body)


@pytest.mark.parametrize("advisor_config", [{"obs_endpoint": "http://127.0.0.1:9"}])
async def test_rest_obs_task_without_credentials_fails_with_the_reason(jp_fetch, monkeypatch, advisor_config):
    for name in ("HUAWEICLOUD_SDK_AK", "HUAWEICLOUD_SDK_SK", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    body = {"source": "obs", "path": f"obs://{BUCKET}/{PREFIX}"}
    status, task = await call(jp_fetch, *API, "tasks", method="POST", body=body)
    assert status == 201
    done = await wait_for(jp_fetch, task["id"], ("success", "failed"), timeout=60)
    assert done["status"] == "failed"
    assert done["error"].startswith(
        f"obs://{BUCKET}/{PREFIX}: no object storage credentials: set HUAWEICLOUD_SDK_AK"
    )


def test_a_failed_upload_leaves_no_report_in_the_store_nor_locally(
    store_env, profile, s3, capsys, tmp_path, monkeypatch
):
    """The network fails on the second report: the first is deleted again, the local copies too."""
    from botocore.exceptions import EndpointConnectionError

    from advisor.storage import fetch

    _, client = s3
    real_make_client = fetch.make_client
    uploads: list[str] = []

    def failing_second_upload(*args, **kwargs):
        store = real_make_client(*args, **kwargs)
        real_upload = store.upload_file

        def upload_file(filename, bucket, key, *rest, **options):
            uploads.append(key)
            if len(uploads) == 2:
                raise EndpointConnectionError(endpoint_url=store_env)
            return real_upload(filename, bucket, key, *rest, **options)

        store.upload_file = upload_file
        return store

    monkeypatch.setattr(fetch, "make_client", failing_second_upload)
    out, local = f"s3://{BUCKET}/reports/failed", tmp_path / "local"
    code = main(
        ["analyze", str(profile), "--output", out, "--local-output", str(local), "--format", "html,json"]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.splitlines()[-1] == (
        f"performance-advisor: error: {out}: network failure: cannot reach the object store at {store_env} "
        "(EndpointConnectionError); check OBS_ENDPOINT and the network"
    )
    assert len(uploads) == 2  # the HTML went up, the JSON did not
    assert client.list_objects_v2(Bucket=BUCKET, Prefix="reports/failed/").get("KeyCount") == 0
    assert sorted(p.name for p in local.iterdir()) == []
