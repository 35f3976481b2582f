"""Third simulated business: a subscription product with usage events and cancellations.

A social-network-like service: each account pays a monthly or annual plan (one charge
per billing period, as ``transactions``), uses the product (``login``, ``post``,
``like``, ``comment``, ``message``, ``share``, ``search``, ``ad_view`` events as
``interactions``, next to support tickets, complaints and price complaints), and may
cancel at a renewal. Cancellations are recorded in a ``subscriptions`` table (one row
per period of one plan; a plan change starts a new row when the old one ends).

Before a cancellation, in a window of 30-120 days, behaviour shows the true loss reason
(shares as documented in ``domain.md``): usage declines for every reason (most for
``unidentified``, pure fading); poor interaction brings tickets and complaints that stay
unresolved; a competitor offer, price complaints; a business change, a shift of what the
account uses and often a downgrade; relocation, a new billing region; financial
distress, failed payments and a downgrade. Low-engagement accounts cancel more often.
Some stayers live through a look-alike dip and recover, so no signal is clean.

Usage is drawn per account-day as independent Poisson counts per event kind, so
two events of one kind in the same second happen, as in real logs. One
``np.random.Generator`` is threaded through every draw in a fixed order.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.subscriptions import add_months
from models.reasons import REASON_SHARES
from simulation._common import customer_ids, observed_period, timestamps
from simulation.business import REGIONS, SimulatedBusiness

USAGE_KINDS = ("login", "post", "like", "comment", "message", "share", "search", "ad_view")
_USAGE_WEIGHTS = np.array([0.30, 0.06, 0.22, 0.08, 0.14, 0.04, 0.06, 0.10])
# a business change moves usage from creating and talking to browsing
_SHIFTED_WEIGHTS = np.array([0.30, 0.01, 0.10, 0.02, 0.04, 0.01, 0.22, 0.30])
PLANS = {"basic": 9.99, "plus": 14.99, "premium": 24.99}
_PLAN_SHARES = (0.5, 0.35, 0.15)
ANNUAL_SHARE = 0.25
ANNUAL_MONTHS_PAID = 10  # an annual plan costs ten months
_CANCEL_PER_MONTH = 0.03  # per monthly renewal, for a typical account
_CANCEL_PER_YEAR = 0.3  # per annual renewal
# usage lost by the cancellation (at full window depth), per reason
_DECLINE = {
    "poor_interaction": 0.55,
    "unidentified": 0.85,
    "competitor_offer": 0.45,
    "business_change": 0.5,
    "relocation": 0.6,
    "financial_distress": 0.5,
}
_CANCEL_REASON_TEXT = {
    "poor_interaction": "bad_support",
    "unidentified": "other",
    "competitor_offer": "too_expensive",
    "business_change": "no_longer_needed",
    "relocation": "moving",
    "financial_distress": "cannot_afford",
}
_FALSE_ALARM_SHARE = 0.15
_TICKETS_PER_DAY = 1 / 150
_COMPLAINTS_PER_DAY = 1 / 1500
_PRICE_COMPLAINTS_PER_DAY = 1 / 3000
_EVENTS_PER_DAY = 0.8  # median account


def simulate_subscription(
    n_customers: int = 20_000,
    seed: int = 0,
    start: str = "2023-01-01",
    end: str = "2025-12-31",
) -> SimulatedBusiness:
    """Simulate a subscription business (see the module doc).

    About half the accounts subscribed before ``start`` (their rows in the tables begin
    at ``start``, their subscription rows keep the true start); accounts whose
    subscription ended before ``start`` are not in the data. An end after ``end`` is not
    known yet: the row is still running.

    Args:
        n_customers: Number of accounts to draw (those gone before ``start`` are dropped).
        seed: Seed of the only random generator used; equal seeds give equal frames.
        start: First day of the observed period.
        end: Last instant of the observed period.

    Returns:
        The transactions (charges), interactions, customers, truth and subscriptions.

    Raises:
        ValueError: If ``n_customers`` < 1 or the period is not longer than 180 days.
    """
    start_ts, end_ts, n_days = observed_period(n_customers, start, end)
    rng = np.random.default_rng(seed)
    people = _draw_accounts(rng, n_customers, n_days, start_ts)
    periods = _draw_periods(rng, people, start_ts)
    charges = _draw_charges(rng, periods, people, start_ts, end_ts)
    usage = _draw_usage(rng, people, n_days)
    service = _draw_service(rng, people, n_days)

    keep = people["end_day"] > 0  # left before the data starts: not in the data
    ids = customer_ids(n_customers)
    kept_ids = ids[keep.to_numpy()]
    data_end = end_ts.to_datetime64()
    churned = people["end"].to_numpy() <= data_end
    truth = pd.DataFrame(
        {
            "customer_id": ids,
            "churned": churned,
            "churn_date": np.where(churned, people["end"].to_numpy(), np.datetime64("NaT", "ns")),
            "reason": np.where(churned, people["reason"].to_numpy(), None),
            "segment": np.where(people["annual"], "vip", "regular"),
        }
    )
    events = pd.concat([usage, service], ignore_index=True)
    events = events.iloc[np.lexsort((events["t"].to_numpy(), events["customer"].to_numpy()))]
    interactions = pd.DataFrame(
        {
            "customer_id": ids[events["customer"].to_numpy()],
            "timestamp": timestamps(start_ts, events["t"].to_numpy()),
            "kind": events["kind"].to_numpy(),
            "channel": events["channel"].to_numpy(),
            "resolved": pd.array(events["resolved"].to_numpy(), dtype="boolean"),
        }
    )
    periods = periods.assign(customer_id=ids[periods["customer"].to_numpy()])
    periods = periods.loc[periods["start"] <= data_end]  # a plan change still to come
    periods["end"] = periods["end"].where(periods["end"] <= data_end)
    last = periods["end"].notna() & periods["last"]
    subscriptions = pd.DataFrame(
        {
            "customer_id": periods["customer_id"],
            "start": periods["start"],
            "end": periods["end"],
            "plan": periods["plan"],
            "amount": periods["amount"],
            "billing_period": np.where(periods["months"] == 12, "annual", "monthly"),
            "cancel_reason": np.where(last & periods["reason_recorded"], periods["reason"], None),
        }
    ).reset_index(drop=True)
    customers = pd.DataFrame(
        {
            "customer_id": ids,
            "signup_date": people["start"].to_numpy(),
            "region": np.array(REGIONS)[people["home_region"].to_numpy()],
        }
    )
    transactions = charges.assign(customer_id=ids[charges["customer"].to_numpy()])
    transactions = transactions[
        ["customer_id", "timestamp", "amount", "order_id", "channel", "region", "payment_status"]
    ]

    def kept(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.loc[frame["customer_id"].isin(kept_ids)].reset_index(drop=True)

    return SimulatedBusiness(
        transactions=kept(transactions),
        interactions=kept(interactions),
        customers=kept(customers),
        truth=kept(truth),
        subscriptions=kept(subscriptions),
    )


def _draw_accounts(
    rng: np.random.Generator, n: int, n_days: int, start: pd.Timestamp
) -> pd.DataFrame:
    """Start, plan, engagement, the cancellation (if any) and its reason and window."""
    start_day = np.floor(rng.uniform(-540, n_days - 60, n))
    started = timestamps(start, start_day + rng.uniform(0.3, 0.9, n))
    annual = rng.random(n) < ANNUAL_SHARE
    plan = rng.choice(len(PLANS), n, p=_PLAN_SHARES)
    engagement = rng.normal(0, 1, n)  # latent: drives usage and (inversely) cancellation
    appetite = np.exp(-0.6 * engagement + rng.normal(0, 0.4, n))
    # cancellation at the k-th renewal: geometric in renewals
    per_renewal = np.where(annual, _CANCEL_PER_YEAR, _CANCEL_PER_MONTH) * appetite
    renewals = rng.geometric(np.clip(per_renewal, 1e-4, 0.9))
    months = np.where(annual, 12, 1)
    end = add_months(started, renewals * months)
    end_day = (end - start.to_datetime64()) / np.timedelta64(1, "D")
    reason = rng.choice(list(REASON_SHARES), n, p=list(REASON_SHARES.values()))
    # the decline before the cancellation; never before the account began
    window = np.minimum(rng.uniform(30, 120, n), np.maximum(end_day - start_day - 5, 5))
    false_alarm = rng.random(n) < _FALSE_ALARM_SHARE
    alarm_start = rng.uniform(0, n_days, n)
    return pd.DataFrame(
        {
            "start_day": start_day,
            "start": started,
            "annual": annual,
            "plan": plan,
            "rate": _EVENTS_PER_DAY * np.exp(0.7 * engagement - 0.245),
            "weights": list(rng.dirichlet(_USAGE_WEIGHTS * 30, n)),
            "end": end,
            "end_day": end_day,
            "renewals": renewals,
            "reason": reason,
            "window_start": end_day - window,
            "false_alarm_start": np.where(false_alarm, alarm_start, np.inf),
            "false_alarm_days": rng.uniform(30, 90, n),
            "home_region": rng.integers(0, len(REGIONS), n),
        }
    )


def _draw_periods(
    rng: np.random.Generator, people: pd.DataFrame, start: pd.Timestamp
) -> pd.DataFrame:
    """Subscription rows: one per plan; a downgrade (business change or financial
    distress, often) or a random plan change (some accounts) splits the subscription."""
    n = len(people)
    months = np.where(people["annual"], 12, 1)
    renewals = people["renewals"].to_numpy()
    reason = people["reason"].to_numpy()
    distress = np.isin(reason, ("business_change", "financial_distress"))
    plan = people["plan"].to_numpy()
    # downgrade a few renewals before the end, into the decline window
    downgrade = distress & (plan > 0) & (renewals >= 3) & (rng.random(n) < 0.6) & (months == 1)
    change_at = np.where(downgrade, renewals - rng.integers(1, 3, n), -1)
    random_change = ~downgrade & (renewals >= 4) & (rng.random(n) < 0.12)
    change_at = np.where(random_change, rng.integers(1, np.maximum(renewals, 2)), change_at)
    new_plan = np.where(
        downgrade,
        plan - 1,
        np.clip(plan + rng.choice([-1, 1], n), 0, len(PLANS) - 1),
    )
    prices = np.array(list(PLANS.values()))
    names = np.array(list(PLANS))
    paid = np.where(months == 12, ANNUAL_MONTHS_PAID, 1)
    split = change_at > 0
    change_time = add_months(people["start"].to_numpy(), np.maximum(change_at, 0) * months)
    rows = []
    for first in (True, False):
        chosen = np.ones(n, dtype=bool) if first else split
        idx = np.flatnonzero(chosen)
        p = plan[idx] if first else new_plan[idx]
        rows.append(
            pd.DataFrame(
                {
                    "customer": idx,
                    "start": people["start"].to_numpy()[idx] if first else change_time[idx],
                    "end": np.where(split[idx], change_time[idx], people["end"].to_numpy()[idx])
                    if first
                    else people["end"].to_numpy()[idx],
                    "plan": names[p],
                    "amount": np.round(prices[p] * paid[idx], 2),
                    "months": months[idx],
                    "last": ~split[idx] if first else np.ones(len(idx), dtype=bool),
                    "reason": np.array([_CANCEL_REASON_TEXT[r] for r in reason[idx]], dtype=object),
                    "reason_recorded": rng.random(len(idx)) < 0.5,
                }
            )
        )
    periods = pd.concat(rows, ignore_index=True)
    return periods.sort_values(["customer", "start"], kind="stable").reset_index(drop=True)


def _draw_charges(
    rng: np.random.Generator,
    periods: pd.DataFrame,
    people: pd.DataFrame,
    start: pd.Timestamp,
    end: pd.Timestamp,
) -> pd.DataFrame:
    """One charge per billing period begun inside the data; failed payments (retried three
    days later) and a new billing region in the decline window of those reasons."""
    length = (periods["end"] - periods["start"]) / pd.Timedelta(days=1)
    # a period too many at most; charges on or after the row's end are dropped below
    count = (np.ceil(length / (30.44 * periods["months"])) + 1).astype(int)
    row = np.repeat(np.arange(len(periods)), count)
    k = np.arange(len(row)) - np.repeat(np.cumsum(count) - count, count)
    p = periods.iloc[row]
    when = add_months(p["start"].to_numpy(), k * p["months"].to_numpy())
    inside = (when >= start.to_datetime64()) & (when <= end.to_datetime64())
    inside &= when < p["end"].to_numpy()
    p, when = p.loc[inside], when[inside]
    customer = p["customer"].to_numpy()
    day = (when - start.to_datetime64()) / np.timedelta64(1, "D")
    in_window = (day >= people["window_start"].to_numpy()[customer]) & (
        day < people["end_day"].to_numpy()[customer]
    )
    reason = people["reason"].to_numpy()[customer]
    failed = in_window & (reason == "financial_distress") & (rng.random(len(day)) < 0.6)
    failed |= rng.random(len(day)) < 0.005
    moved = in_window & (reason == "relocation")
    home = people["home_region"].to_numpy()[customer]
    region = np.where(moved, (home + 1 + rng.integers(0, len(REGIONS) - 1, len(day))) % 5, home)
    base = pd.DataFrame(
        {
            "customer": customer,
            "timestamp": when,
            "amount": p["amount"].to_numpy(),
            "channel": "online",
            "region": np.array(REGIONS)[region],
            "payment_status": np.where(failed, "failed", "ok"),
        }
    )
    retries = base.loc[failed].assign(
        timestamp=lambda f: f["timestamp"] + pd.Timedelta(days=3), payment_status="ok"
    )
    retries = retries.loc[retries["timestamp"] <= end]
    charges = pd.concat([base, retries], ignore_index=True)
    charges = charges.iloc[
        np.lexsort((charges["timestamp"].to_numpy(), charges["customer"].to_numpy()))
    ].reset_index(drop=True)
    charges["order_id"] = np.char.add(
        "I", np.char.zfill(np.arange(1, len(charges) + 1).astype(str), 9)
    )
    return charges


def _account_days(people: pd.DataFrame, n_days: int) -> tuple[np.ndarray, np.ndarray]:
    """(account, day) of every day an account is subscribed inside the data."""
    first = np.clip(np.ceil(people["start_day"].to_numpy()), 0, n_days)
    last = np.clip(np.floor(people["end_day"].to_numpy()), 0, n_days)
    length = np.maximum(last - first, 0).astype(int)
    account = np.repeat(np.arange(len(people)), length)
    day = np.arange(len(account)) - np.repeat(np.cumsum(length) - length, length)
    return account, day + np.repeat(first.astype(int), length)


def _decline(
    people: pd.DataFrame, account: np.ndarray, day: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per account-day: the share of usage kept, and how far into a business change."""
    window_start = people["window_start"].to_numpy()[account]
    end_day = people["end_day"].to_numpy()[account]
    progress = np.clip((day - window_start) / np.maximum(end_day - window_start, 1), 0, 1)
    depth = np.array([_DECLINE[r] for r in people["reason"].to_numpy()])[account]
    kept = 1 - depth * progress
    alarm = people["false_alarm_start"].to_numpy()[account]
    alarm_days = people["false_alarm_days"].to_numpy()[account]
    into = (day - alarm) / alarm_days
    dip = np.where((into >= 0) & (into < 1), 0.45 * np.sin(np.pi * np.clip(into, 0, 1)), 0.0)
    shift = np.where(people["reason"].to_numpy()[account] == "business_change", progress, 0.0)
    return kept * (1 - dip), shift


def _draw_usage(rng: np.random.Generator, people: pd.DataFrame, n_days: int) -> pd.DataFrame:
    account, day = _account_days(people, n_days)
    kept, shift = _decline(people, account, day)
    rate = people["rate"].to_numpy()[account] * kept
    weights = np.stack(people["weights"].to_numpy())
    frames = []
    for k, kind in enumerate(USAGE_KINDS):
        share = weights[account, k] * (1 - shift) + _SHIFTED_WEIGHTS[k] * shift
        counts = rng.poisson(rate * share)
        rows = np.repeat(np.arange(len(counts)), counts)
        frames.append(
            pd.DataFrame(
                {
                    "customer": account[rows],
                    "t": day[rows] + rng.random(len(rows)),
                    "kind": kind,
                    "channel": np.where(rng.random(len(rows)) < 0.7, "app", "web"),
                    "resolved": pd.array([pd.NA] * len(rows), dtype="boolean"),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _draw_service(rng: np.random.Generator, people: pd.DataFrame, n_days: int) -> pd.DataFrame:
    """Tickets, complaints and price complaints: a low base rate, more (and unresolved)
    in a poor-interaction window, price complaints in a competitor-offer window."""
    account, day = _account_days(people, n_days)
    window_start = people["window_start"].to_numpy()[account]
    reason = people["reason"].to_numpy()[account]
    in_window = day >= window_start
    poor = in_window & (reason == "poor_interaction")
    competitor = in_window & (reason == "competitor_offer")
    frames = []
    for kind, base, boost, boosted in (
        ("support_ticket", _TICKETS_PER_DAY, 1 / 20, poor),
        ("complaint", _COMPLAINTS_PER_DAY, 1 / 45, poor),
        ("price_complaint", _PRICE_COMPLAINTS_PER_DAY, 1 / 40, competitor),
    ):
        happens = rng.random(len(day)) < np.where(boosted, boost, base)
        unresolved = np.where(boosted[happens], 0.65, 0.1)
        frames.append(
            pd.DataFrame(
                {
                    "customer": account[happens],
                    "t": day[happens] + rng.random(int(happens.sum())),
                    "kind": kind,
                    "channel": np.where(rng.random(int(happens.sum())) < 0.6, "email", "chat"),
                    "resolved": pd.array(
                        rng.random(int(happens.sum())) >= unresolved, dtype="boolean"
                    ),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)
