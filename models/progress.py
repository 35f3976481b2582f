"""Progress of long stages, as log lines: counts, elapsed time and an estimate of the rest.

A ``churn train`` on a large business spends minutes building each cutoff's features,
boosting trees and explaining customers chunk by chunk. :func:`track` wraps such a loop
(:class:`Progress` is the same for code that is called back, such as XGBoost's rounds)
and logs to the ``churn.progress`` logger at most every ``every_s`` seconds, then one
summary line. Plain lines, no carriage returns: a terminal shows them as they come (the
CLI routes this logger to stderr), and CI logs and Prefect's run log keep only what was
said. The summary line carries ``final=True`` in its record, so a quiet console can keep
only it.
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


class Progress:
    """One stage's progress, told as it goes: :meth:`advance` per item, :meth:`finish` once.

    Args:
        label: what is being done ("training features").
        total: how many items there will be, if known.
        unit: the items' name in the lines ("cutoffs").
        every_s: the least time between two progress lines.
        clock: seconds, monotonic (a parameter so tests need not sleep).
    """

    def __init__(
        self,
        label: str,
        total: int | None = None,
        unit: str = "",
        every_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label, self.total, self.unit = label, total, unit
        self.every_s, self.clock = every_s, clock
        self.started = self.last = clock()
        self.done = 0

    def advance(self) -> None:
        """One more item done; a line if ``every_s`` has passed since the last one."""
        self.done += 1
        now = self.clock()
        if now - self.last >= self.every_s and (self.total is None or self.done < self.total):
            self.last = now
            elapsed = now - self.started
            LOGGER.info(progress_line(self.label, self.done, self.total, self.unit, elapsed))

    def finish(self, note: str = "") -> None:
        """The summary line (``final=True``): how many, in how long, and ``note``."""
        word = f" {self.unit}" if self.unit else ""
        took = _seconds(self.clock() - self.started)
        LOGGER.info(f"{self.label}: {self.done}{word} done in {took}{note}", extra={"final": True})


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
    progress = Progress(label, total, unit, every_s, clock)
    for item in items:
        yield item
        progress.advance()
    progress.finish()


def announce(line: str) -> None:
    """A stage starting ("candidate 2 of 5: xgboost"): one line, not rate-limited, as
    stages are few and each is long enough to want its name on screen. Marked ``final``
    like a summary, so a run log that keeps only summaries says what they summarise."""
    LOGGER.info(line, extra={"final": True})


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
