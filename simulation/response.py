"""How simulated customers respond to a retention contact (a treatment-response model).

A contact does not change everyone the same way (Ascarza 2018, "Retention futility"):

- **lost causes** had already left, or leave whatever is said: a call changes nothing;
- **sure things** stay anyway: a call costs money and saves nobody;
- **persuadables** would leave, and a call keeps them; the chance depends on whether the
  action answers their true loss reason (an apology to an aggrieved customer, a tailored
  offer against a competitor's) and on how soon they would leave (a call weeks ahead
  works better than one the week they go);
- **do-not-disturb**: a promotion to a customer with an open grievance raises their risk
  ("do not fan the fire", ``domain.md`` section 5): some who would have stayed leave.

The response of each contacted customer is drawn once, from its own random number, so
the two potential outcomes (called / not called) of a listing are both known: that is
what lets a benchmark state the true effect of the calls beside the measured one.

A persuadable's saved future is their own earlier rhythm continued: their gaps between
purchases and their order amounts, resampled, from the day they would have left to the
end of the data. A do-not-disturb customer stops buying the day they are contacted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.kpis import GRIEVANCE_RULE
from models.reasons import REASONS

# P(saved | would leave, contacted with the action that answers their true reason)
SAVE_IF_ANSWERED = {
    "poor_interaction": 0.55,
    "competitor_offer": 0.40,
    "business_change": 0.25,
    "financial_distress": 0.30,
    "relocation": 0.05,
    "unidentified": 0.15,
}
# the action answers a reason it was not written for: a fraction of the effect remains
MISMATCH_FACTOR = 0.3
# an apology (the grievance rule) answers a poor interaction best of all
APOLOGY_FOR_GRIEVANCE = 0.65
# calls this many days or more before the departure get the full effect; closer, less
LEAD_DAYS_FOR_FULL_EFFECT = 45.0
# P(leaves | would stay, open grievance, offered a promotion instead of an apology)
HARM_IF_PROMOTED_TO_GRIEVANCE = 0.30
# the playbook actions that are promotions (not an apology, a question or a channel)
PROMOTIONS = ("competitor_offer", "business_change", "financial_distress")
GRIEVANCE_DAYS = 60

PERSUADABLE = "persuadable"
SURE_THING = "sure_thing"
LOST_CAUSE = "lost_cause"
DO_NOT_DISTURB = "do_not_disturb"
RESPONSES = (PERSUADABLE, SURE_THING, LOST_CAUSE, DO_NOT_DISTURB)

assert set(SAVE_IF_ANSWERED) == set(REASONS), "one save chance per documented loss reason"


@dataclass(frozen=True)
class Contact:
    """One contact: who, when, and the playbook rule of the action used."""

    customer_id: str
    day: pd.Timestamp
    action_rule: str


def save_chance(reason: str | None, action_rule: str, lead_days: float) -> float:
    """P(a would-be leaver is kept by this contact)."""
    if reason is None or reason not in SAVE_IF_ANSWERED:
        return 0.0
    if action_rule == GRIEVANCE_RULE:
        base = APOLOGY_FOR_GRIEVANCE if reason == "poor_interaction" else 0.1
    elif action_rule == reason:
        base = SAVE_IF_ANSWERED[reason]
    else:
        base = SAVE_IF_ANSWERED[reason] * MISMATCH_FACTOR
    return base * float(np.clip(lead_days / LEAD_DAYS_FOR_FULL_EFFECT, 0.0, 1.0))


def open_grievances(interactions: pd.DataFrame, day: pd.Timestamp) -> set[str]:
    """Customers with an unresolved ticket or complaint in the days before ``day``."""
    if interactions is None or interactions.empty:
        return set()
    recent = interactions.loc[
        (interactions["timestamp"] < day)
        & (interactions["timestamp"] >= day - pd.Timedelta(days=GRIEVANCE_DAYS))
        & interactions["kind"].isin(["complaint", "price_complaint", "support_ticket"])
    ]
    if "resolved" in recent:
        recent = recent.loc[~recent["resolved"].fillna(False).astype(bool)]
    return set(recent["customer_id"].astype(str))


def response_of(
    contact: Contact,
    truth: pd.Series,
    aggrieved: bool,
    draw: float,
) -> str:
    """The response type of one contacted customer, from their own uniform ``draw``.

    Args:
        truth: the customer's row of the simulator's truth (``churned``, ``churn_date``,
            ``reason``).
        aggrieved: an open grievance at the contact (see :func:`open_grievances`).
    """
    leaves = bool(truth["churned"]) and pd.notna(truth["churn_date"])
    if leaves and truth["churn_date"] <= contact.day:
        return LOST_CAUSE
    if leaves:
        lead = (truth["churn_date"] - contact.day).days
        chance = save_chance(truth["reason"], contact.action_rule, lead)
        return PERSUADABLE if draw < chance else LOST_CAUSE
    if aggrieved and contact.action_rule in PROMOTIONS:
        return DO_NOT_DISTURB if draw < HARM_IF_PROMOTED_TO_GRIEVANCE else SURE_THING
    return SURE_THING


def _continued_purchases(
    own: pd.DataFrame, since: pd.Timestamp, end: pd.Timestamp, rng: np.random.Generator
) -> pd.DataFrame:
    """A saved customer's purchases from ``since`` to ``end``, in their own rhythm."""
    bought = own.loc[own["amount"] > 0].sort_values("timestamp")
    if bought.empty:
        return own.iloc[0:0]
    gaps = bought["timestamp"].diff().dt.total_seconds().dropna().to_numpy() / 86400.0
    gaps = gaps[gaps > 0]
    if len(gaps) == 0:
        gaps = np.array([30.0])
    rows = []
    day = since
    while True:
        day = day + pd.Timedelta(days=float(rng.choice(gaps)))
        if day >= end:
            break
        template = bought.iloc[int(rng.integers(len(bought)))]
        rows.append(template.to_dict() | {"timestamp": day})
    frame = pd.DataFrame(rows, columns=own.columns)
    if "order_id" in frame and len(frame):
        frame["order_id"] = [f"saved-{i}-{o}" for i, o in enumerate(frame["order_id"].astype(str))]
    return frame.astype(own.dtypes.to_dict())


def apply_response(
    transactions: pd.DataFrame,
    customer_id: str,
    response: str,
    contact_day: pd.Timestamp,
    truth: pd.Series,
    end: pd.Timestamp,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """The world's transactions after this customer's response to a contact."""
    ids = transactions["customer_id"].astype(str)
    own = ids.eq(str(customer_id))
    if response == DO_NOT_DISTURB:
        return transactions.loc[~(own & (transactions["timestamp"] >= contact_day))]
    if response != PERSUADABLE:
        return transactions
    # kept: their rhythm goes on past the day they would have left
    left = max(pd.Timestamp(truth["churn_date"]), contact_day)
    history = transactions.loc[own & (transactions["timestamp"] < left)]
    more = _continued_purchases(history, left, end, rng)
    return pd.concat([transactions, more], ignore_index=True)
