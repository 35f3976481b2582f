"""Recency, frequency, monetary and cadence features from the transactions table.

All functions expect a validated transactions frame already cut to rows before the
cutoff (see :func:`features.windows.before_cutoff`) and return one row per customer,
indexed by ``customer_id``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features import registry
from features.windows import (
    count_per_customer,
    customer_index,
    customer_positions,
    days_before,
    sum_per_customer,
    window_mask,
)

# declared, with their reasons and words, in features/registry.py
RFM_FEATURES: tuple[str, ...] = registry.names(registry.RFM)


def purchases_only(transactions: pd.DataFrame) -> pd.DataFrame:
    """Rows that are purchases (refunds and zero rows are not visits)."""
    return transactions.loc[transactions["amount"] > 0]


def cadence_features(positions: np.ndarray, timestamps: np.ndarray, n: int) -> pd.DataFrame:
    """Mean, spread and longest gap between distinct purchase days, and the number of
    those days, per customer position.

    Gaps use distinct calendar days so two orders on one afternoon are one visit.
    Customers with a single purchase day get NaN gaps: they have no cadence yet.
    """
    day = timestamps.astype("datetime64[D]").astype(np.int64)
    first_day = day.min() if len(day) else 0
    span = (day.max() - first_day + 1) if len(day) else 1
    # one int key per (customer, day): sorting it orders days within each customer
    keys = positions * span + (day - first_day)
    if not (keys[1:] >= keys[:-1]).all():  # exports usually come sorted already
        keys.sort()
    keys = keys[np.r_[True, keys[1:] != keys[:-1]]] if len(keys) else keys
    who, day = keys // span, keys % span
    same = who[1:] == who[:-1]  # consecutive distinct days of one customer: a gap
    gap_of, gaps = who[1:][same], (day[1:] - day[:-1])[same].astype(float)

    n_gaps = count_per_customer(gap_of, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = sum_per_customer(gap_of, gaps, n) / n_gaps
        squares = sum_per_customer(gap_of, (gaps - mean[gap_of]) ** 2, n)
        std = np.sqrt(squares / (n_gaps - 1))
    std[n_gaps <= 1] = np.nan
    # a single gap has no spread; call it 0 rather than unknown
    std[n_gaps == 1] = 0.0
    longest = np.full(n, np.nan)
    if len(gaps):
        starts = np.flatnonzero(np.r_[True, gap_of[1:] != gap_of[:-1]])
        longest[gap_of[starts]] = np.maximum.reduceat(gaps, starts)
    return pd.DataFrame(
        {
            "mean_gap_days": mean,
            "gap_std_days": std,
            "max_gap_days": longest,
            "purchase_days": count_per_customer(who, n),
        }
    )


def peak_month_share(positions: np.ndarray, timestamps: np.ndarray, n: int) -> np.ndarray:
    """Share of a customer's purchases that fall in their two busiest calendar months.

    High for seasonal buyers (a long gap is normal for them); NaN under three purchases.
    """
    month = pd.DatetimeIndex(timestamps).month.to_numpy() - 1
    per_month = np.bincount(positions * 12 + month, minlength=n * 12).reshape(n, 12)
    total = per_month.sum(axis=1)
    top_two = np.sort(per_month, axis=1)[:, -2:].sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total >= 3, top_two / total, np.nan)


def rfm_features(
    transactions: pd.DataFrame,
    cutoff: pd.Timestamp,
    signup_dates: pd.Series | None = None,
) -> pd.DataFrame:
    """RFM and cadence features for every customer with a purchase before the cutoff.

    Args:
        transactions: validated transactions, all rows before ``cutoff``.
        cutoff: the scoring or training cutoff (midnight).
        signup_dates: optional ``signup_date`` per customer id; tenure counts from the
            earlier of signup and first purchase.

    Returns:
        One row per customer (index ``customer_id``) with :data:`RFM_FEATURES`.
    """
    amount = transactions["amount"].to_numpy(dtype=float)
    bought = amount > 0
    ids = transactions["customer_id"]
    index = customer_index(ids[bought])
    n = len(index)
    pos = customer_positions(ids, index)
    ts = transactions["timestamp"].to_numpy()
    if not (pos >= 0).all():  # refund-only customers: no row of their own
        keep = pos >= 0
        pos, ts, amount, bought = pos[keep], ts[keep], amount[keep], bought[keep]
    p_pos, p_ts = pos[bought], ts[bought]

    def purchases_in(days: int, end_days_ago: int = 0) -> np.ndarray:
        return count_per_customer(p_pos, n, window_mask(p_ts, cutoff, days, end_days_ago))

    def spend_in(days: int, end_days_ago: int = 0) -> np.ndarray:
        # spend keeps refunds: money actually kept by the business
        return sum_per_customer(pos, amount, n, window_mask(ts, cutoff, days, end_days_ago))

    ticks = p_ts.view(np.int64)
    first = np.full(n, np.iinfo(np.int64).max)
    last = np.full(n, np.iinfo(np.int64).min)
    np.minimum.at(first, p_pos, ticks)
    np.maximum.at(last, p_pos, ticks)
    first = pd.Series(first.view(p_ts.dtype), index=index)
    last = pd.Series(last.view(p_ts.dtype), index=index)
    if signup_dates is not None:
        signup = signup_dates.reindex(index)
        first = first.where(signup.isna() | (signup > first), signup)

    out = pd.DataFrame(index=index)
    out["days_since_last_purchase"] = days_before(cutoff, last)
    out["tenure_days"] = days_before(cutoff, first)
    out["lifetime_purchases"] = count_per_customer(p_pos, n)
    out["purchases_30d"] = purchases_in(30)
    out["purchases_90d"] = purchases_in(90)
    out["purchases_prior_90d"] = purchases_in(180, 90)
    out["purchases_365d"] = purchases_in(365)
    out["spend_90d"] = spend_in(90)
    out["spend_prior_90d"] = spend_in(180, 90)
    out["spend_365d"] = spend_in(365)
    out["avg_order_value"] = sum_per_customer(p_pos, amount[bought], n) / out["lifetime_purchases"]

    cadence = cadence_features(p_pos, p_ts, n)
    for name in cadence:
        out[name] = cadence[name].to_numpy()
    out["overdue_ratio"] = out["days_since_last_purchase"] / out["mean_gap_days"]
    out["purchase_trend_90d"] = out["purchases_90d"] - out["purchases_prior_90d"]
    out["spend_change_90d"] = (out["spend_90d"] - out["spend_prior_90d"]) / np.maximum(
        out["spend_prior_90d"].abs(), 1.0
    )
    # what the customer did in the coming season a year ago: seasonal buyers return
    out["purchases_same_season_last_year"] = purchases_in(365, 275)
    out["peak_month_share"] = peak_month_share(p_pos, p_ts, n)
    return out[list(RFM_FEATURES)]
