"""Orders of the retail scenario: when customers buy and what each order looks like.

Inside a decline window orders fade (gaps lengthen) and take on the look of the true
reason: promotion chasing, new categories, a new region, failed payments. Purchase
times are float days since ``start``; the caller's generator draws in a fixed order.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from simulation._common import price_orders, refunds
from simulation.business import PAYMENT_STATUSES, PURCHASE_CHANNELS
from simulation.seasons import seasonal_purchases

# Share of orders dropped by the end of the decline window at full signal strength:
# "unidentified" is pure fading, the other reasons lengthen gaps more modestly.
_FADING: dict[str, float] = {
    "poor_interaction": 0.35,
    "unidentified": 0.85,
    "competitor_offer": 0.25,
    "business_change": 0.15,
    "relocation": 0.5,
    "financial_distress": 0.3,
}


def draw_orders(
    rng: np.random.Generator,
    people: pd.DataFrame,
    season_opens: np.ndarray,
    season_closes: np.ndarray,
) -> pd.DataFrame:
    """Every priced order and refund of the customers in ``people``.

    Args:
        rng: The simulator's generator.
        people: One row per customer with their tastes, churn and decline episode.
        season_opens: Season open days, shape (season, year) (see ``season_bounds``).
        season_closes: Season close days, same shape.

    Returns:
        One row per order or refund (negative ``amount``), by customer index and day.
    """
    orders = _draw_purchase_times(rng, people, season_opens, season_closes)
    orders = _fade_in_episode(rng, _mark_episode(orders, people))
    orders = _draw_order_basics(rng, orders, people)
    for reason, shift in _REASON_SHIFTS.items():
        orders = shift(rng, orders, people, orders["episode_reason"].to_numpy() == reason)
    orders = price_orders(rng, orders, people)
    return pd.concat([orders, _draw_refunds(rng, orders, people)], ignore_index=True)


# --- purchase times ---------------------------------------------------------------------


def _draw_purchase_times(
    rng: np.random.Generator,
    people: pd.DataFrame,
    season_opens: np.ndarray,
    season_closes: np.ndarray,
) -> pd.DataFrame:
    """Purchase times of all customers: cadence buyers plus seasonal buyers."""
    customer, t = _cadence_purchases(rng, people)
    seasonal_customer, seasonal_t = seasonal_purchases(rng, people, season_opens, season_closes)
    customer = np.concatenate([customer, seasonal_customer])
    t = np.concatenate([t, seasonal_t])
    active_start = people["active_start"].to_numpy()[customer]
    active_end = people["active_end"].to_numpy()[customer]
    # Whole days are compared so nothing lands on or after the churn day.
    keep = (t >= active_start) & (np.floor(t) < active_end)
    return pd.DataFrame({"customer": customer[keep], "t": t[keep]})


def _cadence_purchases(
    rng: np.random.Generator, people: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray]:
    """Renewal process with gamma gaps per customer, drawn for all customers at once."""
    has_cadence = people["mean_gap"].notna().to_numpy()
    idx = np.flatnonzero(has_cadence)
    mean_gap = people["mean_gap"].to_numpy()[idx]
    shape = people["gap_shape"].to_numpy()[idx]
    start = people["active_start"].to_numpy()[idx]
    span = people["active_end"].to_numpy()[idx] - start
    expected = span / mean_gap
    # Generous draw count (mean + 6 sd + slack) so no customer runs out before active_end.
    n_gaps = np.ceil(expected + 6 * np.sqrt(expected) + 10).astype(int)
    owner = np.repeat(np.arange(len(idx)), n_gaps)
    gaps = rng.gamma(shape[owner], mean_gap[owner] / shape[owner])
    first_row = np.cumsum(n_gaps) - n_gaps
    running = np.cumsum(gaps)
    elapsed = running - gaps - np.repeat(running[first_row] - gaps[first_row], n_gaps)
    # Existing customers are mid-cycle at the start; new ones buy on their signup day.
    is_new = people["signup_day"].to_numpy()[idx] >= 0
    phase = np.where(is_new, rng.random(len(idx)) * 0.99, rng.random(len(idx)) * mean_gap)
    return idx[owner], start[owner] + phase[owner] + elapsed


def _mark_episode(orders: pd.DataFrame, people: pd.DataFrame) -> pd.DataFrame:
    """Attach each order's episode reason, strength and progress through the window."""
    customer = orders["customer"].to_numpy()
    t = orders["t"].to_numpy()
    episode_start = people["episode_start"].to_numpy()[customer]
    episode_end = people["episode_end"].to_numpy()[customer]
    inside = (t >= episode_start) & (t < episode_end)
    progress = np.where(inside, (t - episode_start) / (episode_end - episode_start), np.nan)
    return orders.assign(
        episode_reason=np.where(inside, people["episode_reason"].to_numpy()[customer], ""),
        strength=np.where(inside, people["episode_strength"].to_numpy()[customer], 0.0),
        progress=progress,
    )


def _fade_in_episode(rng: np.random.Generator, orders: pd.DataFrame) -> pd.DataFrame:
    """Drop more and more orders towards the end of a decline window (gaps lengthen)."""
    fading = orders["episode_reason"].map(_FADING).fillna(0.0).to_numpy()
    drop_probability = (
        fading * orders["strength"].to_numpy() * orders["progress"].fillna(0).to_numpy()
    )
    keep = rng.random(len(orders)) >= drop_probability
    return orders.loc[keep].reset_index(drop=True)


# --- what each order looks like ------------------------------------------------------------


def _draw_order_basics(
    rng: np.random.Generator, orders: pd.DataFrame, people: pd.DataFrame
) -> pd.DataFrame:
    """Everyday orders: the customer's category mix, channel, home region, little noise."""
    n = len(orders)
    c = orders["customer"].to_numpy()
    primary = rng.random(n) < people["primary_share"].to_numpy()[c]
    category = np.where(
        primary,
        people["primary_category"].to_numpy()[c],
        people["secondary_category"].to_numpy()[c],
    )
    preferred = rng.random(n) < 0.8
    channel = np.where(
        preferred,
        people["preferred_channel"].to_numpy()[c],
        rng.integers(0, len(PURCHASE_CHANNELS), n),
    )
    # Background promotions: about 10% of orders get 5-15% off.
    discounted = rng.random(n) < 0.10
    payment_draw = rng.random(n)
    payment = np.select([payment_draw < 0.005, payment_draw < 0.025], [1, 2], default=0)
    return orders.assign(
        category=category,
        quantity=1 + rng.poisson(people["extra_items"].to_numpy()[c]),
        value_factor=1.0,
        discount_rate=np.where(discounted, rng.uniform(0.05, 0.15, n), 0.0),
        channel=channel,
        region=people["home_region"].to_numpy()[c],
        payment=payment,
    )


def _shift_poor_interaction(
    rng: np.random.Generator, orders: pd.DataFrame, people: pd.DataFrame, inside: np.ndarray
) -> pd.DataFrame:
    """Poor interaction shows in contacts and fading only; orders look normal."""
    return orders


def _shift_unidentified(
    rng: np.random.Generator, orders: pd.DataFrame, people: pd.DataFrame, inside: np.ndarray
) -> pd.DataFrame:
    """Unidentified churn is fading alone; orders look normal."""
    return orders


def _shift_competitor_offer(
    rng: np.random.Generator, orders: pd.DataFrame, people: pd.DataFrame, inside: np.ndarray
) -> pd.DataFrame:
    """Promotion chasing: most orders discounted 15-40%, and baskets shrink."""
    strength, progress = _episode_intensity(orders, inside)
    chases_promotion = inside & (rng.random(len(orders)) < 0.85 * strength * (0.5 + 0.5 * progress))
    discount_rate = np.where(
        chases_promotion, rng.uniform(0.15, 0.40, len(orders)), orders["discount_rate"]
    )
    value_factor = orders["value_factor"] * np.where(inside, 1 - 0.4 * strength * progress, 1.0)
    return orders.assign(discount_rate=discount_rate, value_factor=value_factor)


def _shift_business_change(
    rng: np.random.Generator, orders: pd.DataFrame, people: pd.DataFrame, inside: np.ndarray
) -> pd.DataFrame:
    """Changing needs: new categories and very different quantities per order."""
    n = len(orders)
    c = orders["customer"].to_numpy()
    strength, progress = _episode_intensity(orders, inside)
    changed_need = inside & (rng.random(n) < strength * (0.4 + 0.6 * progress))
    new_category = np.where(
        rng.random(n) < 0.6,
        people["new_category_a"].to_numpy()[c],
        people["new_category_b"].to_numpy()[c],
    )
    rescaled = inside & (rng.random(n) < strength * (0.3 + 0.7 * progress))
    quantity = orders["quantity"].to_numpy()
    new_quantity = np.maximum(1, np.round(quantity * people["quantity_factor"].to_numpy()[c]))
    return orders.assign(
        category=np.where(changed_need, new_category, orders["category"]),
        quantity=np.where(rescaled, new_quantity, quantity).astype(np.int64),
    )


def _shift_relocation(
    rng: np.random.Generator, orders: pd.DataFrame, people: pd.DataFrame, inside: np.ndarray
) -> pd.DataFrame:
    """After moving, orders come from the new region and mostly online."""
    c = orders["customer"].to_numpy()
    _, progress = _episode_intensity(orders, inside)
    moved = inside & (progress >= people["move_progress"].to_numpy()[c])
    online = moved & (rng.random(len(orders)) < 0.9)
    return orders.assign(
        region=np.where(moved, people["new_region"].to_numpy()[c], orders["region"]),
        channel=np.where(online, PURCHASE_CHANNELS.index("online"), orders["channel"]),
    )


def _shift_financial_distress(
    rng: np.random.Generator, orders: pd.DataFrame, people: pd.DataFrame, inside: np.ndarray
) -> pd.DataFrame:
    """Failed and late payments, and spend collapsing towards a third."""
    n = len(orders)
    strength, progress = _episode_intensity(orders, inside)
    troubled = inside & (rng.random(n) < 0.7 * strength * (0.4 + 0.6 * progress))
    status = np.where(
        rng.random(n) < 0.5, PAYMENT_STATUSES.index("failed"), PAYMENT_STATUSES.index("late")
    )
    collapse = 1 - 0.7 * np.minimum(1.0, 2.0 * strength * progress)
    return orders.assign(
        payment=np.where(troubled, status, orders["payment"]),
        value_factor=orders["value_factor"] * np.where(inside, collapse, 1.0),
    )


def _episode_intensity(orders: pd.DataFrame, inside: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Strength and progress of the episode per order, zero outside it."""
    strength = np.where(inside, orders["strength"].to_numpy(), 0.0)
    progress = np.where(inside, orders["progress"].fillna(0).to_numpy(), 0.0)
    return strength, progress


_REASON_SHIFTS: dict[
    str, Callable[[np.random.Generator, pd.DataFrame, pd.DataFrame, np.ndarray], pd.DataFrame]
] = {
    "poor_interaction": _shift_poor_interaction,
    "unidentified": _shift_unidentified,
    "competitor_offer": _shift_competitor_offer,
    "business_change": _shift_business_change,
    "relocation": _shift_relocation,
    "financial_distress": _shift_financial_distress,
}


def _draw_refunds(
    rng: np.random.Generator, orders: pd.DataFrame, people: pd.DataFrame
) -> pd.DataFrame:
    """Partial or full refunds of earlier orders, a little more often in financial distress."""
    distressed = (orders["episode_reason"] == "financial_distress").to_numpy()
    probability = 0.01 + np.where(distressed, 0.15 * orders["strength"].to_numpy(), 0.0)
    refunded = orders.loc[rng.random(len(orders)) < probability]
    return refunds(rng, refunded, people["active_end"].to_numpy())
