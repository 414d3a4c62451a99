"""The per-rank work of an analysis as Dask tasks (docs/design.md, "Scale-out on Dask").

Imported only when a scheduler address is given: `distributed` is an optional dependency (the
`dask` extra). Each rank is one task running `analyse_rank` on a worker, next to the data; only its
`RankOutcome` (the rank checks' results and the small tables the cluster checks need) comes back.

A profile in object storage (obs://, s3://) is read by the workers themselves: the client lists the
rank folders, each worker downloads its own ranks into its own download cache with the credentials
of its own environment (no secret is ever in a task's arguments), surveys them for discovery
(`survey_rank`), and the client assembles the profile from the surveys (`assemble`).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import InputError
from .model import ProfileSet, RankInfo
from .options import Deployment

if TYPE_CHECKING:  # the engine imports this module on its Dask path: no import back at run time
    from .engine import RankOutcome, TableLoader
    from .formats.ascend_common.discover import RankSurvey

# A rank whose task raised on its worker (e.g. MemoryError, a file system hiccup outside the
# readers' own handling) is run again this many times. A worker lost while it runs a rank (killed,
# out of memory, its node gone) is the scheduler's to handle: it gives the rank to another worker,
# up to distributed.scheduler.allowed-failures (3) times, then the rank fails with KilledWorker.
RANK_RETRIES = 2
# A scheduler that does not answer is a wrong address or a cluster that is down: say so in seconds,
# not after distributed's default of 30 s.
CONNECT_TIMEOUT_S = 10


@dataclass(frozen=True)
class StoredRanks:
    """Where the ranks of a profile in object storage are: each rank's URL, the tables to download
    of it, and the worker that surveyed it (its files are in that worker's download cache)."""

    urls: dict[int, str]
    tables: tuple[str, ...]
    workers: dict[int, str]


class RankDataUnreadable(Exception):
    """A worker cannot see a rank's folder: the data is not on a file system that it shares."""


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise InputError(
            "--scheduler needs the distributed package: pip install 'jupyterlab-performance-advisor[dask]'"
        ) from None
    return distributed


def versions() -> dict[str, str]:
    """What must be the same on the client and on every worker: the advisor's version (its checks),
    the report schema, and the table schemas (the tables the ranks send back)."""
    from .formats.schema import SCHEMAS
    from .report.model import SCHEMA_VERSION
    from .tool_version import __version__

    tables = repr(sorted((n, sorted(s.columns.items()), sorted(s.required)) for n, s in SCHEMAS.items()))
    return {
        "advisor": __version__,
        "report schema": str(SCHEMA_VERSION),
        "table schemas": hashlib.sha1(tables.encode()).hexdigest()[:12],
    }


def _security(deployment: Deployment) -> Any:
    """distributed's Security from the deployment's TLS files (None: distributed's own configuration,
    e.g. DASK_DISTRIBUTED__COMM__TLS__* variables)."""
    files = {
        "--scheduler-ca": deployment.dask_tls_ca_file,
        "--scheduler-cert": deployment.dask_tls_cert_file,
        "--scheduler-key": deployment.dask_tls_key_file,
    }
    if not any(files.values()):
        return None
    for flag, path in files.items():
        if not path:
            raise InputError(f"{flag} is missing: a TLS scheduler needs the CA, certificate and key files")
        if not Path(path).is_file():
            raise InputError(f"{flag} {path}: no such file")
    from distributed.security import Security

    return Security(
        tls_ca_file=deployment.dask_tls_ca_file,
        tls_client_cert=deployment.dask_tls_cert_file,
        tls_client_key=deployment.dask_tls_key_file,
        require_encryption=True,
    )


def connect(deployment: Deployment) -> Any:
    """A `distributed.Client` of the deployment's scheduler, its workers checked to run the same
    advisor as this client; InputError (one line) when it cannot be reached in CONNECT_TIMEOUT_S,
    the address is not one, or a worker runs another version."""
    distributed = _distributed()
    from distributed.comm import parse_address
    from distributed.comm.registry import get_backend

    address = deployment.dask_scheduler_address or ""
    security = _security(deployment)
    try:
        # Checked first: a Client made with an address it cannot use blocks for 20 s when collected.
        scheme, location = parse_address(address, strict=True)
        get_backend(scheme).get_address_host_port(location)
        client = distributed.Client(
            address, timeout=CONNECT_TIMEOUT_S, set_as_default=False, security=security
        )
    except (OSError, TimeoutError, ValueError, TypeError, NotImplementedError) as exc:
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise InputError(f"cannot reach the Dask scheduler at {address!r}: {detail}") from None
    try:
        _check_versions(client)
    except BaseException:
        client.close()
        raise
    return client


class DaskRun:
    """One analysis's client of the deployment's scheduler: connected (and the workers' versions
    checked, a call to every worker) on first use, then shared by discovery in object storage, the
    rank tasks and the tables the client's checks read; closed when the analysis ends."""

    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = connect(self.deployment)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def _check_versions(client: Any) -> None:
    """InputError naming the workers whose advisor differs from this client's (before any task)."""
    ours = versions()
    theirs: dict[str, dict[str, str]] = client.run(versions)
    differ = {worker: v for worker, v in sorted(theirs.items()) if v != ours}
    if differ:
        named = "; ".join(
            f"{worker} has " + ", ".join(f"{k} {v.get(k)}" for k in ours if v.get(k) != ours[k])
            for worker, v in differ.items()
        )
        mine = ", ".join(f"{k} {v}" for k, v in ours.items())
        raise InputError(
            f"{len(differ)} of {len(theirs)} Dask workers run another advisor ({named}); this client "
            f"has {mine}: install the same version everywhere"
        )


def survey_stored_rank(rank_url: str, name: Path, tables: tuple[str, ...]) -> tuple[RankSurvey, str]:
    """On a worker: download the rank folder at `rank_url` (the files the analysis reads) into this
    worker's download cache, with this worker's credentials, and survey it for discovery; returns the
    survey and the worker's address."""
    from distributed import get_worker

    from .formats.ascend_common.discover import survey_rank
    from .storage import sync_profile

    folder, _, cache = sync_profile(rank_url, tables=tables)
    cache.close()
    return survey_rank(folder, name), get_worker().address


def analyse_stored_rank(
    rank_url: str,
    tables: tuple[str, ...],
    analyse_rank: Callable[..., RankOutcome],
    profile: ProfileSet,
    rank: RankInfo,
    *args: Any,
) -> RankOutcome:
    """On a worker: `analyse_rank` of the rank at `rank_url`, read from this worker's download cache
    (fetched again only where another worker surveyed it)."""
    from .storage import open_profile

    with open_profile(rank_url, tables=tables) as (folder, _):
        return analyse_rank(profile, replace(rank, path=folder), *args)


def load_stored_rank_tables(
    load_rank_tables: TableLoader,
    rank_url: str,
    tables: tuple[str, ...],
    rank: RankInfo,
    names: list[str],
) -> tuple[dict[str, Any], dict[str, str]]:
    """On a worker: `load_rank_tables` (the engine's, passed in as `analyse_rank` is: the engine
    imports this module) of the rank at `rank_url`, from this worker's download cache."""
    from .storage import open_profile

    with open_profile(rank_url, tables=tables) as (folder, _):
        return load_rank_tables(replace(rank, path=folder), names)


class StoredTables:
    """Tables of stored ranks that the checks running in the client read (a cluster check's
    on-demand tables, the compared ranks' tables), read by the worker that downloaded the rank."""

    def __init__(self, dask: DaskRun, stored: StoredRanks, load_rank_tables: TableLoader) -> None:
        self.dask = dask
        self.stored = stored
        self.load_rank_tables = load_rank_tables

    def load(self, rank: RankInfo, names: Sequence[str]) -> tuple[dict[str, Any], dict[str, str]]:
        client = self.dask.client
        future = client.submit(
            load_stored_rank_tables,
            self.load_rank_tables,
            self.stored.urls[rank.rank],
            self.stored.tables,
            rank,
            list(names),
            retries=RANK_RETRIES,
            workers=[self.stored.workers[rank.rank]],
            allow_other_workers=True,
            pure=False,
        )
        try:
            return _result(client, future, f"rank {rank.rank}")
        finally:
            future.release()


def _the_profile(profile: ProfileSet) -> ProfileSet:
    """On a worker: the profile the rank tasks share, rebuilt from the task itself when lost."""
    return profile


def analyse_shared_rank(
    analyse_rank: Callable[..., RankOutcome], profile: ProfileSet, rank: RankInfo, *args: Any
) -> RankOutcome:
    """On a worker: `analyse_rank` of a rank on the file system shared with the client."""
    if not rank.path.is_dir() and not rank.path.is_file():
        raise RankDataUnreadable(f"{rank.path}: no such file or directory on this worker")
    return analyse_rank(profile, rank, *args)


def discover_stored(dask: DaskRun, url_text: str, tables: tuple[str, ...]) -> tuple[ProfileSet, StoredRanks]:
    """The profile at `url_text` in object storage, surveyed by the workers (one task per rank
    folder): the client only lists the objects."""
    from .formats.ascend_common.discover import assemble
    from .formats.ascend_common.folder import OUTPUT_DIR
    from .formats.ascend_common.remote import rank_folders
    from .storage import list_profile, parse_url

    url = parse_url(url_text)
    folders = rank_folders(list_profile(url_text))
    if not folders:
        raise InputError(f"{url}: no rank folder with an {OUTPUT_DIR} export (what Dask workers read)")
    root = Path(str(url))
    rank_urls = {rel: f"{url}/{rel}" if rel else str(url) for rel in folders}
    run = uuid.uuid4().hex[:8]
    distributed = _distributed()
    client = dask.client
    futures: dict[Any, str] = {}
    try:
        for rel, rank_url in rank_urls.items():
            future = client.submit(
                survey_stored_rank,
                rank_url,
                root / rel,
                tables,
                key=f"advisor-{run}-survey-{rel or '.'}",
                retries=RANK_RETRIES,
            )
            futures[future] = rel
        surveys: dict[str, tuple[RankSurvey, str]] = {}
        for future in distributed.as_completed(list(futures), loop=client.loop):
            surveys[futures[future]] = _result(client, future, f"rank folder {futures[future] or '.'}")
    finally:
        client.cancel(list(futures))
    profile = assemble(root, [survey for survey, _ in surveys.values()])
    rel_of = {root / rel: rel for rel in folders}
    by_rank = {rank.rank: rel_of[rank.path] for rank in profile.ranks}
    stored = StoredRanks(
        urls={rank: rank_urls[rel] for rank, rel in by_rank.items()},
        tables=tables,
        workers={rank: surveys[rel][1] for rank, rel in by_rank.items()},
    )
    return profile, stored


def _result(client: Any, future: Any, what: str) -> Any:
    """The future's result; a task that failed for good as one line naming `what`, the worker and
    its error."""
    from distributed import KilledWorker

    try:
        return future.result()
    except InputError as error:  # already one line for the user (a download that failed, bad data)
        raise InputError(f"{what}: {error}") from None
    except KilledWorker:
        raise InputError(
            f"{what}: its worker died every time it ran it (out of memory? see the workers' logs); "
            "the analysis stopped"
        ) from None
    except Exception as error:
        worker = _erred_on(client, future.key)
        on = f" on worker {worker}" if worker else ""
        if isinstance(error, RankDataUnreadable):
            raise InputError(
                f"{what}: the worker cannot read its data ({error}){on}: --scheduler needs the data "
                "on a file system every worker mounts at the same path, or in obs:// or s3://"
            ) from None
        detail = " ".join(f"{type(error).__name__}: {error}".split())
        raise InputError(f"{what} failed{on} after {RANK_RETRIES + 1} tries: {detail}") from None


def _erred_on(client: Any, key: str) -> str:
    """The worker(s) where the task `key` last failed, as the scheduler recorded them."""

    def erred_on(dask_scheduler: Any) -> list[str]:
        task = dask_scheduler.tasks.get(key)
        return sorted(task.erred_on) if task is not None else []

    try:
        return ", ".join(client.run_on_scheduler(erred_on))
    except Exception:  # the reason matters more than where: never hide it behind this lookup
        return ""


def analyse_ranks_on_dask(
    dask: DaskRun,
    analyse_rank: Callable[..., RankOutcome],
    profile: ProfileSet,
    args: tuple[Any, ...],
    stored: StoredRanks | None = None,
) -> Iterator[RankOutcome]:
    """`analyse_rank(profile, rank, *args)` (engine.analyse_rank) for every rank as tasks of the
    deployment's scheduler, each outcome as its rank finishes; the ranks of `stored` read from object
    storage by the workers. Closing the iterator early (an error, Ctrl-C) cancels the ranks not done
    yet."""
    distributed = _distributed()
    client = dask.client
    futures: list[Any] = []
    try:
        run = uuid.uuid4().hex[:8]  # keys of this analysis, apart from any other on the cluster
        # The profile (every rank's paths) goes to the cluster once, not with each of its ranks, as a
        # task whose result the rank tasks share. Not scattered: scattered data has no recipe, and the
        # scheduler's memory manager drops the extra copies of a broadcast, so the worker holding the
        # last one would take every rank not done yet with it when it dies ("already forgotten").
        shared = client.submit(_the_profile, profile, key=f"advisor-{run}-profile", pure=False)
        futures.append(shared)
        ranks: dict[Any, int] = {}
        for rank in profile.ranks:
            key = f"advisor-{run}-rank-{rank.rank}"
            if stored is None:
                future = client.submit(
                    analyse_shared_rank, analyse_rank, shared, rank, *args, key=key, retries=RANK_RETRIES
                )
            else:  # where its files are already, unless that worker is gone or busy
                future = client.submit(
                    analyse_stored_rank,
                    stored.urls[rank.rank],
                    stored.tables,
                    analyse_rank,
                    shared,
                    rank,
                    *args,
                    key=key,
                    retries=RANK_RETRIES,
                    workers=[stored.workers[rank.rank]],
                    allow_other_workers=True,
                )
            ranks[future] = rank.rank
        futures.extend(ranks)
        for future in distributed.as_completed(list(ranks), loop=client.loop):
            yield _result(client, future, f"rank {ranks[future]}")
    finally:
        client.cancel(futures)
