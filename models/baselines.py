"""Simple churn baselines a data team would use before any machine learning.

Both read the pipeline's own feature table (:func:`features.build.build_features`), so
they score exactly the customers the pipeline scores, from the same rows before the
cutoff.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

# recency, frequency, monetary over the same one-year lookback that defines "active"
RFM_COLUMNS: tuple[str, ...] = ("days_since_last_purchase", "purchases_365d", "spend_365d")


def log1p_nonnegative(values: np.ndarray) -> np.ndarray:
    """``log(1 + max(v, 0))``: tames the long right tails of counts, spend and days.

    Net spend can be negative after refunds; below zero it counts as zero spend.
    """
    return np.log1p(np.clip(np.asarray(values, dtype=float), 0.0, None))


def build_rfm_logistic(columns: Sequence[str] = RFM_COLUMNS, **overrides: object) -> Pipeline:
    """An unfitted RFM logistic regression: log1p, standardise, logistic regression.

    Args:
        columns: the recency, frequency and monetary feature columns to use; any other
            column of the input is ignored.
        **overrides: ``LogisticRegression`` parameters (default ``max_iter=1000``).

    Returns:
        A scikit-learn pipeline taking the feature table and predicting churn (1).
    """
    transform = Pipeline(
        [
            ("log1p", FunctionTransformer(log1p_nonnegative, feature_names_out="one-to-one")),
            ("scale", StandardScaler()),
        ]
    )
    select = ColumnTransformer(
        [("rfm", transform, list(columns))], remainder="drop", verbose_feature_names_out=False
    )
    params: dict[str, object] = {"max_iter": 1000, **overrides}
    pipeline = Pipeline([("features", select), ("classifier", LogisticRegression(**params))])
    return pipeline.set_output(transform="pandas")


def recency_score(features: pd.DataFrame) -> pd.Series:
    """The recency rule: days since the last purchase is the churn score itself."""
    return features["days_since_last_purchase"].astype(float).rename("recency_score")
