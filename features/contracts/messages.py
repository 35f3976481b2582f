"""The contract's error and its messages: file, column, how many values, the first rows.

Every message names the source, then the column, the count of bad values and the first
few offending rows (1-based data rows, as the file gives them) with their values.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# How many offending rows an error message lists; the rest are only counted.
_MAX_ROWS_SHOWN = 5
_MAX_VALUE_CHARS = 40


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
    ) -> None:
        self.source = source
        self.message = message
        self.column = column
        self.rows = list(rows) if rows is not None else []
        super().__init__(f"{source}: {message}")

    def __reduce__(self) -> tuple[type[InputError], tuple[object, ...]]:
        # Default exception pickling replays only str(self); keep the fields intact
        # when the error crosses a process boundary (Prefect workers, joblib).
        return (type(self), (self.source, self.message, self.column, self.rows))


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
    if n_with == 0 or n_without == 0:
        return
    # Point at the smaller group: those are most likely the odd ones out.
    if n_with <= n_without:
        culprits, kind = with_offset, "with an offset"
    else:
        culprits, kind = without_offset, "without an offset"
    positions = np.flatnonzero(culprits)[:_MAX_ROWS_SHOWN]
    rows = [int(position) + 1 for position in positions]
    listed = ", ".join(f"{row} ({_show(values.iloc[row - 1])})" for row in rows)
    first = "first rows" if len(rows) > 1 else "row"
    with_noun = "value" if n_with == 1 else "values"
    raise InputError(
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
    n_ids = ids[repeated].nunique()
    raise _bad_values_error(
        source,
        "customer_id",
        original,
        mask,
        "repeated",
        hint=(
            f"{n_ids} customer {'id appears' if n_ids == 1 else 'ids appear'} on more than "
            "one differing row; keep one row per customer"
        ),
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
) -> InputError:
    """Build the error naming the column, how many values are bad, and the first rows."""
    positions = np.flatnonzero(bad)
    count = len(positions)
    shown = positions[:_MAX_ROWS_SHOWN]
    rows = [int(position) + 1 for position in shown]
    listed = ", ".join(f"{row} ({_show(values.iloc[row - 1])})" for row in rows)
    noun = "value" if count == 1 else "values"
    first = "row" if count == 1 else "first rows"
    message = f"column '{column}' has {count} {problem} {noun}, {first} {listed}"
    if hint:
        message += f"; {hint}"
    return InputError(source, message, column=column, rows=rows)
