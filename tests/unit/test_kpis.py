import math

import pandas as pd
import pytest

from features.kpis import (
    GRIEVANCE_RULE,
    LEAVE_ALONE_RULE,
    RENEWAL_SOON_RULE,
    SEASONAL_GAP_RULE,
    retention_kpis,
    risk_kpis,
)
from models.playbook import GRIEVANCE, LEAVE_ALONE, RENEWAL_SOON, SEASONAL_GAP

CUTOFF = pd.Timestamp("2024-07-01")


def ago(days: float, seconds: int = 0) -> pd.Timestamp:
    return CUTOFF - pd.Timedelta(days=days, seconds=seconds)


def transactions(rows: list[tuple[str, pd.Timestamp, float]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount"])
    return frame.astype({"customer_id": "str", "timestamp": "datetime64[ns]", "amount": float})


# Score date 2024-07-01, 90-day periods:
#   P  = [ago(90), cutoff)       = [2024-04-02, 2024-07-01)
#   P0 = [ago(180), ago(90))     = [2024-01-03, 2024-04-02)
# a: P0 120d; P on two days (60d, 10d)                 -> start, end, retained, repeat
# b: P0 150d only                                      -> start, churned
# c: P0 100d; P 30d and 29.8d (same calendar day, 2024-06-01 00:00 and 04:48),
#    refund -10 at 5d                                  -> start, end, one purchase day
# d: first ever 400d (before P0), back at 45d          -> end, reactivated, not new
# e: first ever 80d, again 20d                         -> end, new, repeat
# f: first ever exactly at ago(90) (P's first instant) -> end, new
# g: P0 on its first instant ago(180) and its last second ago(90) - 1 s -> start, churned
ROWS = [
    ("a", ago(120), 50.0),
    ("a", ago(60), 30.0),
    ("a", ago(10), 20.0),
    ("b", ago(150), 40.0),
    ("c", ago(100), 25.0),
    ("c", ago(30), 25.0),
    ("c", ago(29.8), 15.0),
    ("c", ago(5), -10.0),
    ("d", ago(400), 60.0),
    ("d", ago(45), 60.0),
    ("e", ago(80), 100.0),
    ("e", ago(20), 200.0),
    ("f", ago(90), 70.0),
    ("g", ago(180), 10.0),
    ("g", ago(90, seconds=1), 5.0),
]

EXPECTED = {
    "period_days": 90.0,
    # bought in P0: a, b, c, g
    "customers_at_start": 4.0,
    # bought in P: a, c, d, e, f (c's refund is no purchase, but c bought anyway)
    "customers_at_end": 5.0,
    # first purchase in P: e (80d), f (90d, on the edge)
    "new_customers": 2.0,
    # returning in P but absent in P0: d
    "reactivated_customers": 1.0,
    # (5 - 2) / 4
    "retention_rate": 0.75,
    # b and g of the 4 at start bought nothing in P: 2 / 4
    "churn_rate": 0.5,
    # purchase days in P: a 2, c 1, d 1, e 2, f 1 -> 2 / 5
    "repeat_purchase_rate": 0.4,
    # a 2, c 2, d 1, e 2, f 1 (the refund is not a purchase)
    "purchases": 8.0,
    # a 30 + 20, c 25 + 15 - 10, d 60, e 100 + 200, f 70 = 510
    "revenue": 510.0,
    # e 300 + f 70
    "new_customer_revenue": 370.0,
    # 370 / 510 = 0.7255 > 0.70
    "new_customer_revenue_share": 370.0 / 510.0,
    "new_revenue_warning": 1.0,
}


def assert_kpis(actual: dict[str, float], expected: dict[str, float]) -> None:
    assert set(actual) == set(expected)
    for key, value in expected.items():
        if math.isnan(value):
            assert math.isnan(actual[key]), key
        else:
            assert actual[key] == pytest.approx(value, abs=1e-12), key
        assert isinstance(actual[key], float), key


def test_retention_kpis_on_hand_made_history():
    assert_kpis(retention_kpis(transactions(ROWS), CUTOFF), EXPECTED)


def test_score_date_is_normalised_to_midnight_and_may_be_a_string():
    tx = transactions(ROWS)
    assert_kpis(retention_kpis(tx, "2024-07-01"), EXPECTED)
    assert_kpis(retention_kpis(tx, "2024-07-01 15:30"), EXPECTED)


def test_shorter_period():
    # 60-day periods: P = [ago(60), cutoff), P0 = [ago(120), ago(60))
    # P0 buyers: a (120d, on the edge), c (100d), e (80d), f (90d), g (90d + 1s) -> 5
    # P buyers: a (60d, on the edge; 10d), c, d, e (20d) -> 4; nobody's first purchase is in P
    # churned: f, g -> 2 / 5; reactivated: d
    # purchase days: a 2, c 1, d 1, e 1 -> 1 / 4
    # revenue: a 50, c 30, d 60, e 200 = 340, none of it from new customers
    expected = {
        "period_days": 60.0,
        "customers_at_start": 5.0,
        "customers_at_end": 4.0,
        "new_customers": 0.0,
        "reactivated_customers": 1.0,
        "retention_rate": 4 / 5,
        "churn_rate": 2 / 5,
        "repeat_purchase_rate": 1 / 4,
        "purchases": 6.0,
        "revenue": 340.0,
        "new_customer_revenue": 0.0,
        "new_customer_revenue_share": 0.0,
        "new_revenue_warning": 0.0,
    }
    assert_kpis(retention_kpis(transactions(ROWS), CUTOFF, period_days=60), expected)


def test_known_new_customers_replace_first_purchase_rule():
    # The business says only f is new (b is in the set but did not buy in P, zz never did).
    # new: f -> retention (5 - 1) / 4; new revenue 70 / 510 = 0.137, no warning
    kpis = retention_kpis(transactions(ROWS), CUTOFF, new_customer_ids={"f", "b", "zz"})
    assert_kpis(
        kpis,
        EXPECTED
        | {
            "new_customers": 1.0,
            # e now counts as returning and was not in P0
            "reactivated_customers": 2.0,
            "retention_rate": 1.0,
            "new_customer_revenue": 70.0,
            "new_customer_revenue_share": 70.0 / 510.0,
            "new_revenue_warning": 0.0,
        },
    )


def test_new_revenue_warning_is_strictly_above_seventy_percent():
    # old customer 30 (also in P0), new customer 70: share exactly 0.70 -> no warning
    tx = transactions([("old", ago(100), 5.0), ("old", ago(10), 30.0), ("new", ago(5), 70.0)])
    kpis = retention_kpis(tx, CUTOFF)
    assert kpis["new_customer_revenue_share"] == 0.7
    assert kpis["new_revenue_warning"] == 0.0
    # one more unit from the new customer: 71 / 101 = 0.703 -> warning
    more = pd.concat([tx, transactions([("new", ago(4), 1.0)])], ignore_index=True)
    assert retention_kpis(more, CUTOFF)["new_revenue_warning"] == 1.0


def test_rows_on_or_after_the_score_date_change_nothing():
    late = transactions(
        [
            ("b", CUTOFF, 99.0),  # would un-churn b
            ("z", CUTOFF + pd.Timedelta(hours=1), 500.0),  # would be a new customer
            ("a", CUTOFF + pd.Timedelta(days=30), 10.0),
            ("e", CUTOFF, -300.0),  # a refund of e's revenue
        ]
    )
    with_late = pd.concat([transactions(ROWS), late], ignore_index=True)
    assert_kpis(retention_kpis(with_late, CUTOFF), EXPECTED)


def test_a_row_one_second_before_the_score_date_does_count():
    # the control for the leakage test: the same kind of row, just inside P
    inside = pd.concat(
        [transactions(ROWS), transactions([("b", ago(0, seconds=1), 99.0)])], ignore_index=True
    )
    kpis = retention_kpis(inside, CUTOFF)
    assert kpis["churn_rate"] == 0.25
    assert kpis["revenue"] == 609.0


def test_empty_periods_give_nan_not_division_errors():
    # every purchase is older than P0
    tx = transactions([("a", ago(400), 10.0), ("b", ago(200), 20.0)])
    expected = {
        "period_days": 90.0,
        "customers_at_start": 0.0,
        "customers_at_end": 0.0,
        "new_customers": 0.0,
        "reactivated_customers": 0.0,
        "retention_rate": math.nan,
        "churn_rate": math.nan,
        "repeat_purchase_rate": math.nan,
        "purchases": 0.0,
        "revenue": 0.0,
        "new_customer_revenue": 0.0,
        "new_customer_revenue_share": math.nan,
        "new_revenue_warning": 0.0,
    }
    assert_kpis(retention_kpis(tx, CUTOFF), expected)
    assert_kpis(retention_kpis(tx.iloc[0:0], CUTOFF), expected)


def test_everyone_gone_in_the_last_period():
    # a and b bought in P0 and not since; only a refund lands in P
    tx = transactions([("a", ago(100), 10.0), ("b", ago(170), 20.0), ("a", ago(50), -10.0)])
    kpis = retention_kpis(tx, CUTOFF)
    assert kpis["churn_rate"] == 1.0
    assert kpis["retention_rate"] == 0.0
    assert math.isnan(kpis["repeat_purchase_rate"])
    # net revenue in P is negative: a share of it means nothing
    assert kpis["revenue"] == -10.0
    assert math.isnan(kpis["new_customer_revenue_share"])


SCORED = pd.DataFrame(
    {
        "customer_id": ["a", "b", "c", "d", "e", "f", "g"],
        "expected_value": [100.0, 50.0, 400.0, 20.0, 30.0, 10.0, 5.0],
        "value_at_risk": [90.0, 40.0, 40.0, 1.0, 6.0, 5.0, 4.0],
        "action_rule": [
            "poor_interaction",
            GRIEVANCE,
            LEAVE_ALONE,
            "unidentified",
            GRIEVANCE,
            SEASONAL_GAP,
            RENEWAL_SOON,
        ],
    }
)


def test_risk_kpis():
    listed = SCORED.iloc[[0, 1]]  # the call list: a and b
    assert risk_kpis(SCORED, listed) == {
        "customers_scored": 7.0,
        "customers_at_risk": 2.0,
        "revenue_at_risk": 130.0,  # 90 + 40
        "expected_value_scored": 615.0,  # 100 + 50 + 400 + 20 + 30 + 10 + 5
        "leave_alone_count": 1.0,  # c
        "seasonal_gap_count": 1.0,  # f
        "grievance_count": 2.0,  # b and e, over everyone scored
        "renewal_soon_count": 1.0,  # g
    }


def test_risk_kpis_with_an_empty_list():
    kpis = risk_kpis(SCORED, SCORED.iloc[0:0])
    assert kpis["customers_at_risk"] == 0.0
    assert kpis["revenue_at_risk"] == 0.0


def test_rule_names_are_the_playbooks_and_keep_their_values():
    # the values land in every scores file's action_rule column: renaming one changes
    # the output format
    assert (GRIEVANCE_RULE, LEAVE_ALONE_RULE, SEASONAL_GAP_RULE, RENEWAL_SOON_RULE) == (
        "grievance",
        "leave_alone",
        "seasonal_gap",
        "renewal_soon",
    )
    assert (GRIEVANCE, LEAVE_ALONE, SEASONAL_GAP, RENEWAL_SOON) == (
        GRIEVANCE_RULE,
        LEAVE_ALONE_RULE,
        SEASONAL_GAP_RULE,
        RENEWAL_SOON_RULE,
    )
