"""The latent-state model of the hazard scenario: customers, the world, departure hazards.

Each customer carries latent states (satisfaction, temptation by a competitor, needs
mismatch, current region, financial health, engagement). This module draws the
customers and their life events, the world's competitor promotions and service
crunches, the states that follow from life events alone, and the per-day hazard of
leaving for each reason; ``simulation.hazard`` runs the days.
"""

from __future__ import annotations

import numpy as np

from models.reasons import REASON_SHARES
from simulation.business import CATEGORIES, PURCHASE_CHANNELS, REGIONS, SEASON_WINDOWS
from simulation.profiles import HAZARD_TYPES, SEASONAL

REASONS = tuple(REASON_SHARES)  # hazard rows are stacked in this order

CHURN_NOT_BEFORE_DAYS = 90  # everyone is observed this long before they can leave
MIN_TENURE_BEFORE_CHURN_DAYS = 120  # and customers who sign up in the period this long

# Hazards per day, scaled per reason by the latent state (see hazards).
_POOR_HAZARD, _POOR_STEEPNESS = 1.2e-3, 2.2
_UNIDENTIFIED_HAZARD, _DRIFT_HAZARD = 4e-5, 1e-3
_COMPETITOR_HAZARD = 1.6e-3
_BUSINESS_CHANGE_HAZARD = 3.5e-4
_RELOCATION_HAZARD = 0.35  # integrated over the time after a far move, whatever its lag
_FINANCIAL_HAZARD = 2e-3
# Competitor promotions: arrivals per year, duration, share of regions each reaches.
_PROMOS_PER_YEAR, _PROMO_DAYS, _PROMO_REACH = 9.0, (10, 35), 0.3
# Service crunches (understaffing) lower every customer's chance of a good resolution.
_CRUNCHES_PER_YEAR, _CRUNCH_DAYS, _CRUNCH_PENALTY = 1.0, (30, 90), (0.15, 0.35)
# Mean years to each life event (at most one of each per customer).
_YEARS_TO = {"needs_shift": 8.0, "move": 20.0, "shock": 25.0, "drift": 5.0}


def draw_people(
    rng: np.random.Generator, n: int, n_days: int, in_season: np.ndarray
) -> dict[str, np.ndarray]:
    """Types, signups, tastes, latent starting points and each one's life-event days.

    Args:
        rng: The simulator's generator.
        n: Number of customers.
        n_days: Length of the period in days.
        in_season: Whether each day lies in each season, shape (season, day).

    Returns:
        One array per customer attribute, indexed by customer.
    """
    profiles = list(HAZARD_TYPES.values())
    segment = rng.choice(len(profiles), size=n, p=[p.share for p in profiles])

    def per_type(attr: str, i: int | None = None) -> np.ndarray:
        values = [getattr(p, attr) for p in profiles]
        if i is not None:  # one bound of a range; a missing range is NaN
            values = [(v or (np.nan, np.nan))[i] for v in values]
        return np.array(values, dtype=float)[segment]

    def uniform(attr: str) -> np.ndarray:
        low, high = per_type(attr, 0), per_type(attr, 1)
        return low + rng.random(n) * (high - low)

    seasonal = segment == list(HAZARD_TYPES).index(SEASONAL)
    season_a = np.where(seasonal, rng.integers(0, len(SEASON_WINDOWS), n), -1)
    season_b = (season_a + rng.integers(1, len(SEASON_WINDOWS), n)) % len(SEASON_WINDOWS)
    season_b = np.where(seasonal & (rng.random(n) < 0.3), season_b, -1)
    existing = rng.random(n) < 0.55
    signup = np.where(existing, -rng.integers(1, 4 * 365 + 1, n), rng.integers(0, n_days, n))
    # New seasonal customers sign up (with a purchase) on a day of their first season.
    pick = rng.random(n)
    for s, days in enumerate(np.flatnonzero(row) for row in in_season):
        joins_in_s = seasonal & ~existing & (season_a == s) & (len(days) > 0)
        signup = np.where(
            joins_in_s, days[(pick * len(days)).astype(int) % max(len(days), 1)], signup
        )
    signup = signup.astype(float)
    active_start = np.maximum(signup, 0.0)

    primary = rng.integers(0, len(CATEGORIES), n)
    secondary = (primary + rng.integers(1, len(CATEGORIES), n)) % len(CATEGORIES)
    # Where a needs shift takes them: a category they never buy otherwise.
    untried = rng.random((n, len(CATEGORIES)))
    untried[np.arange(n), primary] = untried[np.arange(n), secondary] = np.inf
    home = rng.integers(0, len(REGIONS), n)
    extra_items = rng.gamma(2.0, 0.5, n)
    order_value = rng.lognormal(np.log(55), 0.6, n) * uniform("value_multiplier")
    sensitivity = per_type("price_sensitivity")
    tolerance = per_type("tolerance")

    def event_day(kind: str) -> np.ndarray:
        return active_start + rng.exponential(_YEARS_TO[kind] * 365, n)

    shift_day = event_day("needs_shift")
    return {
        "segment_code": segment,
        "signup_day": signup,
        "active_start": active_start,
        "eligible_from": np.maximum(CHURN_NOT_BEFORE_DAYS, signup + MIN_TENURE_BEFORE_CHURN_DAYS),
        "season_a": season_a,
        "season_b": season_b,
        "median_gap": uniform("median_gap_days"),  # NaN for seasonal buyers
        "gap_sigma": per_type("gap_sigma"),
        "home_region": home,
        "new_region": (home + rng.integers(1, len(REGIONS), n)) % len(REGIONS),
        "primary_category": primary,
        "secondary_category": secondary,
        "shifted_category": np.argmin(untried, axis=1),
        "primary_share": np.where(rng.random(n) < 0.4, 1.0, rng.uniform(0.55, 0.85, n)),
        "extra_items": extra_items,
        "quantity_factor": np.where(rng.random(n) < 0.5, 0.3, 3.0),
        "unit_value": order_value / (1 + extra_items),
        "preferred_channel": rng.choice(len(PURCHASE_CHANNELS), size=n, p=[0.45, 0.45, 0.1]),
        "satisfaction_mean": uniform("satisfaction"),
        "tolerance": tolerance,
        "outreach_response": uniform("outreach_response"),
        "ticket_rate": per_type("tickets_per_year") / 365,
        "service_quality": 1 - rng.beta(1.2, 8.0, n) - 0.08 * (tolerance < 3),
        "price_sensitivity": rng.beta(4 * sensitivity, 4 * (1 - sensitivity)),
        "hazard_multiplier": per_type("hazard_multiplier"),
        "base_health": 1 - rng.beta(1.0, 14.0, n),
        "shift_day": shift_day,
        "shift_ramp": rng.uniform(20, 120, n),
        # Half find what they now need here after a while; the others never do.
        "adapt_day": shift_day + np.where(rng.random(n) < 0.5, rng.uniform(60, 240, n), np.inf),
        "move_day": event_day("move"),
        "move_lag": rng.uniform(5, 200, n),  # how long after a move they may still leave
        "far_move": rng.random(n) < 0.5,  # near moves never cost the customer
        "shock_day": event_day("shock"),
        "shock_drop": rng.uniform(0.5, 0.9, n),
        "recovery_days": rng.uniform(60, 400, n),
        "drift_day": event_day("drift"),
        "drift_days": rng.uniform(20, 200, n),
        "drift_depth": rng.uniform(0.3, 0.9, n),
    }


def draw_world(rng: np.random.Generator, n_days: int) -> tuple[np.ndarray, np.ndarray]:
    """Competitor promotions and service crunches over the period.

    Args:
        rng: The simulator's generator.
        n_days: Length of the period in days.

    Returns:
        Promotion depth per (region, day) and service-crunch penalty per day.
    """
    years = n_days / 365
    promo = np.zeros((len(REGIONS), n_days))
    for _ in range(rng.poisson(_PROMOS_PER_YEAR * years)):
        first = rng.integers(0, n_days)
        last = first + rng.integers(*_PROMO_DAYS)
        reach = rng.random(len(REGIONS)) < _PROMO_REACH
        reach[rng.integers(0, len(REGIONS))] = True
        promo[reach, first:last] = np.maximum(promo[reach, first:last], rng.uniform(0.3, 1.0))
    crunch = np.zeros(n_days)
    for _ in range(rng.poisson(_CRUNCHES_PER_YEAR * years)):
        first = rng.integers(0, n_days)
        last = first + rng.integers(*_CRUNCH_DAYS)
        crunch[first:last] = np.maximum(crunch[first:last], rng.uniform(*_CRUNCH_PENALTY))
    return promo, crunch


def life_states(
    people: dict[str, np.ndarray], c: np.ndarray, d: np.ndarray | float
) -> dict[str, np.ndarray]:
    """States of customers ``c`` on days ``d`` that follow from their life events alone.

    Args:
        people: The customers from ``draw_people``.
        c: Customer indices.
        d: One day for all of them, or one day each.

    Returns:
        Needs ``mismatch``, ``moved``, ``move_pull``, ``health`` and ``engagement``.
    """
    adapted = np.clip((d - people["adapt_day"][c]) / 30, 0, None)
    mismatch = np.clip((d - people["shift_day"][c]) / people["shift_ramp"][c], 0, 1)
    since_move = d - people["move_day"][c]
    moved = since_move >= 0
    since_shock = d - people["shock_day"][c]
    shock = np.exp(-np.maximum(since_shock, 0) / people["recovery_days"][c])
    health = (
        people["base_health"][c] - np.where(since_shock >= 0, people["shock_drop"][c], 0) * shock
    )
    drift = 1 - np.exp(-np.maximum(d - people["drift_day"][c], 0) / people["drift_days"][c])
    pull = np.exp(-np.maximum(since_move, 0) / people["move_lag"][c]) / people["move_lag"][c]
    return {
        "mismatch": mismatch * np.exp(-adapted),
        "moved": moved,
        "move_pull": np.where(moved & people["far_move"][c], pull, 0.0),
        "health": np.clip(health, 0.02, 1.0),
        "engagement": 1 - people["drift_depth"][c] * drift,
    }


def hazards(
    people: dict[str, np.ndarray],
    state: dict[str, np.ndarray],
    satisfaction: np.ndarray,
    temptation: np.ndarray,
) -> np.ndarray:
    """Per-day departure hazard of every customer.

    Args:
        people: The customers from ``draw_people``.
        state: Their ``life_states`` today.
        satisfaction: Today's satisfaction per customer (1-5).
        temptation: Today's temptation by a competitor per customer (0-1).

    Returns:
        Hazards of shape (reason, customer), reasons in ``REASONS`` order.
    """
    rows = {
        "poor_interaction": _POOR_HAZARD
        * np.exp(_POOR_STEEPNESS * (people["tolerance"] - satisfaction)),
        "unidentified": _UNIDENTIFIED_HAZARD + _DRIFT_HAZARD * (1 - state["engagement"]) ** 2,
        "competitor_offer": _COMPETITOR_HAZARD * temptation**2 * people["price_sensitivity"],
        "business_change": _BUSINESS_CHANGE_HAZARD * state["mismatch"],
        "relocation": _RELOCATION_HAZARD * state["move_pull"],
        "financial_distress": _FINANCIAL_HAZARD * (1 - state["health"]) ** 3,
    }
    return np.stack([rows[r] for r in REASONS]) * people["hazard_multiplier"]
