"""The NumPy feature path equals the straightforward pandas group-by implementation.

``reference_features`` (``tests/reference/features.py``) is the earlier, obviously-correct
pandas version of :func:`features.build.build_features` (string group-bys, merges, sorts).
The fast path must give the same table, for ``str`` and ``category`` text columns alike,
also with missing optional values, timestamp ties, refund-only and inactive customers. The
speed benchmark's per-customer RFM reference (``tests/reference/rfm.py``) must agree too.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features import interactions as ix
from features import rfm, signals
from features.build import build_features
from features.labels import active_customers
from features.windows import as_cutoff, before_cutoff
from tests.reference.features import (
    interactions_reference,
    reference_features,
    signals_reference,
)
from tests.reference.rfm import RFM_CORE, customer_rfm, rfm_reference

TEXT = {
    "transactions": ("category", "channel", "region", "payment_status"),
    "interactions": ("kind", "channel"),
    "customers": ("region",),
}


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
    from simulation.retail import simulate

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
        rfm.rfm_features(tx, cutoff, signup), rfm_reference(tx, cutoff, signup), rtol=1e-9
    )
    pd.testing.assert_frame_equal(
        signals.signal_features(tx, cutoff, customers, home),
        signals_reference(tx, cutoff, customers, home),
        rtol=1e-9,
    )
    pd.testing.assert_frame_equal(
        ix.interaction_features(inter, cutoff, customers),
        interactions_reference(inter, cutoff, customers),
        rtol=1e-9,
    )


def test_rfm_core_equals_the_per_customer_reference(business):
    # the speed benchmark times customer_rfm under groupby().apply(); it must compute
    # what the pipeline computes, on the rows the benchmark hands it
    cutoff = as_cutoff(CUTOFFS[1])
    tx = with_gaps(business)["transactions"]
    rows = before_cutoff(tx, cutoff)
    active = active_customers(rows, cutoff)
    rows = rows.loc[rows["customer_id"].isin(active)]
    by_customer = rows.groupby("customer_id")[["timestamp", "amount"]]

    reference = by_customer.apply(customer_rfm, cutoff).reindex(active)
    fast = rfm.rfm_features(rows, cutoff).reindex(active)[list(RFM_CORE)]

    assert len(fast) > 50
    pd.testing.assert_frame_equal(fast, reference, check_names=False, rtol=1e-9)


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
