"""Lapsed customers: features as of the day they were due back, their reasons, their
churn probability and the win-back list."""

import numpy as np
import pandas as pd
import pytest
from xgboost import XGBClassifier

from features.build import build_features, build_features_as_of
from features.contracts import validate_table
from features.status import customer_status, due_back
from models.playbook import GRIEVANCE, load_playbook, recommend_win_back
from models.reasons import load_reason_map
from models.scoring import AT_RISK, WIN_BACK, score_customers, win_back_list
from models.win_back import lapsed_churn_probability, overdue_band, return_rates

SCORE_DATE = pd.Timestamp("2024-07-01")


def ago(days: float) -> pd.Timestamp:
    return SCORE_DATE - pd.Timedelta(days=days)


def business() -> tuple[pd.DataFrame, pd.DataFrame]:
    """z bought every 30 days until 150 days ago, complaining about prices just before
    the last purchase; the others buy every 30 days and are still here."""
    tx = [("z", ago(d), 50.0) for d in range(450, 149, -30)]  # last purchase 150 days ago
    for name, price in (("a", 40.0), ("b", 60.0), ("c", 30.0)):
        tx += [(name, ago(d), price) for d in range(365, 0, -30)]
    ix = [
        ("z", ago(155), "price_complaint"),
        ("z", ago(152), "price_complaint"),
        ("a", ago(20), "survey"),
    ]
    transactions = pd.DataFrame(tx, columns=["customer_id", "timestamp", "amount"])
    interactions = pd.DataFrame(ix, columns=["customer_id", "timestamp", "kind"])
    return (
        validate_table(transactions, "transactions", "t").frame,
        validate_table(interactions, "interactions", "i").frame,
    )


def test_features_as_of_equal_the_features_at_each_customers_own_date():
    tx, ix = business()
    dates = pd.Series(
        [ago(120), ago(40)], index=pd.Index(["z", "a"], name="customer_id"), name="due_date"
    )

    result = build_features_as_of(tx, dates, ix)

    for customer, date in dates.items():
        alone = build_features(tx, date, ix).loc[customer]
        # month of year moves with the shift: the only feature that reads the calendar
        columns = [c for c in result.columns if c != "peak_month_share"]
        pd.testing.assert_series_equal(
            result.loc[customer, columns], alone[columns], check_names=False
        )
    assert result.loc["z", "price_complaints_180d"] == 2.0
    assert result.loc["z", "days_since_last_purchase"] == 30.0


def test_features_as_of_never_read_a_row_on_or_after_the_customers_date():
    tx, ix = business()
    dates = pd.Series([ago(120)], index=pd.Index(["z"], name="customer_id"))
    later = pd.DataFrame(
        [("z", ago(120), 999.0), ("z", ago(10), 999.0)],
        columns=["customer_id", "timestamp", "amount"],
    )
    more = pd.concat([tx, validate_table(later, "transactions", "t").frame], ignore_index=True)
    noisy = pd.concat(
        [ix, pd.DataFrame({"customer_id": ["z"], "timestamp": [ago(120)], "kind": ["complaint"]})],
        ignore_index=True,
    ).astype(ix.dtypes.to_dict())

    pd.testing.assert_frame_equal(
        build_features_as_of(more, dates, noisy), build_features_as_of(tx, dates, ix)
    )


def test_return_rates_per_overdue_band_shrink_towards_the_overall_rate():
    # band 0: 2 of 4 came back; band 1: 0 of 1; band 2: none seen. Overall 2 / 5 = 0.4
    bands = np.array([0, 0, 0, 0, 1])
    returned = np.array([1, 1, 0, 0, 0])

    rates = return_rates(bands, returned, prior_weight=1.0)

    assert rates == pytest.approx([(2 + 0.4) / 5, (0 + 0.4) / 2, 0.4])
    status = pd.DataFrame({"plausible_gap_days": [10.0, 10.0, 10.0]}, index=["p", "q", "r"])
    silence = pd.Series([12.0, 20.0, 40.0], index=status.index)  # ratios 1.2, 2.0, 4.0
    assert overdue_band(status, silence).tolist() == [0, 1, 2]
    probability = lapsed_churn_probability(status, silence, rates)
    assert probability.tolist() == pytest.approx([1 - 0.48, 1 - 0.2, 1 - 0.4])


def test_win_back_action_by_reason_with_the_apology_first():
    playbook = load_playbook()
    scored = pd.DataFrame({"top_reason": ["relocation", "competitor_offer"]}, index=["m", "n"])
    # n had an unresolved issue when they went quiet: no offer before the apology
    features = pd.DataFrame({"unresolved_30d": [0.0, 1.0]}, index=["m", "n"])

    result = recommend_win_back(scored, features, playbook)

    assert result["action_rule"].tolist() == ["relocation", GRIEVANCE]
    assert result.loc["m", "recommended_action"] == playbook.win_back_actions["relocation"]
    assert result.loc["n", "recommended_action"] == playbook.grievance_action


@pytest.fixture(scope="module")
def model() -> XGBClassifier:
    """Risk rises with price complaints and with a long silence (a made-up rule)."""
    tx, ix = business()
    columns = build_features(tx, SCORE_DATE, ix).columns
    rng = np.random.default_rng(0)
    grid = pd.DataFrame(0.0, index=range(4000), columns=columns)
    grid["price_complaints_180d"] = rng.integers(0, 3, len(grid)).astype(float)
    grid["days_since_last_purchase"] = rng.uniform(0, 300, len(grid))
    label = (grid["price_complaints_180d"] > 0) | (grid["days_since_last_purchase"] > 100)
    return XGBClassifier(n_estimators=30, max_depth=3, random_state=0, n_jobs=1).fit(
        grid, label.astype(int)
    )


def test_a_lapsed_customer_gets_the_reason_from_before_they_went_quiet(model):
    tx, ix = business()
    features = build_features(tx, SCORE_DATE, ix)
    status = customer_status(features)
    status["due_date"] = due_back(features, status, SCORE_DATE)
    lapsed = status["status"].eq("lapsed")
    assert lapsed.index[lapsed].tolist() == ["z"]
    due = build_features_as_of(tx, status.loc[lapsed, "due_date"], ix)

    result = score_customers(
        model,
        features,
        load_reason_map(),
        load_playbook(),
        horizon_days=90,
        model_version="1",
        scored_at=pd.Timestamp("2024-07-01", tz="UTC"),
        status=status,
        due_features=due,
        lapsed_probability=pd.Series([0.9], index=["z"]),
    ).set_index("customer_id")

    z = result.loc["z"]
    assert z["status"] == "lapsed"
    assert z["list"] == WIN_BACK
    assert z["top_reason"] == "competitor_offer"
    assert "2 price complaints in 6 months" in z["top_drivers"]
    # read as of the day z was due back: last purchase 150 days ago + their 30-day rhythm
    assert z["reason_as_of"] == SCORE_DATE - pd.Timedelta(days=120)
    assert z["churn_probability"] == 0.9
    # the value they used to bring, as of that day: 11 purchases of 50 over the 330 days
    # since their first, at that run rate over 90 days
    assert z["expected_value"] == pytest.approx(550 / 330 * 90)
    assert z["recommended_action"] == load_playbook().win_back_actions["competitor_offer"]
    assert set(result.loc[["a", "b", "c"], "status"]) == {"active"}
    assert AT_RISK not in set(result.loc[["z"], "list"])
    assert win_back_list(result.reset_index())["customer_id"].tolist() == ["z"]
