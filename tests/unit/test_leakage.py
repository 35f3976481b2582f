"""Nothing dated on or after the cutoff may change a feature at that cutoff.

The base frames below are a small but complete history (every optional column, a
customers table, an inactive customer). Each test appends or edits rows and compares
the feature tables: rows from the cutoff on must change nothing, while a row one second
before the cutoff must change something, so the comparison can fail.
"""

import math

import pandas as pd
import pytest

from features.build import build_features

CUTOFF = pd.Timestamp("2024-07-01")
NA = pd.NA
NAN = math.nan
TX_COLUMNS = [
    "customer_id",
    "timestamp",
    "amount",
    "quantity",
    "category",
    "discount",
    "channel",
    "region",
    "payment_status",
]
IX_COLUMNS = [
    "customer_id",
    "timestamp",
    "kind",
    "channel",
    "satisfaction",
    "resolved",
    "resolution_hours",
    "responded",
]


def ago(days: float, seconds: int = 0) -> pd.Timestamp:
    return CUTOFF - pd.Timedelta(days=days, seconds=seconds)


# fmt: off
BASE_TX = [
    # customer, when, amount, quantity, category, discount, channel, region, payment
    ("c1", ago(400), 40.0, 2.0, "tools", 0.0, "store", "north", "ok"),
    ("c1", ago(200), 35.0, 1.0, "tools", 5.0, "store", "north", "ok"),
    ("c1", ago(100), 50.0, 3.0, "paint", 0.0, "online", "north", "ok"),
    ("c1", ago(30), 45.0, 2.0, "tools", 10.0, "online", "north", "late"),
    ("c1", ago(12), -20.0, 1.0, "tools", 0.0, "online", "north", "ok"),
    ("c2", ago(300), 120.0, 4.0, "garden", 0.0, "store", "south", "ok"),
    ("c2", ago(150), 110.0, 4.0, "garden", 20.0, "store", "south", "failed"),
    ("c2", ago(60), 90.0, 2.0, "tools", 30.0, "online", "south", "ok"),
    ("c2", ago(5), 80.0, 1.0, "garden", 40.0, "online", "south", "ok"),
    ("c3", ago(500), 25.0, 1.0, "paint", 0.0, "store", "east", "ok"),
    ("c3", ago(350), 30.0, 1.0, "paint", 0.0, "store", "east", "ok"),
    ("c3", ago(20), 28.0, 1.0, "paint", 0.0, "store", "west", "ok"),
    ("c4", ago(250), 60.0, 2.0, "tools", 0.0, "phone", "north", "ok"),
    ("c4", ago(80), 65.0, 2.0, "tools", 0.0, "phone", "north", "ok"),
    ("c4", ago(80, seconds=-7200), 5.0, 1.0, "paint", 0.0, "phone", "north", "ok"),
    ("c4", ago(0, seconds=3600), 70.0, 3.0, "tools", 0.0, "online", "north", "late"),
    ("c5", ago(364), 15.0, 1.0, "garden", 0.0, "store", "south", "ok"),
    ("old", ago(600), 99.0, 1.0, "tools", 0.0, "store", "north", "ok"),
]
BASE_IX = [
    # customer, when, kind, channel, satisfaction, resolved, hours, responded
    ("c1", ago(40), "support_ticket", "phone", NAN, True, 5.0, NA),
    ("c1", ago(10), "complaint", "email", NAN, NA, NAN, NA),
    ("c1", ago(15), "survey", "email", 3.0, NA, NAN, NA),
    ("c2", ago(50), "price_complaint", "phone", NAN, False, NAN, NA),
    ("c2", ago(100), "survey", "email", 4.0, NA, NAN, NA),
    ("c2", ago(20), "survey", "email", 2.0, NA, NAN, NA),
    ("c2", ago(25), "outreach", "phone", NAN, NA, NAN, True),
    ("c3", ago(70), "outreach", "phone", NAN, NA, NAN, False),
    ("c3", ago(200), "outreach", "email", NAN, NA, NAN, NA),
    ("c4", ago(3), "support_ticket", "chat", 5.0, True, 2.0, NA),
    ("old", ago(5), "complaint", "phone", 1.0, False, NAN, NA),
]
BASE_CUSTOMERS = [
    # customer, signup, home region
    ("c1", ago(500), "north"),
    ("c2", pd.NaT, "south"),
    ("c3", ago(600), None),
    ("c4", ago(10), "north"),  # signup after the first purchase: tenure from purchase
    ("c5", ago(364), "south"),
    ("c9", ago(30), "west"),  # signed up, never bought
    ("old", ago(700), "north"),
]
# fmt: on


def tx_frame(rows: list[tuple]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=TX_COLUMNS)
    text = ("customer_id", "category", "channel", "region", "payment_status")
    return frame.astype({"timestamp": "datetime64[ns]", **{c: "str" for c in text}})


def ix_frame(rows: list[tuple]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=IX_COLUMNS)
    return frame.astype(
        {
            "customer_id": "str",
            "timestamp": "datetime64[ns]",
            "kind": "str",
            "channel": "str",
            "satisfaction": float,
            "resolved": "boolean",
            "resolution_hours": float,
            "responded": "boolean",
        }
    )


def customers_frame(rows: list[tuple]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["customer_id", "signup_date", "region"])
    return frame.astype({"customer_id": "str", "signup_date": "datetime64[ns]", "region": "str"})


def features(tx=BASE_TX, ix=BASE_IX, customers=BASE_CUSTOMERS, cutoff=CUTOFF) -> pd.DataFrame:
    return build_features(
        tx_frame(tx), cutoff, interactions=ix_frame(ix), customers=customers_frame(customers)
    )


def future_rows(when: pd.Timestamp) -> tuple[list[tuple], list[tuple], list[tuple]]:
    """Rows of every kind at ``when``: transactions, interactions, customers."""
    tx = [
        # purchases in new categories, regions and channels, big discounts and baskets
        ("c1", when, 500.0, 50.0, "electronics", 400.0, "online", "far", "failed"),
        ("c2", when, 10.0, 9.0, "toys", 0.0, "store", "north", "late"),
        ("c3", when, 70.0, 3.0, "tools", 70.0, "online", "east", "ok"),
        ("c5", when, 15.0, 1.0, "garden", 0.0, "store", "south", "ok"),
        # refunds and failed payments
        ("c1", when, -45.0, 1.0, "tools", 0.0, "online", "north", "failed"),
        ("c4", when, -70.0, 3.0, "tools", 0.0, "online", "north", "late"),
        # the inactive customer comes back; a brand-new customer appears
        ("old", when, 30.0, 1.0, "tools", 0.0, "store", "north", "ok"),
        ("new", when, 80.0, 2.0, "paint", 5.0, "online", "west", "ok"),
    ]
    ix = [
        ("c1", when, "support_ticket", "phone", NAN, False, NAN, NA),  # unresolved
        ("c2", when, "support_ticket", "chat", NAN, NA, NAN, NA),  # unknown
        ("c3", when, "complaint", "phone", 1.0, False, NAN, NA),
        ("c3", when, "price_complaint", "email", NAN, True, 1.0, NA),
        ("c4", when, "survey", "email", 1.0, NA, NAN, NA),
        ("c5", when, "survey", "email", 5.0, NA, NAN, NA),
        ("c2", when, "outreach", "phone", NAN, NA, NAN, False),
        ("new", when, "complaint", "phone", 1.0, False, NAN, NA),
    ]
    customers = [("new", when, "west")]
    return tx, ix, customers


def with_future(when: pd.Timestamp) -> dict[str, list[tuple]]:
    tx, ix, customers = future_rows(when)
    # c9 has no purchases; its signup moves past the cutoff
    edited = [
        ("c9", when + pd.Timedelta(days=10), "west") if row[0] == "c9" else row
        for row in BASE_CUSTOMERS
    ]
    return {"tx": BASE_TX + tx, "ix": BASE_IX + ix, "customers": edited + customers}


OFFSETS = {
    "at-cutoff-midnight": pd.Timedelta(0),
    "cutoff-plus-1s": pd.Timedelta(seconds=1),
    "cutoff-plus-30d": pd.Timedelta(days=30),
}


def test_base_history_is_rich_enough_to_leak():
    # guards the other tests: the base must give the future something to disturb
    base = features()

    assert list(base.index) == ["c1", "c2", "c3", "c4", "c5"]
    assert base.notna().sum().gt(0).all()  # every feature has a value for someone
    assert base.loc["c4", "days_since_last_purchase"] == pytest.approx(1 / 24)  # 1h before


@pytest.mark.parametrize("offset", list(OFFSETS.values()), ids=list(OFFSETS))
def test_rows_on_or_after_the_cutoff_change_nothing(offset):
    future = with_future(CUTOFF + offset)

    pd.testing.assert_frame_equal(features(**future), features(), check_exact=True)


def test_rows_at_every_future_offset_together_change_nothing():
    tx, ix, customers = list(BASE_TX), list(BASE_IX), list(BASE_CUSTOMERS)
    for offset in OFFSETS.values():
        more_tx, more_ix, _ = future_rows(CUTOFF + offset)
        tx += more_tx
        ix += more_ix
    customers = with_future(CUTOFF)["customers"]

    pd.testing.assert_frame_equal(
        features(tx=tx, ix=ix, customers=customers), features(), check_exact=True
    )


@pytest.mark.parametrize("cutoff", ["2024-07-01 00:00:01", "2024-07-01 18:00", "2024-07-01"])
def test_a_cutoff_with_a_time_of_day_ignores_rows_from_earlier_that_day(cutoff):
    future = with_future(CUTOFF + pd.Timedelta(seconds=1))

    pd.testing.assert_frame_equal(features(**future, cutoff=cutoff), features(), check_exact=True)


def test_transactions_alone_are_cut_at_the_cutoff():
    tx, _, _ = future_rows(CUTOFF)

    pd.testing.assert_frame_equal(
        build_features(tx_frame(BASE_TX + tx), CUTOFF),
        build_features(tx_frame(BASE_TX), CUTOFF),
        check_exact=True,
    )


def test_grievance_closed_after_the_cutoff_looks_as_it_did_on_the_cutoff_day():
    # c1's complaint 10 days before the cutoff: the export made later says it was
    # resolved after 15 days (5 days past the cutoff). On the cutoff day it was open.
    closed_later = [
        ("c1", ago(10), "complaint", "email", NAN, True, 15 * 24.0, NA)
        if row[:3] == ("c1", ago(10), "complaint")
        else row
        for row in BASE_IX
    ]
    result = features(ix=closed_later)

    # c1: the complaint is open at the cutoff, as in the base (resolved=<NA>)
    assert result.loc["c1", "unresolved_30d"] == 1.0
    # c4's ticket 3 days before the cutoff, closed 2 hours later, stays closed
    assert result.loc["c4", "unresolved_30d"] == 0.0
    assert result.loc["c4", "mean_resolution_hours_180d"] == 2.0
    pd.testing.assert_frame_equal(result, features(), check_exact=True)


ONE_SECOND_BEFORE = ago(0, seconds=1)


@pytest.mark.parametrize(
    ("edit", "customer", "feature", "before", "after"),
    [
        # a purchase one second before the cutoff: one more in the last 30 days
        (
            {"tx": [("c1", ONE_SECOND_BEFORE, 10.0, 1.0, "tools", 0.0, "store", "north", "ok")]},
            "c1",
            "purchases_30d",
            1.0,  # the 30-day-old purchase
            2.0,
        ),
        # a failed payment one second before: counted
        (
            {"tx": [("c3", ONE_SECOND_BEFORE, 5.0, 1.0, "paint", 0.0, "store", "east", "failed")]},
            "c3",
            "failed_payments_180d",
            0.0,
            1.0,
        ),
        # a refund one second before: in the spend
        (
            {"tx": [("c5", ONE_SECOND_BEFORE, -15.0, 1.0, "garden", 0.0, "store", "south", "ok")]},
            "c5",
            "spend_365d",
            15.0,
            0.0,
        ),
        # an open ticket one second before
        (
            {"ix": [("c2", ONE_SECOND_BEFORE, "support_ticket", "chat", NAN, False, NAN, NA)]},
            "c2",
            "unresolved_30d",
            0.0,
            1.0,
        ),
        # a survey one second before: the latest score
        (
            {"ix": [("c1", ONE_SECOND_BEFORE, "survey", "email", 1.0, NA, NAN, NA)]},
            "c1",
            "satisfaction_last",
            3.0,
            1.0,
        ),
        # a purchase by a newcomer one second before: they become active
        (
            {"tx": [("new", ONE_SECOND_BEFORE, 80.0, 2.0, "paint", 5.0, "online", "west", "ok")]},
            "new",
            "lifetime_purchases",
            None,  # no row before
            1.0,
        ),
    ],
    ids=["purchase", "failed-payment", "refund", "ticket", "survey", "new-customer"],
)
def test_rows_one_second_before_the_cutoff_do_change_features(
    edit, customer, feature, before, after
):
    base = features()
    changed = features(
        tx=BASE_TX + edit.get("tx", []),
        ix=BASE_IX + edit.get("ix", []),
    )

    if before is None:
        assert customer not in base.index
    else:
        assert base.loc[customer, feature] == before
    assert changed.loc[customer, feature] == after
    with pytest.raises(AssertionError):
        pd.testing.assert_frame_equal(changed, base)


def test_an_earlier_signup_before_the_cutoff_changes_tenure():
    # c5 first bought 364 days ago; a signup 400 days ago makes tenure 400
    customers = [("c5", ago(400), "south") if r[0] == "c5" else r for r in BASE_CUSTOMERS]

    assert features().loc["c5", "tenure_days"] == 364.0
    assert features(customers=customers).loc["c5", "tenure_days"] == 400.0
