"""The third simulator scenario ("subscription"): plans, usage events, cancellations."""

import pandas as pd
import pytest

from features.contracts import validate_table
from pipelines.catalog import assemble_tables
from simulation.retail import REASON_SHARES, as_of, simulate

END = pd.Timestamp("2025-12-31")


@pytest.fixture(scope="module")
def business():
    return simulate(n_customers=1500, seed=4, scenario="subscription")


def test_same_seed_same_business(business):
    again = simulate(n_customers=1500, seed=4, scenario="subscription")
    for name in ("transactions", "interactions", "customers", "truth", "subscriptions"):
        pd.testing.assert_frame_equal(getattr(business, name), getattr(again, name))


def test_tables_pass_the_contract_and_keep_repeated_events(business):
    read = {
        name: (
            name,
            validate_table(getattr(business, name), name, name, END + pd.Timedelta(days=1)),
        )
        for name in ("transactions", "interactions", "subscriptions")
    }
    read["customers"] = ("customers", validate_table(business.customers, "customers", "c"))
    tables = assemble_tables(read)
    payers = business.interactions["customer_id"].isin(business.transactions["customer_id"])
    assert len(tables.interactions) == int(payers.sum())  # no repeated event dropped
    assert len(tables.subscriptions) == len(business.subscriptions)


def test_the_truth_is_the_subscription_end(business):
    subs, truth = business.subscriptions, business.truth.set_index("customer_id")
    last_end = subs.groupby("customer_id").tail(1).set_index("customer_id")["end"]
    churned = truth["churned"]
    assert (truth.loc[churned, "churn_date"] == last_end.reindex(truth.index[churned])).all()
    assert last_end.reindex(truth.index[~churned]).isna().all()
    shares = truth.loc[churned, "reason"].value_counts(normalize=True)
    assert shares["poor_interaction"] == pytest.approx(REASON_SHARES["poor_interaction"], abs=0.06)
    assert set(subs["billing_period"]) == {"monthly", "annual"}


def test_usage_declines_before_a_cancellation(business):
    truth = business.truth
    first_start = business.subscriptions.groupby("customer_id")["start"].min()
    long_enough = truth["churn_date"] - truth["customer_id"].map(first_start)
    churn = truth.loc[
        truth["churned"]
        & (truth["churn_date"] > pd.Timestamp("2024-01-01"))
        & (long_enough > pd.Timedelta(days=200))
    ]
    ix = business.interactions.merge(churn[["customer_id", "churn_date"]], on="customer_id")
    ix = ix.loc[ix["kind"] == "login"]
    before = (ix["churn_date"] - ix["timestamp"]).dt.days
    last_month = int((before < 30).sum())
    earlier_month = int(((before >= 150) & (before < 180)).sum())
    assert last_month < 0.6 * earlier_month


def test_as_of_hides_ends_not_yet_reached(business):
    cut = as_of(business, "2025-01-01")
    assert (cut.subscriptions["start"] < pd.Timestamp("2025-01-01")).all()
    assert not (cut.subscriptions["end"] >= pd.Timestamp("2025-01-01")).any()
    ended_later = cut.subscriptions["end"].isna() & cut.subscriptions["cancel_reason"].notna()
    assert not ended_later.any()
