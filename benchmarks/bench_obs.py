"""Object storage download: throughput of a cold sync and the cost of a warm (cached) one.

A moto S3 server runs in a child process on a free loopback port (nothing leaves the machine); a
synthetic profile (or PROFILE) is uploaded under obs://bench/run, then `sync_profile` downloads the
files the checks read into an empty cache (cold, per worker count), and again into the filled cache
(warm: listing only, nothing downloaded).

    python benchmarks/bench_obs.py [PROFILE] [--ranks 4 --size-mb 50] [--workers 1,8] [--repeat 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from advisor.storage import StoreConfig, human_bytes, sync_profile  # noqa: E402

AK, SK, BUCKET, PREFIX = "bench-access-key", "bench-secret-key", "bench", "run"
SERVER = (
    "import sys, logging\n"
    "from moto.server import ThreadedMotoServer\n"
    "logging.getLogger('werkzeug').setLevel(logging.ERROR)\n"
    "s = ThreadedMotoServer(ip_address='127.0.0.1', port=0, verbose=False); s.start()\n"
    "print(s.get_host_and_port()[1], flush=True)\n"
    "sys.stdin.read()\n"  # runs until the parent closes stdin
)
DIMENSIONS = ("computation", "communication", "schedule", "memory", "dataloader")


def start_server() -> tuple[subprocess.Popen, str]:
    child = subprocess.Popen(
        [sys.executable, "-c", SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    port = int(child.stdout.readline())
    return child, f"http://127.0.0.1:{port}"


def upload(endpoint: str, profile: Path) -> tuple[int, int]:
    client = boto3.client(
        "s3", endpoint_url=endpoint, aws_access_key_id=AK, aws_secret_access_key=SK, region_name="us-east-1"
    )
    client.create_bucket(Bucket=BUCKET)
    count = size = 0
    for path in sorted(profile.rglob("*")):
        if path.is_file():
            client.upload_file(str(path), BUCKET, f"{PREFIX}/{path.relative_to(profile).as_posix()}")
            count, size = count + 1, size + path.stat().st_size
    return count, size


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("profile", nargs="?", help="a profile folder (default: a synthetic one)")
    parser.add_argument("--ranks", type=int, default=4)
    parser.add_argument("--size-mb", type=float, default=50.0, help="trace_view.json size per rank")
    parser.add_argument("--workers", default="1,8", help="comma-separated download thread counts")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="pa-bench-obs-") as tmp:
        work = Path(tmp)
        if args.profile:
            profile = Path(args.profile)
        else:
            from advisor.synth import SynthSpec, write_synth_profile

            profile = Path(
                write_synth_profile(
                    work / "profile", SynthSpec(ranks=args.ranks, size_mb=args.size_mb, seed=1)
                )
            )
        child, endpoint = start_server()
        try:
            started = time.perf_counter()
            count, size = upload(endpoint, profile)
            print(f"uploaded {count} files, {human_bytes(size)} in {time.perf_counter() - started:.1f} s")
            print(f"{'run':<14} {'workers':>7} {'files':>6} {'downloaded':>11} {'seconds':>8} {'MB/s':>8}")
            for workers in (int(w) for w in args.workers.split(",")):
                for attempt in range(args.repeat):
                    cache = work / f"cache-{workers}-{attempt}"
                    config = StoreConfig(endpoint, AK, SK, cache_dir=cache, workers=workers)
                    for run in ("cold", "warm"):
                        _, stats, store = sync_profile(
                            f"obs://{BUCKET}/{PREFIX}", dimensions=DIMENSIONS, config=config
                        )
                        store.close()
                        rate = stats.bytes_downloaded / 1e6 / stats.seconds if stats.bytes_downloaded else 0
                        got = human_bytes(stats.bytes_downloaded)
                        print(
                            f"{run:<14} {workers:>7} {stats.selected:>6} {got:>11} "
                            f"{stats.seconds:>8.2f} {rate:>8.1f}"
                        )
        finally:
            assert child.stdin is not None
            child.stdin.close()
            child.wait(timeout=10)
    print(f"(cpu count {os.cpu_count()}; moto is a Python server: the store, not the client, sets the pace)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
