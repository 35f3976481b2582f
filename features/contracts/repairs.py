"""Cross-table repairs made after each table passed its own contract.

Each repair is counted in a warning: the pipeline never changes data silently.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.contracts.columnar import _id_runs, _without_unused_categories, is_in


def reconcile(
    transactions: pd.DataFrame,
    interactions: pd.DataFrame | None,
    sources: tuple[str, str],
) -> tuple[pd.DataFrame, pd.DataFrame | None, tuple[str, ...]]:
    """Cross-table repairs, each counted in a warning (never silent).

    * A refund larger than everything the customer had bought up to then is capped at
      that total: a refund cannot return more money than was paid.
    * Interactions of customers with no transactions are dropped: there is no purchase
      history to score them on.

    Args:
        transactions: validated transactions.
        interactions: validated interactions, or None.
        sources: the two tables' file names, for the messages.

    Returns:
        The repaired tables and the warnings.
    """
    warnings: list[str] = []
    capped, n_capped = _capped_refunds(transactions)
    if n_capped:
        transactions = transactions.assign(amount=capped)
        warnings.append(
            f"{sources[0]}: capped {n_capped} refunds larger than the customer's "
            "purchases up to then at those purchases"
        )
    if interactions is not None:
        known = is_in(interactions["customer_id"], transactions["customer_id"])
        if not known.all():
            orphans = interactions.loc[~known, "customer_id"]
            warnings.append(
                f"{sources[1]}: dropped {int((~known).sum())} rows of {orphans.nunique()} "
                "customers who have no transactions"
            )
            interactions = _without_unused_categories(
                interactions.loc[known].reset_index(drop=True)
            )
    return transactions, interactions, tuple(warnings)


def _capped_refunds(transactions: pd.DataFrame) -> tuple[np.ndarray | None, int]:
    """Amounts with each too-large refund capped, and how many were capped.

    Only customers with at least one refund can have a refund to cap, so the running
    totals are computed for their rows alone: ordered by customer and time (stable),
    purchases clipped at zero, summed per customer in that order (the same pandas
    group-wise cumsum as before, so the sums are bit-for-bit the same).
    """
    amount = transactions["amount"].to_numpy()
    refund = amount < 0
    if not refund.any():
        return None, 0
    ids = transactions["customer_id"]
    involved = np.flatnonzero(is_in(ids, ids[refund]))
    ids = pd.Series(ids.array.take(involved))
    times = transactions["timestamp"].to_numpy(dtype="datetime64[ns]")[involved].view(np.int64)
    same_id, ordered = _id_runs(ids)
    if ordered and bool((~same_id | (times[1:] >= times[:-1])).all()):
        rows = involved
        groups = np.concatenate([[0], np.cumsum(~same_id)])
    else:
        codes, _ = pd.factorize(ids)
        order = np.lexsort((times, codes))
        rows, groups = involved[order], codes[order]
    ordered_amount = amount[rows]
    paid_so_far = pd.Series(ordered_amount).clip(lower=0).groupby(groups).cumsum().to_numpy()
    too_large = (ordered_amount < 0) & (-ordered_amount > paid_so_far)
    n_capped = int(too_large.sum())
    if not n_capped:
        return None, 0
    capped = amount.copy()
    capped[rows[too_large]] = -paid_so_far[too_large]
    return capped, n_capped
