"""Where an object store is and how to sign in: from the environment (or the server's traitlets,
which the server passes to the analysis subprocess as the same environment variables).

Secrets live only in `StoreConfig` (never in its repr) and in the child's environment: they are
never put on a command line, in a task record, a log or an error message.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError, MalformedPathError
from ..pathtext import check_text, shown

SCHEMES = ("obs", "s3")
# Environment variables, Huawei Cloud names first for obs://, AWS names first for s3://.
OBS_AK, OBS_SK, OBS_TOKEN, OBS_ENDPOINT = (
    "HUAWEICLOUD_SDK_AK",
    "HUAWEICLOUD_SDK_SK",
    "HUAWEICLOUD_SDK_SECURITY_TOKEN",
    "OBS_ENDPOINT",
)
AWS_AK, AWS_SK, AWS_TOKEN, AWS_ENDPOINT = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL",
)
CACHE_DIR_ENV = "PERFORMANCE_ADVISOR_OBS_CACHE"
CACHE_MB_ENV = "PERFORMANCE_ADVISOR_OBS_CACHE_MB"
DEFAULT_CACHE_MB = 20480
# OBS endpoints name their region: obs.cn-north-4.myhuaweicloud.com (signature v4 needs it).
_OBS_REGION = re.compile(r"^(?:[\w-]+\.)?obs\.([a-z0-9-]+)\.", re.IGNORECASE)
# Bucket naming, as S3 and OBS both define it; object keys up to 1024 bytes of UTF-8.
MIN_BUCKET, MAX_BUCKET, MAX_KEY_BYTES = 3, 63, 1024
_BUCKET_CHARS = re.compile(r"[a-z0-9.-]+")
_IPV4 = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")


class StorageError(InputError):
    """An object store problem, as one line for the user (the task's failure reason)."""


@dataclass(frozen=True)
class ObjectURL:
    scheme: str  # "obs" | "s3"
    bucket: str
    prefix: str  # "" (whole bucket) or "dir/sub/" (always ending in "/")

    def __str__(self) -> str:
        return f"{self.scheme}://{self.bucket}/{self.prefix}".rstrip("/")

    def child(self, name: str) -> str:
        return f"{self.prefix}{name}"


def is_object_url(path: object) -> bool:
    return isinstance(path, str) and path.strip().lower().startswith(tuple(f"{s}://" for s in SCHEMES))


def parse_url(text: str, field: str = "path") -> ObjectURL:
    """`obs://bucket/prefix` or `s3://bucket/prefix` (a folder: the prefix gets a trailing '/').

    The one parser of object-store URLs: every rule it enforces is named in its InputError, with the
    request field (`path`, `compare.path`, `options.output_path`) the URL came in.
    """
    raw = check_text(text, field).strip()
    scheme, sep, rest = raw.partition("://")
    if not sep or scheme.lower() not in SCHEMES:
        raise MalformedPathError(
            f"{field} {shown(raw)} is not an object storage path: expected obs://bucket/path or s3://bucket/path"
        )
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise MalformedPathError(f"{field} {shown(raw)} names no bucket: expected obs://bucket/path")
    problem = bucket_problem(bucket)
    if problem:
        raise MalformedPathError(f"{field} {shown(raw)}: bucket {shown(bucket)} {problem}")
    if len(prefix.encode()) > MAX_KEY_BYTES:
        raise MalformedPathError(f"{field}: the object key is longer than {MAX_KEY_BYTES} bytes")
    parts = [p for p in prefix.split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise MalformedPathError(
            f"{field} {shown(raw)}: '.' and '..' are not allowed in object storage paths"
        )
    return ObjectURL(scheme.lower(), bucket, "".join(f"{p}/" for p in parts))


def bucket_problem(bucket: str) -> str | None:
    """Which S3/OBS bucket naming rule `bucket` breaks, or None. A user, password or port
    (`user:pw@host:9000`) has no place in the URL: the endpoint is configured, never typed into a path."""
    if "@" in bucket or ":" in bucket:
        return (
            "is not a bucket name: a user, password, host or port does not belong in the path "
            "(the object store's endpoint and credentials are configured on the server)"
        )
    if not MIN_BUCKET <= len(bucket) <= MAX_BUCKET:
        return f"must be {MIN_BUCKET} to {MAX_BUCKET} characters long (it has {len(bucket)})"
    if not _BUCKET_CHARS.fullmatch(bucket):
        return "may hold only lowercase letters, digits, hyphens and dots"
    if not (bucket[0].isalnum() and bucket[-1].isalnum()):
        return "must start and end with a letter or digit"
    if ".." in bucket or ".-" in bucket or "-." in bucket:
        return "may not hold two dots, or a dot and a hyphen, side by side"
    if _IPV4.fullmatch(bucket):
        return "may not be an IP address"
    return None


@dataclass(frozen=True)
class StoreConfig:
    endpoint: str | None
    access_key: str = field(default="", repr=False)
    secret_key: str = field(default="", repr=False)
    session_token: str = field(default="", repr=False)
    region: str = "us-east-1"
    cache_dir: Path = Path()
    cache_bytes: int = DEFAULT_CACHE_MB * 2**20
    workers: int = 8
    connect_timeout_s: float = 3.0
    read_timeout_s: float = 30.0
    max_attempts: int = 3

    @property
    def has_credentials(self) -> bool:
        return bool(self.access_key and self.secret_key)

    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self.access_key, self.secret_key, self.session_token) if s)

    def scrub(self, text: str) -> str:
        """`text` with any secret replaced (error texts from a server may echo what was sent)."""
        for secret in self.secrets():
            if len(secret) >= 6:  # shorter ones are no real keys, and would mangle the text
                text = text.replace(secret, "***")
        return text


def require_endpoint(url: ObjectURL, config: StoreConfig) -> None:
    """StorageError unless an endpoint is configured for `url`: no request is ever sent to a default
    (public AWS) endpoint that the user did not choose, with credentials meant for another store."""
    if config.endpoint:
        return
    if url.scheme == "obs":
        example, variable = "https://obs.cn-north-4.myhuaweicloud.com", OBS_ENDPOINT
    else:
        example, variable = "https://s3.eu-west-1.amazonaws.com for Amazon S3", AWS_ENDPOINT
    raise StorageError(
        f"{url}: no {url.scheme.upper()} endpoint: set {variable} (e.g. {example}) "
        "or AdvisorApp.obs_endpoint on the server"
    )


def _first(env: Mapping[str, str], *names: str) -> str:
    return next((env[n].strip() for n in names if env.get(n, "").strip()), "")


def default_cache_dir(env: Mapping[str, str]) -> Path:
    configured = env.get(CACHE_DIR_ENV, "").strip()
    if configured:
        return Path(configured).expanduser()
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "performance-advisor" / "objects"


def load_config(scheme: str = "obs", env: Mapping[str, str] | None = None) -> StoreConfig:
    """The store settings for an `obs://` or `s3://` path; the scheme's own variables win."""
    env = os.environ if env is None else env
    obs_first = scheme == "obs"
    order = [(OBS_AK, OBS_SK, OBS_TOKEN), (AWS_AK, AWS_SK, AWS_TOKEN)]
    if not obs_first:
        order.reverse()
    # Key and secret come as a pair from one family: never an OBS key with an AWS secret.
    access = secret = token = ""
    for ak, sk, tk in order:
        if env.get(ak, "").strip() and env.get(sk, "").strip():
            access, secret, token = env[ak].strip(), env[sk].strip(), env.get(tk, "").strip()
            break
    endpoint = (
        _first(env, OBS_ENDPOINT, AWS_ENDPOINT) if obs_first else _first(env, AWS_ENDPOINT, OBS_ENDPOINT)
    )
    if endpoint and "://" not in endpoint:
        endpoint = "https://" + endpoint
    host = endpoint.split("://", 1)[-1] if endpoint else ""
    match = _OBS_REGION.match(host)
    region = _first(env, "OBS_REGION", "AWS_REGION", "AWS_DEFAULT_REGION") or (
        match.group(1) if match else "us-east-1"
    )
    try:
        cache_mb = int(env.get(CACHE_MB_ENV, "") or DEFAULT_CACHE_MB)
    except ValueError:
        raise InputError(f"{CACHE_MB_ENV} must be a whole number of MiB; got {env[CACHE_MB_ENV]!r}") from None
    return StoreConfig(
        endpoint=endpoint or None,
        access_key=access,
        secret_key=secret,
        session_token=token,
        region=region,
        cache_dir=default_cache_dir(env),
        cache_bytes=max(cache_mb, 1) * 2**20,
    )
