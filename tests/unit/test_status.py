"""Customer status (active / lapsed), the day a customer was due back, and the departure
label the retention model learns: exact values on tiny frames."""

import math

import numpy as np
import pandas as pd
import pytest

from features.labels import departure_labels
from features.status import customer_status, due_back, gamma_quantile

CUTOFF = pd.Timestamp("2024-07-01")
NAN = math.nan
# cv 0.5 -> gamma shape 4: Wilson-Hilferty 95% quantile factor
# (1 - 1/36 + 1.6448536 * sqrt(1/36))^3 = 1.936133
FACTOR_CV_HALF = 1.936133


def test_gamma_quantile_matches_the_exponential_case():
    # cv 1 is the exponential: the exact 95% quantile is mean * ln 20 = 89.87 for mean 30;
    # the cube-root approximation lands within 1%
    approx = gamma_quantile(np.array([30.0]), np.array([1.0]), 0.95)[0]
    assert approx == pytest.approx(30 * math.log(20), rel=0.01)
    assert gamma_quantile(np.array([30.0]), np.array([0.5]), 0.95)[0] == pytest.approx(
        30 * FACTOR_CV_HALF, rel=1e-5
    )


def features() -> pd.DataFrame:
    """Recency and cadence of six customers (as features.build.build_features gives them)."""
    rows = {
        # 11 purchase days every 30 days (sd 15: cv 0.5); 10 days quiet
        "a": (10.0, 30.0, 15.0, 40.0, 11.0, 0.3),
        # the same rhythm, 80 days quiet: past 30 x 1.936 = 58.1
        "b": (80.0, 30.0, 15.0, 40.0, 11.0, 0.3),
        # one purchase 100 days ago: the population's rhythm (mean 30, cv 0.5)
        "c": (100.0, NAN, NAN, NAN, 1.0, NAN),
        # seasonal (90% in two months) with a 250-day off-season: 300 days is past 275
        "d": (300.0, 30.0, 15.0, 250.0, 11.0, 0.9),
        # one purchase 40 days ago: within the population's 58.1
        "e": (40.0, NAN, NAN, NAN, 1.0, NAN),
        # one gap of 90 days, shrunk towards the population's 30 with weight 1/3:
        # mean 50, cv the population's 0.5 -> 96.8; 70 days quiet is fine
        "f": (70.0, 90.0, 0.0, 90.0, 2.0, NAN),
    }
    columns = [
        "days_since_last_purchase",
        "mean_gap_days",
        "gap_std_days",
        "max_gap_days",
        "purchase_days",
        "peak_month_share",
    ]
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=columns)
    return frame.rename_axis("customer_id")


def test_customer_status_exact_values():
    result = customer_status(features())

    assert result["status"].to_dict() == {
        "a": "active",
        "b": "lapsed",
        "c": "lapsed",
        "d": "lapsed",
        "e": "active",
        "f": "active",
    }
    # population: median mean gap of repeat buyers (30, 30, 30, 90) = 30, median cv 0.5
    expected_gap = [30.0, 30.0, 30.0, 30.0, 30.0, 50.0]
    assert result["expected_gap_days"].tolist() == pytest.approx(expected_gap)
    plausible = [30 * FACTOR_CV_HALF] * 3 + [275.0, 30 * FACTOR_CV_HALF, 50 * FACTOR_CV_HALF]
    assert result["plausible_gap_days"].tolist() == pytest.approx(plausible, rel=1e-5)


def test_a_seasonal_customer_inside_their_off_season_is_active():
    frame = features()
    frame.loc["d", "days_since_last_purchase"] = 270.0  # inside 250 x 1.1 = 275

    assert customer_status(frame).loc["d", "status"] == "active"
    # the same gap without the seasonal pattern is far past their rhythm
    frame.loc["d", "peak_month_share"] = 0.3
    assert customer_status(frame).loc["d", "status"] == "lapsed"


def test_a_wider_tail_lapses_sooner():
    frame = features()
    frame.loc["a", "days_since_last_purchase"] = 50.0  # under the 95% quantile 58.1

    assert customer_status(frame).loc["a", "status"] == "active"
    assert customer_status(frame, tail=0.3).loc["a", "status"] == "lapsed"


def test_due_back_is_last_purchase_plus_expected_gap_rounded_up_to_a_day():
    frame = features()
    frame.loc["b", "days_since_last_purchase"] = 80.5  # last purchase 2024-04-11 12:00
    status = customer_status(frame)

    due = due_back(frame, status, CUTOFF)
    # b: 2024-04-11 12:00 + 30 days = 2024-05-11 12:00 -> the next midnight
    assert due["b"] == pd.Timestamp("2024-05-12")
    # a: 10 days quiet, 30 expected: due after the cutoff -> the cutoff itself
    assert due["a"] == CUTOFF
    # d: 300 days ago + 30 = 270 days before the cutoff
    assert due["d"] == CUTOFF - pd.Timedelta(days=270)


def transactions(rows):
    frame = pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount"])
    return frame.astype({"customer_id": "str", "timestamp": "datetime64[ns]", "amount": float})


def test_departure_labels_read_the_confirmation_window_only():
    start = CUTOFF + pd.Timedelta(days=90)  # 2024-09-29
    end = start + pd.Timedelta(days=90)  # 2024-12-28
    tx = transactions(
        [
            ("a", start, 10.0),  # first moment of the confirmation window: stayed
            ("b", CUTOFF + pd.Timedelta(days=30), 10.0),  # bought once more, then left
            ("c", end - pd.Timedelta(seconds=1), 10.0),  # last second: stayed
            ("d", end, 10.0),  # just after: left
            ("e", start + pd.Timedelta(days=5), -10.0),  # a refund is no purchase: left
            ("x", end, 1.0),  # someone else; the data reaches the window's end
        ]
    )
    customers = pd.Index(["a", "b", "c", "d", "e"], name="customer_id")

    result = departure_labels(tx, CUTOFF, customers, horizon_days=90, confirm_days=90)

    assert result.to_dict() == {"a": 0, "b": 1, "c": 0, "d": 1, "e": 1}
    assert result.name == "churned"


def test_departure_labels_refuse_a_confirmation_window_the_data_does_not_cover():
    tx = transactions([("a", CUTOFF + pd.Timedelta(days=170), 10.0)])

    with pytest.raises(ValueError, match="label window is not fully observed"):
        departure_labels(tx, CUTOFF, pd.Index(["a"], name="customer_id"), 90, 90)
