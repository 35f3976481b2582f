"""What a scoring night reads from the business's tables, one customer batch at a time.

A night needs, per customer: the features at the cutoff, the status (active / lapsed and
the day each was due back), the lapsed customers' features as of that day, the
retention counts behind the KPIs and the matured outcomes of earlier listings. Each is
a function of one customer's rows given two population facts: the first day the data
covers (``history_start``) and the status model's population medians (read from the
whole feature table, which is small). So a night runs in two passes over customer
batches (the whole tables are one batch), and the batches' results, put together, are
the whole tables'.

The pass functions are plain module functions of one batch's tables: the local engine
calls them batch after batch, the Dask engine on each worker's partition.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol, TypeVar

import pandas as pd

from features.batches import concat_batches
from features.build import build_features, build_features_as_of
from features.contracts.columnar import is_in
from features.kpis import add_counts, retention_counts
from features.status import LAPSED, customer_status, due_back
from features.subscriptions import with_subscription_status
from models.campaign import matured_outcomes
from models.tables import BusinessTables

T = TypeVar("T")


class CustomerBatches(Protocol):
    """The night's tables as customer batches: every row of a customer in one batch.

    Implemented by :class:`WholeTables` (one batch), ``pipelines.staged`` (batches
    staged on local disk) and ``pipelines.dask_read`` (partitions on Dask workers).
    """

    @property
    def history_start(self) -> pd.Timestamp | None: ...  # the first transaction

    @property
    def last_timestamp(self) -> pd.Timestamp | None: ...  # the latest transaction

    def map(self, fn: Callable[[Any], T]) -> list[T]:
        """``fn`` of every batch's validated tables, in batch order."""
        ...


@dataclass(frozen=True)
class WholeTables:
    """Tables held whole, as the one batch."""

    tables: BusinessTables

    @property
    def history_start(self) -> pd.Timestamp | None:
        tx = self.tables.transactions
        return tx["timestamp"].min() if len(tx) else None

    @property
    def last_timestamp(self) -> pd.Timestamp | None:
        tx = self.tables.transactions
        return tx["timestamp"].max() if len(tx) else None

    def map(self, fn: Callable[[Any], T]) -> list[T]:
        return [fn(self.tables)]


@dataclass(frozen=True)
class NightFacts:
    """Every customer's part of a night, read from the tables."""

    features: pd.DataFrame  # at the cutoff, one row per customer who bought in the lookback
    status: pd.DataFrame  # status, expected and plausible gap, due_date
    due_features: pd.DataFrame  # the lapsed customers' features as of their due date
    retention: dict[str, float]  # features.kpis.retention_counts of the whole business
    outcomes: pd.DataFrame | None  # matured outcomes of the list history (None: no history)


@dataclass(frozen=True)
class FirstPass:
    features: pd.DataFrame
    retention: dict[str, float]
    outcomes: pd.DataFrame | None


def first_pass(
    tables: BusinessTables,
    cutoff: pd.Timestamp,
    lookback_days: int,
    horizon_days: int,
    usage_kinds: tuple[str, ...],
    history_start: pd.Timestamp | None,
    history: pd.DataFrame | None = None,
) -> FirstPass:
    """One batch's features at ``cutoff``, retention counts and matured outcomes."""
    tx = tables.transactions
    features = batch_features(tables, cutoff, lookback_days, history_start, usage_kinds)
    outcomes = None
    if history is not None and len(history):
        # this batch's customers' listings (ids compare as text, as the outcomes do)
        mine = history.loc[is_in(history["customer_id"].astype(str), _ids(tx))]
        outcomes = matured_outcomes(mine, tx, horizon_days, cutoff)
    return FirstPass(features, retention_counts(tx, cutoff, horizon_days), outcomes)


def batch_features(
    tables: BusinessTables,
    cutoff: pd.Timestamp | str,
    lookback_days: int,
    history_start: pd.Timestamp | None,
    usage_kinds: tuple[str, ...],
) -> pd.DataFrame:
    """One batch's features at ``cutoff`` (``history_start``: the business's first
    transaction, which a batch's own may follow)."""
    return build_features(
        tables.transactions,
        cutoff,
        tables.interactions,
        tables.customers,
        lookback_days,
        history_start,
        usage_kinds,
        tables.subscriptions,
    )


def _ids(transactions: pd.DataFrame) -> pd.Index:
    return pd.Index(pd.unique(transactions["customer_id"])).astype(str)


def dated_status(
    status: pd.DataFrame,
    features: pd.DataFrame,
    subscriptions: pd.DataFrame | None,
    cutoff: pd.Timestamp,
) -> pd.DataFrame:
    """``status`` with the day each customer's reasons are read as of (``due_date``)."""
    status = status.assign(due_date=due_back(features, status, cutoff))
    if subscriptions is not None:
        # a cancellation is the status, and its reasons are read as of the day it ended
        # (or are what the customer answered then: cancel_reason)
        status = with_subscription_status(status, subscriptions, cutoff)
        ended = status.pop("subscription_ended").dt.ceil("D").clip(upper=cutoff)
        status["due_date"] = ended.fillna(status["due_date"])
    return status


def second_pass(
    tables: BusinessTables,
    status: pd.DataFrame,
    features: pd.DataFrame,
    cutoff: pd.Timestamp,
    lookback_days: int,
    usage_kinds: tuple[str, ...],
    history_start: pd.Timestamp | None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One batch's dated status and its lapsed customers' features as of their due day.

    ``status`` and ``features`` may hold every customer: the batch's are picked out.
    """
    mine = is_in(features.index, pd.unique(tables.transactions["customer_id"]))
    status = dated_status(status.loc[mine], features.loc[mine], tables.subscriptions, cutoff)
    return status, features_when_due(
        tables, status, usage_kinds, lookback_days, cutoff, history_start
    )


def features_when_due(
    tables: BusinessTables,
    status: pd.DataFrame,
    usage_kinds: tuple[str, ...],
    lookback_days: int,
    cutoff: pd.Timestamp,
    history_start: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """The lapsed customers' features as of the day each was due back (last purchase +
    expected gap): their reasons are read from then, not from the silence since.

    Every customer's rows are moved to the night's cutoff (not to the latest due day of
    whoever is in the batch), so a customer's features do not depend on their batch.
    """
    return build_features_as_of(
        tables.transactions,
        status.loc[status["status"].eq(LAPSED), "due_date"],
        tables.interactions,
        tables.customers,
        lookback_days,
        usage_kinds=usage_kinds,
        subscription_table=tables.subscriptions,
        history_start=history_start,
        latest=cutoff,
    )


def night_facts(
    batches: CustomerBatches,
    cutoff: pd.Timestamp,
    lookback_days: int,
    horizon_days: int,
    status_tail: float,
    usage_kinds: tuple[str, ...] = (),
    history: pd.DataFrame | None = None,
) -> NightFacts:
    """The night's facts from every batch (two passes; the population steps between).

    Raises:
        ValueError: no customer bought in the lookback window.
    """
    start = batches.history_start
    first = batches.map(
        partial(
            first_pass,
            cutoff=cutoff,
            lookback_days=lookback_days,
            horizon_days=horizon_days,
            usage_kinds=usage_kinds,
            history_start=start,
            history=history,
        )
    )
    features = concat_batches([part.features for part in first if len(part.features)])
    if features.empty:
        raise ValueError(f"no customer bought in the {lookback_days} days before {cutoff.date()}")
    status = customer_status(features, status_tail)  # population medians: the whole table
    second = batches.map(
        partial(
            second_pass,
            status=status,
            features=features,
            cutoff=cutoff,
            lookback_days=lookback_days,
            usage_kinds=usage_kinds,
            history_start=start,
        )
    )
    dated = concat_batches([s for s, _ in second])
    if not dated.index.equals(features.index):  # both sorted by id: equal unless one is missing
        dated = dated.reindex(features.index)
    due = concat_batches([d for _, d in second if len(d)] or [second[0][1]])
    return NightFacts(
        features,
        dated,
        due,
        add_counts([part.retention for part in first]),
        _outcomes([part.outcomes for part in first], history),
    )


def _outcomes(
    parts: Sequence[pd.DataFrame | None], history: pd.DataFrame | None
) -> pd.DataFrame | None:
    """The batches' outcomes in the whole tables' order (by score date, then customer)."""
    found = [part for part in parts if part is not None]
    if history is None or not len(history) or not found:
        return None
    both = pd.concat(found) if len(found) > 1 else found[0]
    return both.sort_values(["score_date", "customer_id"], kind="stable").reset_index(drop=True)
