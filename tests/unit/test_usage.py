"""Usage events of any kind as features; the kinds mapping; the duplicate rule."""

import pandas as pd
import pytest

from features.build import build_features
from features.contracts import validate_table
from features.usage import (
    USAGE_RATIOS,
    choose_usage_kinds,
    has_ratios,
    kind_counts,
    kind_report,
    kinds_in_features,
    map_kinds,
    negative_kinds,
    sanitise,
    usage_feature_names,
    usage_features,
    usage_trend,
)
from models.reasons import ReasonMapError, describe, load_reason_map, parse_reason_map
from pipelines.catalog import assemble_tables

CUTOFF = pd.Timestamp("2024-07-01")
IDS = pd.Index(["a", "b", "c"], name="customer_id")


def ago(days: float) -> pd.Timestamp:
    return CUTOFF - pd.Timedelta(days=days)


def events(rows: list[tuple]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["customer_id", "timestamp", "kind"])
    return frame.astype({"customer_id": "str", "kind": "category"})


# a: 2 posts in the last 30 days (one day), 5 in the 30 before; b: one post 100 days ago
POSTS = events(
    [("a", ago(3.5), "post"), ("a", ago(3.2), "post")]
    + [("a", ago(40 + i), "post") for i in range(5)]
    + [("b", ago(100), "post"), ("a", ago(1), "App Open"), ("c", ago(2), "support_ticket")]
)


def test_per_kind_features_exact_values():
    f = usage_features(POSTS, CUTOFF, IDS, ["post"])
    assert list(f.columns) == usage_feature_names(["post"])
    assert f["usage_post_30d"].tolist() == [2, 0, 0]
    assert f["usage_post_90d"].tolist() == [7, 0, 0]
    # (2 - 5) / 5; (0 - 0) / 1
    assert f["usage_post_trend_30d"].tolist() == [pytest.approx(-0.6), 0, 0]
    assert f.loc["a", "usage_post_days_since"] == pytest.approx(3.2)
    assert f.loc["b", "usage_post_days_since"] == pytest.approx(100)
    assert pd.isna(f.loc["c", "usage_post_days_since"])
    # a: posts on days 3, 40, 41, 42, 43, 44 before the cutoff -> 6 of 90 days
    assert f["usage_post_active_days_90d"].tolist() == [pytest.approx(6 / 90), 0, 0]


def test_kinds_are_the_top_k_not_in_the_contract_by_count_then_name():
    frame = events(
        [("a", ago(1), k) for k in ["like", "like", "post", "share", "complaint", "complaint"]]
        + [("a", ago(1), "complaint")]
    )
    assert choose_usage_kinds(frame, 2) == ("like", "post")  # post before share: by name
    assert choose_usage_kinds(frame, 0) == ()
    assert choose_usage_kinds(None) == ()
    report = kind_report(frame, ("like",))
    assert report == {
        "kinds_used": {"complaint": 3, "like": 2},
        "kinds_ignored": {"post": 1, "share": 1},
    }


def test_names_are_sanitised_and_found_again_from_a_models_features():
    assert sanitise("App Open") == "app_open"
    assert sanitise("ad-view!") == "ad_view"
    names = ["days_since_last_purchase", *usage_feature_names(["App Open", "post"])]
    assert kinds_in_features(names, POSTS) == ("App Open", "post")


def test_build_features_adds_usage_only_for_the_given_kinds():
    tx = pd.DataFrame(
        {"customer_id": ["a", "b", "c"], "timestamp": [ago(10)] * 3, "amount": [5.0] * 3}
    ).astype({"customer_id": "str"})
    plain = build_features(tx, CUTOFF, POSTS)
    assert not plain.columns.str.startswith("usage_").any()
    with_usage = build_features(tx, CUTOFF, POSTS, usage_kinds=("post",))
    assert list(with_usage.columns) == list(plain.columns) + usage_feature_names(["post"])
    later = pd.concat(
        [POSTS, events([("a", CUTOFF, "post"), ("a", CUTOFF + pd.Timedelta(days=2), "post")])]
    )
    pd.testing.assert_frame_equal(
        build_features(tx, CUTOFF, later, usage_kinds=("post",)), with_usage
    )


def test_usage_features_take_the_family_reason_and_unknown_features_are_refused():
    reason_map = load_reason_map()
    assert reason_map.features["usage_post_30d"].reason == "unidentified"
    reason_map.check_covers(usage_feature_names(["post", "App Open"]))
    with pytest.raises(ReasonMapError, match="usage_post_31d"):
        reason_map.check_covers(["usage_post_31d"])
    with pytest.raises(ReasonMapError, match="post_count"):
        reason_map.check_covers(["post_count"])
    phrase = describe(reason_map, "usage_post_trend_30d", {"usage_post_trend_30d": -0.6})
    assert phrase == "post events down 60% on the month before"


def test_a_kind_can_take_its_own_reason_in_the_map():
    data = {
        "features": {"tickets_90d": {"reason": "poor_interaction"}},
        "families": {
            "usage": {"reason": "unidentified", "kinds": {"Support Chat": "poor_interaction"}}
        },
    }
    reason_map = parse_reason_map(data, "map.yaml")
    assert reason_map.reason_of("usage_support_chat_90d") == "poor_interaction"
    assert reason_map.reason_of("usage_like_90d") == "unidentified"
    data["families"]["usage"]["reason"] = "boredom"
    with pytest.raises(ReasonMapError, match="boredom"):
        parse_reason_map(data, "map.yaml")


# --- ratios: the share of negative-sounding kinds -------------------------------------

# a: in the last 30 days 3 posts and 1 hide, in the 30 before 1 post and 3 hides, 60-90
# days ago 4 likes; b: one like 10 days ago; c: only a support ticket (no chosen kind)
RATIO_EVENTS = events(
    [("a", ago(5 + i), "post") for i in range(3)]
    + [("a", ago(6), "Hide Post")]
    + [("a", ago(45), "post")]
    + [("a", ago(40 + i), "Hide Post") for i in range(3)]
    + [("a", ago(70 + i), "like") for i in range(4)]
    + [("b", ago(10), "like"), ("c", ago(2), "support_ticket")]
)
RATIO_KINDS = ["post", "Hide Post", "like"]


def test_negative_kinds_are_found_by_words_in_their_sanitised_names():
    kinds = ["post", "Hide Post", "report-user", "app_error", "dislike", "like", "Unsubscribe"]
    assert negative_kinds(kinds) == (
        "Hide Post",
        "report-user",
        "app_error",
        "dislike",
        "Unsubscribe",
    )
    # a business's own words, sanitised like the kinds
    assert negative_kinds(kinds, ["LIKE"]) == ("dislike", "like")
    assert negative_kinds(kinds, []) == ()


def test_ratio_features_exact_values():
    f = usage_features(RATIO_EVENTS, CUTOFF, IDS, RATIO_KINDS)

    assert list(f.columns) == usage_feature_names(RATIO_KINDS)
    assert (
        list(f.columns[-3:])
        == list(USAGE_RATIOS)
        == [
            "negative_usage_share_30d",
            "negative_usage_share_90d",
            "negative_usage_share_change_30d",
        ]
    )
    # a: 1 hide of 4 events lately; 3 of 4 in the month before; 4 of 12 over 90 days
    assert f.loc["a", "negative_usage_share_30d"] == pytest.approx(0.25)
    assert f.loc["a", "negative_usage_share_90d"] == pytest.approx(4 / 12)
    assert f.loc["a", "negative_usage_share_change_30d"] == pytest.approx(0.25 - 0.75)
    # b: one like, no hide; nothing in the month before, so no change to speak of
    assert f.loc["b", "negative_usage_share_30d"] == 0.0
    assert f.loc["b", "negative_usage_share_90d"] == 0.0
    assert pd.isna(f.loc["b", "negative_usage_share_change_30d"])
    # c: no usage event at all: every share is missing, never 0
    assert f.loc["c", list(USAGE_RATIOS)].isna().all()


def test_ratios_are_not_built_without_a_negative_kind_and_another():
    # no negative kind: the share would be 0 or missing for everyone
    assert not has_ratios(["post", "like"])
    no_negative = usage_features(RATIO_EVENTS, CUTOFF, IDS, ["post", "like"])
    assert list(no_negative.columns) == usage_feature_names(["post", "like"])
    assert not set(USAGE_RATIOS) & set(no_negative.columns)
    # only negative kinds: the share would be 1 or missing for everyone
    assert not has_ratios(["Hide Post"])
    assert usage_feature_names(["Hide Post"])[-1] == "usage_hide_post_active_days_90d"
    assert not has_ratios([])
    # a business's own words decide: "like" negative, "post" not
    custom = usage_features(RATIO_EVENTS, CUTOFF, IDS, ["post", "like"], negative_words=["like"])
    assert custom["negative_usage_share_90d"].tolist()[:2] == [pytest.approx(4 / 8), 1.0]


def test_ratio_names_are_never_read_as_kinds():
    names = usage_feature_names(RATIO_KINDS)
    assert kinds_in_features(names, RATIO_EVENTS) == ("post", "Hide Post", "like")


def test_build_features_adds_the_ratios_and_ignores_later_events():
    tx = pd.DataFrame(
        {"customer_id": ["a", "b", "c"], "timestamp": [ago(10)] * 3, "amount": [5.0] * 3}
    ).astype({"customer_id": "str"})
    kinds = tuple(RATIO_KINDS)
    built = build_features(tx, CUTOFF, RATIO_EVENTS, usage_kinds=kinds)
    assert list(built.columns[-3:]) == list(USAGE_RATIOS)
    assert built.loc["a", "negative_usage_share_30d"] == pytest.approx(0.25)
    later = pd.concat([RATIO_EVENTS, events([("a", CUTOFF, "Hide Post")] * 5)])
    pd.testing.assert_frame_equal(build_features(tx, CUTOFF, later, usage_kinds=kinds), built)


def test_ratio_features_have_a_reason_and_a_phrase():
    reason_map = load_reason_map()
    reason_map.check_covers(usage_feature_names(RATIO_KINDS))
    assert reason_map.reason_of("negative_usage_share_30d") == "poor_interaction"
    values = {"negative_usage_share_30d": 0.25, "negative_usage_share_change_30d": -0.5}
    assert describe(reason_map, "negative_usage_share_change_30d", values) == (
        "share of negative usage events down 50 points on the month before"
    )
    values["negative_usage_share_change_30d"] = 0.154
    assert describe(reason_map, "negative_usage_share_change_30d", values) == (
        "share of negative usage events up 15 points on the month before"
    )
    values["negative_usage_share_change_30d"] = 0.004
    assert describe(reason_map, "negative_usage_share_change_30d", values) == (
        "share of negative usage events unchanged on the month before"
    )
    assert describe(reason_map, "negative_usage_share_30d", values) == (
        "25% of usage events in the last 30 days were negative (hide, report, error, "
        "unsubscribe...)"
    )
    # the usage family's reason does not reach them: they name their own
    data = {"families": {"usage": {"reason": "business_change"}}}
    overridden = parse_reason_map(data, "map.yaml", over_registry=True)
    assert overridden.reason_of("usage_post_30d") == "business_change"
    assert overridden.reason_of("negative_usage_share_90d") == "poor_interaction"


# --- one usage trend over every kind (the playbook's "usage falling") ------------------


def test_usage_trend_weights_each_kinds_trend_by_its_volume():
    features = pd.DataFrame(
        {
            "usage_post_90d": [30.0, 0.0, 10.0],
            "usage_post_trend_30d": [-0.5, 0.0, -1.0],
            "usage_like_90d": [10.0, 0.0, 0.0],
            "usage_like_trend_30d": [0.5, 0.0, 0.0],
            # a: 10 shares lately, none before: +10, counted as +1 (doubled)
            "usage_share_90d": [10.0, 0.0, 0.0],
            "usage_share_trend_30d": [10.0, 0.0, 0.0],
            "negative_usage_share_change_30d": [0.9, 0.9, 0.9],  # not a kind
        },
        index=IDS,
    )
    trend = usage_trend(features)

    # a: (30 * -0.5 + 10 * 0.5 + 10 * 1) / 50; b: no usage in 90 days; c: only posts, gone
    assert trend["a"] == pytest.approx(0.0)
    assert pd.isna(trend["b"])
    assert trend["c"] == pytest.approx(-1.0)
    assert usage_trend(features[["negative_usage_share_change_30d"]]).isna().all()


# --- the kinds mapping ----------------------------------------------------------------


def test_the_kinds_mapping_renames_the_business_vocabulary():
    frame = events([("a", ago(1), "ticket"), ("a", ago(2), "nps"), ("a", ago(3), "like")])
    mapped, renamed = map_kinds(frame, {"Ticket": "support_ticket", "nps": "survey"})
    assert renamed == 2
    assert mapped["kind"].astype(str).tolist() == ["support_ticket", "survey", "like"]
    assert list(mapped["kind"].cat.categories) == ["like", "support_ticket", "survey"]
    same, none = map_kinds(frame, {"call": "complaint"})
    assert none == 0 and same is frame


def test_the_kinds_mapping_is_applied_when_tables_are_assembled():
    tx = validate_table(
        pd.DataFrame({"customer_id": ["a"], "timestamp": ["2024-01-01"], "amount": [1]}),
        "transactions",
        "tx.csv",
    )
    ix = validate_table(
        pd.DataFrame(
            {
                "customer_id": ["a", "a"],
                "timestamp": ["2024-01-02", "2024-01-03"],
                "kind": ["Ticket", "nps"],
            }
        ),
        "interactions",
        "ix.csv",
    )
    tables = assemble_tables(
        {"transactions": ("tx.csv", tx), "interactions": ("ix.csv", ix)},
        {"ticket": "support_ticket"},
    )
    assert tables.interactions["kind"].astype(str).tolist() == ["support_ticket", "nps"]
    assert "ix.csv: 1 rows renamed by the `kinds:` mapping" in tables.warnings


# --- the duplicate rule ---------------------------------------------------------------


def _two_likes() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": ["a", "a", "a"],
            "timestamp": ["2024-01-01T10:00:00"] * 2 + ["2024-01-01T10:00:01"],
            "kind": ["like", "like", "like"],
        }
    )


def test_repeated_interactions_are_kept_by_default_and_the_rule_is_said():
    table = validate_table(_two_likes(), "interactions", "ix.csv")
    assert len(table.frame) == 3
    assert len(table.warnings) == 1
    assert table.warnings[0].startswith("ix.csv: kept 1 row equal to another in every column")
    assert "drop_duplicate_interactions" in table.warnings[0]


def test_repeated_interactions_are_dropped_only_when_asked():
    table = validate_table(_two_likes(), "interactions", "ix.csv", drop_duplicates=True)
    assert len(table.frame) == 2
    assert table.warnings == ("ix.csv: dropped 1 exact duplicate row",)


def test_transactions_keep_todays_rule():
    frame = pd.DataFrame(
        {"customer_id": ["a", "a"], "timestamp": ["2024-01-01"] * 2, "amount": [5, 5]}
    )
    table = validate_table(frame, "transactions", "tx.csv")
    assert len(table.frame) == 1
    assert table.warnings == ("tx.csv: dropped 1 exact duplicate row",)


def test_kind_counts_are_the_same_counted_as_categories_or_as_text():
    kinds = ["outreach", "support_ticket", "outreach", None, "survey", "outreach", "survey"]
    text = pd.DataFrame({"kind": pd.Series(kinds, dtype="str")})
    categories = pd.CategoricalDtype(["complaint", "outreach", "support_ticket", "survey"])
    coded = pd.DataFrame({"kind": pd.Series(kinds).astype(categories)})  # one kind unused
    counted = kind_counts(coded)
    pd.testing.assert_series_equal(counted, kind_counts(text))
    pd.testing.assert_series_equal(kind_counts(text.astype(object)), counted)
    assert counted.to_dict() == {"outreach": 3, "survey": 2, "support_ticket": 1}
    assert list(counted.index) == ["outreach", "survey", "support_ticket"]
