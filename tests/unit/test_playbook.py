import copy
import re

import numpy as np
import pytest
import yaml

from models.playbook import (
    GRIEVANCE,
    LEAVE_ALONE,
    PlaybookError,
    load_playbook,
    parse_playbook,
    recommend,
)
from models.reasons import REASONS
from tests.unit.playbook_cases import (
    DOC,
    PLAYBOOK,
    frames,
    seasonal_frames,
    with_four_ordinary,
)

# --- the table ------------------------------------------------------------------------


def test_each_reason_gets_its_action_from_the_table():
    scored, features = frames({r: {"top_reason": r} for r in REASONS})

    result = recommend(scored, features, PLAYBOOK)

    assert result["action_rule"].tolist() == list(REASONS)
    assert result["recommended_action"].tolist() == [f"act on {r}" for r in REASONS]
    assert result.index.equals(scored.index)


def test_features_are_matched_by_customer_not_by_row_order():
    scored, features = frames(
        {"a": {"top_reason": "relocation"}, "b": {"top_reason": "relocation", "unresolved_30d": 2}}
    )

    result = recommend(scored, features.iloc[::-1], PLAYBOOK)

    assert result["action_rule"].tolist() == ["relocation", GRIEVANCE]


# --- override 1: do not fan the fire ---------------------------------------------------


@pytest.mark.parametrize(
    ("unresolved_30d", "satisfaction_last", "rule"),
    [
        (1.0, 4.0, GRIEVANCE),  # one unresolved issue (1 >= 1)
        (0.0, 2.0, GRIEVANCE),  # score at the limit (2 <= 2)
        (0.0, 3.0, "competitor_offer"),  # 3 > 2 and nothing unresolved
        (np.nan, 1.0, GRIEVANCE),  # no ticket data, bad survey
        (2.0, np.nan, GRIEVANCE),  # no survey, open tickets
        (np.nan, np.nan, "competitor_offer"),  # nothing known: no grievance
    ],
)
def test_grievance_rule(unresolved_30d, satisfaction_last, rule):
    scored, features = frames(
        {
            "x": {
                "top_reason": "competitor_offer",
                "unresolved_30d": unresolved_30d,
                "satisfaction_last": satisfaction_last,
            }
        }
    )

    result = recommend(scored, features, PLAYBOOK)

    assert result.loc["x", "action_rule"] == rule


def test_a_grievance_never_gets_a_promotion():
    # the top reason is price, but the complaint is open: apology, never an offer
    scored, features = frames({"x": {"top_reason": "competitor_offer", "unresolved_30d": 1.0}})

    result = recommend(scored, features, PLAYBOOK)

    assert result.loc["x", "action_rule"] == GRIEVANCE
    assert result.loc["x", "recommended_action"] == "apologise first"


def test_grievance_beats_leave_alone():
    # v would be left alone (top 20% value, p 0.2, steady) but its last score is 1/5
    scored, features = frames(with_four_ordinary({"satisfaction_last": 1.0}))

    result = recommend(scored, features, PLAYBOOK)

    assert result.loc["v", "action_rule"] == GRIEVANCE


def test_transactions_only_features_never_trigger_grievance():
    scored, features = frames(
        {
            "a": {"top_reason": "competitor_offer"},
            "b": {"top_reason": "poor_interaction", "churn_probability": 0.99},
        }
    )
    features = features.drop(columns=["unresolved_30d", "satisfaction_last"])

    result = recommend(scored, features, PLAYBOOK)

    assert result["action_rule"].tolist() == ["competitor_offer", "poor_interaction"]


# --- override 2: leave well alone ------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        ({}, LEAVE_ALONE),
        # every limit is inclusive
        ({"churn_probability": 0.3, "spend_change_90d": -0.1, "overdue_ratio": 1.5}, LEAVE_ALONE),
        # one sign of decline each
        ({"churn_probability": 0.31}, "competitor_offer"),
        ({"spend_change_90d": -0.11}, "competitor_offer"),
        ({"overdue_ratio": 1.6}, "competitor_offer"),
        # not top 20%: values [100, 200, 300, 350, 400], 0.8 quantile at position 3.2
        # is 350 + 0.2 * (400 - 350) = 360 > 350
        ({"expected_value": 350.0}, "competitor_offer"),
    ],
    ids=["steady", "at-limits", "probability", "spend-down", "overdue", "not-top-20"],
)
def test_leave_alone_rule(change, rule):
    scored, features = frames(with_four_ordinary({"top_reason": "competitor_offer", **change}))

    result = recommend(scored, features, PLAYBOOK)

    assert result.loc["v", "action_rule"] == rule
    # the four others are high risk (p 0.9): always the table
    assert (result.drop(index="v")["action_rule"] == "unidentified").all()


def test_leave_alone_takes_the_top_20_percent_by_expected_value():
    # expected values 100..1000 for ten calm, low-risk customers; the 0.8 quantile is
    # at position 0.8 * 9 = 7.2: 800 + 0.2 * (900 - 800) = 820, so 900 and 1000 only
    scored, features = frames(
        {f"c{i:02d}": {"expected_value": 100.0 * i, "churn_probability": 0.1} for i in range(1, 11)}
    )

    result = recommend(scored, features, PLAYBOOK)

    left_alone = result.index[result["action_rule"] == LEAVE_ALONE].tolist()
    assert left_alone == ["c09", "c10"]
    assert result.loc["c10", "recommended_action"] == "leave them be"


def test_leave_alone_works_without_interaction_features():
    scored, features = frames(with_four_ordinary({"top_reason": "relocation"}))
    features = features.drop(columns=["unresolved_30d", "satisfaction_last"])

    result = recommend(scored, features, PLAYBOOK)

    assert result.loc["v", "action_rule"] == LEAVE_ALONE


# --- loading and validation ------------------------------------------------------------


def test_packaged_playbook_has_the_documented_rules():
    playbook = load_playbook()

    assert set(playbook.actions) == set(REASONS)
    assert playbook.min_unresolved_30d == 1.0
    assert playbook.max_satisfaction_last == 2.0
    assert playbook.min_expected_value_quantile == 0.8  # top 20%
    assert playbook.max_churn_probability == 0.3
    assert playbook.min_spend_change_90d == -0.1
    assert playbook.max_overdue_ratio == 1.5


def test_parse_playbook_rejects_a_missing_reason():
    doc = copy.deepcopy(DOC)
    del doc["actions"]["relocation"]

    with pytest.raises(PlaybookError) as err:
        parse_playbook(doc, "pb.yaml")

    assert str(err.value) == (
        "pb.yaml: actions must name each reason once; missing ['relocation'], unknown []"
    )


def test_parse_playbook_rejects_an_unknown_reason():
    doc = copy.deepcopy(DOC)
    doc["actions"]["bad_weather"] = "stay inside"

    with pytest.raises(PlaybookError) as err:
        parse_playbook(doc, "pb.yaml")

    assert str(err.value) == (
        "pb.yaml: actions must name each reason once; missing [], unknown ['bad_weather']"
    )


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ("grievance", "max_satisfaction_last"),
        ("grievance", "action"),
        ("leave_alone", "max_overdue_ratio"),
        ("leave_alone", "min_expected_value_quantile"),
    ],
)
def test_parse_playbook_rejects_a_missing_override_field(override, field):
    doc = copy.deepcopy(DOC)
    del doc["overrides"][override][field]

    with pytest.raises(PlaybookError, match=rf"^pb\.yaml: malformed playbook .*'{field}'"):
        parse_playbook(doc, "pb.yaml")


@pytest.mark.parametrize(
    "doc", [None, [], {"actions": DOC["actions"]}], ids=["empty", "list", "no-overrides"]
)
def test_parse_playbook_rejects_a_malformed_document(doc):
    with pytest.raises(PlaybookError, match=r"^pb\.yaml: malformed playbook"):
        parse_playbook(doc, "pb.yaml")


def test_parse_playbook_rejects_a_non_numeric_limit():
    doc = copy.deepcopy(DOC)
    doc["overrides"]["leave_alone"]["max_churn_probability"] = "low"

    with pytest.raises(PlaybookError, match=r"^pb\.yaml: malformed playbook"):
        parse_playbook(doc, "pb.yaml")


def test_a_custom_playbook_file_changes_the_action_text(tmp_path):
    doc = copy.deepcopy(DOC)
    doc["actions"]["relocation"] = "Send a welcome-to-your-new-town card"
    doc["overrides"]["grievance"]["max_satisfaction_last"] = 3
    path = tmp_path / "playbook.yaml"
    path.write_text(yaml.safe_dump(doc))

    playbook = load_playbook(path)
    scored, features = frames(
        {
            "a": {"top_reason": "relocation"},
            "b": {"top_reason": "relocation", "satisfaction_last": 3},
        }
    )
    result = recommend(scored, features, playbook)

    assert result.loc["a", "recommended_action"] == "Send a welcome-to-your-new-town card"
    # the stricter limit makes a 3/5 a grievance too
    assert result.loc["b", "action_rule"] == GRIEVANCE


def test_load_playbook_names_the_file_on_a_bad_entry(tmp_path):
    doc = copy.deepcopy(DOC)
    del doc["actions"]["unidentified"]
    path = tmp_path / "playbook.yaml"
    path.write_text(yaml.safe_dump(doc))

    with pytest.raises(
        PlaybookError, match=rf"^{re.escape(str(path))}: .*missing \['unidentified'\]"
    ):
        load_playbook(path)


def test_load_playbook_rejects_invalid_yaml(tmp_path):
    path = tmp_path / "playbook.yaml"
    path.write_text("actions: {relocation: move\n")  # unclosed flow map

    with pytest.raises(PlaybookError, match=rf"^{re.escape(str(path))}: not valid YAML"):
        load_playbook(path)


# --- seasonal customers inside their normal gap ---------------------------------------


def test_seasonal_customer_inside_their_normal_gap_is_not_called():
    scored, features = seasonal_frames(
        {
            # 200 days quiet, longest earlier gap 250: waiting for the season
            "waiting": {},
            # 280 > 250 x 1.1 = 275: the gap has run past anything normal
            "overdue": {"days_since_last_purchase": 280.0},
            # same gap, but a specific cause shows: call
            "unhappy_pricing": {"top_reason": "competitor_offer"},
            # same gap, not seasonal: the gap is the signal
            "regular": {"segment": "regular"},
            # a grievance always comes first
            "aggrieved": {"unresolved_30d": 1.0},
        }
    )

    result = recommend(scored, features, PLAYBOOK)

    assert result["action_rule"].to_dict() == {
        "waiting": "seasonal_gap",
        "overdue": "unidentified",
        "unhappy_pricing": "competitor_offer",
        "regular": "unidentified",
        "aggrieved": GRIEVANCE,
    }
    assert result.loc["waiting", "recommended_action"].startswith("Off-season")
