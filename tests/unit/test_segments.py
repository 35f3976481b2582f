import math

import pandas as pd
import pytest

from features.segments import SEGMENTS, assign_segments

NAN = math.nan
COLUMNS = [
    "lifetime_purchases",
    "peak_month_share",
    "max_gap_days",
    "spend_365d",
    "purchases_365d",
    "satisfaction_mean_365d",
    "tickets_365d",
    "complaints_365d",
    "purchases_90d",
    "gap_std_days",
    "mean_gap_days",
]

# One customer per segment. Each also meets every rule below its own, so the result
# shows which rule wins. spend_365d sorted: 50, 150, 200, 300, 1000, 1000; the 0.9
# quantile sits at position 0.9 * 5 = 4.5, between 1000 and 1000 -> VIP floor 1000.
CUSTOMERS = {
    #      life  peak  maxgap spend  p365 sat   tix cmp p90 gapstd gapmean
    "s": [6.0, 0.8, 150.0, 1000.0, 15.0, NAN, 4.0, 0.0, 1.0, 1.0, 10.0],  # seasonal at edges
    "v": [20.0, 0.5, 40.0, 1000.0, 15.0, 5.0, 4.0, 0.0, 1.0, 1.0, 10.0],  # vip, fan-like
    "f": [20.0, 0.5, 40.0, 300.0, 15.0, 4.5, 2.0, 2.0, 1.0, 1.0, 10.0],  # fan at 4.5
    "c": [8.0, 0.5, 40.0, 200.0, 4.0, 2.0, 3.0, 1.0, 1.0, 5.0, 10.0],  # challenging, steady
    "r": [8.0, 0.5, 40.0, 150.0, 4.0, NAN, 0.0, 0.0, 0.0, 5.9, 10.0],  # regular: cv 0.59
    "o": [2.0, NAN, 30.0, 50.0, 2.0, NAN, 0.0, 0.0, 0.0, 0.0, 30.0],  # occasional
}
EXPECTED = {
    "s": "seasonal",
    "v": "vip",
    "f": "fan",
    "c": "challenging",
    "r": "regular",
    "o": "occasional",
}


def features(changes: dict[str, dict[str, float]] | None = None) -> pd.DataFrame:
    frame = pd.DataFrame.from_dict(CUSTOMERS, orient="index", columns=COLUMNS)
    frame.index.name = "customer_id"
    for customer, values in (changes or {}).items():
        for column, value in values.items():
            frame.loc[customer, column] = value
    return frame


def test_one_customer_per_segment_with_precedence():
    result = assign_segments(features())

    assert result.to_dict() == EXPECTED
    assert set(result) == set(SEGMENTS)
    assert result.name == "segment"
    assert list(result.index) == list(CUSTOMERS)


@pytest.mark.parametrize(
    ("customer", "changes", "segment"),
    [
        # seasonal needs 80%+ in two months, a 150d+ gap and 3+ purchases; else vip
        ("s", {"peak_month_share": 0.79}, "vip"),
        ("s", {"max_gap_days": 149.0}, "vip"),
        ("s", {"lifetime_purchases": 2.0}, "vip"),
        # spend 999: floor = 999 + 0.5 * (1000 - 999) = 999.5 -> not vip -> fan (sat 5)
        ("v", {"spend_365d": 999.0}, "fan"),
        # fan needs satisfaction 4.5+ where surveyed, 15+ purchases; else challenging
        ("f", {"satisfaction_mean_365d": 4.49}, "challenging"),
        ("f", {"satisfaction_mean_365d": NAN}, "fan"),  # no surveys: behaviour decides
        ("f", {"purchases_365d": 14.0}, "challenging"),
        # challenging needs 4+ grievances (3 + 0 = 3 here) and a purchase in 90d
        ("c", {"complaints_365d": 0.0}, "regular"),
        ("c", {"purchases_90d": 0.0}, "regular"),
        ("c", {"tickets_365d": NAN, "complaints_365d": 4.0}, "challenging"),  # NaN -> 0
        # regular needs gap std / mean under 0.6: 6 / 10 = 0.6 is not
        ("r", {"gap_std_days": 6.0}, "occasional"),
        ("r", {"purchases_365d": 3.0}, "occasional"),
        ("r", {"gap_std_days": NAN, "mean_gap_days": NAN}, "occasional"),
        # spend 1000: floor stays 1000 (150, 200, 300, 1000, 1000, 1000) -> vip
        ("o", {"spend_365d": 1000.0}, "vip"),
    ],
)
def test_rule_edges(customer, changes, segment):
    result = assign_segments(features({customer: changes}))

    assert result[customer] == segment
    # the other customers keep theirs
    others = {k: v for k, v in EXPECTED.items() if k != customer}
    assert result.drop(customer).to_dict() == others


def test_segments_from_transaction_only_features():
    # no satisfaction, tickets or complaints columns: fan on behaviour, never challenging
    frame = features().drop(columns=["satisfaction_mean_365d", "tickets_365d", "complaints_365d"])
    result = assign_segments(frame)

    assert result.to_dict() == {**EXPECTED, "c": "regular"}


def test_vip_quantile_and_zero_spend():
    # vip_quantile 0.5: floor = median of 50, 150, 200, 300, 1000, 1000 = (200 + 300) / 2
    result = assign_segments(features(), vip_quantile=0.5)
    assert result.to_dict() == {**EXPECTED, "f": "vip"}

    # nobody spent anything this year: the floor is 0, yet no one is vip
    zero = features().assign(spend_365d=0.0)
    assert assign_segments(zero).to_dict() == {**EXPECTED, "v": "fan"}


def test_empty_features_give_no_segments():
    result = assign_segments(features().iloc[:0])

    assert len(result) == 0
    assert result.name == "segment"
