"""Input contracts: validate and normalise the three raw tables.

Every table the pipeline reads passes through :func:`validate_table` first, so that
feature code can rely on fixed column names, dtypes and value sets, and so that a bad
file fails early with a message a person can act on (file, column, row numbers, values).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

TABLES = ("transactions", "interactions", "customers")

REQUIRED: dict[str, tuple[str, ...]] = {
    "transactions": ("customer_id", "timestamp", "amount"),
    "interactions": ("customer_id", "timestamp", "kind"),
    "customers": ("customer_id",),
}

OPTIONAL: dict[str, tuple[str, ...]] = {
    "transactions": (
        "order_id",
        "quantity",
        "category",
        "discount",
        "channel",
        "region",
        "payment_status",
    ),
    "interactions": ("channel", "satisfaction", "resolved", "resolution_hours", "responded"),
    "customers": ("signup_date", "region"),
}

PAYMENT_STATUSES = ("ok", "failed", "late")

# How many offending rows an error message lists; the rest are only counted.
_MAX_ROWS_SHOWN = 5
_MAX_VALUE_CHARS = 40

# A UTC offset or "Z" after a time of day. The time part is required so that the
# "-01" at the end of a plain date such as "1997-01-01" is not read as an offset.
_TZ_SUFFIX = re.compile(
    r"[T\s]\d{2}(?::?\d{2}){0,2}(?:[.,]\d+)?\s*(?:Z|[+-]\d{2}(?::?\d{2})?)$",
    re.IGNORECASE,
)

_BOOL_WORDS = {"true": True, "false": False, "yes": True, "no": False, "1": True, "0": False}

_DATE_HINT = "expected ISO 8601 dates or datetimes such as 2024-01-31 or 2024-01-31T14:05:00"


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
    frame: pd.DataFrame, table: str, source: str, not_after: pd.Timestamp | None = None
) -> ValidatedTable:
    """Check one input table against its contract and return it normalised.

    Column names are matched after stripping whitespace and lower-casing. Unknown
    columns are dropped. Values are converted to fixed dtypes: ids and labels to
    strings, times to naive UTC ``datetime64[ns]``, numbers to float64, flags to the
    nullable ``boolean`` dtype. Exact duplicate rows are dropped with a warning.

    Args:
        frame: The table as read; never modified.
        table: One of ``TABLES``.
        source: File name or label used to prefix every message.
        not_after: timestamps later than this are an error (events cannot come from
            the future; usually a clock or unit bug upstream). None skips the check.

    Returns:
        The normalised frame with warnings and the optional columns present.

    Raises:
        ValueError: ``table`` is not one of ``TABLES``.
        InputError: The data breaks the contract (empty table, missing column,
            unparseable or out-of-range values, mixed time zones, conflicting
            customer rows).
    """
    if table not in TABLES:
        raise ValueError(f"unknown table {table!r}; expected one of {', '.join(TABLES)}")

    # Positional index from here on, so row numbers refer to the input as given.
    data = frame.reset_index(drop=True)
    data.columns = _canonical_names(data.columns, source)

    if len(data) == 0:
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
    normalised = {}
    for name in required + present_optional:
        convert = _CONVERTERS[name]
        normalised[name] = convert(data[name], name, source, name in present_optional)
    result = pd.DataFrame(normalised, index=data.index)
    if not_after is not None:
        future = (result["timestamp"] > not_after).to_numpy()
        if future.any():
            raise _bad_values_error(
                source,
                "timestamp",
                data["timestamp"],
                future,
                f"future (after {not_after})",
                hint="check the export's clock and time zone",
            )

    warnings: list[str] = []
    duplicated = result.duplicated(keep="first").to_numpy()
    n_duplicates = int(duplicated.sum())
    if n_duplicates:
        result = result.loc[~duplicated]
        plural = "s" if n_duplicates > 1 else ""
        warnings.append(f"{source}: dropped {n_duplicates} exact duplicate row{plural}")

    if table == "customers":
        # A customer table is a dimension: two differing rows for one id would fan
        # out every later merge and silently double that customer's history.
        _check_unique_ids(result["customer_id"], data["customer_id"], source)

    return ValidatedTable(
        frame=result.reset_index(drop=True),
        warnings=tuple(warnings),
        present_optional=present_optional,
    )


# --- column converters ------------------------------------------------------------
# Each takes (column as read, canonical name, source, nullable) and returns the
# normalised column with the same index, or raises InputError.


def _to_identifier(values: pd.Series, column: str, source: str, nullable: bool) -> pd.Series:
    text = _to_text(values)
    _raise_if_bad(values, column, source, nullable, missing=text.isna().to_numpy())
    return text


def _to_label(values: pd.Series, column: str, source: str, nullable: bool) -> pd.Series:
    text = _to_text(values)
    _raise_if_bad(values, column, source, nullable, missing=text.isna().to_numpy())
    if column == "kind":
        # Interaction kinds are matched against fixed keys downstream ("complaint", ...).
        text = text.str.lower()
    return text


def _to_payment_status(values: pd.Series, column: str, source: str, nullable: bool) -> pd.Series:
    text = _to_text(values).str.lower()
    _raise_if_bad(
        values,
        column,
        source,
        nullable,
        missing=text.isna().to_numpy(),
        invalid=(text.notna() & ~text.isin(PAYMENT_STATUSES)).to_numpy(),
        problem="unknown",
        hint=f"allowed values are {', '.join(PAYMENT_STATUSES)}",
    )
    return text


def _to_number(values: pd.Series, column: str, source: str, nullable: bool) -> pd.Series:
    missing = _missing_mask(values)
    dtype = values.dtype
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
        numbers = pd.Series(values.to_numpy(dtype="float64", na_value=np.nan), index=values.index)
    else:
        as_objects = values.astype("object").where(~missing, None)
        numbers = pd.to_numeric(as_objects, errors="coerce").astype("float64")
    # inf parses as a number but is never a real amount or score.
    invalid = ~missing & ~np.isfinite(numbers.to_numpy())
    _raise_if_bad(
        values, column, source, nullable, missing=missing, invalid=invalid, problem="non-numeric"
    )

    bounds = _NUMBER_BOUNDS.get(column)
    if bounds is not None:
        low, high, problem, hint = bounds
        out_of_range = ((numbers < low) | (numbers > high)).to_numpy()
        if out_of_range.any():
            raise _bad_values_error(source, column, values, out_of_range, problem, hint=hint)
    return numbers


def _to_flag(values: pd.Series, column: str, source: str, nullable: bool) -> pd.Series:
    if pd.api.types.is_bool_dtype(values.dtype):
        flags = values.astype("boolean")
        invalid = np.zeros(len(values), dtype=bool)
    else:
        parsed = [_scalar_to_flag(value) for value in values.to_numpy(dtype=object)]
        invalid = np.array([value is _INVALID for value in parsed], dtype=bool)
        parsed = [None if value is _INVALID else value for value in parsed]
        flags = pd.Series(pd.array(parsed, dtype="boolean"), index=values.index)
    _raise_if_bad(
        values,
        column,
        source,
        nullable,
        missing=flags.isna().to_numpy() & ~invalid,
        invalid=invalid,
        problem="unrecognised",
        hint="expected true/false, yes/no or 1/0",
    )
    return flags


def _to_timestamp(values: pd.Series, column: str, source: str, nullable: bool) -> pd.Series:
    dtype = values.dtype
    if isinstance(dtype, pd.DatetimeTZDtype):
        parsed = values.dt.tz_convert("UTC").dt.tz_localize(None)
        missing = parsed.isna().to_numpy()
        unparseable = np.zeros(len(values), dtype=bool)
        has_offset = None
    elif pd.api.types.is_datetime64_dtype(dtype):
        parsed = values
        missing = parsed.isna().to_numpy()
        unparseable = np.zeros(len(values), dtype=bool)
        has_offset = None
    else:
        prepared, has_offset = _prepare_time_values(values)
        missing = _missing_mask(values)
        # utc=True makes pandas accept differing offsets; naive strings come out
        # unchanged (read as UTC), which is why offsets are tracked separately.
        parsed_utc = pd.to_datetime(prepared, format="ISO8601", utc=True, errors="coerce")
        parsed = parsed_utc.dt.tz_localize(None)
        unparseable = (~missing & parsed.isna()).to_numpy()

    # datetime64[ns] covers 1677-2262; anything outside is a typo, not a date.
    out_of_range = (
        parsed.notna() & ((parsed < pd.Timestamp.min) | (parsed > pd.Timestamp.max))
    ).to_numpy()
    _raise_if_bad(
        values,
        column,
        source,
        nullable,
        missing=missing,
        invalid=unparseable | out_of_range,
        problem="unparseable",
        hint=_DATE_HINT,
    )
    if has_offset is not None:
        _raise_if_mixed_time_zones(
            has_offset & ~missing, ~has_offset & ~missing, values, column, source
        )
    return parsed.astype("datetime64[ns]")


# column -> (lowest allowed, highest allowed, problem word, hint for the message)
_NUMBER_BOUNDS: dict[str, tuple[float, float, str, str | None]] = {
    "discount": (0.0, math.inf, "negative", None),
    "satisfaction": (1.0, 5.0, "out-of-range", "satisfaction scores run from 1 to 5"),
    "resolution_hours": (0.0, math.inf, "negative", None),
    "quantity": (
        0.0,
        math.inf,
        "negative",
        "record a return as a negative amount with a positive quantity",
    ),
}

_CONVERTERS: dict[str, Callable[[pd.Series, str, str, bool], pd.Series]] = {
    "customer_id": _to_identifier,
    "order_id": _to_identifier,
    "timestamp": _to_timestamp,
    "signup_date": _to_timestamp,
    "amount": _to_number,
    "quantity": _to_number,
    "discount": _to_number,
    "satisfaction": _to_number,
    "resolution_hours": _to_number,
    "kind": _to_label,
    "category": _to_label,
    "channel": _to_label,
    "region": _to_label,
    "payment_status": _to_payment_status,
    "resolved": _to_flag,
    "responded": _to_flag,
}


# --- helpers ---------------------------------------------------------------------

_INVALID = object()


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


def _is_missing_scalar(value: object) -> bool:
    if isinstance(value, str):
        return value.strip() == ""
    return bool(pd.api.types.is_scalar(value) and pd.isna(value))


def _missing_mask(values: pd.Series) -> np.ndarray:
    """True where a value is None/NaN/NaT/NA or a blank string."""
    missing = values.isna().to_numpy()
    if isinstance(values.dtype, pd.StringDtype):
        missing = missing | (values.str.strip() == "").fillna(False).to_numpy(dtype=bool)
    elif values.dtype == object:
        missing = np.array([_is_missing_scalar(v) for v in values.to_numpy()], dtype=bool)
    return missing


def _scalar_to_text(value: object) -> str | None:
    if _is_missing_scalar(value):
        return None
    if isinstance(value, float | np.floating) and float(value).is_integer():
        # CSV readers turn integer ids into floats when a column has gaps: 12345.0.
        return str(int(value))
    return str(value).strip()


def _to_text(values: pd.Series) -> pd.Series:
    """Stripped strings in pandas' default string dtype; blanks become missing."""
    if isinstance(values.dtype, pd.StringDtype):
        text = values.str.strip().astype("str")
    elif pd.api.types.is_integer_dtype(values.dtype):
        text = values.astype("str")
    else:
        converted = [_scalar_to_text(value) for value in values.to_numpy(dtype=object)]
        text = pd.Series(converted, index=values.index, dtype="str")
    return text.mask(text == "")


def _scalar_to_flag(value: object) -> object:
    if _is_missing_scalar(value):
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | float | np.integer | np.floating):
        return bool(value) if value in (0, 1) else _INVALID
    if isinstance(value, str):
        return _BOOL_WORDS.get(value.strip().lower(), _INVALID)
    return _INVALID


def _prepare_time_values(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Make values parseable as ISO 8601 and flag those that carry a UTC offset."""
    if isinstance(values.dtype, pd.StringDtype):
        prepared = values.str.strip()
        has_offset = prepared.str.contains(_TZ_SUFFIX).fillna(False).to_numpy(dtype=bool)
        return prepared, has_offset

    prepared_values: list[object] = []
    offsets: list[bool] = []
    for value in values.to_numpy(dtype=object):
        if isinstance(value, dt.datetime | np.datetime64):
            # Already a time (Excel/parquet objects): keep it, note its zone.
            prepared_values.append(value)
            offsets.append(getattr(value, "tzinfo", None) is not None)
        elif isinstance(value, dt.date):
            prepared_values.append(value.isoformat())
            offsets.append(False)
        else:
            # Integers such as 19970101 are ISO 8601 basic-format dates.
            text = _scalar_to_text(value)
            prepared_values.append(text)
            offsets.append(text is not None and _TZ_SUFFIX.search(text) is not None)
    prepared = pd.Series(prepared_values, index=values.index, dtype=object)
    return prepared, np.array(offsets, dtype=bool)


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


def reconcile(
    transactions: pd.DataFrame,
    interactions: pd.DataFrame | None,
    sources: tuple[str, str],
) -> tuple[pd.DataFrame, pd.DataFrame | None, tuple[str, ...]]:
    """Cross-table repairs, each counted in a warning (never silent).

    * A refund larger than everything the customer had bought up to then is capped at
      that total: a refund cannot return more money than was paid.
    * Interactions of customers with no transactions are dropped: there is no purchase
      history to score them on.

    Args:
        transactions: validated transactions.
        interactions: validated interactions, or None.
        sources: the two tables' file names, for the messages.

    Returns:
        The repaired tables and the warnings.
    """
    warnings: list[str] = []
    ordered = transactions.sort_values(["customer_id", "timestamp"], kind="stable")
    paid_so_far = ordered["amount"].clip(lower=0).groupby(ordered["customer_id"]).cumsum()
    refund = ordered["amount"] < 0
    too_large = refund & (-ordered["amount"] > paid_so_far)
    if too_large.any():
        capped = ordered["amount"].where(~too_large, -paid_so_far)
        transactions = transactions.assign(amount=capped.reindex(transactions.index))
        warnings.append(
            f"{sources[0]}: capped {int(too_large.sum())} refunds larger than the customer's "
            "purchases up to then at those purchases"
        )
    if interactions is not None:
        known = interactions["customer_id"].isin(transactions["customer_id"].unique())
        if not known.all():
            orphans = interactions.loc[~known, "customer_id"]
            warnings.append(
                f"{sources[1]}: dropped {int((~known).sum())} rows of {orphans.nunique()} "
                "customers who have no transactions"
            )
            interactions = interactions.loc[known].reset_index(drop=True)
    return transactions, interactions, tuple(warnings)
