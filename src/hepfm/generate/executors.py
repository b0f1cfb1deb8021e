"""Where chunks run: worker processes on this machine, or tasks on a Dask cluster.

An executor maps a list of :class:`~hepfm.generate.run.ChunkTask` to their results in task
order; the caller writes the parts. Chunks are independent and seeded by their index, so the
files are the same whichever executor made them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from typing import Any

from hepfm.errors import HepfmError, naming

log = logging.getLogger("hepfm.generate")

EXECUTORS = ("local", "dask")


def _no_dask() -> HepfmError:
    return naming(HepfmError, "{executor='dask'} needs dask.distributed: pip install "
                  "'hepfm[dask]' (or dask[distributed])", "executor")


def local_results(fn: Callable[[Any], Any], tasks: Sequence[Any], workers: int) -> Iterator[Any]:
    """`fn` over `tasks` in order, in a spawn-safe process pool when `workers` > 1."""
    if workers <= 1 or len(tasks) <= 1:
        yield from map(fn, tasks)
        return
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(min(workers, len(tasks))) as pool:
        yield from pool.imap(fn, tasks)


def task_key(task: Any) -> str:
    """A Dask key naming a chunk by its settings: identical chunks submitted by several
    clients to one scheduler are computed once."""
    fields = asdict(task)
    blob = json.dumps(fields, sort_keys=True, default=str)
    return f"hepfm-chunk-{fields.get('process')}-{fields.get('chunk')}-" \
           f"{hashlib.sha256(blob.encode()).hexdigest()[:16]}"


def dask_results(fn: Callable[[Any], Any], tasks: Sequence[Any], workers: int,
                 scheduler: str | None = None) -> Iterator[Any]:
    """`fn` over `tasks` as Dask tasks, results in task order.

    On the cluster at `scheduler` (``tcp://HOST:PORT``; its workers need hepfm installed), or
    on a ``LocalCluster`` of `workers` single-threaded processes. At most a few tasks per
    worker thread are in flight, so a long run does not pile results up in memory.
    """
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise _no_dask() from None
    cluster = None
    try:
        if scheduler:
            try:
                client = Client(scheduler, timeout=30)
            except OSError as err:
                raise HepfmError(f"cannot connect to the Dask scheduler '{scheduler}': "
                                 f"{err}") from None
        else:
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None, silence_logs=logging.WARNING)
            client = Client(cluster)
    except BaseException:
        if cluster is not None:
            cluster.close()
        raise
    try:
        threads = max(1, sum(client.nthreads().values()))
        log.info("dask: %d worker thread(s) at %s", threads, client.scheduler.address)
        window = max(4, 3 * threads)
        pending: deque = deque()
        todo = iter(tasks)
        for task in todo:
            pending.append(client.submit(fn, task, key=task_key(task), pure=True))
            if len(pending) >= window:
                break
        while pending:
            future = pending.popleft()
            result = future.result()
            future.release()
            task = next(todo, None)
            if task is not None:
                pending.append(client.submit(fn, task, key=task_key(task), pure=True))
            yield result
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def check_executor(executor: str, scheduler: str | None) -> None:
    """Fail early (before any work) on an unknown executor or a missing dask."""
    if executor not in EXECUTORS:
        raise naming(HepfmError, f"{{executor}} must be one of {', '.join(EXECUTORS)}, got "
                     f"'{executor}'", "executor")
    if scheduler and executor != "dask":
        raise naming(HepfmError, "{scheduler} needs {executor='dask'}", "scheduler", "executor")
    if executor == "dask":
        try:
            import distributed  # noqa: F401
        except ImportError:
            raise _no_dask() from None


def results(fn: Callable[[Any], Any], tasks: Sequence[Any], workers: int = 1,
            executor: str = "local", scheduler: str | None = None) -> Iterator[Any]:
    """`fn` over `tasks` in order on the named executor (``local`` or ``dask``)."""
    check_executor(executor, scheduler)
    if executor == "dask":
        return dask_results(fn, tasks, workers, scheduler)
    return local_results(fn, tasks, workers)
