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
import pyarrow as pa
import pyarrow.compute as pc

TABLES = ("transactions", "interactions", "customers")
# every table the contract knows; subscriptions are optional (see features.subscriptions)
INPUT_TABLES = (*TABLES, "subscriptions")

REQUIRED: dict[str, tuple[str, ...]] = {
    "transactions": ("customer_id", "timestamp", "amount"),
    "interactions": ("customer_id", "timestamp", "kind"),
    "customers": ("customer_id",),
    "subscriptions": ("customer_id", "start", "end"),
}
# required columns whose values may be missing: a missing end is a running subscription
NULLABLE_REQUIRED: dict[str, tuple[str, ...]] = {"subscriptions": ("end",)}

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
    "subscriptions": ("plan", "amount", "billing_period", "cancel_reason", "status"),
}

# Exact duplicate rows are dropped by default where a row is an entity or carries an id
# (an order, a customer, a subscription period); interactions are events, and two likes
# in the same second are two likes, so theirs are kept unless the user asks otherwise.
DROP_DUPLICATES: dict[str, bool] = {
    "transactions": True,
    "interactions": False,
    "customers": True,
    "subscriptions": True,
}

PAYMENT_STATUSES = ("ok", "failed", "late")

# Low-cardinality text columns: validated frames hold them as pandas ``category``
# (categories: the distinct cleaned strings, sorted), one small code per row.
LABEL_COLUMNS: dict[str, tuple[str, ...]] = {
    "transactions": ("category", "channel", "region", "payment_status"),
    "interactions": ("kind", "channel"),
    "customers": ("region",),
    "subscriptions": ("plan", "billing_period", "cancel_reason", "status"),
}

# How many offending rows an error message lists; the rest are only counted.
_MAX_ROWS_SHOWN = 5
_MAX_VALUE_CHARS = 40

# A UTC offset or "Z" after a time of day. The time part is required so that the
# "-01" at the end of a plain date such as "1997-01-01" is not read as an offset.
# ASCII classes only ([0-9], [ \t] rather than \d, \s): pandas can then run the match in
# Arrow's RE2 engine for Arrow-backed text instead of calling Python once per row
_TZ_SUFFIX = re.compile(
    r"[T \t][0-9]{2}(?::?[0-9]{2}){0,2}(?:[.,][0-9]+)?[ \t]*(?:Z|[+-][0-9]{2}(?::?[0-9]{2})?)$",
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
    frame: pd.DataFrame,
    table: str,
    source: str,
    not_after: pd.Timestamp | None = None,
    drop_duplicates: bool | None = None,
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
        table: One of ``INPUT_TABLES``.
        source: File name or label used to prefix every message.
        not_after: timestamps later than this are an error (events cannot come from
            the future; usually a clock or unit bug upstream). None skips the check.
        drop_duplicates: drop exact duplicate rows (None: the table's default).

    Returns:
        The normalised frame with warnings and the optional columns present.

    Raises:
        ValueError: ``table`` is not one of ``INPUT_TABLES``.
        InputError: The data breaks the contract (empty table, missing column,
            unparseable or out-of-range values, mixed time zones, conflicting
            customer rows).
    """
    if table not in INPUT_TABLES:
        raise ValueError(f"unknown table {table!r}; expected one of {', '.join(INPUT_TABLES)}")

    # Positional index from here on, so row numbers refer to the input as given.
    data = frame.reset_index(drop=True)
    # `data` shares the input's columns; without this name each raw column can be freed
    # as soon as it is converted when the caller keeps no reference (read_table).
    del frame
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


# --- column converters ------------------------------------------------------------
# Each takes (column as read, canonical name, source, nullable) and returns the
# normalised column with the same index, or raises InputError.


def _to_identifier(values: pd.Series, column: str, source: str, nullable: bool) -> pd.Series:
    if _is_clean_text(values):
        # Nothing to strip, nothing blank or missing: the column as read is the result.
        return values
    factorized = _factorize(values)
    if factorized is None:
        text = _to_text(values)
        _raise_if_bad(values, column, source, nullable, missing=text.isna().to_numpy())
        return text
    # Clean each distinct id once rather than each row.
    codes, uniques = factorized
    text_u = _to_text(uniques)
    missing = _expand(text_u.isna().to_numpy(), codes, True)
    _raise_if_bad(values, column, source, nullable, missing=missing)
    return pd.Series(text_u.array.take(codes, allow_fill=True), index=values.index)


def _is_clean_text(values: pd.Series) -> bool:
    """True for an Arrow-backed ``str`` column with no missing, blank or unstripped value.

    Checked with vectorised Arrow kernels: cheaper than hashing millions of
    near-unique ids (order ids) to clean them one distinct value at a time.
    """
    if values.dtype != "str" or values.dtype.storage != "pyarrow" or values.hasnans:
        return False
    array = pa.array(values)
    stripped = pc.utf8_trim_whitespace(array)
    return bool(
        pc.all(pc.equal(stripped, array)).as_py() is not False
        and not pc.any(pc.equal(array, "")).as_py()
    )


def _to_label(values: pd.Series, column: str, source: str, nullable: bool) -> pd.Series:
    def clean(text: pd.Series) -> pd.Series:
        # Interaction kinds are matched against fixed keys downstream ("complaint", ...).
        return text.str.lower() if column == "kind" else text

    factorized = _factorize(values)
    if factorized is None:
        text = _to_text(values)
        _raise_if_bad(values, column, source, nullable, missing=text.isna().to_numpy())
        return _as_category(clean(text))
    codes, uniques = factorized
    text_u = _to_text(uniques)
    _raise_if_bad(
        values, column, source, nullable, missing=_expand(text_u.isna().to_numpy(), codes, True)
    )
    return _category_from_codes(codes, clean(text_u), values.index)


def _to_payment_status(values: pd.Series, column: str, source: str, nullable: bool) -> pd.Series:
    factorized = _factorize(values)
    codes, uniques = factorized if factorized is not None else (None, values)
    text = _to_text(uniques).str.lower()
    missing = text.isna().to_numpy()
    invalid = (text.notna() & ~text.isin(PAYMENT_STATUSES)).to_numpy()
    if codes is not None:
        missing, invalid = _expand(missing, codes, True), _expand(invalid, codes, False)
    _raise_if_bad(
        values,
        column,
        source,
        nullable,
        missing=missing,
        invalid=invalid,
        problem="unknown",
        hint=f"allowed values are {', '.join(PAYMENT_STATUSES)}",
    )
    return _as_category(text) if codes is None else _category_from_codes(codes, text, values.index)


def _to_billing_period(values: pd.Series, column: str, source: str, nullable: bool) -> pd.Series:
    from features.subscriptions import PERIOD_MONTHS

    text = _to_text(values.astype(object)).str.lower()
    invalid = (text.notna() & ~text.isin(list(PERIOD_MONTHS))).to_numpy()
    _raise_if_bad(
        values,
        column,
        source,
        nullable,
        missing=text.isna().to_numpy(),
        invalid=invalid,
        problem="unknown",
        hint=f"allowed values are {', '.join(PERIOD_MONTHS)}",
    )
    return _as_category(text)


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
        # Parse each distinct value once (text flags repeat "true"/"false" per row).
        factorized = _factorize(values)
        codes, uniques = factorized if factorized is not None else (None, values)
        parsed = [_scalar_to_flag(value) for value in uniques.to_numpy(dtype=object)]
        invalid = np.array([value is _INVALID for value in parsed], dtype=bool)
        parsed = [None if value is _INVALID else value for value in parsed]
        flag_array = pd.array(parsed, dtype="boolean")
        if codes is not None:
            invalid = _expand(invalid, codes, False)
            flag_array = flag_array.take(codes, allow_fill=True)
        flags = pd.Series(flag_array, index=values.index)
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
    "start": _to_timestamp,
    "end": _to_timestamp,
    "plan": _to_label,
    "billing_period": _to_billing_period,
    "cancel_reason": _to_label,
    "status": _to_label,
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


def _factorize(values: pd.Series) -> tuple[np.ndarray, pd.Series] | None:
    """Codes (-1 for missing) and distinct values of a string or categorical column.

    None for other dtypes: an object column may hold 1, 1.0 and True, which hash as
    one value but convert differently, so those keep the value-by-value path.
    """
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values.cat.codes.to_numpy(), pd.Series(values.cat.categories)
    if isinstance(values.dtype, pd.StringDtype):
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
        return codes, pd.Series(uniques)
    return None


def _expand(per_unique: np.ndarray, codes: np.ndarray, fill: object) -> np.ndarray:
    """Per-row values from per-distinct-value ones; code -1 (missing) gets ``fill``."""
    # Index -1 picks the appended fill value.
    return np.append(per_unique, np.array([fill], dtype=per_unique.dtype))[codes]


def _category_from_codes(codes: np.ndarray, text_u: pd.Series, index: pd.Index) -> pd.Series:
    """A categorical column from row codes into cleaned distinct strings (NaN: missing).

    Categories are the distinct cleaned strings in sorted order, so grouping and
    sorting by the column order rows as the plain strings would.
    """
    valid = text_u.notna().to_numpy()
    categories = pd.Index(text_u[valid].unique(), dtype="str").sort_values()
    positions = np.full(len(text_u), -1, dtype=np.intp)
    positions[valid] = categories.get_indexer(text_u[valid])
    n = len(categories)
    small = np.int8 if n < 2**7 else np.int16 if n < 2**15 else np.int32
    row_codes = _expand(positions.astype(small), codes, -1)
    categorical = pd.Categorical.from_codes(row_codes, dtype=pd.CategoricalDtype(categories))
    return pd.Series(categorical, index=index)


def _as_category(text: pd.Series) -> pd.Series:
    codes, uniques = pd.factorize(text, use_na_sentinel=True)
    return _category_from_codes(codes, pd.Series(uniques, dtype="str"), text.index)


def _take_rows(frame: pd.DataFrame, positions: np.ndarray) -> pd.DataFrame:
    """``frame.take(positions)``, emptying ``frame`` column by column as it goes.

    Only for frames nothing else holds: each column's old copy is released before the
    next one is copied, so the peak is one column more than the result, not two frames.
    """
    # One index for all columns (Series.take would build one per column); validated
    # frames have a RangeIndex, so the taken labels are the positions themselves.
    if isinstance(frame.index, pd.RangeIndex) and frame.index.start == 0 and frame.index.step == 1:
        index = pd.Index(positions, copy=False)
    else:
        index = frame.index.take(positions)
    taken = {}
    for name in list(frame.columns):
        column = frame.pop(name)
        if isinstance(column.dtype, np.dtype):
            values = column.to_numpy().take(positions)
        else:
            values = column.array.take(positions)
        del column
        taken[name] = pd.Series(values, index=index, copy=False)
    return pd.DataFrame(taken, copy=False)


def _without_unused_categories(frame: pd.DataFrame) -> pd.DataFrame:
    """Drop categories no row uses any more, so categories stay the values present."""
    replaced = {}
    for name in frame.columns:
        column = frame[name]
        if not isinstance(column.dtype, pd.CategoricalDtype):
            continue
        codes = column.cat.codes.to_numpy()
        used = np.bincount(codes.astype(np.intp) + 1, minlength=len(column.cat.categories) + 1)
        used = used[1:] > 0
        if used.all():
            continue
        remap = (np.cumsum(used) - 1).astype(codes.dtype)
        remap[~used] = -1
        categorical = pd.Categorical.from_codes(
            _expand(remap, codes, -1),
            dtype=pd.CategoricalDtype(column.cat.categories[used]),
        )
        replaced[name] = pd.Series(categorical, index=frame.index)
    return frame.assign(**replaced) if replaced else frame


def _duplicated_rows(frame: pd.DataFrame) -> np.ndarray:
    """``frame.duplicated(keep="first")`` without hashing every row of every column.

    Exact duplicates share customer_id and time, so only rows whose (id, time) pair
    repeats are compared in full. In data ordered by customer then time (the usual
    export) repeats are neighbours and one pass finds them; otherwise one sort of
    integer keys does.
    """
    n = len(frame)
    if n < 2:
        return np.zeros(n, dtype=bool)
    time_column = next(
        (c for c in ("timestamp", "signup_date", "start") if c in frame.columns), None
    )
    times = None
    if time_column is not None:
        times = frame[time_column].to_numpy(dtype="datetime64[ns]").view(np.int64)
    same_id, ordered = _id_runs(frame["customer_id"])
    if ordered and times is not None:
        ordered = bool((~same_id | (times[1:] >= times[:-1])).all())
    if ordered:
        repeats = same_id if times is None else same_id & (times[1:] == times[:-1])
        candidates = np.zeros(n, dtype=bool)
        candidates[1:] |= repeats
        candidates[:-1] |= repeats
    else:
        codes, _ = pd.factorize(frame["customer_id"], use_na_sentinel=True)
        keys = codes.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        if times is not None:
            keys ^= times.view(np.uint64)
        del codes
        # Sorting values (not arg-sorting) is fast; equal keys are then neighbours.
        ordered_keys = np.sort(keys)
        repeated = np.unique(ordered_keys[1:][ordered_keys[1:] == ordered_keys[:-1]])
        del ordered_keys
        where = np.searchsorted(repeated, keys).clip(max=max(len(repeated) - 1, 0))
        candidates = repeated[where] == keys if len(repeated) else np.zeros(n, dtype=bool)
    positions = np.flatnonzero(candidates)
    duplicated = np.zeros(n, dtype=bool)
    if len(positions):
        subset = frame.take(positions)
        duplicated[positions[subset.duplicated(keep="first").to_numpy()]] = True
    return duplicated


def _id_runs(ids: pd.Series) -> tuple[np.ndarray, bool]:
    """Whether each id equals the one before it, and whether the ids are sorted.

    Sorted ids mean each customer's rows are contiguous, so runs of equal ids are the
    customers. Computed on the Arrow strings directly (no factorising).
    """
    if ids.dtype == "str" and ids.dtype.storage == "pyarrow" and not ids.hasnans:
        array = pa.array(ids)
        head, tail = array[:-1], array[1:]
        same = pc.equal(tail, head).to_numpy(zero_copy_only=False)
        ordered = bool(pc.all(pc.less_equal(head, tail)).as_py() is not False)
        return same.astype(bool, copy=False), ordered
    values = ids.to_numpy()
    same = np.asarray(values[1:] == values[:-1], dtype=bool)
    return same, bool(ids.is_monotonic_increasing)


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
        # the pattern as text, not the compiled object, so Arrow's engine can take it
        has_offset = (
            prepared.str.contains(_TZ_SUFFIX.pattern, case=False, regex=True)
            .fillna(False)
            .to_numpy(dtype=bool)
        )
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
    capped, n_capped = _capped_refunds(transactions)
    if n_capped:
        transactions = transactions.assign(amount=capped)
        warnings.append(
            f"{sources[0]}: capped {n_capped} refunds larger than the customer's "
            "purchases up to then at those purchases"
        )
    if interactions is not None:
        known = _is_in(interactions["customer_id"], transactions["customer_id"])
        if not known.all():
            orphans = interactions.loc[~known, "customer_id"]
            warnings.append(
                f"{sources[1]}: dropped {int((~known).sum())} rows of {orphans.nunique()} "
                "customers who have no transactions"
            )
            interactions = _without_unused_categories(
                interactions.loc[known].reset_index(drop=True)
            )
    return transactions, interactions, tuple(warnings)


def _capped_refunds(transactions: pd.DataFrame) -> tuple[np.ndarray | None, int]:
    """Amounts with each too-large refund capped, and how many were capped.

    Only customers with at least one refund can have a refund to cap, so the running
    totals are computed for their rows alone: ordered by customer and time (stable),
    purchases clipped at zero, summed per customer in that order (the same pandas
    group-wise cumsum as before, so the sums are bit-for-bit the same).
    """
    amount = transactions["amount"].to_numpy()
    refund = amount < 0
    if not refund.any():
        return None, 0
    ids = transactions["customer_id"]
    involved = np.flatnonzero(_is_in(ids, ids[refund]))
    ids = pd.Series(ids.array.take(involved))
    times = transactions["timestamp"].to_numpy(dtype="datetime64[ns]")[involved].view(np.int64)
    same_id, ordered = _id_runs(ids)
    if ordered and bool((~same_id | (times[1:] >= times[:-1])).all()):
        rows = involved
        groups = np.concatenate([[0], np.cumsum(~same_id)])
    else:
        codes, _ = pd.factorize(ids)
        order = np.lexsort((times, codes))
        rows, groups = involved[order], codes[order]
    ordered_amount = amount[rows]
    paid_so_far = pd.Series(ordered_amount).clip(lower=0).groupby(groups).cumsum().to_numpy()
    too_large = (ordered_amount < 0) & (-ordered_amount > paid_so_far)
    n_capped = int(too_large.sum())
    if not n_capped:
        return None, 0
    capped = amount.copy()
    capped[rows[too_large]] = -paid_so_far[too_large]
    return capped, n_capped


def _is_in(values: pd.Series, allowed: pd.Series) -> np.ndarray:
    """Per row of ``values``: does it occur in ``allowed`` (hash lookup, no Python objects)."""
    try:
        found = pc.is_in(pa.array(values), value_set=pc.unique(pa.array(allowed)))
        return found.to_numpy(zero_copy_only=False).astype(bool, copy=False)
    except (pa.ArrowException, TypeError):
        return values.isin(allowed.unique()).to_numpy()
