"""Checks a subscriptions table must pass beyond its columns' types.

Each failure is an :class:`features.contracts.InputError` naming the file, the column
and the first offending rows (1-based data rows, as the file gives them).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.contracts.columnar import is_in
from features.contracts.messages import _bad_values_error


def check_periods(
    frame: pd.DataFrame, raw_start: pd.Series, raw_end: pd.Series, source: str
) -> None:
    """Refuse an end before its start, and two periods of one customer that overlap.

    Args:
        frame: the converted table; its index holds each row's position in the input.
        raw_start, raw_end: the columns as read, for the messages.
        source: file or table label.
    """
    positions = frame.index.to_numpy()
    start, end = frame["start"].to_numpy(), frame["end"].to_numpy()
    backwards = ~np.isnat(end) & (end < start)
    if backwards.any():
        raise _bad_values_error(
            source,
            "end",
            raw_end,
            _at(positions[backwards], len(raw_end)),
            "before-start",
            hint="a subscription cannot end before it starts",
        )
    order = np.lexsort((start, frame["customer_id"].astype(str).to_numpy()))
    ids = frame["customer_id"].astype(str).to_numpy()[order]
    s, e = start[order], end[order]
    # the latest end so far of the customer's earlier periods (NaT = still running)
    open_end = np.where(np.isnat(e), pd.Timestamp.max.to_datetime64(), e)
    same = np.concatenate([[False], ids[1:] == ids[:-1]])
    running_end = pd.Series(open_end).groupby(ids).cummax().to_numpy()
    previous_end = np.concatenate([[np.datetime64("NaT", "ns")], running_end[:-1]])
    overlaps = same & (s < previous_end)
    if overlaps.any():
        first = ids[overlaps][0]
        n_customers = int(len(np.unique(ids[overlaps])))
        raise _bad_values_error(
            source,
            "start",
            raw_start,
            _at(positions[order][overlaps], len(raw_start)),
            "overlapping",
            overlap_hint(n_customers, str(first)),
            (n_customers, str(first)),
        )


def overlap_hint(n_customers: int, first: str) -> str:
    """The hint of the overlapping periods message (``first``: the smallest such id)."""
    return (
        f"these periods start before an earlier period of the same customer ends "
        f"({n_customers} customer{'s' if n_customers > 1 else ''}, e.g. {first!r}); "
        "a plan change ends one row where the next begins"
    )


def check_known_customers(subscriptions: pd.DataFrame, known: pd.Series, source: str) -> None:
    """Refuse subscriptions of customers no other table knows.

    Args:
        subscriptions: the validated subscriptions table.
        known: every customer id the transactions (and customers table) hold.
        source: label of the subscriptions table.
    """
    ids = subscriptions["customer_id"].astype(str)
    unknown = ~is_in(ids, known.astype(str))
    if unknown.any():
        raise _bad_values_error(
            source,
            "customer_id",
            ids,
            unknown,
            "unknown",
            hint="these customers have no transactions and are not in the customers table",
        )


def _at(positions: np.ndarray, n: int) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    mask[positions] = True
    return mask
