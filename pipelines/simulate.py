"""Simulated business with known churn causes, for demos and for checking the model.

The simulator draws a customer base of the six customer types in ``domain.md``, their
purchases and service interactions, and for churners a *decline window* before the churn
date in which behaviour shows the true loss reason, noisily. The ground truth is returned
next to the observable tables so the pipeline's drivers can be checked against what
really happened.

Pure numpy/pandas, no I/O. Internally time is float days since ``start``; one
``np.random.Generator`` is threaded through every draw in a fixed order, so a seed fully
determines the output.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class SimulatedBusiness:
    """Observable tables of a simulated business plus the ground truth behind them.

    Attributes:
        transactions: One row per order or refund (negative ``amount``), sorted by
            customer then time.
        interactions: Support tickets, complaints, price complaints, surveys and
            marketing outreach, sorted by customer then time.
        customers: Signup date and home region of every customer.
        truth: Whether and when each customer churned, the true loss reason and the true
            customer type (``segment``). Not observable in real data.
        subscriptions: One row per subscription period (the "subscription" scenario
            only; None otherwise).
    """

    transactions: pd.DataFrame
    interactions: pd.DataFrame
    customers: pd.DataFrame
    truth: pd.DataFrame
    subscriptions: pd.DataFrame | None = None


@dataclass(frozen=True)
class _TypeProfile:
    """How one customer type behaves; ranges are drawn uniformly per customer."""

    share: float
    churn_probability: float
    mean_gap_days: tuple[float, float] | None  # None: buys in seasons, not on a cadence
    gap_shape: float  # gamma shape of purchase gaps: 1 is exponential, higher is steadier
    value_multiplier: tuple[float, float]
    satisfaction: tuple[float, float]
    outreach_response: tuple[float, float]
    ticket_multiplier: float
    complaints_per_year: float


CUSTOMER_TYPES: dict[str, _TypeProfile] = {
    "regular": _TypeProfile(0.30, 0.41, (25, 40), 8.0, (1, 1), (3.7, 4.3), (0.35, 0.5), 1.0, 0.4),
    "occasional": _TypeProfile(
        0.28, 0.55, (60, 120), 1.0, (1, 1), (3.5, 4.3), (0.35, 0.5), 1.0, 0.4
    ),
    "seasonal": _TypeProfile(0.12, 0.43, None, 1.0, (1, 1), (3.7, 4.3), (0.35, 0.5), 1.0, 0.4),
    "fan": _TypeProfile(0.10, 0.22, (10, 20), 3.0, (1, 1), (4.5, 5.0), (0.7, 0.85), 1.0, 0.2),
    "vip": _TypeProfile(0.08, 0.24, (20, 30), 5.0, (3, 5), (3.8, 4.5), (0.35, 0.55), 1.0, 0.4),
    "challenging": _TypeProfile(
        0.12, 0.45, (25, 45), 4.0, (1, 1), (2.6, 3.4), (0.25, 0.4), 3.5, 4.0
    ),
}

# Shares of lost customers by reason, as the retention literature states them.
REASON_SHARES: dict[str, float] = {
    "poor_interaction": 0.68,
    "unidentified": 0.14,
    "competitor_offer": 0.09,
    "business_change": 0.05,
    "relocation": 0.03,
    "financial_distress": 0.01,
}

# Causal structures the simulator offers; "retail" is the default and the original.
SCENARIOS = ("retail", "hazard", "subscription")

CATEGORIES = ("grocery", "electronics", "home", "garden", "apparel", "toys", "books", "beauty")
REGIONS = ("north", "south", "east", "west", "central")
PURCHASE_CHANNELS = ("store", "online", "phone")
PAYMENT_STATUSES = ("ok", "failed", "late")
INTERACTION_KINDS = ("support_ticket", "complaint", "survey", "outreach", "price_complaint")
CONTACT_CHANNELS = ("email", "phone", "chat")

# (first month, last month) of each buying season; a seasonal customer has one or two.
SEASON_WINDOWS: dict[str, tuple[int, int]] = {
    "spring": (3, 4),
    "summer": (6, 7),
    "back_to_school": (8, 9),
    "holiday": (11, 12),
}

CHURN_NOT_BEFORE_DAYS = 180  # churners need history before they leave
MIN_TENURE_BEFORE_CHURN_DAYS = 120  # same for customers who sign up during the period

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

# Non-churners with a weak look-alike episode, so signals are not perfectly clean.
_FALSE_ALARM_SHARE = 0.12
_FALSE_ALARM_REASONS = {"poor_interaction": 0.6, "competitor_offer": 0.2, "unidentified": 0.2}

_TICKETS_PER_DAY = 1 / 182
_SURVEYS_PER_DAY = 1.5 / 365
_OUTREACH_PER_DAY = 1 / 30
_PRICE_COMPLAINTS_PER_DAY = 1 / 2000
_CONTACT_CHANNEL_MIX: dict[str, tuple[float, float, float]] = {  # email, phone, chat
    "support_ticket": (0.4, 0.35, 0.25),
    "complaint": (0.35, 0.5, 0.15),
    "survey": (0.8, 0.0, 0.2),
    "outreach": (0.7, 0.2, 0.1),
    "price_complaint": (0.4, 0.4, 0.2),
}
# Opening hours (first hour, length in hours) per purchase channel.
_CHANNEL_HOURS = {"store": (9, 11), "online": (0, 24), "phone": (8, 10)}


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
            ``pipelines.simulate_hazard`` (competing hazards on latent customer states);
            "subscription" is ``pipelines.simulate_subscription`` (plans, usage events and
            cancellations, with a ``subscriptions`` table).

    Returns:
        The transactions, interactions, customers and ground-truth tables.

    Raises:
        ValueError: If ``n_customers`` < 1, the period is not longer than 180 days or
            ``scenario`` is unknown.
    """
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; expected one of {', '.join(SCENARIOS)}")
    if scenario == "hazard":
        from pipelines.simulate_hazard import simulate_hazard

        return simulate_hazard(n_customers=n_customers, seed=seed, start=start, end=end)
    if scenario == "subscription":
        from pipelines.simulate_subscription import simulate_subscription

        return simulate_subscription(n_customers=n_customers, seed=seed, start=start, end=end)
    start_ts, end_ts = pd.Timestamp(start), pd.Timestamp(end)
    n_days = (end_ts - start_ts).days
    if n_customers < 1:
        raise ValueError(f"n_customers must be at least 1, got {n_customers}")
    if n_days <= CHURN_NOT_BEFORE_DAYS:
        raise ValueError(f"period {start}..{end} must be longer than {CHURN_NOT_BEFORE_DAYS} days")

    rng = np.random.default_rng(seed)
    season_opens, season_closes = _season_bounds(start_ts, end_ts)
    people = _draw_customers(rng, n_customers, n_days)
    people = _align_seasonal_signups(rng, people, season_opens, season_closes, n_days)
    people = _draw_churn(rng, people, n_days)
    people = _draw_episodes(rng, people, n_days)

    orders = _draw_purchase_times(rng, people, season_opens, season_closes)
    orders = _fade_in_episode(rng, _mark_episode(orders, people))
    orders = _draw_order_basics(rng, orders, people)
    for reason, shift in _REASON_SHIFTS.items():
        orders = shift(rng, orders, people, orders["episode_reason"].to_numpy() == reason)
    orders = _price_orders(rng, orders, people)
    orders = pd.concat([orders, _draw_refunds(rng, orders, people)], ignore_index=True)

    contacts = _draw_interactions(rng, people, n_days)

    # Fixed width so sorting ids as text keeps customer order.
    width = max(6, len(str(n_customers)))
    customer_ids = np.array([f"C{i:0{width}d}" for i in range(1, n_customers + 1)])
    return SimulatedBusiness(
        transactions=_transactions_frame(rng, orders, customer_ids, start_ts),
        interactions=_interactions_frame(contacts, customer_ids, start_ts),
        customers=_customers_frame(people, customer_ids, start_ts),
        truth=_truth_frame(people, customer_ids, start_ts),
    )


# --- customers, churn and decline episodes -------------------------------------------


def _per_type(segment_code: np.ndarray, attribute: Callable[[_TypeProfile], float]) -> np.ndarray:
    """Look up one profile attribute for every customer."""
    values = np.array([attribute(profile) for profile in CUSTOMER_TYPES.values()], dtype=float)
    return values[segment_code]


def _draw_uniform_per_type(
    rng: np.random.Generator,
    segment_code: np.ndarray,
    bounds: Callable[[_TypeProfile], tuple[float, float]],
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


def _next_season(
    opens: np.ndarray, closes: np.ndarray, day: np.ndarray, n_days: int
) -> tuple[np.ndarray, np.ndarray]:
    """Open and close day of each row's first season (one row of years) closing after ``day``.

    Rows with no such season get ``n_days`` for both, i.e. an empty season at the end.
    """
    later = closes > day[:, None]
    first = np.argmax(later, axis=1)
    rows = np.arange(len(day))
    found = later.any(axis=1)
    return (
        np.where(found, opens[rows, first], n_days),
        np.where(found, np.minimum(closes[rows, first], n_days), n_days),
    )


def _last_season(
    opens: np.ndarray, closes: np.ndarray, n_days: int
) -> tuple[np.ndarray, np.ndarray]:
    """Open and close day of each row's last season opening inside [0, n_days)."""
    inside = (opens >= 0) & (opens < n_days)
    last = inside.shape[1] - 1 - np.argmax(inside[:, ::-1], axis=1)
    rows = np.arange(len(opens))
    found = inside.any(axis=1)
    return (
        np.where(found, opens[rows, last], n_days),
        np.where(found, np.minimum(closes[rows, last], n_days), n_days),
    )


def _align_seasonal_signups(
    rng: np.random.Generator,
    people: pd.DataFrame,
    season_opens: np.ndarray,
    season_closes: np.ndarray,
    n_days: int,
) -> pd.DataFrame:
    """New seasonal customers sign up in their season, with a first purchase that day.

    Also records when each seasonal customer's first season in the data closes, so churn
    can wait until they had a chance to buy.
    """
    n = len(people)
    seasonal = people["season_a"].to_numpy() >= 0
    season_a = np.maximum(people["season_a"].to_numpy(), 0)
    season_b = people["season_b"].to_numpy()
    signup = people["signup_day"].to_numpy()

    first_open, first_close = _next_season(
        season_opens[season_a], season_closes[season_a], np.maximum(signup, 0), n_days
    )
    earliest_signup = np.maximum(first_open, signup)
    room = first_close - earliest_signup
    # Arriving after the last season in the data: they joined in that season instead.
    last_open, last_close = _last_season(season_opens[season_a], season_closes[season_a], n_days)
    earliest_signup = np.where(room > 0, earliest_signup, last_open)
    room = np.where(room > 0, room, last_close - last_open)
    aligned = seasonal & (signup >= 0) & (room > 0)
    signup = np.where(aligned, np.floor(earliest_signup + rng.random(n) * room), signup)
    active_start = np.maximum(signup, 0.0)

    close_a = _next_season(season_opens[season_a], season_closes[season_a], active_start, n_days)[1]
    close_b = _next_season(
        season_opens[np.maximum(season_b, 0)],
        season_closes[np.maximum(season_b, 0)],
        active_start,
        n_days,
    )[1]
    first_season_close = np.where(season_b >= 0, np.minimum(close_a, close_b), close_a)
    return people.assign(
        signup_day=signup,
        active_start=active_start,
        buys_at_signup=aligned,
        first_season_close=np.where(seasonal, first_season_close, np.nan),
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


# --- purchase times ---------------------------------------------------------------------


def _draw_purchase_times(
    rng: np.random.Generator,
    people: pd.DataFrame,
    season_opens: np.ndarray,
    season_closes: np.ndarray,
) -> pd.DataFrame:
    """Purchase times of all customers: cadence buyers plus seasonal buyers."""
    customer, t = _cadence_purchases(rng, people)
    seasonal_customer, seasonal_t = _seasonal_purchases(rng, people, season_opens, season_closes)
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


def _season_bounds(start: pd.Timestamp, end: pd.Timestamp) -> tuple[np.ndarray, np.ndarray]:
    """Day offsets [opens, closes) of every season in every year, shape (season, year)."""
    years = range(start.year, end.year + 1)
    opens = np.empty((len(SEASON_WINDOWS), len(years)))
    closes = np.empty_like(opens)
    for s, (first_month, last_month) in enumerate(SEASON_WINDOWS.values()):
        for y, year in enumerate(years):
            opens[s, y] = (pd.Timestamp(year, first_month, 1) - start).days
            closes[s, y] = (
                pd.Timestamp(year, first_month, 1)
                + pd.DateOffset(months=last_month - first_month + 1)
                - start
            ).days
    return opens, closes


def _seasonal_purchases(
    rng: np.random.Generator, people: pd.DataFrame, opens: np.ndarray, closes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Several purchases inside each of a seasonal customer's windows, every year."""
    season_a, season_b = people["season_a"].to_numpy(), people["season_b"].to_numpy()
    customer = np.concatenate([np.flatnonzero(season_a >= 0), np.flatnonzero(season_b >= 0)])
    season = np.concatenate([season_a[season_a >= 0], season_b[season_b >= 0]])
    n_years = opens.shape[1]
    customer, season = np.repeat(customer, n_years), np.repeat(season, n_years)
    year = np.tile(np.arange(n_years), len(customer) // n_years)
    # Mostly 2-6 purchases a season; now and then a season is skipped.
    n_buys = np.where(rng.random(len(customer)) < 0.1, 0, 2 + rng.poisson(2, len(customer)))
    customer, season, year = (np.repeat(a, n_buys) for a in (customer, season, year))
    season_open, season_close = opens[season, year], closes[season, year]
    t = season_open + rng.random(len(customer)) * (season_close - season_open)
    # New seasonal customers signed up with a purchase (their signup lies in a season).
    signup_buyer = np.flatnonzero(people["buys_at_signup"].to_numpy())
    signup_t = people["signup_day"].to_numpy()[signup_buyer] + 0.5
    return np.concatenate([customer, signup_buyer]), np.concatenate([t, signup_t])


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


def _price_orders(
    rng: np.random.Generator, orders: pd.DataFrame, people: pd.DataFrame
) -> pd.DataFrame:
    """Gross price from unit value and quantity; amount is what was paid after discount."""
    c = orders["customer"].to_numpy()
    gross = (
        people["unit_value"].to_numpy()[c]
        * orders["quantity"].to_numpy()
        * rng.lognormal(0.0, 0.3, len(orders))
        * orders["value_factor"].to_numpy()
    )
    gross = np.round(np.maximum(gross, 1.0), 2)
    discount = np.round(gross * orders["discount_rate"].to_numpy(), 2)
    return orders.assign(amount=gross - discount, discount=discount)


def _draw_refunds(
    rng: np.random.Generator, orders: pd.DataFrame, people: pd.DataFrame
) -> pd.DataFrame:
    """Partial or full refunds of earlier orders, a little more often in financial distress."""
    n = len(orders)
    distressed = (orders["episode_reason"] == "financial_distress").to_numpy()
    probability = 0.01 + np.where(distressed, 0.15 * orders["strength"].to_numpy(), 0.0)
    refunded = orders.loc[rng.random(n) < probability]
    m = len(refunded)
    # At least a day later, so the refund always follows the order it returns.
    t = refunded["t"].to_numpy() + rng.uniform(1, 14, m)
    # A refund is never more than the order it returns, hence never above the max purchase.
    amount = -np.minimum(
        np.round(refunded["amount"].to_numpy() * rng.uniform(0.2, 1.0, m), 2),
        refunded["amount"].to_numpy(),
    )
    refunds = refunded.assign(
        t=t,
        amount=amount,
        discount=0.0,
        quantity=1 + np.floor(rng.random(m) * refunded["quantity"].to_numpy()).astype(np.int64),
        payment=PAYMENT_STATUSES.index("ok"),
    )
    active_end = people["active_end"].to_numpy()[refunds["customer"].to_numpy()]
    return refunds.loc[np.floor(refunds["t"].to_numpy()) < active_end]


# --- interactions ----------------------------------------------------------------------------


def _poisson_events(
    rng: np.random.Generator, rate: np.ndarray, opens: np.ndarray, closes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Homogeneous Poisson events per customer on [opens, closes); returns (customer, t)."""
    span = np.maximum(closes - opens, 0.0)
    counts = rng.poisson(np.nan_to_num(rate * span))
    customer = np.repeat(np.arange(len(rate)), counts)
    t = opens[customer] + rng.random(len(customer)) * span[customer]
    return customer, t


def _contacts(
    rng: np.random.Generator, customer: np.ndarray, t: np.ndarray, kind: str
) -> pd.DataFrame:
    """Contacts of one kind with channel drawn from that kind's channel mix."""
    n = len(customer)
    return pd.DataFrame(
        {
            "customer": customer,
            "t": t,
            "kind": INTERACTION_KINDS.index(kind),
            "channel": rng.choice(len(CONTACT_CHANNELS), size=n, p=_CONTACT_CHANNEL_MIX[kind]),
            "satisfaction": np.nan,
            "resolved": -1,  # -1 not applicable, 0 False, 1 True
            "resolution_hours": np.nan,
            "responded": -1,
        }
    )


def _draw_interactions(rng: np.random.Generator, people: pd.DataFrame, n_days: int) -> pd.DataFrame:
    """Baseline contacts for everyone plus the decline-window contacts of each reason."""
    n = len(people)
    opens = people["active_start"].to_numpy()
    closes = people["active_end"].to_numpy()
    constant = np.ones(n)

    tickets = _contacts(
        rng,
        *_poisson_events(rng, people["ticket_rate"].to_numpy(), opens, closes),
        "support_ticket",
    )
    complaints = _contacts(
        rng, *_poisson_events(rng, people["complaint_rate"].to_numpy(), opens, closes), "complaint"
    )
    issues = _resolve_issues(rng, pd.concat([tickets, complaints], ignore_index=True), 0.87)
    surveys = _answer_surveys(
        rng,
        _contacts(rng, *_poisson_events(rng, _SURVEYS_PER_DAY * constant, opens, closes), "survey"),
        people,
    )
    # Marketing keeps contacting churners until the end; they simply stop answering.
    outreach = _respond_to_outreach(
        rng,
        _contacts(
            rng,
            *_poisson_events(rng, _OUTREACH_PER_DAY * constant, opens, np.full(n, float(n_days))),
            "outreach",
        ),
        people,
    )
    price_complaints = _contacts(
        rng,
        *_poisson_events(rng, _PRICE_COMPLAINTS_PER_DAY * constant, opens, closes),
        "price_complaint",
    )
    price_complaints = _resolve_issues(rng, price_complaints, 0.9)
    everyday = pd.concat([issues, surveys, outreach, price_complaints], ignore_index=True)
    everyday = _sour_contacts_in_poor_interaction(rng, everyday, people)
    return pd.concat(
        [
            everyday,
            _poor_interaction_contacts(rng, people),
            _competitor_price_complaints(rng, people),
        ],
        ignore_index=True,
    )


def _resolve_issues(
    rng: np.random.Generator, issues: pd.DataFrame, resolved_share: float
) -> pd.DataFrame:
    """Resolve a share of issues, typically within about a day."""
    n = len(issues)
    resolved = rng.random(n) < resolved_share
    hours = rng.lognormal(np.log(16), 0.6, n)
    return issues.assign(
        resolved=resolved.astype(int), resolution_hours=np.where(resolved, hours, np.nan)
    )


def _answer_surveys(
    rng: np.random.Generator, surveys: pd.DataFrame, people: pd.DataFrame
) -> pd.DataFrame:
    """Integer 1-5 scores around the customer's usual satisfaction."""
    mean = people["satisfaction_mean"].to_numpy()[surveys["customer"].to_numpy()]
    score = np.clip(np.round(mean + rng.normal(0, 0.6, len(surveys))), 1, 5)
    return surveys.assign(satisfaction=score)


def _respond_to_outreach(
    rng: np.random.Generator, outreach: pd.DataFrame, people: pd.DataFrame
) -> pd.DataFrame:
    """Customers answer marketing at their usual rate while active, never after churning."""
    c = outreach["customer"].to_numpy()
    still_customer = outreach["t"].to_numpy() < people["active_end"].to_numpy()[c]
    answers = rng.random(len(outreach)) < people["outreach_response"].to_numpy()[c]
    return outreach.assign(responded=(answers & still_customer).astype(int))


def _in_poor_interaction_episode(
    contacts: pd.DataFrame, people: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray]:
    """Which contacts fall inside a poor-interaction episode, and its strength there."""
    c = contacts["customer"].to_numpy()
    t = contacts["t"].to_numpy()
    inside = (
        (people["episode_reason"].to_numpy()[c] == "poor_interaction")
        & (t >= people["episode_start"].to_numpy()[c])
        & (t < people["episode_end"].to_numpy()[c])
    )
    return inside, np.where(inside, people["episode_strength"].to_numpy()[c], 0.0)


def _sour_contacts_in_poor_interaction(
    rng: np.random.Generator, contacts: pd.DataFrame, people: pd.DataFrame
) -> pd.DataFrame:
    """During poor interaction, scores drop, issues stay open, outreach goes unanswered."""
    n = len(contacts)
    inside, strength = _in_poor_interaction_episode(contacts, people)
    kind = contacts["kind"].to_numpy()
    is_survey = kind == INTERACTION_KINDS.index("survey")
    is_outreach = kind == INTERACTION_KINDS.index("outreach")
    is_issue = contacts["resolved"].to_numpy() >= 0

    unhappy = inside & is_survey & (rng.random(n) < strength)
    silent = inside & is_outreach & (rng.random(n) < 0.85 * strength)
    left_open = inside & is_issue & (rng.random(n) < 0.5 * strength)
    return contacts.assign(
        satisfaction=np.where(unhappy, rng.integers(1, 3, n), contacts["satisfaction"]),
        responded=np.where(silent, 0, contacts["responded"]),
        resolved=np.where(left_open, 0, contacts["resolved"]),
        resolution_hours=np.where(left_open, np.nan, contacts["resolution_hours"]),
    )


def _episode_events(
    rng: np.random.Generator, people: pd.DataFrame, reason: str, counts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``counts`` events per customer inside their episode, denser towards its end."""
    has_episode = (people["episode_reason"] == reason).to_numpy()
    counts = np.where(has_episode, counts, 0)
    customer = np.repeat(np.arange(len(people)), counts)
    opens = people["episode_start"].to_numpy()[customer]
    closes = people["episode_end"].to_numpy()[customer]
    return customer, opens + np.sqrt(rng.random(len(customer))) * (closes - opens)


def _poor_interaction_contacts(rng: np.random.Generator, people: pd.DataFrame) -> pd.DataFrame:
    """Extra tickets and complaints, mostly unresolved or slow, and a bad survey."""
    n = len(people)
    strength = people["episode_strength"].to_numpy()
    customer, t = _episode_events(
        rng, people, "poor_interaction", rng.binomial(rng.integers(3, 7, n), strength)
    )
    m = len(customer)
    kind = np.where(rng.random(m) < 0.55, "support_ticket", "complaint")
    issues = pd.concat(
        [
            _contacts(rng, customer[kind == k], t[kind == k], k)
            for k in ("support_ticket", "complaint")
        ],
        ignore_index=True,
    )
    issue_strength = strength[issues["customer"].to_numpy()]
    resolved = rng.random(len(issues)) >= 0.8 * issue_strength
    slow = rng.random(len(issues)) < issue_strength
    hours = np.where(
        slow, rng.uniform(72, 300, len(issues)), rng.lognormal(np.log(16), 0.6, len(issues))
    )
    issues = issues.assign(
        resolved=resolved.astype(int), resolution_hours=np.where(resolved, hours, np.nan)
    )
    survey_customer, survey_t = _episode_events(
        rng, people, "poor_interaction", (rng.random(n) < strength).astype(int)
    )
    bad_surveys = _contacts(rng, survey_customer, survey_t, "survey").assign(
        satisfaction=rng.integers(1, 3, len(survey_customer)).astype(float)
    )
    return pd.concat([issues, bad_surveys], ignore_index=True)


def _competitor_price_complaints(rng: np.random.Generator, people: pd.DataFrame) -> pd.DataFrame:
    """Customers tempted by a competitor complain about prices one to three times."""
    strength = people["episode_strength"].to_numpy()
    customer, t = _episode_events(rng, people, "competitor_offer", rng.binomial(3, strength))
    complaints = _contacts(rng, customer, t, "price_complaint")
    # Price complaints are rarely settled to the customer's liking.
    return _resolve_issues(rng, complaints, 0.6)


# --- output frames ----------------------------------------------------------------------------


def _timestamps(start: pd.Timestamp, days: np.ndarray) -> np.ndarray:
    """Float days since ``start`` to naive datetime64[ns], floored to whole seconds."""
    seconds = np.floor(np.asarray(days, dtype=float) * 86_400).astype(np.int64)
    return np.datetime64(start.to_datetime64(), "ns") + seconds.astype("timedelta64[s]").astype(
        "timedelta64[ns]"
    )


def _time_of_day(rng: np.random.Generator, channel: np.ndarray) -> np.ndarray:
    """Fraction of a day at which an order happens, within the channel's hours."""
    first_hour = np.array([_CHANNEL_HOURS[ch][0] for ch in PURCHASE_CHANNELS], dtype=float)
    open_hours = np.array([_CHANNEL_HOURS[ch][1] for ch in PURCHASE_CHANNELS], dtype=float)
    hours = first_hour[channel] + rng.random(len(channel)) * open_hours[channel]
    return np.minimum(hours, 23.999) / 24


def _transactions_frame(
    rng: np.random.Generator, orders: pd.DataFrame, customer_ids: np.ndarray, start: pd.Timestamp
) -> pd.DataFrame:
    channel = orders["channel"].to_numpy()
    days = np.floor(orders["t"].to_numpy()) + _time_of_day(rng, channel)
    order = np.lexsort((days, orders["customer"].to_numpy()))
    n = len(orders)
    return pd.DataFrame(
        {
            "customer_id": customer_ids[orders["customer"].to_numpy()[order]],
            "timestamp": _timestamps(start, days[order]),
            "amount": orders["amount"].to_numpy(dtype=float)[order],
            "order_id": np.char.add("O", np.char.zfill(np.arange(1, n + 1).astype(str), 8)),
            "quantity": orders["quantity"].to_numpy(dtype=np.int64)[order],
            "category": np.array(CATEGORIES)[orders["category"].to_numpy()[order]],
            "discount": orders["discount"].to_numpy(dtype=float)[order],
            "channel": np.array(PURCHASE_CHANNELS)[channel[order]],
            "region": np.array(REGIONS)[orders["region"].to_numpy()[order]],
            "payment_status": np.array(PAYMENT_STATUSES)[orders["payment"].to_numpy()[order]],
        }
    )


def _nullable_boolean(code: np.ndarray) -> pd.arrays.BooleanArray:
    """-1/0/1 codes to a nullable boolean array (-1 is <NA>)."""
    return pd.arrays.BooleanArray(code == 1, code < 0)


def _interactions_frame(
    contacts: pd.DataFrame, customer_ids: np.ndarray, start: pd.Timestamp
) -> pd.DataFrame:
    contacts = contacts.iloc[
        np.lexsort((contacts["t"].to_numpy(), contacts["customer"].to_numpy()))
    ]
    return pd.DataFrame(
        {
            "customer_id": customer_ids[contacts["customer"].to_numpy()],
            "timestamp": _timestamps(start, contacts["t"].to_numpy()),
            "kind": np.array(INTERACTION_KINDS)[contacts["kind"].to_numpy()],
            "channel": np.array(CONTACT_CHANNELS)[contacts["channel"].to_numpy()],
            "satisfaction": contacts["satisfaction"].to_numpy(dtype=float),
            "resolved": _nullable_boolean(contacts["resolved"].to_numpy()),
            "resolution_hours": contacts["resolution_hours"].to_numpy(dtype=float),
            "responded": _nullable_boolean(contacts["responded"].to_numpy()),
        }
    )


def _customers_frame(
    people: pd.DataFrame, customer_ids: np.ndarray, start: pd.Timestamp
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": customer_ids,
            "signup_date": _timestamps(start, people["signup_day"].to_numpy()),
            "region": np.array(REGIONS)[people["home_region"].to_numpy()],
        }
    )


def _truth_frame(
    people: pd.DataFrame, customer_ids: np.ndarray, start: pd.Timestamp
) -> pd.DataFrame:
    churned = people["churned"].to_numpy()
    churn_date = _timestamps(start, np.nan_to_num(people["churn_day"].to_numpy()))
    return pd.DataFrame(
        {
            "customer_id": customer_ids,
            "churned": churned,
            "churn_date": np.where(churned, churn_date, np.datetime64("NaT", "ns")),
            "reason": np.where(churned, people["reason"].to_numpy(), None),
            "segment": np.array(list(CUSTOMER_TYPES))[people["segment_code"].to_numpy()],
        }
    )


def as_of(business: SimulatedBusiness, date: str | pd.Timestamp) -> SimulatedBusiness:
    """The business as its systems knew it on the morning of ``date``.

    Rows before ``date`` only, so running this for consecutive days emits the day-by-day
    increments a nightly job sees. The truth file is kept whole: it is for evaluation.
    """
    cutoff = pd.Timestamp(date).normalize()
    return SimulatedBusiness(
        transactions=business.transactions.loc[
            business.transactions["timestamp"] < cutoff
        ].reset_index(drop=True),
        interactions=business.interactions.loc[
            business.interactions["timestamp"] < cutoff
        ].reset_index(drop=True),
        customers=business.customers.loc[business.customers["signup_date"] < cutoff].reset_index(
            drop=True
        ),
        truth=business.truth,
        subscriptions=_subscriptions_as_of(business.subscriptions, cutoff),
    )


def _subscriptions_as_of(
    subscriptions: pd.DataFrame | None, cutoff: pd.Timestamp
) -> pd.DataFrame | None:
    """Rows begun before ``cutoff``; an end not yet reached is not known (still running)."""
    if subscriptions is None:
        return None
    known = subscriptions.loc[subscriptions["start"] < cutoff].reset_index(drop=True)
    ended = known["end"] < cutoff
    return known.assign(
        end=known["end"].where(ended),
        cancel_reason=known["cancel_reason"].where(ended, None),
    )
