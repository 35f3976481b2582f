"""The dask engine on a real two-process LocalCluster against the local engine.

Same small simulated business through both: the features must be identical (same
customers, same values, same dtypes), scores of one model within 1e-6, the ranked list
identical, and a model trained with xgboost.dask as good as the local one on the holdout.
One cluster serves the whole module.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from xgboost import XGBClassifier

from features.build import build_features
from features.contracts import validate_table
from models.playbook import load_playbook
from models.reasons import load_reason_map
from models.scoring import score_customers
from models.train_stage import TrainingSets
from models.training import choose_cutoffs, fit_classifier, labelled_features, stack_cutoffs
from pipelines.engines import dask_features, dask_predict, dask_train, get_client
from simulation.retail import simulate


@dataclass(frozen=True)
class Business:
    transactions: pd.DataFrame
    interactions: pd.DataFrame
    customers: pd.DataFrame
    score_date: pd.Timestamp


@pytest.fixture(scope="module")
def client():
    client = get_client(None)
    yield client
    client.close()


@pytest.fixture(scope="module")
def business() -> Business:
    raw = simulate(1500, seed=4)
    tables = {
        name: validate_table(getattr(raw, name), name, source=name).frame
        for name in ("transactions", "interactions", "customers")
    }
    last_day = tables["transactions"]["timestamp"].max().normalize()
    return Business(**tables, score_date=last_day + pd.Timedelta(days=1))


@pytest.fixture(scope="module")
def training_sets(business) -> TrainingSets:
    tx = business.transactions
    cutoffs = choose_cutoffs(tx["timestamp"].min(), tx["timestamp"].max(), label_days=180)
    args = (business.interactions, business.customers, 90, 365)
    x_train, y_train = stack_cutoffs(tx, cutoffs.train, *args)
    x_valid, y_valid = labelled_features(tx, cutoffs.validation, *args)
    x_hold, y_hold = labelled_features(tx, cutoffs.holdout, *args)
    return TrainingSets(x_train, y_train, x_valid, y_valid, x_hold, y_hold)


@pytest.fixture(scope="module")
def local_model(training_sets) -> XGBClassifier:
    s = training_sets
    return fit_classifier(s.x_train, s.y_train, s.x_valid, s.y_valid)


@pytest.fixture(scope="module")
def local_features(business) -> pd.DataFrame:
    return build_features(
        business.transactions, business.score_date, business.interactions, business.customers
    )


@pytest.fixture(scope="module")
def distributed_features(business, client) -> pd.DataFrame:
    return dask_features(
        business.transactions,
        business.score_date,
        business.interactions,
        business.customers,
        client=client,
    )


def test_dask_features_equal_local_features_exactly(local_features, distributed_features):
    assert len(local_features) > 1000
    pd.testing.assert_frame_equal(distributed_features, local_features, check_exact=True)


def test_dask_features_equal_at_a_past_cutoff_with_any_partitioning(business, client):
    cutoff = pd.Timestamp("2024-09-15")
    local = build_features(business.transactions, cutoff, business.interactions)
    for npartitions in (1, 7):
        distributed = dask_features(
            business.transactions,
            cutoff,
            business.interactions,
            client=client,
            npartitions=npartitions,
        )
        pd.testing.assert_frame_equal(distributed, local, check_exact=True)


# from_pandas puts these small tables into the graph on purpose: a dask-frame input
@pytest.mark.filterwarnings("ignore:Sending large graph")
def test_dask_features_from_dask_frames_equal_local_features(business, client, local_features):
    with dask.config.set({"dataframe.convert-string": False}):
        tables = {
            name: dd.from_pandas(getattr(business, name), npartitions=3, sort=False)
            for name in ("transactions", "interactions", "customers")
        }
    distributed = dask_features(
        tables["transactions"],
        business.score_date,
        tables["interactions"],
        tables["customers"],
        client=client,
        npartitions=5,
    )
    pd.testing.assert_frame_equal(distributed, local_features, check_exact=True)


def test_dask_predict_matches_local_predict_proba(local_model, local_features, client):
    local = local_model.predict_proba(local_features)[:, 1]

    distributed = dask_predict(local_model, local_features, client)

    assert distributed.index.equals(local_features.index)
    np.testing.assert_allclose(distributed.to_numpy(), local, rtol=0, atol=1e-6)


def test_dask_trained_model_is_as_good_on_the_holdout(
    training_sets, local_model, client, caplog, monkeypatch
):
    s = training_sets
    monkeypatch.setattr(logging.getLogger("churn.progress"), "propagate", True)
    caplog.set_level(logging.INFO, logger="churn.progress")
    model = dask_train(s.x_train, s.y_train, s.x_valid, s.y_valid, client)

    # the rounds run on the workers: a line when they start and one when they end
    said = [r.getMessage() for r in caplog.records if r.name == "churn.progress"]
    rounds = model.get_booster().num_boosted_rounds()
    assert said[0].startswith("xgboost on the cluster: up to ")
    assert said[-1].startswith(f"xgboost on the cluster: {rounds} rounds done in ")

    assert isinstance(model, XGBClassifier)
    assert model.get_params()["max_depth"] == local_model.get_params()["max_depth"]
    assert model.get_booster().feature_names == list(s.x_train.columns)
    local_auc = roc_auc_score(s.y_hold, local_model.predict_proba(s.x_hold)[:, 1])
    dask_auc = roc_auc_score(s.y_hold, model.predict_proba(s.x_hold)[:, 1])
    assert local_auc > 0.75
    assert abs(dask_auc - local_auc) <= 0.02


def test_list_from_dask_features_equals_local_list(
    local_model, local_features, distributed_features
):
    reason_map, playbook = load_reason_map(), load_playbook()
    scored_at = pd.Timestamp("2026-01-01 02:00", tz="UTC")

    def ranked(features: pd.DataFrame) -> pd.DataFrame:
        return score_customers(local_model, features, reason_map, playbook, 90, "1", scored_at)

    local, distributed = ranked(local_features), ranked(distributed_features)

    assert set(distributed["customer_id"]) == set(local_features.index)
    pd.testing.assert_frame_equal(distributed, local, check_exact=True)
