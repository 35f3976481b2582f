import numpy as np
import pandas as pd
import pytest

from features.build import (
    all_features,
    build_features,
    observable_features,
    unobservable_features,
)
from features.interactions import INTERACTION_FEATURES
from features.rfm import RFM_FEATURES
from features.signals import SIGNAL_FEATURES

CUTOFF = pd.Timestamp("2024-07-01")
TX_REQUIRED = {"customer_id", "timestamp", "amount"}
TX_OPTIONAL = {"quantity", "category", "discount", "channel", "region", "payment_status"}
IX_REQUIRED = {"customer_id", "timestamp", "kind"}
IX_OPTIONAL = {"channel", "satisfaction", "resolved", "resolution_hours", "responded"}
IX_REQUIRED_FEATURES = [
    "tickets_90d",
    "tickets_365d",
    "complaints_90d",
    "complaints_365d",
    "price_complaints_180d",
    "days_since_last_contact",
]


def ago(days: float, seconds: int = 0) -> pd.Timestamp:
    return CUTOFF - pd.Timedelta(days=days, seconds=seconds)


def transactions(optional: bool = False) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "customer_id": ["b", "a", "b", "c", "old", "ref", "fut"],
            "timestamp": [
                ago(10),
                ago(5),
                ago(100),
                ago(365),  # exactly a year: active
                ago(365, seconds=1),  # a year and a second: not active
                ago(3),  # refund only: not active
                CUTOFF,  # first purchase on the cutoff: not active yet
            ],
            "amount": [20.0, 30.0, 10.0, 15.0, 50.0, -10.0, 10.0],
        }
    ).astype({"customer_id": "str", "timestamp": "datetime64[ns]"})
    if optional:
        frame = frame.assign(
            quantity=[2.0, 1.0, 1.0, 3.0, 1.0, 1.0, 1.0],
            category=["tools", "paint", "tools", "tools", "tools", "tools", "tools"],
            discount=[0.0, 10.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            channel=["online", "store", "store", "store", "store", "store", "store"],
            region=["north", "south", "north", "east", "east", "east", "east"],
            payment_status=["ok", "late", "ok", "ok", "ok", "ok", "ok"],
        ).astype({c: "str" for c in ("category", "channel", "region", "payment_status")})
    return frame


def interactions(optional: bool = False) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "customer_id": ["a", "a", "old"],
            "timestamp": [ago(20), ago(4), ago(2)],
            "kind": ["support_ticket", "survey", "complaint"],
        }
    ).astype({"customer_id": "str", "timestamp": "datetime64[ns]", "kind": "str"})
    if optional:
        frame = frame.assign(
            channel=pd.Series(["phone", "email", "phone"], dtype="str"),
            satisfaction=[float("nan"), 4.0, 1.0],
            resolved=pd.array([False, pd.NA, False], dtype="boolean"),
            resolution_hours=[float("nan")] * 3,
            responded=pd.array([pd.NA] * 3, dtype="boolean"),
        )
    return frame


def customers() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": pd.Series(["a", "b", "c", "nobuy"], dtype="str"),
            "signup_date": pd.to_datetime([ago(50), ago(40), pd.NaT, ago(1)]),
            "region": pd.Series(["south", "south", None, "west"], dtype="str"),
        }
    )


def test_transactions_only_gives_rfm_and_refunds():
    result = build_features(transactions(), CUTOFF)

    assert list(result.columns) == list(RFM_FEATURES) + ["refunds_180d"]
    assert list(result.columns) == observable_features(TX_REQUIRED)


def test_all_tables_give_every_feature():
    result = build_features(
        transactions(optional=True),
        CUTOFF,
        interactions=interactions(optional=True),
        customers=customers(),
    )

    assert list(result.columns) == all_features()
    assert all_features() == (
        list(RFM_FEATURES) + list(SIGNAL_FEATURES) + list(INTERACTION_FEATURES)
    )


def test_interactions_with_required_columns_only():
    result = build_features(transactions(), CUTOFF, interactions=interactions())

    assert list(result.columns) == list(RFM_FEATURES) + ["refunds_180d"] + IX_REQUIRED_FEATURES


def test_observable_and_unobservable_features():
    signal_names = [n for n in SIGNAL_FEATURES if n != "refunds_180d"]
    ix_optional_names = [n for n in INTERACTION_FEATURES if n not in IX_REQUIRED_FEATURES]

    assert observable_features(TX_REQUIRED) == list(RFM_FEATURES) + ["refunds_180d"]
    # no interactions table: every interaction feature is missing
    assert unobservable_features(TX_REQUIRED) == signal_names + list(INTERACTION_FEATURES)
    # an interactions table without optional columns: only the optional ones are missing
    assert unobservable_features(TX_REQUIRED, IX_REQUIRED) == signal_names + ix_optional_names
    # one optional column each
    assert unobservable_features(TX_REQUIRED | {"region"}, IX_REQUIRED | {"satisfaction"}) == [
        n for n in signal_names if n != "region_changed"
    ] + [n for n in ix_optional_names if not n.startswith("satisfaction")]
    # complete tables: nothing missing, and the two lists partition all_features()
    assert unobservable_features(TX_REQUIRED | TX_OPTIONAL, IX_REQUIRED | IX_OPTIONAL) == []
    have = observable_features(TX_REQUIRED, IX_REQUIRED)
    missing = unobservable_features(TX_REQUIRED, IX_REQUIRED)
    assert sorted(have + missing) == sorted(all_features())


def test_rows_are_active_customers_sorted_with_float_columns():
    result = build_features(
        transactions(optional=True),
        CUTOFF,
        interactions=interactions(optional=True),
        customers=customers(),
    )

    # "old" (a year and a second ago), "ref" (refund only), "fut" (on the cutoff) and
    # "nobuy" (customers table only) are not active; input order was b, a, c
    assert list(result.index) == ["a", "b", "c"]
    assert result.index.name == "customer_id"
    assert (result.dtypes == "float64").all()
    # a: bought 5 days ago, signed up 50 days ago; b: 10 days ago, first purchase 100
    # days ago (signup 40 days ago is later); c: exactly 365 days ago, no signup known
    assert result["days_since_last_purchase"].tolist() == [5.0, 10.0, 365.0]
    assert result["tenure_days"].tolist() == [50.0, 100.0, 365.0]
    assert result["lifetime_purchases"].tolist() == [1.0, 2.0, 1.0]
    # home region from the customers table: a south -> south (0); b south -> north (1);
    # c: no home in the table -> its most frequent earlier region, east = latest -> 0
    assert result["region_changed"].tolist() == [0.0, 1.0, 0.0]
    # a: the ticket 20 days ago (resolved=False) is open; last contact the survey 4 days ago
    assert result["unresolved_30d"].tolist() == [1.0, 0.0, 0.0]
    assert result["days_since_last_contact"].tolist()[0] == 4.0
    assert result["satisfaction_last"].tolist()[0] == 4.0
    assert result["late_payments_180d"].tolist() == [1.0, 0.0, 0.0]


def test_lookback_days_sets_who_is_active():
    result = build_features(transactions(), CUTOFF, lookback_days=30)

    # only a (5 days) and b (10 days) bought in [cutoff - 30d, cutoff)
    assert list(result.index) == ["a", "b"]
    # b's older purchase still counts in its lifetime features
    assert result.loc["b", "lifetime_purchases"] == 2.0


@pytest.mark.parametrize("cutoff", ["2024-07-01", "2024-07-01 23:59:59", CUTOFF])
def test_cutoff_is_the_midnight_of_its_day(cutoff):
    # "fut" bought at 2024-07-01 00:00: a cutoff later that day still excludes it
    result = build_features(transactions(), cutoff)

    pd.testing.assert_frame_equal(result, build_features(transactions(), CUTOFF))
    assert list(result.index) == ["a", "b", "c"]


def test_same_season_last_year_is_unknown_when_the_data_is_younger_than_a_year():
    tx = pd.DataFrame(
        {
            "customer_id": ["a", "a"],
            "timestamp": pd.to_datetime(["2024-03-01", "2024-06-01"]),
            "amount": [10.0, 20.0],
        }
    )
    # data starts 2024-03-01; a year before 2024-12-01 is 2023-12-02: out of the data
    assert np.isnan(build_features(tx, "2024-12-01").loc["a", "purchases_same_season_last_year"])
    # a year before 2025-03-01 is 2024-03-01, the first day of data: known, and it is 1
    # (the 2024-03-01 purchase falls in [cutoff - 365, cutoff - 275))
    assert build_features(tx, "2025-03-01").loc["a", "purchases_same_season_last_year"] == 1.0
