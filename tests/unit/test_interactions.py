import math

import pandas as pd
import pytest

from features.interactions import INTERACTION_FEATURES, interaction_features, observable

CUTOFF = pd.Timestamp("2024-07-01")
NA = pd.NA
NAN = math.nan
CUSTOMERS = pd.Index(["a", "b", "c"], name="customer_id")
REQUIRED_ONLY = [
    "tickets_90d",
    "tickets_365d",
    "complaints_90d",
    "complaints_365d",
    "price_complaints_180d",
    "days_since_last_contact",
]
DTYPES = {
    "customer_id": "str",
    "timestamp": "datetime64[ns]",
    "kind": "str",
    "channel": "str",
    "satisfaction": float,
    "resolved": "boolean",
    "resolution_hours": float,
    "responded": "boolean",
}


def ago(days: float, seconds: int = 0) -> pd.Timestamp:
    return CUTOFF - pd.Timedelta(days=days, seconds=seconds)


def interactions(rows: list[tuple], extra: tuple[str, ...] = ()) -> pd.DataFrame:
    """Rows of (customer_id, timestamp, kind, *extra) in validated dtypes."""
    columns = ["customer_id", "timestamp", "kind", *extra]
    frame = pd.DataFrame(rows, columns=columns)
    return frame.astype({name: DTYPES[name] for name in columns})


def test_counts_and_last_contact_from_required_columns_only():
    rows = [
        ("a", ago(90), "support_ticket"),  # on the 90d edge: inside
        ("a", ago(90, seconds=1), "support_ticket"),  # one second earlier: 365d only
        ("a", ago(365, seconds=1), "support_ticket"),  # outside every window
        ("a", ago(10), "complaint"),
        ("a", ago(180), "price_complaint"),  # on the 180d edge: inside
        ("a", ago(180, seconds=1), "price_complaint"),  # outside
        ("a", ago(3), "survey"),  # latest contact of any kind
        ("b", ago(7), "outreach"),  # contact, but no grievance
    ]
    result = interaction_features(interactions(rows), CUTOFF, CUSTOMERS)

    expected = pd.DataFrame(
        {
            "tickets_90d": [1.0, 0.0, 0.0],
            "tickets_365d": [2.0, 0.0, 0.0],  # 90d and 90d + 1s
            # price complaints are not complaints
            "complaints_90d": [1.0, 0.0, 0.0],
            "complaints_365d": [1.0, 0.0, 0.0],
            "price_complaints_180d": [1.0, 0.0, 0.0],
            # a: survey 3d ago; b: outreach 7d ago; c: never in touch
            "days_since_last_contact": [3.0, 7.0, NAN],
        },
        index=CUSTOMERS,
    )
    pd.testing.assert_frame_equal(result, expected)


def test_usage_events_are_not_contact():
    rows = [
        ("a", ago(40), "outreach"),
        ("a", ago(2), "post"),  # a subscriber using the product is not being talked to
        ("b", ago(1), "like"),
    ]
    contact = interaction_features(interactions(rows), CUTOFF, CUSTOMERS)["days_since_last_contact"]
    assert contact["a"] == 40.0
    assert math.isnan(contact["b"]) and math.isnan(contact["c"])


def test_unresolved_counts_treat_missing_resolution_as_unresolved():
    rows = [
        ("a", ago(10), "support_ticket", NA),  # unknown -> unresolved (30d and 90d)
        ("a", ago(40), "complaint", False),  # unresolved, 90d only
        ("a", ago(50), "price_complaint", True),  # resolved
        ("a", ago(100), "support_ticket", False),  # unresolved but outside 90d
        ("a", ago(5), "survey", NA),  # not a grievance: never unresolved
        ("b", ago(20), "support_ticket", True),
        ("c", ago(20), "outreach", NA),
    ]
    result = interaction_features(interactions(rows, ("resolved",)), CUTOFF, CUSTOMERS)

    # a: unresolved in 30d = the 10d ticket; in 90d = 10d ticket + 40d complaint
    assert result["unresolved_30d"].tolist() == [1.0, 0.0, 0.0]
    assert result["unresolved_90d"].tolist() == [2.0, 0.0, 0.0]
    # share of 90d grievances: a 2 of 3 (10d, 40d, 50d); b 0 of 1; c raised none -> NaN
    share = result["unresolved_share_90d"]
    assert share["a"] == 2 / 3
    assert share["b"] == 0.0
    assert math.isnan(share["c"])


def test_mean_resolution_hours_over_grievances_in_180_days():
    rows = [
        ("a", ago(10), "support_ticket", 4.0),
        ("a", ago(100), "complaint", 30.0),
        ("a", ago(170), "support_ticket", NAN),  # no hours recorded: skipped
        ("a", ago(181), "price_complaint", 1000.0),  # outside 180d
        ("a", ago(5), "survey", 99.0),  # not a grievance
        ("b", ago(5), "survey", 3.0),
    ]
    result = interaction_features(interactions(rows, ("resolution_hours",)), CUTOFF, CUSTOMERS)

    # a: (4 + 30) / 2 = 17; b and c raised no grievance
    hours = result["mean_resolution_hours_180d"]
    assert hours["a"] == 17.0
    assert hours[["b", "c"]].isna().all()


def test_satisfaction_last_mean_and_trend():
    # given newest first: the features must order by time, not by row
    rows = [
        ("a", ago(1), "support_ticket", NAN),  # unscored: not the "last" score
        ("a", ago(5), "survey", 5.0),
        ("a", ago(20), "complaint", 4.0),
        ("a", ago(200), "survey", 3.0),
        ("a", ago(400), "survey", 1.0),  # outside the year, still history for the trend
        ("b", ago(30), "survey", 2.0),
    ]
    result = interaction_features(interactions(rows, ("satisfaction",)), CUTOFF, CUSTOMERS)

    # a: last 5; one-year mean (5 + 4 + 3) / 3 = 4; trend 5 - (1 + 3 + 4) / 3 = 7 / 3
    assert result.loc["a", "satisfaction_last"] == 5.0
    assert result.loc["a", "satisfaction_mean_365d"] == 4.0
    assert result.loc["a", "satisfaction_trend"] == pytest.approx(7 / 3)
    # b: one score -> last and mean 2, no trend; c: no scores
    assert result.loc["b", ["satisfaction_last", "satisfaction_mean_365d"]].tolist() == [2.0, 2.0]
    assert math.isnan(result.loc["b", "satisfaction_trend"])
    assert result.loc["c", ["satisfaction_last", "satisfaction_trend"]].isna().all()


def test_satisfaction_trend_is_negative_when_scores_fall():
    rows = [
        ("a", ago(300), "survey", 5.0),
        ("a", ago(200), "survey", 4.0),
        ("a", ago(10), "survey", 1.5),
    ]
    result = interaction_features(interactions(rows, ("satisfaction",)), CUTOFF, CUSTOMERS)

    # 1.5 - (5 + 4) / 2 = -3
    assert result.loc["a", "satisfaction_trend"] == -3.0


def test_outreach_response_rate_and_ignored_outreach():
    rows = [
        ("a", ago(150), "outreach", True),
        ("a", ago(80), "outreach", False),  # ignored, inside 90d
        ("a", ago(40), "outreach", NA),  # no answer recorded: in neither feature
        ("a", ago(200), "outreach", False),  # outside 180d
        ("a", ago(10), "survey", True),  # not outreach
        ("b", ago(10), "outreach", True),
        ("b", ago(20), "outreach", True),
        ("b", ago(120), "outreach", False),  # ignored, but before the 90d window
        ("c", ago(30), "outreach", NA),
    ]
    result = interaction_features(interactions(rows, ("responded",)), CUTOFF, CUSTOMERS)

    rate = result["outreach_response_rate_180d"]
    assert rate["a"] == 0.5  # 150d yes, 80d no
    assert rate["b"] == 2 / 3  # yes, yes, no
    assert math.isnan(rate["c"])  # nothing known
    assert result["outreach_ignored_90d"].tolist() == [1.0, 0.0, 0.0]


@pytest.mark.parametrize(
    ("column", "features"),
    [
        ("channel", []),
        ("resolved", ["unresolved_30d", "unresolved_90d", "unresolved_share_90d"]),
        ("resolution_hours", ["mean_resolution_hours_180d"]),
        (
            "satisfaction",
            ["satisfaction_last", "satisfaction_mean_365d", "satisfaction_trend"],
        ),
        ("responded", ["outreach_response_rate_180d", "outreach_ignored_90d"]),
    ],
)
def test_each_optional_column_adds_only_its_features(column, features):
    value = {
        "channel": "phone",
        "resolved": True,
        "resolution_hours": 2.0,
        "satisfaction": 4.0,
        "responded": True,
    }[column]
    rows = [("a", ago(10), "support_ticket", value), ("b", ago(20), "outreach", value)]
    result = interaction_features(interactions(rows, (column,)), CUTOFF, CUSTOMERS)

    assert list(result.columns) == REQUIRED_ONLY + features
    assert observable({"customer_id", "timestamp", "kind", column}) == REQUIRED_ONLY + features


def test_observable_with_every_optional_column_is_every_feature():
    columns = {"customer_id", "timestamp", "kind", "channel"} | {
        "satisfaction",
        "resolved",
        "resolution_hours",
        "responded",
    }
    assert observable(columns) == list(INTERACTION_FEATURES)
    assert observable(set()) == REQUIRED_ONLY


def test_customers_without_interactions_get_zero_counts_and_no_rates():
    rows = [("a", ago(10), "support_ticket", False, 1.0, 2.0, True)]
    extra = ("resolved", "resolution_hours", "satisfaction", "responded")
    result = interaction_features(interactions(rows, extra), CUTOFF, CUSTOMERS)

    counts = [
        "tickets_90d",
        "tickets_365d",
        "complaints_90d",
        "complaints_365d",
        "price_complaints_180d",
        "unresolved_30d",
        "unresolved_90d",
        "outreach_ignored_90d",
    ]
    assert (result.loc["c", counts] == 0.0).all()
    assert result.loc["c"].drop(counts).isna().all()
    assert list(result.columns) == list(INTERACTION_FEATURES)


def test_grievance_settled_on_or_after_the_cutoff_counts_as_open_at_the_cutoff():
    # Rows are raised before the cutoff; a later export says how they ended. On the
    # cutoff day a ticket closed afterwards was open, and its hours were unknown.
    extra = ("resolved", "resolution_hours")
    history = [
        ("a", ago(1), "support_ticket", True, 48.0),  # settled 1 day after the cutoff
        ("a", ago(3), "support_ticket", True, 72.0),  # settled exactly at the cutoff
        ("a", ago(10), "complaint", True, 24.0),  # settled 9 days before the cutoff
        ("b", ago(2), "support_ticket", True, NAN),  # resolved, time unknown: trusted
    ]
    as_seen_on_cutoff_day = [
        ("a", ago(1), "support_ticket", False, NAN),
        ("a", ago(3), "support_ticket", NA, NAN),
        ("a", ago(10), "complaint", True, 24.0),
        ("b", ago(2), "support_ticket", True, NAN),
    ]
    result = interaction_features(interactions(history, extra), CUTOFF, CUSTOMERS)

    # a: open at the cutoff = the 1d and 3d tickets, of 3 grievances in 90d
    assert result["unresolved_30d"].tolist() == [2.0, 0.0, 0.0]
    assert result.loc["a", "unresolved_share_90d"] == 2 / 3
    # only the complaint had closed by the cutoff: 24 h
    assert result.loc["a", "mean_resolution_hours_180d"] == 24.0
    assert math.isnan(result.loc["b", "mean_resolution_hours_180d"])
    pd.testing.assert_frame_equal(
        result, interaction_features(interactions(as_seen_on_cutoff_day, extra), CUTOFF, CUSTOMERS)
    )
