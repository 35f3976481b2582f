"""The unfitted churn classifier. Training and tracking happen in ``pipelines/``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from xgboost import XGBClassifier

from features import registry

DEFAULT_PARAMS: dict[str, Any] = {
    # shallow trees, a brisk rate and at most 200 of them: SHAP time grows with trees x
    # leaves. Against 0.05 / depth 5 / up to 800 trees this costs <= 0.001 ROC-AUC on the
    # simulator and CDNOW (docs/benchmarks.md); at 1M rows trees 200-400 add 0.0002 ROC-AUC
    # and double the SHAP time of the nightly list (benchmarks/speed.py)
    "n_estimators": 200,
    "learning_rate": 0.2,
    "max_depth": 4,
    "min_child_weight": 5,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "reg_lambda": 1.0,
    "tree_method": "hist",
    "objective": "binary:logistic",
    # early stopping on log-loss, not a ranking metric: it also keeps the probabilities
    # calibrated (on CDNOW aucpr stopped at 5 trees with probabilities near the base rate)
    "eval_metric": "logloss",
    "early_stopping_rounds": 50,
    "n_jobs": 2,
    "random_state": 0,
}

# Directions the business knows for certain (features/registry.py, `monotone`): more
# grievances, payment trouble or ignored contact never make a customer *safer*; more
# satisfaction never makes them riskier. Constraining these keeps explanations sane
# where data is thin.
MONOTONE: dict[str, int] = registry.monotone_directions()


def monotone_constraints(feature_names: Iterable[str]) -> dict[str, int]:
    """The known risk directions among the given features."""
    return {name: MONOTONE[name] for name in feature_names if name in MONOTONE}


def classifier_params(feature_names: Iterable[str] = (), **overrides: Any) -> dict[str, Any]:
    """The project's XGBoost parameters: defaults, the known monotone directions of
    ``feature_names`` (unless ``overrides`` sets its own), then ``overrides``.

    The local classifier and the Dask engine (:func:`pipelines.engines.dask_train`)
    both start from this, so they cannot drift apart.

    Args:
        feature_names: the training columns, to attach the known monotone directions.
        **overrides: any XGBClassifier parameter.
    """
    params = {**DEFAULT_PARAMS, **overrides}
    constraints = monotone_constraints(feature_names)
    if constraints and "monotone_constraints" not in overrides:
        params["monotone_constraints"] = constraints
    return params


def build_classifier(feature_names: Iterable[str] = (), **overrides: Any) -> XGBClassifier:
    """An unfitted XGBoost classifier with the project's defaults, overridable.

    Args:
        feature_names: the training columns, to attach the known monotone directions.
        **overrides: any XGBClassifier parameter.
    """
    return XGBClassifier(**classifier_params(feature_names, **overrides))
