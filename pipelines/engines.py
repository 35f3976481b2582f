"""The Dask engine: the same pure feature and model functions, run over a cluster.

Nothing here re-implements a feature. Every table is partitioned by a hash of
``customer_id``, so all rows of one customer land in one partition of every table, and
each partition goes through :func:`features.build.build_features` unchanged. Every feature
is a function of one customer's rows, so the union of the partitions' results is the
local engine's result, value for value. Rows keep their original order inside a
partition (the shuffle does not promise that; a ``_row`` column restores it), so sums,
ties and stable sorts come out bit-identical too.

Training uses ``xgboost.dask`` with the project's parameters and hands back a plain
:class:`xgboost.XGBClassifier` holding the trained booster, so tracking, scoring and
explanations downstream need no engine-specific code. Scoring runs partition-wise with
that same model.

Inputs may be pandas frames (moved to the cluster here) or ``dask.dataframe`` frames,
e.g. from ``dask.dataframe.read_parquet`` on files the workers can reach. A night or a
training run on files or PostgreSQL tables reads and validates them on the workers
(:mod:`pipelines.dask_read`), with the same partitioning (:func:`partition_by_key`).
"""

from __future__ import annotations

import itertools
import logging
import math
import os
from typing import Any

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import xgboost as xgb
from distributed import Client
from xgboost import dask as dxgb

from features.batches import customer_batch as _partition_key  # local batches share it
from features.build import build_features, observable_features
from models.classifier import build_classifier, classifier_params
from models.progress import Progress, announce
from models.scoring import align_features

# helper columns added for the shuffle and removed before any feature code sees the rows
_PART, _ROW = "_engine_partition", "_engine_row"
# partitions of a few million rows keep per-task memory modest and both cores busy
_ROWS_PER_PARTITION = 2_000_000

Frame = pd.DataFrame | dd.DataFrame

# dask would otherwise turn pandas' default ``str`` columns into ``string[pyarrow]``
# (pd.NA semantics), and the feature functions would see other dtypes than locally.
DASK_CONFIG = {"dataframe.convert-string": False}


def get_client(address: str | None = None) -> Client:
    """A client for an existing scheduler, or for a new local two-worker cluster.

    Args:
        address: scheduler address such as ``tcp://host:8786``; ``None`` starts a
            ``LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
            dashboard_address=None)`` owned by the client, so ``client.close()`` stops it.
    """
    if address:
        return Client(address)
    # the in-process scheduler logs every routine shuffle start and end as a warning
    logging.getLogger("distributed.shuffle._scheduler_plugin").setLevel(logging.ERROR)
    return Client(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)


def _threads(client: Client | None) -> int:
    if client is not None:
        return max(1, sum(client.nthreads().values()))
    return os.cpu_count() or 1


def _default_partitions(rows: int, client: Client | None) -> int:
    return max(2 * _threads(client), math.ceil(rows / _ROWS_PER_PARTITION))


def _compute(collection: Any, client: Client | None) -> Any:
    """Compute on the given client, else on dask's current default scheduler."""
    with dask.config.set(DASK_CONFIG):
        if client is not None:
            return client.compute(collection).result()
        return collection.compute()


def _add_keys(frame: pd.DataFrame, npartitions: int, first_row: int = 0) -> pd.DataFrame:
    return frame.assign(
        **{
            _PART: _partition_key(frame["customer_id"], npartitions),
            _ROW: np.arange(first_row, first_row + len(frame), dtype=np.int64),
        }
    )


def _add_keys_to_partition(
    frame: pd.DataFrame, npartitions: int, offsets: list[int], partition_info: dict | None = None
) -> pd.DataFrame:
    number = partition_info["number"] if partition_info else 0
    return _add_keys(frame, npartitions, offsets[number] if offsets else 0)


def _by_customer(table: Frame, npartitions: int, client: Client | None) -> dd.DataFrame:
    """The table partitioned so that partition ``i`` holds every customer hashed to ``i``."""
    with dask.config.set(DASK_CONFIG):
        if isinstance(table, pd.DataFrame):
            pieces = max(1, min(npartitions, math.ceil(len(table) / 100_000)))
            keyed = _to_dask(_add_keys(table, npartitions), pieces, client)
        else:
            # global row numbers: offset of each input partition + position inside it
            lengths = _compute(table.map_partitions(len), client)
            offsets = np.concatenate([[0], np.cumsum(list(lengths))[:-1]]).astype(int).tolist()
            meta = _add_keys(table._meta, npartitions)
            keyed = table.map_partitions(
                _add_keys_to_partition, npartitions, offsets, partition_info=True, meta=meta
            )
        return partition_by_key(keyed, npartitions)


def partition_by_key(
    keyed: dd.DataFrame,
    npartitions: int,
    key: str = _PART,
    method: str | None = None,
    keys: range | None = None,
) -> dd.DataFrame:
    """``keyed`` shuffled so that partition ``i`` holds the rows whose ``key`` is ``i``.

    ``key`` holds each row's customer partition (:func:`features.batches.customer_batch`)
    and becomes the index; row order inside a partition is not kept (keep a row number).

    Args:
        method: dask's shuffle method ("tasks", "p2p"; None: dask's configured default).
        keys: the partitions to make when ``keyed`` holds only their rows (default all).
    """
    keys = keys if keys is not None else range(npartitions)
    divisions = [*keys, keys[-1]]
    with dask.config.set(DASK_CONFIG):
        return keyed.set_index(key, divisions=divisions, shuffle_method=method)


def _restore(part: pd.DataFrame | None) -> pd.DataFrame | None:
    """One partition back in the input's row order, without the helper columns."""
    if part is None:
        return None
    return part.sort_values(_ROW, kind="stable").drop(columns=_ROW).reset_index(drop=True)


def _empty_features(columns: list[str], id_dtype: Any) -> pd.DataFrame:
    index = pd.Index([], dtype=id_dtype, name="customer_id")
    return pd.DataFrame({name: pd.Series([], dtype=float) for name in columns}, index=index)


def _features_of_partition(
    transactions: pd.DataFrame,
    interactions: pd.DataFrame | None,
    customers: pd.DataFrame | None,
    cutoff: str | pd.Timestamp,
    lookback_days: int,
    columns: list[str],
) -> pd.DataFrame:
    features = build_features(
        _restore(transactions), cutoff, _restore(interactions), _restore(customers), lookback_days
    )
    if features.empty:
        # keep one index dtype across partitions, also where no customer is active
        return _empty_features(columns, transactions["customer_id"].dtype)
    return features


def dask_features(
    transactions: Frame,
    cutoff: str | pd.Timestamp,
    interactions: Frame | None = None,
    customers: Frame | None = None,
    lookback_days: int = 365,
    client: Client | None = None,
    npartitions: int | None = None,
) -> pd.DataFrame:
    """:func:`features.build.build_features`, run per customer partition on Dask.

    Args:
        transactions: validated transactions (pandas, or a dask frame of them).
        cutoff: features use rows with ``timestamp < cutoff`` only.
        interactions: validated interactions, or ``None``.
        customers: validated customers table, or ``None``.
        lookback_days: a customer is scored if they bought in this window.
        client: where to compute; ``None`` uses dask's current default scheduler.
        npartitions: customer partitions; default two per worker thread, more for
            tables over a few million rows.

    Returns:
        The same frame ``build_features`` returns on the whole tables: indexed by
        ``customer_id`` (sorted), the observable feature columns, all floats.
    """
    if npartitions is None:
        rows = len(transactions) if isinstance(transactions, pd.DataFrame) else 0
        npartitions = _default_partitions(rows, client)
    columns = observable_features(
        set(transactions.columns), None if interactions is None else set(interactions.columns)
    )
    tx = _by_customer(transactions, npartitions, client)
    ix = None if interactions is None else _by_customer(interactions, npartitions, client)
    cu = None if customers is None else _by_customer(customers, npartitions, client)
    id_dtype = transactions["customer_id"].dtype
    if isinstance(transactions, dd.DataFrame):
        id_dtype = transactions._meta["customer_id"].dtype
    meta = _empty_features(columns, id_dtype)
    with dask.config.set(DASK_CONFIG):
        parts = dd.map_partitions(
            _features_of_partition,
            tx,
            ix,
            cu,
            cutoff,
            lookback_days,
            columns,
            meta=meta,
            enforce_metadata=False,
            align_dataframes=False,
        )
    features = _compute(parts, client)
    return features.sort_index()[columns]


def _to_dask(
    data: pd.DataFrame | pd.Series | dd.DataFrame | dd.Series,
    npartitions: int,
    client: Client | None,
) -> Any:
    """A dask collection of ``data`` in row order; pandas pieces are scattered to workers.

    Scattering keeps the data out of the task graph, which the scheduler would otherwise
    have to hold and ship as one large message.
    """
    if not isinstance(data, pd.DataFrame | pd.Series):
        return data
    with dask.config.set(DASK_CONFIG):
        if client is None or len(data) == 0:
            return dd.from_pandas(data, npartitions=max(1, npartitions), sort=False)
        bounds = np.linspace(0, len(data), min(npartitions, len(data)) + 1).astype(int)
        pieces = [data.iloc[start:end] for start, end in itertools.pairwise(bounds)]
        return dd.from_delayed(client.scatter(pieces), meta=data.iloc[:0], verify_meta=False)


def dask_train(
    x_train: pd.DataFrame | dd.DataFrame,
    y_train: pd.Series | dd.Series,
    x_valid: pd.DataFrame | dd.DataFrame | None,
    y_valid: pd.Series | dd.Series | None,
    client: Client,
    npartitions: int | None = None,
    **params: Any,
) -> xgb.XGBClassifier:
    """Train with ``xgboost.dask`` and the project's parameters; early-stop on validation.

    The parameters are :func:`models.classifier.classifier_params` (the defaults with
    the known monotone directions, overridden by ``params``), the function the local
    classifier is built from; only ``n_jobs`` is left to the workers (one XGBoost
    thread per worker thread). Rows are split across workers, so row subsampling draws
    differ from a local fit: the model is equivalent, not bit-identical.

    Args:
        x_train, y_train: training rows and labels (pandas or dask, same row order).
        x_valid, y_valid: the later cutoff that drives early stopping (``None``: grow
            the configured number of trees, as a refit does).
        client: the cluster to train on.
        npartitions: pieces per pandas input; default one per worker thread.
        **params: any XGBClassifier parameter.

    Returns:
        A fitted plain :class:`xgboost.XGBClassifier` (same booster), usable wherever a
        locally trained model is: scoring, explanations, MLflow logging.
    """
    columns = list(x_train.columns)
    settings = classifier_params(columns, **params)
    settings["n_jobs"] = None
    pieces = npartitions or _threads(client)
    eval_set = None
    if x_valid is None:
        settings["early_stopping_rounds"] = None
    else:
        eval_set = [(_to_dask(x_valid, pieces, client), _to_dask(y_valid, pieces, client))]
    model = dxgb.DaskXGBClassifier(**settings)
    model.client = client
    rounds = int(settings.get("n_estimators") or 100)
    # the rounds run on the workers, where no line reaches this log: say when they end
    progress = Progress("xgboost on the cluster", rounds, "rounds")
    announce(f"xgboost on the cluster: up to {rounds} rounds on {len(x_train):,} rows")
    model.fit(
        _to_dask(x_train, pieces, client),
        _to_dask(y_train, pieces, client),
        eval_set=eval_set,
        verbose=False,
    )
    progress.done = model.get_booster().num_boosted_rounds()
    progress.finish(f" (early stopping, of {rounds})" if progress.done < rounds else "")
    local = build_classifier(columns, **params)
    local.load_model(model.get_booster().save_raw("json"))
    return local


def _predict_partition(part: pd.DataFrame, model: xgb.XGBClassifier) -> pd.Series:
    return pd.Series(model.predict_proba(part)[:, 1], index=part.index, name="churn_probability")


def dask_predict(
    model: xgb.XGBClassifier,
    features: pd.DataFrame | dd.DataFrame,
    client: Client | None = None,
    npartitions: int | None = None,
) -> pd.Series:
    """Churn probability per row, scored partition by partition with the given model.

    Each partition runs the model's own ``predict_proba``, so every value equals the
    local engine's for the same row.

    Args:
        model: a fitted classifier (e.g. the champion, or :func:`dask_train`'s result).
        features: feature rows (pandas or dask); extra columns are ignored.
        client: where to compute; ``None`` uses dask's current default scheduler.
        npartitions: pieces for a pandas input; default two per worker thread.

    Returns:
        ``churn_probability`` indexed like ``features`` (same order for pandas input).
    """
    if isinstance(features, pd.DataFrame):
        pieces = npartitions or _default_partitions(0, client)
        x = _to_dask(align_features(features, model), pieces, client)
    else:
        x = features[align_features(features._meta, model).columns.tolist()]
    meta = pd.Series([], dtype=float, name="churn_probability", index=x._meta.index)
    with dask.config.set(DASK_CONFIG):
        scored = x.map_partitions(_predict_partition, model, meta=meta)
    probability = _compute(scored, client)
    if isinstance(features, pd.DataFrame) and not probability.index.equals(features.index):
        probability = probability.reindex(features.index)
    return probability
