"""The NumPy feature path equals the straightforward pandas group-by implementation.

``reference_features`` below is the earlier, obviously-correct pandas version of
:func:`features.build.build_features` (string group-bys, merges, sorts). The fast path
must give the same table, for ``str`` and ``category`` text columns alike, also with
missing optional values, timestamp ties, refund-only and inactive customers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features import interactions as ix
from features import rfm, signals
from features.build import build_features, observable_features
from features.labels import active_customers
from features.windows import as_cutoff, before_cutoff, in_window

TEXT = {
    "transactions": ("category", "channel", "region", "payment_status"),
    "interactions": ("kind", "channel"),
    "customers": ("region",),
}


# --- reference: the pandas group-by implementation the fast path replaced ----------------


def _days_before(cutoff, timestamps):
    return (cutoff - timestamps) / pd.Timedelta(days=1)


def _count(frame, customers):
    return frame.groupby("customer_id").size().reindex(customers, fill_value=0).astype(float)


def _ref_rfm(transactions, cutoff, signup_dates=None):
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
    out["days_since_last_purchase"] = _days_before(cutoff, last)
    out["tenure_days"] = _days_before(cutoff, first)
    out["lifetime_purchases"] = _count(purchases, index)
    out["purchases_30d"] = _count(in_window(purchases, cutoff, 30), index)
    out["purchases_90d"] = _count(in_window(purchases, cutoff, 90), index)
    out["purchases_prior_90d"] = _count(in_window(purchases, cutoff, 180, 90), index)
    out["purchases_365d"] = _count(in_window(purchases, cutoff, 365), index)
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
    out["purchases_same_season_last_year"] = _count(in_window(purchases, cutoff, 365, 275), index)
    months = purchases.assign(month=purchases["timestamp"].dt.month)
    per_month = months.groupby(["customer_id", "month"]).size().rename("n").reset_index()
    busiest = per_month.sort_values(["customer_id", "n"], ascending=[True, False], kind="stable")
    top_two = busiest.groupby("customer_id").head(2).groupby("customer_id")["n"].sum()
    total_n = per_month.groupby("customer_id")["n"].sum()
    out["peak_month_share"] = (top_two / total_n).where(total_n >= 3).reindex(index)
    out["purchase_days"] = days.groupby("customer_id").size().reindex(index).astype(float)
    return out[list(rfm.RFM_FEATURES)]


def _ref_signals(transactions, cutoff, customers, home_regions=None):
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
        out["failed_payments_180d"] = _count(window.loc[status == "failed"], customers)
        out["late_payments_180d"] = _count(window.loc[status == "late"], customers)
    out["refunds_180d"] = _count(window.loc[window["amount"] < 0], customers)
    return out[signals.observable(columns)]


def _ref_interactions(interactions, cutoff, customers):
    kind = interactions["kind"]
    tickets = interactions.loc[kind == "support_ticket"]
    complaints = interactions.loc[kind == "complaint"]
    grievances = interactions.loc[kind.isin(ix.GRIEVANCE_KINDS)]
    out = pd.DataFrame(index=customers)
    out["tickets_90d"] = _count(in_window(tickets, cutoff, 90), customers)
    out["tickets_365d"] = _count(in_window(tickets, cutoff, 365), customers)
    out["complaints_90d"] = _count(in_window(complaints, cutoff, 90), customers)
    out["complaints_365d"] = _count(in_window(complaints, cutoff, 365), customers)
    out["price_complaints_180d"] = _count(
        in_window(interactions.loc[kind == "price_complaint"], cutoff, 180), customers
    )
    last_contact = interactions.groupby("customer_id")["timestamp"].max()
    out["days_since_last_contact"] = _days_before(cutoff, last_contact).reindex(customers)
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
        out["unresolved_30d"] = _count(in_window(unresolved, cutoff, 30), customers)
        out["unresolved_90d"] = _count(in_window(unresolved, cutoff, 90), customers)
        raised_90d = _count(in_window(grievances, cutoff, 90), customers)
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
        out["outreach_ignored_90d"] = _count(ignored, customers)
    return out[ix.observable(columns)]


def reference_features(transactions, cutoff, interactions=None, customers=None, lookback_days=365):
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
    parts = [_ref_rfm(tx, cutoff, signup).reindex(active), _ref_signals(tx, cutoff, active, home)]
    if interactions is not None:
        inter = before_cutoff(interactions, cutoff)
        inter = inter.loc[inter["customer_id"].isin(active)]
        parts.append(_ref_interactions(inter, cutoff, active))
    features = pd.concat(parts, axis=1).astype(float)
    if transactions["timestamp"].min() > cutoff - pd.Timedelta(days=365):
        features["purchases_same_season_last_year"] = float("nan")
    columns = observable_features(
        set(transactions.columns), None if interactions is None else set(interactions.columns)
    )
    return features[columns]


# --- inputs ----------------------------------------------------------------------------


def as_categories(frame: pd.DataFrame | None, table: str, reverse: bool = False):
    """The text columns as ``category`` (optionally in reverse alphabetical order)."""
    if frame is None:
        return None
    frame = frame.copy()
    for column in TEXT[table]:
        if column in frame:
            labels = sorted(frame[column].dropna().unique(), reverse=reverse)
            frame[column] = frame[column].astype(pd.CategoricalDtype(labels))
    return frame


@pytest.fixture(scope="module")
def business():
    from pipelines.simulate import simulate

    return simulate(n_customers=600, seed=11)


def with_gaps(business, seed: int = 5) -> dict[str, pd.DataFrame]:
    """The simulated tables with missing optional values, timestamp ties, refunds only,
    extra customers without interactions and ties between home regions."""
    rng = np.random.default_rng(seed)
    tx = business.transactions.copy()
    inter = business.interactions.copy()
    customers = business.customers.copy()
    for column in ("quantity", "discount", "category", "channel", "region", "payment_status"):
        tx.loc[rng.random(len(tx)) < 0.05, column] = np.nan
    # same-second twins with other regions and categories: ties broken by row order
    twins = tx.sample(frac=0.05, random_state=seed).assign(
        region=lambda f: f["region"].sample(frac=1, random_state=1).to_numpy(),
        category=lambda f: f["category"].sample(frac=1, random_state=2).to_numpy(),
    )
    tx = pd.concat([tx, twins], ignore_index=True)
    tx = tx.sample(frac=1, random_state=seed).reset_index(drop=True)  # unsorted rows
    refund_only = tx.iloc[:3].assign(customer_id="refund-only", amount=-5.0)
    tx = pd.concat([tx, refund_only], ignore_index=True)
    customers.loc[rng.random(len(customers)) < 0.2, "region"] = np.nan
    customers.loc[rng.random(len(customers)) < 0.2, "signup_date"] = pd.NaT
    inter.loc[rng.random(len(inter)) < 0.05, "resolved"] = pd.NA
    inter = inter.loc[~inter["customer_id"].isin(customers["customer_id"].iloc[::7])]
    return {"transactions": tx, "interactions": inter, "customers": customers}


def assert_same(fast: pd.DataFrame, reference: pd.DataFrame) -> None:
    assert len(fast) > 50
    pd.testing.assert_frame_equal(fast, reference, check_exact=False, rtol=1e-9)


CUTOFFS = ["2024-03-15", "2025-06-01"]


# --- tests -----------------------------------------------------------------------------


@pytest.mark.parametrize("cutoff", CUTOFFS)
@pytest.mark.parametrize("text", ["str", "category"])
def test_build_features_equals_reference_on_simulated_data(business, cutoff, text):
    tables = {
        "transactions": business.transactions,
        "interactions": business.interactions,
        "customers": business.customers,
    }
    reference = reference_features(tables["transactions"], cutoff, **_rest(tables))
    if text == "category":
        tables = {name: as_categories(frame, name) for name, frame in tables.items()}

    assert_same(build_features(tables["transactions"], cutoff, **_rest(tables)), reference)


@pytest.mark.parametrize("text", ["str", "category", "category-reversed"])
def test_build_features_equals_reference_with_missing_values_and_ties(business, text):
    tables = with_gaps(business)
    cutoff = CUTOFFS[1]
    reference = reference_features(tables["transactions"], cutoff, **_rest(tables))
    if text != "str":
        reverse = text == "category-reversed"
        tables = {name: as_categories(frame, name, reverse) for name, frame in tables.items()}

    assert_same(build_features(tables["transactions"], cutoff, **_rest(tables)), reference)


@pytest.mark.parametrize(
    "drop_tx, drop_ix, tables",
    [
        (["category", "region", "discount"], ["resolved", "satisfaction"], "all"),
        (["quantity", "channel", "payment_status"], ["resolution_hours", "responded"], "all"),
        (["category", "channel", "region", "payment_status"], [], "no-interactions"),
        ([], [], "no-customers"),
    ],
)
def test_build_features_equals_reference_with_fewer_columns_or_tables(
    business, drop_tx, drop_ix, tables
):
    cutoff = CUTOFFS[1]
    tx = with_gaps(business)["transactions"].drop(columns=drop_tx)
    inter = None if tables == "no-interactions" else business.interactions.drop(columns=drop_ix)
    customers = None if tables == "no-customers" else business.customers

    assert_same(
        build_features(tx, cutoff, inter, customers),
        reference_features(tx, cutoff, inter, customers),
    )


def test_feature_families_called_directly_equal_reference(business):
    cutoff = as_cutoff(CUTOFFS[1])
    tables = with_gaps(business)
    tx = before_cutoff(tables["transactions"], cutoff)  # includes inactive customers
    inter = before_cutoff(tables["interactions"], cutoff)
    customers = pd.Index(sorted(set(tx["customer_id"]) | {"nobody"}), name="customer_id")
    home = tables["customers"].set_index("customer_id")["region"]
    signup = tables["customers"].set_index("customer_id")["signup_date"]

    pd.testing.assert_frame_equal(
        rfm.rfm_features(tx, cutoff, signup), _ref_rfm(tx, cutoff, signup), rtol=1e-9
    )
    pd.testing.assert_frame_equal(
        signals.signal_features(tx, cutoff, customers, home),
        _ref_signals(tx, cutoff, customers, home),
        rtol=1e-9,
    )
    pd.testing.assert_frame_equal(
        ix.interaction_features(inter, cutoff, customers),
        _ref_interactions(inter, cutoff, customers),
        rtol=1e-9,
    )


def test_microsecond_timestamps_give_the_same_table(business):
    tables = with_gaps(business)
    cutoff = CUTOFFS[1]
    reference = reference_features(tables["transactions"], cutoff, **_rest(tables))
    for name in ("transactions", "interactions"):
        tables[name] = tables[name].astype({"timestamp": "datetime64[us]"})

    assert_same(build_features(tables["transactions"], cutoff, **_rest(tables)), reference)


@pytest.mark.parametrize("cutoff", ["2030-01-01", "2020-01-01"], ids=["after", "before"])
def test_no_active_customer_gives_an_empty_table(business, cutoff):
    # long after the data nobody bought in the last year; before it nobody bought at all
    tables = {
        "transactions": business.transactions,
        "interactions": business.interactions,
        "customers": business.customers,
    }
    fast = build_features(tables["transactions"], cutoff, **_rest(tables))

    assert fast.empty
    pd.testing.assert_frame_equal(
        fast, reference_features(tables["transactions"], cutoff, **_rest(tables))
    )


def _rest(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    return {"interactions": tables["interactions"], "customers": tables["customers"]}
