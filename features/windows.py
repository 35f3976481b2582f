"""Cutoff handling shared by every feature family.

The one rule that keeps the model honest: a feature for cutoff ``c`` may only use
rows with ``timestamp < c``. :func:`before_cutoff` is the single place that applies it.
"""

from __future__ import annotations

import pandas as pd

DAY = pd.Timedelta(days=1)


def as_cutoff(cutoff: str | pd.Timestamp) -> pd.Timestamp:
    """Normalise a cutoff to a naive midnight timestamp."""
    ts = pd.Timestamp(cutoff)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts.normalize()


def before_cutoff(frame: pd.DataFrame | None, cutoff: pd.Timestamp) -> pd.DataFrame | None:
    """Rows strictly before the cutoff (``None`` passes through for absent tables)."""
    if frame is None:
        return None
    return frame.loc[frame["timestamp"] < cutoff]


def in_window(
    frame: pd.DataFrame, cutoff: pd.Timestamp, days: int, end_days_ago: int = 0
) -> pd.DataFrame:
    """Rows in ``[cutoff - days, cutoff - end_days_ago)``."""
    start = cutoff - pd.Timedelta(days=days)
    end = cutoff - pd.Timedelta(days=end_days_ago)
    ts = frame["timestamp"]
    return frame.loc[(ts >= start) & (ts < end)]


def days_before(cutoff: pd.Timestamp, timestamps: pd.Series) -> pd.Series:
    """Fractional days from each timestamp to the cutoff."""
    return (cutoff - timestamps) / DAY


def count_per_customer(frame: pd.DataFrame, customers: pd.Index) -> pd.Series:
    """Rows per customer, 0 for customers without any, as floats (model features)."""
    return frame.groupby("customer_id").size().reindex(customers, fill_value=0).astype(float)
