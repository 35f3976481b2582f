"""What every simulator returns: the tables of a business, their vocabularies, ``as_of``."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

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


def as_of(business: SimulatedBusiness, date: str | pd.Timestamp) -> SimulatedBusiness:
    """The business as its systems knew it on the morning of ``date``.

    Rows before ``date`` only, so running this for consecutive days emits the day-by-day
    increments a nightly job sees. The truth file is kept whole: it is for evaluation.

    Args:
        business: A simulated business of any scenario.
        date: The morning to cut at; its time of day is ignored.

    Returns:
        The cut business; subscriptions that end on or after ``date`` are still running.
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
