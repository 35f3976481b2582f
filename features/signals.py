"""Signals for the loss reasons other than poor interaction, from optional columns.

competitor offer: discount share; business change: category mix and basket size;
relocation: region change and a move to online; financial distress: failed or late
payments and refunds. Each feature exists only when its column does.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.windows import count_per_customer, in_window

# feature -> optional transaction columns it needs
SIGNAL_FEATURES: dict[str, tuple[str, ...]] = {
    "discount_share_90d": ("discount",),
    "discount_share_change_90d": ("discount",),
    "category_shift_90d": ("category",),
    "new_category_share_90d": ("category",),
    "quantity_change_90d": ("quantity",),
    "region_changed": ("region",),
    "online_share_change_90d": ("channel",),
    "failed_payments_180d": ("payment_status",),
    "late_payments_180d": ("payment_status",),
    "refunds_180d": (),
}


def observable(columns: set[str]) -> list[str]:
    """Signal features computable from a transactions table with these columns."""
    return [name for name, needs in SIGNAL_FEATURES.items() if set(needs) <= columns]


def _discount_share(purchases: pd.DataFrame) -> pd.Series:
    """Money off as a share of list price (amount paid + discount)."""
    sums = purchases.groupby("customer_id")[["discount", "amount"]].sum()
    list_price = sums["discount"] + sums["amount"]
    return (sums["discount"] / list_price).where(list_price > 0)


def _mix_shift(recent: pd.DataFrame, prior: pd.DataFrame, column: str) -> pd.Series:
    """Total-variation distance between a customer's recent and prior mix of ``column``.

    0 = same mix, 1 = nothing in common. NaN without purchases in both periods.
    """

    def shares(frame: pd.DataFrame) -> pd.DataFrame:
        counts = frame.groupby(["customer_id", column]).size().unstack(fill_value=0)
        return counts.div(counts.sum(axis=1), axis=0)

    a, b = shares(recent), shares(prior)
    both = a.index.intersection(b.index)
    a, b = a.reindex(index=both).align(b.reindex(index=both), join="outer", fill_value=0.0)
    return 0.5 * (a - b).abs().sum(axis=1)


def signal_features(
    transactions: pd.DataFrame,
    cutoff: pd.Timestamp,
    customers: pd.Index,
    home_regions: pd.Series | None = None,
) -> pd.DataFrame:
    """Reason signals per customer from the optional transaction columns.

    Args:
        transactions: validated transactions, all rows before ``cutoff``.
        cutoff: the cutoff (midnight).
        customers: customer ids to produce rows for.
        home_regions: optional region per customer id from the customers table; without
            it the home region is where the customer bought most before the last 90 days.

    Returns:
        One row per customer in ``customers`` with the observable signal features.
    """
    columns = set(transactions.columns)
    purchases = transactions.loc[transactions["amount"] > 0]
    recent = in_window(purchases, cutoff, 90)
    prior = purchases.loc[purchases["timestamp"] < cutoff - pd.Timedelta(days=90)]
    out = pd.DataFrame(index=customers)

    if "discount" in columns:
        recent_share = _discount_share(recent).reindex(customers)
        out["discount_share_90d"] = recent_share
        out["discount_share_change_90d"] = recent_share - _discount_share(prior).reindex(customers)
    if "category" in columns:
        out["category_shift_90d"] = _mix_shift(recent, prior, "category").reindex(customers)
        seen = prior[["customer_id", "category"]].drop_duplicates().assign(seen=True)
        flagged = recent.merge(seen, on=["customer_id", "category"], how="left")
        has_prior = recent["customer_id"].isin(prior["customer_id"].unique()).to_numpy()
        new_share = (
            flagged.loc[has_prior, "seen"]
            .isna()
            .groupby(flagged.loc[has_prior, "customer_id"])
            .mean()
        )
        out["new_category_share_90d"] = new_share.astype(float).reindex(customers)
    if "quantity" in columns:
        recent_qty = recent.groupby("customer_id")["quantity"].mean()
        prior_qty = prior.groupby("customer_id")["quantity"].mean()
        # log ratio: halving and doubling the basket are equally large changes
        ratio = np.log(recent_qty / prior_qty.reindex(recent_qty.index))
        out["quantity_change_90d"] = ratio.replace([np.inf, -np.inf], np.nan).reindex(customers)
    if "region" in columns:
        out["region_changed"] = _region_changed(purchases, prior, home_regions, customers)
    if "channel" in columns:

        def online_share(frame: pd.DataFrame) -> pd.Series:
            return frame["channel"].eq("online").groupby(frame["customer_id"]).mean()

        change = online_share(recent) - online_share(prior).reindex(online_share(recent).index)
        out["online_share_change_90d"] = change.astype(float).reindex(customers)
    if "payment_status" in columns:
        window = in_window(transactions, cutoff, 180)
        out["failed_payments_180d"] = count_per_customer(
            window.loc[window["payment_status"] == "failed"], customers
        )
        out["late_payments_180d"] = count_per_customer(
            window.loc[window["payment_status"] == "late"], customers
        )
    window = in_window(transactions, cutoff, 180)
    out["refunds_180d"] = count_per_customer(window.loc[window["amount"] < 0], customers)
    return out[observable(columns)]


def _region_changed(
    purchases: pd.DataFrame,
    prior: pd.DataFrame,
    home_regions: pd.Series | None,
    customers: pd.Index,
) -> pd.Series:
    """1 when the latest purchase was made outside the customer's home region."""
    latest = (
        purchases.sort_values(["customer_id", "timestamp"], kind="stable")
        .groupby("customer_id")["region"]
        .last()
    )
    # most frequent earlier region; ties go to the alphabetically first, deterministically
    home = (
        prior.groupby(["customer_id", "region"])
        .size()
        .rename("n")
        .reset_index()
        .sort_values(["customer_id", "n"], ascending=[True, False], kind="stable")
        .drop_duplicates("customer_id")
        .set_index("customer_id")["region"]
    )
    if home_regions is not None:
        home = home_regions.dropna().combine_first(home)
    home = home.reindex(latest.index)
    changed = (latest != home) & home.notna() & latest.notna()
    return changed.astype(float).reindex(customers)
