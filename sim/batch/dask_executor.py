"""Run a batch's runs on a Dask cluster (optional extra ``podnetsim[dask]``).

The submitting process keeps the guarantees of local runs: each finished run is
stored as it completes (on the submitting machine), ``--resume`` works, results
equal ``--jobs 1`` byte for byte (a run is a pure function of its spec), a failed
run is reported without losing the others, and Dask reschedules the runs of a
worker that dies. Workers need the same podnetsim version installed (and any
trace files at the same paths).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from sim.errors import UserError

from .executors import Outcome, _safe_execute
from .expand import RunSpec

INSTALL_HINT = "install it with: pip install 'podnetsim[dask]'"


def _import_distributed():
    try:
        import distributed
    except ImportError:
        raise UserError(
            "Dask distributed is not installed",
            field="--scheduler/--dask-local",
            fix=INSTALL_HINT,
        ) from None
    return distributed


@contextmanager
def dask_client(scheduler: str | None = None, local_workers: int | None = None):
    """Yield a ``distributed.Client`` connected to ``scheduler`` or a new LocalCluster.

    Parameters
    ----------
    scheduler : str, optional
        Address of a running scheduler, e.g. ``tcp://host:8786``.
    local_workers : int, optional
        Start a LocalCluster of this many single-threaded worker processes.

    Raises
    ------
    UserError
        Dask missing, or the scheduler cannot be reached.
    """
    distributed = _import_distributed()
    cluster = None
    try:
        if local_workers is not None:
            cluster = distributed.LocalCluster(
                n_workers=local_workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",
            )
            client = distributed.Client(cluster)
        else:
            try:
                client = distributed.Client(scheduler, timeout="15s")
            except (OSError, TimeoutError, ValueError) as exc:  # ValueError: bad address
                raise UserError(
                    f"cannot reach the Dask scheduler at {scheduler} ({exc})",
                    field="--scheduler",
                    fix="start one with `dask scheduler` and give its tcp://HOST:PORT address",
                ) from None
        try:
            yield client
        finally:
            client.close()
    finally:
        if cluster is not None:
            cluster.close()


def run_dask(specs: Sequence[RunSpec], client) -> Iterator[Outcome]:
    """Submit every spec to ``client``; yield ``(spec, row, error)`` as runs finish.

    Runs are submitted with stable keys (``podnetsim-RUNID-FINGERPRINT``) and
    ``retries=2`` on top of Dask's own rescheduling of work lost with a worker.
    """
    distributed = _import_distributed()
    futures = {}
    for spec in specs:
        fut = client.submit(
            _safe_execute,
            spec,
            key=f"podnetsim-{spec.run_id}-{spec.fingerprint}",
            pure=False,
            retries=2,
        )
        futures[fut] = spec
    for fut in distributed.as_completed(futures):
        spec = futures.pop(fut)
        try:
            row, err = fut.result()
        except Exception as exc:  # e.g. KilledWorker after too many worker deaths
            row, err = None, f"{type(exc).__name__}: {exc}"
        # drop the result from the cluster: a worker dying later must not make Dask
        # recompute runs that are already stored
        fut.release()
        yield spec, row, err
