import math

import numpy as np
import pandas as pd
import pytest

from models.monitoring import drift, psi, reference_profile


def test_profile_bins_and_shares_exact():
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0, np.nan]})
    profile = reference_profile(frame, bins=2)
    # quantiles of [1,2,3,4] at 0, .5, 1 -> 1, 2.5, 4; inner edge 2.5
    assert profile["x"]["edges"] == [1.0, 2.5, 4.0]
    # 2 of 5 below 2.5, 2 of 5 above, 1 of 5 missing
    assert profile["x"]["shares"] == [0.4, 0.4, 0.2]


def test_psi_exact_value():
    # (0.5-0.25) ln(0.5/0.25) + (0.5-0.75) ln(0.5/0.75)
    expected = 0.25 * math.log(2) - 0.25 * math.log(0.5 / 0.75)
    assert psi([0.25, 0.75], [0.5, 0.5]) == pytest.approx(expected)
    assert psi([0.3, 0.7], [0.3, 0.7]) == 0.0


def test_same_distribution_has_no_drift_and_a_shift_does():
    rng = np.random.default_rng(0)
    train = pd.DataFrame({"x": rng.normal(size=5000), "y": rng.normal(size=5000)})
    profile = reference_profile(train)
    same = pd.DataFrame({"x": rng.normal(size=5000), "y": rng.normal(size=5000)})
    shifted = same.assign(y=same["y"] + 1.0)
    assert drift(profile, same).max() < 0.02
    result = drift(profile, shifted)
    assert result["x"] < 0.02 and result["y"] > 0.2


def test_a_feature_going_missing_is_drift():
    profile = reference_profile(pd.DataFrame({"x": np.arange(100.0)}))
    assert drift(profile, pd.DataFrame({"x": [np.nan] * 100}))["x"] > 1.0


def test_score_drift_reads_the_active_customers_features_and_scores_only():
    """Lapsed customers are left out of both the features' and the score's drift; the
    same numbers as a copy of the active rows gives."""
    from models.nightly import Night, score_drift

    rng = np.random.default_rng(5)
    ids = pd.Index([f"C{i:03d}" for i in range(400)], dtype="str")
    lapsed = pd.Series(rng.random(400) < 0.3, index=ids)
    features = pd.DataFrame({"spend": rng.gamma(2.0, 10.0, 400)}, index=ids)
    features.loc[lapsed, "spend"] *= 50  # only the lapsed drift
    probability = np.where(lapsed, 0.99, rng.random(400))
    scored = pd.DataFrame(
        {
            "customer_id": ids,
            "status": np.where(lapsed, "lapsed", "active"),
            "churn_probability": probability,
        }
    )
    profile = {
        "features": reference_profile(features.loc[~lapsed]),
        "score": reference_profile(pd.DataFrame({"score": probability[~lapsed]}))["score"],
    }
    night = Night(
        pd.Timestamp("2025-06-01"), features, scored, scored.iloc[:0], scored.iloc[:0], lapsed, {}
    )
    result = score_drift(night, profile, 0.25)
    assert result.psi["spend"] == pytest.approx(0.0, abs=1e-12)
    assert result.psi["score"] == pytest.approx(0.0, abs=1e-12)
    assert result.drifting == []
    everyone = drift(profile["features"], features)["spend"]
    assert everyone > 0.25  # what counting the lapsed would have said
