"""Prefect flows: build_features, train, score, nightly. Thin wiring around the pure
functions in ``features/`` and ``models/``; I/O goes through ``pipelines.catalog``."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd
from mlflow.models import infer_signature
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE
from prefect.states import Completed, State

from features.build import build_features as build_feature_table
from features.build import build_features_as_of, observable_features, unobservable_features
from features.contracts import InputError
from features.kpis import retention_kpis, risk_kpis
from features.status import LAPSED, customer_status, due_back
from features.subscriptions import with_subscription_status
from features.usage import choose_usage_kinds, kind_report, kinds_in_features
from features.windows import as_cutoff
from models import plots
from models.champion import SKOPS_TRUSTED_TYPES, ChurnModel, model_contributions
from models.metrics import evaluate
from models.monitoring import drift, reference_profile
from models.playbook import load_playbook
from models.promotion import Decision, decide
from models.reasons import REASONS, ReasonMap, load_reason_map
from models.scoring import (
    FeatureMismatchError,
    align_features,
    at_risk_list,
    model_features,
    score_customers,
    win_back_list,
)
from models.selection import SELECT_BY, refit, select_champion
from models.training import (
    LabelScheme,
    fit_label_to_data,
    labelled_features,
    stack_cutoffs,
)
from models.win_back import lapsed_churn_probability, return_rates
from pipelines import campaigns, catalog, tracking
from pipelines.database import (
    DatabaseAccessError,
    check_database,
    read_tables_sql,
    validate_identifier,
    write_list_sql,
)
from pipelines.report import DRIVER_CUSTOMERS, render_report
from pipelines.settings import (
    CommonSettings,
    DatabaseInputs,
    InputPaths,
    Inputs,
    ScoreSettings,
    TrainSettings,
)


def _retry_unless_bad_input(task, task_run, state) -> bool:  # noqa: ANN001
    """Retry I/O hiccups, never a file that is simply wrong or a login that is refused."""
    try:
        state.result()
    except (InputError, FileNotFoundError, LookupError, ValueError, DatabaseAccessError):
        return False
    except Exception:  # noqa: BLE001
        return True
    return False


def database_url(env_var: str) -> str:
    """The connection URL from the environment (never a flow parameter: it has a password)."""
    url = os.environ.get(env_var)
    if not url:
        raise LookupError(f"set {env_var} to the database URL (postgresql+psycopg://...)")
    return url


@task(
    retries=3,
    retry_delay_seconds=[2, 10, 30],
    retry_condition_fn=_retry_unless_bad_input,
    cache_policy=NONE,
)
def load_tables(
    inputs: InputPaths | DatabaseInputs, settings: CommonSettings | None = None
) -> catalog.Tables:
    """The business's tables, validated; ``settings`` maps interaction kinds and says
    whether exact duplicate interactions are dropped."""
    if isinstance(inputs, DatabaseInputs):
        tables = read_tables_sql(
            database_url(inputs.url_env),
            inputs.transactions,
            inputs.interactions,
            inputs.customers,
            inputs.queries or None,
        )
    else:
        tables = catalog.read_tables(
            inputs.transactions,
            inputs.interactions,
            inputs.customers,
            inputs.subscriptions,
            settings.kinds if settings else None,
            settings.drop_duplicate_interactions if settings else False,
        )
    logger = get_run_logger()
    for warning in tables.warnings:
        logger.warning(warning)
    logger.info("rows read: %s", tables.rows_read)
    return tables


def preflight(inputs: Inputs, out_dir: Path, settings: ScoreSettings) -> None:
    """Check every destination of a scoring run before any table is read.

    In order: the list table's name, that it has a database URL, that ``out_dir`` is
    writable, then (for database inputs or a list table) that the server takes this login
    and the role may write the list. Nothing is written.

    Raises:
        ValueError: a bad table name, or an existing table that is not a churn list.
        LookupError: a list table but no database URL.
        OutputNotWritable: ``out_dir`` cannot be written.
        DatabaseAccessError: the login is refused, or the role may not write the list.
        DatabaseUnavailable: the server cannot be reached (worth retrying).
    """
    table = settings.output_table
    if table:
        validate_identifier(table)
        if not os.environ.get(settings.output_url_env):
            raise LookupError(
                f"the list table {table!r} needs a database: pass --db or set "
                f"{settings.output_url_env} to its URL (postgresql+psycopg://...)"
            )
    catalog.check_writable(Path(out_dir))
    # each database once: the list table's (login and privileges), the inputs' (login)
    databases = {settings.output_url_env: table} if table else {}
    if isinstance(inputs, DatabaseInputs):
        databases.setdefault(inputs.url_env, None)
    for url_env, list_table in databases.items():
        check_database(database_url(url_env), list_table)


check_destinations = task(
    preflight,
    name="check_destinations",
    retries=3,
    retry_delay_seconds=[2, 10, 30],
    retry_condition_fn=_retry_unless_bad_input,
    cache_policy=NONE,
)


@task(
    retries=3,
    retry_delay_seconds=[2, 10, 30],
    retry_condition_fn=_retry_unless_bad_input,
    cache_policy=NONE,
)
def write_outputs_and_table(
    frames: dict[str, pd.DataFrame | str],
    out_dir: Path,
    listed: pd.DataFrame,
    settings: ScoreSettings,
    cutoff: pd.Timestamp,
) -> dict[str, Path]:
    """The files and the list table as one outcome; safe to retry.

    The files are staged, the score date's rows of the table replaced, and only then are
    the files renamed into place: a table that refuses the list (or a server that is
    down) leaves the previous files, and the table's previous rows, as they were.
    """
    table = settings.output_table
    url = database_url(settings.output_url_env)
    written: list[int] = []
    paths = catalog.write_atomic(
        frames,
        Path(out_dir),
        before_replace=lambda: written.append(write_list_sql(listed, url, table, cutoff)),
    )
    get_run_logger().info("%d rows -> postgresql:%s for %s", written[0], table, cutoff.date())
    return paths


def report_observability(tables: catalog.Tables, reason_map: ReasonMap) -> dict[str, list[str]]:
    """Which features and loss reasons these tables cannot show, logged for the user."""
    tx_cols = set(tables.transactions.columns)
    ix_cols = None if tables.interactions is None else set(tables.interactions.columns)
    have = observable_features(tx_cols, ix_cols)
    reason_map.check_covers(have)
    missing = unobservable_features(tx_cols, ix_cols)
    seen = {reason_map.reason_of(f) for f in have if reason_map.reason_of(f) != "unidentified"}
    blind = [r for r in REASONS if r != "unidentified" and r not in seen]
    if missing:
        get_run_logger().warning(
            "unobservable with these tables: %d features (%s); reasons with no signal: %s",
            len(missing),
            ", ".join(missing),
            ", ".join(blind) or "none",
        )
    return {"unobservable_features": missing, "unobservable_reasons": blind}


@contextmanager
def compute_engine(settings: TrainSettings | ScoreSettings) -> Iterator[Any]:
    """None for the local engine, else a Dask client (closed, with its local cluster, after)."""
    if settings.engine == "local":
        yield None
        return
    from pipelines.engines import get_client

    client = get_client(settings.dask_address)
    try:
        yield client
    finally:
        client.close()


def feature_builder(
    client: Any, usage_kinds: tuple[str, ...] = (), subscriptions: pd.DataFrame | None = None
) -> Callable[..., pd.DataFrame]:
    """The same pure feature function, in process or per customer partition on Dask.

    Usage and subscription features (``usage_kinds``, ``subscriptions``) are built in
    process for now: the Dask engine does not partition those tables yet.
    """
    if usage_kinds or subscriptions is not None:
        if client is not None:
            get_run_logger().warning(
                "usage / subscription features are built in this process, not on Dask"
            )
        return partial(
            build_feature_table, usage_kinds=usage_kinds, subscription_table=subscriptions
        )
    if client is None:
        return build_feature_table
    from pipelines.engines import dask_features

    return partial(dask_features, client=client)


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


def default_score_date(transactions: pd.DataFrame) -> pd.Timestamp:
    """The day after the last transaction: every row in the data is then usable."""
    return transactions["timestamp"].max().normalize() + pd.Timedelta(days=1)


@task(
    retries=2,
    retry_delay_seconds=[1, 5],
    retry_condition_fn=_retry_unless_bad_input,
    cache_policy=NONE,
)
def write_outputs(frames: dict[str, pd.DataFrame | str], out_dir: Path) -> dict[str, Path]:
    return catalog.write_atomic(frames, out_dir)


@flow(name="build_features")
def build_features(inputs: Inputs, cutoff: str, out_dir: Path, lookback_days: int = 365) -> Path:
    """Feature table for one cutoff -> ``out_dir/features.parquet``."""
    tables = load_tables(inputs)
    report_observability(tables, load_reason_map())
    features = build_feature_table(
        tables.transactions,
        cutoff,
        tables.interactions,
        tables.customers,
        lookback_days,
        usage_kinds=choose_usage_kinds(tables.interactions),
        subscription_table=tables.subscriptions,
    )
    paths = write_outputs({"features": features.reset_index()}, Path(out_dir))
    get_run_logger().info("%d customers -> %s", len(features), paths["features"])
    return paths["features"]


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


@flow(name="train")
def train(inputs: Inputs, settings: TrainSettings | None = None) -> TrainResult:
    """Train on stacked cutoffs, early-stop on a later one, judge on the latest, register."""
    settings = settings or TrainSettings()
    logger = get_run_logger()
    reason_map = load_reason_map(settings.reason_map)
    connect_tracking(settings)  # fail before an hour of training, not after
    tables = load_tables(inputs, settings)
    observability = report_observability(tables, reason_map)
    usage_kinds = training_usage_kinds(tables, settings, observability)

    tx = tables.transactions
    wanted = LabelScheme(
        confirm_days=settings.confirm_days, status_tail=settings.status_tail
    ).with_subscriptions(tables.subscriptions)
    cutoffs, label = fit_label_to_data(
        tx["timestamp"].min(),
        tx["timestamp"].max(),
        wanted,
        settings.horizon_days,
        settings.n_train_cutoffs,
        settings.cutoff_step_days,
        settings.min_history_days,
    )
    logger.info("cutoffs: %s", cutoffs.as_params())
    if cutoffs.scheme != "full" or label != wanted:
        logger.warning(
            "short history: %s scheme, departures confirmed over %d days (asked: %d); "
            "metrics are less certain than with more data",
            cutoffs.scheme,
            label.confirm_days,
            wanted.confirm_days,
        )
    label_days = label.label_days(settings.horizon_days)
    with compute_engine(settings) as client:
        args = (
            tables.interactions,
            tables.customers,
            settings.horizon_days,
            settings.lookback_days,
            feature_builder(client, usage_kinds, tables.subscriptions),
            label,
        )
        lapsed: list = []
        x_train, y_train = stack_cutoffs(tx, cutoffs.train, *args, lapsed)
        x_valid, y_valid = labelled_features(tx, cutoffs.validation, *args)
        x_hold, y_hold = labelled_features(tx, cutoffs.holdout, *args)
        fit_trees = None
        if client is not None:
            from pipelines.engines import dask_train

            fit_trees = partial(dask_train, client=client)
        # select on validation rows only; the holdout reports
        selection = select_champion(
            x_train,
            y_train,
            x_valid,
            y_valid,
            x_hold,
            y_hold,
            settings.candidates,
            settings.xgb_params,
            settings.horizon_days,
            label_days,
            fit_trees,
        )
        # then refit the winner on every labelled window, the latest included
        seen = (
            [x_train, x_valid]
            if cutoffs.validation == cutoffs.holdout
            else [
                x_train,
                x_valid,
                x_hold,
            ]
        )
        labels_seen = [y_train, y_valid] if len(seen) == 2 else [y_train, y_valid, y_hold]
        x_refit, y_refit = pd.concat(seen), pd.concat(labels_seen)
        served = refit(selection, x_refit, y_refit, fit_trees)

    logger.info("leaderboard:\n%s", selection.leaderboard.round(4).to_string())
    # how often customers past their rhythm came back: the lapsed customers' probability
    bands = np.concatenate([b for b, _ in lapsed]) if lapsed else np.array([], int)
    returned = np.concatenate([r for _, r in lapsed]) if lapsed else np.array([], int)
    rates = return_rates(bands, returned)
    measured = selection.model
    holdout = evaluate(y_hold, measured.predict_proba(x_hold)[:, 1])
    metrics = {f"holdout_{k}": v for k, v in holdout.items()}
    board = selection.leaderboard.loc[selection.winner]
    metrics |= {
        f"validation_{k}": float(board[f"validation_{k}"])
        for k in ("roc_auc", "pr_auc", "top_decile_lift", "brier")
    }
    metrics |= {
        "train_rows": float(len(x_train)),
        "train_churn_rate": float(y_train.mean()),
        "refit_rows": float(len(x_refit)),
        "best_iteration": float((measured.n_trees or 1) - 1),
    }
    logger.info(
        "serving %s; holdout ROC-AUC %.3f, PR-AUC %.3f (measured before the refit)",
        selection.winner,
        metrics["holdout_roc_auc"],
        metrics["holdout_pr_auc"],
    )
    trained_through = cutoffs.holdout + pd.Timedelta(days=label_days)
    if cutoffs.validation == cutoffs.holdout:
        trained_through = cutoffs.validation + pd.Timedelta(days=label_days)
    champion_version, champion_metrics = evaluate_champion(
        settings, x_hold, y_hold, cutoffs.holdout
    )
    decision = decide(
        holdout,
        champion_metrics,
        settings.promotion_metric,
        settings.brier_tolerance,
        settings.force,
    )
    logger.info("promotion: %s (%s)", "yes" if decision.promote else "no", decision.reason)
    profile = {
        "win_back_return_rates": rates,
        "features": reference_profile(x_refit),
        "score": reference_profile(
            pd.DataFrame({"churn_probability": served.predict_proba(x_refit)[:, 1]})
        )["churn_probability"],
    }
    params = cutoffs.as_params() | {
        "confirm_days": label.confirm_days,
        "cutoff_scheme": cutoffs.scheme,
        "serving_candidate": selection.winner,
        "selected_by": f"validation {SELECT_BY} (half of the validation customers)",
        "trained_through": str(trained_through.date()),
        "calibration": "Platt on the raw log-odds, validation rows",
    }
    return log_and_register(
        served,
        Evaluation(measured, x_hold, y_hold, selection.leaderboard),
        metrics,
        params,
        observability,
        reason_map,
        settings,
        decision,
        champion_version,
        champion_metrics,
        profile,
    )


@dataclass(frozen=True)
class Evaluation:
    """What the run measured: the selected model before its refit, on the holdout."""

    model: Any
    x_hold: pd.DataFrame
    y_hold: pd.Series
    leaderboard: pd.DataFrame


@task(retries=2, retry_delay_seconds=[2, 10], cache_policy=NONE)
def connect_tracking(settings: TrainSettings) -> str:
    return tracking.configure(settings.data_dir, settings.experiment, settings.tracking_uri)


@task(
    retries=2,
    retry_delay_seconds=[2, 10],
    retry_condition_fn=_retry_unless_bad_input,
    cache_policy=NONE,
)
def evaluate_champion(
    settings: TrainSettings, x_hold: pd.DataFrame, y_hold: pd.Series, holdout: pd.Timestamp
) -> tuple[str | None, dict[str, float] | None]:
    """The current champion's metrics on the challenger's holdout rows, if it can run.

    A champion refit on data that reaches past this holdout cutoff has seen these rows'
    outcomes; judging it on them would flatter it, so its own logged (honest) holdout
    metrics stand in.
    """
    tracking.configure(settings.data_dir, settings.experiment, settings.tracking_uri)
    try:
        version = tracking.champion_version(settings.model_name)
    except LookupError:
        return None, None
    uri = f"models:/{settings.model_name}@{tracking.CHAMPION}"
    client = mlflow.MlflowClient()
    run = client.get_run(client.get_model_version(settings.model_name, version).run_id)
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
        return version, logged or None
    champion = load_served_model(uri)
    try:
        x = align_features(x_hold, champion)
    except FeatureMismatchError as exc:
        get_run_logger().warning("champion version %s cannot be evaluated: %s", version, exc)
        return version, None
    return version, evaluate(y_hold, champion.predict_proba(x)[:, 1])


def load_served_model(uri: str) -> Any:
    """A registered model: a ChurnModel (scikit-learn flavour) or an older XGBoost one."""
    flavors = mlflow.models.get_model_info(uri).flavors
    if "sklearn" in flavors:
        return mlflow.sklearn.load_model(uri)
    return mlflow.xgboost.load_model(uri)


@task(retries=2, retry_delay_seconds=[2, 10], cache_policy=NONE)
def log_and_register(
    model: ChurnModel,
    evaluation: Evaluation,
    metrics: dict[str, float],
    cutoff_params: dict[str, str],
    observability: dict[str, list[str]],
    reason_map: ReasonMap,
    settings: TrainSettings,
    decision: Decision,
    champion_version: str | None,
    champion_metrics: dict[str, float] | None,
    profile: dict,
) -> TrainResult:
    uri = tracking.configure(settings.data_dir, settings.experiment, settings.tracking_uri)
    x_hold, measured = evaluation.x_hold, evaluation.model
    y = evaluation.y_hold.to_numpy()
    p = measured.predict_proba(x_hold)[:, 1]
    raw = np.clip(measured.raw_probability(x_hold), 0.0, 1.0)
    sample = x_hold.sample(min(len(x_hold), 2000), random_state=0)
    client = mlflow.MlflowClient()
    board = evaluation.leaderboard
    with mlflow.start_run(run_name="train") as run:
        xgb_params = model.estimator_.get_params() if model.kind.startswith("xgboost") else {}
        mlflow.log_params(
            {
                **{k: v for k, v in xgb_params.items() if v is not None},
                "candidates": ",".join(board.index),
                **cutoff_params,
                "horizon_days": settings.horizon_days,
                "lookback_days": settings.lookback_days,
                "label": "departure of active customers",
                "confirm_days_asked": settings.confirm_days,
                "status_tail": settings.status_tail,
                "n_features": x_hold.shape[1],
                "promotion_metric": settings.promotion_metric,
                "force": settings.force,
            }
        )
        mlflow.log_metrics({k: v for k, v in metrics.items() if pd.notna(v)})
        if champion_metrics:
            mlflow.log_metrics(
                {f"champion_holdout_{k}": v for k, v in champion_metrics.items() if pd.notna(v)}
            )
        mlflow.log_dict({"features": list(x_hold.columns), **observability}, "features.json")
        mlflow.log_dict(reason_map.to_dict(), "reason_map.json")
        mlflow.log_dict(profile, "reference_profile.json")
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
        mlflow.log_metric("holdout_brier_raw", float(np.mean((raw - y) ** 2)))
        for name, fig in {
            "roc.png": plots.roc_figure(y, p, metrics["holdout_roc_auc"]),
            "lift.png": plots.lift_figure(y, p),
            "calibration.png": plots.calibration_figure(y, p),
            "calibration_raw.png": plots.calibration_figure(y, raw),
            "shap_summary.png": plots.shap_summary_figure(
                model_contributions(model, sample), sample
            ),
        }.items():
            mlflow.log_figure(fig, f"plots/{name}")
            plt.close(fig)
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
    get_run_logger().info(
        "registered %s version %s as @%s%s",
        settings.model_name,
        version,
        tracking.CHALLENGER,
        f" and @{tracking.CHAMPION}" if decision.promote else "",
    )
    return TrainResult(
        run.info.run_id,
        settings.model_name,
        version,
        metrics,
        cutoff_params,
        uri,
        promoted=decision.promote,
        promotion_reason=decision.reason,
        champion_version=version if decision.promote else champion_version,
        serving_candidate=model.kind,
        leaderboard={
            str(name): {k: (None if pd.isna(v) else v) for k, v in row.items()}
            for name, row in board.iterrows()
        },
    )


@task(
    retries=2,
    retry_delay_seconds=[2, 10],
    retry_condition_fn=_retry_unless_bad_input,
    cache_policy=NONE,
)
def load_champion(settings: ScoreSettings):  # noqa: ANN201
    tracking.configure(settings.data_dir, settings.experiment, settings.tracking_uri)
    version = tracking.champion_version(settings.model_name)
    model = load_served_model(f"models:/{settings.model_name}@{tracking.CHAMPION}")
    run_id = mlflow.MlflowClient().get_model_version(settings.model_name, version).run_id
    profile = mlflow.artifacts.load_dict(f"runs:/{run_id}/reference_profile.json")
    return model, version, profile


@dataclass(frozen=True)
class ScoreResult:
    score_date: str
    model_version: str
    customers_scored: int
    customers_listed: int
    customers_active: int
    customers_lapsed: int
    customers_win_back: int
    value_at_risk_listed: float
    reason_mix: dict[str, float]
    kpis: dict[str, float]
    drifting_features: list[str]
    outputs: dict[str, str]


def _score(
    tables: catalog.Tables,
    settings: ScoreSettings,
    score_date: str | None,
    out_dir: Path,
    write_features: bool,
) -> ScoreResult:
    logger = get_run_logger()
    reason_map = load_reason_map(settings.reason_map)
    playbook = load_playbook(settings.playbook)
    report_observability(tables, reason_map)
    cutoff = as_cutoff(score_date) if score_date else default_score_date(tables.transactions)
    model, version, profile = load_champion(settings)
    # the usage kinds the model was trained on, found again by their feature names
    usage_kinds = kinds_in_features(model_features(model), tables.interactions)
    with compute_engine(settings) as client:
        features = feature_builder(client, usage_kinds, tables.subscriptions)(
            tables.transactions,
            cutoff,
            tables.interactions,
            tables.customers,
            settings.lookback_days,
        )
    if features.empty:
        raise ValueError(
            f"no customer bought in the {settings.lookback_days} days before {cutoff.date()}"
        )
    status = customer_status(features, settings.status_tail)
    status["due_date"] = due_back(features, status, cutoff)
    if tables.subscriptions is not None:
        # a cancellation is the status, and its reasons are read as of the day it ended
        status = with_subscription_status(status, tables.subscriptions, cutoff)
        ended = status.pop("subscription_ended").dt.ceil("D").clip(upper=cutoff)
        status["due_date"] = ended.fillna(status["due_date"])
    lapsed = status["status"].eq(LAPSED)
    # a lapsed customer's reasons are read as of the day they were due back
    due_features = build_features_as_of(
        tables.transactions,
        status.loc[lapsed, "due_date"],
        tables.interactions,
        tables.customers,
        settings.lookback_days,
        usage_kinds=usage_kinds,
        subscription_table=tables.subscriptions,
    )
    reason_map.check_covers(model_features(model))
    scored = score_customers(
        model,
        features,
        reason_map,
        playbook,
        settings.horizon_days,
        version,
        pd.Timestamp.now(tz="UTC").floor("s"),
        settings.min_reason_score,
        settings.min_reason_confidence,
        settings.risk_threshold,
        settings.explain_all or len(features) <= settings.explain_everyone_up_to,
        status=status,
        due_features=due_features,
        min_win_back_value=settings.contact_cost,
        lapsed_probability=lapsed_churn_probability(
            status.loc[lapsed],
            features.loc[lapsed, "days_since_last_purchase"],
            profile.get("win_back_return_rates", [0.0, 0.0, 0.0]),
        ),
    )
    scored.insert(1, "score_date", cutoff)
    listed = at_risk_list(scored, settings.risk_threshold, settings.list_capacity())
    win_back = win_back_list(scored, settings.win_back_top)
    listed, win_back, scored, call_sheet = campaigns.with_groups(
        listed, win_back, scored, settings, cutoff, Path(out_dir)
    )
    kpis = retention_kpis(tables.transactions, cutoff, settings.horizon_days) | risk_kpis(
        scored, listed
    )
    top = listed["customer_id"].head(DRIVER_CUSTOMERS)
    top_features = features.loc[top]
    drivers = model_contributions(model, align_features(top_features, model))
    meta = {
        "score_date": str(cutoff.date()),
        "model_name": settings.model_name,
        "model_version": str(version),
        "generated_at": str(pd.Timestamp.now(tz="UTC").floor("s")),
        "business": settings.business_name,
        "horizon_days": str(settings.horizon_days),
    }
    html = render_report(
        scored,
        listed,
        kpis,
        drivers,
        meta,
        features=top_features,
        reason_map=reason_map,
        win_back=win_back,
    )
    frames: dict[str, pd.DataFrame | str] = {
        "at_risk_csv": listed,
        "at_risk": listed,
        "win_back_csv": win_back,
        "win_back": win_back,
        "scores": scored,
        "report": html,
        "call_sheet": call_sheet,
    }
    if write_features:
        frames["features"] = features.reset_index()
    if settings.output_table:
        both = pd.concat([listed, win_back])
        paths = write_outputs_and_table(frames, Path(out_dir), both, settings, cutoff)
    else:
        paths = write_outputs(frames, Path(out_dir))
    # kept once published: a night that failed above leaves no record of a list never used
    paths["history"] = campaigns.write_history(listed, win_back, Path(out_dir), cutoff)
    mix = listed["top_reason"].value_counts(normalize=True).reindex(list(REASONS), fill_value=0.0)
    # the model was trained on active customers: drift is judged on the same population
    active_scores = scored.loc[scored["status"].ne(LAPSED)]
    drifted = log_scoring_run(
        settings,
        version,
        tables.rows_read,
        features.loc[~lapsed],
        active_scores,
        listed,
        kpis,
        mix,
        paths["report"],
        profile,
    )
    logger.info(
        "scored %d customers at %s (%d active, %d lapsed); %d on the at-risk list -> %s; "
        "%d on the win-back list -> %s; report -> %s",
        len(scored),
        cutoff.date(),
        int((~lapsed).sum()),
        int(lapsed.sum()),
        len(listed),
        paths["at_risk_csv"],
        len(win_back),
        paths["win_back_csv"],
        paths["report"],
    )
    return ScoreResult(
        score_date=str(cutoff.date()),
        model_version=str(version),
        customers_scored=len(scored),
        customers_listed=len(listed),
        customers_active=int((~lapsed).sum()),
        customers_lapsed=int(lapsed.sum()),
        customers_win_back=len(win_back),
        value_at_risk_listed=float(listed["value_at_risk"].sum()),
        reason_mix={k: round(float(v), 4) for k, v in mix.items()},
        kpis={k: round(float(v), 4) for k, v in kpis.items()},
        drifting_features=drifted,
        outputs={k: str(v) for k, v in paths.items()},
    )


@task(retries=2, retry_delay_seconds=[2, 10], cache_policy=NONE)
def log_scoring_run(
    settings: ScoreSettings,
    version: str,
    rows_read: dict[str, int],
    features: pd.DataFrame,
    scored: pd.DataFrame,
    listed: pd.DataFrame,
    kpis: dict[str, float],
    mix: pd.Series,
    report: Path,
    profile: dict,
) -> list[str]:
    """One MLflow run per scoring date: volumes, score distribution, drift, mix, KPIs.

    Returns:
        The features (and ``score``) whose PSI against training is above the threshold.
    """
    tracking.configure(settings.data_dir, settings.experiment, settings.tracking_uri)
    psi = drift(profile["features"], features)
    psi["score"] = drift(
        {"score": profile["score"]}, scored[["churn_probability"]].set_axis(["score"], axis=1)
    )["score"]
    drifting = sorted(psi.index[psi > settings.drift_threshold])
    score_date = str(pd.Timestamp(scored["score_date"].iloc[0]).date())
    probability = scored["churn_probability"]
    with mlflow.start_run(run_name=f"score {score_date}"):
        mlflow.set_tags(
            {
                "kind": "score",
                "score_date": score_date,
                "model_version": version,
                "drifting_features": ",".join(drifting) or "none",
            }
        )
        mlflow.log_metrics(
            {f"rows_read_{k}": float(v) for k, v in rows_read.items()}
            | {f"psi_{k}": float(v) for k, v in psi.items()}
            | {f"reason_mix_{k}": float(v) for k, v in mix.items()}
            | {k: float(v) for k, v in kpis.items() if pd.notna(v)}
            | {"score_mean": float(probability.mean())}
            | {f"score_p{q}": float(probability.quantile(q / 100)) for q in (10, 50, 90)}
            | {"drifting_feature_count": float(len(drifting))}
        )
        mlflow.log_artifact(str(report))
    if drifting:
        get_run_logger().warning(
            "drift above PSI %.2f against the training data: %s",
            settings.drift_threshold,
            ", ".join(f"{f} ({psi[f]:.2f})" for f in drifting),
        )
    return drifting


def _finish(result: ScoreResult) -> ScoreResult | State:
    """A drifting night still delivers its list, but ends in a visible warning state."""
    if result.drifting_features:
        return Completed(
            name="Drifted",
            data=result,
            message="drift against training data: " + ", ".join(result.drifting_features),
        )
    return result


@flow(name="score")
def score(
    inputs: Inputs,
    out_dir: Path,
    settings: ScoreSettings | None = None,
    score_date: str | None = None,
) -> ScoreResult:
    """Score every active customer with the champion model and write the ranked list."""
    settings = settings or ScoreSettings()
    with catalog.output_lock(Path(out_dir)):
        check_destinations(inputs, Path(out_dir), settings)
        return _finish(
            _score(load_tables(inputs, settings), settings, score_date, Path(out_dir), False)
        )


@flow(name="nightly")
def nightly(
    inputs: Inputs,
    out_dir: Path,
    settings: ScoreSettings | None = None,
    score_date: str | None = None,
) -> ScoreResult:
    """The night's job: features for the day, then the scored list (both written)."""
    settings = settings or ScoreSettings()
    with catalog.output_lock(Path(out_dir)):
        check_destinations(inputs, Path(out_dir), settings)
        return _finish(
            _score(load_tables(inputs, settings), settings, score_date, Path(out_dir), True)
        )


def result_json(result: TrainResult | ScoreResult) -> str:
    return json.dumps(asdict(result), indent=2, default=str)
