"""Playbook test cases shared by test_playbook.py and test_playbook_subscribers.py:
a test playbook and (scored, features) frames of customers built from a calm one."""

import pandas as pd

from models.playbook import parse_playbook
from models.reasons import REASONS

DOC = {
    "version": 1,
    "actions": {reason: f"act on {reason}" for reason in REASONS},
    "overrides": {
        "grievance": {
            "action": "apologise first",
            "min_unresolved_30d": 1,
            "max_satisfaction_last": 2,
        },
        "leave_alone": {
            "action": "leave them be",
            "min_expected_value_quantile": 0.8,
            "max_churn_probability": 0.3,
            "min_spend_change_90d": -0.1,
            "max_overdue_ratio": 1.5,
        },
    },
}
PLAYBOOK = parse_playbook(DOC, "test playbook")

# A calm customer: no grievance, spend flat, on cadence.
CALM = {
    "top_reason": "unidentified",
    "churn_probability": 0.9,
    "expected_value": 100.0,
    "unresolved_30d": 0.0,
    "satisfaction_last": 4.0,
    "spend_change_90d": 0.0,
    "overdue_ratio": 1.0,
}
SCORED_COLUMNS = ["top_reason", "churn_probability", "expected_value"]


def frames(customers: dict[str, dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(scored, features) for customers given as overrides of CALM."""
    rows = pd.DataFrame.from_dict({c: {**CALM, **v} for c, v in customers.items()}, orient="index")
    rows.index.name = "customer_id"
    return rows[SCORED_COLUMNS], rows.drop(columns=SCORED_COLUMNS).astype(float)


def with_four_ordinary(customer: dict) -> dict[str, dict]:
    """``v`` plus four customers with expected values 100..400 and high risk.

    Expected values [100, 200, 300, 400, 1000]: the 0.8 quantile is at position
    0.8 * 4 = 3.2, i.e. 400 + 0.2 * (1000 - 400) = 520, so only the 1000 is top 20%.
    """
    others = {f"o{i}": {"expected_value": 100.0 * i} for i in range(1, 5)}
    return {**others, "v": {"expected_value": 1000.0, "churn_probability": 0.2, **customer}}


def seasonal_frames(customers: dict[str, dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Like frames(), with a segment column and gap features."""
    base = {"segment": "seasonal", "days_since_last_purchase": 200.0, "max_gap_days": 250.0}
    rows = pd.DataFrame.from_dict(
        {c: {**CALM, **base, **v} for c, v in customers.items()}, orient="index"
    )
    scored_columns = [*SCORED_COLUMNS, "segment"]
    return rows[scored_columns], rows.drop(columns=scored_columns).astype(float)
