"""Interaction-quality features: service tickets, complaints, satisfaction, outreach.

Low interaction quality is the documented cause of 68% of lost customers, so these
features carry most of the explainable signal when the table exists. Each feature is
produced only when the columns it needs are present (see :func:`observable`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features import registry
from features.windows import (
    count_per_customer,
    customer_positions,
    days_before,
    equals_mask,
    latest_per_customer,
    mean_per_customer,
    sum_per_customer,
    values_at,
    window_mask,
)

GRIEVANCE_KINDS = ("support_ticket", "complaint", "price_complaint")
# the kinds the contract reads; any other kind is a usage event (features.usage)
CONTRACT_KINDS = (*GRIEVANCE_KINDS, "outreach", "survey")

# feature -> optional interaction columns it needs (required columns are always there;
# declared in features/registry.py)
INTERACTION_FEATURES: dict[str, tuple[str, ...]] = registry.needs(registry.INTERACTIONS)


def observable(columns: set[str]) -> list[str]:
    """Interaction features computable from a table with these columns."""
    return [name for name, needs in INTERACTION_FEATURES.items() if set(needs) <= columns]


def interaction_features(
    interactions: pd.DataFrame, cutoff: pd.Timestamp, customers: pd.Index
) -> pd.DataFrame:
    """Interaction-quality features per customer.

    Args:
        interactions: validated interactions, all rows before ``cutoff``.
        cutoff: the cutoff (midnight).
        customers: the customer ids to produce rows for (customers with no
            interactions get zero counts and NaN rates).

    Returns:
        One row per customer in ``customers`` with the observable features.
    """
    n = len(customers)
    pos = customer_positions(interactions["customer_id"], customers)
    if not (pos >= 0).all():
        interactions, pos = interactions.loc[pos >= 0], pos[pos >= 0]
    ts = interactions["timestamp"].to_numpy()
    kind = interactions["kind"]
    tickets = equals_mask(kind, "support_ticket")
    complaints = equals_mask(kind, "complaint")
    price_complaints = equals_mask(kind, "price_complaint")
    grievances = tickets | complaints | price_complaints
    days_30, days_90 = window_mask(ts, cutoff, 30), window_mask(ts, cutoff, 90)
    days_180, days_365 = window_mask(ts, cutoff, 180), window_mask(ts, cutoff, 365)

    def count(rows: np.ndarray) -> np.ndarray:
        return count_per_customer(pos, n, rows)

    out = pd.DataFrame(index=customers)
    out["tickets_90d"] = count(tickets & days_90)
    out["tickets_365d"] = count(tickets & days_365)
    out["complaints_90d"] = count(complaints & days_90)
    out["complaints_365d"] = count(complaints & days_365)
    out["price_complaints_180d"] = count(price_complaints & days_180)
    # contact is a conversation (ticket, complaint, survey, outreach); usage events of a
    # product are not, or a subscriber who stops using it would read as "never contacted"
    talked = kind.isin(CONTRACT_KINDS).to_numpy(dtype=bool, na_value=False)
    last_contact = values_at(ts[talked], latest_per_customer(pos[talked], ts[talked], n))
    out["days_since_last_contact"] = days_before(cutoff, pd.Series(last_contact, index=customers))

    columns = set(interactions.columns)

    def numbers(name: str) -> np.ndarray:
        return interactions[name].to_numpy(dtype=float, na_value=np.nan)

    # A grievance raised before the cutoff but settled on or after it was still open at
    # the cutoff; its row (exported later) must not tell the features how it ended.
    settled_later = np.zeros(len(ts), dtype=bool)
    if "resolution_hours" in columns:
        hours = numbers("resolution_hours")
        rows = np.flatnonzero(grievances & ~np.isnan(hours))
        settled_at = ts[rows] + pd.to_timedelta(hours[rows], unit="h")
        settled_later[rows] = settled_at >= cutoff
    if "resolved" in columns:
        resolved = interactions["resolved"].to_numpy(dtype=bool, na_value=False)
        unresolved = grievances & ~(resolved & ~settled_later)
        out["unresolved_30d"] = count(unresolved & days_30)
        out["unresolved_90d"] = count(unresolved & days_90)
        raised_90d = count(grievances & days_90)
        with np.errstate(invalid="ignore", divide="ignore"):
            out["unresolved_share_90d"] = np.where(
                raised_90d > 0, out["unresolved_90d"] / raised_90d, np.nan
            )
    if "resolution_hours" in columns:
        settled = grievances & ~settled_later & days_180
        out["mean_resolution_hours_180d"] = mean_per_customer(pos, hours, n, settled)
    if "satisfaction" in columns:
        satisfaction = numbers("satisfaction")
        for name, values in _satisfaction(pos, ts, satisfaction, days_365, n).items():
            out[name] = values
    if "responded" in columns:
        responded = interactions["responded"]
        outreach = equals_mask(kind, "outreach") & responded.notna().to_numpy()
        answered = responded.to_numpy(dtype=float, na_value=np.nan)
        out["outreach_response_rate_180d"] = mean_per_customer(
            pos, answered, n, outreach & days_180
        )
        out["outreach_ignored_90d"] = count(outreach & days_90 & (answered == 0))
    return out[observable(columns)]


def _satisfaction(
    pos: np.ndarray, ts: np.ndarray, satisfaction: np.ndarray, year: np.ndarray, n: int
) -> dict[str, np.ndarray]:
    """Latest score, one-year mean, and latest minus the mean of earlier scores."""
    scored = np.flatnonzero(~np.isnan(satisfaction))
    pos, ts, score = pos[scored], ts[scored], satisfaction[scored]
    last = values_at(score, latest_per_customer(pos, ts, n))
    count = count_per_customer(pos, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        earlier_mean = (sum_per_customer(pos, score, n) - last) / (count - 1)
    return {
        "satisfaction_last": last,
        "satisfaction_mean_365d": mean_per_customer(pos, score, n, year[scored]),
        "satisfaction_trend": np.where(count > 1, last - earlier_mean, np.nan),
    }
