import logging

from models.progress import progress_line, track


class Ticks:
    """A clock that moves 4 s each time it is read."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 4.0
        return self.now


class Kept(logging.Handler):
    """The records sent to the logger itself (the CLI stops them propagating to root)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_progress_lines_come_at_most_every_few_seconds_then_one_summary():
    logger, kept = logging.getLogger("churn.progress"), Kept()
    logger.addHandler(kept)
    level = logger.level
    logger.setLevel(logging.INFO)  # setLevel, not .level: it clears the enabled-for cache
    try:
        items = list(track(range(6), "training features", unit="cutoffs", clock=Ticks()))
    finally:
        logger.removeHandler(kept)
        logger.setLevel(level)
    assert items == list(range(6))
    lines = [r.getMessage() for r in kept.records]
    # the clock reads 4, 8, 12, ...: a line each time 5 s have passed since the last
    assert lines == [
        "training features: 2/6 cutoffs (33%), 8 s so far, ~16 s left",
        "training features: 4/6 cutoffs (67%), 16 s so far, ~8 s left",
        "training features: 6 cutoffs done in 28 s",
    ]
    assert [getattr(r, "final", False) for r in kept.records] == [False, False, True]


def test_without_a_total_the_line_says_what_is_known():
    assert progress_line("reading", 3, None, "pages", 150.0) == "reading: 3 pages, 2.5 min so far"
