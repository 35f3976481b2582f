"""The unfitted churn classifier. Training and tracking happen in ``pipelines/``."""

from __future__ import annotations

from typing import Any

from xgboost import XGBClassifier

DEFAULT_PARAMS: dict[str, Any] = {
    "n_estimators": 800,
    "learning_rate": 0.05,
    "max_depth": 5,
    "min_child_weight": 5,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "reg_lambda": 1.0,
    "tree_method": "hist",
    "objective": "binary:logistic",
    "eval_metric": "aucpr",
    "early_stopping_rounds": 50,
    "n_jobs": 2,
    "random_state": 0,
}


def build_classifier(**overrides: Any) -> XGBClassifier:
    """An unfitted XGBoost classifier with the project's defaults, overridable."""
    return XGBClassifier(**{**DEFAULT_PARAMS, **overrides})
