"""Behavioural checks on a model trained on simulated data (no MLflow needed here)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.build import build_features
from models.playbook import load_playbook
from models.reasons import load_reason_map
from models.scoring import score_customers
from models.training import choose_cutoffs, fit_classifier, labelled_features, stack_cutoffs
from simulation.retail import simulate


@pytest.fixture(scope="module")
def business():
    return simulate(n_customers=2000, seed=11)


@pytest.fixture(scope="module")
def fitted(business):
    tx, ix, cu = business.transactions, business.interactions, business.customers
    cutoffs = choose_cutoffs(tx["timestamp"].min(), tx["timestamp"].max(), label_days=180)
    x_train, y_train = stack_cutoffs(tx, cutoffs.train, ix, cu, 90, 365)
    x_valid, y_valid = labelled_features(tx, cutoffs.validation, ix, cu, 90, 365)
    x_hold, y_hold = labelled_features(tx, cutoffs.holdout, ix, cu, 90, 365)
    return fit_classifier(x_train, y_train, x_valid, y_valid), x_hold, y_hold


def proba(model, x: pd.DataFrame) -> np.ndarray:
    return model.predict_proba(x)[:, 1]


@pytest.mark.parametrize(
    ("feature", "step"),
    [
        ("unresolved_30d", 2),
        ("unresolved_90d", 3),
        ("complaints_90d", 2),
        ("failed_payments_180d", 2),
    ],
)
def test_more_grievances_never_lower_risk(fitted, feature, step):
    model, x, _ = fitted
    worse = x.assign(**{feature: x[feature] + step})
    assert (proba(model, worse) >= proba(model, x) - 1e-7).all()


def test_higher_satisfaction_never_raises_risk(fitted):
    model, x, _ = fitted
    happier = x.assign(satisfaction_last=5.0, satisfaction_mean_365d=5.0)
    assert (proba(model, happier) <= proba(model, x) + 1e-7).all()


def test_row_order_does_not_change_a_customers_score(fitted):
    model, x, _ = fitted
    shuffled = x.sample(frac=1.0, random_state=7)
    original = pd.Series(proba(model, x), index=x.index)
    again = pd.Series(proba(model, shuffled), index=shuffled.index)
    pd.testing.assert_series_equal(original.sort_index(), again.sort_index())


def test_input_row_order_does_not_change_features(business):
    tx = business.transactions
    shuffled = tx.sample(frac=1.0, random_state=3).reset_index(drop=True)
    a = build_features(tx, "2025-06-01", business.interactions, business.customers)
    b = build_features(shuffled, "2025-06-01", business.interactions, business.customers)
    pd.testing.assert_frame_equal(a, b)


def test_model_ranks_holdout_churners_above_stayers(fitted):
    model, x, y = fitted
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(y, proba(model, x)) > 0.85


def test_known_cases_score_as_expected(fitted):
    model, x, _ = fitted
    steady = x.loc[(x["purchases_90d"] >= 4) & (x["days_since_last_purchase"] <= 10)]
    gone_quiet = x.loc[(x["purchases_90d"] == 0) & (x["unresolved_90d"] >= 2)]
    assert len(steady) >= 10 and len(gone_quiet) >= 5
    assert np.median(proba(model, steady)) < 0.2
    assert np.median(proba(model, gone_quiet)) > 0.8


def test_unresolved_tickets_make_poor_interaction_the_reason(fitted):
    model, x, _ = fitted
    row = x.loc[(x["unresolved_90d"] == 0) & (x["purchases_90d"] <= 1)].head(20)
    angry = row.assign(
        unresolved_30d=3.0, unresolved_90d=4.0, unresolved_share_90d=1.0, satisfaction_last=1.0
    )
    scored = score_customers(
        model, angry, load_reason_map(), load_playbook(), 90, "t", pd.Timestamp("2026-01-01")
    )
    assert (scored["top_reason"] == "poor_interaction").mean() >= 0.9
    # and the grievance override fires: apology first, never a promotion
    assert (scored["action_rule"] == "grievance").all()
