"""Column converters: each turns one column as read into its normalised dtype.

Each takes (column as read, canonical name, source, nullable) and returns the
normalised column with the same index, or raises :class:`InputError` naming the bad
rows. Which converter a column gets is its ``kind`` in the column table
(:mod:`features.contracts.columns`).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

import numpy as np
import pandas as pd

from features.contracts.columnar import (
    _as_category,
    _category_from_codes,
    _expand,
    _factorize,
    _is_clean_text,
)
from features.contracts.columns import (
    COLUMN_BY_NAME,
    PAYMENT_STATUSES,
    Bounds,
    ColumnKind,
)
from features.contracts.messages import (
    _bad_values_error,
    _is_missing_scalar,
    _raise_if_bad,
    _raise_if_mixed_time_zones,
)

Converter = Callable[[pd.Series, str, str, bool], pd.Series]

# A UTC offset or "Z" after a time of day. The time part is required so that the
# "-01" at the end of a plain date such as "1997-01-01" is not read as an offset.
# ASCII classes only ([0-9], [ \t] rather than \d, \s): pandas can then run the match in
# Arrow's RE2 engine for Arrow-backed text instead of calling Python once per row
_TZ_SUFFIX = re.compile(
    r"[T \t][0-9]{2}(?::?[0-9]{2}){0,2}(?:[.,][0-9]+)?[ \t]*(?:Z|[+-][0-9]{2}(?::?[0-9]{2})?)$",
    re.IGNORECASE,
)

_BOOL_WORDS = {"true": True, "false": False, "yes": True, "no": False, "1": True, "0": False}

# marks a value that is present but not a recognised flag
_INVALID = object()

_DATE_HINT = "expected ISO 8601 dates or datetimes such as 2024-01-31 or 2024-01-31T14:05:00"


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


# --- value helpers ---------------------------------------------------------------


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


# --- which converter each column gets -------------------------------------------

_BY_KIND: dict[ColumnKind, Converter] = {
    "id": _to_identifier,
    "time": _to_timestamp,
    "number": _to_number,
    "flag": _to_flag,
    "label": _to_label,
    "payment_status": _to_payment_status,
    "billing_period": _to_billing_period,
}

# column name -> its converter, and the bounds of numeric columns that have them
_CONVERTERS: dict[str, Converter] = {
    name: _BY_KIND[column.kind] for name, column in COLUMN_BY_NAME.items()
}
_NUMBER_BOUNDS: dict[str, Bounds] = {
    name: column.bounds for name, column in COLUMN_BY_NAME.items() if column.bounds is not None
}
