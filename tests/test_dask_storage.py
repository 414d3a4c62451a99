"""Dask workers that read a profile in object storage themselves (a moto S3 server on 127.0.0.1, the
credentials in the workers' environment only), tls:// schedulers, the version check, and one line
for each way a rank can fail on the cluster."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from advisor.engine import run_analysis
from advisor.errors import InputError
from advisor.options import Deployment
from advisor.synth import SynthSpec, write_synth_profile

from .dask_cluster import PACKAGE_ROOT, LoopbackCluster, make_tls_files, recorded_clients, recorded_task_specs
from .test_dask_engine import ANALYZE, _worker_holding_a_rank, finding_rows
from .test_storage_obs import AK, BUCKET, SK, s3  # noqa: F401 (s3: the moto server fixture)

distributed = pytest.importorskip("distributed", reason="the dask extra (distributed) is not installed")

PREFIX = "dask/run1"
URL = f"obs://{BUCKET}/{PREFIX}"


@pytest.fixture(scope="module")
def stored_profile(s3, tmp_path_factory) -> Path:  # noqa: F811
    """4 generated ranks, rank 1 slowed down, uploaded under PREFIX (plus raw data nothing reads)."""
    _, client = s3
    spec = SynthSpec(ranks=4, steps=(1, 2), inject=("cluster.slow_rank", "schedule.gc"), inject_ranks=(1,))
    root = write_synth_profile(tmp_path_factory.mktemp("synth") / "cluster", spec)
    for path in sorted(root.rglob("*")):
        if path.is_file():
            client.upload_file(str(path), BUCKET, f"{PREFIX}/{path.relative_to(root).as_posix()}")
    rank0 = next(p.name for p in sorted(root.iterdir()) if p.name.endswith("_ascend_pt"))
    client.put_object(Bucket=BUCKET, Key=f"{PREFIX}/{rank0}/PROF_1/host/data/raw.data.0", Body=b"\0" * 4096)
    return root


def store_env(endpoint: str) -> dict[str, str]:
    return {"OBS_ENDPOINT": endpoint, "HUAWEICLOUD_SDK_AK": AK, "HUAWEICLOUD_SDK_SK": SK}


@pytest.fixture(scope="module")
def store_cluster(s3, tmp_path_factory) -> Iterator[LoopbackCluster]:  # noqa: F811
    """Two workers with the store's endpoint and credentials in their environment, each with a
    download cache of its own (as on separate machines)."""
    endpoint, _ = s3
    folder = tmp_path_factory.mktemp("dask-store")
    cache = str(folder / "obs-cache-{worker}")
    cluster = LoopbackCluster(
        folder, workers=2, worker_env={**store_env(endpoint), "PERFORMANCE_ADVISOR_OBS_CACHE": cache}
    )
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def test_workers_read_their_ranks_from_the_store_and_no_secret_is_sent(
    s3,  # noqa: F811
    stored_profile,
    store_cluster,
    tmp_path,
):
    endpoint, _ = s3
    local = run_analysis(stored_profile)
    client_cache = tmp_path / "client-obs-cache"
    out = tmp_path / "reports"
    with store_cluster.client() as client:
        connected = len(client.run_on_scheduler(recorded_clients))
    result = subprocess.run(
        [*ANALYZE, URL, "--scheduler", store_cluster.address, "--format", "json", "--output", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=PACKAGE_ROOT,
        # The client lists the objects with its own credentials; the workers download with theirs.
        env={**os.environ, **store_env(endpoint), "PERFORMANCE_ADVISOR_OBS_CACHE": str(client_cache)},
    )
    assert result.returncode == 0, result.stderr
    [path] = out.glob("*.json")
    report = json.loads(path.read_text())
    assert report["input"]["path"] == URL
    assert sorted(
        (f["check"], tuple(f["ranks"]), f["priority"], f["estimated_gain_us"], f["title"])
        for f in report["findings"]
    ) == finding_rows(local.findings)
    assert "cluster.slow_rank" in {f["check"] for f in report["findings"]}
    # Nothing was downloaded where the client runs; every rank folder was, by the workers, and not
    # the raw data that no reader uses.
    assert not client_cache.exists()
    ranks = sorted(p.name for p in stored_profile.iterdir() if p.name.endswith("_ascend_pt"))
    fetched = {
        p.name
        for cache in store_cluster.folder.glob("obs-cache-*")
        for p in cache.glob(f"data/*/{BUCKET}/{PREFIX}/*")
        if p.is_dir()
    }
    assert fetched == set(ranks)
    assert not list(store_cluster.folder.glob("obs-cache-*/data/**/raw.data.0"))
    # No credential in any task the scheduler received, nor in what the CLI printed.
    with store_cluster.client() as client:
        specs = client.run_on_scheduler(recorded_task_specs)
        clients = client.run_on_scheduler(recorded_clients)
    # The CLI surveyed, analysed and read the checks' tables through one client (and checked the
    # workers' versions once); the other new one is this test's.
    assert len(clients) == connected + 2
    assert any("-survey-" in key for key in specs) and any("-rank-" in key for key in specs)
    for secret in (AK, SK):
        assert not [key for key, spec in specs.items() if secret.encode() in spec]
        assert secret not in result.stdout and secret not in result.stderr


def test_workers_without_credentials_fail_with_one_line_naming_the_rank_folder(
    s3,  # noqa: F811
    stored_profile,
    tmp_path,
    monkeypatch,
):
    endpoint, _ = s3
    for name, value in store_env(endpoint).items():
        monkeypatch.setenv(name, value)  # the client may list; its workers have no keys
    hidden = {
        n: ""
        for n in ("HUAWEICLOUD_SDK_AK", "HUAWEICLOUD_SDK_SK", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    }
    cluster = LoopbackCluster(tmp_path / "dask", workers=1, worker_env=hidden)
    try:
        address = cluster.start()
        with pytest.raises(InputError) as raised:
            run_analysis(URL, deployment=Deployment(address))
    finally:
        cluster.stop()
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("rank folder ") and "_ascend_pt: " in message
    assert "no object storage credentials: set HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK" in message


@pytest.fixture(scope="module")
def small_cluster(tmp_path_factory) -> Path:
    spec = SynthSpec(ranks=2, steps=(1, 2), inject=("cluster.slow_rank",), inject_ranks=(1,))
    return write_synth_profile(tmp_path_factory.mktemp("synth") / "cluster", spec)


def test_tls_scheduler_with_the_deployments_certificate(small_cluster, tmp_path):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make the test's certificates")
    tls = make_tls_files(tmp_path / "tls")
    cluster = LoopbackCluster(tmp_path / "dask", workers=2, tls=tls)
    try:
        address = cluster.start()
        assert address.startswith("tls://127.0.0.1:")
        deployment = Deployment(address, str(tls.ca), str(tls.cert), str(tls.key))
        report = run_analysis(small_cluster, deployment=deployment)
        # Without the certificate the connection is refused, in one line.
        with pytest.raises(
            InputError, match=r"^cannot reach the Dask scheduler at 'tls://127\.0\.0\.1:\d+': "
        ):
            run_analysis(small_cluster, deployment=Deployment(address))
        with pytest.raises(InputError, match=r"^--scheduler-key is missing: "):
            run_analysis(small_cluster, deployment=Deployment(address, str(tls.ca), str(tls.cert)))
    finally:
        cluster.stop()
    assert finding_rows(report.findings) == finding_rows(run_analysis(small_cluster).findings)


def test_a_worker_with_another_advisor_version_is_named_before_any_task(small_cluster, tmp_path):
    # Worker 0 imports this checkout; worker 1 a copy of it that says it is another version.
    same, other = tmp_path / "pkg0", tmp_path / "pkg1"
    same.mkdir()
    (same / "advisor").symlink_to(PACKAGE_ROOT / "advisor")
    shutil.copytree(PACKAGE_ROOT / "advisor", other / "advisor", ignore=shutil.ignore_patterns("__pycache__"))
    (other / "advisor" / "_version.py").write_text('__version__ = "0.0.1.other"\n')
    cluster = LoopbackCluster(
        tmp_path / "dask", workers=2, worker_env={"PYTHONPATH": f"{tmp_path}/pkg{{worker}}:{PACKAGE_ROOT}"}
    )
    try:
        address = cluster.start()
        with cluster.client() as client:
            paths = client.run(lambda: __import__("advisor").__file__)
            before = len(client.run_on_scheduler(recorded_task_specs))
            odd = next(worker for worker, path in paths.items() if path.startswith(str(other)))
        with pytest.raises(InputError) as raised:
            run_analysis(small_cluster, deployment=Deployment(address))
        with cluster.client() as client:
            assert len(client.run_on_scheduler(recorded_task_specs)) == before  # nothing was submitted
    finally:
        cluster.stop()
    message = str(raised.value)
    assert message.startswith(f"1 of 2 Dask workers run another advisor ({odd} has advisor 0.0.1.other); ")
    assert "install the same version everywhere" in message and "\n" not in message


def test_workers_that_cannot_see_the_path_say_so(small_cluster, tmp_path):
    # The client reads the profile (discovery); the workers do not see it: moved away as soon as
    # discovery is done, as if their file system did not hold it.
    profile = shutil.copytree(small_cluster, tmp_path / "profile")
    cluster = LoopbackCluster(tmp_path / "dask", workers=2)

    def hide(stage: str, done: int, total: int) -> None:
        if profile.exists():
            profile.rename(tmp_path / "elsewhere")

    try:
        address = cluster.start()
        with pytest.raises(InputError) as raised:
            run_analysis(profile, deployment=Deployment(address), progress=hide)
    finally:
        cluster.stop()
    message = str(raised.value)
    assert message.startswith("rank ") and "\n" not in message
    assert f"the worker cannot read its data ({profile}/" in message
    assert "no such file or directory on this worker) on worker tcp://127.0.0.1:" in message
    assert "needs the data on a file system every worker mounts at the same path" in message


def test_a_rank_whose_worker_dies_every_time_is_named(tmp_path):
    spec = SynthSpec(ranks=4, steps=(1, 2), size_mb=3)
    profile = write_synth_profile(tmp_path / "cluster", spec)
    # No second chance for a rank whose worker died: the first death fails it for good.
    cluster = LoopbackCluster(
        tmp_path / "dask", workers=2, env={"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0"}
    )
    try:
        address = cluster.start()
        with cluster.client() as client, ThreadPoolExecutor(1) as thread:
            running = thread.submit(run_analysis, profile, deployment=Deployment(address))
            pids = client.run(os.getpid)
            os.kill(pids[_worker_holding_a_rank(client)], signal.SIGKILL)
            with pytest.raises(InputError) as raised:
                running.result(timeout=300)
            failed = client.run_on_scheduler(_failed_ranks)
    finally:
        cluster.stop()
    message = str(raised.value)
    assert message.split(":", 1)[0] in {f"rank {rank}" for rank in failed}
    assert message.endswith(
        ": its worker died every time it ran it (out of memory? see the workers' logs); the analysis stopped"
    )


def _failed_ranks(dask_scheduler) -> list[str]:
    """The ranks whose tasks failed for good (run on the scheduler: its transition log)."""
    keys = {str(entry[0]) for entry in dask_scheduler.transition_log if entry[2] == "erred"}
    return [key.rsplit("-", 1)[1] for key in keys if "-rank-" in key]
