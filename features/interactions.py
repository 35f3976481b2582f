"""Interaction-quality features: service tickets, complaints, satisfaction, outreach.

Low interaction quality is the documented cause of 68% of lost customers, so these
features carry most of the explainable signal when the table exists. Each feature is
produced only when the columns it needs are present (see :func:`observable`).
"""

from __future__ import annotations

import pandas as pd

from features.windows import count_per_customer, days_before, in_window

GRIEVANCE_KINDS = ("support_ticket", "complaint", "price_complaint")

# feature -> optional interaction columns it needs (required columns are always there)
INTERACTION_FEATURES: dict[str, tuple[str, ...]] = {
    "tickets_90d": (),
    "tickets_365d": (),
    "complaints_90d": (),
    "complaints_365d": (),
    "price_complaints_180d": (),
    "days_since_last_contact": (),
    "unresolved_30d": ("resolved",),
    "unresolved_90d": ("resolved",),
    "unresolved_share_90d": ("resolved",),
    "mean_resolution_hours_180d": ("resolution_hours",),
    "satisfaction_last": ("satisfaction",),
    "satisfaction_mean_365d": ("satisfaction",),
    "satisfaction_trend": ("satisfaction",),
    "outreach_response_rate_180d": ("responded",),
    "outreach_ignored_90d": ("responded",),
}


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
    kind = interactions["kind"]
    tickets = interactions.loc[kind == "support_ticket"]
    complaints = interactions.loc[kind == "complaint"]
    grievances = interactions.loc[kind.isin(GRIEVANCE_KINDS)]

    out = pd.DataFrame(index=customers)
    out["tickets_90d"] = count_per_customer(in_window(tickets, cutoff, 90), customers)
    out["tickets_365d"] = count_per_customer(in_window(tickets, cutoff, 365), customers)
    out["complaints_90d"] = count_per_customer(in_window(complaints, cutoff, 90), customers)
    out["complaints_365d"] = count_per_customer(in_window(complaints, cutoff, 365), customers)
    out["price_complaints_180d"] = count_per_customer(
        in_window(interactions.loc[kind == "price_complaint"], cutoff, 180), customers
    )
    last_contact = interactions.groupby("customer_id")["timestamp"].max()
    out["days_since_last_contact"] = days_before(cutoff, last_contact).reindex(customers)

    columns = set(interactions.columns)
    # A grievance raised before the cutoff but settled on or after it was still open at
    # the cutoff; its row (exported later) must not tell the features how it ended.
    settled_later = pd.Series(False, index=grievances.index)
    if "resolution_hours" in columns:
        settled_at = grievances["timestamp"] + pd.to_timedelta(
            grievances["resolution_hours"], unit="h"
        )
        settled_later = settled_at >= cutoff
    if "resolved" in columns:
        resolved = grievances["resolved"].fillna(False).astype(bool) & ~settled_later
        unresolved = grievances.loc[~resolved]
        out["unresolved_30d"] = count_per_customer(in_window(unresolved, cutoff, 30), customers)
        out["unresolved_90d"] = count_per_customer(in_window(unresolved, cutoff, 90), customers)
        raised_90d = count_per_customer(in_window(grievances, cutoff, 90), customers)
        out["unresolved_share_90d"] = (out["unresolved_90d"] / raised_90d).where(raised_90d > 0)
    if "resolution_hours" in columns:
        recent = in_window(grievances.loc[~settled_later], cutoff, 180)
        hours = recent.groupby("customer_id")["resolution_hours"].mean()
        out["mean_resolution_hours_180d"] = hours.reindex(customers)
    if "satisfaction" in columns:
        out = out.join(_satisfaction(interactions, cutoff, customers))
    if "responded" in columns:
        outreach = interactions.loc[(kind == "outreach") & interactions["responded"].notna()]
        recent = in_window(outreach, cutoff, 180)
        answered = recent.groupby("customer_id")["responded"].mean().astype(float)
        out["outreach_response_rate_180d"] = answered.reindex(customers)
        ignored = in_window(outreach, cutoff, 90)
        ignored = ignored.loc[ignored["responded"].eq(False)]
        out["outreach_ignored_90d"] = count_per_customer(ignored, customers)
    return out[observable(columns)]


def _satisfaction(
    interactions: pd.DataFrame, cutoff: pd.Timestamp, customers: pd.Index
) -> pd.DataFrame:
    """Latest score, one-year mean, and latest minus the mean of earlier scores."""
    scored = interactions.loc[interactions["satisfaction"].notna()].sort_values(
        ["customer_id", "timestamp"], kind="stable"
    )
    by_customer = scored.groupby("customer_id")["satisfaction"]
    last = by_customer.last()
    count = by_customer.size()
    earlier_mean = (by_customer.sum() - last) / (count - 1)
    year = in_window(scored, cutoff, 365).groupby("customer_id")["satisfaction"].mean()
    return pd.DataFrame(
        {
            "satisfaction_last": last.reindex(customers),
            "satisfaction_mean_365d": year.reindex(customers),
            "satisfaction_trend": (last - earlier_mean).where(count > 1).reindex(customers),
        },
        index=customers,
    )
