import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from models.baselines import RFM_COLUMNS, build_rfm_logistic, log1p_nonnegative, recency_score

E = np.e


@pytest.fixture
def features() -> pd.DataFrame:
    # log1p of each RFM column is 0, 1, 2 (spend: -5 counts as 0); plus an unused column
    return pd.DataFrame(
        {
            "days_since_last_purchase": [0.0, E - 1, E**2 - 1],
            "purchases_365d": [E**2 - 1, E - 1, 0.0],
            "spend_365d": [-5.0, E - 1, E**2 - 1],
            "tickets_90d": [9.0, 0.0, 3.0],
        },
        index=pd.Index(["a", "b", "c"], name="customer_id"),
    )


def test_recency_score_is_days_since_last_purchase(features):
    score = recency_score(features)

    assert score.tolist() == pytest.approx([0.0, E - 1, E**2 - 1])
    assert score.index.equals(features.index)


def test_log1p_nonnegative_floors_at_zero():
    assert log1p_nonnegative(np.array([-3.0, 0.0, E - 1])) == pytest.approx([0.0, 0.0, 1.0])


def test_rfm_logistic_is_built_unfitted():
    model = build_rfm_logistic()

    with pytest.raises(NotFittedError):
        check_is_fitted(model)
    assert model.named_steps["classifier"].max_iter == 1000
    assert build_rfm_logistic(C=0.5).named_steps["classifier"].C == 0.5


def test_rfm_transform_is_log1p_then_standardised_and_drops_other_columns(features):
    transformed = build_rfm_logistic().named_steps["features"].fit_transform(features)

    # log1p values 0, 1, 2 -> mean 1, population std sqrt(2/3) -> -1.2247, 0, 1.2247
    z = np.sqrt(1.5)
    expected = pd.DataFrame(
        {
            "days_since_last_purchase": [-z, 0.0, z],
            "purchases_365d": [z, 0.0, -z],
            "spend_365d": [-z, 0.0, z],
        },
        index=features.index,
    )
    pd.testing.assert_frame_equal(transformed, expected)
    assert tuple(transformed.columns) == RFM_COLUMNS


def test_fitted_rfm_logistic_ranks_longer_absence_as_riskier():
    rng = np.random.default_rng(0)
    n = 400
    days = rng.uniform(0, 300, n)
    churned = (rng.uniform(0, 300, n) < days).astype(int)  # P(churn) = days / 300
    x = pd.DataFrame(
        {
            "days_since_last_purchase": days,
            "purchases_365d": rng.integers(1, 10, n).astype(float),
            "spend_365d": rng.uniform(10, 500, n),
        }
    )
    model = build_rfm_logistic().fit(x, churned)

    probe = pd.DataFrame(
        {
            "days_since_last_purchase": [10.0, 100.0, 250.0],
            "purchases_365d": [3.0] * 3,
            "spend_365d": [100.0] * 3,
        }
    )
    risk = model.predict_proba(probe)[:, 1]
    assert risk[0] < risk[1] < risk[2]


def test_rfm_logistic_needs_its_columns(features):
    with pytest.raises(ValueError, match="spend_365d"):
        build_rfm_logistic().fit(features.drop(columns="spend_365d"), [0, 1, 1])
