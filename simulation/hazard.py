"""Second simulated business: departures from competing hazards on latent customer states.

The retail scenario (``simulation.retail``) gives every churner a fixed 60-180 day decline
window before a uniformly drawn churn date. Here nothing is scheduled: time advances day by
day and each customer carries latent states (satisfaction, temptation by a competitor,
needs mismatch, current region, financial health, engagement) moved by service incidents
and exogenous events (competitor promotions as a Poisson process, needs shifts, moves,
financial shocks, silent drift). Each day a customer may leave for reason ``r`` with hazard
``h_r(state)``; the first departure wins and is the true reason. Lead times therefore vary
from none (an abrupt exit) to many months, and stayers live through the same episodes.

The observable tables follow the same input contract and dtypes as the retail scenario
(the frame builders are shared, ``simulation._common``). The customers and the hazards
are in ``simulation.hazard_states``; this module runs the days and dresses the orders.
One ``np.random.Generator`` is threaded through every draw in a fixed order, so a seed
fully determines the output.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from simulation._common import (
    draw_contacts,
    observable_business,
    observed_period,
    price_orders,
    refunds,
)
from simulation.business import INTERACTION_KINDS, PURCHASE_CHANNELS, SimulatedBusiness
from simulation.hazard_states import (
    CHURN_NOT_BEFORE_DAYS,
    MIN_TENURE_BEFORE_CHURN_DAYS,
    REASONS,
    draw_people,
    draw_world,
    hazards,
    life_states,
)
from simulation.profiles import HAZARD_TYPES
from simulation.seasons import season_bounds

# What callers import from here; the names live in the modules above.
__all__ = [
    "CHURN_NOT_BEFORE_DAYS",
    "HAZARD_TYPES",
    "MIN_TENURE_BEFORE_CHURN_DAYS",
    "REASONS",
    "simulate_hazard",
]

# Satisfaction: a mean-reverting random walk pushed by the outcome of each issue.
_SAT_REVERSION_DAYS, _SAT_NOISE = 120.0, 0.03
_SHOCK = {"unresolved": -0.7, "slow": -0.3, "fast": 0.1, "complaint_fixed": 0.3}
_TEMPT_RATE, _TEMPT_DECAY_DAYS = 0.08, 45.0
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

    Returns:
        The transactions, interactions, customers and ground-truth tables.

    Raises:
        ValueError: If ``n_customers`` < 1 or the period is not longer than 180 days.
    """
    start_ts, end_ts, n_days = observed_period(n_customers, start, end)
    rng = np.random.default_rng(seed)
    opens, closes = season_bounds(start_ts, end_ts)
    day = np.arange(n_days)
    in_season = ((day >= opens[:, :, None]) & (day < closes[:, :, None])).any(axis=1)
    people = draw_people(rng, n_customers, n_days, in_season)
    promo, crunch = draw_world(rng, n_days)
    orders, contacts = _run_days(rng, people, promo, crunch, in_season, n_days)
    people_frame = pd.DataFrame(people)
    orders = price_orders(rng, _order_details(rng, orders, people), people_frame)
    orders = pd.concat([orders, _refunds(rng, orders, people)], ignore_index=True)
    contacts = pd.concat(
        [
            draw_contacts(rng, columns.pop("customer"), columns.pop("t"), kind).assign(**columns)
            for kind, columns in contacts.items()
        ],
        ignore_index=True,
    )
    return observable_business(rng, orders, contacts, people_frame, start_ts)


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
        state = life_states(people, everyone, float(d))
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
        hazard = hazards(people, state, satisfaction, temptation)
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
    state = life_states(people, c, orders["t"].to_numpy())
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
    return refunds(rng, refunded, people["active_end"])
