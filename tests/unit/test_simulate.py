"""Structural and behavioural checks of the demo-data simulator, on real (small) runs."""

import numpy as np
import pandas as pd
import pytest

from simulation.retail import (
    CUSTOMER_TYPES,
    REASON_SHARES,
    SEASON_WINDOWS,
    SimulatedBusiness,
    simulate,
)

START, END = pd.Timestamp("2023-01-01"), pd.Timestamp("2025-12-31")


@pytest.fixture(scope="module")
def business() -> SimulatedBusiness:
    return simulate(n_customers=2000, seed=7)


def _purchases(business: SimulatedBusiness) -> pd.DataFrame:
    return business.transactions[business.transactions["amount"] > 0]


def test_same_seed_gives_identical_frames():
    first, second = simulate(500, seed=3), simulate(500, seed=3)
    for name in ("transactions", "interactions", "customers", "truth"):
        pd.testing.assert_frame_equal(getattr(first, name), getattr(second, name))


def test_different_seed_gives_different_data():
    first, second = simulate(500, seed=3), simulate(500, seed=4)
    assert not first.transactions.equals(second.transactions)
    assert not first.truth.equals(second.truth)


def test_columns_and_dtypes(business):
    expected = {
        "transactions": {
            "customer_id": "str",
            "timestamp": "datetime64[ns]",
            "amount": "float64",
            "order_id": "str",
            "quantity": "int64",
            "category": "str",
            "discount": "float64",
            "channel": "str",
            "region": "str",
            "payment_status": "str",
        },
        "interactions": {
            "customer_id": "str",
            "timestamp": "datetime64[ns]",
            "kind": "str",
            "channel": "str",
            "satisfaction": "float64",
            "resolved": "boolean",
            "resolution_hours": "float64",
            "responded": "boolean",
        },
        "customers": {"customer_id": "str", "signup_date": "datetime64[ns]", "region": "str"},
        "truth": {
            "customer_id": "str",
            "churned": "bool",
            "churn_date": "datetime64[ns]",
            "reason": "str",
            "segment": "str",
        },
    }
    for name, columns in expected.items():
        frame = getattr(business, name)
        assert list(frame.columns) == list(columns), name
        for column, dtype in columns.items():
            if dtype == "str":
                assert pd.api.types.is_string_dtype(frame[column]), (name, column)
            else:
                assert frame[column].dtype == dtype, (name, column)


def test_categorical_values_are_from_the_documented_sets(business):
    tx, ix = business.transactions, business.interactions
    assert set(tx["channel"]) == {"store", "online", "phone"}
    assert set(tx["payment_status"]) == {"ok", "failed", "late"}
    assert set(ix["channel"]) == {"email", "phone", "chat"}
    assert set(ix["kind"]) == {
        "support_ticket",
        "complaint",
        "survey",
        "outreach",
        "price_complaint",
    }
    assert (tx["quantity"] >= 1).all()
    assert (tx["discount"] >= 0).all()


def test_interaction_fields_are_set_only_where_they_apply(business):
    ix = business.interactions
    is_issue = ix["kind"].isin(["support_ticket", "complaint", "price_complaint"])
    assert (ix["satisfaction"].notna() == (ix["kind"] == "survey")).all()
    assert ix["satisfaction"].dropna().between(1, 5).all()
    assert (ix["resolved"].notna() == is_issue).all()
    assert (ix["responded"].notna() == (ix["kind"] == "outreach")).all()
    # Resolution time exists exactly for resolved issues.
    assert (ix["resolution_hours"].notna() == ix["resolved"].fillna(False)).all()


def test_all_timestamps_fall_in_the_period(business):
    for frame in (business.transactions, business.interactions):
        assert frame["timestamp"].between(START, END).all()
    churn_dates = business.truth["churn_date"].dropna()
    assert churn_dates.between(START + pd.Timedelta(days=180), END).all()
    assert (business.customers["signup_date"] <= END).all()


def test_tables_are_sorted_by_customer_then_time(business):
    for frame in (business.transactions, business.interactions):
        expected = frame.sort_values(["customer_id", "timestamp"], kind="stable")
        assert frame.index.equals(expected.index)


def test_no_activity_before_signup(business):
    signup = business.customers.set_index("customer_id")["signup_date"]
    for frame in (business.transactions, business.interactions):
        assert (frame["timestamp"] >= frame["customer_id"].map(signup)).all()


def test_order_ids_are_unique(business):
    assert business.transactions["order_id"].is_unique


def test_churners_make_no_purchase_on_or_after_churn_date(business):
    churn_date = business.truth.set_index("customer_id")["churn_date"]
    tx = business.transactions
    after_churn = tx["timestamp"] >= tx["customer_id"].map(churn_date)
    assert not after_churn.any()
    # Only (unanswered) marketing outreach reaches them after they left.
    ix = business.interactions
    late_contacts = ix[ix["timestamp"] >= ix["customer_id"].map(churn_date)]
    assert len(late_contacts) > 0
    assert set(late_contacts["kind"]) == {"outreach"}
    assert not late_contacts["responded"].any()


def test_truth_is_consistent(business):
    truth = business.truth
    churned = truth["churned"]
    assert truth.loc[churned, "churn_date"].notna().all()
    assert truth.loc[~churned, "churn_date"].isna().all()
    assert set(truth.loc[churned, "reason"]) <= set(REASON_SHARES)
    assert truth.loc[~churned, "reason"].isna().all()
    assert 0.35 <= churned.mean() <= 0.45


def test_segment_shares_match_the_customer_types(business):
    shares = business.truth["segment"].value_counts(normalize=True)
    n = len(business.truth)
    for segment, profile in CUSTOMER_TYPES.items():
        # Five standard errors of a share estimated from n customers.
        tolerance = 5 * np.sqrt(profile.share * (1 - profile.share) / n)
        assert shares[segment] == pytest.approx(profile.share, abs=tolerance), segment


def test_reason_shares_match_the_literature(business):
    reasons = business.truth["reason"].dropna().value_counts(normalize=True)
    assert 0.60 <= reasons["poor_interaction"] <= 0.76
    assert 0.09 <= reasons["unidentified"] <= 0.19
    assert 0.05 <= reasons["competitor_offer"] <= 0.13
    assert reasons.index.isin(list(REASON_SHARES)).all()


def test_seasonal_customers_buy_only_in_their_season_months(business):
    seasonal_ids = business.truth.loc[business.truth["segment"] == "seasonal", "customer_id"]
    purchases = _purchases(business)
    months = purchases[purchases["customer_id"].isin(seasonal_ids)].groupby("customer_id")[
        "timestamp"
    ]
    window_months = [set(range(first, last + 1)) for first, last in SEASON_WINDOWS.values()]
    assert len(months) > 100
    for customer_id, stamps in months:
        bought_in = set(stamps.dt.month)
        windows_used = [w for w in window_months if w & bought_in]
        assert bought_in <= set().union(*windows_used), customer_id
        assert len(windows_used) <= 2, customer_id


def test_refunds_never_exceed_an_earlier_purchase(business):
    tx = business.transactions
    refunds = tx[tx["amount"] < 0]
    assert 0.003 <= len(refunds) / len(tx) <= 0.03
    # Largest purchase so far, per customer, at each row (refund rows contribute 0).
    largest_so_far = tx["amount"].clip(lower=0).groupby(tx["customer_id"]).cummax()
    assert (refunds["amount"].abs() <= largest_so_far[refunds.index]).all()
    assert (refunds["amount"].abs() > 0).all()


def _share_in_last_days(
    frame: pd.DataFrame, truth: pd.DataFrame, flag: pd.Series, days: int
) -> pd.Series:
    """Mean of ``flag`` per customer over the ``days`` before their churn date."""
    churn_date = frame["customer_id"].map(truth.set_index("customer_id")["churn_date"])
    recent = (frame["timestamp"] < churn_date) & (
        frame["timestamp"] >= churn_date - pd.Timedelta(days=days)
    )
    return flag[recent].groupby(frame.loc[recent, "customer_id"]).mean()


def test_competitor_offer_churners_chase_discounts(business):
    purchases, truth = _purchases(business), business.truth
    discounted = (purchases["discount"] > 0).astype(float)
    # 60 days always lie inside the 60-180 day decline window.
    decline_share = _share_in_last_days(purchases, truth, discounted, days=60)
    competitor_ids = truth.loc[truth["reason"] == "competitor_offer", "customer_id"]
    stayer_ids = truth.loc[~truth["churned"], "customer_id"]
    competitor_share = decline_share[decline_share.index.isin(competitor_ids)].mean()
    stayer_share = discounted[purchases["customer_id"].isin(stayer_ids)].mean()
    assert stayer_share < 0.15
    assert competitor_share > 2.5 * stayer_share


def test_poor_interaction_churners_have_unresolved_issues_but_noisily(business):
    ix, truth = business.interactions, business.truth
    issues = ix[ix["kind"].isin(["support_ticket", "complaint"])]
    unresolved = (~issues["resolved"].astype(bool)).astype(float)
    churn_date = issues["customer_id"].map(truth.set_index("customer_id")["churn_date"])
    last_90_days = (issues["timestamp"] < churn_date) & (
        issues["timestamp"] >= churn_date - pd.Timedelta(days=90)
    )
    poor_ids = truth.loc[truth["reason"] == "poor_interaction", "customer_id"]
    poor_recent = (
        unresolved[last_90_days]
        .groupby(issues.loc[last_90_days, "customer_id"])
        .sum()
        .reindex(poor_ids, fill_value=0.0)
    )
    stayer_ids = truth.loc[~truth["churned"], "customer_id"]
    stayer_unresolved = unresolved[issues["customer_id"].isin(stayer_ids)].sum()
    stayer_days = (
        (END - business.customers["signup_date"].clip(lower=START))
        .dt.days[business.customers["customer_id"].isin(stayer_ids)]
        .sum()
    )
    stayer_per_90_days = stayer_unresolved / stayer_days * 90

    assert poor_recent.mean() > 1.5
    assert stayer_per_90_days < 0.3
    # Not perfectly separable: some poor-interaction churners show nothing, some stayers do.
    assert (poor_recent == 0).any()
    assert stayer_unresolved > 0


def test_invalid_arguments_are_rejected():
    with pytest.raises(ValueError):
        simulate(0)
    with pytest.raises(ValueError):
        simulate(10, start="2023-01-01", end="2023-03-01")


def test_customer_ids_sort_like_customers_for_large_populations():
    ids = simulate(1_000, seed=0).customers["customer_id"]
    assert ids.iloc[0] == "C000001"
    assert ids.is_monotonic_increasing
    assert np.all(ids.str.len() == 7)


def test_as_of_keeps_only_what_was_known_that_morning():
    from simulation.retail import as_of

    business = simulate(n_customers=300, seed=9)
    day = as_of(business, "2024-06-01")
    later = as_of(business, "2024-06-02")
    cutoff = pd.Timestamp("2024-06-01")
    assert (day.transactions["timestamp"] < cutoff).all()
    assert (day.interactions["timestamp"] < cutoff).all()
    assert (day.customers["signup_date"] < cutoff).all()
    # the next morning's feed only adds rows: yesterday's rows are a prefix of today's
    assert len(later.transactions) >= len(day.transactions)
    pd.testing.assert_frame_equal(
        later.transactions.loc[later.transactions["timestamp"] < cutoff].reset_index(drop=True),
        day.transactions,
    )
    pd.testing.assert_frame_equal(day.truth, business.truth)
