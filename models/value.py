"""Value at stake: what a customer is expected to spend if retained."""

from __future__ import annotations

import numpy as np
import pandas as pd


def expected_value(features: pd.DataFrame, horizon_days: int = 90) -> pd.Series:
    """Expected spend over the horizon at the customer's own one-year run rate.

    Customers younger than a year are scaled by their tenure (at least 30 days, so a
    single first order does not extrapolate to a fortune).
    """
    observed_days = np.clip(features["tenure_days"], 30, 365)
    daily = features["spend_365d"].clip(lower=0) / observed_days
    return (daily * horizon_days).rename("expected_value")


def value_at_risk(churn_probability: pd.Series, expected: pd.Series) -> pd.Series:
    """Churn probability x expected value."""
    return (churn_probability * expected).rename("value_at_risk")
