"""The retention report's content as plain tables: numbers and words, no HTML.

Each function turns the scored frames into one table (or a few numbers) that a section
of the morning report shows; ``pipelines/templates/report.html.j2`` lays them out and
formats them. The driver and reason-mix charts are in :mod:`models.report_charts`.

The wording of features, reasons and customer types is read through
:func:`feature_phrase`, :func:`reason_style`, :func:`reason_meaning` and
:func:`segment_label`, so the tables behind them can move without touching the report.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import pandas as pd

from features import registry
from features.kpis import (
    GRIEVANCE_RULE,
    LEAVE_ALONE_RULE,
    NEW_REVENUE_WARNING_SHARE,
    SEASONAL_GAP_RULE,
)
from features.segments import SEGMENTS
from models.reasons import LOSS_REASONS, REASON_SHARES, REASONS, ReasonMap

CALL_FIRST = 25
TABLE_ROWS = 50
DRIVER_CUSTOMERS = 20
DRIVERS_PER_CUSTOMER = 6

REQUIRED_COLUMNS = (
    "customer_id",
    "churn_probability",
    "expected_value",
    "value_at_risk",
    "segment",
    "top_reason",
    "top_drivers",
    "recommended_action",
    "action_rule",
)

# Wording and colours come from the one declaration of each reason (models.reasons) and
# each feature (features.registry).

_SEGMENT_LABELS = {
    "seasonal": "Seasonal",
    "vip": "VIP",
    "fan": "Fan",
    "challenging": "Challenging",
    "regular": "Regular",
    "occasional": "Occasional",
}

# the KPI keys the report reads; a missing one shows as "n/a"
_KPI_KEYS = (
    "period_days",
    "retention_rate",
    "customers_at_start",
    "churn_rate",
    "repeat_purchase_rate",
    "new_customer_revenue_share",
    "new_revenue_warning",
    "revenue",
    "customers_at_risk",
    "customers_scored",
    "revenue_at_risk",
    "leave_alone_count",
    "grievance_count",
    "seasonal_gap_count",
)


# --- wording ------------------------------------------------------------------------


def feature_phrase(feature: str) -> str:
    """Short, value-free words for a model feature ("days since last purchase")."""
    return registry.label(feature)


def reason_style(reason: str) -> tuple[str, str]:
    """A loss reason's label and colour; an unknown reason is drawn as unidentified."""
    if reason in LOSS_REASONS:
        return LOSS_REASONS[reason].label, LOSS_REASONS[reason].colour
    return reason.replace("_", " "), LOSS_REASONS["unidentified"].colour


def reason_meaning(reason: str) -> str:
    """What a loss reason means to someone on the phone; the key itself if unknown."""
    return LOSS_REASONS[reason].meaning if reason in LOSS_REASONS else reason


def segment_label(segment: str) -> str:
    """A customer type's name for people ("VIP"); the key itself if unknown."""
    return _SEGMENT_LABELS.get(segment, segment)


# --- the tables ---------------------------------------------------------------------


def check_columns(scored: pd.DataFrame, listed: pd.DataFrame) -> None:
    """Refuse frames the report cannot read.

    Raises:
        ValueError: ``scored`` or ``listed`` lacks one of ``REQUIRED_COLUMNS``.
    """
    for name, frame in (("scored", scored), ("listed", listed)):
        missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
        if missing:
            raise ValueError(f"render_report: `{name}` lacks columns {', '.join(missing)}")


def kpi_figures(kpis: Mapping[str, float]) -> dict[str, float | bool]:
    """The key figures the report shows, NaN where missing, and whether to warn that
    revenue depends on new customers."""
    figures: dict[str, float | bool] = {
        key: math.nan if kpis.get(key) is None else float(kpis[key]) for key in _KPI_KEYS
    }
    figures["warn_new_revenue"] = (
        figures["new_revenue_warning"] >= 1.0
        or figures["new_customer_revenue_share"] > NEW_REVENUE_WARNING_SHARE
    )
    return figures


def score_date_of(scored: pd.DataFrame, meta: Mapping[str, str]) -> str:
    """The score date to print: from ``meta``, else from the frame, else "unknown date"."""
    if meta.get("score_date"):
        return str(meta["score_date"])
    if "score_date" in scored.columns and len(scored):
        return str(pd.Timestamp(scored["score_date"].iloc[0]).date())
    return "unknown date"


def header_counts(scored: pd.DataFrame, listed: pd.DataFrame) -> dict[str, float]:
    """Customers scored and listed, the list's value at risk, and those kept off it."""
    return {
        "scored": len(scored),
        "listed": len(listed),
        "value_at_risk": float(listed["value_at_risk"].sum()),
        "left_alone": int((scored["action_rule"] == LEAVE_ALONE_RULE).sum()),
        "off_season": int((scored["action_rule"] == SEASONAL_GAP_RULE).sum()),
    }


def split_drivers(top_drivers: object) -> list[str]:
    """The "; "-joined driver sentences of one customer, as a list."""
    return [d for d in str(top_drivers or "").split("; ") if d]


def main_features(
    drivers: pd.DataFrame, customer_ids: Sequence[str], reason: str, reason_map: ReasonMap
) -> list[str]:
    """The features that push these customers' risk up most, within one reason, in words."""
    if drivers.empty:
        return []
    rows = drivers.loc[drivers.index.astype(str).isin([str(c) for c in customer_ids])]
    columns = [
        c for c in rows.columns if c in reason_map.features and reason_map.reason_of(c) == reason
    ]
    if rows.empty or not columns:
        return []
    push = rows[columns].clip(lower=0.0).sum(axis=0).sort_values(ascending=False, kind="stable")
    return [feature_phrase(str(f)) for f in push.index[:3] if push[f] > 0]


def call_first_summary(
    listed: pd.DataFrame, drivers: pd.DataFrame, reason_map: ReasonMap, call_first: int
) -> dict[str, object] | None:
    """Who to call first and why: the top ``call_first`` of the list; None if it is empty.

    Returns:
        ``customers`` (how many), their ``value_at_risk``, the whole list's
        ``value_at_risk_all`` and size ``listed``, ``share_of_list`` (their share of the
        list's value at risk, None when they are the whole list), ``main_reason`` with
        its ``main_count`` and ``main_features``, ``other_reasons`` as (reason, count),
        ``grievances``, and ``top``: the first customer's row as a dict.
    """
    if listed.empty:
        return None
    first = listed.head(call_first)
    n = len(first)
    at_risk_first = float(first["value_at_risk"].sum())
    at_risk_all = float(listed["value_at_risk"].sum())
    reasons = first["top_reason"].astype(str).value_counts()
    main = str(reasons.index[0])
    return {
        "customers": n,
        "value_at_risk": at_risk_first,
        "value_at_risk_all": at_risk_all,
        "listed": len(listed),
        "share_of_list": (
            at_risk_first / at_risk_all if len(listed) > n and at_risk_all > 0 else None
        ),
        "main_reason": main,
        "main_count": int(reasons.iloc[0]),
        "main_features": main_features(drivers, first["customer_id"].tolist(), main, reason_map),
        "other_reasons": [(str(r), int(c)) for r, c in reasons.iloc[1:].items()],
        "grievances": int((first["action_rule"] == GRIEVANCE_RULE).sum()),
        "top": first.iloc[0].to_dict(),
    }


def reason_mix(listed: pd.DataFrame) -> pd.DataFrame:
    """The list's main reasons against the documented shares, one row per reason.

    Documented reasons come first in taxonomy order, then any other reason on the list.
    ``share`` is NaN when the list is empty, ``documented`` for an undocumented reason.
    """
    reasons = list(REASONS) + sorted(set(listed["top_reason"].astype(str)) - set(REASONS))
    counts = listed["top_reason"].astype(str).value_counts().reindex(reasons, fill_value=0)
    value = listed.groupby(listed["top_reason"].astype(str))["value_at_risk"].sum()
    n = int(counts.sum())
    return pd.DataFrame(
        {
            "reason": reasons,
            "customers": [int(counts[r]) for r in reasons],
            "share": [float(counts[r]) / n if n else math.nan for r in reasons],
            "documented": [REASON_SHARES.get(r, math.nan) for r in reasons],
            "value_at_risk": [float(value.get(r, 0.0)) for r in reasons],
        }
    )


def segment_table(scored: pd.DataFrame, listed: pd.DataFrame) -> pd.DataFrame:
    """Where the value at risk sits, per customer type, most value at risk first.

    Columns ``segment``, ``customers``, ``at_risk`` (on the list), ``share`` (of the
    type on the list), ``value_at_risk``, ``left_alone``, ``off_season``; types with no
    customer are left out. :func:`segment_totals` is the matching "All" row.
    """
    order = list(SEGMENTS) + sorted(set(scored["segment"].astype(str)) - set(SEGMENTS))
    scored_seg = scored["segment"].astype(str)
    listed_seg = listed["segment"].astype(str)
    table = pd.DataFrame(
        {
            "customers": scored_seg.value_counts(),
            "at_risk": listed_seg.value_counts(),
            "value_at_risk": listed.groupby(listed_seg)["value_at_risk"].sum(),
            "left_alone": (scored["action_rule"] == LEAVE_ALONE_RULE).groupby(scored_seg).sum(),
            "off_season": (scored["action_rule"] == SEASONAL_GAP_RULE).groupby(scored_seg).sum(),
        }
    ).reindex(order)
    table = table.loc[table["customers"].fillna(0) > 0].fillna(0.0)
    table = table.sort_values("value_at_risk", ascending=False, kind="stable")
    table.insert(2, "share", table["at_risk"] / table["customers"])
    return table.rename_axis("segment").reset_index()


def segment_totals(scored: pd.DataFrame, listed: pd.DataFrame) -> dict[str, float]:
    """The "All" row of :func:`segment_table`."""
    counts = header_counts(scored, listed)
    return {
        "customers": len(scored),
        "at_risk": len(listed),
        "share": len(listed) / len(scored) if len(scored) else math.nan,
        "value_at_risk": counts["value_at_risk"],
        "left_alone": counts["left_alone"],
        "off_season": counts["off_season"],
    }


def call_list(listed: pd.DataFrame, rows: int = TABLE_ROWS) -> list[dict[str, object]]:
    """The first ``rows`` of the call list, in call order, as the table shows them."""
    return [
        {
            "position": position,
            "customer_id": r["customer_id"],
            "segment": str(r["segment"]),
            "churn_probability": float(r["churn_probability"]),
            "value_at_risk": float(r["value_at_risk"]),
            "reason": str(r["top_reason"]),
            "drivers": split_drivers(r["top_drivers"]),
            "grievance": bool(r["action_rule"] == GRIEVANCE_RULE),
            "action": r["recommended_action"],
        }
        for position, (_, r) in enumerate(listed.head(rows).iterrows(), start=1)
    ]


def win_back_table(win_back: pd.DataFrame, rows: int = TABLE_ROWS) -> list[dict[str, object]]:
    """The first ``rows`` of the win-back list, with the date their reason dates from."""
    return [
        {
            "position": position,
            "customer_id": r["customer_id"],
            "days_quiet": float(r["days_since_last_purchase"]),
            "expected_value": float(r["expected_value"]),
            "reason": str(r["top_reason"]),
            "stated": r.get("reason_source") == "stated",  # their own answer, not the drivers'
            "reason_as_of": (
                str(pd.Timestamp(r["reason_as_of"]).date()) if pd.notna(r["reason_as_of"]) else None
            ),
            "drivers": split_drivers(r["top_drivers"]),
            "action": r["recommended_action"],
        }
        for position, (_, r) in enumerate(win_back.head(rows).iterrows(), start=1)
    ]


def campaign_rows(evaluation: pd.DataFrame | None) -> dict[str, object] | None:
    """The "did the calls help?" section: overall counts, and the measured rows.

    None when there is no list history yet; ``measured`` is empty while every group is
    too small (the section then says "not enough data yet" plainly).
    """
    if evaluation is None or evaluation.empty:
        return None
    overall = evaluation.iloc[0]
    measured = evaluation.loc[evaluation["status"].eq("measured")]
    return {
        "n_contact": int(overall["n_contact"]),
        "n_holdout": int(overall["n_holdout"]),
        "status": str(overall["status"]),
        "rows": measured.to_dict("records"),
    }
