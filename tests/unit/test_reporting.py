"""The report's summary tables and chart geometry, on tiny inline frames."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from models.reasons import REASONS, load_reason_map
from models.report_charts import LOWERS_RISK_COLOUR, driver_chart, reason_mix_chart
from models.reporting import (
    call_first_summary,
    call_list,
    feature_phrase,
    kpi_figures,
    reason_meaning,
    reason_mix,
    reason_style,
    segment_label,
    segment_table,
    segment_totals,
)


def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Four scored customers; A, B and C are on the list, D is left alone."""
    scored = pd.DataFrame(
        {
            "customer_id": ["A", "B", "C", "D"],
            "churn_probability": [0.9, 0.8, 0.6, 0.1],
            "value_at_risk": [50.0, 30.0, 20.0, 4.0],
            "segment": ["vip", "regular", "vip", "fan"],
            "top_reason": [
                "poor_interaction",
                "competitor_offer",
                "poor_interaction",
                "relocation",
            ],
            "top_drivers": ["3 open issues; no purchase for 80 days", "", "x", "y"],
            "recommended_action": ["Apologise", "Match the offer", "Call", "Thank"],
            "action_rule": ["grievance", "competitor_offer", "poor_interaction", "leave_alone"],
        }
    )
    return scored, scored.head(3)


def test_wording_falls_back_to_the_key():
    assert feature_phrase("unresolved_90d") == "unresolved issues"
    assert feature_phrase("odd_new_feature") == "odd new feature"
    assert reason_style("relocation") == ("Relocation", "#009E73")
    assert reason_style("new_reason") == ("new reason", reason_style("unidentified")[1])
    assert reason_meaning("relocation") == "they moved to another region or channel"
    assert reason_meaning("new_reason") == "new_reason"
    assert segment_label("vip") == "VIP"
    assert segment_label("odd") == "odd"


def test_reason_mix_counts_the_list_against_the_documented_shares():
    _, listed = frames()
    listed = listed.assign(top_reason=["poor_interaction", "poor_interaction", "new_reason"])
    mix = reason_mix(listed).set_index("reason")
    assert list(mix.index) == [*REASONS, "new_reason"]
    assert mix.loc["poor_interaction"].tolist() == [2, 2 / 3, 0.68, 80.0]
    assert mix.loc["relocation"].tolist() == [0, 0.0, 0.03, 0.0]
    assert mix.loc["new_reason", "share"] == 1 / 3
    assert math.isnan(mix.loc["new_reason", "documented"])
    assert reason_mix(listed.iloc[0:0])["share"].isna().all()


def test_reason_mix_chart_scales_to_the_largest_share():
    _, listed = frames()
    chart = reason_mix_chart(reason_mix(listed))
    bars = {bar["label"]: bar for bar in chart["bars"]}
    # the documented 68% of poor interaction is the largest share (above 2 of 3 on the
    # list), so its bar is the full 330 px and the others are drawn to its scale
    assert bars["Poor interaction"]["w_doc"] == pytest.approx(330.0)
    assert bars["Poor interaction"]["w_list"] == pytest.approx(330 * (2 / 3) / 0.68)
    assert bars["Relocation"]["w_list"] == 0.0
    assert (chart["width"], chart["height"]) == (540, 26 + 44 * len(REASONS) + 6)


def test_segment_table_puts_the_most_value_at_risk_first_with_an_all_row():
    scored, listed = frames()
    table = segment_table(scored, listed)
    assert table["segment"].tolist() == ["vip", "regular", "fan"]
    assert table.loc[0, ["customers", "at_risk", "share", "value_at_risk"]].tolist() == [
        2.0,
        2.0,
        1.0,
        70.0,
    ]
    assert table.loc[2, ["customers", "at_risk", "left_alone", "off_season"]].tolist() == [
        1.0,
        0.0,
        1.0,
        0.0,
    ]
    assert segment_totals(scored, listed) == {
        "customers": 4,
        "at_risk": 3,
        "share": 0.75,
        "value_at_risk": 100.0,
        "left_alone": 1,
        "off_season": 0,
    }


def test_call_first_summary_covers_the_top_of_the_list():
    scored, listed = frames()
    drivers = pd.DataFrame(
        {"unresolved_90d": [0.8, 0.0], "tenure_days": [0.5, 0.1]}, index=["A", "C"]
    )
    summary = call_first_summary(listed, drivers, load_reason_map(), call_first=2)
    assert summary is not None
    assert summary["customers"] == 2
    assert summary["value_at_risk"] == 80.0
    assert summary["share_of_list"] == 0.8
    # A (poor interaction) and B (competitor offer) tie; the first one seen leads
    assert summary["main_reason"] == "poor_interaction"
    assert summary["main_features"] == ["unresolved issues"]
    assert summary["other_reasons"] == [("competitor_offer", 1)]
    assert summary["grievances"] == 1
    assert summary["top"]["customer_id"] == "A"
    whole = call_first_summary(listed, drivers, load_reason_map(), call_first=25)
    assert whole is not None and whole["share_of_list"] is None
    assert call_first_summary(listed.iloc[0:0], drivers, load_reason_map(), 25) is None


def test_call_list_splits_drivers_and_flags_grievances():
    _, listed = frames()
    rows = call_list(listed, rows=2)
    assert [r["position"] for r in rows] == [1, 2]
    assert rows[0]["drivers"] == ["3 open issues", "no purchase for 80 days"]
    assert rows[1]["drivers"] == []
    assert [r["grievance"] for r in rows] == [True, False]


def test_driver_chart_diverges_around_zero_strongest_first():
    contributions = pd.Series({"tenure_days": -0.2, "unresolved_90d": 0.6, "spend_90d": 0.0})
    chart = driver_chart(contributions, "A", None, load_reason_map())
    assert chart is not None
    # 0.2 down and 0.6 up share 250 px: zero at 330 + 250 * 0.2 / 0.8
    assert chart["zero"] == 392.5
    up, down = chart["bars"]
    assert (up["label"], up["x"], up["w"], up["raises"]) == (
        "unresolved issues",
        392.5,
        187.5,
        True,
    )
    assert up["colour"] == reason_style("poor_interaction")[1]
    assert (down["x"], down["w"], down["colour"]) == (330.0, 62.5, LOWERS_RISK_COLOUR)
    assert chart["height"] == 2 * 24 + 8
    assert driver_chart(pd.Series({"tenure_days": 0.0}), "A", None, load_reason_map()) is None


def test_kpi_figures_mark_missing_values_and_the_new_revenue_warning():
    figures = kpi_figures({"churn_rate": 0.25, "new_customer_revenue_share": 0.75})
    assert figures["churn_rate"] == 0.25
    assert math.isnan(figures["retention_rate"])
    assert figures["warn_new_revenue"] is True
    assert kpi_figures({"new_customer_revenue_share": 0.5})["warn_new_revenue"] is False
    assert kpi_figures({"new_revenue_warning": 1.0})["warn_new_revenue"] is True
