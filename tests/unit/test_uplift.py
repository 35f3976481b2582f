import numpy as np
import pandas as pd
import pytest

from models.campaign import CONTACT, HOLDOUT, matured_outcomes, retention_outcomes
from models.uplift import (
    RISK,
    UPLIFT,
    UpliftModel,
    choose_ranking,
    compare_rankings,
    expected_saved_value,
    order_by_saved_value,
    qini_coefficient,
    qini_curve,
    uplift_at_k,
    uplift_design,
)


def test_qini_curve_counts_extra_customers_kept_at_each_depth():
    score = np.array([0.9, 0.8, 0.7, 0.6])
    treated = np.array([True, False, True, False])
    retained = np.array([True, False, True, True])
    curve = qini_curve(score, treated, retained)
    # depth 1: 1 kept contacted, no control yet; depth 2: 1 - 0*1/1; depth 3: 2 - 0*2/1;
    # depth 4: 2 - 1*2/2
    assert curve["qini"].tolist() == [0.0, 1.0, 1.0, 2.0, 1.0]
    assert curve["share"].tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]


def test_a_perfect_ranking_has_a_larger_qini_than_its_reverse():
    treated = np.array([True, False] * 50)
    # the first 40 rows are persuadables: retained only when called
    retained = np.r_[treated[:40], np.zeros(60, dtype=bool)]
    good = np.linspace(1, 0, 100)
    assert qini_coefficient(good, treated, retained) > 0
    assert qini_coefficient(-good, treated, retained) < 0


def test_uplift_at_k_is_the_retention_difference_in_the_top_share():
    score = np.arange(10, 0, -1)
    treated = np.array([1, 1, 0, 0, 1, 0, 1, 0, 1, 0], dtype=bool)
    retained = np.array([1, 1, 0, 1, 0, 0, 0, 0, 0, 0], dtype=bool)
    # top 40%: contacted retained 2/2, held out 1/2
    assert uplift_at_k(score, treated, retained, 0.4) == pytest.approx(0.5)
    assert np.isnan(uplift_at_k(score, treated, retained, 0.2))  # only contacted


def test_expected_saved_value_is_uplift_times_value_minus_cost():
    assert expected_saved_value(np.array([0.1, -0.2]), np.array([500, 100]), 10).tolist() == [
        40.0,
        -30.0,
    ]


def test_design_keeps_the_fitted_columns_for_new_rows():
    rows = pd.DataFrame({"churn_probability": [0.4, 0.6], "top_reason": ["a", "b"]})
    fitted = uplift_design(rows)
    assert list(fitted.columns) == ["churn_probability", "top_reason_a", "top_reason_b"]
    new = uplift_design(
        pd.DataFrame({"churn_probability": [0.5], "top_reason": ["c"]}), fitted.columns
    )
    assert new.iloc[0].tolist() == [0.5, 0.0, 0.0]


def _campaigns(n: int = 6000, seed: int = 1) -> pd.DataFrame:
    """Persuadables are the low-risk poor-interaction customers; the high-risk are lost."""
    rng = np.random.default_rng(seed)
    risk = rng.uniform(0.3, 0.95, n)
    reason = rng.choice(["poor_interaction", "competitor_offer"], n)
    group = np.where(rng.uniform(size=n) < 0.3, HOLDOUT, CONTACT)
    base = 1 - risk
    effect = np.where((reason == "poor_interaction") & (risk < 0.6), 0.35, 0.0)
    retained = rng.uniform(size=n) < base + effect * (group == CONTACT)
    return pd.DataFrame(
        {
            "campaign": np.repeat([f"2025-W{w:02d}" for w in range(1, 7)], n // 6),
            "churn_probability": risk,
            "top_reason": reason,
            "group": group,
            "retained": retained,
        }
    )


def test_the_t_learner_finds_where_a_call_helps():
    rows = _campaigns()
    model = UpliftModel(seed=0).fit(rows, rows["retained"])
    probe = pd.DataFrame(
        {
            "churn_probability": [0.45, 0.45, 0.9],
            "top_reason": ["poor_interaction", "competitor_offer", "poor_interaction"],
        }
    )
    helped, not_helped, lost = model.predict(probe)
    assert helped > 0.2
    assert abs(not_helped) < 0.12 and abs(lost) < 0.12


def test_uplift_ranking_is_chosen_only_when_it_wins_on_unseen_campaigns():
    comparison, model = compare_rankings(_campaigns())
    assert comparison.ranking == UPLIFT and model is not None
    assert comparison.qini_uplift > comparison.qini_risk
    assert comparison.test_campaigns == 2


def test_where_calls_change_nothing_risk_ranking_stays_in_nine_of_ten_worlds():
    chosen = []
    for seed in range(10):
        rows = _campaigns()
        rng = np.random.default_rng(seed)
        rows["retained"] = rng.uniform(size=len(rows)) < 1 - rows["churn_probability"]
        comparison, model = compare_rankings(rows)
        chosen.append(comparison.ranking)
        if comparison.ranking == RISK:
            assert "does not beat risk ranking" in comparison.reason
        assert (model is None) == (comparison.ranking == RISK)
    # the bound is one-sided at 5%: a chance win is allowed once in ten null worlds
    assert chosen.count(RISK) >= 9


def test_too_few_campaigns_says_so_plainly():
    rows = _campaigns().query("campaign <= '2025-W02'")
    comparison, model = compare_rankings(rows)
    assert comparison.ranking == RISK and model is None
    assert comparison.reason.startswith("not enough matured campaigns yet")


def test_the_list_is_ordered_by_what_a_call_can_save_once_uplift_wins():
    rows = _campaigns()
    model = UpliftModel(seed=0).fit(rows, rows["retained"])
    listed = pd.DataFrame(
        {
            "customer_id": ["lost", "persuadable", "competitor"],
            "churn_probability": [0.9, 0.45, 0.45],
            "top_reason": ["poor_interaction", "poor_interaction", "competitor_offer"],
            "expected_value": [100.0, 100.0, 100.0],
        }
    )
    ordered = order_by_saved_value(listed, model, contact_cost=10.0)
    assert ordered["customer_id"].iloc[0] == "persuadable"
    assert list(ordered.columns) == list(listed.columns)


def test_tonights_ranking_learns_only_from_horizons_ended_by_the_score_date():
    history = _campaigns()
    history["customer_id"] = [f"C{i}" for i in range(len(history))]
    history["list"] = "at_risk"
    history["action_rule"] = history["top_reason"]
    history["expected_value"] = 50.0
    history["score_date"] = pd.Timestamp("2025-06-02")
    # every purchase that would say who was retained comes after the score date + horizon
    kept = history.loc[history["retained"], "customer_id"]
    sales = pd.DataFrame(
        {
            "customer_id": [*kept, "later"],
            "timestamp": [pd.Timestamp("2025-06-25")] * len(kept) + [pd.Timestamp("2025-07-15")],
            "amount": 20.0,
        }
    )
    # read to the end of the data, the same history would be a matured campaign
    assert compare_rankings(retention_outcomes(history, sales, 30))[0].test_campaigns > 0
    matured = matured_outcomes(history, sales, 30, cutoff=pd.Timestamp("2025-06-20"))
    comparison, model = choose_ranking(matured)
    assert comparison.ranking == RISK and model is None
    assert "yet for an uplift model (0 campaigns" in comparison.reason
    no_history, _ = choose_ranking(None)
    assert no_history.reason == "no list history yet: ranked by value at risk"
