"""Cutoff handling and per-customer aggregation shared by every feature family.

The one rule that keeps the model honest: a feature for cutoff ``c`` may only use
rows with ``timestamp < c``. :func:`before_cutoff` is the single place that applies it.

The families aggregate with NumPy on integer customer positions (``np.bincount`` and
friends) instead of pandas group-bys on string ids: at millions of rows that is the
difference between seconds and minutes. :func:`customer_positions` maps ids to
positions once; a categorical ``customer_id`` whose categories are the customers (as
:func:`features.build.build_features` passes it) already is the mapping.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

DAY = pd.Timedelta(days=1)


def as_cutoff(cutoff: str | pd.Timestamp) -> pd.Timestamp:
    """Normalise a cutoff to a naive midnight timestamp."""
    ts = pd.Timestamp(cutoff)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts.normalize()


def before_cutoff(
    frame: pd.DataFrame | None, cutoff: pd.Timestamp, keep: np.ndarray | None = None
) -> pd.DataFrame | None:
    """Rows strictly before the cutoff (``None`` passes through for absent tables).

    ``keep`` optionally selects rows further, in the same pass (one copy of the table).
    """
    if frame is None:
        return None
    before = (frame["timestamp"] < cutoff).to_numpy()
    return frame.loc[before if keep is None else before & keep]


def in_window(
    frame: pd.DataFrame, cutoff: pd.Timestamp, days: int, end_days_ago: int = 0
) -> pd.DataFrame:
    """Rows in ``[cutoff - days, cutoff - end_days_ago)``."""
    start = cutoff - pd.Timedelta(days=days)
    end = cutoff - pd.Timedelta(days=end_days_ago)
    ts = frame["timestamp"]
    return frame.loc[(ts >= start) & (ts < end)]


def window_mask(
    timestamps: np.ndarray, cutoff: pd.Timestamp, days: int, end_days_ago: int = 0
) -> np.ndarray:
    """True for timestamps in ``[cutoff - days, cutoff - end_days_ago)``."""
    start = (cutoff - pd.Timedelta(days=days)).to_datetime64()
    end = (cutoff - pd.Timedelta(days=end_days_ago)).to_datetime64()
    return (timestamps >= start) & (timestamps < end)


def days_before(cutoff: pd.Timestamp, timestamps: pd.Series) -> pd.Series:
    """Fractional days from each timestamp to the cutoff."""
    return (cutoff - timestamps) / DAY


def customer_index(ids: pd.Series) -> pd.Index:
    """The distinct customer ids, sorted (a categorical column: its categories seen)."""
    if isinstance(ids.dtype, pd.CategoricalDtype):
        categories = ids.cat.categories
        seen = np.bincount(ids.cat.codes.to_numpy() + 1, minlength=len(categories) + 1)[1:] > 0
        index = categories if seen.all() else categories[seen]
    else:
        index = pd.Index(pd.unique(ids)).sort_values()
    return index.rename("customer_id")


def customer_positions(ids: pd.Series, customers: pd.Index) -> np.ndarray:
    """Each row's position in ``customers``, -1 for rows of other customers."""
    if isinstance(ids.dtype, pd.CategoricalDtype):
        codes = ids.cat.codes.to_numpy().astype(np.intp)
        if ids.cat.categories.equals(customers):
            return codes
        found = customers.get_indexer(ids.cat.categories)
    else:
        # hash each distinct id once, not once per row
        codes, uniques = pd.factorize(ids)
        found = customers.get_indexer(pd.Index(uniques))
    return np.where(codes >= 0, found[codes] if len(found) else -1, -1)


def count_per_customer(positions: np.ndarray, n: int, mask: np.ndarray | None = None) -> np.ndarray:
    """Rows per customer (``mask`` selects rows), 0 for customers without any, as floats."""
    if mask is not None:
        positions = positions[mask]
    return np.bincount(positions, minlength=n).astype(float)


def sum_per_customer(
    positions: np.ndarray, values: np.ndarray, n: int, mask: np.ndarray | None = None
) -> np.ndarray:
    """Sum of ``values`` per customer over the rows in ``mask``, 0.0 without rows."""
    if mask is not None:
        positions, values = positions[mask], values[mask]
    return np.bincount(positions, weights=values, minlength=n)


def mean_per_customer(
    positions: np.ndarray, values: np.ndarray, n: int, mask: np.ndarray | None = None
) -> np.ndarray:
    """Mean of the non-missing ``values`` per customer (like pandas), NaN without any."""
    present = ~np.isnan(values)
    mask = present if mask is None else mask & present
    with np.errstate(invalid="ignore", divide="ignore"):
        return sum_per_customer(positions, values, n, mask) / count_per_customer(positions, n, mask)


def latest_per_customer(positions: np.ndarray, timestamps: np.ndarray, n: int) -> np.ndarray:
    """Row number of each customer's latest row, -1 without rows.

    Equal timestamps go to the later row, as a stable sort by time then ``.last()`` would.
    """
    ticks = timestamps.view(np.int64)
    latest = np.full(n, np.iinfo(np.int64).min)
    np.maximum.at(latest, positions, ticks)
    rows = np.flatnonzero(ticks == latest[positions])
    last_row = np.full(n, -1)
    np.maximum.at(last_row, positions[rows], rows)
    return last_row


def values_at(values: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``values[rows]``, missing (NaN, NaT) where ``rows`` is -1."""
    return pd.Series(values).reindex(rows).to_numpy()


def label_codes(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Integer code per row (-1 where missing) and the labels they stand for.

    Codes follow the labels' alphabetical order for ``str`` and ``category`` columns
    alike, so tie-breaks do not depend on how a categorical orders its categories.
    """
    codes, uniques = pd.factorize(values)
    labels = np.asarray(uniques, dtype=object)
    order = np.argsort(labels, kind="stable")
    rank = np.empty(len(order), dtype=np.intp)
    rank[order] = np.arange(len(order))
    return np.where(codes >= 0, rank[codes] if len(rank) else codes, -1), labels[order]


def equals_mask(values: pd.Series, label: str) -> np.ndarray:
    """True where ``values == label`` (False where missing), for str and category."""
    return values.eq(label).to_numpy(dtype=bool, na_value=False)
