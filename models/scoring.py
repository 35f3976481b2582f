"""From features and a trained model to the ranked at-risk list."""

from __future__ import annotations

import pandas as pd
from xgboost import XGBClassifier

from features.segments import assign_segments
from models.explain import REASON_COLUMNS, contributions, reason_scores, top_drivers, top_reasons
from models.playbook import NOT_CALLED, Playbook, recommend
from models.reasons import ReasonMap
from models.value import expected_value, value_at_risk

LIST_COLUMNS = (
    "customer_id",
    "risk_rank",
    "churn_probability",
    "expected_value",
    "value_at_risk",
    "segment",
    "top_reason",
    "reason_confidence",
    *REASON_COLUMNS,
    "top_drivers",
    "recommended_action",
    "action_rule",
    "model_version",
    "scored_at",
)


# customers below the risk threshold are not explained and get no retention action
NOT_AT_RISK = "not_at_risk"
NOT_AT_RISK_ACTION = "No retention action: below the risk threshold"


class FeatureMismatchError(ValueError):
    """The model needs features the current data cannot produce."""


def model_features(model: XGBClassifier) -> list[str]:
    return list(model.get_booster().feature_names or [])


def align_features(features: pd.DataFrame, model: XGBClassifier) -> pd.DataFrame:
    """The model's feature columns, in its order; refuse if the data lacks any."""
    needed = model_features(model)
    missing = [f for f in needed if f not in features.columns]
    if missing:
        raise FeatureMismatchError(
            f"the model was trained on features this data cannot produce: {', '.join(missing)} "
            "(a table or optional column it was trained with is missing); retrain on this data"
        )
    return features[needed]


def score_customers(
    model: XGBClassifier,
    features: pd.DataFrame,
    reason_map: ReasonMap,
    playbook: Playbook,
    horizon_days: int,
    model_version: str,
    scored_at: pd.Timestamp,
    min_reason_score: float = 0.2,
    min_reason_confidence: float = 0.2,
    risk_threshold: float = 0.5,
    explain_all: bool = False,
    chunk_rows: int = 50_000,
) -> pd.DataFrame:
    """Every customer scored, valued and given an action, ranked; the at-risk explained.

    ``risk_rank`` orders the call list by value at risk (1 = call first); customers
    the playbook keeps off the list (leave alone, seasonal gap) get no rank.

    SHAP is by far the costliest step (about 1,000x a prediction), and only customers at
    or above ``risk_threshold`` can reach the call list, so by default only they get
    reason scores, a top reason and drivers; the others get ``not_at_risk`` and empty
    reasons. ``explain_all`` explains everyone.

    The per-row work (probability, contributions, reasons, drivers) streams through
    ``chunk_rows`` rows at a time, so the contribution matrix never exists for more than
    one chunk; the population steps (VIP and value quantiles, ranking) run once on the
    small per-row output. The result does not depend on ``chunk_rows``.
    """
    x = align_features(features, model)
    reason_map.check_covers(x.columns)
    step = max(1, chunk_rows)
    per_row = pd.concat(
        _score_chunk(
            model,
            x.iloc[start : start + step],
            features,
            reason_map,
            min_reason_score,
            min_reason_confidence,
            None if explain_all else risk_threshold,
        )
        for start in range(0, max(len(x), 1), step)  # one (empty) chunk for no customers
    )
    # one text dtype whatever each chunk held (an all-unexplained chunk is all-missing)
    per_row = per_row.astype({"top_reason": "str", "top_drivers": "str"})
    probability = per_row["churn_probability"]
    expected = expected_value(features, horizon_days)
    scored = pd.concat(
        [
            probability,
            expected,
            value_at_risk(probability, expected),
            assign_segments(features),
            per_row.drop(columns="churn_probability"),
        ],
        axis=1,
    )
    scored = scored.join(recommend(scored, features, playbook))
    unexplained = scored["action_rule"].isna()
    scored.loc[unexplained, "action_rule"] = NOT_AT_RISK
    scored.loc[unexplained, "recommended_action"] = NOT_AT_RISK_ACTION
    scored["model_version"] = str(model_version)
    scored["scored_at"] = scored_at
    return rank(scored, risk_threshold)


def _score_chunk(
    model: XGBClassifier,
    rows: pd.DataFrame,
    features: pd.DataFrame,
    reason_map: ReasonMap,
    min_reason_score: float,
    min_reason_confidence: float,
    explain_from: float | None,
) -> pd.DataFrame:
    """Probability for every row; reasons and drivers for rows at or above ``explain_from``."""
    probability = pd.Series(model.predict_proba(rows)[:, 1], index=rows.index)
    chosen = rows if explain_from is None else rows.loc[probability.to_numpy() >= explain_from]
    contribs = contributions(model.get_booster(), chosen)
    reasons = reason_scores(contribs, reason_map)
    parts = [
        probability.rename("churn_probability"),
        top_reasons(reasons, min_reason_score, min_reason_confidence).reindex(rows.index),
        reasons.reindex(rows.index),
        top_drivers(contribs, features.loc[chosen.index], reason_map).reindex(rows.index),
    ]
    return pd.concat(parts, axis=1)


def rank(scored: pd.DataFrame, risk_threshold: float = 0.0) -> pd.DataFrame:
    """Sort by value at risk (ties: probability, then id) and number the call list."""
    ordered = (
        scored.rename_axis("customer_id")
        .reset_index()
        .sort_values(
            ["value_at_risk", "churn_probability", "customer_id"],
            ascending=[False, False, True],
            kind="stable",
        )
    )
    # the call list: at or above the risk threshold and not kept off it by the playbook
    callable_ = ~ordered["action_rule"].isin(NOT_CALLED) & (
        ordered["churn_probability"] >= risk_threshold
    )
    ordered["risk_rank"] = pd.array([pd.NA] * len(ordered), dtype="Int64")
    ordered.loc[callable_, "risk_rank"] = range(1, int(callable_.sum()) + 1)
    return ordered[list(LIST_COLUMNS)].reset_index(drop=True)


def at_risk_list(
    scored: pd.DataFrame, threshold: float = 0.5, top: int | None = None
) -> pd.DataFrame:
    """The call list: ranked customers at or above the churn-probability threshold."""
    listed = scored.loc[scored["risk_rank"].notna() & (scored["churn_probability"] >= threshold)]
    return listed.head(top) if top is not None else listed
