import pandas as pd
import pytest

from models.value import expected_value, value_at_risk

FEATURES = pd.DataFrame(
    {
        "tenure_days": [10.0, 30.0, 180.0, 365.0, 730.0, 200.0],
        "spend_365d": [60.0, 90.0, 720.0, 365.0, 730.0, -50.0],
    },
    index=pd.Index(["new", "month", "half_year", "year", "old", "refunds"], name="customer_id"),
)


def test_expected_value_scales_by_tenure_between_30_and_365_days():
    result = expected_value(FEATURES, horizon_days=90)

    assert result.name == "expected_value"
    assert result.to_dict() == pytest.approx(
        {
            # under 30 days is raised to 30: 60 / 30 = 2 a day x 90 = 180 (not 60 / 10 x 90)
            "new": 180.0,
            # exactly 30: 90 / 30 = 3 a day x 90 = 270
            "month": 270.0,
            # 720 / 180 = 4 a day x 90 = 360
            "half_year": 360.0,
            # 365 / 365 = 1 a day x 90 = 90
            "year": 90.0,
            # over a year is capped at 365 (spend_365d covers one year): 730 / 365 x 90 = 180
            "old": 180.0,
            # refunds outweigh purchases: -50 clipped to 0
            "refunds": 0.0,
        }
    )


def test_expected_value_uses_the_horizon():
    result = expected_value(FEATURES, horizon_days=30)

    # half_year: 720 / 180 = 4 a day x 30 = 120; new: 60 / 30 = 2 a day x 30 = 60
    assert result["half_year"] == pytest.approx(120.0)
    assert result["new"] == pytest.approx(60.0)


def test_expected_value_tells_tenures_apart():
    # same one-year spend of 146, three tenures
    features = pd.DataFrame({"tenure_days": [20.0, 73.0, 1000.0], "spend_365d": [146.0] * 3})

    result = expected_value(features, horizon_days=90)

    # 146 / 30 x 90 = 438; 146 / 73 = 2 x 90 = 180; 146 / 365 = 0.4 x 90 = 36
    assert result.tolist() == pytest.approx([438.0, 180.0, 36.0])


def test_value_at_risk_is_probability_times_expected_value():
    probability = pd.Series([0.5, 0.25, 0.0, 1.0], index=list("abcd"))
    expected = pd.Series([180.0, 400.0, 1000.0, 0.0], index=list("abcd"))

    result = value_at_risk(probability, expected)

    assert result.name == "value_at_risk"
    # 0.5 x 180 = 90; 0.25 x 400 = 100; 0 x 1000 = 0; 1 x 0 = 0
    assert result.to_dict() == {"a": 90.0, "b": 100.0, "c": 0.0, "d": 0.0}


def test_value_at_risk_aligns_on_customer():
    probability = pd.Series([0.5, 0.25], index=["a", "b"])
    expected = pd.Series([400.0, 180.0], index=["b", "a"])

    # a: 0.5 x 180 = 90; b: 0.25 x 400 = 100
    assert value_at_risk(probability, expected).to_dict() == {"a": 90.0, "b": 100.0}
