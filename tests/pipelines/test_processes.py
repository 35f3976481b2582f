"""The run's batch processes as a ``map``: the items' order, and nothing left running."""

from __future__ import annotations

import os
import time

import pytest

from pipelines.processes import batch_pool, open_map, ordered_map


def _pid_after(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def _fails_on_two(item: int) -> int:
    if item == 2:
        raise ValueError("item 2")
    time.sleep(0.3)
    return item


def _squared(item: int) -> int:
    return item * item


def test_an_ordered_map_gives_the_items_order_from_the_pool_or_from_here():
    with batch_pool(2) as pool:
        assert pool is not None
        spread = ordered_map(pool, 2)
        # the later items finish first: still returned in the items' order
        seconds = [0.6, 0.4, 0.2, 0.0, 0.0]
        pids = list(spread(_pid_after, seconds))
        assert os.getpid() not in pids and len(set(pids)) == 2
        assert list(spread(_squared, iter(range(7)))) == [i * i for i in range(7)]
        # fewer items than least_each per process, of a known length: mapped here
        assert list(spread(_pid_after, [0.0, 0.0, 0.0])) == [os.getpid()] * 3
        assert open_map() is not map  # the run's open pool
    assert open_map() is map


def test_a_failing_item_stops_the_map_and_leaves_no_item_running():
    with batch_pool(2) as pool:
        assert pool is not None
        mapped = ordered_map(pool, 2, least_each=1)(_fails_on_two, range(8))
        assert next(mapped) == 0
        with pytest.raises(ValueError, match="item 2"):
            list(mapped)
        # the pool is idle again: what was handed over has finished or was cancelled
        assert pool.submit(_squared, 3).result(timeout=5) == 9
