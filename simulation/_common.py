"""Helpers the simulators share: the period check, ids, timestamps, contacts, prices,
refunds and the observable frames (one input contract and one set of dtypes for all).

Every helper that draws takes the caller's ``np.random.Generator`` and draws in a fixed
order, so moving a simulator onto these helpers leaves its output unchanged.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from simulation.business import (
    CATEGORIES,
    CONTACT_CHANNELS,
    INTERACTION_KINDS,
    PAYMENT_STATUSES,
    PURCHASE_CHANNELS,
    REGIONS,
    SimulatedBusiness,
)
from simulation.profiles import CUSTOMER_TYPES

# Every simulator needs a period longer than this (churners need history before they leave).
MIN_PERIOD_DAYS = 180

CONTACT_CHANNEL_MIX: dict[str, tuple[float, float, float]] = {  # email, phone, chat
    "support_ticket": (0.4, 0.35, 0.25),
    "complaint": (0.35, 0.5, 0.15),
    "survey": (0.8, 0.0, 0.2),
    "outreach": (0.7, 0.2, 0.1),
    "price_complaint": (0.4, 0.4, 0.2),
}
# Opening hours (first hour, length in hours) per purchase channel.
_CHANNEL_HOURS = {"store": (9, 11), "online": (0, 24), "phone": (8, 10)}


def observed_period(
    n_customers: int, start: str, end: str, min_days: int = MIN_PERIOD_DAYS
) -> tuple[pd.Timestamp, pd.Timestamp, int]:
    """Check a simulator's size and period.

    Args:
        n_customers: Number of customers asked for.
        start: First day of the observed period.
        end: Last instant of the observed period.
        min_days: The period must be longer than this many days.

    Returns:
        ``start`` and ``end`` as timestamps, and the whole days between them.

    Raises:
        ValueError: If ``n_customers`` < 1 or the period is not longer than ``min_days``.
    """
    start_ts, end_ts = pd.Timestamp(start), pd.Timestamp(end)
    n_days = (end_ts - start_ts).days
    if n_customers < 1:
        raise ValueError(f"n_customers must be at least 1, got {n_customers}")
    if n_days <= min_days:
        raise ValueError(f"period {start}..{end} must be longer than {min_days} days")
    return start_ts, end_ts, n_days


def customer_ids(n_customers: int) -> np.ndarray:
    """``C000001``... ids; fixed width, so sorting ids as text keeps customer order."""
    width = max(6, len(str(n_customers)))
    return np.array([f"C{i:0{width}d}" for i in range(1, n_customers + 1)])


def timestamps(start: pd.Timestamp, days: np.ndarray) -> np.ndarray:
    """Float days since ``start`` to naive datetime64[ns], floored to whole seconds."""
    seconds = np.floor(np.asarray(days, dtype=float) * 86_400).astype(np.int64)
    return np.datetime64(start.to_datetime64(), "ns") + seconds.astype("timedelta64[s]").astype(
        "timedelta64[ns]"
    )


def draw_contacts(
    rng: np.random.Generator, customer: np.ndarray, t: np.ndarray, kind: str
) -> pd.DataFrame:
    """Contacts of one kind with channel drawn from that kind's channel mix."""
    n = len(customer)
    return pd.DataFrame(
        {
            "customer": customer,
            "t": t,
            "kind": INTERACTION_KINDS.index(kind),
            "channel": rng.choice(len(CONTACT_CHANNELS), size=n, p=CONTACT_CHANNEL_MIX[kind]),
            "satisfaction": np.nan,
            "resolved": -1,  # -1 not applicable, 0 False, 1 True
            "resolution_hours": np.nan,
            "responded": -1,
        }
    )


def price_orders(
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


def refunds(
    rng: np.random.Generator, refunded: pd.DataFrame, active_end: np.ndarray
) -> pd.DataFrame:
    """Partial or full returns of the ``refunded`` orders, one to fourteen days later.

    Args:
        rng: The simulator's generator.
        refunded: The priced orders that are returned.
        active_end: Day each customer (by index) stops being active; later returns drop.

    Returns:
        One refund row per returned order still inside its customer's active time.
    """
    m = len(refunded)
    amount = refunded["amount"].to_numpy()
    returned = refunded.assign(
        # At least a day later, so the refund always follows the order it returns.
        t=refunded["t"].to_numpy() + rng.uniform(1, 14, m),
        # Never more than the order it returns, hence never above the max purchase.
        amount=-np.minimum(np.round(amount * rng.uniform(0.2, 1.0, m), 2), amount),
        discount=0.0,
        quantity=1 + np.floor(rng.random(m) * refunded["quantity"].to_numpy()).astype(np.int64),
        payment=PAYMENT_STATUSES.index("ok"),
    )
    ends = active_end[returned["customer"].to_numpy()]
    return returned.loc[np.floor(returned["t"].to_numpy()) < ends]


# --- output frames ----------------------------------------------------------------------


def observable_business(
    rng: np.random.Generator,
    orders: pd.DataFrame,
    contact_rows: pd.DataFrame,
    people: pd.DataFrame,
    start: pd.Timestamp,
) -> SimulatedBusiness:
    """The four tables of a retail-like business from its drawn orders, contacts and people.

    Args:
        rng: The simulator's generator (draws each order's time of day).
        orders: Priced orders and refunds by customer index and float day.
        contact_rows: Contacts as from ``draw_contacts``.
        people: One row per customer with signup, region, churn, reason and type.
        start: Day 0 of the simulation.

    Returns:
        Transactions, interactions, customers and truth; customer ``i`` gets id ``i + 1``.
    """
    ids = customer_ids(len(people))
    return SimulatedBusiness(
        transactions=transactions_frame(rng, orders, ids, start),
        interactions=interactions_frame(contact_rows, ids, start),
        customers=customers_frame(people, ids, start),
        truth=truth_frame(people, ids, start),
    )


def _time_of_day(rng: np.random.Generator, channel: np.ndarray) -> np.ndarray:
    """Fraction of a day at which an order happens, within the channel's hours."""
    first_hour = np.array([_CHANNEL_HOURS[ch][0] for ch in PURCHASE_CHANNELS], dtype=float)
    open_hours = np.array([_CHANNEL_HOURS[ch][1] for ch in PURCHASE_CHANNELS], dtype=float)
    hours = first_hour[channel] + rng.random(len(channel)) * open_hours[channel]
    return np.minimum(hours, 23.999) / 24


def transactions_frame(
    rng: np.random.Generator, orders: pd.DataFrame, ids: np.ndarray, start: pd.Timestamp
) -> pd.DataFrame:
    """The ``transactions`` table: orders at a time of day their channel is open."""
    channel = orders["channel"].to_numpy()
    days = np.floor(orders["t"].to_numpy()) + _time_of_day(rng, channel)
    order = np.lexsort((days, orders["customer"].to_numpy()))
    n = len(orders)
    return pd.DataFrame(
        {
            "customer_id": ids[orders["customer"].to_numpy()[order]],
            "timestamp": timestamps(start, days[order]),
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


def interactions_frame(
    contact_rows: pd.DataFrame, ids: np.ndarray, start: pd.Timestamp
) -> pd.DataFrame:
    """The ``interactions`` table, sorted by customer then time."""
    contact_rows = contact_rows.iloc[
        np.lexsort((contact_rows["t"].to_numpy(), contact_rows["customer"].to_numpy()))
    ]
    return pd.DataFrame(
        {
            "customer_id": ids[contact_rows["customer"].to_numpy()],
            "timestamp": timestamps(start, contact_rows["t"].to_numpy()),
            "kind": np.array(INTERACTION_KINDS)[contact_rows["kind"].to_numpy()],
            "channel": np.array(CONTACT_CHANNELS)[contact_rows["channel"].to_numpy()],
            "satisfaction": contact_rows["satisfaction"].to_numpy(dtype=float),
            "resolved": _nullable_boolean(contact_rows["resolved"].to_numpy()),
            "resolution_hours": contact_rows["resolution_hours"].to_numpy(dtype=float),
            "responded": _nullable_boolean(contact_rows["responded"].to_numpy()),
        }
    )


def customers_frame(people: pd.DataFrame, ids: np.ndarray, start: pd.Timestamp) -> pd.DataFrame:
    """The ``customers`` table: signup date and home region."""
    return pd.DataFrame(
        {
            "customer_id": ids,
            "signup_date": timestamps(start, people["signup_day"].to_numpy()),
            "region": np.array(REGIONS)[people["home_region"].to_numpy()],
        }
    )


def truth_frame(people: pd.DataFrame, ids: np.ndarray, start: pd.Timestamp) -> pd.DataFrame:
    """The ground truth: churned, when, the true reason and the customer type."""
    churned = people["churned"].to_numpy()
    churn_date = timestamps(start, np.nan_to_num(people["churn_day"].to_numpy()))
    return pd.DataFrame(
        {
            "customer_id": ids,
            "churned": churned,
            "churn_date": np.where(churned, churn_date, np.datetime64("NaT", "ns")),
            "reason": np.where(churned, people["reason"].to_numpy(), None),
            "segment": np.array(list(CUSTOMER_TYPES))[people["segment_code"].to_numpy()],
        }
    )
