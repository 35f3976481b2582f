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
from models.thresholds import MIN_REASON_CONFIDENCE, MIN_REASON_SCORE

REASON_COLUMNS = tuple(f"reason_{r}" for r in REASONS)


def contributions(booster: xgb.Booster, features: pd.DataFrame) -> pd.DataFrame:
    """Per-customer SHAP contributions in log-odds, one column per feature (bias dropped)."""
    if features.empty:  # xgboost returns a flat array for zero rows
        return pd.DataFrame(0.0, index=features.index, columns=features.columns, dtype="float32")
    matrix = xgb.DMatrix(features, feature_names=list(features.columns))
    # explain the model that predicts: after early stopping, predict_proba uses only the
    # rounds up to the best iteration, so the contributions must too
    best = booster.attr("best_iteration")
    rounds = (0, int(best) + 1) if best is not None else (0, 0)
    values = booster.predict(
        matrix, pred_contribs=True, validate_features=True, iteration_range=rounds
    )
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


def top_reasons(
    scores: pd.DataFrame,
    min_score: float = MIN_REASON_SCORE,
    min_confidence: float = MIN_REASON_CONFIDENCE,
) -> pd.DataFrame:
    """Top reason per customer, and how clearly it beats the runner-up.

    Only the *specific* reasons (every one but ``unidentified``) compete. Silence,
    recency and falling frequency are how every departure looks, not why it happened,
    so they never outvote a cause that shows: the strongest specific reason is named
    when it adds at least ``min_score`` log-odds of risk and holds at least
    ``min_confidence`` of the risk the specific reasons add together. Otherwise no
    cause shows, and the answer is ``unidentified``.

    ``reason_confidence`` is the winner's margin over the runner-up, as a share of the
    winner: 1 = no rival cause at all, 0 = a tie. For ``unidentified`` it is how far
    the strongest cause stays below ``min_score``: 1 = no cause shows at all.
    """
    values = scores[list(REASON_COLUMNS)].to_numpy(float)
    specific = [i for i, r in enumerate(REASONS) if r != "unidentified"]
    causes = np.clip(values[:, specific], 0.0, None)
    ranked = np.sort(causes, axis=1)
    best_value, runner_up = ranked[:, -1], ranked[:, -2]
    best = np.asarray(specific)[causes.argmax(axis=1)]
    total = causes.sum(axis=1)
    share = np.divide(best_value, total, out=np.zeros_like(total), where=total > 0)
    reason = np.array(REASONS, dtype=object)[best]
    # a reason with no risk-raising contribution at all is never named, even at 0 thresholds
    vague = (best_value <= 0) | (best_value < min_score) | (share < min_confidence)
    reason[vague] = "unidentified"
    margin = np.divide(
        best_value - runner_up, best_value, out=np.zeros_like(total), where=best_value > 0
    )
    if min_score > 0:
        nothing_shows = 1.0 - np.clip(best_value / min_score, 0.0, 1.0)
    else:
        nothing_shows = (best_value <= 0).astype(float)
    confidence = np.where(vague, nothing_shows, margin)
    return pd.DataFrame({"top_reason": reason, "reason_confidence": confidence}, index=scores.index)


def top_drivers(
    contribs: pd.DataFrame, features: pd.DataFrame, reason_map: ReasonMap, k: int = 3
) -> pd.Series:
    """The ``k`` largest risk-raising drivers per customer, in plain words, ``; ``-joined.

    A phrase already said by a stronger driver ("no purchase for 160 days" inside "no
    purchase for 160 days, 5x longer than usual") is skipped, and so is a driver whose
    value is missing: staff cannot act on "unknown". The next driver takes its place.
    """
    values = contribs.to_numpy(float)
    order = np.argsort(-values, axis=1, kind="stable")[:, : 3 * k]
    names = np.asarray(contribs.columns)
    rows = features.to_dict(orient="records")
    phrases = []
    for i, row in enumerate(rows):
        said: list[str] = []
        for j in order[i]:
            if values[i, j] <= 0 or len(said) == k:
                break
            phrase = describe(reason_map, names[j], row)
            if phrase.endswith(": unknown") or any(phrase in p for p in said):
                continue
            # a weaker driver that says more replaces the stronger one it contains
            covered = [n for n, p in enumerate(said) if p in phrase]
            if covered:
                said[covered[0]] = phrase
            else:
                said.append(phrase)
        phrases.append("; ".join(said))
    return pd.Series(phrases, index=contribs.index, name="top_drivers")
