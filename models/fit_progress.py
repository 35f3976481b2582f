"""XGBoost's boosting rounds told through :mod:`models.progress`.

A candidate's trees take minutes at a few hundred thousand customers, with nothing on
screen. :class:`RoundProgress` is an XGBoost training callback that reports rounds done
of ``n_estimators`` (with the time left) the way every other long stage does.

XGBoost keeps callbacks as a parameter of the model, so a callback left on would be
cloned with it, pickled with it and refused by MLflow's skops loader (an untrusted
type). :func:`fit_with_progress` attaches it for one fit and puts the model's own
callbacks back afterwards, even if the fit fails.
"""

from __future__ import annotations

from typing import Any, TypeVar

from xgboost import XGBModel
from xgboost.callback import TrainingCallback

from models.progress import Progress

Model = TypeVar("Model", bound=XGBModel)


class RoundProgress(TrainingCallback):
    """Boosting rounds as progress lines: ``xgboost: 40/200 rounds (20%), 9 s so far, ...``.

    Holds only its label and counts between fits (picklable and deep-copyable, as
    sklearn's ``clone`` and joblib need), and a fresh :class:`~models.progress.Progress`
    while a fit runs.

    Args:
        label: what is being fitted ("xgboost").
        rounds: the most rounds the fit may run (``n_estimators``); early stopping ends
            sooner, so the time left is an upper bound.
        every_s: the least time between two lines.
    """

    def __init__(self, label: str, rounds: int, every_s: float = 5.0) -> None:
        super().__init__()
        self.label, self.rounds, self.every_s = label, rounds, every_s
        self.progress: Progress | None = None

    def before_training(self, model: Any) -> Any:
        self.progress = Progress(self.label, self.rounds, "rounds", self.every_s)
        return model

    def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
        if self.progress is not None:
            self.progress.advance()
        return False  # never stops training: early stopping is XGBoost's own callback

    def after_training(self, model: Any) -> Any:
        if self.progress is not None:
            early = self.progress.done < self.rounds
            self.progress.finish(f" (early stopping, of {self.rounds})" if early else "")
        self.progress = None
        return model


def fit_with_progress(estimator: Model, label: str, x: Any, y: Any, **fit_params: Any) -> Model:
    """``estimator.fit(x, y, **fit_params)`` with its rounds reported as ``label``.

    The callback is on the model for this fit only: afterwards ``estimator.callbacks``
    is what it was before, so the fitted model saves, clones and logs as without it.
    """
    own = estimator.callbacks
    rounds = RoundProgress(label, estimator.get_num_boosting_rounds())
    # plain attributes, not set_params: on a fitted model that rewrites the booster's params
    estimator.callbacks = [*(own or []), rounds]
    try:
        estimator.fit(x, y, **fit_params)
    finally:
        estimator.callbacks = own
    return estimator
