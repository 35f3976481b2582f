import math
import re

import pytest

from features.build import all_features
from models.reasons import (
    LOSS_REASONS,
    REASON_COLOURS,
    REASON_SHARES,
    REASONS,
    ReasonMapError,
    describe,
    load_reason_map,
    parse_reason_map,
)

PACKAGED_SOURCE = "models/config/reason_map.yaml"


def tiny_map_doc() -> dict:
    return {
        "version": 2,
        "features": {
            "days_idle": {
                "reason": "unidentified",
                "phrase": "no purchase for {days_idle:.0f} days",
            },
            "complaints": {"reason": "poor_interaction", "phrase": "{complaints:.0f} complaints"},
            # a phrase may use another feature's value
            "overdue": {
                "reason": "unidentified",
                "phrase": "idle {days_idle:.0f} days, {overdue:.1f}x usual",
            },
            "moved": {"reason": "relocation", "phrase": "bought outside home region"},
            "no_phrase": {"reason": "business_change"},
        },
    }


# --- the packaged map ---------------------------------------------------------------


def test_packaged_map_loads_and_covers_every_known_feature():
    reason_map = load_reason_map()

    reason_map.check_covers(all_features())  # raises if any feature has no reason
    assert reason_map.source == PACKAGED_SOURCE
    assert reason_map.version == 1


def test_packaged_map_uses_only_the_six_documented_reasons():
    reason_map = load_reason_map()

    assert {fr.reason for fr in reason_map.features.values()} <= set(REASONS)
    # the documented cause of 68% of losses must have features to carry it
    assert reason_map.reason_of("unresolved_30d") == "poor_interaction"
    assert reason_map.reason_of("failed_payments_180d") == "financial_distress"


def test_every_packaged_phrase_formats_with_numeric_values():
    # a bad format spec (say "{x:.0q}") would only surface at scoring time otherwise
    reason_map = load_reason_map()
    values = dict.fromkeys(reason_map.features, 1.0)

    for feature in reason_map.features:
        text = describe(reason_map, feature, values)
        assert text and not text.endswith(": unknown"), feature


def test_packaged_phrase_text():
    reason_map = load_reason_map()

    # 45 days idle at 1.5x the usual gap; {:.1f} of 1.5 -> "1.5"
    assert (
        describe(
            reason_map, "overdue_ratio", {"days_since_last_purchase": 45.0, "overdue_ratio": 1.5}
        )
        == "no purchase for 45 days, 1.5x longer than usual"
    )
    # {:+.0%} of -0.25 -> "-25%"
    assert (
        describe(reason_map, "spend_change_90d", {"spend_change_90d": -0.25})
        == "spend in the last 90 days changed -25% on the 90 days before"
    )


# --- the taxonomy -------------------------------------------------------------------


def test_reason_shares_match_the_documented_figures_and_sum_to_one():
    assert REASON_SHARES == {
        "poor_interaction": 0.68,
        "unidentified": 0.14,
        "competitor_offer": 0.09,
        "business_change": 0.05,
        "relocation": 0.03,
        "financial_distress": 0.01,
    }
    # 0.68 + 0.14 + 0.09 + 0.05 + 0.03 + 0.01 = 1.00
    assert math.isclose(sum(REASON_SHARES.values()), 1.0, abs_tol=1e-12)
    assert REASONS == tuple(REASON_SHARES)


def test_each_reason_has_a_label_and_a_colour_of_its_own():
    assert list(LOSS_REASONS) == list(REASONS)
    assert [r.label for r in LOSS_REASONS.values()] == [
        "Poor interaction",
        "Unidentified",
        "Competitor offer",
        "Business change",
        "Relocation",
        "Financial distress",
    ]
    assert REASON_COLOURS["unidentified"] == "#7A7A7A"  # grey: no clear cause
    assert len(set(REASON_COLOURS.values())) == len(REASONS)
    assert all(re.fullmatch(r"#[0-9A-F]{6}", c) for c in REASON_COLOURS.values())
    assert all(key == r.key for key, r in LOSS_REASONS.items())


# --- parse_reason_map ---------------------------------------------------------------


def test_parse_reason_map_reads_reasons_phrases_and_version():
    reason_map = parse_reason_map(tiny_map_doc(), "tiny.yaml")

    assert reason_map.version == 2
    assert reason_map.source == "tiny.yaml"
    assert reason_map.reason_of("complaints") == "poor_interaction"
    assert reason_map.features["moved"].phrase == "bought outside home region"
    # no phrase given: the feature's words followed by its value
    assert reason_map.features["no_phrase"].phrase == "no phrase {no_phrase}"


def test_parse_reason_map_round_trips_through_to_dict():
    reason_map = parse_reason_map(tiny_map_doc(), "tiny.yaml")

    again = parse_reason_map(reason_map.to_dict(), "copy")

    assert again.features == reason_map.features
    assert again.version == 2


def test_parse_reason_map_rejects_an_unknown_reason_key():
    doc = tiny_map_doc()
    doc["features"]["complaints"]["reason"] = "bad_weather"

    with pytest.raises(ReasonMapError) as err:
        parse_reason_map(doc, "tiny.yaml")

    message = str(err.value)
    assert message.startswith("tiny.yaml: ")
    assert "complaints: unknown reason 'bad_weather'" in message
    assert "poor_interaction" in message  # lists the allowed reasons


def test_parse_reason_map_rejects_an_entry_without_a_reason():
    doc = tiny_map_doc()
    doc["features"]["complaints"] = {"phrase": "{complaints:.0f} complaints"}

    with pytest.raises(ReasonMapError, match=r"^tiny\.yaml: complaints: needs `reason:`"):
        parse_reason_map(doc, "tiny.yaml")


def test_parse_reason_map_rejects_an_entry_that_is_not_a_mapping():
    doc = tiny_map_doc()
    doc["features"]["complaints"] = "poor_interaction"

    with pytest.raises(ReasonMapError, match=r"^tiny\.yaml: complaints: needs `reason:`"):
        parse_reason_map(doc, "tiny.yaml")


def test_parse_reason_map_rejects_a_phrase_naming_an_unknown_feature():
    doc = tiny_map_doc()
    doc["features"]["complaints"]["phrase"] = "{complaints:.0f} complaints, {tickets:.0f} tickets"

    with pytest.raises(ReasonMapError) as err:
        parse_reason_map(doc, "tiny.yaml")

    message = str(err.value)
    assert message.startswith("tiny.yaml: ")
    assert "complaints: phrase uses unknown features ['tickets']" in message


def test_parse_reason_map_reports_every_problem_at_once():
    doc = tiny_map_doc()
    doc["features"]["complaints"]["reason"] = "bad_weather"
    doc["features"]["moved"] = {}

    with pytest.raises(ReasonMapError) as err:
        parse_reason_map(doc, "tiny.yaml")

    assert "complaints: unknown reason 'bad_weather'; moved: needs `reason:`" in str(err.value)


@pytest.mark.parametrize(
    "doc",
    [None, "features", ["days_idle"], {"version": 1}, {"features": ["days_idle"]}],
    ids=["empty", "string", "list", "no-features", "features-a-list"],
)
def test_parse_reason_map_rejects_a_document_that_is_not_a_mapping(doc):
    with pytest.raises(ReasonMapError, match=r"^tiny\.yaml: expected a mapping"):
        parse_reason_map(doc, "tiny.yaml")


# --- check_covers ---------------------------------------------------------------------


def test_check_covers_names_the_missing_features_and_the_source():
    reason_map = parse_reason_map(tiny_map_doc(), "tiny.yaml")

    with pytest.raises(ReasonMapError) as err:
        reason_map.check_covers(["days_idle", "tickets", "complaints", "refunds"])

    message = str(err.value)
    assert message.startswith("tiny.yaml: features without a loss reason: tickets, refunds. ")


def test_check_covers_accepts_a_subset_of_the_map():
    reason_map = parse_reason_map(tiny_map_doc(), "tiny.yaml")

    reason_map.check_covers(["complaints", "days_idle"])
    reason_map.check_covers([])


# --- load_reason_map from a file -----------------------------------------------------


def test_load_reason_map_from_a_file(tmp_path):
    path = tmp_path / "reasons.yaml"
    path.write_text(
        "version: 3\n"
        "features:\n"
        "  days_since_last_purchase:\n"
        "    reason: unidentified\n"
        "    phrase: 'idle {days_since_last_purchase:.0f} days'\n"
        "  region_changed: {reason: financial_distress}\n"
    )

    reason_map = load_reason_map(path)

    assert reason_map.source == str(path)
    assert reason_map.version == 3
    assert reason_map.reason_of("days_since_last_purchase") == "unidentified"
    assert describe(reason_map, "days_since_last_purchase", {"days_since_last_purchase": 12.4}) == (
        "idle 12 days"
    )
    # a reason alone keeps the registry's phrase
    assert reason_map.reason_of("region_changed") == "financial_distress"
    assert describe(reason_map, "region_changed", {"region_changed": 1.0}) == (
        "last purchase outside their home region"
    )


def test_a_file_overrides_only_what_it_names(tmp_path):
    path = tmp_path / "reasons.yaml"
    path.write_text("features:\n  tickets_90d: {phrase: '{tickets_90d:.0f} help-desk calls'}\n")

    reason_map = load_reason_map(path)

    # a phrase alone keeps the registry's reason
    assert reason_map.reason_of("tickets_90d") == "poor_interaction"
    assert describe(reason_map, "tickets_90d", {"tickets_90d": 3.0}) == "3 help-desk calls"
    # every feature it does not name keeps the registry's reason and phrase
    reason_map.check_covers(all_features())
    packaged = load_reason_map()
    others = [f for f in all_features() if f != "tickets_90d"]
    assert {f: reason_map.features[f] for f in others} == {f: packaged.features[f] for f in others}
    assert reason_map.version == 1  # no version given


def test_a_file_of_family_overrides_only_needs_no_features_section(tmp_path):
    path = tmp_path / "reasons.yaml"
    path.write_text("families:\n  usage: {reason: poor_interaction}\n")

    reason_map = load_reason_map(path)

    assert reason_map.reason_of("usage_post_30d") == "poor_interaction"
    assert reason_map.reason_of("tickets_90d") == "poor_interaction"
    assert reason_map.reason_of("days_since_last_purchase") == "unidentified"


def test_load_reason_map_refuses_a_feature_the_pipeline_does_not_build(tmp_path):
    path = tmp_path / "reasons.yaml"
    path.write_text(
        "features:\n"
        "  tickets_90d: {reason: poor_interaction}\n"
        "  tickets_91d: {reason: poor_interaction}\n"
        "  usage_post_30d: {reason: poor_interaction}\n"  # a usage name is a feature too
    )

    with pytest.raises(ReasonMapError) as err:
        load_reason_map(path)

    message = str(err.value)
    assert message.startswith(
        f"{path}: tickets_91d: not a feature the pipeline builds (features/registry.py) ("
    )
    assert "usage_post_30d" not in message


def test_load_reason_map_names_the_file_on_a_bad_entry(tmp_path):
    path = tmp_path / "reasons.yaml"
    path.write_text("features:\n  days_since_last_purchase: {reason: boredom}\n")

    with pytest.raises(ReasonMapError) as err:
        load_reason_map(path)

    assert str(err.value).startswith(f"{path}: days_since_last_purchase: unknown reason 'boredom'")


def test_load_reason_map_rejects_invalid_yaml(tmp_path):
    path = tmp_path / "reasons.yaml"
    path.write_text("features:\n  days_idle: {reason: unidentified\n")  # unclosed flow map

    with pytest.raises(ReasonMapError) as err:
        load_reason_map(path)

    assert str(err.value).startswith(f"{path}: not valid YAML: ")


# --- describe -------------------------------------------------------------------------


def test_describe_fills_the_phrase_with_the_customers_values():
    reason_map = parse_reason_map(tiny_map_doc(), "tiny.yaml")
    values = {"days_idle": 44.6, "complaints": 3.0, "overdue": 2.25}

    # {:.0f} of 44.6 -> "45"; {:.1f} of 2.25 -> "2.2" (round half to even)
    assert describe(reason_map, "overdue", values) == "idle 45 days, 2.2x usual"
    assert describe(reason_map, "complaints", values) == "3 complaints"
    assert describe(reason_map, "moved", values) == "bought outside home region"
    assert describe(reason_map, "no_phrase", {"no_phrase": 0.5}) == "no phrase 0.5"


def test_describe_says_unknown_when_a_referenced_value_is_nan():
    reason_map = parse_reason_map(tiny_map_doc(), "tiny.yaml")

    # the feature's own value is fine, but the phrase also uses days_idle, which is NaN
    assert (
        describe(reason_map, "overdue", {"days_idle": math.nan, "overdue": 2.0})
        == "overdue: unknown"
    )
    assert describe(reason_map, "no_phrase", {"no_phrase": math.nan}) == "no phrase: unknown"


def test_describe_says_unknown_when_a_referenced_value_is_absent():
    reason_map = parse_reason_map(tiny_map_doc(), "tiny.yaml")

    assert describe(reason_map, "overdue", {"overdue": 2.0}) == "overdue: unknown"
