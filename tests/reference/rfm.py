"""Plain pandas references for the RFM family, written to be obviously right, not fast.

Two ways to the definitions of :mod:`features.rfm`:

* :func:`rfm_reference`: every RFM feature with pandas group-bys, merges and sorts, the
  implementation the NumPy path replaced (``tests/unit/test_feature_speedups.py``);
* :func:`customer_rfm`: the RFM core (:data:`RFM_CORE`) of one customer at a time, for
  ``groupby("customer_id").apply``; ``benchmarks/speed.py`` times it against the
  pipeline and DuckDB, and the tests check it gives the pipeline's numbers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features import rfm
from features.windows import in_window

DAY = pd.Timedelta(days=1)

# The RFM core that the pipeline, DuckDB and customer_rfm all compute, with the pipeline's
# definitions (features.rfm): customers who bought in the 365 days before the cutoff, all
# their rows before it; no signup dates (tenure counts from the first purchase).
RFM_CORE = (
    "days_since_last_purchase",
    "tenure_days",
    "lifetime_purchases",
    "purchases_30d",
    "purchases_90d",
    "purchases_365d",
    "spend_90d",
    "spend_365d",
    "avg_order_value",
    "mean_gap_days",
    "gap_std_days",
    "max_gap_days",
)


def days_before(cutoff: pd.Timestamp, timestamps: pd.Series) -> pd.Series:
    """Days from each timestamp to ``cutoff``."""
    return (cutoff - timestamps) / DAY


def count_rows(frame: pd.DataFrame, customers: pd.Index) -> pd.Series:
    """Rows of ``frame`` per customer of ``customers`` (0 for none), as floats."""
    return frame.groupby("customer_id").size().reindex(customers, fill_value=0).astype(float)


def customer_rfm(rows: pd.DataFrame, cutoff: pd.Timestamp) -> pd.Series:
    """The RFM core of one customer, written the plain way.

    Args:
        rows: The customer's ``timestamp`` and ``amount`` rows before ``cutoff``; at least
            one purchase (amount > 0).
        cutoff: The moment the features describe.

    Returns:
        The :data:`RFM_CORE` features, by name.
    """
    ts, amount = rows["timestamp"], rows["amount"]
    bought = amount > 0
    purchase_ts = ts[bought]
    days = purchase_ts.dt.normalize().drop_duplicates().sort_values()
    gaps = days.diff().dropna() / DAY
    return pd.Series(
        {
            "days_since_last_purchase": (cutoff - purchase_ts.max()) / DAY,
            "tenure_days": (cutoff - purchase_ts.min()) / DAY,
            "lifetime_purchases": float(bought.sum()),
            "purchases_30d": float((purchase_ts >= cutoff - 30 * DAY).sum()),
            "purchases_90d": float((purchase_ts >= cutoff - 90 * DAY).sum()),
            "purchases_365d": float((purchase_ts >= cutoff - 365 * DAY).sum()),
            "spend_90d": float(amount[ts >= cutoff - 90 * DAY].sum()),
            "spend_365d": float(amount[ts >= cutoff - 365 * DAY].sum()),
            "avg_order_value": amount[bought].mean(),
            "mean_gap_days": gaps.mean(),
            "gap_std_days": 0.0 if len(gaps) == 1 else gaps.std(),
            "max_gap_days": gaps.max(),
        }
    )


def rfm_reference(
    transactions: pd.DataFrame, cutoff: pd.Timestamp, signup_dates: pd.Series | None = None
) -> pd.DataFrame:
    """Every RFM feature of :mod:`features.rfm`, by pandas group-bys, merges and sorts.

    Args:
        transactions: Rows before ``cutoff`` (refunds as negative amounts).
        cutoff: The moment the features describe.
        signup_dates: Signup date per customer id, where known; an earlier signup moves
            the start of the tenure back.

    Returns:
        One row per customer with a purchase, the columns of ``RFM_FEATURES``.
    """
    purchases = transactions.loc[transactions["amount"] > 0]
    grouped = purchases.groupby("customer_id")["timestamp"]
    first, last = grouped.min(), grouped.max()
    index = last.index
    if signup_dates is not None:
        signup = signup_dates.reindex(index)
        first = first.where(signup.isna() | (signup > first), signup)

    def total(frame):
        return frame.groupby("customer_id")["amount"].sum().reindex(index, fill_value=0.0)

    out = pd.DataFrame(index=index)
    out["days_since_last_purchase"] = days_before(cutoff, last)
    out["tenure_days"] = days_before(cutoff, first)
    out["lifetime_purchases"] = count_rows(purchases, index)
    out["purchases_30d"] = count_rows(in_window(purchases, cutoff, 30), index)
    out["purchases_90d"] = count_rows(in_window(purchases, cutoff, 90), index)
    out["purchases_prior_90d"] = count_rows(in_window(purchases, cutoff, 180, 90), index)
    out["purchases_365d"] = count_rows(in_window(purchases, cutoff, 365), index)
    out["spend_90d"] = total(in_window(transactions, cutoff, 90))
    out["spend_prior_90d"] = total(in_window(transactions, cutoff, 180, 90))
    out["spend_365d"] = total(in_window(transactions, cutoff, 365))
    out["avg_order_value"] = purchases.groupby("customer_id")["amount"].mean()

    days = (
        purchases.assign(day=purchases["timestamp"].dt.normalize())[["customer_id", "day"]]
        .drop_duplicates()
        .sort_values(["customer_id", "day"])
    )
    gaps = days.groupby("customer_id")["day"].diff() / pd.Timedelta(days=1)
    stats = gaps.groupby(days["customer_id"]).agg(["mean", "std", "max"])
    stats.columns = ["mean_gap_days", "gap_std_days", "max_gap_days"]
    two_days = days.groupby("customer_id").size() == 2
    stats.loc[two_days.reindex(stats.index, fill_value=False), "gap_std_days"] = 0.0
    out = out.join(stats)

    out["overdue_ratio"] = out["days_since_last_purchase"] / out["mean_gap_days"]
    out["purchase_trend_90d"] = out["purchases_90d"] - out["purchases_prior_90d"]
    out["spend_change_90d"] = (out["spend_90d"] - out["spend_prior_90d"]) / np.maximum(
        out["spend_prior_90d"].abs(), 1.0
    )
    out["purchases_same_season_last_year"] = count_rows(
        in_window(purchases, cutoff, 365, 275), index
    )
    months = purchases.assign(month=purchases["timestamp"].dt.month)
    per_month = months.groupby(["customer_id", "month"]).size().rename("n").reset_index()
    busiest = per_month.sort_values(["customer_id", "n"], ascending=[True, False], kind="stable")
    top_two = busiest.groupby("customer_id").head(2).groupby("customer_id")["n"].sum()
    total_n = per_month.groupby("customer_id")["n"].sum()
    out["peak_month_share"] = (top_two / total_n).where(total_n >= 3).reindex(index)
    out["purchase_days"] = days.groupby("customer_id").size().reindex(index).astype(float)
    return out[list(rfm.RFM_FEATURES)]
