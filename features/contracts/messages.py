"""The contract's error and its messages: file, column, how many values, the first rows.

Every message names the source, then the column, the count of bad values and the first
few offending rows (1-based data rows, as the file gives them) with their values.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

# How many offending rows an error message lists; the rest are only counted.
_MAX_ROWS_SHOWN = 5
_MAX_VALUE_CHARS = 40


@dataclass(frozen=True)
class Finding:
    """A bad-values message in parts, so that findings of several partitions of one
    table can be told as the whole table tells them (``features.contracts.partitions``).

    Attributes:
        column: the column at fault.
        count: how many values are bad.
        problem: what is wrong with them ("non-numeric", "missing or unparseable", ...).
        rows: the first offending rows as numbered in the message.
        shown: how each of those rows' values is shown ("value 'x'", "missing").
        hint: what the message adds after the rows, if anything.
        hint_args: the counts and example the hint is built from, where it has them.
    """

    column: str
    count: int
    problem: str
    rows: tuple[int, ...]
    shown: tuple[str, ...]
    hint: str | None = None
    hint_args: tuple[int | str, ...] = ()


@dataclass(frozen=True)
class ZoneCounts:
    """One time column's values with and without a UTC offset, and the first rows of each."""

    with_offset: int
    without_offset: int
    first_with: tuple[tuple[int, str], ...]  # (row as numbered, value shown)
    first_without: tuple[tuple[int, str], ...]


@dataclass
class RowNumbering:
    """How messages number a frame's rows: ``rows[i]`` is position ``i``'s 0-based row in
    the source (a part of a larger file); the time zone counts of each column are kept."""

    rows: np.ndarray
    zones: dict[str, ZoneCounts] = field(default_factory=dict)


_NUMBERING: ContextVar[RowNumbering | None] = ContextVar("row_numbering", default=None)


@contextmanager
def numbered_rows(numbering: RowNumbering) -> Iterator[RowNumbering]:
    """Messages raised inside name rows by ``numbering.rows`` instead of their position.

    For validating one part of a file (a Dask partition): the message then carries the
    rows as the source numbers them, and the zone counts of every time column checked.
    """
    token = _NUMBERING.set(numbering)
    try:
        yield numbering
    finally:
        _NUMBERING.reset(token)


def _numbered(positions: np.ndarray) -> list[int]:
    """1-based row numbers of 0-based positions (in the source, when numbered)."""
    numbering = _NUMBERING.get()
    if numbering is None:
        return [int(position) + 1 for position in positions]
    return [int(numbering.rows[position]) + 1 for position in positions]


class InputError(ValueError):
    """A problem with an input table that the person supplying the data must fix.

    Attributes:
        source: File name or table label the data came from.
        message: What is wrong, without the source prefix.
        column: The column at fault, if the problem concerns one column.
        rows: 1-based data-row numbers (row 1 is the first data row) named in the
            message; at most the first few offending rows, the message gives the count.
    """

    def __init__(
        self,
        source: str,
        message: str,
        column: str | None = None,
        rows: list[int] | None = None,
        finding: Finding | None = None,
    ) -> None:
        self.source = source
        self.message = message
        self.column = column
        self.rows = list(rows) if rows is not None else []
        self.finding = finding  # the message in parts, for bad-values messages
        super().__init__(f"{source}: {message}")

    def __reduce__(self) -> tuple[type[InputError], tuple[object, ...]]:
        # Default exception pickling replays only str(self); keep the fields intact
        # when the error crosses a process boundary (Prefect workers, joblib, Dask).
        return (type(self), (self.source, self.message, self.column, self.rows, self.finding))


def _is_missing_scalar(value: object) -> bool:
    """True for None/NaN/NaT/NA and blank strings: what the contract counts as missing."""
    if isinstance(value, str):
        return value.strip() == ""
    return bool(pd.api.types.is_scalar(value) and pd.isna(value))


def _canonical_names(columns: pd.Index, source: str) -> list[str]:
    names = [str(column).strip().lower() for column in columns]
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InputError(
                source,
                f"column '{name}' appears more than once (names are matched ignoring "
                "case and surrounding spaces)",
                column=name,
            )
        seen.add(name)
    return names


def _raise_if_bad(
    values: pd.Series,
    column: str,
    source: str,
    nullable: bool,
    missing: np.ndarray,
    invalid: np.ndarray | None = None,
    problem: str = "invalid",
    hint: str | None = None,
) -> None:
    """Raise one error covering invalid values and, unless nullable, missing ones.

    Both kinds go into one message so the person fixing the file sees every bad
    row at once rather than one kind per attempt.
    """
    invalid = np.zeros(len(values), dtype=bool) if invalid is None else invalid
    counted_missing = np.zeros(len(values), dtype=bool) if nullable else missing
    bad = invalid | counted_missing
    if not bad.any():
        return
    has_invalid, has_missing = bool(invalid.any()), bool(counted_missing.any())
    if not has_invalid:
        raise _bad_values_error(source, column, values, bad, "missing")
    label = f"missing or {problem}" if has_missing else problem
    raise _bad_values_error(source, column, values, bad, label, hint=hint)


def _raise_if_mixed_time_zones(
    with_offset: np.ndarray,
    without_offset: np.ndarray,
    values: pd.Series,
    column: str,
    source: str,
) -> None:
    n_with, n_without = int(with_offset.sum()), int(without_offset.sum())
    numbering = _NUMBERING.get()
    if numbering is not None:
        # a part of a file: the whole file may mix zones where no part does
        numbering.zones[column] = ZoneCounts(
            n_with,
            n_without,
            _first_shown(with_offset, values),
            _first_shown(without_offset, values),
        )
    if n_with == 0 or n_without == 0:
        return
    culprits = with_offset if n_with <= n_without else without_offset
    shown = _first_shown(culprits, values)
    raise mixed_zones_error(source, column, n_with, n_without, shown)


def _first_shown(mask: np.ndarray, values: pd.Series) -> tuple[tuple[int, str], ...]:
    positions = np.flatnonzero(mask)[:_MAX_ROWS_SHOWN]
    rows = _numbered(positions)
    return tuple((row, _show(values.iloc[p])) for row, p in zip(rows, positions, strict=True))


def mixed_zones_error(
    source: str, column: str, n_with: int, n_without: int, shown: tuple[tuple[int, str], ...]
) -> InputError:
    """The mixed time zones error: both counts, then the first rows of the smaller group.

    Args:
        shown: the first rows of the group with an offset when it is the smaller one
            (or as large), else of the group without, each with its value as shown.
    """
    # Point at the smaller group: those are most likely the odd ones out.
    kind = "with an offset" if n_with <= n_without else "without an offset"
    rows = [row for row, _ in shown]
    listed = ", ".join(f"{row} ({text})" for row, text in shown)
    first = "first rows" if len(rows) > 1 else "row"
    with_noun = "value" if n_with == 1 else "values"
    return InputError(
        source,
        f"column '{column}' has mixed time zones ({n_with} {with_noun} with a UTC offset, "
        f"{n_without} without), so their times cannot be compared; {first} {kind} {listed}",
        column=column,
        rows=rows,
    )


def _check_unique_ids(ids: pd.Series, original: pd.Series, source: str) -> None:
    repeated = ids.duplicated(keep=False)
    if not repeated.any():
        return
    # ids keeps the input positions as its index (duplicates dropped, not reset).
    positions = ids.index[repeated.to_numpy()]
    mask = np.zeros(len(original), dtype=bool)
    mask[positions] = True
    n_ids = int(ids[repeated].nunique())
    raise _bad_values_error(
        source, "customer_id", original, mask, "repeated", repeated_ids_hint(n_ids), (n_ids,)
    )


def repeated_ids_hint(n_ids: int) -> str:
    """The hint of the repeated customer ids message."""
    return (
        f"{n_ids} customer {'id appears' if n_ids == 1 else 'ids appear'} on more than "
        "one differing row; keep one row per customer"
    )


def _show(value: object) -> str:
    if not isinstance(value, str) and _is_missing_scalar(value):
        return "missing"
    text = repr(value) if isinstance(value, str) else str(value)
    if len(text) > _MAX_VALUE_CHARS:
        text = text[: _MAX_VALUE_CHARS - 3] + "..."
    return f"value {text}"


def _bad_values_error(
    source: str,
    column: str,
    values: pd.Series,
    bad: np.ndarray,
    problem: str,
    hint: str | None = None,
    hint_args: tuple[int | str, ...] = (),
) -> InputError:
    """Build the error naming the column, how many values are bad, and the first rows."""
    positions = np.flatnonzero(bad)
    first = positions[:_MAX_ROWS_SHOWN]
    shown = tuple(_show(values.iloc[position]) for position in first)
    finding = Finding(
        column, len(positions), problem, tuple(_numbered(first)), shown, hint, hint_args
    )
    return bad_values_error(source, finding)


def bad_values_error(source: str, finding: Finding) -> InputError:
    """The bad-values error told by ``finding``: column, count, problem, first rows, hint."""
    count = finding.count
    listed = ", ".join(
        f"{row} ({text})" for row, text in zip(finding.rows, finding.shown, strict=True)
    )
    noun = "value" if count == 1 else "values"
    first = "row" if count == 1 else "first rows"
    message = f"column '{finding.column}' has {count} {finding.problem} {noun}, {first} {listed}"
    if finding.hint:
        message += f"; {finding.hint}"
    return InputError(
        source, message, column=finding.column, rows=list(finding.rows), finding=finding
    )
