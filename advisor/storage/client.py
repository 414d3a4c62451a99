"""The S3 client (boto3; OBS speaks the S3 protocol) and one-line errors for what can go wrong."""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlparse

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectionError,
    EndpointConnectionError,
    IncompleteReadError,
    ReadTimeoutError,
    ResponseStreamingError,
)

from .config import OBS_AK, OBS_ENDPOINT, OBS_SK, StorageError, StoreConfig, parse_url, require_endpoint

_DENIED = {"AccessDenied", "AllAccessDisabled", "403", "Forbidden", "AccountProblem"}
_BAD_KEY = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
    "TokenRefreshRequired",
}
_NO_BUCKET = {"NoSuchBucket"}
_NO_KEY = {"NoSuchKey", "404", "NotFound"}
_TRANSIENT_CODES = {
    "500",
    "502",
    "503",
    "504",
    "SlowDown",
    "InternalError",
    "ServiceUnavailable",
    "RequestTimeout",
}
# Network errors worth retrying mid-download (botocore already retries the request itself).
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    ConnectionError,
    ConnectionClosedError,
    ReadTimeoutError,
    IncompleteReadError,
    ResponseStreamingError,
    OSError,
)


def _addressing_style(endpoint: str | None) -> str:
    """Path-style for IP and localhost endpoints (no DNS for bucket subdomains); otherwise virtual-host
    style, which OBS requires for new buckets."""
    if not endpoint:
        return "auto"
    host = urlparse(endpoint).hostname or ""
    try:
        ipaddress.ip_address(host)
        return "path"
    except ValueError:
        return "path" if host == "localhost" else "virtual"


def make_client(config: StoreConfig, url_text: str) -> Any:
    """An S3 client signed with the configured keys only (no ~/.aws profile, no instance metadata)."""
    if not config.has_credentials:
        raise StorageError(
            f"{url_text}: no object storage credentials: set {OBS_AK} and {OBS_SK} (or AWS_ACCESS_KEY_ID "
            "and AWS_SECRET_ACCESS_KEY), or AdvisorApp.obs_access_key_id/obs_secret_access_key on the server"
        )
    require_endpoint(parse_url(url_text), config)
    session = boto3.session.Session(
        aws_access_key_id=config.access_key,
        aws_secret_access_key=config.secret_key,
        aws_session_token=config.session_token or None,
        region_name=config.region,
    )
    return session.client(
        "s3",
        endpoint_url=config.endpoint,
        config=Config(
            connect_timeout=config.connect_timeout_s,
            read_timeout=config.read_timeout_s,
            retries={"max_attempts": config.max_attempts, "mode": "standard"},
            max_pool_connections=config.workers + 2,
            s3={"addressing_style": _addressing_style(config.endpoint)},
            signature_version="s3v4",
            # OBS does not understand the newer default integrity headers on every request.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )


def error_code(error: ClientError) -> str:
    code = str(error.response.get("Error", {}).get("Code", ""))
    status = str(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
    return code or status


def is_transient(error: BaseException) -> bool:
    if isinstance(error, ClientError):
        return error_code(error) in _TRANSIENT_CODES
    return isinstance(error, TRANSIENT_ERRORS)


def explain(
    error: BaseException, config: StoreConfig, url_text: str, *, bucket: str, key: str = ""
) -> StorageError:
    """The user's one-line reason for a failed store call (secrets scrubbed)."""
    where = f"{url_text}" + (f" ({key})" if key else "")
    if isinstance(error, ClientError):
        code = error_code(error)
        if code in _NO_BUCKET:
            message = f"{url_text}: no such bucket {bucket!r} at {config.endpoint or 'the default endpoint'}"
        elif code in _BAD_KEY:
            message = (
                f"{url_text}: the object store refused the credentials ({code}): "
                "check the access key and secret"
            )
        elif code in _DENIED:
            message = f"{where}: access denied: the credentials may not read (or write) this bucket or path"
        elif code in _NO_KEY:
            message = f"{where}: no such object (it was deleted while the analysis ran?)"
        elif code in ("PreconditionFailed", "412"):
            message = f"{where}: the object changed while it was being downloaded; run the analysis again"
        else:
            detail = str(error.response.get("Error", {}).get("Message", "")) or code
            message = f"{where}: the object store answered {code}: {detail}"
    elif isinstance(error, (EndpointConnectionError, ConnectionError)):
        message = (
            f"{url_text}: network failure: cannot reach the object store at "
            f"{config.endpoint or 'its default endpoint'} "
            f"({type(error).__name__}); check {OBS_ENDPOINT} and the network"
        )
    elif isinstance(error, BotoCoreError):
        message = f"{where}: object store error: {error}"
    else:
        message = f"{where}: {type(error).__name__}: {error}"
    return StorageError(" ".join(config.scrub(message).split()))
