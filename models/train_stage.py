"""The training stage as pure functions: plan the cutoffs, build the labelled sets, let
the candidates compete, refit the winner and measure what will be logged.

No I/O here: the flow (``pipelines.train_flow``) reads the tables, runs these steps as
tasks and hands the outcome to MLflow (``pipelines.registry``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from features.build import build_features
from models import plots
from models.champion import ChurnModel, model_contributions
from models.metrics import evaluate
from models.monitoring import reference_profile
from models.night_facts import CustomerBatches
from models.progress import track
from models.selection import SELECT_BY, Selection, refit, select_champion
from models.tables import BusinessTables
from models.training import (
    CutoffPart,
    Cutoffs,
    LabelScheme,
    concat_parts,
    cutoff_part,
    fit_label_to_data,
    labelled_features,
    labelled_rows,
    stack_rows,
)
from models.win_back import return_rates

# rows of the holdout that the SHAP summary and the model's signature are drawn from
SAMPLE_ROWS = 2000


@dataclass(frozen=True)
class TrainingPlan:
    """The cutoffs and the label that fit this data (the label may be shortened)."""

    cutoffs: Cutoffs
    label: LabelScheme
    asked: LabelScheme  # the label the settings asked for
    horizon_days: int

    @property
    def label_days(self) -> int:
        return self.label.label_days(self.horizon_days)

    @property
    def shortened(self) -> bool:
        """The history was too short for the full scheme or the asked label."""
        return self.cutoffs.scheme != "full" or self.label != self.asked

    @property
    def validation_is_holdout(self) -> bool:
        return self.cutoffs.validation == self.cutoffs.holdout

    @property
    def trained_through(self) -> pd.Timestamp:
        """The last day whose outcome the served (refit) model has seen."""
        return self.cutoffs.holdout + pd.Timedelta(days=self.label_days)


def plan_training(
    first_day: pd.Timestamp,
    last_day: pd.Timestamp,
    asked: LabelScheme,
    horizon_days: int,
    n_train_cutoffs: int,
    cutoff_step_days: int,
    min_history_days: int,
) -> TrainingPlan:
    """Cutoffs laid back from ``last_day`` (:func:`models.training.fit_label_to_data`).

    Raises:
        ValueError: the data is too short even for the shortest scheme.
    """
    cutoffs, label = fit_label_to_data(
        first_day,
        last_day,
        asked,
        horizon_days,
        n_train_cutoffs,
        cutoff_step_days,
        min_history_days,
    )
    return TrainingPlan(cutoffs, label, asked, horizon_days)


@dataclass(frozen=True)
class TrainingSets:
    """Features and labels of the training, validation and holdout cutoffs."""

    x_train: pd.DataFrame
    y_train: pd.Series
    x_valid: pd.DataFrame
    y_valid: pd.Series
    x_hold: pd.DataFrame
    y_hold: pd.Series
    # every training cutoff's lapsed customers: overdue band, came back within the horizon
    lapsed_bands: np.ndarray = field(default_factory=lambda: np.array([], int))
    lapsed_returned: np.ndarray = field(default_factory=lambda: np.array([], int))
    validation_is_holdout: bool = False

    def refit_rows(self) -> tuple[pd.DataFrame, pd.Series]:
        """Every labelled window, the latest included (the holdout once, if it is the
        validation cutoff too)."""
        xs, ys = [self.x_train, self.x_valid], [self.y_train, self.y_valid]
        if not self.validation_is_holdout:
            xs, ys = [*xs, self.x_hold], [*ys, self.y_hold]
        return pd.concat(xs), pd.concat(ys)


def training_sets(
    tables: BusinessTables,
    plan: TrainingPlan,
    lookback_days: int,
    build: Callable[..., pd.DataFrame] = build_features,
) -> TrainingSets:
    """The labelled rows of every cutoff in ``plan``; ``build`` is the feature builder
    (in process or on a cluster)."""
    tx, horizon, label = tables.transactions, plan.horizon_days, plan.label
    args = (tables.interactions, tables.customers, horizon, lookback_days, build, label)
    return _sets(plan, lambda cutoff, lapsed: labelled_features(tx, cutoff, *args, lapsed))


def training_sets_by_batch(
    batches: CustomerBatches,
    plan: TrainingPlan,
    lookback_days: int,
    usage_kinds: tuple[str, ...] = (),
) -> TrainingSets:
    """:func:`training_sets` read from customer batches (``models.night_facts``): each
    cutoff's features and label ingredients batch by batch, then the status model's
    population step on the cutoff's whole feature table. The same sets, exactly, with
    one batch's tables in memory at a time."""

    def rows_at(
        cutoff: pd.Timestamp, lapsed: list[tuple[np.ndarray, np.ndarray]] | None
    ) -> tuple[pd.DataFrame, pd.Series]:
        parts = batches.map(
            partial(
                batch_part,
                cutoff=cutoff,
                plan=plan,
                lookback_days=lookback_days,
                usage_kinds=usage_kinds,
                history_start=batches.history_start,
                observed_until=batches.last_timestamp,
                with_lapsed=lapsed is not None,
            )
        )
        return labelled_rows(concat_parts(parts), plan.label, lapsed)

    return _sets(plan, rows_at)


def batch_part(
    tables: BusinessTables,
    cutoff: pd.Timestamp,
    plan: TrainingPlan,
    lookback_days: int,
    usage_kinds: tuple[str, ...],
    history_start: pd.Timestamp | None,
    observed_until: pd.Timestamp | None,
    with_lapsed: bool,
) -> CutoffPart:
    """One customer batch's part of a cutoff (the business's first and latest
    transaction given, as a batch's own may be later or earlier)."""
    build = partial(
        build_features,
        history_start=history_start,
        usage_kinds=usage_kinds,
        subscription_table=tables.subscriptions,
    )
    return cutoff_part(
        tables.transactions,
        cutoff,
        tables.interactions,
        tables.customers,
        plan.horizon_days,
        lookback_days,
        build,
        plan.label,
        tables.subscriptions,
        observed_until,
        with_lapsed,
    )


def _sets(
    plan: TrainingPlan,
    rows_at: Callable[
        [pd.Timestamp, list[tuple[np.ndarray, np.ndarray]] | None], tuple[pd.DataFrame, pd.Series]
    ],
) -> TrainingSets:
    cutoffs = plan.cutoffs
    lapsed: list[tuple[np.ndarray, np.ndarray]] = []
    train = stack_rows(rows_at, cutoffs.train, lapsed)
    later = (cutoffs.validation, cutoffs.holdout)
    valid, hold = [
        rows_at(cutoff, None)
        for cutoff in track(later, "validation and holdout features", unit="cutoffs")
    ]
    return TrainingSets(
        *train,
        *valid,
        *hold,
        lapsed_bands=np.concatenate([b for b, _ in lapsed]) if lapsed else np.array([], int),
        lapsed_returned=np.concatenate([r for _, r in lapsed]) if lapsed else np.array([], int),
        validation_is_holdout=plan.validation_is_holdout,
    )


@dataclass(frozen=True)
class Evaluation:
    """What the run measured: the selected model before its refit, on the holdout."""

    model: ChurnModel
    x_hold: pd.DataFrame
    y_hold: pd.Series
    leaderboard: pd.DataFrame


@dataclass(frozen=True)
class TrainOutcome:
    """The served model and everything the run logs about it."""

    served: ChurnModel
    evaluation: Evaluation
    holdout: dict[str, float]  # the selected model's holdout metrics, unprefixed
    metrics: dict[str, float]
    params: dict[str, object]  # logged as MLflow params (strings on the way out)
    profile: dict  # the reference the nightly drift check and win-back rates read

    @property
    def winner(self) -> str:
        return str(self.params["serving_candidate"])


def train_and_evaluate(
    sets: TrainingSets,
    plan: TrainingPlan,
    candidates: tuple[str, ...],
    xgb_params: dict | None,
    fit_trees: Callable | None = None,
) -> TrainOutcome:
    """Select on validation rows only (the holdout reports), refit the winner on every
    labelled window, and measure the selected model before its refit."""
    selection = select_champion(
        sets.x_train,
        sets.y_train,
        x_valid=sets.x_valid,
        y_valid=sets.y_valid,
        x_hold=sets.x_hold,
        y_hold=sets.y_hold,
        candidates=candidates,
        xgb_params=xgb_params,
        horizon_days=plan.horizon_days,
        label_days=plan.label_days,
        fit_trees=fit_trees,
    )
    x_refit, y_refit = sets.refit_rows()
    served = refit(selection, x_refit, y_refit, fit_trees)
    return measure(selection, served, sets, plan, x_refit)


def measure(
    selection: Selection,
    served: ChurnModel,
    sets: TrainingSets,
    plan: TrainingPlan,
    x_refit: pd.DataFrame,
) -> TrainOutcome:
    """Holdout and validation metrics, the run's parameters and the reference profile."""
    measured = selection.model
    holdout = evaluate(sets.y_hold, measured.predict_proba(sets.x_hold)[:, 1])
    metrics = {f"holdout_{k}": v for k, v in holdout.items()}
    board = selection.leaderboard.loc[selection.winner]
    metrics |= {
        f"validation_{k}": float(board[f"validation_{k}"])
        for k in ("roc_auc", "pr_auc", "top_decile_lift", "brier")
    }
    metrics |= {
        "train_rows": float(len(sets.x_train)),
        "train_churn_rate": float(sets.y_train.mean()),
        "refit_rows": float(len(x_refit)),
        "best_iteration": float((measured.n_trees or 1) - 1),
    }
    # how often customers past their rhythm came back: the lapsed customers' probability
    profile = {
        "win_back_return_rates": return_rates(sets.lapsed_bands, sets.lapsed_returned),
        "features": reference_profile(x_refit),
        "score": reference_profile(
            pd.DataFrame({"churn_probability": served.predict_proba(x_refit)[:, 1]})
        )["churn_probability"],
    }
    params = plan.cutoffs.as_params() | {
        "confirm_days": plan.label.confirm_days,
        "cutoff_scheme": plan.cutoffs.scheme,
        "serving_candidate": selection.winner,
        "selected_by": f"validation {SELECT_BY} (half of the validation customers)",
        "trained_through": str(plan.trained_through.date()),
        "calibration": "Platt on the raw log-odds, validation rows",
    }
    evaluation = Evaluation(measured, sets.x_hold, sets.y_hold, selection.leaderboard)
    return TrainOutcome(served, evaluation, holdout, metrics, params, profile)


@dataclass(frozen=True)
class Diagnostics:
    """The run's figures, the raw (uncalibrated) Brier score, and the rows the model's
    signature and input example are read from."""

    figures: dict[str, Figure]
    raw_brier: float
    sample: pd.DataFrame


def diagnostics(outcome: TrainOutcome) -> Diagnostics:
    """ROC, lift and calibration on the holdout, and the served model's SHAP summary."""
    evaluation, model = outcome.evaluation, outcome.served
    x_hold, measured = evaluation.x_hold, evaluation.model
    y = evaluation.y_hold.to_numpy()
    p = measured.predict_proba(x_hold)[:, 1]
    raw = np.clip(measured.raw_probability(x_hold), 0.0, 1.0)
    sample = x_hold.sample(min(len(x_hold), SAMPLE_ROWS), random_state=0)
    figures = {
        "roc.png": plots.roc_figure(y, p, outcome.metrics["holdout_roc_auc"]),
        "lift.png": plots.lift_figure(y, p),
        "calibration.png": plots.calibration_figure(y, p),
        "calibration_raw.png": plots.calibration_figure(y, raw),
        "shap_summary.png": plots.shap_summary_figure(model_contributions(model, sample), sample),
    }
    return Diagnostics(figures, float(np.mean((raw - y) ** 2)), sample)
