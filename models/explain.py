"""SHAP drivers per customer, folded onto the documented loss reasons.

Contributions come from XGBoost's built-in TreeSHAP (``pred_contribs``): the same
values as ``shap.TreeExplainer`` on tree models (a test checks they agree), without
the extra pass through the shap package.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xgboost as xgb

from models.reasons import REASONS, ReasonMap, describe

REASON_COLUMNS = tuple(f"reason_{r}" for r in REASONS)


def contributions(booster: xgb.Booster, features: pd.DataFrame) -> pd.DataFrame:
    """Per-customer SHAP contributions in log-odds, one column per feature (bias dropped)."""
    matrix = xgb.DMatrix(features, feature_names=list(features.columns))
    values = booster.predict(matrix, pred_contribs=True, validate_features=True)
    return pd.DataFrame(values[:, :-1], index=features.index, columns=features.columns)


def reason_scores(contribs: pd.DataFrame, reason_map: ReasonMap) -> pd.DataFrame:
    """Per reason, the sum of that reason's positive (risk-raising) contributions."""
    reason_map.check_covers(contribs.columns)
    positive = contribs.clip(lower=0.0)
    reasons = np.array([reason_map.reason_of(c) for c in contribs.columns])
    scores = {
        f"reason_{r}": positive.loc[:, reasons == r].sum(axis=1) if (reasons == r).any() else 0.0
        for r in REASONS
    }
    return pd.DataFrame(scores, index=contribs.index)


def top_reasons(scores: pd.DataFrame, min_confidence: float = 0.0) -> pd.DataFrame:
    """Top reason and its share of all positive contribution.

    A customer with no positive drivers, or whose top reason holds less than
    ``min_confidence`` of the positive contribution, gets ``unidentified``: the honest
    answer when the signal points nowhere in particular.
    """
    values = scores[list(REASON_COLUMNS)].to_numpy(float)
    total = values.sum(axis=1)
    best = values.argmax(axis=1)
    confidence = np.divide(values.max(axis=1), total, out=np.zeros_like(total), where=total > 0)
    reason = np.array(REASONS, dtype=object)[best]
    reason[(total <= 0) | (confidence < min_confidence)] = "unidentified"
    return pd.DataFrame({"top_reason": reason, "reason_confidence": confidence}, index=scores.index)


def top_drivers(
    contribs: pd.DataFrame, features: pd.DataFrame, reason_map: ReasonMap, k: int = 3
) -> pd.Series:
    """The ``k`` largest risk-raising drivers per customer, in plain words, ``; ``-joined."""
    values = contribs.to_numpy(float)
    order = np.argsort(-values, axis=1, kind="stable")[:, :k]
    names = np.asarray(contribs.columns)
    rows = features.to_dict(orient="records")
    phrases = []
    for i, row in enumerate(rows):
        picked = [names[j] for j in order[i] if values[i, j] > 0]
        phrases.append("; ".join(describe(reason_map, f, row) for f in picked))
    return pd.Series(phrases, index=contribs.index, name="top_drivers")
