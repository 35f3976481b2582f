"""The flows' MLflow tasks: connect once per flow run, read the champion back, log and
register a training run, log a scoring night.

Every task here but :func:`connect` uses the store :func:`connect` configured
(:func:`pipelines.tracking.configure`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.models import infer_signature
from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from models.champion import SKOPS_TRUSTED_TYPES
from models.metrics import evaluate
from models.nightly import Champion, Drift, Night
from models.promotion import Decision
from models.reasons import ReasonMap
from models.scoring import FeatureMismatchError, align_features
from models.train_stage import Diagnostics, Evaluation, TrainOutcome
from pipelines import tracking
from pipelines.settings import CommonSettings, TrainSettings
from pipelines.tasks import retry_unless_bad_input

# MLflow reads and writes: retried (a server may be restarting), never a missing model
MLFLOW_RETRIES = {"retries": 2, "retry_delay_seconds": [2, 10], "cache_policy": NONE}


@task(**MLFLOW_RETRIES)
def connect(settings: CommonSettings) -> str:
    """Point MLflow at the flow's store and experiment; the tracking URI."""
    return tracking.configure(settings.data_dir, settings.experiment, settings.tracking_uri)


@dataclass(frozen=True)
class Incumbent:
    """The champion before this run: its version and its metrics on this holdout."""

    version: str | None = None
    metrics: dict[str, float] | None = None  # None: none, or it cannot run on this data


@task(**MLFLOW_RETRIES, retry_condition_fn=retry_unless_bad_input)
def evaluate_champion(model_name: str, evaluation: Evaluation, holdout: pd.Timestamp) -> Incumbent:
    """The current champion's metrics on the challenger's holdout rows, if it can run.

    A champion refit on data that reaches past this holdout cutoff has seen these rows'
    outcomes; judging it on them would flatter it, so its own logged (honest) holdout
    metrics stand in.
    """
    try:
        version = tracking.champion_version(model_name)
    except LookupError:
        return Incumbent()
    client = mlflow.MlflowClient()
    run = client.get_run(client.get_model_version(model_name, version).run_id)
    trained_through = run.data.params.get("trained_through")
    if trained_through and pd.Timestamp(trained_through) > holdout:
        logged = {
            k.removeprefix("holdout_"): v
            for k, v in run.data.metrics.items()
            if k.startswith("holdout_")
        }
        get_run_logger().info(
            "champion version %s was trained through %s, past this holdout: comparing with "
            "its own logged holdout metrics",
            version,
            trained_through,
        )
        return Incumbent(version, logged or None)
    champion = tracking.load_served_model(f"models:/{model_name}@{tracking.CHAMPION}")
    try:
        x = align_features(evaluation.x_hold, champion)
    except FeatureMismatchError as exc:
        get_run_logger().warning("champion version %s cannot be evaluated: %s", version, exc)
        return Incumbent(version)
    return Incumbent(version, evaluate(evaluation.y_hold, champion.predict_proba(x)[:, 1]))


@task(**MLFLOW_RETRIES, retry_condition_fn=retry_unless_bad_input)
def load_champion(model_name: str) -> Champion:
    """The ``@champion`` model, its version and its training run's reference profile."""
    version = tracking.champion_version(model_name)
    model = tracking.load_served_model(f"models:/{model_name}@{tracking.CHAMPION}")
    run_id = mlflow.MlflowClient().get_model_version(model_name, version).run_id
    profile = mlflow.artifacts.load_dict(f"runs:/{run_id}/reference_profile.json")
    return Champion(model, version, profile)


@dataclass(frozen=True)
class TrainingRun:
    """Everything one training run logs and registers."""

    outcome: TrainOutcome
    diagnostics: Diagnostics
    observability: dict[str, list[str]]
    reason_map: ReasonMap
    decision: Decision
    incumbent: Incumbent


@dataclass(frozen=True)
class Registered:
    run_id: str
    version: str


def _train_params(run: TrainingRun, settings: TrainSettings) -> dict[str, object]:
    model, board = run.outcome.served, run.outcome.evaluation.leaderboard
    xgb_params = model.estimator_.get_params() if model.kind.startswith("xgboost") else {}
    return {
        **{k: v for k, v in xgb_params.items() if v is not None},
        "candidates": ",".join(board.index),
        **run.outcome.params,
        "horizon_days": settings.horizon_days,
        "lookback_days": settings.lookback_days,
        "label": "departure of active customers",
        "confirm_days_asked": settings.confirm_days,
        "status_tail": settings.status_tail,
        "n_features": run.outcome.evaluation.x_hold.shape[1],
        "promotion_metric": settings.promotion_metric,
        "force": settings.force,
    }


@task(**MLFLOW_RETRIES)
def log_and_register(run: TrainingRun, settings: TrainSettings) -> Registered:
    """One MLflow run: parameters, metrics, leaderboard, plots and the reference profile;
    the served model registered as ``@challenger`` (and ``@champion`` if promoted)."""
    outcome, decision = run.outcome, run.decision
    model, board, sample = outcome.served, outcome.evaluation.leaderboard, run.diagnostics.sample
    champion_version, champion_metrics = run.incumbent.version, run.incumbent.metrics
    client = mlflow.MlflowClient()
    with mlflow.start_run(run_name="train") as active:
        mlflow.log_params(_train_params(run, settings))
        mlflow.log_metrics({k: v for k, v in outcome.metrics.items() if pd.notna(v)})
        if champion_metrics:
            mlflow.log_metrics(
                {f"champion_holdout_{k}": v for k, v in champion_metrics.items() if pd.notna(v)}
            )
        features = list(outcome.evaluation.x_hold.columns)
        mlflow.log_dict({"features": features, **run.observability}, "features.json")
        mlflow.log_dict(run.reason_map.to_dict(), "reason_map.json")
        mlflow.log_dict(outcome.profile, "reference_profile.json")
        # the leaderboard: every candidate's validation and holdout scores, and who serves
        mlflow.log_dict(
            json.loads(board.reset_index().to_json(orient="records")), "leaderboard.json"
        )
        mlflow.log_text(board.round(4).to_string(), "leaderboard.txt")
        mlflow.log_metrics(
            {
                f"leaderboard_{name}_{column}": float(value)
                for name, row in board.iterrows()
                for column, value in row.items()
                if column.startswith(("validation_", "holdout_")) and pd.notna(value)
            }
        )
        mlflow.log_metric("holdout_brier_raw", run.diagnostics.raw_brier)
        for name, fig in run.diagnostics.figures.items():
            mlflow.log_figure(fig, f"plots/{name}")
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            skops_trusted_types=SKOPS_TRUSTED_TYPES,
            registered_model_name=settings.model_name,
            signature=infer_signature(sample, model.predict_proba(sample)[:, 1]),
            input_example=sample.head(5),
        )
        version = str(info.registered_model_version)
        client.set_registered_model_alias(settings.model_name, tracking.CHALLENGER, version)
        if decision.promote:
            client.set_registered_model_alias(settings.model_name, tracking.CHAMPION, version)
        mlflow.set_tags(
            {
                "promoted": str(decision.promote).lower(),
                "promotion_reason": decision.reason,
                "previous_champion_version": champion_version or "none",
            }
        )
    return Registered(active.info.run_id, version)


@task(**MLFLOW_RETRIES)
def log_scoring_run(
    night: Night, drift: Drift, model_version: str, rows_read: dict[str, int], report: Path
) -> None:
    """One MLflow run per scoring date: volumes, score distribution, drift, mix, KPIs."""
    score_date = str(night.cutoff.date())
    probability = night.active_probability
    with mlflow.start_run(run_name=f"score {score_date}"):
        mlflow.set_tags(
            {
                "kind": "score",
                "score_date": score_date,
                "model_version": model_version,
                "drifting_features": ",".join(drift.drifting) or "none",
            }
        )
        mlflow.log_metrics(
            {f"rows_read_{k}": float(v) for k, v in rows_read.items()}
            | {f"psi_{k}": float(v) for k, v in drift.psi.items()}
            | {f"reason_mix_{k}": float(v) for k, v in night.reason_mix.items()}
            | {k: float(v) for k, v in night.kpis.items() if pd.notna(v)}
            | {"score_mean": float(probability.mean())}
            | {f"score_p{q}": float(probability.quantile(q / 100)) for q in (10, 50, 90)}
            | {"drifting_feature_count": float(len(drift.drifting))}
        )
        mlflow.log_artifact(str(report))
