"""Churn labels: non-contractual churn, learned only from what came before.

Two questions, two labels:

* :func:`departure_labels` (what the retention model learns): among customers still
  active at the cutoff (:mod:`features.status`), ``churned`` = they stop within the
  horizon, confirmed by a later window: no purchase in
  ``[cutoff + horizon, cutoff + horizon + confirm)``. A customer who buys once more
  inside the horizon and then stops has left; a slow buyer whose normal gap spans
  the horizon but who returns in the confirmation window has not.
* :func:`churn_labels` (the classic label the baselines use): among customers who
  bought in the lookback window, no purchase in ``[cutoff, cutoff + horizon)``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.windows import as_cutoff


def active_customers(
    transactions: pd.DataFrame, cutoff: str | pd.Timestamp, lookback_days: int = 365
) -> pd.Index:
    """Customers with a purchase in ``[cutoff - lookback, cutoff)``, sorted."""
    cutoff = as_cutoff(cutoff)
    ts = transactions["timestamp"]
    window = (ts >= cutoff - pd.Timedelta(days=lookback_days)) & (ts < cutoff)
    ids = transactions.loc[window & (transactions["amount"] > 0), "customer_id"].unique()
    if isinstance(ids.dtype, pd.CategoricalDtype):
        ids = ids.astype(ids.categories.dtype)  # the ids themselves, not a CategoricalIndex
    if len(ids) and ids.dtype == "str":
        # the same Index as below, without a Python list of a million strings
        return pd.Index(ids, name="customer_id").sort_values()
    return pd.Index(sorted(ids), name="customer_id")


def label_horizon_end(cutoff: str | pd.Timestamp, horizon_days: int) -> pd.Timestamp:
    """First day after the label window."""
    return as_cutoff(cutoff) + pd.Timedelta(days=horizon_days)


def departure_labels(
    transactions: pd.DataFrame,
    cutoff: str | pd.Timestamp,
    customers: pd.Index,
    horizon_days: int = 90,
    confirm_days: int = 90,
    observed_until: pd.Timestamp | None = None,
) -> pd.Series:
    """Departure label per customer in ``customers`` (the active ones at the cutoff).

    Args:
        transactions: validated transactions (all dates; the future is needed here only).
        cutoff: label cutoff.
        customers: the customers to label, as an index named ``customer_id``.
        horizon_days: a customer who stops buying within this many days has left...
        confirm_days: ...when they then buy nothing for this many days more.
        observed_until: the latest transaction of the business, when ``transactions``
            are one customer batch of it (None: their own latest).

    Returns:
        Integer series (1 = departed) indexed like ``customers``.

    Raises:
        ValueError: if the data ends before the confirmation window does.
    """
    cutoff = as_cutoff(cutoff)
    start = label_horizon_end(cutoff, horizon_days)
    end = start + pd.Timedelta(days=confirm_days)
    _check_observed(transactions, cutoff, end, horizon_days + confirm_days, observed_until)
    ts = transactions["timestamp"]
    later = transactions.loc[(ts >= start) & (ts < end) & (transactions["amount"] > 0)]
    returned = pd.Index(later["customer_id"].unique())
    return pd.Series((~customers.isin(returned)).astype(int), index=customers, name="churned")


def _check_observed(
    transactions: pd.DataFrame,
    cutoff: pd.Timestamp,
    end: pd.Timestamp,
    days: int,
    observed_until: pd.Timestamp | None = None,
) -> None:
    """Refuse a label window the data does not fully cover: a customer would look gone
    only because their future is missing. ``observed_until``: the business's latest
    transaction, when ``transactions`` are one customer batch of it."""
    latest = transactions["timestamp"].max() if observed_until is None else observed_until
    last_day = latest.normalize()
    if last_day + pd.Timedelta(days=1) < end:
        raise ValueError(
            f"cutoff {cutoff.date()} + {days} days ends {end.date()}, after the last "
            f"transaction day {last_day.date()}: the label window is not fully observed"
        )


def churn_labels(
    transactions: pd.DataFrame,
    cutoff: str | pd.Timestamp,
    horizon_days: int = 90,
    lookback_days: int = 365,
    observed_until: pd.Timestamp | None = None,
) -> pd.Series:
    """Churn label per active customer.

    Args:
        transactions: validated transactions (all dates; the future is needed here only).
        cutoff: label cutoff.
        horizon_days: length of the window in which a purchase means "stayed".
        lookback_days: a customer is active if they bought in this window before cutoff.
        observed_until: as for :func:`departure_labels`.

    Returns:
        Integer series (1 = churned) indexed by ``customer_id``.

    Raises:
        ValueError: if the data ends before the horizon does, which would label
            customers as churned only because their future is missing.
    """
    cutoff = as_cutoff(cutoff)
    end = label_horizon_end(cutoff, horizon_days)
    _check_observed(transactions, cutoff, end, horizon_days, observed_until)
    active = active_customers(transactions, cutoff, lookback_days)
    ts = transactions["timestamp"]
    future = transactions.loc[(ts >= cutoff) & (ts < end) & (transactions["amount"] > 0)]
    stayed = pd.Index(future["customer_id"].unique())
    return pd.Series((~active.isin(stayed)).astype(int), index=active, name="churned")


def subscription_end_labels(
    transactions: pd.DataFrame,
    subscriptions: pd.DataFrame,
    cutoff: str | pd.Timestamp,
    customers: pd.Index,
    horizon_days: int = 90,
    observed_until: pd.Timestamp | None = None,
) -> pd.Series:
    """Cancellation label per customer in ``customers`` (subscribed at the cutoff).

    ``churned`` = 1 when the customer's subscription, followed across plan changes (a
    row starting within ``features.subscriptions.CONTINUATION`` of the previous end),
    ends in ``[cutoff, cutoff + horizon)``. A customer who cancels and comes back later
    still ended a subscription in the window: they churned. A customer with no
    subscription covering the cutoff gets 0 (they are not in the population this label
    is for; :func:`features.subscriptions.running_subscribers` picks that population).

    Raises:
        ValueError: if the data ends before the horizon does.
    """
    from features.subscriptions import CONTINUATION

    cutoff = as_cutoff(cutoff)
    end_of_window = label_horizon_end(cutoff, horizon_days)
    _check_observed(transactions, cutoff, end_of_window, horizon_days, observed_until)
    rows = subscriptions.assign(customer_id=subscriptions["customer_id"].astype(str))
    rows = rows.sort_values(["customer_id", "start"], kind="stable").reset_index(drop=True)
    ids, start, end = rows["customer_id"], rows["start"], rows["end"]
    same_next = ids.eq(ids.shift(-1))
    continued = same_next & ((start.shift(-1) - end) <= CONTINUATION)
    # the row where each chain of back-to-back periods stops; its end is the chain's
    stops = pd.Series(np.where(continued, np.nan, np.arange(len(rows))))
    chain_end = end.to_numpy()[stops.bfill().to_numpy().astype(int)] if len(rows) else end
    covers = (start < cutoff) & (end.isna() | (end >= cutoff))
    ends = pd.Series(chain_end, index=ids).loc[covers.to_numpy()]
    ends = ends[~ends.index.duplicated(keep="last")]
    leaves = ends.notna() & (ends < end_of_window)
    churned = leaves.reindex(pd.Index(customers).astype(str), fill_value=False).to_numpy()
    return pd.Series(churned.astype(int), index=customers, name="churned")
