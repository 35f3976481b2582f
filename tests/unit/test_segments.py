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


# --- subscribers: the billing period is their rhythm ----------------------------------

SUBSCRIPTION_COLUMNS = ["subscription_tenure_days", "days_to_renewal"]
SUBSCRIBERS = {
    # an annual plan paid three times, each in the same month a year apart: the purchase
    # rules alone would call this seasonal
    "annual": [3.0, 1.0, 365.0, 100.0, 1.0, NAN, 0.0, 0.0, 0.0, 0.0, 365.0, 800.0, 40.0],
    # a monthly plan two months old: two purchases, the purchase rules say occasional
    "new": [2.0, 1.0, 31.0, 20.0, 2.0, NAN, 0.0, 0.0, 1.0, 0.0, 31.0, 62.0, 20.0],
    # an annual subscriber with 5 tickets this year, last charge 200 days ago, still on
    "griping": [2.0, 1.0, 365.0, 100.0, 1.0, NAN, 5.0, 0.0, 0.0, 0.0, 365.0, 400.0, 165.0],
    # the same whose subscription ended: a former subscriber, not still subscribed
    "ended": [2.0, 1.0, 365.0, 100.0, 1.0, NAN, 5.0, 0.0, 0.0, 0.0, 365.0, 400.0, NAN],
}


def with_subscribers() -> pd.DataFrame:
    """The six retail customers (no subscription) and the four subscribers above."""
    retail = features().assign(subscription_tenure_days=NAN, days_to_renewal=NAN)
    subscribers = pd.DataFrame.from_dict(
        SUBSCRIBERS, orient="index", columns=COLUMNS + SUBSCRIPTION_COLUMNS
    )
    return pd.concat([retail, subscribers]).rename_axis("customer_id")


def test_subscribers_are_regular_never_seasonal_or_occasional():
    # spend sorted: 20, 50, 100 x 3, 150, 200, 300, 1000, 1000; the 0.9 quantile at
    # position 8.1 is 1000: the VIP floor is unchanged
    result = assign_segments(with_subscribers())

    assert result.to_dict() == {
        **EXPECTED,  # retail customers keep their segments
        "annual": "regular",
        "new": "regular",
        # 4+ grievances and still subscribed, though no charge in 90 days
        "griping": "challenging",
        # no longer subscribed and no purchase in 90 days: not "still buying"
        "ended": "regular",
    }


def test_a_subscriber_can_still_be_vip():
    frame = with_subscribers()
    frame.loc["annual", "spend_365d"] = 1000.0  # floor: 1000 still (the top three tie)

    assert assign_segments(frame)["annual"] == "vip"


def test_subscription_columns_without_subscribers_change_nothing():
    frame = features().assign(subscription_tenure_days=NAN, days_to_renewal=NAN)

    assert assign_segments(frame).to_dict() == EXPECTED
