"""Retention KPIs per scoring date (../shared/domain.md sections 3 and 4).

Two periods of ``period_days`` end at the score date; only rows strictly before it
count, so a KPI for a date never sees that day's or later purchases:

* P  = ``[score_date - period_days, score_date)``, the last period;
* P0 = ``[score_date - 2 * period_days, score_date - period_days)``, the one before.

Definitions (a *purchase* is a transaction with a positive amount, as in
:mod:`features.rfm`; refunds are not visits but do reduce revenue):

* customers at start: customers with a purchase in P0. The brief says "active at period
  start"; with no contract to cancel, a customer is active when they bought in the
  period before.
* customers at end: customers with a purchase in P.
* new customers: customers at end whose first-ever purchase falls in P (or, when
  ``new_customer_ids`` is given, customers at end in that set).
* retention rate = (customers at end - new customers) / customers at start, the brief's
  formula. Customers who come back in P after skipping P0 count as retained here, so it
  can exceed ``1 - churn rate``; ``reactivated_customers`` is that difference in heads.
* churn rate = share of customers at start with no purchase in P.
* repeat-purchase rate = share of customers at end with purchases on 2+ distinct days in P.
* new-customer revenue share = net revenue in P from new customers / net revenue in P;
  ``new_revenue_warning`` is 1.0 above 70% (a warning sign in the brief), else 0.0.

Rates whose denominator is empty (no customers at start, no buyers in P, no positive
revenue in P) are NaN, never a division error.
"""

from __future__ import annotations

import math

import pandas as pd

from features.contracts.columnar import is_in
from features.rfm import purchases_only
from features.windows import as_cutoff, before_cutoff, in_window

NEW_REVENUE_WARNING_SHARE = 0.70

# The action_rule values of the playbook's override rules, declared here because the
# KPIs count them and features may not import models; models.playbook reads them.
GRIEVANCE_RULE = "grievance"
LEAVE_ALONE_RULE = "leave_alone"
SEASONAL_GAP_RULE = "seasonal_gap"
RENEWAL_SOON_RULE = "renewal_soon"


def _share(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else math.nan


def retention_kpis(
    transactions: pd.DataFrame,
    score_date: str | pd.Timestamp,
    period_days: int = 90,
    new_customer_ids: set | None = None,
) -> dict[str, float]:
    """Retention, churn, repeat-purchase and new-revenue KPIs for the period before a date.

    Args:
        transactions: validated transactions (``customer_id``, ``timestamp``, ``amount``).
        score_date: the scoring date; normalised to midnight, rows from it on are ignored.
        period_days: length of each of the two periods compared.
        new_customer_ids: customers acquired in the last period, when the business knows
            them (e.g. from sign-up dates); by default those whose first purchase is in it.

    Returns:
        ``period_days``, ``customers_at_start``, ``customers_at_end``, ``new_customers``,
        ``reactivated_customers``, ``retention_rate``, ``churn_rate``,
        ``repeat_purchase_rate``, ``purchases``, ``revenue``, ``new_customer_revenue``,
        ``new_customer_revenue_share`` and ``new_revenue_warning``, all floats.
    """
    counts = retention_counts(transactions, score_date, period_days, new_customer_ids)
    return kpis_from_counts(counts, period_days)


def retention_counts(
    transactions: pd.DataFrame,
    score_date: str | pd.Timestamp,
    period_days: int = 90,
    new_customer_ids: set | None = None,
) -> dict[str, float]:
    """The heads and sums behind :func:`retention_kpis`, one customer at a time.

    Every count is over customers, and a customer's rows all sit in one customer batch,
    so the counts of disjoint batches add up to the whole table's (the money sums to
    rounding); :func:`kpis_from_counts` turns their sum into the KPIs.
    """
    cutoff = as_cutoff(score_date)
    history = before_cutoff(transactions, cutoff)
    assert history is not None
    bought = purchases_only(history)
    last = in_window(history, cutoff, period_days)
    last_purchases = purchases_only(last)
    previous = in_window(bought, cutoff, 2 * period_days, end_days_ago=period_days)

    # unique ids and hash lookups, not Python sets: a batch holds ~100k customers
    at_start = pd.unique(previous["customer_id"])
    at_end = pd.unique(last_purchases["customer_id"])
    if new_customer_ids is None:
        period_start = cutoff - pd.Timedelta(days=period_days)
        first_purchase = bought.groupby("customer_id")["timestamp"].min()
        new_ids = first_purchase.index[first_purchase >= period_start]
    else:
        new_ids = list(new_customer_ids)
    is_new = is_in(at_end, new_ids)
    new = at_end[is_new]
    returning = at_end[~is_new]
    purchase_days = (
        last_purchases.assign(day=last_purchases["timestamp"].dt.normalize())
        .groupby("customer_id")["day"]
        .nunique()
    )
    return {
        "customers_at_start": float(len(at_start)),
        "customers_at_end": float(len(at_end)),
        "new_customers": float(len(new)),
        "reactivated_customers": float((~is_in(returning, at_start)).sum()),
        "lost_customers": float((~is_in(at_start, at_end)).sum()),
        "repeat_customers": float((purchase_days >= 2).sum()),
        "purchases": float(len(last_purchases)),
        "revenue": float(last["amount"].sum()),
        "new_customer_revenue": float(last.loc[is_in(last["customer_id"], new), "amount"].sum()),
    }


def add_counts(parts: list[dict[str, float]]) -> dict[str, float]:
    """Counts of disjoint customer batches as one (:func:`retention_counts`)."""
    return {key: float(sum(part[key] for part in parts)) for key in parts[0]}


def kpis_from_counts(counts: dict[str, float], period_days: int) -> dict[str, float]:
    """:func:`retention_kpis` from its counts (one table's, or batches' summed)."""
    at_start, at_end, new = (
        counts["customers_at_start"],
        counts["customers_at_end"],
        counts["new_customers"],
    )
    revenue, new_revenue = counts["revenue"], counts["new_customer_revenue"]
    new_share = _share(new_revenue, revenue)
    return {
        "period_days": float(period_days),
        "customers_at_start": at_start,
        "customers_at_end": at_end,
        "new_customers": new,
        "reactivated_customers": counts["reactivated_customers"],
        "retention_rate": _share(at_end - new, at_start),
        "churn_rate": _share(counts["lost_customers"], at_start),
        "repeat_purchase_rate": _share(counts["repeat_customers"], at_end),
        "purchases": counts["purchases"],
        "revenue": revenue,
        "new_customer_revenue": new_revenue,
        "new_customer_revenue_share": new_share,
        "new_revenue_warning": 1.0 if new_share > NEW_REVENUE_WARNING_SHARE else 0.0,
    }


def risk_kpis(scored: pd.DataFrame, listed: pd.DataFrame) -> dict[str, float]:
    """Headcounts and money at stake from one scoring run.

    Args:
        scored: every scored customer (``expected_value``, ``action_rule``).
        listed: the at-risk call list cut from it (``value_at_risk``).

    Returns:
        ``customers_scored``, ``customers_at_risk`` (on the list), ``revenue_at_risk``
        (the list's value at risk), ``expected_value_scored`` (all customers),
        ``leave_alone_count``, ``seasonal_gap_count`` (off-season, not called),
        ``grievance_count`` and ``renewal_soon_count`` (call before the renewal), all
        four over every scored customer.
    """
    rule = scored["action_rule"]
    return {
        "customers_scored": float(len(scored)),
        "customers_at_risk": float(len(listed)),
        "revenue_at_risk": float(listed["value_at_risk"].sum()),
        "expected_value_scored": float(scored["expected_value"].sum()),
        "leave_alone_count": float((rule == LEAVE_ALONE_RULE).sum()),
        "seasonal_gap_count": float((rule == SEASONAL_GAP_RULE).sum()),
        "grievance_count": float((rule == GRIEVANCE_RULE).sum()),
        "renewal_soon_count": float((rule == RENEWAL_SOON_RULE).sum()),
    }
