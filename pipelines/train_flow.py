"""The training flow: stacked cutoffs, candidates that compete on a later one, the winner
refit and judged against the champion, then logged and registered in MLflow.

The stage logic is :mod:`models.train_stage`; this module reads the tables, runs its
expensive steps as tasks and hands the outcome to :mod:`pipelines.registry`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE

from features.usage import choose_usage_kinds, kind_report
from models.promotion import decide
from models.reasons import load_reason_map
from models.train_stage import (
    TrainingPlan,
    TrainingSets,
    TrainOutcome,
    diagnostics,
    plan_training,
    train_and_evaluate,
    training_sets,
)
from models.training import LabelScheme
from pipelines import catalog, registry, tracking
from pipelines.settings import Inputs, TrainSettings
from pipelines.tasks import compute_engine, feature_builder, load_tables, report_observability


@dataclass(frozen=True)
class TrainResult:
    run_id: str
    model_name: str
    model_version: str
    metrics: dict[str, float]
    cutoffs: dict[str, str]
    tracking_uri: str
    promoted: bool
    promotion_reason: str
    champion_version: str | None
    serving_candidate: str = "xgboost"
    leaderboard: dict[str, dict[str, float]] | None = None


def training_usage_kinds(
    tables: catalog.Tables, settings: TrainSettings, observability: dict
) -> tuple[str, ...]:
    """The interaction kinds that get usage features (decided here, at training; the
    model's feature names pin them for scoring), logged with those no feature reads;
    both are added to ``observability`` for the MLflow run."""
    # chosen on every row: which kinds exist is no label, and every cutoff then agrees
    kinds = choose_usage_kinds(tables.interactions, settings.usage_top_kinds)
    report = kind_report(tables.interactions, kinds)
    observability.update(report, usage_kinds=list(kinds))
    logger = get_run_logger()
    if tables.interactions is not None:
        logger.info(
            "interaction kinds used: %s; ignored: %s",
            ", ".join(f"{k} ({n:,})" for k, n in report["kinds_used"].items()) or "none",
            ", ".join(f"{k} ({n:,})" for k, n in report["kinds_ignored"].items()) or "none",
        )
        if not report["kinds_used"]:
            logger.warning(
                "the interactions table (%d rows) feeds no feature beyond the last contact: "
                "no kind is one the contract reads and usage_top_kinds is 0; map yours with "
                "`kinds:`",
                len(tables.interactions),
            )
    return kinds


def plan_for(tables: catalog.Tables, settings: TrainSettings) -> TrainingPlan:
    """The cutoffs and label for these tables, logged (with a warning if shortened)."""
    tx = tables.transactions
    asked = LabelScheme(
        confirm_days=settings.confirm_days, status_tail=settings.status_tail
    ).with_subscriptions(tables.subscriptions)
    plan = plan_training(
        tx["timestamp"].min(),
        tx["timestamp"].max(),
        asked,
        settings.horizon_days,
        settings.n_train_cutoffs,
        settings.cutoff_step_days,
        settings.min_history_days,
    )
    logger = get_run_logger()
    logger.info("cutoffs: %s", plan.cutoffs.as_params())
    if plan.shortened:
        logger.warning(
            "short history: %s scheme, departures confirmed over %d days (asked: %d); "
            "metrics are less certain than with more data",
            plan.cutoffs.scheme,
            plan.label.confirm_days,
            asked.confirm_days,
        )
    return plan


@task(cache_policy=NONE)
def build_training_sets(
    tables: catalog.Tables,
    plan: TrainingPlan,
    lookback_days: int,
    build: Callable[..., pd.DataFrame],
) -> TrainingSets:
    """Features and labels of every cutoff (``build``: in process or on Dask)."""
    return training_sets(tables, plan, lookback_days, build)


@task(cache_policy=NONE)
def fit_candidates(
    sets: TrainingSets,
    plan: TrainingPlan,
    settings: TrainSettings,
    fit_trees: Callable[..., Any] | None,
) -> TrainOutcome:
    """Every candidate fitted and ranked, the winner refit and measured."""
    outcome = train_and_evaluate(sets, plan, settings.candidates, settings.xgb_params, fit_trees)
    logger = get_run_logger()
    logger.info("leaderboard:\n%s", outcome.evaluation.leaderboard.round(4).to_string())
    logger.info(
        "serving %s; holdout ROC-AUC %.3f, PR-AUC %.3f (measured before the refit)",
        outcome.winner,
        outcome.metrics["holdout_roc_auc"],
        outcome.metrics["holdout_pr_auc"],
    )
    return outcome


# the figures include the served model's SHAP summary
explain_training = task(diagnostics, name="explain_training", cache_policy=NONE)


def _tree_fitter(client: Any) -> Callable[..., Any] | None:
    """XGBoost fitted on the Dask cluster, or None: in this process."""
    if client is None:
        return None
    from pipelines.engines import dask_train

    return partial(dask_train, client=client)


@flow(name="train")
def train(inputs: Inputs, settings: TrainSettings | None = None) -> TrainResult:
    """Train on stacked cutoffs, early-stop on a later one, judge on the latest, register."""
    settings = settings or TrainSettings()
    logger = get_run_logger()
    reason_map = load_reason_map(settings.reason_map)
    uri = registry.connect(settings)  # fail before an hour of training, not after
    tables = load_tables(inputs, settings)
    observability = report_observability(tables, reason_map)
    usage_kinds = training_usage_kinds(tables, settings, observability)
    plan = plan_for(tables, settings)
    with compute_engine(settings) as client:
        build = feature_builder(client, usage_kinds, tables.subscriptions, settings.feature_batches)
        sets = build_training_sets(tables, plan, settings.lookback_days, build)
        outcome = fit_candidates(sets, plan, settings, _tree_fitter(client))
    incumbent = registry.evaluate_champion(
        settings.model_name, outcome.evaluation, plan.cutoffs.holdout
    )
    decision = decide(
        outcome.holdout,
        incumbent.metrics,
        settings.promotion_metric,
        settings.brier_tolerance,
        settings.force,
    )
    logger.info("promotion: %s (%s)", "yes" if decision.promote else "no", decision.reason)
    run = registry.TrainingRun(
        outcome, explain_training(outcome), observability, reason_map, decision, incumbent
    )
    registered = registry.log_and_register(run, settings)
    logger.info(
        "registered %s version %s as @%s%s",
        settings.model_name,
        registered.version,
        tracking.CHALLENGER,
        f" and @{tracking.CHAMPION}" if decision.promote else "",
    )
    board = outcome.evaluation.leaderboard
    return TrainResult(
        registered.run_id,
        settings.model_name,
        registered.version,
        outcome.metrics,
        outcome.params,
        uri,
        promoted=decision.promote,
        promotion_reason=decision.reason,
        champion_version=registered.version if decision.promote else incumbent.version,
        serving_candidate=outcome.served.kind,
        leaderboard={
            str(name): {k: (None if pd.isna(v) else v) for k, v in row.items()}
            for name, row in board.iterrows()
        },
    )
