"""Customer types from the domain brief, assigned from behaviour.

The rules live here, in one place, in order of precedence: a seasonal customer is
seasonal before anything else, because their long normal gap is what staff must not
mistake for leaving.

A subscriber (a customer with a subscription: ``subscription_tenure_days`` known) pays
on the billing period's rhythm, not on a season's or a whim's: an annual plan charges
once a year, in the same calendar month, which the purchase rules would read as
seasonal or occasional. Subscribers are therefore never seasonal, and are regular when
no rule above regular holds (VIP, fan and challenging apply to them as to anyone).
Without a subscriptions table nothing changes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SEGMENTS = ("seasonal", "vip", "fan", "challenging", "regular", "occasional")


def assign_segments(features: pd.DataFrame, vip_quantile: float = 0.9) -> pd.Series:
    """One segment per customer.

    Rules (first match wins):
      * seasonal: not a subscriber, at least 3 purchases, 80%+ of them in two
        calendar months, and a gap of 150+ days seen before;
      * vip: one-year spend in the top ``1 - vip_quantile`` of this population;
      * fan: 15+ purchases in a year and, where surveys exist, mean satisfaction 4.5+;
      * challenging: 4+ tickets or complaints in a year, yet still buying (last 90
        days) or still subscribed;
      * regular: a subscriber, or 4+ purchases in a year on a steady cadence (gap
        spread under 60% of the mean gap);
      * occasional: everyone else.

    Args:
        features: output of :func:`features.build.build_features`.
        vip_quantile: quantile of ``spend_365d`` above which a customer is VIP.
    """
    f = features
    nan = pd.Series(np.nan, index=f.index)
    satisfaction = f.get("satisfaction_mean_365d", nan)
    grievances = f.get("tickets_365d", nan).fillna(0) + f.get("complaints_365d", nan).fillna(0)
    vip_floor = f["spend_365d"].quantile(vip_quantile) if len(f) else np.inf
    gap_cv = f["gap_std_days"] / f["mean_gap_days"]
    subscriber = f.get("subscription_tenure_days", nan).notna()
    # a subscription covering the cutoff (days_to_renewal is known only then)
    subscribed = f.get("days_to_renewal", nan).notna()

    conditions = [
        ~subscriber
        & (f["lifetime_purchases"] >= 3)
        & (f["peak_month_share"] >= 0.8)
        & (f["max_gap_days"] >= 150),
        (f["spend_365d"] >= vip_floor) & (f["spend_365d"] > 0),
        (f["purchases_365d"] >= 15) & (satisfaction.isna() | (satisfaction >= 4.5)),
        (grievances >= 4) & ((f["purchases_90d"] >= 1) | subscribed),
        subscriber | ((f["purchases_365d"] >= 4) & (gap_cv < 0.6)),
    ]
    chosen = np.select(
        [c.fillna(False).to_numpy(bool) for c in conditions], SEGMENTS[:-1], SEGMENTS[-1]
    )
    return pd.Series(chosen, index=f.index, name="segment")
