import pandas as pd
import pytest

from features.labels import active_customers, churn_labels, label_horizon_end

CUTOFF = pd.Timestamp("2024-07-01")
END = pd.Timestamp("2024-09-29")  # 2024-07-01 + 90d: 30 days to Jul 31, 31 to Aug 31, 29 more


def at(moment: pd.Timestamp, days: float = 0, seconds: int = 0) -> pd.Timestamp:
    return moment + pd.Timedelta(days=days, seconds=seconds)


def transactions(rows: list[tuple[str, pd.Timestamp, float]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount"])
    return frame.astype({"customer_id": "str", "timestamp": "datetime64[ns]", "amount": float})


def test_label_horizon_end():
    assert label_horizon_end("2024-07-01 15:30", 90) == END  # the cutoff is a day
    assert label_horizon_end(CUTOFF, 0) == CUTOFF


def test_active_customers_window_is_start_inclusive_end_exclusive():
    rows = [
        ("e", at(CUTOFF, -365), 1.0),  # exactly cutoff - 365d: active
        ("b", at(CUTOFF, -365, seconds=-1), 1.0),  # one second earlier: not
        ("d", at(CUTOFF, seconds=-1), 1.0),  # last second before the cutoff: active
        ("f", CUTOFF, 1.0),  # on the cutoff: the future, not active
        ("r", at(CUTOFF, -10), -5.0),  # refund only: not a purchase
        ("a", at(CUTOFF, -100), 1.0),
        ("a", at(CUTOFF, -50), 1.0),  # two purchases: listed once
    ]
    tx = transactions(rows)

    result = active_customers(tx, CUTOFF)
    assert list(result) == ["a", "d", "e"]  # sorted
    assert result.name == "customer_id"
    # a shorter lookback: only purchases in [cutoff - 60d, cutoff)
    assert list(active_customers(tx, CUTOFF, lookback_days=60)) == ["a", "d"]
    # a cutoff with a time of day means that day's midnight
    assert list(active_customers(tx, "2024-07-01 18:00")) == ["a", "d", "e"]


def test_churn_labels():
    rows = [
        # all five bought in the year before the cutoff
        ("a", at(CUTOFF, -30), 10.0),
        ("b", at(CUTOFF, -30), 10.0),
        ("c", at(CUTOFF, -30), 10.0),
        ("d", at(CUTOFF, -30), 10.0),
        ("a", CUTOFF, 10.0),  # bought exactly at the cutoff: inside [cutoff, end) -> 0
        ("b", at(END, seconds=-1), 10.0),  # last second of the window -> 0
        ("c", END, 10.0),  # only at cutoff + 90d: just outside -> 1
        ("d", at(CUTOFF, 5), -10.0),  # refund only in the window -> 1
        ("x", at(CUTOFF, -400), 10.0),  # inactive at the cutoff: no label,
        ("x", at(CUTOFF, 10), 10.0),  # even though they came back
    ]
    result = churn_labels(transactions(rows), CUTOFF, horizon_days=90)

    expected = pd.Series(
        [0, 0, 1, 1], index=pd.Index(["a", "b", "c", "d"], name="customer_id"), name="churned"
    )
    pd.testing.assert_series_equal(result, expected)
    assert result.dtype.kind == "i"


def test_churn_labels_ignore_customers_who_first_buy_after_the_cutoff():
    rows = [
        ("a", at(CUTOFF, -1), 10.0),
        ("new", at(CUTOFF, 1), 10.0),
        ("a", at(END, -1), 10.0),  # the data reaches the window's last day
    ]
    result = churn_labels(transactions(rows), CUTOFF, horizon_days=90)

    assert result.to_dict() == {"a": 0}


@pytest.mark.parametrize(
    ("last_row", "raises"),
    [
        (at(END, -1), False),  # data through the window's last day (Sep 28): fully seen
        (at(END, -1, seconds=43200), False),  # noon on that day: the day counts
        (at(END, -1, seconds=-1), True),  # ends on Sep 27 23:59:59: Sep 28 unseen
        (at(CUTOFF, 30), True),  # ends a month into a 90-day window
    ],
)
def test_churn_labels_refuse_a_horizon_past_the_data(last_row, raises):
    rows = [("a", at(CUTOFF, -10), 10.0), ("b", at(CUTOFF, -20), 10.0), ("b", last_row, 10.0)]
    tx = transactions(rows)

    if raises:
        with pytest.raises(ValueError, match="not fully observed"):
            churn_labels(tx, CUTOFF, horizon_days=90)
    else:
        # b's row in the window keeps b; a never returns
        assert churn_labels(tx, CUTOFF, horizon_days=90).to_dict() == {"a": 1, "b": 0}
