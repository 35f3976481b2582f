"""The report's two charts as geometry: bars with positions, sizes, colours and words.

The template draws each bar as an SVG ``rect``; everything it needs to know (where,
how long, what colour, what the tooltip says) is computed here, from plain frames.
"""

from __future__ import annotations

import pandas as pd

from models.reasons import REASON_SHARES, ReasonMap, describe
from models.reporting import (
    DRIVER_CUSTOMERS,
    DRIVERS_PER_CUSTOMER,
    feature_phrase,
    reason_style,
)

LOWERS_RISK_COLOUR = "#C9D1D9"
DOCUMENTED_COLOUR = "#D9DDE2"
# a driver label longer than this is cut, with the whole label as its tooltip
LABEL_CHARACTERS = 50


def reason_mix_chart(mix: pd.DataFrame) -> dict[str, object]:
    """Grouped horizontal bars: share of the list per reason next to the documented share.

    Args:
        mix: :func:`models.reporting.reason_mix` (``reason`` and ``share``; a NaN share,
            an empty list, draws no bar).

    Returns:
        ``width``, ``height``, ``label_w`` (where the bars start) and ``bars``: per
        reason its ``label``, ``colour``, top ``y``, ``share`` and ``documented`` share
        with their bar widths ``w_list`` and ``w_doc``.
    """
    label_w, bar_w, row_h, top = 150, 330, 44, 26
    shares = mix["share"].fillna(0.0)
    scale = max(max(float(shares.max()), max(REASON_SHARES.values())), 1e-9)
    bars = []
    for i, (reason, share) in enumerate(zip(mix["reason"].astype(str), shares, strict=True)):
        documented = REASON_SHARES.get(reason, 0.0)
        label, colour = reason_style(reason)
        bars.append(
            {
                "label": label,
                "colour": colour,
                "y": top + i * row_h,
                "share": float(share),
                "documented": documented,
                "w_list": bar_w * float(share) / scale,
                "w_doc": bar_w * documented / scale,
            }
        )
    return {
        "width": label_w + bar_w + 60,
        "height": top + row_h * len(mix) + 6,
        "label_w": label_w,
        "bars": bars,
    }


def driver_label(
    feature: str, customer_id: str, features: pd.DataFrame | None, reason_map: ReasonMap
) -> str:
    """A driver in the customer's own values ("no purchase for 157 days") when their
    features are known, else in generic words."""
    if features is not None and feature in reason_map.features:
        try:
            row = features.loc[customer_id]
        except KeyError:
            return feature_phrase(feature)
        try:
            return describe(reason_map, feature, row.to_dict())
        except (KeyError, TypeError, ValueError):
            return feature_phrase(feature)
    return feature_phrase(feature)


def driver_chart(
    contributions: pd.Series, customer_id: str, features: pd.DataFrame | None, reason_map: ReasonMap
) -> dict[str, object] | None:
    """A diverging bar chart of one customer: what pushes their risk up (right) or down.

    Args:
        contributions: the customer's SHAP contributions (log-odds) by feature.
        customer_id: whose they are.
        features: the scoring features indexed by ``customer_id`` (for labels), or None.
        reason_map: colours each bar that raises risk by its loss reason.

    Returns:
        None when no feature moves the risk; else ``width``, ``height``, ``label_w``,
        ``zero`` (x of the zero line) and ``bars`` (strongest first, at most
        ``DRIVERS_PER_CUSTOMER``): ``label``, ``short`` (cut label), ``x``, ``y``,
        ``w``, ``colour``, ``raises``, ``reason_label`` and ``value``.
    """
    shown = contributions.loc[contributions.abs().sort_values(ascending=False, kind="stable").index]
    shown = shown.loc[shown.abs() > 0].head(DRIVERS_PER_CUSTOMER)
    if shown.empty:
        return None
    label_w, area_w, row_h = 330, 250, 24
    up = float(shown.clip(lower=0).max())
    down = float(-shown.clip(upper=0).min())
    zero = label_w + area_w * down / (up + down)
    scale = area_w / (up + down)
    bars = []
    for i, (feature, value) in enumerate(shown.items()):
        reason = (
            reason_map.reason_of(str(feature))
            if str(feature) in reason_map.features
            else "unidentified"
        )
        reason_label, colour = reason_style(reason)
        label = driver_label(str(feature), customer_id, features, reason_map)
        bars.append(
            {
                "label": label,
                "short": (
                    label if len(label) <= LABEL_CHARACTERS else label[: LABEL_CHARACTERS - 1] + "…"
                ),
                "x": zero if value > 0 else zero - abs(value) * scale,
                "y": 4 + i * row_h,
                "w": max(abs(value) * scale, 1.0),
                "colour": colour if value > 0 else LOWERS_RISK_COLOUR,
                "raises": bool(value > 0),
                "reason_label": reason_label,
                "value": float(value),
            }
        )
    return {
        "width": label_w + area_w + 10,
        "height": row_h * len(shown) + 8,
        "label_w": label_w,
        "zero": zero,
        "bars": bars,
    }


def driver_cards(
    listed: pd.DataFrame,
    drivers: pd.DataFrame,
    features: pd.DataFrame | None,
    reason_map: ReasonMap,
    customers: int = DRIVER_CUSTOMERS,
) -> list[dict[str, object]]:
    """One card per top customer with SHAP contributions, in call order.

    Each card: ``position`` on today's list, ``customer_id``, ``segment``,
    ``churn_probability``, ``value_at_risk``, ``reason``, ``action`` and ``chart``
    (:func:`driver_chart`, None if nothing stands out).
    """
    drivers = drivers.copy()
    drivers.index = drivers.index.astype(str)
    if features is not None:
        features = features.copy()
        features.index = features.index.astype(str)
    # position on today's list (risk_rank also counts callable customers under the threshold)
    positioned = listed.assign(position=range(1, len(listed) + 1))
    chosen = positioned.loc[positioned["customer_id"].astype(str).isin(drivers.index)].head(
        customers
    )
    cards = []
    for _, r in chosen.iterrows():
        cid = str(r["customer_id"])
        cards.append(
            {
                "position": int(r["position"]),
                "customer_id": cid,
                "segment": str(r["segment"]),
                "churn_probability": float(r["churn_probability"]),
                "value_at_risk": float(r["value_at_risk"]),
                "reason": str(r["top_reason"]),
                "action": r["recommended_action"],
                "chart": driver_chart(drivers.loc[cid].astype(float), cid, features, reason_map),
            }
        )
    return cards
