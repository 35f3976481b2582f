"""Service interactions of the retail scenario: everyday contacts and decline-window ones.

Everyone files tickets and complaints, answers surveys and receives outreach at their
type's rates; in a poor-interaction window scores drop, issues stay open and outreach
goes unanswered; a competitor offer brings price complaints.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from simulation._common import draw_contacts
from simulation.business import INTERACTION_KINDS

_SURVEYS_PER_DAY = 1.5 / 365
_OUTREACH_PER_DAY = 1 / 30
_PRICE_COMPLAINTS_PER_DAY = 1 / 2000


def _poisson_events(
    rng: np.random.Generator, rate: np.ndarray, opens: np.ndarray, closes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Homogeneous Poisson events per customer on [opens, closes); returns (customer, t)."""
    span = np.maximum(closes - opens, 0.0)
    counts = rng.poisson(np.nan_to_num(rate * span))
    customer = np.repeat(np.arange(len(rate)), counts)
    t = opens[customer] + rng.random(len(customer)) * span[customer]
    return customer, t


def draw_interactions(rng: np.random.Generator, people: pd.DataFrame, n_days: int) -> pd.DataFrame:
    """Baseline contacts for everyone plus the decline-window contacts of each reason.

    Args:
        rng: The simulator's generator.
        people: One row per customer with rates, active days and decline episode.
        n_days: Length of the period; outreach continues to its end.

    Returns:
        One row per contact (customer index, day, coded kind, channel and outcome).
    """
    n = len(people)
    opens = people["active_start"].to_numpy()
    closes = people["active_end"].to_numpy()
    constant = np.ones(n)

    tickets = draw_contacts(
        rng,
        *_poisson_events(rng, people["ticket_rate"].to_numpy(), opens, closes),
        "support_ticket",
    )
    complaints = draw_contacts(
        rng, *_poisson_events(rng, people["complaint_rate"].to_numpy(), opens, closes), "complaint"
    )
    issues = _resolve_issues(rng, pd.concat([tickets, complaints], ignore_index=True), 0.87)
    surveys = _answer_surveys(
        rng,
        draw_contacts(
            rng, *_poisson_events(rng, _SURVEYS_PER_DAY * constant, opens, closes), "survey"
        ),
        people,
    )
    # Marketing keeps contacting churners until the end; they simply stop answering.
    outreach = _respond_to_outreach(
        rng,
        draw_contacts(
            rng,
            *_poisson_events(rng, _OUTREACH_PER_DAY * constant, opens, np.full(n, float(n_days))),
            "outreach",
        ),
        people,
    )
    price_complaints = draw_contacts(
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
            draw_contacts(rng, customer[kind == k], t[kind == k], k)
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
    bad_surveys = draw_contacts(rng, survey_customer, survey_t, "survey").assign(
        satisfaction=rng.integers(1, 3, len(survey_customer)).astype(float)
    )
    return pd.concat([issues, bad_surveys], ignore_index=True)


def _competitor_price_complaints(rng: np.random.Generator, people: pd.DataFrame) -> pd.DataFrame:
    """Customers tempted by a competitor complain about prices one to three times."""
    strength = people["episode_strength"].to_numpy()
    customer, t = _episode_events(rng, people, "competitor_offer", rng.binomial(3, strength))
    complaints = draw_contacts(rng, customer, t, "price_complaint")
    # Price complaints are rarely settled to the customer's liking.
    return _resolve_issues(rng, complaints, 0.6)


# --- output frames ----------------------------------------------------------------------------
