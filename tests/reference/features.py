"""Plain pandas references for every feature family, the way the fast path must agree.

The earlier, obviously-correct version of :func:`features.build.build_features` (string
group-bys, merges, sorts); ``tests/unit/test_feature_speedups.py`` checks the NumPy path
gives the same table. The RFM family is in :mod:`tests.reference.rfm`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features import interactions as ix
from features import signals
from features.build import observable_features
from features.labels import active_customers
from features.windows import as_cutoff, before_cutoff, in_window

from .rfm import count_rows, days_before, rfm_reference


def signals_reference(
    transactions: pd.DataFrame,
    cutoff: pd.Timestamp,
    customers: pd.Index,
    home_regions: pd.Series | None = None,
) -> pd.DataFrame:
    """The behaviour-change signals of :mod:`features.signals`, by pandas group-bys.

    Args:
        transactions: Rows before ``cutoff``.
        cutoff: The moment the features describe.
        customers: The rows of the result.
        home_regions: A customer's declared region, where known, before the usual one.

    Returns:
        One row per customer, the signals the transaction columns allow.
    """
    columns = set(transactions.columns)
    purchases = transactions.loc[transactions["amount"] > 0]
    recent = in_window(purchases, cutoff, 90)
    prior = purchases.loc[purchases["timestamp"] < cutoff - pd.Timedelta(days=90)]
    out = pd.DataFrame(index=customers)

    def discount_share(frame):
        sums = frame.groupby("customer_id")[["discount", "amount"]].sum()
        list_price = sums["discount"] + sums["amount"]
        return (sums["discount"] / list_price).where(list_price > 0)

    def shares(frame, column):
        counts = frame.groupby(["customer_id", column]).size().unstack(fill_value=0)
        return counts.div(counts.sum(axis=1), axis=0)

    if "discount" in columns:
        recent_share = discount_share(recent).reindex(customers)
        out["discount_share_90d"] = recent_share
        out["discount_share_change_90d"] = recent_share - discount_share(prior).reindex(customers)
    if "category" in columns:
        a, b = shares(recent, "category"), shares(prior, "category")
        both = a.index.intersection(b.index)
        a, b = a.reindex(index=both).align(b.reindex(index=both), join="outer", fill_value=0.0)
        out["category_shift_90d"] = (0.5 * (a - b).abs().sum(axis=1)).reindex(customers)
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
        ratio = np.log(recent_qty / prior_qty.reindex(recent_qty.index))
        out["quantity_change_90d"] = ratio.replace([np.inf, -np.inf], np.nan).reindex(customers)
    if "region" in columns:
        latest = (
            purchases.sort_values(["customer_id", "timestamp"], kind="stable")
            .groupby("customer_id")["region"]
            .last()
        )
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
        out["region_changed"] = changed.astype(float).reindex(customers)
    if "channel" in columns:

        def online_share(frame):
            return frame["channel"].eq("online").groupby(frame["customer_id"]).mean()

        change = online_share(recent) - online_share(prior).reindex(online_share(recent).index)
        out["online_share_change_90d"] = change.astype(float).reindex(customers)
    window = in_window(transactions, cutoff, 180)
    if "payment_status" in columns:
        status = window["payment_status"]
        out["failed_payments_180d"] = count_rows(window.loc[status == "failed"], customers)
        out["late_payments_180d"] = count_rows(window.loc[status == "late"], customers)
    out["refunds_180d"] = count_rows(window.loc[window["amount"] < 0], customers)
    return out[signals.observable(columns)]


def interactions_reference(
    interactions: pd.DataFrame, cutoff: pd.Timestamp, customers: pd.Index
) -> pd.DataFrame:
    """The interaction-quality features of :mod:`features.interactions`, by group-bys.

    Args:
        interactions: Rows before ``cutoff``.
        cutoff: The moment the features describe.
        customers: The rows of the result.

    Returns:
        One row per customer, the features the interaction columns allow.
    """
    kind = interactions["kind"]
    tickets = interactions.loc[kind == "support_ticket"]
    complaints = interactions.loc[kind == "complaint"]
    grievances = interactions.loc[kind.isin(ix.GRIEVANCE_KINDS)]
    out = pd.DataFrame(index=customers)
    out["tickets_90d"] = count_rows(in_window(tickets, cutoff, 90), customers)
    out["tickets_365d"] = count_rows(in_window(tickets, cutoff, 365), customers)
    out["complaints_90d"] = count_rows(in_window(complaints, cutoff, 90), customers)
    out["complaints_365d"] = count_rows(in_window(complaints, cutoff, 365), customers)
    out["price_complaints_180d"] = count_rows(
        in_window(interactions.loc[kind == "price_complaint"], cutoff, 180), customers
    )
    talked = interactions.loc[kind.isin(ix.CONTRACT_KINDS)]
    last_contact = talked.groupby("customer_id")["timestamp"].max()
    out["days_since_last_contact"] = days_before(cutoff, last_contact).reindex(customers)
    columns = set(interactions.columns)
    settled_later = pd.Series(False, index=grievances.index)
    if "resolution_hours" in columns:
        settled_at = grievances["timestamp"] + pd.to_timedelta(
            grievances["resolution_hours"], unit="h"
        )
        settled_later = settled_at >= cutoff
    if "resolved" in columns:
        resolved = grievances["resolved"].fillna(False).astype(bool) & ~settled_later
        unresolved = grievances.loc[~resolved]
        out["unresolved_30d"] = count_rows(in_window(unresolved, cutoff, 30), customers)
        out["unresolved_90d"] = count_rows(in_window(unresolved, cutoff, 90), customers)
        raised_90d = count_rows(in_window(grievances, cutoff, 90), customers)
        out["unresolved_share_90d"] = (out["unresolved_90d"] / raised_90d).where(raised_90d > 0)
    if "resolution_hours" in columns:
        recent = in_window(grievances.loc[~settled_later], cutoff, 180)
        hours = recent.groupby("customer_id")["resolution_hours"].mean()
        out["mean_resolution_hours_180d"] = hours.reindex(customers)
    if "satisfaction" in columns:
        scored = interactions.loc[interactions["satisfaction"].notna()].sort_values(
            ["customer_id", "timestamp"], kind="stable"
        )
        by_customer = scored.groupby("customer_id")["satisfaction"]
        last, count = by_customer.last(), by_customer.size()
        earlier_mean = (by_customer.sum() - last) / (count - 1)
        year = in_window(scored, cutoff, 365).groupby("customer_id")["satisfaction"].mean()
        out["satisfaction_last"] = last.reindex(customers)
        out["satisfaction_mean_365d"] = year.reindex(customers)
        out["satisfaction_trend"] = (last - earlier_mean).where(count > 1).reindex(customers)
    if "responded" in columns:
        outreach = interactions.loc[(kind == "outreach") & interactions["responded"].notna()]
        recent = in_window(outreach, cutoff, 180)
        answered = recent.groupby("customer_id")["responded"].mean().astype(float)
        out["outreach_response_rate_180d"] = answered.reindex(customers)
        ignored = in_window(outreach, cutoff, 90)
        ignored = ignored.loc[ignored["responded"].eq(False)]
        out["outreach_ignored_90d"] = count_rows(ignored, customers)
    return out[ix.observable(columns)]


def reference_features(
    transactions: pd.DataFrame,
    cutoff: str | pd.Timestamp,
    interactions: pd.DataFrame | None = None,
    customers: pd.DataFrame | None = None,
    lookback_days: int = 365,
) -> pd.DataFrame:
    """What :func:`features.build.build_features` returns, the plain pandas way.

    Args:
        transactions: The whole transaction log (rows after ``cutoff`` are dropped).
        cutoff: The moment the features describe.
        interactions: The interaction log, if the business has one.
        customers: The customer table (signup dates, home regions), if any.
        lookback_days: Customers who bought in this many days before ``cutoff`` are scored.

    Returns:
        One row per active customer, the observable features as floats.
    """
    cutoff = as_cutoff(cutoff)
    tx = before_cutoff(transactions, cutoff)
    active = active_customers(tx, cutoff, lookback_days)
    tx = tx.loc[tx["customer_id"].isin(active)]
    signup = home = None
    if customers is not None:
        by_id = customers.drop_duplicates("customer_id").set_index("customer_id")
        if "signup_date" in by_id:
            signup = by_id["signup_date"].where(by_id["signup_date"] < cutoff)
        if "region" in by_id:
            home = by_id["region"]
    parts = [
        rfm_reference(tx, cutoff, signup).reindex(active),
        signals_reference(tx, cutoff, active, home),
    ]
    if interactions is not None:
        inter = before_cutoff(interactions, cutoff)
        inter = inter.loc[inter["customer_id"].isin(active)]
        parts.append(interactions_reference(inter, cutoff, active))
    features = pd.concat(parts, axis=1).astype(float)
    if transactions["timestamp"].min() > cutoff - pd.Timedelta(days=365):
        features["purchases_same_season_last_year"] = float("nan")
    columns = observable_features(
        set(transactions.columns), None if interactions is None else set(interactions.columns)
    )
    return features[columns]
