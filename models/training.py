"""Time-based training sets: several stacked training cutoffs, a later validation
cutoff for early stopping, and a still later holdout cutoff for honest metrics.

No label window of an earlier set overlaps the cutoff of a later one, so nothing the
model is tuned or judged on was visible, even as a label, at training time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import pandas as pd
from xgboost import XGBClassifier

from features.build import build_features
from features.labels import churn_labels, departure_labels, subscription_end_labels
from features.status import ACTIVE, customer_status
from features.subscriptions import with_subscription_status
from features.windows import as_cutoff
from models.classifier import build_classifier
from models.fit_progress import fit_with_progress
from models.progress import track
from models.win_back import overdue_band


@dataclass(frozen=True)
class LabelScheme:
    """Which rows a training set holds and what their label means.

    ``subscription``: the rows are the customers subscribed at the cutoff and the label
    is their subscription ending within the horizon (``subscriptions`` holds the table;
    it takes no part in comparing schemes).
    """

    kind: Literal["departure", "classic", "subscription"] = "departure"
    confirm_days: int = 90
    status_tail: float = 0.05
    subscriptions: pd.DataFrame | None = field(default=None, compare=False, repr=False)

    def label_days(self, horizon_days: int) -> int:
        """How far past its cutoff the label reads."""
        return horizon_days + (self.confirm_days if self.kind == "departure" else 0)

    def with_subscriptions(self, subscriptions: pd.DataFrame | None) -> LabelScheme:
        """The cancellation label where the business records subscriptions (a
        cancellation is the departure, ``domain.md`` section 6); else this scheme."""
        if subscriptions is None:
            return self
        return replace(self, kind="subscription", subscriptions=subscriptions)


@dataclass(frozen=True)
class Cutoffs:
    train: tuple[pd.Timestamp, ...]
    validation: pd.Timestamp
    holdout: pd.Timestamp
    # "full": no label window reaches a later cutoff; "overlapping": training labels
    # reach into the validation window (never the holdout's); "validation_is_holdout":
    # too little data for both, so the one later cutoff stops and judges
    scheme: str = "full"

    def as_params(self) -> dict[str, str]:
        params = {
            "train_cutoffs": ",".join(str(c.date()) for c in self.train),
            "validation_cutoff": str(self.validation.date()),
            "holdout_cutoff": str(self.holdout.date()),
        }
        if self.scheme != "full":
            params["cutoff_scheme"] = self.scheme
        return params


def choose_cutoffs(
    first_day: pd.Timestamp,
    last_day: pd.Timestamp,
    horizon_days: int = 90,
    n_train: int = 4,
    step_days: int = 30,
    min_history_days: int = 180,
    label_days: int | None = None,
) -> Cutoffs:
    """Cutoffs laid back from the end of the data.

    ``label_days`` is how far past its cutoff a label looks (default: the horizon;
    the departure label also reads its confirmation window). holdout = last fully
    labelled cutoff; validation = one label span earlier; training cutoffs every
    ``step_days`` from one label span before validation, keeping those with at least
    ``min_history_days`` of history.

    Data too short for that falls back, in order, to training labels that overlap the
    validation window (but never the holdout's), then to validation doubling as the
    holdout; both with history shortened to one horizon at most. ``scheme`` says which.

    Raises:
        ValueError: when the data is too short even for the last scheme.
    """
    span = pd.Timedelta(days=label_days or horizon_days)
    step = pd.Timedelta(days=step_days)
    holdout = as_cutoff(last_day) + pd.Timedelta(days=1) - span
    short_history = min(min_history_days, horizon_days)
    schemes = (
        ("full", holdout - span, holdout - 2 * span, min_history_days),
        ("overlapping", holdout - span, holdout - span - step, short_history),
        ("validation_is_holdout", holdout, holdout - span, short_history),
    )
    for scheme, validation, latest, history in schemes:
        earliest = as_cutoff(first_day) + pd.Timedelta(days=history)
        train = [latest - step * i for i in range(n_train)]
        train = [c for c in train if c >= earliest]
        if train:
            return Cutoffs(tuple(sorted(train)), validation, holdout, scheme)
    need = short_history + 2 * span.days
    days = (as_cutoff(last_day) - as_cutoff(first_day)).days + 1
    raise ValueError(
        f"transactions span {days} days ({first_day.date()} to {last_day.date()}); "
        f"time-based training with a {horizon_days}-day horizon and {span.days}-day labels "
        f"needs at least {need}"
    )


SHORTEST_CONFIRM_DAYS = 30


def fit_label_to_data(
    first_day: pd.Timestamp,
    last_day: pd.Timestamp,
    label: LabelScheme,
    horizon_days: int = 90,
    n_train: int = 4,
    step_days: int = 30,
    min_history_days: int = 180,
) -> tuple[Cutoffs, LabelScheme]:
    """Cutoffs for this data, shortening the departure's confirmation window (down to
    :data:`SHORTEST_CONFIRM_DAYS`) when the data is too short for the configured one.

    Raises:
        ValueError: when even the shortest window and scheme do not fit (the message
            names the days needed).
    """
    confirms = [label.confirm_days]
    while label.kind == "departure" and confirms[-1] > SHORTEST_CONFIRM_DAYS:
        confirms.append(max(SHORTEST_CONFIRM_DAYS, confirms[-1] // 2))
    error: ValueError | None = None
    for confirm in confirms:
        scheme = replace(label, confirm_days=confirm)
        try:
            cutoffs = choose_cutoffs(
                first_day,
                last_day,
                horizon_days,
                n_train,
                step_days,
                min_history_days,
                scheme.label_days(horizon_days),
            )
        except ValueError as exc:
            error = exc
            continue
        return cutoffs, scheme
    assert error is not None
    raise error


def labelled_features(
    transactions: pd.DataFrame,
    cutoff: pd.Timestamp,
    interactions: pd.DataFrame | None,
    customers: pd.DataFrame | None,
    horizon_days: int,
    lookback_days: int,
    build: Callable[..., pd.DataFrame] = build_features,
    label: LabelScheme | None = None,
    lapsed: list[tuple[np.ndarray, np.ndarray]] | None = None,
) -> tuple[pd.DataFrame, pd.Series]:
    """Features before ``cutoff`` and the label after it, for the same customers.

    By default (:class:`LabelScheme`) the rows are the customers still *active* at the
    cutoff (:func:`features.status.customer_status`) and the label is their departure
    within the horizon: the question the retention list answers. ``label.kind =
    "classic"`` gives every customer who bought in the lookback window the classic
    no-purchase-in-the-horizon label instead. ``label.kind = "subscription"`` keeps the
    customers subscribed at the cutoff (a cancelled subscriber is lapsed, however
    recent their last charge) and labels the subscription ending within the horizon
    (:func:`features.labels.subscription_end_labels`).

    ``build`` is the feature builder: :func:`features.build.build_features`, or the same
    function run on a cluster (``pipelines.engines.dask_features``). If ``lapsed`` is a
    list, the cutoff's lapsed customers are appended to it as (overdue band, came back
    within the horizon) arrays, for :func:`models.win_back.return_rates`.
    """
    label = label or LabelScheme()
    features = build(transactions, cutoff, interactions, customers, lookback_days)
    if label.kind == "classic":
        labels = churn_labels(transactions, cutoff, horizon_days, lookback_days)
        return features, labels.reindex(features.index)
    status = customer_status(features, label.status_tail)
    if label.kind == "subscription":
        status = with_subscription_status(status, label.subscriptions, as_cutoff(cutoff))
    active = status["status"].to_numpy() == ACTIVE
    if lapsed is not None:
        gone = churn_labels(transactions, cutoff, horizon_days, lookback_days)
        gone = gone.reindex(features.index[~active]).to_numpy()
        bands = overdue_band(status.loc[~active], features.loc[~active, "days_since_last_purchase"])
        lapsed.append((bands, 1 - gone))
    features = features.loc[active]
    if label.kind == "subscription":
        labels = subscription_end_labels(
            transactions, label.subscriptions, cutoff, features.index, horizon_days
        )
        return features, labels
    labels = departure_labels(
        transactions, cutoff, features.index, horizon_days, label.confirm_days
    )
    return features, labels


def stack_cutoffs(
    transactions: pd.DataFrame,
    cutoffs: tuple[pd.Timestamp, ...],
    interactions: pd.DataFrame | None,
    customers: pd.DataFrame | None,
    horizon_days: int,
    lookback_days: int,
    build: Callable[..., pd.DataFrame] = build_features,
    label: LabelScheme | None = None,
    lapsed: list[tuple[np.ndarray, np.ndarray]] | None = None,
) -> tuple[pd.DataFrame, pd.Series]:
    """Training rows from several cutoffs (a customer appears once per cutoff)."""
    frames, labels = [], []
    for cutoff in track(cutoffs, "training features", unit="cutoffs"):
        x, y = labelled_features(
            transactions,
            cutoff,
            interactions,
            customers,
            horizon_days,
            lookback_days,
            build,
            label,
            lapsed,
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
    stop_on = [(x_valid, y_valid)]
    return fit_with_progress(model, "xgboost", x_train, y_train, eval_set=stop_on, verbose=False)
