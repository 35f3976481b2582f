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

from features.usage import choose_usage_kinds, kind_counts, kind_report
from models.night_facts import CustomerBatches
from models.promotion import decide
from models.reasons import ReasonMap, load_reason_map
from models.train_stage import (
    TrainingPlan,
    TrainingSets,
    TrainOutcome,
    diagnostics,
    plan_training,
    train_and_evaluate,
    training_sets,
    training_sets_by_batch,
)
from models.training import LabelScheme
from pipelines import catalog, registry, staged, tracking
from pipelines.settings import DatabaseInputs, InputPaths, Inputs, TrainSettings
from pipelines.tasks import (
    compute_engine,
    feature_builder,
    load_tables,
    report_observability,
    report_read,
)


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
    kinds: pd.Series | None, settings: TrainSettings, observability: dict
) -> tuple[str, ...]:
    """The interaction kinds that get usage features (decided here, at training; the
    model's feature names pin them for scoring), logged with those no feature reads;
    both are added to ``observability`` for the MLflow run.

    Args:
        kinds: rows per interaction kind (``features.usage.kind_counts``); None: the
            business has no interactions table.
    """
    # chosen on every row: which kinds exist is no label, and every cutoff then agrees
    chosen = choose_usage_kinds(kinds, settings.usage_top_kinds)
    report = kind_report(kinds, chosen)
    observability.update(report, usage_kinds=list(chosen))
    logger = get_run_logger()
    if kinds is not None:
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
                int(kinds.sum()),
            )
    return chosen


def plan_for(
    first_day: pd.Timestamp,
    last_day: pd.Timestamp,
    subscriptions: pd.DataFrame | None,
    settings: TrainSettings,
) -> TrainingPlan:
    """The cutoffs and label for a business's history, logged (with a warning if
    shortened); ``subscriptions``: the table, or its columns, if the business has one."""
    asked = LabelScheme(
        confirm_days=settings.confirm_days, status_tail=settings.status_tail
    ).with_subscriptions(subscriptions)
    plan = plan_training(
        first_day,
        last_day,
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


@task(cache_policy=NONE)
def build_training_sets_by_batch(
    batches: CustomerBatches, plan: TrainingPlan, lookback_days: int, usage_kinds: tuple[str, ...]
) -> TrainingSets:
    """The same sets from customer batches (local disk, or partitions on Dask workers)."""
    return training_sets_by_batch(batches, plan, lookback_days, usage_kinds)


@flow(name="train")
def train(inputs: Inputs, settings: TrainSettings | None = None) -> TrainResult:
    """Train on stacked cutoffs, early-stop on a later one, judge on the latest, register.

    With ``feature_batches`` (local engine) the tables are read in customer batches
    staged on local disk; with the Dask engine (files or PostgreSQL), by the workers.
    Otherwise whole.
    """
    settings = settings or TrainSettings()
    reason_map = load_reason_map(settings.reason_map)
    uri = registry.connect(settings)  # fail before an hour of training, not after
    lookback = settings.lookback_days
    batches = staged.batches_for(inputs, settings)
    if batches is not None:
        with staged.stage(inputs, settings, batches) as source:  # type: ignore[arg-type]
            if source is not None:
                return _train_batches(source, settings, reason_map, uri)
    if settings.engine == "dask" and isinstance(inputs, InputPaths | DatabaseInputs):
        from pipelines import dask_read  # the workers read, validate and build features

        with (
            compute_engine(settings) as client,
            dask_read.stage_inputs(inputs, settings, client) as on_workers,
        ):
            if on_workers is not None:
                fit_trees = _tree_fitter(client)
                return _train_batches(on_workers, settings, reason_map, uri, fit_trees)
    tables = load_tables(inputs, settings)
    tx = tables.transactions
    with compute_engine(settings) as client:

        def whole(plan: TrainingPlan, kinds: tuple[str, ...]) -> TrainingSets:
            subs, n = tables.subscriptions, settings.feature_batches
            build = feature_builder(client, kinds, subs, n)
            return build_training_sets(tables, plan, lookback, build)

        return _train(
            tables,
            None if tables.interactions is None else kind_counts(tables.interactions),
            (tx["timestamp"].min(), tx["timestamp"].max()),
            whole,
            settings,
            reason_map,
            uri,
            _tree_fitter(client),
        )


def _train_batches(
    source: Any,
    settings: TrainSettings,
    reason_map: ReasonMap,
    uri: str,
    fit_trees: Callable[..., Any] | None = None,
) -> TrainResult:
    """:func:`_train` on staged customer batches or partitions on Dask workers (``source``:
    ``pipelines.staged.StagedBatches`` or ``pipelines.dask_read.DaskBatches``)."""
    report_read(source.schema)
    lookback = settings.lookback_days
    return _train(
        source.schema,
        source.kinds if source.schema.interactions is not None else None,
        (source.history_start, source.last_timestamp),
        lambda plan, kinds: build_training_sets_by_batch(source, plan, lookback, kinds),
        settings,
        reason_map,
        uri,
        fit_trees,
    )


def _train(
    tables: catalog.Tables,
    kinds: pd.Series | None,
    history: tuple[pd.Timestamp | None, pd.Timestamp | None],
    build_sets: Callable[[TrainingPlan, tuple[str, ...]], TrainingSets],
    settings: TrainSettings,
    reason_map: ReasonMap,
    uri: str,
    fit_trees: Callable[..., Any] | None = None,
) -> TrainResult:
    """Plan, build the sets, fit, judge against the champion and register.

    Args:
        tables: the tables, or only their columns (the schema of customer batches).
        kinds: rows per interaction kind; None: no interactions table.
        history: the first and the latest transaction.
    """
    logger = get_run_logger()
    observability = report_observability(tables, reason_map)
    usage_kinds = training_usage_kinds(kinds, settings, observability)
    first, last = history
    if first is None or last is None:
        raise ValueError("the transactions table has no rows")
    plan = plan_for(first, last, tables.subscriptions, settings)
    sets = build_sets(plan, usage_kinds)
    outcome = fit_candidates(sets, plan, settings, fit_trees)
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
