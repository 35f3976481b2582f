"""Time-based training sets: several stacked training cutoffs, a later validation
cutoff for early stopping, and a still later holdout cutoff for honest metrics.

No label window of an earlier set overlaps the cutoff of a later one, so nothing the
model is tuned or judged on was visible, even as a label, at training time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pandas as pd
from xgboost import XGBClassifier

from features.build import build_features
from features.labels import churn_labels, departure_labels, subscription_end_labels
from features.status import ACTIVE, customer_status
from features.subscriptions import subscription_status, with_own_status
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
    part = cutoff_part(
        transactions,
        cutoff,
        interactions,
        customers,
        horizon_days,
        lookback_days,
        build,
        label,
        with_lapsed=lapsed is not None,
    )
    return labelled_rows(part, label, lapsed)


@dataclass(frozen=True)
class CutoffPart:
    """One cutoff's training rows before the population step, for some customers (a
    customer batch, or all): what each customer's own rows give.

    Attributes:
        features: every customer who bought in the lookback window.
        labels: each one's label, as if they were in the training population.
        gone: each one's classic no-purchase label (for the lapsed customers' return
            rates), if asked for.
        subscribed: each one's :func:`features.subscriptions.subscription_status`,
            under the subscription label.
    """

    features: pd.DataFrame
    labels: pd.Series
    gone: pd.Series | None = None
    subscribed: pd.DataFrame | None = None


def cutoff_part(
    transactions: pd.DataFrame,
    cutoff: pd.Timestamp,
    interactions: pd.DataFrame | None,
    customers: pd.DataFrame | None,
    horizon_days: int,
    lookback_days: int,
    build: Callable[..., pd.DataFrame],
    label: LabelScheme,
    subscriptions: pd.DataFrame | None = None,
    observed_until: pd.Timestamp | None = None,
    with_lapsed: bool = False,
) -> CutoffPart:
    """The features and label ingredients of :func:`labelled_features` for these tables'
    customers. ``subscriptions`` (default ``label.subscriptions``) and
    ``observed_until`` (the business's latest transaction) are for customer batches."""
    subscriptions = label.subscriptions if subscriptions is None else subscriptions
    features = build(transactions, cutoff, interactions, customers, lookback_days)
    ids = features.index

    def classic() -> pd.Series:
        labels = churn_labels(transactions, cutoff, horizon_days, lookback_days, observed_until)
        return labels.reindex(ids)

    if label.kind == "classic":
        return CutoffPart(features, classic())
    subscribed = None
    if label.kind == "subscription":
        subscribed = subscription_status(subscriptions, as_cutoff(cutoff), ids)
        labels = subscription_end_labels(
            transactions, subscriptions, cutoff, ids, horizon_days, observed_until
        )
    else:
        labels = departure_labels(
            transactions, cutoff, ids, horizon_days, label.confirm_days, observed_until
        )
    return CutoffPart(features, labels, classic() if with_lapsed else None, subscribed)


def concat_parts(parts: list[CutoffPart]) -> CutoffPart:
    """Customer batches' parts of one cutoff as the whole tables' part (sorted by
    ``customer_id``, as the whole feature table is)."""
    kept = [p for p in parts if len(p.features)] or parts[:1]
    if len(kept) == 1:
        return kept[0]
    features = pd.concat([p.features for p in kept]).sort_index(kind="stable")

    def joined(frames: list) -> Any:
        return None if frames[0] is None else pd.concat(frames).reindex(features.index)

    return CutoffPart(
        features,
        joined([p.labels for p in kept]),
        joined([p.gone for p in kept]),
        joined([p.subscribed for p in kept]),
    )


def labelled_rows(
    part: CutoffPart,
    label: LabelScheme,
    lapsed: list[tuple[np.ndarray, np.ndarray]] | None = None,
) -> tuple[pd.DataFrame, pd.Series]:
    """The population step of :func:`labelled_features`: the status model's medians come
    from every customer of the cutoff, so this runs on the whole part."""
    features, labels = part.features, part.labels
    if label.kind == "classic":
        return features, labels
    status = customer_status(features, label.status_tail)
    if part.subscribed is not None:
        status = with_own_status(status, part.subscribed)
    active = status["status"].to_numpy() == ACTIVE
    if lapsed is not None and part.gone is not None:
        gone = part.gone.to_numpy()[~active]
        bands = overdue_band(status.loc[~active], features.loc[~active, "days_since_last_purchase"])
        lapsed.append((bands, 1 - gone))
    return features.loc[active], labels.loc[active]


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
    args = (interactions, customers, horizon_days, lookback_days, build, label)
    return stack_rows(
        lambda c, kept: labelled_features(transactions, c, *args, kept), cutoffs, lapsed
    )


def stack_rows(
    rows_at: Callable[
        [pd.Timestamp, list[tuple[np.ndarray, np.ndarray]] | None], tuple[pd.DataFrame, pd.Series]
    ],
    cutoffs: tuple[pd.Timestamp, ...],
    lapsed: list[tuple[np.ndarray, np.ndarray]] | None = None,
) -> tuple[pd.DataFrame, pd.Series]:
    """``rows_at(cutoff, lapsed)`` of every cutoff, stacked, with progress lines."""
    frames, labels = [], []
    for cutoff in track(cutoffs, "training features", unit="cutoffs"):
        x, y = rows_at(cutoff, lapsed)
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
