"""`churn features` from files, in this process: no Prefect run, no API server.

Why not the ``build_features`` flow: a Prefect 3 flow run needs an API, and without
``PREFECT_API_URL`` Prefect starts a temporary one (``SubprocessASGIServer``: a uvicorn
child that imports ``prefect.server``, ~6 s, then checks the database). Measured on this
2-core machine (median of 3, whole process, 300 customers): the flow took 15-33 s, of
which importing ``pipelines.flows`` is ~7 s and the server ~11 s; neither
``PREFECT_SERVER_DATABASE_MIGRATE_ON_START=false`` (15.1 s vs 15.2 s for an empty flow)
nor block registration (already memoised by Prefect) changes that. A server that
persists (``prefect server start`` plus ``PREFECT_API_URL``) removes the start-up but
leaves a process running after the command, which the CLI should not do unasked (it
remains the user's choice: every command honours ``PREFECT_API_URL``).

A feature table is a one-shot, rebuildable output: nothing needs to be recorded, and its
only I/O retries (on errors that are not bad input) matter for database reads. So files
are read, built and written here by the same pure functions and catalog calls the flow
uses. Measured by ``benchmarks/cli_latency.py`` (median of 3, whole process, same run):
300 customers 1.5 s (was 18-23 s); 200k customers' transactions 8.8 s against 2.4 s for
the plain-RFM DuckDB query on the same file, 3.6x (the bar is 10x). With ``--db`` the CLI
still runs the flow, for its retries on the database and its run log.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

import pandas as pd

from features.batches import concat_batches
from features.build import build_features
from features.usage import choose_usage_kinds
from models.night_facts import batch_features
from models.reasons import blind_spots, load_reason_map
from pipelines import catalog, staged
from pipelines.settings import CommonSettings, InputPaths


def unobservable(tables: catalog.Tables) -> tuple[list[str], list[str]]:
    """The features these tables cannot show, and the loss reasons left with no signal.

    Raises:
        ReasonMapError: the packaged reason map does not cover an observable feature.
    """
    interactions = None if tables.interactions is None else tables.interactions.columns
    return blind_spots(tables.transactions.columns, interactions, load_reason_map())


def feature_file(
    inputs: InputPaths,
    cutoff: str,
    out_dir: Path,
    lookback_days: int = 365,
    engine: CommonSettings | None = None,
    say: Callable[[str, bool], None] = lambda line, warning: None,
) -> tuple[Path, int]:
    """The feature table for one cutoff -> ``out_dir/features.parquet``.

    Args:
        inputs: the business's files.
        cutoff: features use rows before this day.
        out_dir: the output folder (written atomically through the catalog).
        lookback_days: a customer gets a row if they bought in this window.
        engine: where features are built (``engine``, ``dask_address``); None: here.
        say: called with each line for the user, and whether it is a warning.

    Returns:
        The file written, and how many customers it holds.
    """
    batches = engine.feature_batches if engine is not None and engine.engine == "local" else None
    if batches is not None:
        built = by_batch(inputs, cutoff, lookback_days, batches, engine.data_dir, say)  # type: ignore[union-attr]
        if built is not None:
            path = catalog.write_atomic({"features": built.reset_index()}, Path(out_dir))
            say(f"{len(built)} customers -> {path['features']}", False)
            return path["features"], len(built)
    tables = catalog.read_tables(
        inputs.transactions, inputs.interactions, inputs.customers, inputs.subscriptions
    )
    for warning in tables.warnings:
        say(warning, True)
    say(f"rows read: {tables.rows_read}", False)
    _say_unobservable(tables, say)
    usage_kinds = choose_usage_kinds(tables.interactions)
    features = _build(tables, cutoff, lookback_days, usage_kinds, engine, say)
    path = catalog.write_atomic({"features": features.reset_index()}, Path(out_dir))["features"]
    say(f"{len(features)} customers -> {path}", False)
    return path, len(features)


def _say_unobservable(tables: catalog.Tables, say: Callable[[str, bool], None]) -> None:
    missing, blind = unobservable(tables)
    if missing:
        say(
            f"unobservable with these tables: {len(missing)} features ({', '.join(missing)}); "
            f"reasons with no signal: {', '.join(blind) or 'none'}",
            True,
        )


def by_batch(
    inputs: InputPaths,
    cutoff: str,
    lookback_days: int,
    batches: int,
    data_dir: Path,
    say: Callable[[str, bool], None] = lambda line, warning: None,
) -> pd.DataFrame | None:
    """The feature table read, checked and built ``batches`` customer batches at a time.

    The batches are staged as a night stages them (:func:`pipelines.staged.stage`: a bad
    value anywhere fails before any feature is built, with the whole file's message; the
    counted repairs are summed and said once). The interaction kinds that get usage
    features, and the first day the data covers, are the whole tables'.

    Returns:
        The same table as the whole-table path, or None when an input cannot be
        streamed into batches (the caller then reads it whole, which says why).
    """
    # the whole-table path reads without kind renames: so do the batches
    with staged.stage(inputs, CommonSettings(data_dir=data_dir), batches) as source:
        if source is None:
            return None
        for warning in source.schema.warnings:
            say(warning, True)
        say(f"rows read: {source.schema.rows_read}", False)
        _say_unobservable(source.schema, say)
        build = partial(
            batch_features,
            cutoff=cutoff,
            lookback_days=lookback_days,
            history_start=source.history_start,
            usage_kinds=choose_usage_kinds(source.kinds),
        )
        parts = [part for part in source.map(build, "features") if len(part)]
    return concat_batches(parts) if parts else None


def _build(
    tables: catalog.Tables,
    cutoff: str,
    lookback_days: int,
    usage_kinds: tuple[str, ...],
    engine: CommonSettings | None,
    say: Callable[[str, bool], None],
) -> pd.DataFrame:
    """``features.build.build_features``, here or per customer partition on Dask."""
    local = engine is None or engine.engine == "local"
    if not local and (usage_kinds or tables.subscriptions is not None):
        say("usage / subscription features are built in this process, not on Dask", True)
        local = True
    if local:
        return build_features(
            tables.transactions,
            cutoff,
            tables.interactions,
            tables.customers,
            lookback_days,
            usage_kinds=usage_kinds,
            subscription_table=tables.subscriptions,
        )
    from pipelines.engines import dask_features, get_client  # dask loads only when asked

    client = get_client(engine.dask_address)  # type: ignore[union-attr]
    try:
        return dask_features(
            tables.transactions,
            cutoff,
            tables.interactions,
            tables.customers,
            lookback_days,
            client=client,
        )
    finally:
        client.close()
