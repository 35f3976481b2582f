"""Subscriptions: contract, status, the cancellation label, billing features, leakage."""

import pandas as pd
import pytest

from features.build import build_features
from features.contracts import InputError, validate_table
from features.labels import subscription_end_labels
from features.subscriptions import (
    SUBSCRIPTION_FEATURES,
    add_months,
    running_subscribers,
    subscription_features,
    subscription_status,
)
from models.reasons import load_reason_map
from models.training import LabelScheme, labelled_features
from pipelines.catalog import assemble_tables

CUTOFF = pd.Timestamp("2024-07-01")
IDS = pd.Index(["a", "b", "c", "d"], name="customer_id")


def subs(rows: list[tuple]) -> pd.DataFrame:
    """(customer, start, end or None, amount, billing_period) in validated dtypes."""
    frame = pd.DataFrame(rows, columns=["customer_id", "start", "end", "amount", "billing_period"])
    return frame.astype(
        {
            "customer_id": "str",
            "start": "datetime64[ns]",
            "end": "datetime64[ns]",
            "amount": float,
            "billing_period": "category",
        }
    )


# a: monthly since 2023-01-15, downgraded 2024-03-15, still running
# b: annual since 2023-09-01, renewing 2024-09-01, cancels at that renewal (after the cutoff)
# c: monthly, cancelled 2024-05-20 (before the cutoff)
# d: monthly, paused from 2024-02-10 to 2024-03-01, running again
SUBS = subs(
    [
        ("a", "2023-01-15", "2024-03-15", 24.99, "monthly"),
        ("a", "2024-03-15", None, 9.99, "monthly"),
        ("b", "2023-09-01", "2024-09-01", 99.9, "annual"),
        ("c", "2024-01-20", "2024-05-20", 9.99, "monthly"),
        ("d", "2023-11-10", "2024-02-10", 14.99, "monthly"),
        ("d", "2024-03-01", "2024-08-01", 14.99, "monthly"),
    ]
)


def charges() -> pd.DataFrame:
    """A charge per customer a month before the cutoff and the data running a year on."""
    rows = [(c, CUTOFF - pd.Timedelta(days=40), 10.0) for c in "abcd"]
    rows += [("a", CUTOFF + pd.Timedelta(days=365), 10.0)]
    frame = pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount"])
    return frame.astype({"customer_id": "str"})


# --- the contract ---------------------------------------------------------------------


def _raw(**changes: list) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "customer_id": ["a", "a", "b"],
            "start": ["2024-01-01", "2024-02-01", "2024-01-05"],
            "end": ["2024-02-01", "", None],
            "plan": ["Plus", "basic", "basic"],
            "billing_period": ["monthly", "Monthly", "annual"],
        }
    )
    return frame.assign(**changes)


def test_subscriptions_are_validated_with_a_missing_end_as_running():
    table = validate_table(_raw(), "subscriptions", "subs.csv")
    frame = table.frame
    assert list(frame.columns) == ["customer_id", "start", "end", "plan", "billing_period"]
    assert frame["end"].isna().tolist() == [False, True, True]
    assert frame["billing_period"].astype(str).tolist() == ["monthly", "monthly", "annual"]
    assert table.present_optional == ("plan", "billing_period")


@pytest.mark.parametrize(
    ("changes", "column", "rows", "words"),
    [
        ({"end": ["2023-12-01", "", None]}, "end", [1], "before-start"),
        ({"start": ["2024-01-01", "2024-01-20", "2024-01-05"]}, "start", [2], "overlapping"),
        ({"billing_period": ["monthly", "weekly", "annual"]}, "billing_period", [2], "unknown"),
        ({"start": ["2024-01-01", "", "2024-01-05"]}, "start", [2], "missing"),
    ],
)
def test_bad_subscriptions_name_file_column_and_rows(changes, column, rows, words):
    with pytest.raises(InputError) as caught:
        validate_table(_raw(**changes), "subscriptions", "subs.csv")
    error = caught.value
    assert (error.source, error.column, error.rows) == ("subs.csv", column, rows)
    assert words in str(error)


def test_a_running_period_overlaps_every_later_one():
    raw = _raw(start=["2024-01-01", "2024-03-01", "2024-01-05"], end=["", "2024-04-01", None])
    with pytest.raises(InputError, match="overlapping") as caught:
        validate_table(raw, "subscriptions", "subs.csv")
    assert caught.value.rows == [2]


def test_subscriptions_of_unknown_customers_are_refused():
    tx = validate_table(charges(), "transactions", "tx.csv")
    sub = validate_table(_raw(customer_id=["a", "a", "zz"]), "subscriptions", "subs.csv")
    with pytest.raises(InputError) as caught:
        assemble_tables({"transactions": ("tx.csv", tx), "subscriptions": ("subs.csv", sub)})
    assert (caught.value.source, caught.value.column, caught.value.rows) == (
        "subs.csv",
        "customer_id",
        [3],
    )
    known = validate_table(_raw(), "subscriptions", "subs.csv")
    tables = assemble_tables({"transactions": ("tx.csv", tx), "subscriptions": ("s", known)})
    assert len(tables.subscriptions) == 3


# --- status, label, features ----------------------------------------------------------


def test_add_months_clips_to_the_month_end():
    stamps = pd.to_datetime(["2024-01-31 10:00", "2023-03-15 00:00"]).to_numpy()
    moved = add_months(stamps, [1, 12])
    assert list(pd.DatetimeIndex(moved)) == [
        pd.Timestamp("2024-02-29 10:00"),
        pd.Timestamp("2024-03-15"),
    ]


def test_a_cancellation_is_the_status():
    status = subscription_status(SUBS, CUTOFF, IDS.append(pd.Index(["e"])))
    assert status["status"].tolist()[:4] == ["active", "active", "lapsed", "active"]
    assert pd.isna(status["status"].iloc[4])  # no subscription: the rhythm decides
    assert status.loc["c", "ended"] == pd.Timestamp("2024-05-20")
    assert list(running_subscribers(SUBS, CUTOFF)) == ["a", "b", "d"]


def test_the_label_is_the_subscription_ending_within_the_horizon():
    labels = subscription_end_labels(charges(), SUBS, CUTOFF, pd.Index(["a", "b", "d"]), 90)
    # a runs on; b ends 2024-09-01 (in [07-01, 09-29)); d ends 2024-08-01
    assert labels.tolist() == [0, 1, 1]
    short = subscription_end_labels(charges(), SUBS, CUTOFF, pd.Index(["a", "b", "d"]), 45)
    assert short.tolist() == [0, 0, 1]


def test_a_plan_change_is_not_a_cancellation():
    chained = subs(
        [
            ("a", "2024-01-01", "2024-08-01", 20.0, "monthly"),
            ("a", "2024-08-01", None, 10.0, "monthly"),
        ]
    )
    labels = subscription_end_labels(charges(), chained, CUTOFF, pd.Index(["a"]), 90)
    assert labels.tolist() == [0]


def test_the_label_refuses_an_unobserved_horizon():
    with pytest.raises(ValueError, match="not fully observed"):
        subscription_end_labels(charges().iloc[:4], SUBS, CUTOFF, pd.Index(["a"]), 90)


def test_billing_features_exact_values():
    f = subscription_features(SUBS, CUTOFF, IDS)
    assert list(f.columns) == list(SUBSCRIPTION_FEATURES)
    assert f.loc["a", "subscription_tenure_days"] == (CUTOFF - pd.Timestamp("2023-01-15")).days
    # a: renewals on the 15th, next 2024-07-15; b: annual, next 2024-09-01; c: cancelled
    assert f.loc["a", "days_to_renewal"] == 14
    assert f.loc["b", "days_to_renewal"] == 62
    assert pd.isna(f.loc["c", "days_to_renewal"])
    assert f.loc["a", "periods_paid_in_plan"] == 4  # 03-15, 04-15, 05-15, 06-15
    assert f["on_annual_plan"].tolist() == [0, 1, 0, 0]
    assert f["plan_changes_365d"].tolist() == [1, 0, 0, 0]
    assert f["downgrades_365d"].tolist() == [1, 0, 0, 0]
    assert f.loc["a", "price_change"] == pytest.approx(9.99 / 24.99 - 1)
    assert f["paused_days_365d"].tolist() == [0, 0, 0, 20]


def test_an_end_after_the_cutoff_changes_no_feature():
    tx = charges()
    base = build_features(tx, CUTOFF, subscription_table=SUBS)
    later = SUBS.copy()
    later.loc[1, "end"] = CUTOFF + pd.Timedelta(days=3)  # a cancels after the cutoff
    later.loc[5, "end"] = CUTOFF  # d's end on the cutoff itself
    later = pd.concat([later, subs([("c", "2024-07-02", None, 9.99, "monthly")])])
    pd.testing.assert_frame_equal(build_features(tx, CUTOFF, subscription_table=later), base)
    # the check can fail: an end one second before the cutoff is seen
    earlier = SUBS.copy()
    earlier.loc[1, "end"] = CUTOFF - pd.Timedelta(seconds=1)
    changed = build_features(tx, CUTOFF, subscription_table=earlier)
    assert not changed.equals(base)


def test_training_rows_are_the_subscribed_and_the_label_their_cancellation():
    tx = charges()
    label = LabelScheme().with_subscriptions(SUBS)
    assert label.kind == "subscription" and label.label_days(90) == 90
    assert LabelScheme().with_subscriptions(None) == LabelScheme()
    x, y = labelled_features(tx, CUTOFF, None, None, 90, 365, label=label)
    # c cancelled before the cutoff: a win-back, not a training row
    assert list(x.index) == ["a", "b", "d"]
    assert y.tolist() == [0, 1, 1]


def test_an_annual_subscriber_quiet_for_a_year_is_still_a_customer():
    tx = pd.DataFrame(
        {"customer_id": ["b"], "timestamp": [pd.Timestamp("2023-06-30")], "amount": [99.9]}
    ).astype({"customer_id": "str"})
    plain = build_features(tx, CUTOFF)
    assert plain.empty  # no purchase in the 365-day lookback
    with_subs = build_features(tx, CUTOFF, subscription_table=SUBS)
    assert list(with_subs.index) == ["b"]


def test_every_billing_feature_has_a_reason():
    load_reason_map().check_covers(SUBSCRIPTION_FEATURES)
