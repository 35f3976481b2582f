"""The second simulator scenario ("hazard": competing hazards on latent states), on small runs."""

import numpy as np
import pandas as pd
import pytest

from features.contracts import validate_table
from pipelines.catalog import assemble_tables
from simulation.retail import REASON_SHARES, SCENARIOS, SimulatedBusiness, as_of, simulate

START, END = pd.Timestamp("2023-01-01"), pd.Timestamp("2025-12-31")
TABLES = ("transactions", "interactions", "customers", "truth")


@pytest.fixture(scope="module")
def business() -> SimulatedBusiness:
    return simulate(n_customers=3000, seed=5, scenario="hazard")


def _purchases(business: SimulatedBusiness) -> pd.DataFrame:
    return business.transactions[business.transactions["amount"] > 0]


def _ids(business: SimulatedBusiness, reason: str | None) -> pd.Series:
    """Customers who left for ``reason``; None: customers who stayed."""
    truth = business.truth
    chosen = ~truth["churned"] if reason is None else truth["reason"] == reason
    return truth.loc[chosen, "customer_id"]


def _last_days_before_leaving(
    frame: pd.DataFrame, truth: pd.DataFrame, days: int = 90
) -> pd.DataFrame:
    """Rows of churners in the ``days`` before their churn date."""
    churn_date = frame["customer_id"].map(truth.set_index("customer_id")["churn_date"])
    recent = (frame["timestamp"] < churn_date) & (
        frame["timestamp"] >= churn_date - pd.Timedelta(days=days)
    )
    return frame[recent]


def test_scenarios_are_exposed_and_unknown_ones_rejected():
    assert SCENARIOS == ("retail", "hazard", "subscription")
    with pytest.raises(ValueError, match="retail, hazard, subscription"):
        simulate(100, seed=0, scenario="decline")
    with pytest.raises(ValueError):
        simulate(0, scenario="hazard")
    with pytest.raises(ValueError):
        simulate(10, start="2023-01-01", end="2023-03-01", scenario="hazard")


def test_same_seed_gives_identical_frames_and_another_seed_does_not():
    first, second = (simulate(400, seed=3, scenario="hazard") for _ in range(2))
    for name in TABLES:
        pd.testing.assert_frame_equal(getattr(first, name), getattr(second, name))
    other = simulate(400, seed=4, scenario="hazard")
    assert not first.transactions.equals(other.transactions)


def test_default_scenario_is_retail():
    default, retail = simulate(300, seed=2), simulate(300, seed=2, scenario="retail")
    for name in TABLES:
        pd.testing.assert_frame_equal(getattr(default, name), getattr(retail, name))
    hazard = simulate(300, seed=2, scenario="hazard")
    assert not hazard.truth.equals(default.truth)


def test_columns_and_dtypes_match_the_retail_scenario(business):
    retail = simulate(300, seed=1)
    for name in TABLES:
        frame, reference = getattr(business, name), getattr(retail, name)
        assert list(frame.columns) == list(reference.columns), name
        assert frame.dtypes.equals(reference.dtypes), name


def test_tables_pass_the_input_contract(business):
    # As pipelines.catalog reads them: validated one by one, then the cross-table repairs.
    validated = {}
    for name in ("transactions", "interactions", "customers"):
        not_after = END if name != "customers" else None
        table = validate_table(getattr(business, name), name, source=name, not_after=not_after)
        assert table.warnings == ()  # e.g. no exact duplicate rows
        assert len(table.frame) == len(getattr(business, name))
        validated[name] = (name, table)
    tables = assemble_tables(validated)
    # No refund needed capping; at most customers who never bought lose their contacts.
    assert all("customers who have no transactions" in w for w in tables.warnings)
    assert tables.transactions["amount"].equals(business.transactions["amount"])


def test_values_and_fields_follow_the_documented_sets(business):
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
    assert (tx["quantity"] >= 1).all() and (tx["discount"] >= 0).all()
    assert tx["order_id"].is_unique
    is_issue = ix["kind"].isin(["support_ticket", "complaint", "price_complaint"])
    assert (ix["satisfaction"].notna() == (ix["kind"] == "survey")).all()
    assert ix["satisfaction"].dropna().between(1, 5).all()
    assert (ix["resolved"].notna() == is_issue).all()
    assert (ix["responded"].notna() == (ix["kind"] == "outreach")).all()
    assert (ix["resolution_hours"].notna() == ix["resolved"].fillna(False)).all()


def test_times_are_in_the_period_sorted_and_after_signup(business):
    signup = business.customers.set_index("customer_id")["signup_date"]
    for frame in (business.transactions, business.interactions):
        assert frame["timestamp"].between(START, END).all()
        expected = frame.sort_values(["customer_id", "timestamp"], kind="stable")
        assert frame.index.equals(expected.index)
        assert (frame["timestamp"] >= frame["customer_id"].map(signup)).all()
    assert business.truth["churn_date"].dropna().between(START + pd.Timedelta(days=90), END).all()


def test_nothing_but_unanswered_outreach_on_or_after_the_churn_date(business):
    churn_date = business.truth.set_index("customer_id")["churn_date"]
    tx, ix = business.transactions, business.interactions
    assert not (tx["timestamp"] >= tx["customer_id"].map(churn_date)).any()
    late = ix[ix["timestamp"] >= ix["customer_id"].map(churn_date)]
    assert len(late) > 0
    assert set(late["kind"]) == {"outreach"}
    assert not late["responded"].any()


def test_refunds_never_exceed_an_earlier_purchase(business):
    tx = business.transactions
    refunds = tx[tx["amount"] < 0]
    assert 0.003 <= len(refunds) / len(tx) <= 0.05
    largest_so_far = tx["amount"].clip(lower=0).groupby(tx["customer_id"]).cummax()
    assert (refunds["amount"].abs() <= largest_so_far[refunds.index]).all()
    assert (refunds["amount"].abs() > 0).all()


def test_truth_every_reason_present_and_poor_interaction_the_largest(business):
    truth = business.truth
    churned = truth["churned"]
    assert truth.loc[churned, "churn_date"].notna().all()
    assert truth.loc[~churned, ["churn_date", "reason"]].isna().all().all()
    assert 0.25 <= churned.mean() <= 0.5
    reasons = truth["reason"].dropna().value_counts(normalize=True)
    assert set(reasons.index) == set(REASON_SHARES)
    assert (reasons >= 0.005).all()
    assert reasons.idxmax() == "poor_interaction"
    assert 0.5 <= reasons["poor_interaction"] <= 0.8
    # Different shares than retail: occasional buyers are the largest type.
    assert truth["segment"].value_counts().idxmax() == "occasional"


def test_competitor_offer_leavers_chase_discounts_and_complain_about_price(business):
    purchases, ix, truth = _purchases(business), business.interactions, business.truth
    competitor, stayers = _ids(business, "competitor_offer"), _ids(business, None)
    recent = _last_days_before_leaving(purchases, truth)
    leaver_share = (recent.loc[recent["customer_id"].isin(competitor), "discount"] > 0).mean()
    stayer_share = (purchases.loc[purchases["customer_id"].isin(stayers), "discount"] > 0).mean()
    assert leaver_share > 2 * stayer_share

    complaints = ix[ix["kind"] == "price_complaint"]
    recent = _last_days_before_leaving(complaints, truth)
    leaver_rate = recent["customer_id"].isin(competitor).sum() / len(competitor)  # per 90 days
    stayer_days = (END - business.customers["signup_date"].clip(lower=START)).dt.days[
        business.customers["customer_id"].isin(stayers)
    ]
    stayer_rate = complaints["customer_id"].isin(stayers).sum() / stayer_days.sum() * 90
    assert leaver_rate > 2 * stayer_rate


def test_relocation_leavers_last_buy_away_from_home(business):
    purchases = _purchases(business)
    last = purchases.groupby("customer_id").tail(1).set_index("customer_id")
    home = business.customers.set_index("customer_id")["region"]
    away = (last["region"] != home.reindex(last.index)).astype(float)
    movers = away[away.index.isin(_ids(business, "relocation"))]
    others = away[~away.index.isin(_ids(business, "relocation"))]
    assert len(movers) >= 5
    # Some leave as soon as they move, before buying from the new region at all.
    assert movers.mean() > 0.25
    assert movers.mean() > 4 * others.mean()


def test_poor_interaction_and_financial_distress_leave_their_traces(business):
    ix, truth = business.interactions, business.truth
    issues = ix[ix["kind"].isin(["support_ticket", "complaint"])]
    unresolved = issues[~issues["resolved"].astype(bool)]
    recent = _last_days_before_leaving(unresolved, truth)
    poor = _ids(business, "poor_interaction")
    stayers = _ids(business, None)
    poor_rate = recent["customer_id"].isin(poor).sum() / len(poor)
    stayer_days = (END - business.customers["signup_date"].clip(lower=START)).dt.days[
        business.customers["customer_id"].isin(stayers)
    ]
    stayer_rate = unresolved["customer_id"].isin(stayers).sum() / stayer_days.sum() * 90
    assert poor_rate > 3 * stayer_rate

    purchases = _purchases(business)
    recent = _last_days_before_leaving(purchases, truth, days=120)
    troubled = recent["payment_status"] != "ok"
    distressed = troubled[recent["customer_id"].isin(_ids(business, "financial_distress"))]
    everyday = purchases.loc[purchases["customer_id"].isin(stayers), "payment_status"] != "ok"
    assert distressed.mean() > 2.5 * everyday.mean()


def test_departures_have_no_fixed_lead_time(business):
    # Some leave right after their last purchase, others fade out over months.
    purchases, truth = _purchases(business), business.truth.set_index("customer_id")
    last = purchases.groupby("customer_id")["timestamp"].max()
    silence = (truth["churn_date"] - last).dt.days.dropna()
    assert (silence <= 7).mean() > 0.1
    assert (silence >= 120).mean() > 0.05


def test_as_of_works_on_hazard_output():
    business = simulate(300, seed=9, scenario="hazard")
    day, later = as_of(business, "2024-06-01"), as_of(business, "2024-06-02")
    cutoff = pd.Timestamp("2024-06-01")
    assert (day.transactions["timestamp"] < cutoff).all()
    assert (day.customers["signup_date"] < cutoff).all()
    pd.testing.assert_frame_equal(
        later.transactions.loc[later.transactions["timestamp"] < cutoff].reset_index(drop=True),
        day.transactions,
    )
    assert np.array_equal(day.truth["customer_id"], business.truth["customer_id"])
