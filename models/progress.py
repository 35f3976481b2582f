"""Progress of long stages, as log lines: counts, elapsed time and an estimate of the rest.

A ``churn train`` on a large business spends minutes building each cutoff's features and
explaining customers chunk by chunk. :func:`track` wraps such a loop and logs to the
``churn.progress`` logger at most every ``every_s`` seconds, then one summary line. Plain
lines, no carriage returns: a terminal shows them as they come (the CLI routes this
logger to stderr), and CI logs and Prefect's run log keep only what was said. The
summary line carries ``final=True`` in its record, so a quiet console can keep only it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

LOGGER = logging.getLogger("churn.progress")

T = TypeVar("T")


def _seconds(value: float) -> str:
    return f"{value:.0f} s" if value < 120 else f"{value / 60:.1f} min"


def track(
    items: Iterable[T],
    label: str,
    total: int | None = None,
    unit: str = "",
    every_s: float = 5.0,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[T]:
    """Yield ``items``, logging ``label: 3/6 cutoffs, 40 s so far, ~40 s left`` as they go.

    Args:
        items: the loop's items.
        label: what is being done ("training features").
        total: how many items there are (``len(items)`` when it has one).
        unit: the items' name in the lines ("cutoffs").
        every_s: the least time between two progress lines.
        clock: seconds, monotonic (a parameter so tests need not sleep).
    """
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    started = last = clock()
    done = 0
    for item in items:
        yield item
        done += 1
        now = clock()
        if now - last >= every_s and (total is None or done < total):
            last = now
            LOGGER.info(progress_line(label, done, total, unit, now - started))
    word = f" {unit}" if unit else ""
    LOGGER.info(
        f"{label}: {done}{word} done in {_seconds(clock() - started)}", extra={"final": True}
    )


def progress_line(label: str, done: int, total: int | None, unit: str, elapsed: float) -> str:
    """One progress line: counts, time so far and, with a total, the time left."""
    word = f" {unit}" if unit else ""
    if total is None:
        return f"{label}: {done}{word}, {_seconds(elapsed)} so far"
    left = elapsed / done * (total - done) if done else float("nan")
    return (
        f"{label}: {done}/{total}{word} ({done / total:.0%}), {_seconds(elapsed)} so far, "
        f"~{_seconds(left)} left"
    )
