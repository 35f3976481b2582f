"""Tasks and helpers the flows share: reading and checking inputs, pre-flight checks of
the destinations, the feature table on the chosen engine, and the atomic writes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from features.batches import build_features_by_batch
from features.build import build_features as build_feature_table
from features.contracts import InputError
from models.reasons import ReasonMap, blind_spots
from pipelines import catalog
from pipelines.database import DatabaseAccessError, read_tables_sql, write_list_sql
from pipelines.destinations import database_url, preflight
from pipelines.settings import CommonSettings, DatabaseInputs, InputPaths, ScoreSettings


def retry_unless_bad_input(task, task_run, state) -> bool:  # noqa: ANN001
    """Retry I/O hiccups, never a file that is simply wrong or a login that is refused."""
    try:
        state.result()
    except (InputError, FileNotFoundError, LookupError, ValueError, DatabaseAccessError):
        return False
    except Exception:  # noqa: BLE001
        return True
    return False


# the retry policy of every task that reads or writes the business's data
IO_RETRIES: dict[str, Any] = {
    "retries": 3,
    "retry_delay_seconds": [2, 10, 30],
    "retry_condition_fn": retry_unless_bad_input,
    "cache_policy": NONE,
}


@task(**IO_RETRIES)
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
            subscriptions=inputs.subscriptions,
            kinds=settings.kinds if settings else None,
            drop_duplicate_interactions=settings.drop_duplicate_interactions if settings else False,
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
    report_read(tables)
    return tables


def report_read(tables: catalog.Tables) -> None:
    """The counted repairs and the rows read, in the run's log."""
    logger = get_run_logger()
    for warning in tables.warnings:
        logger.warning(warning)
    logger.info("rows read: %s", tables.rows_read)


check_destinations = task(preflight, name="check_destinations", **IO_RETRIES)


@task(
    retries=2,
    retry_delay_seconds=[1, 5],
    retry_condition_fn=retry_unless_bad_input,
    cache_policy=NONE,
)
def write_outputs(
    frames: dict[str, pd.DataFrame | str | catalog.CsvRows], out_dir: Path
) -> dict[str, Path]:
    """Every output file at once (:func:`pipelines.catalog.write_atomic`); safe to retry."""
    return catalog.write_atomic(frames, out_dir)


@task(**IO_RETRIES)
def write_outputs_and_table(
    frames: dict[str, pd.DataFrame | str | catalog.CsvRows],
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
    interactions = None if tables.interactions is None else tables.interactions.columns
    missing, blind = blind_spots(tables.transactions.columns, interactions, reason_map)
    if missing:
        get_run_logger().warning(
            "unobservable with these tables: %d features (%s); reasons with no signal: %s",
            len(missing),
            ", ".join(missing),
            ", ".join(blind) or "none",
        )
    return {"unobservable_features": missing, "unobservable_reasons": blind}


@contextmanager
def compute_engine(settings: CommonSettings | None) -> Iterator[Any]:
    """None for the local engine, else a Dask client (closed, with its local cluster, after)."""
    if settings is None or settings.engine == "local":
        yield None
        return
    from pipelines.engines import get_client

    client = get_client(settings.dask_address)
    try:
        yield client
    finally:
        client.close()


def feature_builder(
    client: Any,
    usage_kinds: tuple[str, ...] = (),
    subscriptions: pd.DataFrame | None = None,
    batches: int | None = None,
) -> Callable[..., pd.DataFrame]:
    """The same pure feature function, in process or per customer partition on Dask.

    Usage and subscription features (``usage_kinds``, ``subscriptions``) are built in
    process for now: the Dask engine does not partition those tables yet. In process,
    ``batches`` (``feature_batches``) builds them that many customer batches at a time
    (:func:`features.batches.build_features_by_batch`: the same table, less memory).
    """
    if client is not None and (usage_kinds or subscriptions is not None):
        get_run_logger().warning(
            "usage / subscription features are built in this process, not on Dask"
        )
        client = None
    if client is None:
        tables = {"usage_kinds": usage_kinds, "subscription_table": subscriptions}
        if batches is not None:
            return partial(build_features_by_batch, **tables, batches=batches)
        return partial(build_feature_table, **tables)
    from pipelines.engines import dask_features

    return partial(dask_features, client=client)


@task(cache_policy=NONE)
def build_feature_table_at(
    tables: catalog.Tables,
    cutoff: pd.Timestamp | str,
    lookback_days: int,
    usage_kinds: tuple[str, ...] = (),
    engine: CommonSettings | None = None,
) -> pd.DataFrame:
    """One row per customer who bought in the lookback window before ``cutoff``, built on
    ``engine``'s compute engine (None: in this process)."""
    with compute_engine(engine) as client:
        batches = engine.feature_batches if engine is not None else None
        build = feature_builder(client, usage_kinds, tables.subscriptions, batches)
        return build(
            tables.transactions, cutoff, tables.interactions, tables.customers, lookback_days
        )
