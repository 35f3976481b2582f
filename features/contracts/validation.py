"""Validation of one input table against its contract (:func:`validate_table`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.contracts.columnar import _duplicated_rows, _take_rows, _without_unused_categories
from features.contracts.columns import (
    CONTRACT_TABLES,
    DROP_DUPLICATES,
    NULLABLE_REQUIRED,
    OPTIONAL,
    REQUIRED,
)
from features.contracts.converters import _CONVERTERS
from features.contracts.messages import (
    InputError,
    _bad_values_error,
    _canonical_names,
    _check_unique_ids,
)


@dataclass(frozen=True)
class ValidatedTable:
    """A normalised table and what validation noticed on the way.

    Attributes:
        frame: Required columns, then the optional columns present, in the order of
            ``REQUIRED[table] + OPTIONAL[table]``; a fresh RangeIndex.
        warnings: Non-fatal findings, each a sentence prefixed with the source.
        present_optional: Optional columns found in the input, in canonical order.
    """

    frame: pd.DataFrame
    warnings: tuple[str, ...]
    present_optional: tuple[str, ...]


def validate_table(
    frame: pd.DataFrame,
    table: str,
    source: str,
    not_after: pd.Timestamp | None = None,
    drop_duplicates: bool | None = None,
    allow_empty: bool = False,
) -> ValidatedTable:
    """Check one input table against its contract and return it normalised.

    Column names are matched after stripping whitespace and lower-casing. Unknown
    columns are dropped. Values are converted to fixed dtypes: ids and labels to
    strings, times to naive UTC ``datetime64[ns]``, numbers to float64, flags to the
    nullable ``boolean`` dtype. Exact duplicate rows (every column equal) are dropped
    with a warning where ``drop_duplicates`` (default: :data:`DROP_DUPLICATES` of the
    table) says so, and otherwise kept and counted in a warning.

    Args:
        frame: The table as read; never modified.
        table: One of ``CONTRACT_TABLES``.
        source: File name or label used to prefix every message.
        not_after: timestamps later than this are an error (events cannot come from
            the future; usually a clock or unit bug upstream). None skips the check.
        drop_duplicates: drop exact duplicate rows (None: the table's default).
        allow_empty: no rows is no error (a customer batch of a file that has rows).

    Returns:
        The normalised frame with warnings and the optional columns present.

    Raises:
        ValueError: ``table`` is not one of ``CONTRACT_TABLES``.
        InputError: The data breaks the contract (empty table, missing column,
            unparseable or out-of-range values, mixed time zones, conflicting
            customer rows).
    """
    if table not in CONTRACT_TABLES:
        raise ValueError(f"unknown table {table!r}; expected one of {', '.join(CONTRACT_TABLES)}")

    # Positional index from here on, so row numbers refer to the input as given.
    data = frame.reset_index(drop=True)
    # `data` shares the input's columns; without this name each raw column can be freed
    # as soon as it is converted when the caller keeps no reference (read_table).
    del frame
    data.columns = _canonical_names(data.columns, source)

    if len(data) == 0 and not allow_empty:
        raise InputError(source, f"the {table} table is empty (no data rows)")

    required = REQUIRED[table]
    missing = [name for name in required if name not in data.columns]
    if missing:
        found = ", ".join(f"'{name}'" for name in data.columns) or "none"
        plural = "s" if len(missing) > 1 else ""
        raise InputError(
            source,
            f"missing required column{plural} {', '.join(repr(m) for m in missing)}; "
            f"found columns {found}",
            column=missing[0] if len(missing) == 1 else None,
        )

    present_optional = tuple(name for name in OPTIONAL[table] if name in data.columns)
    # raw columns that later messages quote; the others are released once converted
    time_column = "start" if table == "subscriptions" else "timestamp"
    quoted = {time_column} if not_after is not None else set()
    if table == "customers":
        quoted.add("customer_id")
    if table == "subscriptions":
        quoted |= {"start", "end"}
    nullable = set(present_optional) | set(NULLABLE_REQUIRED.get(table, ()))
    normalised = {}
    for name in required + present_optional:
        values = data[name] if name in quoted else data.pop(name)
        convert = _CONVERTERS[name]
        normalised[name] = convert(values, name, source, name in nullable)
        del values
    # copy=False: the converted columns are fresh; consolidating them would copy each.
    result = pd.DataFrame(normalised, index=data.index, copy=False)
    del normalised
    if not_after is not None and time_column in result:
        future = (result[time_column] > not_after).to_numpy()
        if future.any():
            raise _bad_values_error(
                source,
                time_column,
                data[time_column],
                future,
                f"future (after {not_after})",
                hint="check the export's clock and time zone",
            )

    warnings: list[str] = []
    duplicated = _duplicated_rows(result)
    n_duplicates = int(duplicated.sum())
    drop = DROP_DUPLICATES[table] if drop_duplicates is None else drop_duplicates
    plural = "s" if n_duplicates > 1 else ""
    if n_duplicates and drop:
        result = _without_unused_categories(_take_rows(result, np.flatnonzero(~duplicated)))
        warnings.append(f"{source}: dropped {n_duplicates} exact duplicate row{plural}")
    elif n_duplicates:
        warnings.append(
            f"{source}: kept {n_duplicates} row{plural} equal to another in every column "
            "(events can repeat, e.g. two likes in one second); set "
            "`drop_duplicate_interactions: true` to drop exact duplicates"
        )

    if table == "customers":
        # A customer table is a dimension: two differing rows for one id would fan
        # out every later merge and silently double that customer's history.
        _check_unique_ids(result["customer_id"], data["customer_id"], source)
    if table == "subscriptions":
        from features.subscription_checks import check_periods

        check_periods(result, data["start"], data["end"], source)

    return ValidatedTable(
        frame=result.reset_index(drop=True),
        warnings=tuple(warnings),
        present_optional=present_optional,
    )
