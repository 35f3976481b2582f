"""Recency, frequency, monetary and cadence features from the transactions table.

All functions expect a validated transactions frame already cut to rows before the
cutoff (see :func:`features.windows.before_cutoff`) and return one row per customer,
indexed by ``customer_id``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.windows import count_per_customer, days_before, in_window

RFM_FEATURES = (
    "days_since_last_purchase",
    "tenure_days",
    "lifetime_purchases",
    "purchases_30d",
    "purchases_90d",
    "purchases_prior_90d",
    "purchases_365d",
    "spend_90d",
    "spend_prior_90d",
    "spend_365d",
    "avg_order_value",
    "mean_gap_days",
    "gap_std_days",
    "max_gap_days",
    "overdue_ratio",
    "purchase_trend_90d",
    "spend_change_90d",
    "purchases_same_season_last_year",
    "peak_month_share",
)


def purchases_only(transactions: pd.DataFrame) -> pd.DataFrame:
    """Rows that are purchases (refunds and zero rows are not visits)."""
    return transactions.loc[transactions["amount"] > 0]


def _total(frame: pd.DataFrame, index: pd.Index) -> pd.Series:
    return frame.groupby("customer_id")["amount"].sum().reindex(index, fill_value=0.0)


def cadence_features(purchases: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    """Mean, spread and longest gap between distinct purchase days.

    Gaps use distinct calendar days so two orders on one afternoon are one visit.
    Customers with a single purchase day get NaN: they have no cadence yet.
    """
    days = (
        purchases.assign(day=purchases["timestamp"].dt.normalize())[["customer_id", "day"]]
        .drop_duplicates()
        .sort_values(["customer_id", "day"])
    )
    gaps = days.groupby("customer_id")["day"].diff() / pd.Timedelta(days=1)
    stats = gaps.groupby(days["customer_id"]).agg(["mean", "std", "max"])
    stats.columns = ["mean_gap_days", "gap_std_days", "max_gap_days"]
    # a single gap has no spread; call it 0 rather than unknown
    two_days = days.groupby("customer_id").size() == 2
    stats.loc[two_days.reindex(stats.index, fill_value=False), "gap_std_days"] = 0.0
    return stats


def peak_month_share(purchases: pd.DataFrame) -> pd.Series:
    """Share of a customer's purchases that fall in their two busiest calendar months.

    High for seasonal buyers (a long gap is normal for them); NaN under three purchases.
    """
    months = purchases.assign(month=purchases["timestamp"].dt.month)
    per_month = months.groupby(["customer_id", "month"]).size().rename("n").reset_index()
    busiest = per_month.sort_values(["customer_id", "n"], ascending=[True, False], kind="stable")
    top_two = busiest.groupby("customer_id").head(2).groupby("customer_id")["n"].sum()
    total = per_month.groupby("customer_id")["n"].sum()
    return (top_two / total).where(total >= 3)


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
    purchases = purchases_only(transactions)
    grouped = purchases.groupby("customer_id")["timestamp"]
    first, last = grouped.min(), grouped.max()
    index = last.index

    if signup_dates is not None:
        signup = signup_dates.reindex(index)
        first = first.where(signup.isna() | (signup > first), signup)

    out = pd.DataFrame(index=index)
    out["days_since_last_purchase"] = days_before(cutoff, last)
    out["tenure_days"] = days_before(cutoff, first)
    out["lifetime_purchases"] = count_per_customer(purchases, index)
    out["purchases_30d"] = count_per_customer(in_window(purchases, cutoff, 30), index)
    out["purchases_90d"] = count_per_customer(in_window(purchases, cutoff, 90), index)
    out["purchases_prior_90d"] = count_per_customer(in_window(purchases, cutoff, 180, 90), index)
    out["purchases_365d"] = count_per_customer(in_window(purchases, cutoff, 365), index)
    # spend keeps refunds: money actually kept by the business
    out["spend_90d"] = _total(in_window(transactions, cutoff, 90), index)
    out["spend_prior_90d"] = _total(in_window(transactions, cutoff, 180, 90), index)
    out["spend_365d"] = _total(in_window(transactions, cutoff, 365), index)
    out["avg_order_value"] = purchases.groupby("customer_id")["amount"].mean()

    out = out.join(cadence_features(purchases, cutoff))
    out["overdue_ratio"] = out["days_since_last_purchase"] / out["mean_gap_days"]
    out["purchase_trend_90d"] = out["purchases_90d"] - out["purchases_prior_90d"]
    out["spend_change_90d"] = (out["spend_90d"] - out["spend_prior_90d"]) / np.maximum(
        out["spend_prior_90d"].abs(), 1.0
    )
    # what the customer did in the coming season a year ago: seasonal buyers return
    out["purchases_same_season_last_year"] = count_per_customer(
        in_window(purchases, cutoff, 365, 275), index
    )
    out["peak_month_share"] = peak_month_share(purchases).reindex(index)
    return out[list(RFM_FEATURES)]
