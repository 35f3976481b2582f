"""The playbook for subscribers: the renewal_soon override and its place in the order of
the overrides, and no "fix the open issue" for a customer with no issue open."""

import copy

import numpy as np
import pandas as pd
import pytest

from models.playbook import (
    GRIEVANCE,
    LEAVE_ALONE,
    RENEWAL_SOON,
    SEASONAL_GAP,
    PlaybookError,
    load_playbook,
    parse_playbook,
    recommend,
    recommend_win_back,
)
from tests.unit.playbook_cases import (
    DOC,
    PLAYBOOK,
    frames,
    seasonal_frames,
    with_four_ordinary,
)

# --- subscribers renewing soon with falling usage ------------------------------------

# an annual subscriber renewing in 30 days whose posts halved on the month before
RENEWING = {
    "days_to_renewal": 30.0,
    "on_annual_plan": 1.0,
    "usage_post_90d": 20.0,
    "usage_post_trend_30d": -0.5,
}


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        ({}, RENEWAL_SOON),
        # both limits are inclusive: 60 days, usage down 25%
        ({"days_to_renewal": 60.0, "usage_post_trend_30d": -0.25}, RENEWAL_SOON),
        ({"days_to_renewal": 61.0}, "unidentified"),
        ({"usage_post_trend_30d": -0.24}, "unidentified"),
        # a monthly plan renews every month: the renewal is no occasion by default
        ({"on_annual_plan": 0.0}, "unidentified"),
        # no usage in 90 days: no trend to read, so nothing says usage falls
        ({"usage_post_90d": 0.0}, "unidentified"),
        # no subscription running (or none at all): no renewal
        ({"days_to_renewal": np.nan}, "unidentified"),
    ],
    ids=["renewing", "at-limits", "too-far", "usage-steady", "monthly", "no-usage", "no-plan"],
)
def test_renewal_soon_rule(change, rule):
    scored, features = frames({"x": {**RENEWING, **change}})

    result = recommend(scored, features, PLAYBOOK)

    assert result.loc["x", "action_rule"] == rule


def test_renewal_soon_text_and_limits_come_from_the_playbook():
    doc = copy.deepcopy(DOC)
    doc["overrides"]["renewal_soon"] = {
        "action": "ring them before the renewal",
        "max_days_to_renewal": 10,
        "max_usage_trend": -0.1,
        "annual_only": False,
    }
    playbook = parse_playbook(doc, "pb.yaml")
    scored, features = frames(
        {
            "monthly": {**RENEWING, "on_annual_plan": 0.0, "days_to_renewal": 10.0},
            "far": {**RENEWING, "days_to_renewal": 11.0},
            "slight": {**RENEWING, "days_to_renewal": 5.0, "usage_post_trend_30d": -0.1},
        }
    )

    result = recommend(scored, features, playbook)

    assert result["action_rule"].to_dict() == {
        "monthly": RENEWAL_SOON,
        "far": "unidentified",
        "slight": RENEWAL_SOON,
    }
    assert result.loc["monthly", "recommended_action"] == "ring them before the renewal"


def test_renewal_soon_without_a_billing_period_never_fires_on_annual_only():
    # no billing_period column: no on_annual_plan feature, every plan bills monthly
    scored, features = frames({"x": RENEWING})

    result = recommend(scored, features.drop(columns=["on_annual_plan"]), PLAYBOOK)

    assert result.loc["x", "action_rule"] == "unidentified"


def test_grievance_beats_renewal_soon():
    # do not fan the fire: the renewal call waits for the apology
    scored, features = frames({"x": {**RENEWING, "unresolved_30d": 1.0}})

    result = recommend(scored, features, PLAYBOOK)

    assert result.loc["x", "action_rule"] == GRIEVANCE


def test_renewal_soon_beats_leave_alone_but_steady_usage_is_left_alone():
    # v is valuable, low-risk and steady on spend; falling usage before the renewal is
    # the sign of decline leave_alone requires to be absent
    falling = frames(with_four_ordinary(RENEWING))
    steady = frames(with_four_ordinary({**RENEWING, "usage_post_trend_30d": 0.0}))

    assert recommend(*falling, PLAYBOOK).loc["v", "action_rule"] == RENEWAL_SOON
    assert recommend(*steady, PLAYBOOK).loc["v", "action_rule"] == LEAVE_ALONE


def test_renewal_soon_beats_seasonal_gap():
    scored, features = seasonal_frames({"x": RENEWING, "y": {}})

    result = recommend(scored, features, PLAYBOOK)

    assert result["action_rule"].to_dict() == {"x": RENEWAL_SOON, "y": SEASONAL_GAP}


def test_packaged_playbook_has_the_renewal_rule():
    playbook = load_playbook()

    assert playbook.max_days_to_renewal == 60.0
    assert playbook.max_usage_trend == -0.25
    assert playbook.renewal_annual_only is True
    assert playbook.renewal_soon_action.startswith("Call before the renewal: ")


@pytest.mark.parametrize(
    ("section", "value", "message"),
    [
        ("renewal_soon", {"annual_only": "yes"}, "annual_only must be true/false"),
        ("renewal_soon", {"max_days_to_renewal": "soon"}, "malformed playbook"),
    ],
)
def test_parse_playbook_rejects_a_bad_renewal_rule(section, value, message):
    doc = copy.deepcopy(DOC)
    doc["overrides"][section] = value

    with pytest.raises(PlaybookError, match=rf"^pb\.yaml: .*{message}"):
        parse_playbook(doc, "pb.yaml")


# --- no "fix the open issue" when no issue is open -----------------------------------


def test_poor_interaction_without_an_open_issue_gets_attention_not_a_fix():
    playbook = load_playbook()
    poor = {"top_reason": "poor_interaction", "unresolved_30d": 0.0}
    scored, features = frames(
        {
            # a subscriber with no tickets: "no contact for N days" made it poor_interaction
            "quiet": {**poor, "unresolved_90d": 0.0},
            # an issue still unresolved from 40 days ago (not in 30 days: no grievance)
            "open": {**poor, "unresolved_90d": 1.0},
            # another reason keeps its own text
            "price": {"top_reason": "competitor_offer", "unresolved_90d": 0.0},
        }
    )

    result = recommend(scored, features, playbook)

    assert result["action_rule"].tolist() == ["poor_interaction"] * 2 + ["competitor_offer"]
    assert result["recommended_action"].tolist() == [
        playbook.no_open_issue_actions["poor_interaction"],
        playbook.actions["poor_interaction"],
        playbook.actions["competitor_offer"],
    ]
    assert "open issue" not in result.loc["quiet", "recommended_action"]
    assert "fix the open issue" in result.loc["open", "recommended_action"]


@pytest.mark.parametrize(
    ("issue_features", "has_issue"),
    [
        ({}, False),  # no interaction data at all: nothing is open
        ({"tickets_90d": 0.0, "complaints_90d": 0.0}, False),
        ({"tickets_90d": 1.0}, True),  # resolution not recorded: a recent ticket counts
        ({"price_complaints_180d": 2.0}, True),
        ({"tickets_90d": 3.0, "unresolved_90d": 0.0}, False),  # all three resolved
        ({"unresolved_90d": np.nan}, False),
    ],
)
def test_what_counts_as_an_open_issue(issue_features, has_issue):
    playbook = load_playbook()
    scored, features = frames({"x": {"top_reason": "poor_interaction", **issue_features}})
    features = features.drop(columns=["unresolved_30d", "satisfaction_last"])

    result = recommend(scored, features, playbook)

    table = playbook.actions if has_issue else playbook.no_open_issue_actions
    assert result.loc["x", "recommended_action"] == table["poor_interaction"]


def test_win_back_without_an_open_issue_asks_rather_than_says_what_was_fixed():
    playbook = load_playbook()
    scored = pd.DataFrame({"top_reason": ["poor_interaction"] * 2}, index=["q", "t"])
    features = pd.DataFrame({"tickets_90d": [0.0, 2.0]}, index=["q", "t"])

    result = recommend_win_back(scored, features, playbook)

    assert result["action_rule"].tolist() == ["poor_interaction"] * 2
    assert result["recommended_action"].tolist() == [
        playbook.no_open_issue_win_back["poor_interaction"],
        playbook.win_back_actions["poor_interaction"],
    ]


def test_a_playbook_without_no_open_issue_keeps_the_table_text():
    scored, features = frames({"x": {"top_reason": "poor_interaction"}})

    result = recommend(scored, features, PLAYBOOK)

    assert result.loc["x", "recommended_action"] == "act on poor_interaction"


def test_parse_playbook_rejects_an_unknown_reason_without_an_open_issue():
    doc = copy.deepcopy(DOC)
    doc["no_open_issue"] = {"actions": {"boredom": "say hello"}}

    with pytest.raises(PlaybookError) as err:
        parse_playbook(doc, "pb.yaml")

    assert str(err.value) == "pb.yaml: no_open_issue.actions names unknown reasons ['boredom']"
