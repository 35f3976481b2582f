"""Candidates compete on validation rows, the winner is refit and calibrated."""

import numpy as np
import pandas as pd
import pytest

from features.build import build_features
from models.champion import CANDIDATES, ChurnModel, model_contributions
from models.metrics import evaluate
from models.selection import Selection, refit, select_champion, validation_halves
from simulation.retail import simulate


@pytest.fixture(scope="module")
def rows() -> dict[str, tuple[pd.DataFrame, pd.Series]]:
    """Feature rows at three cutoffs of a small business, with a label that recency and
    unresolved issues drive (what any candidate can learn)."""
    business = simulate(1200, seed=4)
    out = {}
    for name, cutoff in (("train", "2025-03-01"), ("valid", "2025-06-01"), ("hold", "2025-09-01")):
        f = build_features(business.transactions, cutoff, business.interactions, business.customers)
        rng = np.random.default_rng(len(out))
        risk = f["days_since_last_purchase"] / 60 + f["unresolved_90d"] - 1.5
        y = pd.Series((rng.random(len(f)) < 1 / (1 + np.exp(-risk))).astype(int), index=f.index)
        out[name] = (f, y)
    return out


@pytest.fixture(scope="module")
def selection(rows) -> Selection:
    return select_champion(*rows["train"], *rows["valid"], *rows["hold"], CANDIDATES)


def test_validation_halves_are_stable_and_disjoint():
    ids = pd.Index([f"C{i:04d}" for i in range(1000)])
    stop, select = validation_halves(ids)

    assert not (stop & select).any() and (stop | select).all()
    assert 400 < select.sum() < 600
    again = validation_halves(ids[::-1])[1][::-1]
    assert (again == select).all()  # by id, not by position


def test_every_candidate_is_on_the_leaderboard_and_the_winner_serves(selection):

    board = selection.leaderboard
    assert list(board.index) == [*CANDIDATES, "blend"]
    for column in ("validation_roc_auc", "holdout_roc_auc", "holdout_brier"):
        assert board[column].notna().all()
    assert board["serves"].sum() == 1
    assert board.index[board["serves"]][0] == selection.winner
    assert selection.winner == board["validation_roc_auc"].idxmax()


def test_the_holdout_never_selects(rows, selection):
    x_hold, y_hold = rows["hold"]
    honest = selection
    # the holdout's outcomes turned upside down: its metrics change, the choice does not
    flipped = select_champion(*rows["train"], *rows["valid"], x_hold, 1 - y_hold, CANDIDATES)

    assert flipped.winner == honest.winner
    pd.testing.assert_series_equal(
        flipped.leaderboard["validation_roc_auc"], honest.leaderboard["validation_roc_auc"]
    )
    assert not np.allclose(
        flipped.leaderboard["holdout_roc_auc"], honest.leaderboard["holdout_roc_auc"]
    )


def test_the_refit_learns_from_the_latest_window(rows):
    x_train, y_train = rows["train"]
    x_valid, y_valid = rows["valid"]
    x_hold, y_hold = rows["hold"]
    selection = select_champion(x_train, y_train, x_valid, y_valid, x_hold, y_hold, ["xgboost"])
    # the latest window says the opposite of the earlier ones: only a model trained on it
    # can follow
    x_refit = pd.concat([x_train, x_valid, x_hold])
    reversed_latest = pd.concat([y_train, y_valid, 1 - y_hold])

    served = refit(selection, x_refit, reversed_latest)

    assert served.kind == "xgboost"
    assert served.n_trees == selection.model.n_trees  # the selected size, no early stopping
    assert served.calibrator_ is selection.model.calibrator_
    before = evaluate(1 - y_hold, selection.model.raw_probability(x_hold))["roc_auc"]
    after = evaluate(1 - y_hold, served.raw_probability(x_hold))["roc_auc"]
    assert after > before + 0.2


def test_calibration_repairs_a_miscalibrated_model():
    # a score that ranks perfectly well but whose probabilities are far too high
    rng = np.random.default_rng(0)
    n = 4000
    days = pd.Series(rng.uniform(0, 200, n))
    features = pd.DataFrame(
        {
            "days_since_last_purchase": days,
            "purchases_365d": rng.integers(1, 20, n).astype(float),
            "spend_365d": rng.uniform(10, 1000, n),
        }
    )
    truth = (rng.random(n) < 0.1 + 0.3 * (days > 150)).astype(int)
    y = pd.Series(truth)
    # trained on an exaggerated label: raw probabilities near 0/1 for every customer
    exaggerated = pd.Series((days > 100).astype(int))
    model = ChurnModel("logistic_rfm").fit(features, exaggerated)
    half = n // 2
    raw_brier = evaluate(y[half:], model.predict_proba(features[half:])[:, 1])["brier"]

    model.calibrate(features[:half], y[:half])
    calibrated = evaluate(y[half:], model.predict_proba(features[half:])[:, 1])["brier"]

    assert calibrated < raw_brier - 0.05
    assert calibrated == pytest.approx(
        np.mean((truth[half:] - np.where(days[half:] > 150, 0.4, 0.1)) ** 2), abs=0.02
    )


def test_a_blend_refits_every_component(rows, selection):
    blend = selection.models["blend"]
    forced = Selection("blend", selection.models, selection.leaderboard)
    x_refit = pd.concat([rows["train"][0], rows["valid"][0]])
    y_refit = pd.concat([rows["train"][1], rows["valid"][1]])

    served = refit(forced, x_refit, y_refit)

    assert [p.kind for p in served.components_] == list(CANDIDATES)
    assert all(a is not b for a, b in zip(served.components_, blend.components_, strict=True))
    p = served.predict_proba(rows["hold"][0])[:, 1]
    assert ((p >= 0) & (p <= 1)).all() and p.std() > 0
    contribs = model_contributions(served, rows["hold"][0].head(20))
    assert list(contribs.columns) == list(rows["hold"][0].columns)


@pytest.mark.parametrize("kind", CANDIDATES)
def test_contributions_cover_the_input_features_and_explain_the_log_odds(rows, kind):
    x, y = rows["train"]
    model = ChurnModel(kind).fit(x, y, *rows["valid"])

    contribs = model_contributions(model, x.head(50))

    assert list(contribs.columns) == list(x.columns)
    assert np.isfinite(contribs.to_numpy()).all()
    if kind.startswith("xgboost"):
        # TreeSHAP: contributions plus the bias give the raw log-odds
        raw = model.raw_probability(x.head(50))
        spread = contribs.sum(axis=1).to_numpy()
        order = np.argsort(spread)
        assert np.all(np.diff(raw[order]) >= -1e-6)
