import math

import pandas as pd
import pytest

from features.rfm import RFM_FEATURES, rfm_features

CUTOFF = pd.Timestamp("2024-07-01")


def ago(days: float, seconds: int = 0) -> pd.Timestamp:
    """The moment ``days`` (plus ``seconds``) before the cutoff."""
    return CUTOFF - pd.Timedelta(days=days, seconds=seconds)


def transactions(rows: list[tuple[str, pd.Timestamp, float]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount"])
    return frame.astype({"customer_id": "str", "timestamp": "datetime64[ns]", "amount": float})


# Customer a: six purchases on five distinct days plus one refund.
#   2023-09-05 (300d)  50    | 2024-06-01 (30d)       20
#   2024-02-02 (150d)  40    | 2024-06-01 12:00 (29.5d) 10   same day as the 30d order
#   2024-04-02 (90d)   30    | 2024-06-21 (10d)       25
#   2024-06-26 (5d)   -15 refund
# Customer b: 2024-04-01 23:59:59 (90d + 1s) 100, 2024-06-11 (20d) 60.
# Customer c: one purchase on 2023-05-28 (400d), 10.
ROWS = [
    ("a", ago(300), 50.0),
    ("a", ago(150), 40.0),
    ("a", ago(90), 30.0),
    ("a", ago(30), 20.0),
    ("a", ago(29.5), 10.0),
    ("a", ago(10), 25.0),
    ("a", ago(5), -15.0),
    ("b", ago(90, seconds=1), 100.0),
    ("b", ago(20), 60.0),
    ("c", ago(400), 10.0),
]

EXPECTED = {
    # last purchase: a 10d (the 5d refund is no visit), b 20d, c 400d
    "days_since_last_purchase": [10.0, 20.0, 400.0],
    # first purchase: a 300d, b 90d + 1s = 90 + 1/86400, c 400d
    "tenure_days": [300.0, 90.0 + 1 / 86400, 400.0],
    # refunds are not purchases: a 6, b 2, c 1
    "lifetime_purchases": [6.0, 2.0, 1.0],
    # a: 30d (exactly on the edge), 29.5d, 10d -> 3; b: 20d -> 1
    "purchases_30d": [3.0, 1.0, 0.0],
    # a: 90d (on the edge, inside), 30d, 29.5d, 10d -> 4; b: 90d + 1s is outside -> 1
    "purchases_90d": [4.0, 1.0, 0.0],
    # (90d, 180d]: a 150d -> 1; b 90d + 1s -> 1
    "purchases_prior_90d": [1.0, 1.0, 0.0],
    # a: all 6; b: 2; c: 400d is outside
    "purchases_365d": [6.0, 2.0, 0.0],
    # a: 30 + 20 + 10 + 25 - 15 (refund) = 70; b: 60
    "spend_90d": [70.0, 60.0, 0.0],
    # a: 40; b: 100
    "spend_prior_90d": [40.0, 100.0, 0.0],
    # a: 50 + 40 + 30 + 20 + 10 + 25 - 15 = 160; b: 100 + 60 = 160
    "spend_365d": [160.0, 160.0, 0.0],
    # a: (50 + 40 + 30 + 20 + 10 + 25) / 6 = 175 / 6; b: 160 / 2; c: 10
    "avg_order_value": [175 / 6, 80.0, 10.0],
    # a: distinct days 300, 150, 90, 30, 10 -> gaps 150, 60, 60, 20 -> mean 290 / 4
    # b: 2024-04-01 -> 2024-06-11 = 71 days; c: one day, no gap
    "mean_gap_days": [72.5, 71.0, math.nan],
    # a: deviations 77.5, -12.5, -12.5, -52.5 -> squares sum 9075 -> / 3 = 3025 -> 55
    # b: a single gap has no spread -> 0
    "gap_std_days": [55.0, 0.0, math.nan],
    "max_gap_days": [150.0, 71.0, math.nan],
    # days_since_last / mean_gap: a 10 / 72.5, b 20 / 71
    "overdue_ratio": [10 / 72.5, 20 / 71, math.nan],
    # purchases_90d - purchases_prior_90d: a 4 - 1, b 1 - 1, c 0 - 0
    "purchase_trend_90d": [3.0, 0.0, 0.0],
    # (spend_90d - spend_prior_90d) / max(|prior|, 1): a 30 / 40, b -40 / 100, c 0 / 1
    "spend_change_90d": [0.75, -0.4, 0.0],
    # [365d, 275d) before the cutoff: a 300d -> 1; c 400d is too early
    "purchases_same_season_last_year": [1.0, 0.0, 0.0],
    # a: months Sep, Feb, Apr, Jun, Jun, Jun -> top two Jun (3) + one (1) = 4 of 6
    # b, c: fewer than 3 purchases
    "peak_month_share": [4 / 6, math.nan, math.nan],
    # distinct purchase days: a 300, 150, 90, 30 (twice), 10 -> 5; b 2; c 1
    "purchase_days": [5.0, 2.0, 1.0],
}


def test_every_rfm_feature_for_three_customers():
    result = rfm_features(transactions(ROWS), CUTOFF)

    expected = pd.DataFrame(EXPECTED, index=pd.Index(["a", "b", "c"], name="customer_id"))
    assert list(result.columns) == list(RFM_FEATURES)
    assert set(EXPECTED) == set(RFM_FEATURES)
    # tight tolerance: 90d + 1s must not pass for 90d
    pd.testing.assert_frame_equal(result, expected, rtol=1e-12)


def test_window_edges_start_inclusive_end_exclusive():
    rows = [
        ("a", ago(90), 1.0),  # exactly cutoff - 90d: inside the 90d window
        ("b", ago(90, seconds=1), 1.0),  # one second earlier: prior window
        ("c", ago(30), 1.0),  # exactly cutoff - 30d: inside 30d and 90d
        ("d", ago(180), 1.0),  # exactly cutoff - 180d: inside the prior 90d
        ("e", ago(180, seconds=1), 1.0),  # one second earlier: in no 90d window
        ("f", ago(365), 1.0),  # exactly cutoff - 365d: inside the year
        ("g", ago(365, seconds=1), 1.0),  # one second earlier: outside the year
        ("h", ago(275), 1.0),  # cutoff - 275d: just after last year's season
        ("i", ago(0, seconds=1), 1.0),  # the last second before the cutoff
    ]
    result = rfm_features(transactions(rows), CUTOFF)

    columns = [
        "purchases_30d",
        "purchases_90d",
        "purchases_prior_90d",
        "purchases_365d",
        "purchases_same_season_last_year",
    ]
    expected = pd.DataFrame(
        [
            [0, 1, 0, 1, 0],  # a
            [0, 0, 1, 1, 0],  # b
            [1, 1, 0, 1, 0],  # c
            [0, 0, 1, 1, 0],  # d
            [0, 0, 0, 1, 0],  # e
            [0, 0, 0, 1, 1],  # f: the season window is [cutoff - 365d, cutoff - 275d)
            [0, 0, 0, 0, 0],  # g
            [0, 0, 0, 1, 0],  # h: cutoff - 275d is the excluded end of that window
            [1, 1, 0, 1, 0],  # i
        ],
        index=pd.Index(list("abcdefghi"), name="customer_id"),
        columns=columns,
        dtype=float,
    )
    pd.testing.assert_frame_equal(result[columns], expected)
    # spend uses the same windows: b's purchase lands in the prior window only
    assert result.loc["b", "spend_90d"] == 0.0
    assert result.loc["b", "spend_prior_90d"] == 1.0
    # one second before the cutoff = 1 / 86400 days
    assert result.loc["i", "days_since_last_purchase"] == pytest.approx(1 / 86400)


def test_tenure_counts_from_the_earlier_of_signup_and_first_purchase():
    rows = [("a", ago(100), 5.0), ("b", ago(100), 5.0), ("c", ago(100), 5.0)]
    signup = pd.Series(
        {
            "a": ago(250),  # signed up before the first purchase -> 250
            "b": ago(40),  # signup after the first purchase -> first purchase, 100
            "c": pd.NaT,  # unknown signup -> first purchase, 100
            "z": ago(999),  # not a buyer: ignored
        }
    )
    result = rfm_features(transactions(rows), CUTOFF, signup_dates=signup)

    assert result["tenure_days"].to_dict() == {"a": 250.0, "b": 100.0, "c": 100.0}
    # signup does not move the purchase-based features
    assert result["days_since_last_purchase"].to_dict() == {"a": 100.0, "b": 100.0, "c": 100.0}


def test_refunds_count_in_spend_but_not_in_purchases():
    rows = [
        ("a", ago(10), 100.0),
        ("a", ago(5), -40.0),  # refund
        ("a", ago(4), 0.0),  # zero row: no visit either
        ("r", ago(3), -20.0),  # refund-only customer: not a buyer at all
    ]
    result = rfm_features(transactions(rows), CUTOFF)

    assert list(result.index) == ["a"]
    assert result.loc["a", "lifetime_purchases"] == 1.0
    assert result.loc["a", "purchases_30d"] == 1.0
    assert result.loc["a", "days_since_last_purchase"] == 10.0  # not 5 or 4
    assert result.loc["a", "spend_90d"] == 60.0  # 100 - 40 + 0
    assert result.loc["a", "spend_365d"] == 60.0
    assert result.loc["a", "avg_order_value"] == 100.0  # refunds are not orders


def test_cadence_uses_distinct_days_and_gap_std_edge_cases():
    rows = [
        # x: three orders on one day, then one more 10 days later -> one gap of 10
        ("x", ago(20, seconds=-3600), 1.0),  # 19d 23h before: same calendar day as 20d
        ("x", ago(20), 1.0),
        ("x", ago(20, seconds=-7200), 1.0),
        ("x", ago(10), 1.0),
        # y: three days -> exactly two gaps, 10 and 30
        ("y", ago(50), 1.0),
        ("y", ago(40), 1.0),
        ("y", ago(10), 1.0),
        # z: two orders on one day -> no gap at all
        ("z", ago(7), 1.0),
        ("z", ago(7, seconds=-60), 1.0),
    ]
    result = rfm_features(transactions(rows), CUTOFF)

    cadence = result[["mean_gap_days", "gap_std_days", "max_gap_days", "overdue_ratio"]]
    # x: one gap of 10 -> mean 10, std 0 by convention, overdue 10 / 10
    assert cadence.loc["x"].tolist() == [10.0, 0.0, 10.0, 1.0]
    # y: gaps 10, 30 -> mean 20; sample std sqrt(((10-20)^2 + (30-20)^2) / 1) = sqrt(200)
    # overdue 10 / 20
    assert cadence.loc["y", "mean_gap_days"] == 20.0
    assert cadence.loc["y", "gap_std_days"] == pytest.approx(math.sqrt(200))
    assert cadence.loc["y", "max_gap_days"] == 30.0
    assert cadence.loc["y", "overdue_ratio"] == 0.5
    # z: one visit day -> no cadence
    assert cadence.loc["z"].isna().all()
    # same-day orders still count as purchases
    assert result.loc["x", "lifetime_purchases"] == 4.0
    assert result.loc["z", "lifetime_purchases"] == 2.0


def test_spend_change_uses_a_floor_of_one_for_tiny_prior_spend():
    rows = [
        ("a", ago(10), 30.0),  # no prior spend: (30 - 0) / max(0, 1) = 30
        ("b", ago(120), 0.5),  # prior 0.5: (10 - 0.5) / max(0.5, 1) = 9.5
        ("b", ago(10), 10.0),
        ("c", ago(120), 50.0),  # prior 50 - 60 refund = -10: (20 - (-10)) / 10 = 3
        ("c", ago(100), -60.0),
        ("c", ago(10), 20.0),
    ]
    result = rfm_features(transactions(rows), CUTOFF)

    assert result["spend_change_90d"].to_dict() == {"a": 30.0, "b": 9.5, "c": 3.0}


def test_peak_month_share_needs_three_purchases():
    rows = [
        # p: two purchases -> NaN even though both are in one month
        ("p", pd.Timestamp("2024-03-01"), 1.0),
        ("p", pd.Timestamp("2024-03-05"), 1.0),
        # q: exactly three, Mar 2023, Mar 2024, Jun 2024 -> all in two months -> 1.0
        ("q", pd.Timestamp("2023-03-10"), 1.0),
        ("q", pd.Timestamp("2024-03-10"), 1.0),
        ("q", pd.Timestamp("2024-06-10"), 1.0),
        # s: four purchases in four months -> 2 / 4
        ("s", pd.Timestamp("2024-01-10"), 1.0),
        ("s", pd.Timestamp("2024-02-10"), 1.0),
        ("s", pd.Timestamp("2024-03-10"), 1.0),
        ("s", pd.Timestamp("2024-04-10"), 1.0),
        # t: refunds do not count: 2 purchases + 1 refund -> NaN
        ("t", pd.Timestamp("2024-01-10"), 1.0),
        ("t", pd.Timestamp("2024-01-11"), 1.0),
        ("t", pd.Timestamp("2024-01-12"), -1.0),
    ]
    result = rfm_features(transactions(rows), CUTOFF)["peak_month_share"]

    assert math.isnan(result["p"])
    assert result["q"] == 1.0
    assert result["s"] == 0.5
    assert math.isnan(result["t"])
