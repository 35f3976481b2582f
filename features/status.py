"""Still a customer, or already gone? A status for every customer at a cutoff.

Most customers never announce that they left; they stop buying. A customer is
``lapsed`` once their silence is longer than their own rhythm (and, for customers with
little history, the population's) makes plausible, and ``active`` until then
(``domain.md`` section 7). Retention calls go to the active; the lapsed are a win-back.

The rule: a customer's gaps between purchase days follow a gamma distribution with
their own mean and spread, shrunk towards the population's when they have few gaps.
The plausible gap is its ``1 - tail`` quantile; for a seasonal buyer it is never shorter
than the longest gap they already came back from (their off-season is normal for them).
Silence beyond the plausible gap is ``lapsed``.
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pandas as pd

ACTIVE = "active"
LAPSED = "lapsed"
STATUS_COLUMNS = ("status", "expected_gap_days", "plausible_gap_days")

# gaps of this many customers weigh as much as the customer's own (shrinkage strength)
_PRIOR_GAPS = 2.0
# gamma shape is 1 / cv^2; outside this range the approximation below misbehaves
_CV_RANGE = (0.15, 2.5)


def gamma_quantile(mean: np.ndarray, cv: np.ndarray, q: float) -> np.ndarray:
    """The ``q`` quantile of a gamma distribution given its mean and coefficient of
    variation (Wilson-Hilferty: the cube root of a gamma variable is near normal)."""
    shape = 1.0 / np.square(cv)
    z = NormalDist().inv_cdf(q)
    root = 1.0 - 1.0 / (9.0 * shape) + z * np.sqrt(1.0 / (9.0 * shape))
    return mean * np.power(np.maximum(root, 0.0), 3)


def customer_status(
    features: pd.DataFrame,
    tail: float = 0.05,
    longest_gap_slack: float = 1.1,
    seasonal_share: float = 0.6,
) -> pd.DataFrame:
    """Status per customer from their recency and cadence features.

    Args:
        features: output of :func:`features.build.build_features` (needs
            ``days_since_last_purchase``, ``mean_gap_days``, ``gap_std_days``,
            ``max_gap_days``, ``purchase_days``).
        tail: a silence longer than all but this share of the customer's plausible
            gaps is a departure.
        longest_gap_slack: a seasonal customer's longest earlier gap, times this, is
            always plausible.
        seasonal_share: a customer with at least this share of purchases in two
            calendar months is seasonal here.

    Returns:
        Frame indexed like ``features`` with ``status`` (``active`` / ``lapsed``),
        ``expected_gap_days`` and ``plausible_gap_days``.
    """
    f = features
    silence = f["days_since_last_purchase"].to_numpy(float)
    gaps = np.maximum(f["purchase_days"].to_numpy(float) - 1.0, 0.0)
    own_mean = f["mean_gap_days"].to_numpy(float)
    own_cv = np.clip(f["gap_std_days"].to_numpy(float) / own_mean, *_CV_RANGE)
    spread_known = gaps >= 2

    # the population's rhythm: what a customer with no history of their own would show
    repeat = gaps >= 1
    population_mean = float(np.median(own_mean[repeat])) if repeat.any() else 30.0
    population_cv = float(np.median(own_cv[spread_known])) if spread_known.any() else 1.0

    weight = gaps / (gaps + _PRIOR_GAPS)
    mean = np.where(repeat, weight * own_mean + (1 - weight) * population_mean, population_mean)
    spread_weight = np.maximum(gaps - 1, 0) / (np.maximum(gaps - 1, 0) + _PRIOR_GAPS)
    cv = np.where(
        spread_known, spread_weight * own_cv + (1 - spread_weight) * population_cv, population_cv
    )
    plausible = gamma_quantile(mean, cv, 1.0 - tail)
    # a seasonal buyer's off-season is normal for them: their longest gap is plausible
    seasonal = f["peak_month_share"].to_numpy(float) >= seasonal_share
    longest = np.where(seasonal, f["max_gap_days"].to_numpy(float) * longest_gap_slack, np.nan)
    plausible = np.fmax(plausible, longest)
    status = np.where(silence > plausible, LAPSED, ACTIVE)
    return pd.DataFrame(
        {"status": status, "expected_gap_days": mean, "plausible_gap_days": plausible},
        index=f.index,
    )


def due_back(features: pd.DataFrame, status: pd.DataFrame, cutoff: pd.Timestamp) -> pd.Series:
    """The day each customer was due back: the morning after their last purchase plus
    their expected gap, and never after the cutoff.

    A lapsed customer's reasons are read as of this day: the evidence of *why* is what
    happened before they went quiet, not the silence since.
    """
    last = cutoff - pd.to_timedelta(features["days_since_last_purchase"], unit="D")
    due = (last + pd.to_timedelta(status["expected_gap_days"], unit="D")).dt.ceil("D")
    due = due.where(due > last, last.dt.floor("D") + pd.Timedelta(days=1))
    return due.clip(upper=cutoff).rename("due_date")
