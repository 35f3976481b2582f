"""The pattern path gives XGBoost's own pred_contribs, bit for bit, or steps aside."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from models import explain
from models.explain import PATTERN_MIN_ROWS, contributions
from models.treeshap import DENSE_SPLITS, PatternShap, Unsupported, read_ubjson

COLUMNS = ["days_idle", "discount", "complaints", "tickets", "spend"]


def frame(rows: int, seed: int) -> pd.DataFrame:
    """Customers with missing values in two columns, so splits learn both defaults."""
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(rng.normal(size=(rows, len(COLUMNS))), columns=COLUMNS)
    x.loc[rng.random(rows) < 0.2, "discount"] = np.nan
    x.loc[rng.random(rows) < 0.1, "complaints"] = np.nan
    x.index = pd.Index([f"c{seed}-{i:04d}" for i in range(rows)], name="customer_id")
    return x


def labels(x: pd.DataFrame, seed: int) -> pd.Series:
    rng = np.random.default_rng(seed)
    logit = 1.5 * x["days_idle"] + x["complaints"].fillna(2.0) - 0.5 * x["spend"]
    return (logit + rng.normal(size=len(x)) > 0).astype(int)


def fit(max_depth: int, **params: object) -> tuple[xgb.XGBClassifier, pd.DataFrame]:
    x = frame(PATTERN_MIN_ROWS, seed=1)
    params = {"n_estimators": 25, "max_depth": max_depth, "random_state": 0, **params}
    return xgb.XGBClassifier(**params).fit(x, labels(x, 1)), x


def xgboost_says(booster: xgb.Booster, x: pd.DataFrame) -> np.ndarray:
    return booster.predict(xgb.DMatrix(x), pred_contribs=True)[:, :-1]


@pytest.fixture(autouse=True)
def cold_cache():
    explain._PATTERNS.clear()
    yield
    explain._PATTERNS.clear()


def test_pattern_shap_equals_pred_contribs_bit_for_bit_chunk_after_chunk():
    model, _ = fit(max_depth=4)
    booster = model.get_booster()
    shap = PatternShap(booster, booster.num_boosted_rounds())
    first, second = frame(500, seed=2), frame(500, seed=3)  # unseen rows, NaNs included

    for chunk in (first, second):
        result = shap.contributions(chunk.to_numpy(np.float32))
        assert result.dtype == np.float32
        assert np.array_equal(result, xgboost_says(booster, chunk))
    # depth-4 trees see far fewer patterns than rows: that is the whole saving
    explained = sum(tree.values.shape[1] for tree in shap.trees)
    assert explained < 0.5 * 1000 * len(shap.trees)
    assert all(tree.slot is not None for tree in shap.trees)


def test_deeper_trees_keep_their_patterns_sorted_and_stay_exact():
    model, _ = fit(max_depth=6, min_child_weight=0)
    booster = model.get_booster()
    shap = PatternShap(booster, booster.num_boosted_rounds())
    x = frame(800, seed=4)

    assert any(len(tree.feature) > DENSE_SPLITS for tree in shap.trees)
    assert any(tree.slot is None for tree in shap.trees)
    for chunk in (x.iloc[:400], x.iloc[400:]):
        assert np.array_equal(
            shap.contributions(chunk.to_numpy(np.float32)), xgboost_says(booster, chunk)
        )


def test_contributions_explain_only_the_rounds_that_predict():
    x = frame(PATTERN_MIN_ROWS + 200, seed=5)
    y = labels(x, 5)
    model = xgb.XGBClassifier(
        n_estimators=300, learning_rate=0.3, max_depth=4, early_stopping_rounds=5
    )
    model.fit(x[:900], y[:900], eval_set=[(x[900:], y[900:])], verbose=False)
    booster = model.get_booster()
    rounds = model.best_iteration + 1
    assert rounds < booster.num_boosted_rounds()

    result = contributions(booster, x)

    expected = booster.predict(xgb.DMatrix(x), pred_contribs=True, iteration_range=(0, rounds))
    assert np.array_equal(result.to_numpy(), expected[:, :-1])
    assert explain._PATTERNS[explain._model_key(booster, rounds)] is not None  # the fast path


def test_a_few_rows_go_straight_to_xgboost():
    model, x = fit(max_depth=4)
    booster = model.get_booster()
    few = x.iloc[: PATTERN_MIN_ROWS - 1]

    assert np.array_equal(contributions(booster, few).to_numpy(), xgboost_says(booster, few))
    assert explain._PATTERNS == {}  # no explainer was built for a handful of rows


def test_a_booster_changed_in_place_is_explained_as_it_now_is():
    model, x = fit(max_depth=3)
    booster = model.get_booster()
    contributions(booster, x)

    booster.update(xgb.DMatrix(x, label=labels(x, 1)), booster.num_boosted_rounds())

    assert np.array_equal(contributions(booster, x).to_numpy(), xgboost_says(booster, x))


@pytest.mark.parametrize(
    "kind",
    ["dart", "multiclass", "categorical", "two_trees_a_round", "too_many_splits"],
)
def test_models_of_other_kinds_take_xgboosts_own_path(kind):
    x = frame(PATTERN_MIN_ROWS, seed=6)
    y = labels(x, 6)
    params: dict = {"n_estimators": 8, "max_depth": 3, "random_state": 0}
    if kind == "dart":
        params["booster"] = "dart"
    if kind == "multiclass":
        y = pd.Series(np.digitize(x["days_idle"], [-0.5, 0.5]), index=x.index)
    if kind == "categorical":
        x = x.assign(plan=pd.Categorical(np.where(x["spend"] > 0, "gold", "basic")))
        params |= {"enable_categorical": True, "tree_method": "hist", "max_cat_to_onehot": 1}
    if kind == "two_trees_a_round":
        params["num_parallel_tree"] = 2
    if kind == "too_many_splits":
        x = frame(4000, seed=6)
        y = pd.Series(np.random.default_rng(0).integers(0, 2, len(x)), index=x.index)
        params |= {"max_depth": 7, "min_child_weight": 0, "n_estimators": 3}
    booster = xgb.XGBClassifier(**params).fit(x, y).get_booster()

    if kind != "categorical":  # categorical columns never reach PatternShap
        with pytest.raises(Unsupported):
            PatternShap(booster, booster.num_boosted_rounds())
    if kind in ("categorical", "multiclass"):
        return  # pred_contribs has another shape there; not a path the lists use
    result = contributions(booster, x)
    assert np.array_equal(result.to_numpy(), xgboost_says(booster, x))


def test_a_disagreement_with_xgboost_is_caught_and_xgboost_wins():
    model, x = fit(max_depth=4)
    booster = model.get_booster()
    rounds = booster.num_boosted_rounds()
    contributions(booster, x)
    kept = explain._pattern_shap(booster, rounds)
    assert kept is not None
    for tree in kept.trees:
        tree.values += 1.0  # as if the patterns no longer matched XGBoost's TreeSHAP

    with pytest.warns(RuntimeWarning, match="disagreed with XGBoost"):
        result = contributions(booster, x)

    assert np.array_equal(result.to_numpy(), xgboost_says(booster, x))
    assert explain._PATTERNS[explain._model_key(booster, rounds)] is None  # not asked again
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        contributions(booster, x)


def test_rows_xgboost_would_refuse_keep_its_error():
    model, x = fit(max_depth=3)
    booster = model.get_booster()

    with pytest.raises(ValueError, match="feature_names mismatch"):
        contributions(booster, x[list(reversed(x.columns))])
    # XGBoost refuses infinity; the pattern path must not answer in its place
    wild = x.iloc[:3].assign(spend=[np.inf, 0.0, 1.0])
    with pytest.raises(xgb.core.XGBoostError, match="contains `inf`"):
        contributions(booster, wild)


def test_read_ubjson_holds_the_json_models_values_with_float32_thresholds():
    model, _ = fit(max_depth=3)
    booster = model.get_booster()

    binary = read_ubjson(bytes(booster.save_raw("ubj")))
    text = json.loads(booster.save_raw("json"))

    tree = binary["learner"]["gradient_booster"]["model"]["trees"][4]
    same = text["learner"]["gradient_booster"]["model"]["trees"][4]
    assert tree["split_conditions"].dtype == np.float32
    assert np.array_equal(tree["split_conditions"], np.float32(same["split_conditions"]))
    assert tree["left_children"].tolist() == same["left_children"]
    assert tree["default_left"].tolist() == same["default_left"]
    assert binary["learner"]["feature_names"] == COLUMNS
    assert binary["learner"]["gradient_booster"]["name"] == "gbtree"
