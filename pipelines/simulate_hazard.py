"""Second simulated business: departures from competing hazards on latent customer states.

The retail scenario (``pipelines.simulate``) gives every churner a fixed 60-180 day decline
window before a uniformly drawn churn date. Here nothing is scheduled: time advances day by
day and each customer carries latent states (satisfaction, temptation by a competitor,
needs mismatch, current region, financial health, engagement) moved by service incidents
and exogenous events (competitor promotions as a Poisson process, needs shifts, moves,
financial shocks, silent drift). Each day a customer may leave for reason ``r`` with hazard
``h_r(state)``; the first departure wins and is the true reason. Lead times therefore vary
from none (an abrupt exit) to many months, and stayers live through the same episodes.

The observable tables follow the same input contract and dtypes as the retail scenario
(its frame builders are reused). One ``np.random.Generator`` is threaded through every
draw in a fixed order, so a seed fully determines the output.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

import pipelines.simulate as retail
from pipelines.simulate import (
    CATEGORIES,
    CUSTOMER_TYPES,
    INTERACTION_KINDS,
    PAYMENT_STATUSES,
    PURCHASE_CHANNELS,
    REASON_SHARES,
    REGIONS,
    SEASON_WINDOWS,
    SimulatedBusiness,
)

REASONS = tuple(REASON_SHARES)  # hazard rows are stacked in this order


@dataclass(frozen=True)
class _HazardProfile:
    """One customer type in the hazard scenario; ranges are drawn uniformly per customer."""

    share: float
    median_gap_days: tuple[float, float] | None  # None: buys in its seasons only
    gap_sigma: float  # lognormal sigma of the purchase gaps
    value_multiplier: tuple[float, float]
    satisfaction: tuple[float, float]  # long-run satisfaction on the 1-5 scale
    tolerance: float  # satisfaction below which the poor-interaction hazard takes off
    outreach_response: tuple[float, float]
    tickets_per_year: float
    price_sensitivity: float  # mean of the customer's Beta-distributed sensitivity
    hazard_multiplier: float


_P = _HazardProfile
# Same type names, in the same order, as the retail scenario (the truth frame relies on it).
# More occasional buyers than retail, lognormal gaps, other spend levels.
HAZARD_TYPES: dict[str, _HazardProfile] = {
    "regular": _P(0.22, (18, 32), 0.35, (1, 1.3), (3.8, 4.4), 3.2, (0.35, 0.5), 2, 0.3, 1.0),
    "occasional": _P(0.36, (40, 90), 0.9, (0.7, 1.1), (3.6, 4.3), 3.3, (0.25, 0.4), 1.5, 0.45, 1.3),
    "seasonal": _P(0.10, None, 0.0, (1, 1.4), (3.7, 4.3), 3.2, (0.3, 0.45), 1.5, 0.3, 1.0),
    "fan": _P(0.08, (6, 14), 0.6, (1, 1.5), (4.5, 5.0), 3.4, (0.7, 0.85), 1, 0.15, 0.5),
    "vip": _P(0.09, (14, 28), 0.4, (3, 6), (3.9, 4.5), 3.4, (0.4, 0.6), 2, 0.2, 0.7),
    "challenging": _P(0.15, (20, 40), 0.5, (0.9, 1.2), (2.7, 3.4), 2.1, (0.2, 0.35), 6, 0.35, 1.0),
}
assert list(HAZARD_TYPES) == list(CUSTOMER_TYPES)

CHURN_NOT_BEFORE_DAYS = 90  # everyone is observed this long before they can leave
MIN_TENURE_BEFORE_CHURN_DAYS = 120  # and customers who sign up in the period this long

# Hazards per day, scaled per reason by the latent state (see _hazards).
_POOR_HAZARD, _POOR_STEEPNESS = 1.2e-3, 2.2
_UNIDENTIFIED_HAZARD, _DRIFT_HAZARD = 4e-5, 1e-3
_COMPETITOR_HAZARD = 1.6e-3
_BUSINESS_CHANGE_HAZARD = 3.5e-4
_RELOCATION_HAZARD = 0.35  # integrated over the time after a far move, whatever its lag
_FINANCIAL_HAZARD = 2e-3

# Satisfaction: a mean-reverting random walk pushed by the outcome of each issue.
_SAT_REVERSION_DAYS, _SAT_NOISE = 120.0, 0.03
_SHOCK = {"unresolved": -0.7, "slow": -0.3, "fast": 0.1, "complaint_fixed": 0.3}
# Competitor promotions: arrivals per year, duration, share of regions each reaches.
_PROMOS_PER_YEAR, _PROMO_DAYS, _PROMO_REACH = 9.0, (10, 35), 0.3
_TEMPT_RATE, _TEMPT_DECAY_DAYS = 0.08, 45.0
# Service crunches (understaffing) lower every customer's chance of a good resolution.
_CRUNCHES_PER_YEAR, _CRUNCH_DAYS, _CRUNCH_PENALTY = 1.0, (30, 90), (0.15, 0.35)
# Mean years to each life event (at most one of each per customer).
_YEARS_TO = {"needs_shift": 8.0, "move": 20.0, "shock": 25.0, "drift": 5.0}

_SURVEYS_PER_DAY = 1.5 / 365
_OUTREACH_PER_DAY = 1 / 30
_PRICE_COMPLAINTS_PER_DAY = 1 / 2000
_SEASON_BUYS_PER_DAY = 4 / 61
_ISSUE_KINDS = ("support_ticket", "complaint", "price_complaint")


def simulate_hazard(
    n_customers: int = 20_000,
    seed: int = 0,
    start: str = "2023-01-01",
    end: str = "2025-12-31",
) -> SimulatedBusiness:
    """Simulate a business whose customers leave by competing hazards (see module doc).

    Args:
        n_customers: Number of customers to simulate.
        seed: Seed of the only random generator used; equal seeds give equal frames.
        start: First day of the observed period.
        end: Last instant of the observed period; all timestamps fall in ``[start, end]``.

    Raises:
        ValueError: If ``n_customers`` < 1 or the period is not longer than 180 days.
    """
    start_ts, end_ts = pd.Timestamp(start), pd.Timestamp(end)
    n_days = (end_ts - start_ts).days
    if n_customers < 1:
        raise ValueError(f"n_customers must be at least 1, got {n_customers}")
    if n_days <= 180:
        raise ValueError(f"period {start}..{end} must be longer than 180 days")

    rng = np.random.default_rng(seed)
    opens, closes = retail._season_bounds(start_ts, end_ts)
    day = np.arange(n_days)
    in_season = ((day >= opens[:, :, None]) & (day < closes[:, :, None])).any(axis=1)
    people = _draw_people(rng, n_customers, n_days, in_season)
    promo, crunch = _draw_world(rng, n_days)
    orders, contacts = _run_days(rng, people, promo, crunch, in_season, n_days)
    people_frame = pd.DataFrame(people)
    orders = retail._price_orders(rng, _order_details(rng, orders, people), people_frame)
    orders = pd.concat([orders, _refunds(rng, orders, people)], ignore_index=True)
    contacts = pd.concat(
        [
            retail._contacts(rng, columns.pop("customer"), columns.pop("t"), kind).assign(**columns)
            for kind, columns in contacts.items()
        ],
        ignore_index=True,
    )
    width = max(6, len(str(n_customers)))  # fixed width: ids sort like customers
    ids = np.array([f"C{i:0{width}d}" for i in range(1, n_customers + 1)])
    return SimulatedBusiness(
        transactions=retail._transactions_frame(rng, orders, ids, start_ts),
        interactions=retail._interactions_frame(contacts, ids, start_ts),
        customers=retail._customers_frame(people_frame, ids, start_ts),
        truth=retail._truth_frame(people_frame, ids, start_ts),
    )


# --- customers, the world and life events ----------------------------------------------


def _draw_people(
    rng: np.random.Generator, n: int, n_days: int, in_season: np.ndarray
) -> dict[str, np.ndarray]:
    """Types, signups, tastes, latent starting points and each one's life-event days."""
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

    seasonal = segment == list(HAZARD_TYPES).index("seasonal")
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


def _draw_world(rng: np.random.Generator, n_days: int) -> tuple[np.ndarray, np.ndarray]:
    """Competitor promotion depth per (region, day) and service-crunch penalty per day."""
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


def _life_states(
    people: dict[str, np.ndarray], c: np.ndarray, d: np.ndarray | float
) -> dict[str, np.ndarray]:
    """States of customers ``c`` on days ``d`` that follow from their life events alone."""
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


def _hazards(
    people: dict[str, np.ndarray],
    state: dict[str, np.ndarray],
    satisfaction: np.ndarray,
    temptation: np.ndarray,
) -> np.ndarray:
    """Per-day departure hazard of every customer, one row per reason in ``REASONS``."""
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


# --- the daily loop --------------------------------------------------------------------


def _run_days(
    rng: np.random.Generator,
    people: dict[str, np.ndarray],
    promo: np.ndarray,
    crunch: np.ndarray,
    in_season: np.ndarray,
    n_days: int,
) -> tuple[pd.DataFrame, dict[str, dict[str, np.ndarray]]]:
    """Advance everyone day by day: departures, then purchases, then contacts.

    Adds the churn columns to ``people``; returns the purchases (customer, day and the
    competitor pressure then) and per interaction kind its column arrays.
    """
    n = len(people["segment_code"])
    everyone = np.arange(n)
    satisfaction = np.clip(people["satisfaction_mean"] + rng.normal(0, 0.25, n), 1.0, 5.0)
    temptation = np.zeros(n)
    alive = np.ones(n, dtype=bool)
    churn_day, reason = np.full(n, np.nan), np.full(n, "", dtype=object)
    cadence = ~np.isnan(people["median_gap"])
    gap = np.nan_to_num(people["median_gap"], nan=1.0)
    existing = people["signup_day"] < 0
    # Existing customers are mid-cycle at the start; new ones buy on their signup day.
    next_buy = np.where(
        existing, rng.random(n) * gap * rng.lognormal(0, people["gap_sigma"]), people["signup_day"]
    )
    seasonal_signup = ~cadence & ~existing
    orders: list[np.ndarray] = []
    kinds: dict[str, list[tuple[np.ndarray, ...]]] = {kind: [] for kind in INTERACTION_KINDS}

    for d in range(n_days):
        present = people["active_start"] <= d
        live = present & alive
        state = _life_states(people, everyone, float(d))
        engagement, health = state["engagement"], state["health"]
        region = np.where(state["moved"], people["new_region"], people["home_region"])
        exposure = promo[region, d] * live
        temptation = temptation * (1 - 1 / _TEMPT_DECAY_DAYS)
        temptation = np.minimum(
            temptation + _TEMPT_RATE * exposure * people["price_sensitivity"], 1
        )
        satisfaction += (people["satisfaction_mean"] - satisfaction) / _SAT_REVERSION_DAYS
        satisfaction = np.clip(satisfaction + _SAT_NOISE * rng.standard_normal(n), 1.0, 5.0)
        u = rng.random((9, n))

        # Departures first, competing hazards: nothing is bought on the churn day.
        hazard = _hazards(people, state, satisfaction, temptation)
        total = hazard.sum(axis=0)
        leaves = np.flatnonzero(live & (d >= people["eligible_from"]) & (u[0] < -np.expm1(-total)))
        if len(leaves):
            share_so_far = np.cumsum(hazard[:, leaves], axis=0) / total[leaves]
            pick = np.minimum((u[1, leaves] > share_so_far).sum(axis=0), len(REASONS) - 1)
            reason[leaves], churn_day[leaves] = np.array(REASONS)[pick], d
            alive[leaves] = live[leaves] = False

        # Purchases: lognormal renewal gaps stretched by the state; seasons by the day.
        due = live & cadence & (next_buy < d + 1)
        in_any = np.zeros(n, dtype=bool)
        for season in (people["season_a"], people["season_b"]):
            in_any |= (season >= 0) & in_season[np.maximum(season, 0), d]
        seasonal_buy = live & in_any & (u[2] < _SEASON_BUYS_PER_DAY * engagement * health)
        seasonal_buy |= live & seasonal_signup & (people["signup_day"] == d)
        stretch = (1 + 0.8 * temptation) / (engagement * (0.4 + 0.6 * health))
        stretch *= 1 + 0.3 * np.clip(people["tolerance"] + 0.5 - satisfaction, 0, None)
        c = np.flatnonzero(due)
        next_buy[c] = d + gap[c] * stretch[c] * rng.lognormal(0, people["gap_sigma"][c])
        c = np.flatnonzero(due | seasonal_buy)
        orders.append(np.stack([c, np.full(len(c), d), temptation[c], exposure[c]]))

        # Issues; how they are handled moves satisfaction. Complaints follow unhappiness.
        quality = np.clip(people["service_quality"] - crunch[d], 0.05, 1.0)
        unhappy = np.clip(people["tolerance"] + 0.7 - satisfaction, 0, None)
        rates = {
            "support_ticket": people["ticket_rate"] * (1 + state["mismatch"] + 2 * (1 - health)),
            "complaint": people["ticket_rate"] * 0.3 * (1 + 4 * unhappy),
            "price_complaint": _PRICE_COMPLAINTS_PER_DAY
            + people["price_sensitivity"] ** 2 * (exposure / 50 + temptation / 30),
        }
        for k, (kind, rate) in enumerate(rates.items()):
            c = np.flatnonzero(live & (u[3 + k] < rate))
            fixed_share = quality[c] if kind != "price_complaint" else 0.6
            resolved = rng.random(len(c)) < fixed_share
            slow = resolved & (rng.random(len(c)) < 1.5 * (1 - quality[c]))
            hours = np.where(
                slow, rng.uniform(72, 300, len(c)), rng.lognormal(np.log(16), 0.6, len(c))
            )
            if kind != "price_complaint":
                good = _SHOCK["fast"] if kind == "support_ticket" else _SHOCK["complaint_fixed"]
                shocks = [_SHOCK["unresolved"], _SHOCK["slow"]]
                satisfaction[c] += np.select([~resolved, slow], shocks, good)
            time = d + (u[6, c] + k / 5) % 1
            kinds[kind].append((c, time, resolved.astype(int), np.where(resolved, hours, np.nan)))
        # Answering falls with satisfaction, engagement and health; never after leaving.
        answers = np.clip((satisfaction - 1.5) / 2.5, 0.03, 1) * (0.4 + 0.6 * engagement)
        answers *= people["outreach_response"] * (0.6 + 0.4 * health)
        c = np.flatnonzero(live & (u[7] < _SURVEYS_PER_DAY * answers / 0.4))
        score = np.clip(np.round(satisfaction[c] + rng.normal(0, 0.5, len(c))), 1, 5)
        kinds["survey"].append((c, d + (u[6, c] + 0.6) % 1, score))
        c = np.flatnonzero(present & (u[8] < _OUTREACH_PER_DAY))
        responded = live[c] & (rng.random(len(c)) < answers[c])
        kinds["outreach"].append((c, d + (u[6, c] + 0.8) % 1, responded.astype(int)))

    people.update(
        churned=~alive,
        churn_day=churn_day,
        reason=reason,
        active_end=np.where(alive, float(n_days), churn_day),
    )
    names = {kind: ("resolved", "resolution_hours") for kind in _ISSUE_KINDS}
    names |= {"survey": ("satisfaction",), "outreach": ("responded",)}
    contacts = {}
    for kind, parts in kinds.items():
        columns = [np.concatenate(column) for column in zip(*parts, strict=True)]
        contacts[kind] = dict(zip(("customer", "t", *names[kind]), columns, strict=True))
    rows = np.concatenate(orders, axis=1)
    purchases = pd.DataFrame(
        {"customer": rows[0].astype(np.int64), "t": rows[1], "temptation": rows[2]}
    )
    return purchases.assign(exposure=rows[3]), contacts


# --- what each order looks like --------------------------------------------------------


def _order_details(
    rng: np.random.Generator, orders: pd.DataFrame, people: dict[str, np.ndarray]
) -> pd.DataFrame:
    """Category, basket, discount, channel, region and payment from the state that day."""
    n = len(orders)
    c = orders["customer"].to_numpy()
    state = _life_states(people, c, orders["t"].to_numpy())
    temptation = orders["temptation"].to_numpy()
    usual = np.where(
        rng.random(n) < people["primary_share"][c],
        people["primary_category"][c],
        people["secondary_category"][c],
    )
    new_need = rng.random(n) < 0.75 * state["mismatch"]
    rescaled = rng.random(n) < 0.8 * state["mismatch"]
    extra = people["extra_items"][c] * np.where(rescaled, people["quantity_factor"][c], 1.0)
    # Price-sensitive customers under competitor pressure buy on deep discount here too.
    pressure = 0.9 * orders["exposure"].to_numpy() + 0.8 * temptation
    chases = rng.random(n) < people["price_sensitivity"][c] * pressure
    background = rng.random(n) < 0.08
    discount_rate = np.select(
        [chases, background], [rng.uniform(0.15, 0.4, n), rng.uniform(0.05, 0.15, n)], 0.0
    )
    usual_channel = rng.random(n) < 0.8
    any_channel = rng.integers(0, len(PURCHASE_CHANNELS), n)
    channel = np.where(usual_channel, people["preferred_channel"][c], any_channel)
    online = state["moved"] & (rng.random(n) < 0.85)
    strain = np.clip(1 - state["health"] / 0.85, 0, 1)  # zero for the financially healthy
    draw = rng.random(n)
    payment = np.select([draw < 0.004 + 0.45 * strain, draw < 0.02 + 0.9 * strain], [1, 2], 0)
    return orders.assign(
        category=np.where(new_need, people["shifted_category"][c], usual),
        quantity=1 + rng.poisson(extra),
        discount_rate=discount_rate,
        channel=np.where(online, PURCHASE_CHANNELS.index("online"), channel),
        region=np.where(state["moved"], people["new_region"][c], people["home_region"][c]),
        payment=payment,
        value_factor=(0.25 + 0.75 * state["health"]) * (1 - 0.35 * temptation),
        strain=strain,
    )


def _refunds(
    rng: np.random.Generator, orders: pd.DataFrame, people: dict[str, np.ndarray]
) -> pd.DataFrame:
    """Partial or full returns of earlier orders, more often under financial strain."""
    refunded = orders.loc[rng.random(len(orders)) < 0.01 + 0.2 * orders["strain"].to_numpy()]
    m = len(refunded)
    amount = refunded["amount"].to_numpy()
    refunds = refunded.assign(
        t=refunded["t"].to_numpy() + rng.uniform(1, 14, m),  # a day later at the earliest
        amount=-np.minimum(np.round(amount * rng.uniform(0.2, 1.0, m), 2), amount),
        discount=0.0,
        quantity=1 + np.floor(rng.random(m) * refunded["quantity"].to_numpy()).astype(np.int64),
        payment=PAYMENT_STATUSES.index("ok"),
    )
    active_end = people["active_end"][refunds["customer"].to_numpy()]
    return refunds.loc[np.floor(refunds["t"].to_numpy()) < active_end]
