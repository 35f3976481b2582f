"""Signals for the loss reasons other than poor interaction, from optional columns.

competitor offer: discount share; business change: category mix and basket size;
relocation: region change and a move to online; financial distress: failed or late
payments and refunds. Each feature exists only when its column does.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features import registry
from features.windows import (
    count_per_customer,
    customer_positions,
    equals_mask,
    label_codes,
    latest_per_customer,
    mean_per_customer,
    sum_per_customer,
    values_at,
    window_mask,
)

# feature -> optional transaction columns it needs (declared in features/registry.py)
SIGNAL_FEATURES: dict[str, tuple[str, ...]] = registry.needs(registry.SIGNALS)


def observable(columns: set[str]) -> list[str]:
    """Signal features computable from a transactions table with these columns."""
    return [name for name, needs in SIGNAL_FEATURES.items() if set(needs) <= columns]


def _per_label(positions: np.ndarray, codes: np.ndarray, n: int, k: int) -> np.ndarray:
    """Row counts per customer (rows) and label code (columns), shape ``(n, k)``."""
    return np.bincount(positions * k + codes, minlength=n * k).reshape(n, k)


def signal_features(
    transactions: pd.DataFrame,
    cutoff: pd.Timestamp,
    customers: pd.Index,
    home_regions: pd.Series | None = None,
) -> pd.DataFrame:
    """Reason signals per customer from the optional transaction columns.

    Args:
        transactions: validated transactions, all rows before ``cutoff``.
        cutoff: the cutoff (midnight).
        customers: customer ids to produce rows for.
        home_regions: optional region per customer id from the customers table; without
            it the home region is where the customer bought most before the last 90 days.

    Returns:
        One row per customer in ``customers`` with the observable signal features.
    """
    columns = set(transactions.columns)
    n = len(customers)
    pos = customer_positions(transactions["customer_id"], customers)
    if not (pos >= 0).all():
        transactions, pos = transactions.loc[pos >= 0], pos[pos >= 0]
    ts = transactions["timestamp"].to_numpy()
    amount = transactions["amount"].to_numpy(dtype=float)
    bought = amount > 0
    recent = bought & window_mask(ts, cutoff, 90)
    prior = bought & (ts < (cutoff - pd.Timedelta(days=90)).to_datetime64())
    out = pd.DataFrame(index=customers)

    def column(name: str) -> np.ndarray:
        return transactions[name].to_numpy(dtype=float, na_value=np.nan)

    if "discount" in columns:
        # money off as a share of list price (amount paid + discount); pandas sums skip NaN
        discount = np.nan_to_num(column("discount"))

        def discount_share(rows: np.ndarray) -> np.ndarray:
            off = sum_per_customer(pos, discount, n, rows)
            list_price = off + sum_per_customer(pos, amount, n, rows)
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.where(list_price > 0, off / list_price, np.nan)

        recent_share = discount_share(recent)
        out["discount_share_90d"] = recent_share
        out["discount_share_change_90d"] = recent_share - discount_share(prior)
    if "category" in columns:
        codes, labels = label_codes(transactions["category"])
        k = len(labels)
        # a missing category is a category of its own when asking "seen before?"
        slot = np.where(codes >= 0, codes, k)
        recent_mix = _per_label(pos[recent], slot[recent], n, k + 1)
        prior_mix = _per_label(pos[prior], slot[prior], n, k + 1)
        out["category_shift_90d"] = _mix_shift(recent_mix[:, :k], prior_mix[:, :k])
        is_new = prior_mix[pos[recent], slot[recent]] == 0
        has_prior = prior_mix.sum(axis=1) > 0
        new_share = sum_per_customer(pos[recent], is_new.astype(float), n) / np.maximum(
            recent_mix.sum(axis=1), 1
        )
        out["new_category_share_90d"] = np.where(
            has_prior & (recent_mix.sum(axis=1) > 0), new_share, np.nan
        )
    if "quantity" in columns:
        quantity = column("quantity")
        recent_qty = mean_per_customer(pos, quantity, n, recent)
        prior_qty = mean_per_customer(pos, quantity, n, prior)
        # log ratio: halving and doubling the basket are equally large changes
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.log(recent_qty / prior_qty)
        out["quantity_change_90d"] = np.where(np.isinf(ratio), np.nan, ratio)
    if "region" in columns:
        out["region_changed"] = _region_changed(
            pos, ts, transactions["region"], bought, prior, home_regions, customers
        )
    if "channel" in columns:
        online = equals_mask(transactions["channel"], "online").astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            recent_online = sum_per_customer(pos, online, n, recent) / count_per_customer(
                pos, n, recent
            )
            prior_online = sum_per_customer(pos, online, n, prior) / count_per_customer(
                pos, n, prior
            )
        out["online_share_change_90d"] = recent_online - prior_online
    window = window_mask(ts, cutoff, 180)
    if "payment_status" in columns:
        status = transactions["payment_status"]
        out["failed_payments_180d"] = count_per_customer(
            pos, n, window & equals_mask(status, "failed")
        )
        out["late_payments_180d"] = count_per_customer(pos, n, window & equals_mask(status, "late"))
    out["refunds_180d"] = count_per_customer(pos, n, window & (amount < 0))
    return out[observable(columns)]


def _mix_shift(recent: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """Total-variation distance between each customer's recent and prior label mix.

    0 = same mix, 1 = nothing in common. NaN without purchases in both periods.
    """
    recent_total = recent.sum(axis=1, keepdims=True)
    prior_total = prior.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        distance = 0.5 * np.abs(recent / recent_total - prior / prior_total).sum(axis=1)
    return np.where((recent_total[:, 0] > 0) & (prior_total[:, 0] > 0), distance, np.nan)


def _region_changed(
    pos: np.ndarray,
    ts: np.ndarray,
    regions: pd.Series,
    bought: np.ndarray,
    prior: np.ndarray,
    home_regions: pd.Series | None,
    customers: pd.Index,
) -> np.ndarray:
    """1 when the latest purchase was made outside the customer's home region."""
    n = len(customers)
    codes, labels = label_codes(regions)
    labels = np.append(labels, np.nan).astype(object)  # code -1 reads as missing

    # region of the latest purchase that names one
    known = np.flatnonzero(bought & (codes >= 0))
    row = latest_per_customer(pos[known], ts[known], n)
    latest = labels[np.where(row >= 0, values_at(codes[known], row), -1).astype(np.intp)]

    # most frequent earlier region; ties go to the alphabetically first, deterministically
    earlier = prior & (codes >= 0)
    counts = _per_label(pos[earlier], codes[earlier], n, max(len(labels) - 1, 1))
    home = labels[np.where(counts.sum(axis=1) > 0, counts.argmax(axis=1), -1)]
    if home_regions is not None:
        given = home_regions.reindex(customers).astype(object).to_numpy()
        home = np.where(pd.isna(given), home, given)
    changed = (latest != home) & ~pd.isna(home) & ~pd.isna(latest)
    # customers without a purchase have no latest purchase to judge
    return np.where(count_per_customer(pos, n, bought) > 0, changed, np.nan)
