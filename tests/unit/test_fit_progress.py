"""XGBoost's rounds, the candidates and the later cutoffs report through churn.progress,
and a model fitted with progress is the model fitted without it."""

import copy
import logging
import pickle

import mlflow.sklearn
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from features.build import build_features
from models.champion import SKOPS_TRUSTED_TYPES, ChurnModel
from models.classifier import build_classifier
from models.fit_progress import RoundProgress, fit_with_progress
from models.selection import refit, select_champion
from models.train_stage import plan_training, training_sets
from models.training import LabelScheme
from simulation.retail import simulate


@pytest.fixture(scope="module")
def business():
    return simulate(800, seed=3)


@pytest.fixture(scope="module")
def rows(business) -> dict[str, tuple[pd.DataFrame, pd.Series]]:
    """Features at three cutoffs with a label recency drives (learnable by every family)."""
    out = {}
    for name, cutoff in (("train", "2025-03-01"), ("valid", "2025-06-01"), ("hold", "2025-09-01")):
        f = build_features(business.transactions, cutoff, business.interactions, business.customers)
        rng = np.random.default_rng(len(out))
        risk = f["days_since_last_purchase"] / 60 - 1.5
        y = pd.Series((rng.random(len(f)) < 1 / (1 + np.exp(-risk))).astype(int), index=f.index)
        out[name] = (f, y)
    return out


@pytest.fixture
def progress(caplog, monkeypatch):
    """churn.progress's lines (the CLI may have stopped them propagating to caplog's root)."""
    monkeypatch.setattr(logging.getLogger("churn.progress"), "propagate", True)
    caplog.set_level(logging.INFO, logger="churn.progress")
    return caplog


def lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "churn.progress"]


def test_every_round_is_counted_up_to_a_summary(rows, progress):
    x, y = rows["train"]
    rounds = RoundProgress("xgboost", 30, every_s=0.0)  # a line for every round
    model = build_classifier(x.columns, n_estimators=30, early_stopping_rounds=None)
    model.set_params(callbacks=[rounds]).fit(x, y, verbose=False)

    said = lines(progress)
    # a line after each round but the last, whose place the summary takes
    assert [s.split(" ")[1] for s in said[:-1]] == [f"{i}/30" for i in range(1, 30)]
    assert said[0].startswith("xgboost: 1/30 rounds (3%), ") and said[0].endswith(" left")
    assert said[-1].startswith("xgboost: 30 rounds done in ")
    assert getattr(progress.records[-1], "final", False) is True
    assert rounds.progress is None  # nothing of the fit stays on the callback


def test_early_stopping_says_so_in_the_summary(rows, progress):
    (x, y), (xv, yv) = rows["train"], rows["valid"]
    model = build_classifier(x.columns, n_estimators=500, early_stopping_rounds=5)
    fit_with_progress(model, "xgboost", x, y, eval_set=[(xv, yv)], verbose=False)

    summary = lines(progress)[-1]
    stopped = model.best_iteration + 1 + 5  # the best round and the patience after it
    assert summary.startswith(f"xgboost: {stopped} rounds done in ")
    assert summary.endswith(" (early stopping, of 500)")


def test_progress_changes_nothing_in_the_model(rows, tmp_path):
    (x, y), (xv, yv) = rows["train"], rows["valid"]
    plain = build_classifier(x.columns).fit(x, y, eval_set=[(xv, yv)], verbose=False)
    served = ChurnModel("xgboost").fit(x, y, xv, yv)  # fitted with round progress

    assert served.estimator_.callbacks is None
    assert served.estimator_.best_iteration == plain.best_iteration
    expected = plain.predict_proba(xv)[:, 1]
    np.testing.assert_array_equal(served.raw_probability(xv), expected)
    # what the registry does with it: MLflow's skops format refuses unknown types
    mlflow.sklearn.save_model(
        served, tmp_path / "model", serialization_format="skops",
        skops_trusted_types=SKOPS_TRUSTED_TYPES,
    )  # fmt: skip
    loaded = mlflow.sklearn.load_model(str(tmp_path / "model"))
    np.testing.assert_array_equal(loaded.raw_probability(xv), expected)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(served)).raw_probability(xv), expected)
    assert clone(served).get_params() == served.get_params()


def test_the_callback_itself_pickles_and_clones():
    rounds = RoundProgress("xgboost", 200)
    again = pickle.loads(pickle.dumps(rounds))
    assert (again.label, again.rounds, again.every_s) == ("xgboost", 200, 5.0)
    assert copy.deepcopy(rounds).rounds == 200
    cloned = clone(build_classifier(callbacks=[rounds]))
    assert isinstance(cloned.callbacks[0], RoundProgress) and cloned.callbacks[0] is not rounds


def test_a_failed_fit_leaves_the_model_its_own_callbacks(rows):
    x, y = rows["train"]
    own = [RoundProgress("mine", 10)]
    model = build_classifier(x.columns, n_estimators=10, callbacks=own)
    with pytest.raises(ValueError):
        # a label XGBoost's binary objective refuses
        fit_with_progress(model, "xgboost", x, y.where(y == 0, 7), verbose=False)
    assert model.callbacks is own


def test_selection_names_each_candidate_and_the_refit(rows, progress):
    selection = select_champion(*rows["train"], *rows["valid"], *rows["hold"], ("xgboost", "bgnbd"))
    refit(selection, *rows["valid"])

    said = lines(progress)
    starts = [s for s in said if s.startswith(("candidate ", "refit: "))]
    assert starts == [
        "candidate 1 of 3: xgboost",
        "candidate 2 of 3: bgnbd",
        "candidate 3 of 3: blend",
        f"refit: {selection.winner} on {len(rows['valid'][0]):,} rows",
    ]
    # kept with the summaries (a quiet run log keeps only those): they say what is summed up
    starting = [r for r in progress.records if r.getMessage().startswith("candidate ")]
    assert all(getattr(r, "final", False) for r in starting)
    trees = said.index("candidate 1 of 3: xgboost")
    assert said[trees + 1].startswith("xgboost: ")  # its rounds, before the next candidate
    assert any(s.startswith("selection: 3 candidates done in ") for s in said)


def test_the_validation_and_holdout_sets_report_like_the_training_ones(business, progress):
    tx = business.transactions
    plan = plan_training(
        tx["timestamp"].min(), tx["timestamp"].max(), LabelScheme(), 90, 2, 30, 180
    )
    sets = training_sets(business, plan, lookback_days=365)

    said = lines(progress)
    assert any(s.startswith("training features: 2 cutoffs done in ") for s in said)
    assert any(s.startswith("validation and holdout features: 2 cutoffs done in ") for s in said)
    assert len(sets.x_valid) and len(sets.x_hold)
