"""How often lapsed customers come back on their own: the churn probability of the lapsed.

The retention model learns from active customers only, so it says nothing reliable
about a customer far past their rhythm. For them the question is simpler, and the
data answers it directly: of the customers who were this far past their plausible
gap at earlier cutoffs, what share bought again within the horizon? The rate is
learned per band of overdueness (silence / plausible gap) on the training cutoffs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# silence / plausible gap: just past it, well past it, long gone
BANDS = (1.0, 1.5, 2.5, np.inf)


def overdue_band(status: pd.DataFrame, silence: pd.Series) -> np.ndarray:
    """Band index (0 = just past the plausible gap) per customer."""
    ratio = silence.to_numpy(float) / status["plausible_gap_days"].to_numpy(float)
    return np.clip(np.searchsorted(BANDS, ratio, side="left") - 1, 0, len(BANDS) - 2)


def return_rates(
    bands: np.ndarray, returned: np.ndarray, prior_weight: float = 20.0
) -> list[float]:
    """Share of lapsed customers who came back, per band, shrunk towards the overall rate
    (``prior_weight`` customers' worth) so a thin band does not swing to 0 or 1."""
    overall = float(returned.mean()) if len(returned) else 0.0
    rates = []
    for band in range(len(BANDS) - 1):
        mine = returned[bands == band]
        rates.append((mine.sum() + prior_weight * overall) / (len(mine) + prior_weight))
    return [float(r) for r in rates]


def lapsed_churn_probability(
    status: pd.DataFrame, silence: pd.Series, rates: list[float]
) -> pd.Series:
    """1 - the learned return rate of each customer's band."""
    band = overdue_band(status, silence)
    return pd.Series(1.0 - np.asarray(rates)[band], index=status.index, name="churn_probability")
