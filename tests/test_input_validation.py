"""The checks on a path before use (advisor.pathtext, storage.config.parse_url) and the CLI's refusal of
an output folder inside its input (issue 16)."""

from __future__ import annotations

import pytest

from advisor import cli
from advisor.errors import InputError, MalformedPathError
from advisor.locations import refuse_output_inside_inputs
from advisor.pathtext import check_local_path
from advisor.storage import StorageError, load_config, parse_url
from advisor.storage.client import make_client

from .engine_fixtures import demo

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE00", "AWS_SECRET_ACCESS_KEY": "SECRETEXAMPLE00"}


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("obs://ab/x", "3 to 63 characters long (it has 2)"),
        ("obs://" + "a" * 64 + "/x", "3 to 63 characters long (it has 64)"),
        ("obs://My-Bucket/x", "only lowercase letters, digits, hyphens and dots"),
        ("obs://my_bucket/x", "only lowercase letters, digits, hyphens and dots"),
        ("obs://bucket-/x", "start and end with a letter or digit"),
        ("obs://.bucket/x", "start and end with a letter or digit"),
        ("obs://a.-b/x", "side by side"),
        ("obs://10.0.0.1/x", "may not be an IP address"),
        ("s3://ak:sk@bucket/x", "user, password, host or port"),
        ("s3://bucket/x\x7fy", "control character (U+007F)"),
        ("s3://bucket/x\ud800", "unpaired surrogate"),
    ],
)
def test_bucket_rules_each_named(url, rule):
    with pytest.raises(MalformedPathError) as error:
        parse_url(url, "compare.path")
    assert rule in str(error.value)
    assert str(error.value).startswith("compare.path")


@pytest.mark.parametrize("bucket", ["abc", "a" * 63, "my.bucket-1", "123bucket", "1.2.3.4x"])
def test_valid_buckets_pass(bucket):
    assert parse_url(f"obs://{bucket}/run 7/ranks").bucket == bucket  # a space in a key is allowed


def test_local_path_limits_are_bytes_of_utf8():
    assert check_local_path("./" + "a" * 255, "path")
    with pytest.raises(MalformedPathError, match="name of 256 bytes"):
        check_local_path("./" + "a" * 256, "path")
    with pytest.raises(MalformedPathError, match="name of 258 bytes"):
        check_local_path("./" + "数" * 86, "path")  # 86 characters, 3 bytes each
    assert check_local_path("/" + "a/" * 2047 + "b", "path")  # 4096 bytes
    with pytest.raises(MalformedPathError, match="4097 bytes long"):
        check_local_path("/" + "a/" * 2047 + "bc", "path")


def test_output_inside_input_at_any_depth_and_through_links(tmp_path):
    data = tmp_path / "run"
    (data / "deep").mkdir(parents=True)
    (tmp_path / "link").symlink_to(data)
    for output in (data, data / "deep" / "x", tmp_path / "link" / "reports"):
        with pytest.raises(InputError, match=r"inside the profiling data given as compare\.path"):
            refuse_output_inside_inputs(output, {"path": tmp_path / "other", "compare.path": data}, "out")
    refuse_output_inside_inputs(tmp_path / "run2", {"path": data}, "out")  # a sibling with a longer name
    refuse_output_inside_inputs(tmp_path, {"path": data}, "out")  # the parent
    with pytest.raises(InputError, match="given as path"):
        refuse_output_inside_inputs("s3://bkt/jobs/run/r", {"path": "obs://bkt/jobs/run"}, "out")
    refuse_output_inside_inputs("obs://bkt/jobs/run2", {"path": "obs://bkt/jobs/run"}, "out")


def test_s3_without_endpoint_fails_before_any_request():
    """Without an endpoint, s3:// used to go to the public AWS endpoint with the user's keys."""
    config = load_config("s3", CREDENTIALS)
    with pytest.raises(StorageError, match=r"^s3://bucket/run: no S3 endpoint: set AWS_ENDPOINT_URL"):
        make_client(config, "s3://bucket/run")
    assert make_client(
        load_config("s3", {**CREDENTIALS, "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}), "s3://bkt/r"
    )


async def test_inspect_s3_without_endpoint_says_so(jp_fetch, monkeypatch):
    from .server_helpers import API, call

    for name in ("OBS_ENDPOINT", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    status, body = await call(jp_fetch, *API, "inspect", params={"source": "obs", "path": "s3://bucket/run"})
    assert status == 200 and body["ok"] is False
    assert body["message"].startswith("s3://bucket/run: no S3 endpoint: set AWS_ENDPOINT_URL")


@pytest.mark.parametrize("where", [".", "reports", "rank_dirs/deeper"])
def test_cli_refuses_output_inside_the_input(tmp_path, capsys, where):
    root, _ = demo(tmp_path)
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    code = cli.main(["analyze", str(root), "--output", str(root / where), "--quiet"])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.count("\n") == 1
    assert "--output" in err and "is inside the profiling data given as PATH, which is read-only" in err
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before


def test_cli_refuses_output_inside_the_baseline(tmp_path, capsys):
    root, _ = demo(tmp_path)
    baseline, _ = demo(tmp_path, "baseline")
    code = cli.main(["analyze", str(root), "--compare", str(baseline), "--output", str(baseline / "o")])
    _, err = capsys.readouterr()
    assert code == 2 and "given as --compare" in err
    assert not (baseline / "o").exists()
