"""One feature table per cutoff: RFM + cadence, interaction quality, reason signals.

This is the only entry point the pipelines use. It cuts every input table to rows
strictly before the cutoff first, so nothing downstream can see the future.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pandas.api.types import is_string_dtype

from features import interactions as ix
from features import rfm, signals, subscriptions, usage
from features.contracts.columnar import is_in
from features.labels import active_customers
from features.windows import as_cutoff, before_cutoff, customer_positions


def observable_features(
    transaction_columns: set[str],
    interaction_columns: set[str] | None = None,
    usage_kinds: tuple[str, ...] = (),
    subscription_columns: set[str] | None = None,
) -> list[str]:
    """Feature names the given table columns can produce, in a fixed order.

    ``usage_kinds`` (:func:`features.usage.choose_usage_kinds`) add their usage
    features; ``subscription_columns`` (a subscriptions table) the billing features.
    """
    names = list(rfm.RFM_FEATURES) + signals.observable(transaction_columns)
    if interaction_columns is not None:
        names += ix.observable(interaction_columns)
        names += usage.usage_feature_names(usage_kinds)
    names += subscriptions.observable(subscription_columns)
    return names


def all_features() -> list[str]:
    """Every feature the pipeline knows, as produced from complete tables."""
    tx = {c for needs in signals.SIGNAL_FEATURES.values() for c in needs}
    inter = {c for needs in ix.INTERACTION_FEATURES.values() for c in needs}
    return observable_features(tx, inter)


def unobservable_features(
    transaction_columns: set[str], interaction_columns: set[str] | None = None
) -> list[str]:
    """Known features the given tables cannot produce (missing table or column)."""
    have = set(observable_features(transaction_columns, interaction_columns))
    return [name for name in all_features() if name not in have]


def build_features(
    transactions: pd.DataFrame,
    cutoff: str | pd.Timestamp,
    interactions: pd.DataFrame | None = None,
    customers: pd.DataFrame | None = None,
    lookback_days: int = 365,
    history_start: pd.Timestamp | None = None,
    usage_kinds: tuple[str, ...] = (),
    subscription_table: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Features for every customer active in the lookback window before the cutoff.

    Args:
        transactions: validated transactions (any dates; later rows are ignored).
        cutoff: features use rows with ``timestamp < cutoff`` only.
        interactions: validated interactions, or ``None`` when the business has none.
        customers: validated customers table, or ``None``.
        lookback_days: a customer is scored if they bought in this window.
        history_start: the first day the data covers (default: the first transaction).
        usage_kinds: interaction kinds that get usage features (:mod:`features.usage`).
        subscription_table: validated subscriptions, or ``None``; adds the billing
            features of :mod:`features.subscriptions` (rows started before the cutoff,
            an end on or after it read as still running).

    Returns:
        Frame indexed by ``customer_id`` (sorted) with :func:`observable_features`
        columns as floats.
    """
    cutoff = as_cutoff(cutoff)
    tx = _compact(transactions, signals.SIGNAL_FEATURES)
    purchases = before_cutoff(tx[["customer_id", "timestamp", "amount"]], cutoff)
    active = active_customers(purchases, cutoff, lookback_days)
    del purchases
    if subscription_table is not None:
        # a running subscriber is a customer however long ago their last charge was
        # (an annual plan bills once a year); only those with some purchase have features
        running = subscriptions.running_subscribers(subscription_table, cutoff)
        bought = pd.Index(tx.loc[(tx["timestamp"] < cutoff).to_numpy(), "customer_id"].unique())
        active = active.union(running[is_in(running, bought.astype(str))]).rename("customer_id")
    tx = _active_rows_before(tx, active, cutoff)

    signup = home = None
    if customers is not None:
        by_id = customers.drop_duplicates("customer_id").set_index("customer_id")
        if "signup_date" in by_id:
            signup = by_id["signup_date"].where(by_id["signup_date"] < cutoff)
        if "region" in by_id:
            home = by_id["region"]

    parts = [
        rfm.rfm_features(tx, cutoff, signup).reindex(active),
        signals.signal_features(tx, cutoff, active, home),
    ]
    del tx
    if interactions is not None:
        inter = _active_rows_before(_compact(interactions, ix.INTERACTION_FEATURES), active, cutoff)
        parts.append(ix.interaction_features(inter, cutoff, active))
        if usage_kinds:
            parts.append(usage.usage_features(inter, cutoff, active, usage_kinds))
        del inter
    if subscription_table is not None:
        parts.append(subscriptions.subscription_features(subscription_table, cutoff, active))

    features = pd.concat(parts, axis=1).astype(float)
    if history_start is None:
        history_start = transactions["timestamp"].min()
    if history_start > cutoff - pd.Timedelta(days=365):
        # the data does not reach back a year: "nothing bought in this season last year"
        # would be a fact about the data's start, not about the customer
        features["purchases_same_season_last_year"] = float("nan")
    columns = observable_features(
        set(transactions.columns),
        None if interactions is None else set(interactions.columns),
        tuple(usage_kinds) if interactions is not None else (),
        None if subscription_table is None else set(subscription_table.columns),
    )
    return features[columns]


def _compact(frame: pd.DataFrame, needs: dict[str, tuple[str, ...]]) -> pd.DataFrame:
    """The columns some feature reads, text as categoricals.

    Cutting and filtering rows then moves integer codes instead of strings, and the
    families compare and count labels on those codes.
    """
    wanted = {"customer_id", "timestamp", "amount", "kind"}
    wanted |= {column for columns in needs.values() for column in columns}
    compact = frame[[column for column in frame.columns if column in wanted]]
    for column in compact.columns:
        values = compact[column]
        if is_string_dtype(values.dtype) and not isinstance(values.dtype, pd.CategoricalDtype):
            codes, labels = pd.factorize(values)  # each distinct string hashed once
            compact[column] = pd.Categorical.from_codes(codes, categories=labels)
    return compact


def _active_rows_before(
    frame: pd.DataFrame, active: pd.Index, cutoff: pd.Timestamp
) -> pd.DataFrame:
    """Rows of active customers before the cutoff, ``customer_id`` as a categorical over
    ``active``.

    Its integer codes are positions in ``active``, so the families aggregate with
    ``np.bincount`` and never map ids again. One row selection copies the table once.
    """
    positions = customer_positions(frame["customer_id"], active)
    coded = frame.assign(customer_id=pd.Categorical.from_codes(positions, categories=active))
    return before_cutoff(coded, cutoff, keep=positions >= 0)


def build_features_as_of(
    transactions: pd.DataFrame,
    as_of: pd.Series,
    interactions: pd.DataFrame | None = None,
    customers: pd.DataFrame | None = None,
    lookback_days: int = 365,
    usage_kinds: tuple[str, ...] = (),
    subscription_table: pd.DataFrame | None = None,
    history_start: pd.Timestamp | None = None,
    latest: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Features of each customer in ``as_of`` as they stood on their own date.

    A lapsed customer's reasons are read from the days before they went quiet, not
    from the silence since. Each customer's rows before their date are moved forward
    in time so that every date lands on the latest one; one :func:`build_features`
    call then cuts and aggregates them all, with the same code as any cutoff. (Month
    of year shifts with them; only ``peak_month_share`` reads it.)

    Args:
        transactions: validated transactions.
        as_of: midnight per ``customer_id``; rows on or after it are never read.
        interactions: validated interactions, or ``None``.
        customers: validated customers table, or ``None``.
        lookback_days: as for :func:`build_features`.
        usage_kinds, subscription_table: as for :func:`build_features` (subscription
            dates move with the customer's rows).
        history_start: the first day the data covers (default: the first transaction
            of ``transactions``); a customer batch passes the whole table's.
        latest: the day every customer's rows are moved to (default: the latest of
            ``as_of``); a batch passes the population's, so months shift alike.

    Returns:
        Features indexed by ``customer_id`` (those in ``as_of`` active before their date).
    """
    as_of = as_of.dropna()
    if as_of.empty:
        return build_features(
            transactions.iloc[:0],
            pd.Timestamp("2000-01-01"),
            None if interactions is None else interactions.iloc[:0],
            customers,
            lookback_days,
            usage_kinds=usage_kinds,
            subscription_table=None if subscription_table is None else subscription_table.iloc[:0],
        )
    latest = as_cutoff(as_of.max() if latest is None else latest)
    ids = pd.Index(as_of.index, name="customer_id")
    dates = as_of.dt.normalize().to_numpy()
    shift = latest.to_datetime64() - dates

    def moved(frame: pd.DataFrame | None, column: str = "timestamp") -> pd.DataFrame | None:
        if frame is None:
            return None
        positions = customer_positions(frame["customer_id"], ids)
        mine = positions >= 0
        frame, positions = frame.loc[mine], positions[mine]
        stamps = frame[column].to_numpy()
        keep = stamps < dates[positions]
        if column != "timestamp":  # a customers' table: the row stays, a later date goes
            values = np.where(keep, stamps + shift[positions], np.datetime64("NaT"))
            return frame.assign(**{column: values})
        return frame.loc[keep].assign(**{column: stamps[keep] + shift[positions[keep]]})

    history = transactions["timestamp"].min() if history_start is None else history_start
    cu = customers
    if customers is not None and "signup_date" in customers:
        cu = moved(customers, "signup_date")
    subs = None
    if subscription_table is not None:
        positions = customer_positions(subscription_table["customer_id"], ids)
        mine = subscription_table.loc[positions >= 0]
        positions = positions[positions >= 0]
        begun = mine["start"].to_numpy() < dates[positions]
        mine, positions = mine.loc[begun], positions[begun]
        end = mine["end"].to_numpy()
        ended = end < dates[positions]  # an end on or after the date was not known then
        subs = mine.assign(
            start=mine["start"].to_numpy() + shift[positions],
            end=np.where(ended, end + shift[positions], np.datetime64("NaT")),
        )
    features = build_features(
        moved(transactions),
        latest,
        moved(interactions),
        cu,
        lookback_days,
        history_start=pd.Timestamp.min,
        usage_kinds=usage_kinds,
        subscription_table=subs,
    )
    # "this season last year" is unknown where the data does not reach a year back
    short = (as_of.reindex(features.index) - pd.Timedelta(days=365)) < history
    features.loc[short.to_numpy(), "purchases_same_season_last_year"] = np.nan
    return features
