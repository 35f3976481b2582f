"""Time-based training sets: several stacked training cutoffs, a later validation
cutoff for early stopping, and a still later holdout cutoff for honest metrics.

No label window of an earlier set overlaps the cutoff of a later one, so nothing the
model is tuned or judged on was visible, even as a label, at training time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
from xgboost import XGBClassifier

from features.build import build_features
from features.labels import churn_labels
from features.windows import as_cutoff
from models.classifier import build_classifier


@dataclass(frozen=True)
class Cutoffs:
    train: tuple[pd.Timestamp, ...]
    validation: pd.Timestamp
    holdout: pd.Timestamp

    def as_params(self) -> dict[str, str]:
        return {
            "train_cutoffs": ",".join(str(c.date()) for c in self.train),
            "validation_cutoff": str(self.validation.date()),
            "holdout_cutoff": str(self.holdout.date()),
        }


def choose_cutoffs(
    first_day: pd.Timestamp,
    last_day: pd.Timestamp,
    horizon_days: int = 90,
    n_train: int = 4,
    step_days: int = 30,
    min_history_days: int = 180,
) -> Cutoffs:
    """Cutoffs laid back from the end of the data.

    holdout = last full label window; validation = one horizon earlier; training
    cutoffs every ``step_days`` from one horizon before validation, keeping only those
    with at least ``min_history_days`` of history.

    Raises:
        ValueError: when the data is too short for one training cutoff.
    """
    horizon = pd.Timedelta(days=horizon_days)
    holdout = as_cutoff(last_day) + pd.Timedelta(days=1) - horizon
    validation = holdout - horizon
    earliest = as_cutoff(first_day) + pd.Timedelta(days=min_history_days)
    train = [validation - horizon - pd.Timedelta(days=step_days * i) for i in range(n_train)]
    train = [c for c in train if c >= earliest]
    if not train:
        need = min_history_days + 3 * horizon_days
        span = (as_cutoff(last_day) - as_cutoff(first_day)).days + 1
        raise ValueError(
            f"transactions span {span} days ({first_day.date()} to {last_day.date()}); "
            f"time-based training with a {horizon_days}-day horizon needs at least {need}"
        )
    return Cutoffs(train=tuple(sorted(train)), validation=validation, holdout=holdout)


def labelled_features(
    transactions: pd.DataFrame,
    cutoff: pd.Timestamp,
    interactions: pd.DataFrame | None,
    customers: pd.DataFrame | None,
    horizon_days: int,
    lookback_days: int,
    build: Callable[..., pd.DataFrame] = build_features,
) -> tuple[pd.DataFrame, pd.Series]:
    """Features before ``cutoff`` and the churn label after it, for the same customers.

    ``build`` is the feature builder: :func:`features.build.build_features`, or the same
    function run on a cluster (``pipelines.engines.dask_features``).
    """
    features = build(transactions, cutoff, interactions, customers, lookback_days)
    labels = churn_labels(transactions, cutoff, horizon_days, lookback_days)
    return features, labels.reindex(features.index)


def stack_cutoffs(
    transactions: pd.DataFrame,
    cutoffs: tuple[pd.Timestamp, ...],
    interactions: pd.DataFrame | None,
    customers: pd.DataFrame | None,
    horizon_days: int,
    lookback_days: int,
    build: Callable[..., pd.DataFrame] = build_features,
) -> tuple[pd.DataFrame, pd.Series]:
    """Training rows from several cutoffs (a customer appears once per cutoff)."""
    frames, labels = [], []
    for cutoff in cutoffs:
        x, y = labelled_features(
            transactions, cutoff, interactions, customers, horizon_days, lookback_days, build
        )
        frames.append(x)
        labels.append(y)
    return pd.concat(frames), pd.concat(labels)


def fit_classifier(
    x_train: pd.DataFrame,
    y_train: pd.Series,
    x_valid: pd.DataFrame,
    y_valid: pd.Series,
    **params: object,
) -> XGBClassifier:
    """Fit with early stopping on the (later) validation cutoff."""
    model = build_classifier(x_train.columns, **params)
    model.fit(x_train, y_train, eval_set=[(x_valid, y_valid)], verbose=False)
    return model
