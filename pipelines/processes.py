"""Processes beside the run's own, for work that is the same piece after piece.

The local engine's customer batches (:mod:`pipelines.staged`) and the night's large CSV
files (:func:`pipelines.catalog.write_atomic`) are independent pieces of CPU-bound pandas
work, which one Python process does a piece at a time; a pool does them side by side, one
process per core. Results do not depend on how many processes there are.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sized
from concurrent.futures import Executor, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from typing import Any, TypeVar

from pipelines.memory import give_back

T = TypeVar("T")
X = TypeVar("X")

# what a pool process imports once, before it is forked (the rest on first use)
_PRELOAD = ["pipelines.batch_read", "models.night_facts"]
TRAINING = ("models.train_stage",)  # what training's batch processes import as well
# the pools open now, innermost last: later pieces of the same run join the open one
_open: list[tuple[Executor, int]] = []  # and its processes


def cores() -> int:
    """The cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def batch_processes(batches: int, asked: int | None = None) -> int:
    """How many processes map ``batches`` batches: ``asked``, else one per core."""
    return max(1, min(batches, asked or cores()))


@contextmanager
def batch_pool(processes: int) -> Iterator[Executor | None]:
    """A pool of ``processes`` (None for one: this process does the work), shut down
    after, its queued pieces dropped when the run fails."""
    if processes <= 1:
        yield None
        return
    pool = ProcessPoolExecutor(processes, mp_context=_context())
    _open.append((pool, processes))
    try:
        yield pool
    finally:
        _open.remove((pool, processes))
        pool.shutdown(wait=True, cancel_futures=True)


@contextmanager
def joined_pool(processes: int) -> Iterator[Executor | None]:
    """The run's open pool if there is one (its processes are already started and hold
    their imports: a second pool would add as many processes again), else a pool of
    ``processes`` of its own. The caller waits for, or cancels, what it submitted."""
    if _open and processes > 1:
        yield _open[-1][0]
        return
    with batch_pool(processes) as pool:
        yield pool


def open_map() -> Callable[[Callable[[X], T], Iterable[X]], Iterable[T]]:
    """``map`` in the run's open pool (:func:`ordered_map`) if one is open, else ``map``."""
    return ordered_map(*_open[-1]) if _open else map


def ordered_map(
    pool: Executor, processes: int, least_each: int = 2
) -> Callable[[Callable[[X], T], Iterable[X]], Iterator[T]]:
    """``map`` in ``pool`` (of ``processes``): results in the items' order, at most
    ``processes`` items handed over beyond the one waited for (each is pickled: the rest
    stay unread). Stopping early, or a failure, cancels what has not started and waits
    for what has.

    Fewer than ``least_each`` items per process (items of known length) are mapped here:
    each pool process pays its first item's imports and caches once, about an item's
    time, which only several items each pay back.
    """

    def mapped(fn: Callable[[X], T], items: Iterable[X]) -> Iterator[T]:
        if isinstance(items, Sized) and len(items) < least_each * processes:
            yield from map(fn, items)
            return
        futures: deque[Future[T]] = deque()
        try:
            for item in items:
                futures.append(submit(pool, fn, item))
                if len(futures) > processes:
                    yield futures.popleft().result()
            while futures:
                yield futures.popleft().result()
        except BaseException:
            stop(list(futures))
            raise

    return mapped


def _context() -> mp.context.BaseContext:
    # forked from a clean server process, not from this one (whose threads, Prefect's
    # among them, a fork would copy mid-flight); spawn where there is no forkserver
    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    context = mp.get_context("forkserver")
    context.set_forkserver_preload(_PRELOAD)  # no effect once it runs (start_forkserver)
    return context


def start_forkserver(extra: tuple[str, ...] = ()) -> None:
    """Start the server batch processes are forked from now, with ``extra`` modules to
    import besides the usual: it imports them in its own process (seconds) while this
    one imports the flows and waits for Prefect, rather than when the first batch waits.
    """
    if "forkserver" in mp.get_all_start_methods():
        from multiprocessing import forkserver

        mp.get_context("forkserver").set_forkserver_preload([*_PRELOAD, *extra])
        forkserver.ensure_running()


def submit(pool: Executor, fn: Callable[..., T], /, *args: Any) -> Future[T]:
    """``fn(*args)`` in ``pool``; what it freed is given back after it, since a pool
    process does piece after piece and each piece's peak would stack on the last's."""
    return pool.submit(_given_back, fn, *args)


def stop(futures: list[Future]) -> None:
    """After a failure: cancel what has not started and wait for what has, so that no
    process still writes into a folder the caller is about to remove."""
    for future in futures:
        future.cancel()
    wait(futures)


def _given_back(fn: Callable[..., T], *args: Any) -> T:
    try:
        return fn(*args)
    finally:
        give_back()
