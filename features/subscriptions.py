"""Subscriptions: the status a cancellation gives, and billing-aware features.

Where a business records subscriptions (one row per period of one plan: ``start``,
``end`` (missing while it runs), optional ``plan``, ``amount`` per billing period and
``billing_period``), a cancellation *is* the status: a customer whose subscription
ended before the cutoff has left (a win-back), one whose subscription covers the
cutoff is still a customer, however long since their last charge (``domain.md``
section 6: explicit cancellations are the label where the data has them).

A plan change is a new row that starts when the previous one ends (within
``CONTINUATION``); a longer gap between two rows is a pause. Every function reads only
rows that started before the cutoff, and an ``end`` on or after the cutoff as "still
running": what the business knew at the cutoff.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features import registry

ACTIVE = "active"
LAPSED = "lapsed"

# billing period -> months per period; a table without the column bills monthly
PERIOD_MONTHS: dict[str, int] = {
    "monthly": 1,
    "month": 1,
    "quarterly": 3,
    "semiannual": 6,
    "annual": 12,
    "yearly": 12,
    "year": 12,
}
# a row starting within this long after the previous row ended continues it (a plan change)
CONTINUATION = pd.Timedelta(days=1)

# feature -> optional subscription columns it needs (the required ones are always there;
# declared in features/registry.py)
SUBSCRIPTION_FEATURES: dict[str, tuple[str, ...]] = registry.needs(registry.SUBSCRIPTIONS)


def observable(columns: set[str] | None) -> list[str]:
    """Subscription features a table with these columns gives (none without a table)."""
    if columns is None:
        return []
    return [name for name, needs in SUBSCRIPTION_FEATURES.items() if set(needs) <= columns]


def add_months(stamps: np.ndarray, months: np.ndarray) -> np.ndarray:
    """``stamps`` plus whole calendar months, the day clipped to the month's length
    (Jan 31 + 1 month = Feb 28/29), time of day kept."""
    stamps = np.asarray(stamps, dtype="datetime64[ns]")
    month = stamps.astype("datetime64[M]")
    day = (stamps.astype("datetime64[D]") - month.astype("datetime64[D]")).astype(np.int64)
    time = stamps - stamps.astype("datetime64[D]").astype("datetime64[ns]")
    target = month + np.asarray(months).astype("timedelta64[M]")
    length = ((target + 1).astype("datetime64[D]") - target.astype("datetime64[D]")).astype(
        np.int64
    )
    days = np.minimum(day, length - 1).astype("timedelta64[D]")
    return (target.astype("datetime64[D]") + days).astype("datetime64[ns]") + time


def periods_elapsed(start: np.ndarray, cutoff: pd.Timestamp, months: np.ndarray) -> np.ndarray:
    """Renewals strictly before the cutoff: whole billing periods of ``months`` each
    from ``start`` (a renewal falling on the cutoff is not yet seen in the data)."""
    start = np.asarray(start, dtype="datetime64[ns]")
    at = cutoff.to_datetime64()
    whole = np.datetime64(cutoff.to_datetime64(), "M").astype(np.int64) - start.astype(
        "datetime64[M]"
    ).astype(np.int64)
    whole = whole - (add_months(start, whole) >= at)
    return np.maximum(whole, 0) // np.asarray(months)


def _known_at(subscriptions: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    """Rows started before the cutoff, an end on or after it as missing (still running),
    sorted by customer then start, with months per period and amount per month."""
    rows = subscriptions.loc[(subscriptions["start"] < cutoff).to_numpy()]
    months = (
        rows["billing_period"].astype(object).map(PERIOD_MONTHS).fillna(1).to_numpy(int)
        if "billing_period" in rows
        else np.ones(len(rows), dtype=int)
    )
    known = rows.assign(
        customer_id=rows["customer_id"].astype(str),
        end=rows["end"].where(rows["end"] < cutoff),
        _months=months,
    )
    if "amount" in known:
        known["_monthly"] = known["amount"].to_numpy(float) / months
    return known.sort_values(["customer_id", "start"], kind="stable").reset_index(drop=True)


def subscription_status(
    subscriptions: pd.DataFrame, cutoff: pd.Timestamp, customers: pd.Index
) -> pd.DataFrame:
    """Status per customer from their subscriptions at the cutoff.

    Returns:
        Frame indexed like ``customers``: ``status`` (``active`` when a subscription
        covers the cutoff, ``lapsed`` when their last one ended before it, missing for
        customers without subscriptions), ``ended`` (when the last one ended) and
        ``cancel_reason`` (the answer recorded when it ended, as recorded; missing
        without one). A subscription that ends on or after the cutoff is still running
        here, so its answer is the future and is never read.
    """
    known = _known_at(subscriptions, cutoff)
    running = known["end"].isna().groupby(known["customer_id"]).any()
    ended = known.groupby("customer_id")["end"].max()
    status = pd.Series(np.where(running, ACTIVE, LAPSED), index=running.index, dtype=object)
    ids = pd.Index(customers).astype(str)
    out = pd.DataFrame(
        {
            "status": status.reindex(ids).to_numpy(),
            "ended": ended.where(~running).reindex(ids).to_numpy(dtype="datetime64[ns]"),
            "cancel_reason": None,
        },
        index=customers,
    )
    if "cancel_reason" in known:
        # the latest subscription's answer (rows are sorted by start), missing ones too
        said = known.groupby("customer_id").tail(1).set_index("customer_id")["cancel_reason"]
        out["cancel_reason"] = said.astype(object).where(~running).reindex(ids).to_numpy()
    return out


def subscription_features(
    subscriptions: pd.DataFrame, cutoff: pd.Timestamp, customers: pd.Index
) -> pd.DataFrame:
    """Billing-aware features per customer (missing for customers without subscriptions).

    * ``subscription_tenure_days``: since the first subscription started;
    * ``days_to_renewal``: to the next billing date of the running subscription (missing
      when none runs): a charge not yet due is not a missed charge;
    * ``periods_paid_in_plan``: billing periods begun in the running plan;
    * ``on_annual_plan``: the latest plan bills once a year or less often;
    * ``plan_changes_365d`` / ``downgrades_365d``: new rows continuing a previous one in
      the year before the cutoff, and those at a lower amount per month;
    * ``price_change``: amount per month of the latest plan against the first, minus 1;
    * ``paused_days_365d``: days in the year before the cutoff between two subscriptions.
    """
    known = _known_at(subscriptions, cutoff)
    ids = known["customer_id"]
    same = ids.eq(ids.shift()).to_numpy()
    previous_end = known["end"].shift().where(same)
    gap = known["start"] - previous_end
    continues = (gap <= CONTINUATION).to_numpy()
    year_ago = cutoff - pd.Timedelta(days=365)
    recent = (known["start"] >= year_ago).to_numpy()
    pause_from = previous_end.where(previous_end > year_ago, year_ago)
    paused = ((known["start"] - pause_from) / pd.Timedelta(days=1)).where(~continues & same)
    grouped = known.assign(
        _change=continues & recent,
        _paused=paused.clip(lower=0).fillna(0.0),
    ).groupby("customer_id", sort=False)
    last = grouped.tail(1).set_index("customer_id")
    running = last["end"].isna().to_numpy()
    elapsed = periods_elapsed(last["start"].to_numpy(), cutoff, last["_months"].to_numpy())
    next_bill = add_months(last["start"].to_numpy(), (elapsed + 1) * last["_months"].to_numpy())
    days_to_bill = (next_bill - cutoff.to_datetime64()) / np.timedelta64(1, "D")
    out = pd.DataFrame(index=last.index)
    out["subscription_tenure_days"] = (cutoff - grouped["start"].min()) / pd.Timedelta(days=1)
    out["days_to_renewal"] = np.where(running, days_to_bill, np.nan)
    out["periods_paid_in_plan"] = np.where(running, elapsed + 1, np.nan)
    out["on_annual_plan"] = (last["_months"] >= 12).astype(float)
    out["plan_changes_365d"] = grouped["_change"].sum().astype(float)
    if "_monthly" in known:
        previous_monthly = known["_monthly"].shift().where(same)
        down = continues & recent & (known["_monthly"] < previous_monthly - 1e-9).to_numpy()
        out["downgrades_365d"] = pd.Series(down).groupby(ids.to_numpy()).sum().astype(float)
        first = grouped["_monthly"].first()
        with np.errstate(invalid="ignore", divide="ignore"):
            out["price_change"] = np.where(first > 0, last["_monthly"] / first - 1.0, np.nan)
    out["paused_days_365d"] = grouped["_paused"].sum()
    wanted = observable(set(subscriptions.columns))
    result = out.reindex(pd.Index(customers).astype(str))[wanted]
    result.index = customers
    return result.astype(float)


def running_subscribers(subscriptions: pd.DataFrame, cutoff: pd.Timestamp) -> pd.Index:
    """Customers with a subscription covering the cutoff (started before it, not ended
    before it), sorted: customers whatever their last charge."""
    start, end = subscriptions["start"], subscriptions["end"]
    covers = ((start < cutoff) & (end.isna() | (end >= cutoff))).to_numpy()
    ids = subscriptions.loc[covers, "customer_id"].astype(str).unique()
    return pd.Index(sorted(ids), name="customer_id", dtype="str")


def with_subscription_status(
    status: pd.DataFrame, subscriptions: pd.DataFrame, cutoff: pd.Timestamp
) -> pd.DataFrame:
    """``status`` (:func:`features.status.customer_status`) with the subscriptions' word
    where they have one: ``active`` while a subscription runs, ``lapsed`` once the last
    ended. Customers without subscriptions keep the status their rhythm gives.
    ``subscription_ended`` says when a lapsed subscriber's last subscription ended, and
    ``cancel_reason`` what they answered then (models.scoring names their reason by it)."""
    own = subscription_status(subscriptions, cutoff, status.index)
    return with_own_status(status, own).assign(cancel_reason=own["cancel_reason"].to_numpy())


def with_own_status(status: pd.DataFrame, own: pd.DataFrame) -> pd.DataFrame:
    """:func:`with_subscription_status` given each customer's :func:`subscription_status`
    (``own``, indexed like ``status``: computed batch by batch, where the tables are)."""
    known = own["status"].notna().to_numpy()
    return status.assign(
        status=np.where(known, own["status"].to_numpy(), status["status"].to_numpy()),
        subscription_ended=own["ended"].to_numpy(),
    )
