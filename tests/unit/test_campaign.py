"""Control groups and the measured effect of a contact (models.campaign)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from features.contracts import InputError, validate_table
from models.campaign import (
    CONTACT,
    HOLDOUT,
    MEASURED,
    NOT_ENOUGH,
    assign_groups,
    campaign_id,
    evaluate_campaigns,
    once_per_horizon,
    retention_outcomes,
    risk_bands,
    with_reach,
)


def listed(n: int, offset: int = 0) -> pd.DataFrame:
    """n listed customers over 2 lists x 2 rules x 3 risk bands (strata of unequal size)."""
    ids = range(offset, offset + n)
    return pd.DataFrame(
        {
            "customer_id": [f"C{i}" for i in ids],
            "list": ["at_risk" if i % 3 else "win_back" for i in ids],
            "action_rule": ["grievance" if i % 2 else "competitor_offer" for i in ids],
            "churn_probability": [(i % 10) / 10 + 0.05 for i in ids],
        }
    )


def test_campaign_id_is_the_iso_week_or_the_month():
    assert campaign_id("2025-06-02") == "2025-W23"
    assert campaign_id("2024-12-30") == "2025-W01"  # ISO year, not calendar year
    assert campaign_id("2025-06-02", "month") == "2025-06"
    with pytest.raises(ValueError, match="week"):
        campaign_id("2025-06-02", "day")


def test_risk_bands_split_at_the_edges():
    bands = risk_bands(pd.Series([0.1, 0.5, 0.69, 0.7, None]))
    assert bands.tolist() == ["<0.5", "0.5-0.7", "0.5-0.7", ">=0.7", "unknown"]


def test_assignment_is_reproducible_and_ignores_row_order():
    frame = listed(200)
    first = assign_groups(frame, "2025-W23")
    again = assign_groups(frame.sample(frac=1.0, random_state=1), "2025-W23")
    assert set(first["group"]) == {CONTACT, HOLDOUT}
    assert (first["campaign"] == "2025-W23").all()
    assert first.set_index("customer_id")["group"].equals(
        again.set_index("customer_id")["group"].loc[first["customer_id"]]
    )
    # another campaign draws another holdout
    other = assign_groups(frame, "2025-W24")
    assert not other["group"].equals(first["group"])


def test_each_stratum_holds_its_share_within_rounding():
    frame = listed(437)
    groups = assign_groups(frame, "2025-W23", holdout_share=0.10)
    strata = [frame["list"], frame["action_rule"], risk_bands(frame["churn_probability"])]
    per = groups.groupby(strata)["group"].agg(n="size", held=lambda g: int(g.eq(HOLDOUT).sum()))
    assert len(per) == 12
    assert ((per["held"] - 0.10 * per["n"]).abs() < 1).all()
    # and the list as a whole is as close as rounding allows: round(43.7) = 44
    assert int(groups["group"].eq(HOLDOUT).sum()) == 44


def test_customers_keep_their_group_within_a_campaign():
    monday = assign_groups(listed(150), "2025-W23")
    # Tuesday: 100 of Monday's customers again, 100 new ones
    tuesday_list = pd.concat([listed(100, offset=50), listed(100, offset=150)])
    tuesday = assign_groups(tuesday_list, "2025-W23", earlier=monday)
    both = monday.merge(tuesday, on="customer_id", suffixes=("_mon", "_tue"))
    assert len(both) == 100
    assert (both["group_mon"] == both["group_tue"]).all()
    # the share still holds within rounding per stratum, counting the kept customers
    strata = [
        tuesday["list"],
        tuesday["action_rule"],
        risk_bands(tuesday["churn_probability"]),
    ]
    per = tuesday.groupby(strata)["group"].agg(n="size", held=lambda g: int(g.eq(HOLDOUT).sum()))
    assert ((per["held"] - 0.10 * per["n"]).abs() <= 1).all()


def test_no_holdout_share_contacts_everyone():
    assert set(assign_groups(listed(30), "c", holdout_share=0.0)["group"]) == {CONTACT}


def history_and_sales() -> tuple[pd.DataFrame, pd.DataFrame]:
    history = pd.DataFrame(
        {
            "campaign": ["w1", "w1", "w1", "w1", "w1", "w2"],
            "customer_id": ["A", "B", "C", "D", "A", "E"],
            "score_date": pd.to_datetime(
                ["2025-01-01", "2025-01-01", "2025-01-01", "2025-01-01", "2025-01-02"]
                + ["2025-03-01"]
            ),
            "list": "at_risk",
            "action_rule": "grievance",
            "group": [CONTACT, CONTACT, HOLDOUT, HOLDOUT, CONTACT, CONTACT],
            "expected_value": 10.0,
        }
    )
    sales = pd.DataFrame(
        {
            "customer_id": ["A", "B", "C", "D", "E", "X"],
            "timestamp": pd.to_datetime(
                ["2025-01-15", "2025-01-31", "2025-01-10", "2024-12-31", "2025-03-02"]
                + ["2025-02-10"]
            ),
            "amount": [5.0, 5.0, -5.0, 5.0, 5.0, 5.0],
        }
    )
    return history, sales


def test_retention_is_a_purchase_within_the_horizon_of_the_first_listing():
    history, sales = history_and_sales()
    outcomes = retention_outcomes(history, sales, horizon_days=30)
    # A is counted once (its first night); E's horizon (to 2025-03-31) has not passed
    # A bought on day 14; B on day 30 (outside [day 0, day 30)); C only refunded; D before
    assert outcomes["customer_id"].tolist() == ["A", "B", "C", "D"]
    assert outcomes["retained"].tolist() == [True, False, False, False]


def test_retention_of_an_empty_history_is_empty():
    _, sales = history_and_sales()
    assert retention_outcomes(pd.DataFrame(), sales, 30).empty


def crafted_outcomes() -> pd.DataFrame:
    """40 contacted (30 retained, value 100) vs 40 held out (20 retained); 10 + 10 win-back."""
    rows = (
        [("at_risk", "grievance", CONTACT, 100.0, i < 30) for i in range(40)]
        + [("at_risk", "grievance", HOLDOUT, 50.0, i < 20) for i in range(40)]
        + [("win_back", "win_back_offer", CONTACT, 20.0, i < 5) for i in range(10)]
        + [("win_back", "win_back_offer", HOLDOUT, 20.0, i < 5) for i in range(10)]
    )
    columns = ["list", "action_rule", "group", "expected_value", "retained"]
    return pd.DataFrame(rows, columns=columns)


def test_effect_and_interval_on_crafted_outcomes():
    result = evaluate_campaigns(crafted_outcomes(), min_group=30).set_index("list")
    grievance = result.loc["at_risk"]
    half = 1.959963984540054 * math.sqrt(0.75 * 0.25 / 40 + 0.5 * 0.5 / 40)
    assert grievance["n_contact"] == grievance["n_holdout"] == 40
    assert grievance["retention_contact"] == 0.75 and grievance["retention_holdout"] == 0.5
    assert grievance["difference"] == pytest.approx(0.25, abs=1e-12)
    assert grievance["ci_low"] == pytest.approx(0.25 - half, abs=1e-12)
    assert grievance["ci_high"] == pytest.approx(0.25 + half, abs=1e-12)
    assert half == pytest.approx(0.2049789, abs=1e-6)
    # 0.25 x 40 contacted x 100 mean expected value of the contacted
    assert grievance["value_saved"] == pytest.approx(1000.0)
    assert grievance["status"] == MEASURED

    overall = result.loc["overall"]
    p1, p0 = 35 / 50, 25 / 50
    assert overall["n_contact"] == overall["n_holdout"] == 50
    assert overall["difference"] == pytest.approx(p1 - p0)
    assert overall["value_saved"] == pytest.approx((p1 - p0) * 50 * (40 * 100 + 10 * 20) / 50)


def test_small_groups_say_not_enough_data_yet():
    result = evaluate_campaigns(crafted_outcomes(), min_group=30).set_index("list")
    win_back = result.loc["win_back"]
    assert win_back["status"] == NOT_ENOUGH
    assert win_back["retention_contact"] == 0.5  # the rates are shown, the effect is not
    assert math.isnan(win_back["difference"]) and math.isnan(win_back["value_saved"])
    nothing = evaluate_campaigns(crafted_outcomes().iloc[0:0])
    assert nothing["status"].tolist() == [NOT_ENOUGH]
    assert nothing["n_contact"].tolist() == [0]


def test_a_customer_listed_night_after_night_is_measured_once_per_horizon():
    days = pd.to_datetime(["2025-01-01", "2025-01-02", "2025-01-30", "2025-01-31", "2025-03-05"])
    listings = pd.DataFrame({"customer_id": ["A", "A", "A", "A", "B"], "score_date": days})
    # A opens a window on 01-01; 01-02 and 01-30 fall inside it; 01-31 is 30 days later
    assert once_per_horizon(listings, pd.Timedelta(days=30)).tolist() == [
        True,
        False,
        False,
        True,
        True,
    ]


def test_reach_tells_assigned_from_called_and_scales_the_effect():
    outcomes = crafted_outcomes().query("list == 'at_risk'").reset_index(drop=True)
    outcomes["customer_id"] = [f"C{i}" for i in range(len(outcomes))]
    outcomes["score_date"] = pd.Timestamp("2025-01-01")
    # half the contact group reached inside the horizon; one more called too late; one
    # marked not reached; one held-out customer reached anyway
    contacts = pd.DataFrame(
        {
            "customer_id": [f"C{i}" for i in range(20)] + ["C20", "C21", "C45"],
            "timestamp": [pd.Timestamp("2025-01-05")] * 20
            + [pd.Timestamp("2025-03-05"), pd.Timestamp("2025-01-05"), pd.Timestamp("2025-01-02")],
            "reached": [True] * 20 + [True, False, True],
        }
    )
    reached = with_reach(outcomes, contacts, horizon_days=30)
    assert reached["reached"].sum() == 21
    row = evaluate_campaigns(reached, min_group=30).set_index("list").loc["at_risk"]
    assert row["reach_rate"] == 0.5
    assert row["holdout_contacted"] == 1
    # the assignment's effect (0.25) over the share reached
    assert row["effect_if_reached"] == pytest.approx(0.5)


def test_a_contacts_export_is_validated_like_every_input():
    bad = pd.DataFrame(
        {"customer_id": ["A", "B", "C"], "timestamp": ["2025-01-01", "not a date", "2025-01-03"]}
    )
    with pytest.raises(InputError, match=r"contacts\.csv: column 'timestamp'.*row 2"):
        validate_table(bad, "contacts", "contacts.csv")
    with pytest.raises(InputError, match="customer_id"):
        validate_table(bad.drop(columns="customer_id"), "contacts", "contacts.csv")
    good = validate_table(bad.drop(index=1), "contacts", "contacts.csv").frame
    assert len(good) == 2 and good["timestamp"].dtype.kind == "M"


def test_groups_are_compared_within_the_strata_they_were_drawn_in():
    # no effect anywhere; the held out are mostly grievance customers, who stay more often
    rows = (
        [("at_risk", "grievance", CONTACT, 1.0, i < 40) for i in range(50)]
        + [("at_risk", "grievance", HOLDOUT, 1.0, i < 32) for i in range(40)]
        + [("at_risk", "competitor_offer", CONTACT, 1.0, i < 40) for i in range(200)]
        + [("at_risk", "competitor_offer", HOLDOUT, 1.0, i < 2) for i in range(10)]
    )
    outcomes = pd.DataFrame(
        rows, columns=["list", "action_rule", "group", "expected_value", "retained"]
    )
    pooled = 80 / 250 - 34 / 50  # what comparing the two groups whole would say: -0.36
    overall = evaluate_campaigns(outcomes, min_group=30).iloc[0]
    assert pooled == pytest.approx(-0.36)
    assert overall["difference"] == pytest.approx(0.0, abs=1e-12)
    # 0.8 x 50/250 + 0.2 x 200/250 for both groups, weighted by the contacted
    assert overall["retention_contact"] == overall["retention_holdout"] == pytest.approx(0.32)
    assert overall["ci_low"] < 0 < overall["ci_high"]


@pytest.mark.parametrize("index", ["range", "ids"])
def test_groups_in_the_scores_are_the_lists_by_position_or_by_id(index):
    """The scores' campaign and group come from the lists' rows: by position when the
    lists are rows of the scores (their labels), by id otherwise; the same either way."""
    from models.nightly import with_groups

    scores = listed(90).assign(churn_probability=lambda f: f["churn_probability"] + 0.01)
    scores["list"] = ["at_risk"] * 40 + ["win_back"] * 30 + [""] * 20
    at_risk = scores.iloc[:40].sort_values("churn_probability", kind="stable").head(35)
    win_back = scores.iloc[40:70]
    if index == "ids":  # labels that are not the scores' positions
        scores = scores.set_axis(range(1000, 1090))
    got_at_risk, got_win_back, got = with_groups(at_risk, win_back, scores, "2025-W23", 0.2, (0.5,))
    ids = pd.concat([got_at_risk, got_win_back]).set_index("customer_id")
    assert got.index.equals(scores.index)
    on = got["customer_id"].isin(ids.index)
    assert on.sum() == 65 and (got.loc[~on, ["campaign", "group"]] == "").all().all()
    looked_up = ids.loc[got.loc[on, "customer_id"], ["campaign", "group"]]
    assert got.loc[on, ["campaign", "group"]].to_numpy().tolist() == looked_up.to_numpy().tolist()
    assert set(got.loc[on, "group"]) == {CONTACT, HOLDOUT}
    if index == "range":  # the same frames as the lookup by id gives
        _, _, by_id = with_groups(
            at_risk, win_back, scores.set_axis(range(1000, 1090)), "2025-W23", 0.2, (0.5,)
        )
        pd.testing.assert_frame_equal(got.set_axis(by_id.index), by_id, check_exact=True)
