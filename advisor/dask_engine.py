"""The per-rank work of an analysis as Dask tasks (docs/design.md, "Scale-out on Dask").

Imported only when a scheduler address is given: `distributed` is an optional dependency (the
`dask` extra). Each rank is one task running `analyse_rank` on a worker, next to the data; only its
`RankOutcome` (the rank checks' results and the small tables the cluster checks need) comes back.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from .errors import InputError
from .model import ProfileSet

if TYPE_CHECKING:  # the engine imports this module on its Dask path: no import back at run time
    from .engine import RankOutcome

# A rank whose task raised on its worker (e.g. MemoryError, a file system hiccup outside the
# readers' own handling) is run again this many times. A worker lost while it runs a rank (killed,
# out of memory, its node gone) is the scheduler's to handle: it gives the rank to another worker,
# up to distributed.scheduler.allowed-failures (3) times, then the rank fails with KilledWorker.
RANK_RETRIES = 2
# A scheduler that does not answer is a wrong address or a cluster that is down: say so in seconds,
# not after distributed's default of 30 s.
CONNECT_TIMEOUT_S = 10


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise InputError(
            "--scheduler needs the distributed package: pip install 'jupyterlab-performance-advisor[dask]'"
        ) from None
    return distributed


def connect(address: str) -> Any:
    """A `distributed.Client` of the scheduler at `address`; InputError (one line) when it cannot be
    reached in CONNECT_TIMEOUT_S or the address is not one."""
    distributed = _distributed()
    from distributed.comm import parse_address
    from distributed.comm.registry import get_backend

    try:
        # Checked first: a Client made with an address it cannot use blocks for 20 s when collected.
        scheme, location = parse_address(address, strict=True)
        get_backend(scheme).get_address_host_port(location)
        return distributed.Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
    except (OSError, TimeoutError, ValueError, TypeError, NotImplementedError) as exc:
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise InputError(f"cannot reach the Dask scheduler at {address!r}: {detail}") from None


def analyse_ranks_on_dask(
    address: str,
    analyse_rank: Callable[..., RankOutcome],
    profile: ProfileSet,
    args: tuple[Any, ...],
) -> Iterator[RankOutcome]:
    """`analyse_rank(profile, rank, *args)` (engine.analyse_rank) for every rank as tasks of the
    scheduler at `address`, each outcome as its rank finishes. Closing the iterator early (an error,
    Ctrl-C) cancels the ranks not done yet; the client is closed in every case."""
    distributed = _distributed()
    client = connect(address)
    futures: list[Any] = []
    try:
        # The profile (every rank's paths) goes to the cluster once, not with each of its ranks, and
        # to every worker: scattered data has no recipe, so a copy held by one worker alone would
        # be gone with that worker, and with it every rank not done yet.
        shared = client.scatter(profile, hash=False, broadcast=True)
        futures.append(shared)
        run = uuid.uuid4().hex[:8]  # keys of this analysis, apart from any other on the cluster
        ranks = [
            client.submit(
                analyse_rank, shared, rank, *args, key=f"advisor-{run}-rank-{rank.rank}", retries=RANK_RETRIES
            )
            for rank in profile.ranks
        ]
        futures.extend(ranks)
        for future in distributed.as_completed(ranks, loop=client.loop):
            yield future.result()
    finally:
        client.cancel(futures)
        client.close()
