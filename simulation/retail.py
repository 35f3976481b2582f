"""Simulated business with known churn causes, for demos and for checking the model.

The simulator draws a customer base of the six customer types in ``domain.md`` (their
profiles are data: ``simulation/config/profiles.yaml``), their purchases and service
interactions, and for churners a *decline window* before the churn date in which
behaviour shows the true loss reason, noisily. The ground truth is returned next to the
observable tables so the pipeline's drivers can be checked against what really happened.

Pure numpy/pandas, no I/O. Internally time is float days since ``start``; one
``np.random.Generator`` is threaded through every draw in a fixed order, so a seed fully
determines the output. This module holds the entry point (``simulate``, which also
dispatches to the other scenarios) and the customers, churn and decline episodes; the
orders are in ``retail_orders``, the interactions in ``retail_contacts``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from models.reasons import REASON_SHARES
from simulation._common import observable_business, observed_period
from simulation.business import (
    CATEGORIES,
    CONTACT_CHANNELS,
    INTERACTION_KINDS,
    PAYMENT_STATUSES,
    PURCHASE_CHANNELS,
    REGIONS,
    SCENARIOS,
    SEASON_WINDOWS,
    SimulatedBusiness,
    as_of,
)
from simulation.hazard import simulate_hazard
from simulation.profiles import CUSTOMER_TYPES, RetailProfile
from simulation.retail_contacts import draw_interactions
from simulation.retail_orders import draw_orders
from simulation.seasons import align_seasonal_signups, season_bounds
from simulation.subscription import simulate_subscription

# What callers import from here; the names live in the modules above.
__all__ = [
    "CATEGORIES",
    "CHURN_NOT_BEFORE_DAYS",
    "CONTACT_CHANNELS",
    "CUSTOMER_TYPES",
    "INTERACTION_KINDS",
    "MIN_TENURE_BEFORE_CHURN_DAYS",
    "PAYMENT_STATUSES",
    "PURCHASE_CHANNELS",
    "REASON_SHARES",
    "REGIONS",
    "SCENARIOS",
    "SEASON_WINDOWS",
    "SimulatedBusiness",
    "as_of",
    "simulate",
]

CHURN_NOT_BEFORE_DAYS = 180  # churners need history before they leave
MIN_TENURE_BEFORE_CHURN_DAYS = 120  # same for customers who sign up during the period

# Non-churners with a weak look-alike episode, so signals are not perfectly clean.
_FALSE_ALARM_SHARE = 0.12
_FALSE_ALARM_REASONS = {"poor_interaction": 0.6, "competitor_offer": 0.2, "unidentified": 0.2}

_TICKETS_PER_DAY = 1 / 182


def simulate(
    n_customers: int = 20_000,
    seed: int = 0,
    start: str = "2023-01-01",
    end: str = "2025-12-31",
    scenario: str = "retail",
) -> SimulatedBusiness:
    """Simulate a retail business with churners whose true loss reasons are known.

    About half the customers exist before ``start`` (their history in the tables begins
    at ``start``); the rest sign up during the period. About 40% churn at a date in
    ``[start + 180 days, end]``; in the 60-180 days before, their behaviour shows the
    true reason (see ``domain.md``). Non-churners carry small noise in the same signals.

    Args:
        n_customers: Number of customers to simulate.
        seed: Seed of the only random generator used; equal seeds give equal frames.
        start: First day of the observed period.
        end: Last instant of the observed period; all timestamps fall in ``[start, end]``.
        scenario: Causal structure of the departures, one of ``SCENARIOS``: "retail" is
            the decline-window structure described here; "hazard" is
            ``simulation.hazard`` (competing hazards on latent customer states);
            "subscription" is ``simulation.subscription`` (plans, usage events and
            cancellations, with a ``subscriptions`` table).

    Returns:
        The transactions, interactions, customers and ground-truth tables.

    Raises:
        ValueError: If ``n_customers`` < 1, the period is not longer than 180 days or
            ``scenario`` is unknown.
    """
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; expected one of {', '.join(SCENARIOS)}")
    simulator = {
        "retail": _simulate_retail,
        "hazard": simulate_hazard,
        "subscription": simulate_subscription,
    }[scenario]
    return simulator(n_customers=n_customers, seed=seed, start=start, end=end)


def _simulate_retail(n_customers: int, seed: int, start: str, end: str) -> SimulatedBusiness:
    """The decline-window scenario (see ``simulate``)."""
    start_ts, end_ts, n_days = observed_period(
        n_customers, start, end, min_days=CHURN_NOT_BEFORE_DAYS
    )
    rng = np.random.default_rng(seed)
    season_opens, season_closes = season_bounds(start_ts, end_ts)
    people = _draw_customers(rng, n_customers, n_days)
    people = align_seasonal_signups(rng, people, season_opens, season_closes, n_days)
    people = _draw_churn(rng, people, n_days)
    people = _draw_episodes(rng, people, n_days)
    orders = draw_orders(rng, people, season_opens, season_closes)
    contacts = draw_interactions(rng, people, n_days)
    return observable_business(rng, orders, contacts, people, start_ts)


# --- customers, churn and decline episodes -------------------------------------------


def _per_type(segment_code: np.ndarray, attribute: Callable[[RetailProfile], float]) -> np.ndarray:
    """Look up one profile attribute for every customer."""
    values = np.array([attribute(profile) for profile in CUSTOMER_TYPES.values()], dtype=float)
    return values[segment_code]


def _draw_uniform_per_type(
    rng: np.random.Generator,
    segment_code: np.ndarray,
    bounds: Callable[[RetailProfile], tuple[float, float]],
) -> np.ndarray:
    low = _per_type(segment_code, lambda p: bounds(p)[0])
    high = _per_type(segment_code, lambda p: bounds(p)[1])
    return low + rng.random(len(segment_code)) * (high - low)


def _draw_customers(rng: np.random.Generator, n_customers: int, n_days: int) -> pd.DataFrame:
    """Draw each customer's type, signup, home region, tastes and service profile."""
    n = n_customers
    shares = [profile.share for profile in CUSTOMER_TYPES.values()]
    segment_code = rng.choice(len(CUSTOMER_TYPES), size=n, p=shares)
    existing = rng.random(n) < 0.5
    signup_day = np.where(
        existing, -rng.integers(1, 3 * 365 + 1, n), rng.integers(0, n_days, n)
    ).astype(float)

    primary_category = rng.integers(0, len(CATEGORIES), n)
    secondary_category = (primary_category + rng.integers(1, len(CATEGORIES), n)) % len(CATEGORIES)
    single_category = rng.random(n) < 0.5
    primary_share = np.where(single_category, 1.0, rng.uniform(0.55, 0.85, n))
    # Categories the customer never buys normally: where a business change moves them.
    never_bought = rng.random((n, len(CATEGORIES)))
    never_bought[np.arange(n), primary_category] = np.inf
    never_bought[np.arange(n), secondary_category] = np.inf
    new_categories = np.argsort(never_bought, axis=1)[:, :2]

    home_region = rng.integers(0, len(REGIONS), n)
    extra_items = rng.uniform(0.2, 2.0, n)  # quantity is 1 + Poisson(extra_items)
    base_order_value = rng.lognormal(np.log(40), 0.5, n) * _draw_uniform_per_type(
        rng, segment_code, lambda p: p.value_multiplier
    )
    mean_gap = _draw_uniform_per_type(
        rng, segment_code, lambda p: p.mean_gap_days or (np.nan, np.nan)
    )
    season_a = rng.integers(0, len(SEASON_WINDOWS), n)
    season_b = (season_a + rng.integers(1, len(SEASON_WINDOWS), n)) % len(SEASON_WINDOWS)
    seasonal = np.array(list(CUSTOMER_TYPES))[segment_code] == "seasonal"
    return pd.DataFrame(
        {
            "segment_code": segment_code,
            "signup_day": signup_day,
            "active_start": np.maximum(signup_day, 0.0),
            "home_region": home_region,
            "new_region": (home_region + rng.integers(1, len(REGIONS), n)) % len(REGIONS),
            "primary_category": primary_category,
            "secondary_category": secondary_category,
            "primary_share": primary_share,
            "new_category_a": new_categories[:, 0],
            "new_category_b": new_categories[:, 1],
            "quantity_factor": np.where(rng.random(n) < 0.5, 0.3, 3.0),
            "extra_items": extra_items,
            "unit_value": base_order_value / (1 + extra_items),
            "preferred_channel": rng.choice(len(PURCHASE_CHANNELS), size=n, p=[0.5, 0.4, 0.1]),
            "mean_gap": mean_gap,
            "gap_shape": _per_type(segment_code, lambda p: p.gap_shape),
            "season_a": np.where(seasonal, season_a, -1),
            "season_b": np.where(seasonal & (rng.random(n) < 0.3), season_b, -1),
            "satisfaction_mean": _draw_uniform_per_type(
                rng, segment_code, lambda p: p.satisfaction
            ),
            "outreach_response": _draw_uniform_per_type(
                rng, segment_code, lambda p: p.outreach_response
            ),
            "ticket_rate": _TICKETS_PER_DAY
            * _per_type(segment_code, lambda p: p.ticket_multiplier),
            "complaint_rate": _per_type(segment_code, lambda p: p.complaints_per_year) / 365,
        }
    )


def _draw_churn(rng: np.random.Generator, people: pd.DataFrame, n_days: int) -> pd.DataFrame:
    """Decide who churns, when (uniform after enough history) and for which true reason."""
    n = len(people)
    earliest = np.maximum(
        CHURN_NOT_BEFORE_DAYS, people["signup_day"].to_numpy() + MIN_TENURE_BEFORE_CHURN_DAYS
    )
    # Seasonal customers leave only after a season they could buy in (NaN for others).
    earliest = np.fmax(earliest, people["first_season_close"].to_numpy())
    wants_to_leave = rng.random(n) < _per_type(
        people["segment_code"].to_numpy(), lambda p: p.churn_probability
    )
    # Late sign-ups have no room for a history before leaving, so they stay.
    churned = wants_to_leave & (earliest < n_days - 1)
    churn_day = np.floor(earliest + rng.random(n) * (n_days - earliest))
    reason = rng.choice(np.array(list(REASON_SHARES)), size=n, p=list(REASON_SHARES.values()))
    return people.assign(
        churned=churned,
        churn_day=np.where(churned, churn_day, np.nan),
        reason=np.where(churned, reason, ""),
        active_end=np.where(churned, churn_day, float(n_days)),
    )


def _draw_episodes(rng: np.random.Generator, people: pd.DataFrame, n_days: int) -> pd.DataFrame:
    """Give churners a decline window and some non-churners a weak false-alarm episode.

    Reason behaviour is driven by the episode columns only, so churners and false alarms
    share one mechanism and differ in strength (and in whether buying stops afterwards).
    """
    n = len(people)
    churned = people["churned"].to_numpy()
    active_start = people["active_start"].to_numpy()

    window_days = rng.uniform(60, 180, n)
    churn_end = people["churn_day"].to_numpy()
    churn_start = np.maximum(churn_end - window_days, active_start)

    alarm_days = rng.uniform(45, 120, n)
    room = n_days - active_start - alarm_days
    false_alarm = ~churned & (room > 0) & (rng.random(n) < _FALSE_ALARM_SHARE)
    alarm_end = active_start + alarm_days + rng.random(n) * np.maximum(room, 0)
    alarm_reason = rng.choice(
        np.array(list(_FALSE_ALARM_REASONS)), size=n, p=list(_FALSE_ALARM_REASONS.values())
    )

    strength = np.where(churned, rng.uniform(0.55, 1.0, n), rng.uniform(0.15, 0.4, n))
    return people.assign(
        episode_reason=np.where(churned, people["reason"], np.where(false_alarm, alarm_reason, "")),
        episode_start=np.where(
            churned, churn_start, np.where(false_alarm, alarm_end - alarm_days, np.nan)
        ),
        episode_end=np.where(churned, churn_end, np.where(false_alarm, alarm_end, np.nan)),
        episode_strength=np.where(churned | false_alarm, strength, 0.0),
        move_progress=rng.uniform(0.3, 0.7, n),  # when in the window a relocating customer moves
    )
