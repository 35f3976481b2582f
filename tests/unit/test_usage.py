"""Usage events of any kind as features; the kinds mapping; the duplicate rule."""

import pandas as pd
import pytest

from features.build import build_features
from features.contracts import validate_table
from features.usage import (
    choose_usage_kinds,
    kind_report,
    kinds_in_features,
    map_kinds,
    sanitise,
    usage_feature_names,
    usage_features,
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
